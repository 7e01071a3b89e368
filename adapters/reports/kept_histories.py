"""Long case files' histories, kept once written, sealed with the file's own key.

Writing the 5,000 entries of a long case file's history costs about 37 ms of CPU here,
two thirds of it parsing and restoring the stored states (``docs/performance/
history.md``). Its events never change, so the entries written for versions 1 to n are
the same on every later request: this keeps them, and a request then writes only the
events after n.

What keeps this safe, since the entries hold personal data:

* **Sealed with the case file's own data key** (AES-GCM, the key that seals the file's
  events, :mod:`adapters.personal_data.mapper`). Taking a history opens it with the key
  looked up as every event's sealed fields are: an erasure destroys that key, and the kept
  entries then open no more than the events do. Nothing else needs invalidating, and no
  personal data lies in memory in the clear between requests.
* **Never for a file with parts about another person**
  (:data:`service_data_protection.SEPARATE_PARTS`: a commitment declaration's visitor,
  sealed with a key of the visitor's own): erasing the visitor must make those fields
  unreadable in the guarantor's file, which a blob under the guarantor's key would not.
* Associated data names the file, the view (with or without personal data), the version
  and the code that wrote the entries (:func:`writer_fingerprint`), so a blob can be
  opened only as what it was sealed as; it starts with ``history`` so it can never pass
  for an event's sealed fields (``{owner}:{version}``).
* Only histories from the first event without a filter (a whole history, or its first
  page) are kept and used, only once at least :data:`MIN_KEPT_ENTRIES` entries long (short
  ones cost little), in memory per process, least recently used dropped beyond
  :data:`DEFAULT_MAX_BYTES`.
* **On a shelf in the store** (:class:`KeptShelf`, :mod:`adapters.store.kept_history_shelf`)
  as well, the same sealed bytes: a process that has nothing in memory for a file (a new
  process after a deployment or restart, another API replica) takes them from there, so a
  long file's history is written from all its events once per store, not once per
  process. The shelf gets a file's entries again only after :data:`SHELF_STEP` more, and
  an erasure deletes its rows with the file's snapshots. Entries written by other code (a
  release before or after this one: its descriptions or fields may differ) are not taken
  from the shelf, and replaced on it by this code's.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Final, Protocol
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag

MIN_KEPT_ENTRIES: Final = 1000
"""Files shorter than this are written in a few milliseconds: not worth the memory."""
DEFAULT_MAX_BYTES: Final = 64 * 1024 * 1024
"""Sealed entries kept per process: some 35 histories of 5,000 entries."""
LARGEST_SHARE: Final = 4
"""One history takes at most this part of the budget, so one huge file cannot push out
every other."""
SHELF_STEP: Final = 250
"""A history is put on the shelf again once this many entries were written after those
on it: a first request in another process then writes at most this many events (a few
milliseconds), and a growing file is not copied to the store on every request."""
_NONCE_BYTES: Final = 12
_FORMAT: Final = b"history:v1"


_WRITING_CODE: Final = (
    "domain",
    "adapters.reports",
    "adapters.personal_data",
    "adapters.store.transcoding",
    "adapters.store.notification_reader",
    "service_data_protection",
)
"""What decides an entry's bytes: the events and their descriptions, the writer, the
decoding of sealed and redacted fields, the upcasters."""


@cache
def writer_fingerprint() -> str:
    """Which code writes the entries: a hash of the sources of :data:`_WRITING_CODE` and
    the event library's release. A deployment that changes any of them keeps apart from
    what the release before it kept."""
    digest = hashlib.sha256(importlib.metadata.version("eventsourcing").encode())
    for name in _WRITING_CODE:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            msg = f"cannot find the code that writes history entries: {name}"
            raise RuntimeError(msg)
        root = Path(spec.origin).parent
        paths = (
            sorted(root.rglob("*.py")) if spec.submodule_search_locations else [Path(spec.origin)]
        )
        for path in paths:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:32]


class KeptShelf(Protocol):
    """Where a store keeps the sealed entries beyond the process: one row per file and
    view, replaced only by more entries or by another writer's (``writer``: the code
    that wrote them, :func:`writer_fingerprint`). A store that cannot answer reads as
    nothing kept and drops a save; neither raises."""

    def load(self, case_id: UUID, view: str, writer: str) -> tuple[int, bytes] | None:
        """What ``writer`` kept for the file in this view; None if nothing, or another
        writer's."""
        ...

    def save(
        self, case_id: UUID, view: str, writer: str, version: int, sealed: bytes
    ) -> bool | None:
        """True if kept, False if as many entries or more are kept by ``writer``, None if
        the store could not answer."""
        ...

    def discard(self, case_id: UUID, view: str, writer: str, version: int) -> None: ...


