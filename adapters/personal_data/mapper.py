"""The mapper that encrypts personal data per person (crypto-shredding).

The library's cipher encrypts whole events with one key per application; erasing one
person needs one key per person. :class:`PersonalDataMapper` seals, per event, the
values of the fields marked ``Personal[...]`` (:mod:`domain.personal`) together in one
AES-GCM blob under the key of the event's aggregate
(:mod:`adapters.personal_data.key_store`), stored in the event's state under :data:`SEALED`.
Everything else stays as the library writes
it: originator id, version, topic, and the non-personal fields (event kind, times, who,
legal bases, document kinds, office ...), which statistics and audit read.

Stored form of an event with personal data (the library's JSON wire format)::

    {"by": "sb-01", "at": ..., "office_id": "abh-musterstadt", "reference": "2024-1",
     "address": null, "_personal_": "AbCd..."}

- personal fields whose value is ``None`` stay in the clear as ``null`` (that a reason
  was not given, or which master data fields a correction changed, is a fact, not data
  about the person), all others are removed from the state and sealed;
- ``_personal_`` is base64 of: one format byte (1), a 12-byte nonce, and the AES-GCM
  ciphertext with its tag of the transcoded ``{field: value}`` mapping; the associated
  data is the originator id and version, so a blob copied to another event does not open.

Decoding with the library's plain mapper (e.g. a projection's fast path that does not
use this mapper) still yields an event object of the right class: the personal fields
are simply absent and ``_personal_`` is an extra attribute no handler reads.

Snapshots (which hold the whole state of an aggregate) are sealed whole: their
``state`` goes into ``_personal_``.

**Parts about another person** (:data:`service_data_protection.SEPARATE_PARTS`): a
commitment declaration names the guarantor *and* the invited visitor. The visitor's fields
are sealed apart, under ``_personal_visitor_``, with a key of their own (owner id
:func:`service_data_protection.part_owner_id`), so that erasing the visitor's case file
destroys that key and leaves the guarantor's part readable. Declarations written before
this split hold the visitor's fields in the main blob: those cannot be erased apart
(:func:`unseparated_parts` counts them; the erasure reports them).

Reading, after the owner's key was destroyed (erasure): every sealed field reads as its
redacted stand-in (:func:`domain.personal.redacted_fields`: ``"[gelöscht]"``,
``0001-01-01`` ...), never an error; a snapshot cannot be redacted field by field, so it
raises :class:`~adapters.personal_data.key_store.DataKeyErased`, and :class:`SkippingSnapshotStore`
then ignores it (the aggregate is replayed from its events).

Events written without encryption (before it was switched on, or with it switched off)
have no ``_personal_`` and read as they are: a store can be migrated by switching it on;
what was written before stays in the clear (see docs "Data protection").
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Sequence
from typing import Any, Final, cast
from uuid import UUID

from cryptography.exceptions import InvalidTag
from eventsourcing.application import Application
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import (
    Cipher,
    Compressor,
    EventStore,
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

from adapters.personal_data.key_store import NONCE_BYTES, DataKeyErased, DataKeys
from domain.personal import personal_fields, redacted_fields
from service_data_protection import SEPARATE_PARTS, PersonalDataProtectionOff, part_owner_id

SEALED: Final = "_personal_"
"""The state key of the sealed personal values."""
_FORMAT: Final = b"\x01"


_SNAPSHOT_CLASSES: dict[type[Any], bool] = {}
_SEALED_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _is_snapshot(cls: type[Any]) -> bool:
    known = _SNAPSHOT_CLASSES.get(cls)
    if known is None:
        known = _SNAPSHOT_CLASSES[cls] = issubclass(cls, Snapshot)
    return known


def _sealed_names(cls: type[Any]) -> tuple[str, ...]:
    names = _SEALED_NAMES.get(cls)
    if names is None:
        names = _SEALED_NAMES[cls] = tuple(sorted(personal_fields(cls)))  # type: ignore[arg-type]
    return names


_OWNERS: dict[object, str] = {}
_REMEMBERED_OWNERS: Final = 50_000


def _part_key(part: str) -> str:
    """The state key of a part's sealed values."""
    return f"_personal_{part}_"