class SealingKey(Protocol):
    """What the file's data key does here (``cryptography``'s ``AESGCM``)."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


@dataclass(frozen=True)
class KeptEntries:
    """A history's first ``version`` entries as written (JSON, without the brackets),
    with what its document says of the file."""

    version: int
    reference: str
    office_id: str
    entries: bytes = field(repr=False)  # personal data: never in a log or traceback


class KeptHistories:
    """Written histories of long case files, sealed with each file's key (module
    docstring). ``key_of`` returns a file's data key by its owner id, None if the file
    has none (erased, or never sealed); it raises when it cannot tell (the key store
    unreachable)."""

    def __init__(
        self,
        key_of: Callable[[str], SealingKey | None],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        min_entries: int = MIN_KEPT_ENTRIES,
        writer: str | None = None,
    ) -> None:
        self._key_of = key_of
        self.writer = writer_fingerprint() if writer is None else writer
        self.max_bytes = max_bytes
        self.min_entries = min_entries
        self._kept: OrderedDict[tuple[UUID, bool], tuple[int, bytes]] = OrderedDict()
        # The version a shelf is known to hold for a place kept in memory.
        self._shelved: dict[tuple[UUID, bool], int] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def take(
        self, case_id: UUID, *, with_personal_data: bool, shelf: KeptShelf | None = None
    ) -> KeptEntries | None:
        """The entries kept for the file in this view, opened; None if none are kept or
        they do not open (the caller writes the history from the events, which report
        what is wrong). Kept in this process, else on ``shelf`` (the file's store). Entries
        whose key is gone, or that fail their check, are dropped (from the shelf too); a
        key store that cannot answer leaves them for the next request."""
        place = (case_id, with_personal_data)
        with self._lock:
            kept = self._kept.get(place)
            if kept is not None:
                self._kept.move_to_end(place)
        if kept is None:
            if shelf is None:
                return None
            kept = shelf.load(case_id, view_name(with_personal_data), self.writer)
            if kept is None:
                return None
            self._put(place, kept, shelved=True)
        version, sealed = kept
        try:
            key = self._key_of(str(case_id))
        except Exception:  # the key store cannot answer now: written from the events
            return None
        if key is None:  # erased: nothing will open them again
            self._drop(place, kept, shelf)
            return None
        try:
            opened = key.decrypt(
                sealed[:_NONCE_BYTES],
                sealed[_NONCE_BYTES:],
                self._associated(case_id, with_personal_data, version),
            )
        except InvalidTag:  # not what was sealed here, as what is asked
            self._drop(place, kept, shelf)
            return None
        header_length = int.from_bytes(opened[:4], "big")
        header = orjson.loads(opened[4 : 4 + header_length])
        return KeptEntries(
            version=version,
            reference=header["reference"],
            office_id=header["office_id"],
            entries=opened[4 + header_length :],
        )

    def keep(
        self,
        case_id: UUID,
        *,
        with_personal_data: bool,
        kept: KeptEntries,
        shelf: KeptShelf | None = None,
    ) -> bool:
        """Seal and keep ``kept`` in place of fewer entries kept for the file in this
        view, and put it on ``shelf`` when that holds :data:`SHELF_STEP` entries fewer or
        nothing; False if it is too short or too large to keep, the file has no key, or as
        many entries or more are kept already (a first page, or a slower request at the
        same time, never replaces a longer history)."""
        if kept.version < self.min_entries:
            return False
        header = orjson.dumps({"reference": kept.reference, "office_id": kept.office_id})
        plain = len(header).to_bytes(4, "big") + header + kept.entries
        place = (case_id, with_personal_data)
        with self._lock:
            previous = self._kept.get(place)
        if previous is not None and previous[0] >= kept.version:
            return False
        try:
            key = self._key_of(str(case_id))
        except Exception:  # the key store cannot answer now: not kept this time
            return False
        if key is None:  # no key (erased, or never sealed): not kept
            return False
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + key.encrypt(
            nonce, plain, self._associated(case_id, with_personal_data, kept.version)
        )
        if len(sealed) > self.max_bytes // LARGEST_SHARE:
            return False
        if not self._put(place, (kept.version, sealed), shelved=False):
            return False
        if shelf is not None:
            with self._lock:
                shelved = self._shelved.get(place)
            if shelved is None or kept.version - shelved >= SHELF_STEP:
                # Refused when another process shelved as many entries or more: fine. A
                # store that did not answer gets it again on the next request.
                saved = shelf.save(
                    case_id, view_name(with_personal_data), self.writer, kept.version, sealed
                )
                with self._lock:
                    if saved is not None and place in self._kept:
                        self._shelved[place] = max(kept.version, shelved or 0)
        return True

    def _put(self, place: tuple[UUID, bool], kept: tuple[int, bytes], *, shelved: bool) -> bool:
        """Keep ``kept`` in memory unless as many entries or more are kept; ``shelved``:
        it came from the shelf, which therefore holds its version."""
        version, sealed = kept
        with self._lock:
            previous = self._kept.get(place)
            if previous is not None and previous[0] >= version:
                return False
            if previous is not None:
                del self._kept[place]
                self._bytes -= len(previous[1])
            self._kept[place] = kept
            self._bytes += len(sealed)
            if shelved:
                self._shelved[place] = version
            while self._bytes > self.max_bytes and self._kept:
                dropped_place, (_, dropped) = self._kept.popitem(last=False)
                self._shelved.pop(dropped_place, None)
                self._bytes -= len(dropped)
        return True

    def key_destroyed(self, case_id: UUID) -> bool:
        """The file has no key any more (erased): nothing kept for it opens again. Raises
        when the key store cannot tell."""
        return self._key_of(str(case_id)) is None

    def forget(self, case_id: UUID) -> None:
        """Drop what is kept for the file (both views)."""
        with self._lock:
            for view in (False, True):
                dropped = self._kept.pop((case_id, view), None)
                self._shelved.pop((case_id, view), None)
                if dropped is not None:
                    self._bytes -= len(dropped[1])

    @property
    def kept_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def _associated(self, case_id: UUID, with_personal_data: bool, version: int) -> bytes:
        return _associated(case_id, with_personal_data, version, self.writer)

    def _drop(
        self, place: tuple[UUID, bool], kept: tuple[int, bytes], shelf: KeptShelf | None
    ) -> None:
        with self._lock:
            if self._kept.get(place) is kept:
                del self._kept[place]
                self._shelved.pop(place, None)
                self._bytes -= len(kept[1])
        if shelf is not None:
            shelf.discard(place[0], view_name(place[1]), self.writer, kept[0])


def view_name(with_personal_data: bool) -> str:
    """The view's name on the shelf."""
    return "personal" if with_personal_data else "withheld"


def _associated(case_id: UUID, with_personal_data: bool, version: int, writer: str) -> bytes:
    view = view_name(with_personal_data)
    return b"%s:%s:%s:%s:%d" % (
        _FORMAT,
        writer.encode(),
        str(case_id).encode(),
        view.encode(),
        version,
    )