def _parts(cls: type[Any]) -> dict[str, frozenset[str]]:
    return SEPARATE_PARTS.get(get_topic(cls), {})


def _owner(originator_id: object) -> str:
    """The originator id in one form, however the store hands it back (a UUID, its text
    with or without dashes): the key's owner id and part of the associated data."""
    owner = _OWNERS.get(originator_id)
    if owner is not None:
        return owner
    if isinstance(originator_id, UUID):
        owner = str(originator_id)
    else:
        try:
            owner = str(UUID(str(originator_id)))
        except ValueError:
            owner = str(originator_id)
    if len(_OWNERS) >= _REMEMBERED_OWNERS:
        _OWNERS.clear()
    _OWNERS[originator_id] = owner
    return owner


def _aad(owner: str, originator_version: int) -> bytes:
    return f"{owner}:{originator_version}".encode()


def _redacted(cls: type[Any]) -> dict[str, Any]:
    return redacted_fields(cls)  # type: ignore[arg-type]


class PersonalDataMapper(Mapper[UUID]):
    """Seals personal fields with the aggregate's own key (see the module docstring).

    ``keys`` is set once the application's recorder exists (the PostgreSQL key store uses
    its connection pool). ``encrypt``: seal new events; with it off, events are written in
    the clear, and sealed ones written before are still read.
    """

    def __init__(
        self,
        transcoder: Transcoder,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
        *,
        encrypt: bool = True,
    ) -> None:
        super().__init__(transcoder, compressor, cipher)
        self.encrypt = encrypt
        self._keys: DataKeys | None = None

    @property
    def keys(self) -> DataKeys:
        if self._keys is None:
            msg = "the personal data mapper has no key store yet"
            raise RuntimeError(msg)
        return self._keys

    @keys.setter
    def keys(self, keys: DataKeys) -> None:
        self._keys = keys

    # ---------------------------------------------------------------- writing

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        cls = type(domain_event)
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        class_version = getattr(cls, "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        if self.encrypt:
            if originator_version == 1 and self._keys is not None:
                self._keys.written(_owner(originator_id))
            if _is_snapshot(cls):
                sealed = {"state": state.pop("state")}
            else:
                for part, names in _parts(cls).items():
                    values = {
                        name: state.pop(name)
                        for name in sorted(names)
                        if state.get(name) is not None
                    }
                    if values:
                        part_owner = part_owner_id(_owner(originator_id), part)
                        state[_part_key(part)] = self._seal_for(
                            part_owner, originator_version, values
                        )
                sealed = {
                    name: state.pop(name)
                    for name in _sealed_names(cls)
                    if state.get(name) is not None
                }
            if sealed:
                state[SEALED] = self._seal(originator_id, originator_version, sealed)
        stored_state = self.transcoder.encode(state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(cls),
            state=stored_state,
        )

    def _seal(self, originator_id: object, version: int, values: dict[str, Any]) -> str:
        return self._seal_for(_owner(originator_id), version, values)

    def _seal_for(self, owner: str, version: int, values: dict[str, Any]) -> str:
        key = self.keys.for_writing(owner, new=version == 1)
        nonce = os.urandom(NONCE_BYTES)
        sealed = key.encrypt(nonce, self.transcoder.encode(values), _aad(owner, version))
        return base64.b64encode(_FORMAT + nonce + sealed).decode("ascii")

    # ---------------------------------------------------------------- reading

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        cls = resolve_topic(stored_event.topic)
        stored_state = stored_event.state
        try:
            if self.cipher:
                stored_state = self.cipher.decrypt(stored_state)
            if self.compressor:
                stored_state = self.compressor.decompress(stored_state)
            state: dict[str, Any] = self.transcoder.decode(stored_state)
        except Exception as error:
            # Name the event, never its state.
            msg = (
                f"Failed to deserialise state of stored event with topic "
                f"'{stored_event.topic}', originator_id '{stored_event.originator_id}' and "
                f"originator_version {stored_event.originator_version}: {type(error).__name__}"
            )
            raise MapperDeserialisationError(msg) from None
        for part, names in _parts(cls).items():
            sealed_part = state.pop(_part_key(part), None)
            if sealed_part is not None:
                part_owner = part_owner_id(_owner(stored_event.originator_id), part)
                self._unseal_into(state, cls, stored_event, sealed_part, part_owner, names)
        sealed = state.pop(SEALED, None)
        if sealed is not None:
            self._unseal_into(state, cls, stored_event, sealed, _owner(stored_event.originator_id))
        id_convertor = find_id_convertor(cls, type(stored_event.originator_id))  # type: ignore[arg-type]
        state["originator_id"] = id_convertor(stored_event.originator_id)
        state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", state)
        return domain_event

    def _unseal_into(
        self,
        state: dict[str, Any],
        cls: type[Any],
        stored_event: StoredEvent,
        sealed: Any,
        owner: str,
        only: frozenset[str] | None = None,
    ) -> None:
        """Open one sealed blob of ``owner`` into ``state``; after the owner's erasure, its
        fields (``only`` these, for a part) read redacted."""
        try:
            key = self.keys.for_reading(owner)
        except DataKeyErased:
            if _is_snapshot(cls):
                raise
            for name, redacted in _redacted(cls).items():
                if name not in state and (only is None or name in only):
                    state[name] = list(redacted) if isinstance(redacted, list) else redacted
            return
        try:
            raw = base64.b64decode(sealed)
            if raw[:1] != _FORMAT:
                msg = "unknown format"
                raise ValueError(msg)
            plaintext = key.decrypt(
                raw[1 : 1 + NONCE_BYTES],
                raw[1 + NONCE_BYTES :],
                _aad(owner, stored_event.originator_version),
            )
            values = self.transcoder.decode(plaintext)
        except (InvalidTag, ValueError, TypeError) as error:
            msg = (
                f"the personal data of event {stored_event.originator_version} of {owner} "
                f"does not open with its key ({type(error).__name__})"
            )
            raise MapperDeserialisationError(msg) from None
        state.update(cast(dict[str, Any], values))


class SkippingSnapshotStore(EventStore[UUID]):
    """A snapshot store that ignores snapshots whose owner's key was destroyed.

    Erasure deletes an erased file's snapshots, but one restored from a backup must not
    stop the file from loading: without it, the repository replays the events.
    """

    def get(
        self,
        originator_id: UUID | str,
        *,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> Iterator[Any]:
        stored: Sequence[StoredEvent] = self.recorder.select_events(
            originator_id, gt=gt, lte=lte, desc=desc, limit=limit
        )
        for stored_event in stored:
            try:
                yield self.mapper.to_domain_event(stored_event)
            except DataKeyErased:
                continue


def holds_plaintext(stored_event: StoredEvent, transcoder: Transcoder) -> bool:
    """The stored event holds personal data in the clear: written before per-person
    encryption was switched on (or with it off), so destroying a key cannot erase it."""
    try:
        cls = resolve_topic(stored_event.topic)
    except Exception:  # a topic whose class is gone: nothing to say about it
        return False
    names = personal_fields(cls)
    if not names:
        return False
    state: dict[str, Any] = transcoder.decode(stored_event.state)
    return SEALED not in state and any(state.get(n) is not None for n in names)


def unseparated_parts(stored_event: StoredEvent, transcoder: Transcoder) -> bool:
    """The stored event has a part about another person (see the module docstring) sealed
    in its main blob, not apart: written before the split, not erasable on its own."""
    parts = SEPARATE_PARTS.get(stored_event.topic)
    if not parts:
        return False
    state: dict[str, Any] = transcoder.decode(stored_event.state)
    return SEALED in state and not any(_part_key(part) in state for part in parts)


def data_keys_of(application: Application[UUID]) -> DataKeys:
    """The data keys of an application built with per-person encryption (key rotation,
    status, tests); :class:`PersonalDataProtectionOff` for one without."""
    mapper = application.mapper
    if not isinstance(mapper, PersonalDataMapper) or mapper._keys is None:
        msg = "this service was built without per-person encryption"
        raise PersonalDataProtectionOff(msg)
    return mapper.keys
