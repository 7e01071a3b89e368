"""Truthful answers to writes: idempotency keys, and writes whose acknowledgement was lost.

A write can commit while the connection breaks before the store acknowledges it. Saving
then raises, and a retry (the library's own retry on PostgreSQL, or the client's) finds
the write's own events at their versions: before this module, that was answered as a
version conflict (``412 stale-version``) for a write that had been recorded.

**Idempotency keys.** The HTTP layer puts an :class:`IdempotencyClaim` in force for a
write that carries an ``Idempotency-Key`` (:func:`idempotency_claim`). The first
:meth:`WriteTruth.check` of the command (from ``AkteService.act``, which every command
calls before it changes anything) scopes the key to the acting user and looks it up:
recorded with the same request, it raises :class:`AlreadyRecorded` (the HTTP layer
replays the first answer and nothing is recorded); with another request,
:class:`IdempotencyKeyReused`. The command's first save passes a :class:`NewKey` to the
recorder, which writes it in the transaction of the events: the key is recorded if and
only if the events are.

**Finding out after a failed save** (:meth:`WriteTruth.save`): with a key, the key's row
says whether this attempt's events were recorded (the row names the attempt); without
one, the events at the versions the command wrote are read back and compared with the
command's own. Recorded: the save answers as if nothing had failed. Not recorded: the
original error (a conflict stays a conflict, a failure "nothing was recorded"). Cannot
be told (the store is still unreachable): :class:`OutcomeUnknown`, never a conflict.

**The outcome with the key.** The first answer is stored after the write, in a
transaction of its own: a request that failed in between (the acknowledgement lost and
the store unreadable, the process killed) leaves a key without an answer. So that its
retry can still answer as the first request would have (the same status, ``Location``,
``ETag``, cookie, position and body), a command notes its outcome (:meth:`WriteTruth.note`:
the aggregate, its new version and the command's result, sealed with the client's key)
and the save records it with the key, in the events' transaction. The retry's command
then returns that outcome (:meth:`WriteTruth.replayed`) instead of running, and its
route or page builds its answer from it as the first time. The case-file commands do it
(``open_case``, ``change_case``), and so do the public writes, whose answer carries a
secret the person has no other way to learn: a commitment declaration's reference, a
booking's or waitlist entry's reference, a contact form's receipt; and an erasure
request. The contexts reach it through :class:`service_ports.OutcomeNotes`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Final, Literal
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Notification,
    PersistenceError,
    Recording,
)
from eventsourcing.utils import get_topic, resolve_topic

from service_common import Recorded, ServiceError, StoreUnavailable, is_domain_event
from service_ports import Clock, KeyRecord, NewKey, StoredAnswer, WriteOutcomes

DEFAULT_KEY_RETENTION: Final = timedelta(hours=24)
IN_FLIGHT: Final = timedelta(seconds=5)
"""A recorded key without a stored answer younger than this: its first request is most
likely still answering (409, retry); older, that request ended before it could answer."""


@dataclass
class IdempotencyClaim:
    """A write's idempotency key while the write runs (mutable: the service marks it)."""

    key: str
    request_hash: str
    """Hash of the request as sent: method, path, query, content type and body."""
    attempt: str = field(default_factory=lambda: uuid.uuid4().hex)
    key_hash: str | None = None
    """Set by the first check, when the acting user is known."""
    fingerprint: str | None = None
    recorded: bool = False
    """The key was recorded with this attempt's events."""
    seal: Callable[[bytes], bytes] | None = None
    """Encrypts a noted outcome for the key's row (with the client's key, which the store
    never holds); None: outcomes are not recorded."""
    unseal: Callable[[bytes], bytes | None] | None = None
    """The reverse of ``seal``: None when the sealed outcome cannot be read."""
    outcome: bytes | None = None
    """The sealed outcome of the command about to be saved (:meth:`WriteTruth.note`)."""
    replayed: KeyRecord | None = None
    """The key's record, once a command of this request returned its recorded outcome:
    any further command of the request is not run but answered as already recorded."""


class IdempotencyKeyReused(ServiceError):
    """The key was recorded with a different request (of the same user)."""

    def __init__(self) -> None:
        super().__init__("this idempotency key was used for a different request")


class AlreadyRecorded(ServiceError):
    """The key was recorded with this very request: its first answer stands."""

    def __init__(self, record: KeyRecord) -> None:
        super().__init__("this request was recorded before under its idempotency key")
        self.record = record


class OutcomeUnknown(StoreUnavailable):
    """Saving failed in a way that may have come after the commit, and the store could
    not be asked whether it did: the write may or may not be recorded."""


def key_hash(by: str, key: str) -> str:
    """The key as stored: scoped to the acting user, and not the client's string."""
    return hashlib.sha256(f"akte-idempotency-key\0{by}\0{key}".encode()).hexdigest()


def fingerprint(request_hash: str, by: str) -> str:
    return hashlib.sha256(f"{request_hash}\0{by}".encode()).hexdigest()


_CLAIM: ContextVar[IdempotencyClaim | None] = ContextVar("akte_idempotency", default=None)


@contextmanager
def idempotency_claim(claim: IdempotencyClaim) -> Iterator[IdempotencyClaim]:
    """The commands run inside this block carry ``claim`` (one write request)."""
    token = _CLAIM.set(claim)
    try:
        yield claim
    finally:
        _CLAIM.reset(token)


@contextmanager
def without_claim() -> Iterator[None]:
    """Writes inside this block carry no key, whatever request they run in (a group of
    commands written while a keyed command runs: the key is that command's alone)."""
    token = _CLAIM.set(None)
    try:
        yield
    finally:
        _CLAIM.reset(token)


def current_claim() -> IdempotencyClaim | None:
    return _CLAIM.get()


_Found = Literal["ours", "none", "other"]


class WriteTruth:
    """The service's save with idempotency keys and the check after a failed save."""

    def __init__(
        self,
        *,
        outcomes: WriteOutcomes | None,
        events: EventStore[UUID],
        mapper: Mapper[UUID],
        clock: Clock,
        retention: timedelta,
    ) -> None:
        self.outcomes = outcomes
        self._events = events
        self._mapper = mapper
        self._clock = clock
        self.retention = retention

    def check(self, by: str) -> None:
        """Called as a command begins: replays or refuses a key recorded before."""
        claim = current_claim()
        if claim is not None and claim.replayed is not None:
            raise AlreadyRecorded(claim.replayed)
        if claim is None or claim.key_hash is not None:
            return
        claim.key_hash = key_hash(by, claim.key)
        claim.fingerprint = fingerprint(claim.request_hash, by)
        if self.outcomes is None:
            return
        try:
            found = self.outcomes.find_key(claim.key_hash, self._clock() - self.retention)
        except PersistenceError as error:
            msg = f"the event store failed: {type(error).__name__}"
            raise StoreUnavailable(msg) from None
        if found is None:
            return
        if found.fingerprint != claim.fingerprint:
            raise IdempotencyKeyReused
        raise AlreadyRecorded(found)

    def note(self, aggregate_id: UUID, version: int, result: object) -> None:
        """The outcome of the command about to be saved, recorded with its key (if one is
        in force and the result is one :func:`_encoded_result` can tell again). Stored under the
        name ``case_id`` whatever the aggregate: the rows written before keep reading."""
        claim = current_claim()
        if claim is None or claim.seal is None or claim.recorded:
            return
        encoded = _encoded_result(result)
        if encoded is None:
            claim.outcome = None
            return
        outcome = {"case_id": str(aggregate_id), "version": version, "result": encoded}
        claim.outcome = claim.seal(json.dumps(outcome).encode())

    def replayed(self, by: str) -> Recorded[Any] | None:
        """The recorded outcome of this very request, when its key was recorded with one
        and its first answer is not stored: the command returns it instead of running.
        None: the command runs (:meth:`check` raises for a key recorded otherwise)."""
        claim = current_claim()
        if claim is None or claim.replayed is not None:
            return None
        try:
            self.check(by)
        except AlreadyRecorded as found:
            record = found.record
            sealed = record.outcome
            if record.answer is not None or sealed is None or claim.unseal is None:
                raise
            opened = claim.unseal(sealed)
            if opened is None:
                raise
            outcome = json.loads(opened)
            claim.replayed = record
            return Recorded(
                UUID(outcome["case_id"]),
                int(outcome["version"]),
                _decoded_result(outcome["result"]),
                record.position,
            )
        return None

    def save(
        self,
        save: Callable[..., list[Recording[UUID]]],
        objs: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> list[Recording[UUID]]:
        claim = current_claim()
        new_key: NewKey | None = None
        arguments = dict(kwargs)
        if (
            claim is not None
            and claim.key_hash is not None
            and claim.fingerprint is not None
            and not claim.recorded
            and self.outcomes is not None
        ):
            now = self._clock()
            new_key = NewKey(
                key_hash=claim.key_hash,
                fingerprint=claim.fingerprint,
                attempt=claim.attempt,
                recorded_at=now,
                replaces_before=now - self.retention,
                outcome=claim.outcome,
            )
            arguments["idempotency"] = new_key
        pending = _pending_events(objs)
        try:
            recordings = save(*objs, **arguments)
        except IntegrityError:
            recovered = self._after_failure(claim, new_key, pending)
            if recovered is None:
                raise
            return recovered
        except PersistenceError:
            recovered = self._after_failure(claim, new_key, pending)
            if recovered is None:
                # Told for certain: nothing of this command was recorded.
                raise
            return recovered
        if claim is not None and new_key is not None:
            claim.recorded = True
        return recordings

    def _after_failure(
        self,
        claim: IdempotencyClaim | None,
        new_key: NewKey | None,
        pending: list[DomainEventProtocol[UUID]],
    ) -> list[Recording[UUID]] | None:
        """The recordings of this save if it was recorded after all; None if it was not.

        Raises :class:`OutcomeUnknown` when the store cannot tell, and
        :class:`AlreadyRecorded` when a concurrent request with the same key was first.
        """
        if not pending:
            return None
        try:
            if new_key is not None and self.outcomes is not None:
                found = self.outcomes.find_key(new_key.key_hash, new_key.replaces_before)
                if found is None:
                    # The row is written in the events' transaction: none of them either.
                    return None
                if found.attempt != new_key.attempt:
                    raise AlreadyRecorded(found)
                if claim is not None:
                    claim.recorded = True
                return [_recording(event, found.position) for event in pending]
            if self.outcomes is None:
                raise OutcomeUnknown(_UNKNOWN)
            verdict = self._found(pending)
            if verdict != "ours":
                return None
            positions = [
                self.outcomes.position_of(event.originator_id, event.originator_version)
                for event in pending
            ]
        except PersistenceError:
            raise OutcomeUnknown(_UNKNOWN) from None
        if any(position is None for position in positions):
            raise OutcomeUnknown(_UNKNOWN)
        return [
            _recording(event, position)
            for event, position in zip(pending, positions, strict=True)
            if position is not None
        ]

    def _found(self, pending: list[DomainEventProtocol[UUID]]) -> _Found:
        """Whether the events at the versions this save wrote are its own."""
        ours = 0
        for event in pending:
            stored = list(
                self._events.get(
                    event.originator_id,
                    gt=event.originator_version - 1,
                    lte=event.originator_version,
                )
            )
            if not stored:
                continue
            # Through the mapper and back: compared in the form a stored event reads as.
            mine = self._mapper.to_domain_event(self._mapper.to_stored_event(event))
            if stored[0] != mine:
                return "other"
            ours += 1
        if ours == len(pending):
            return "ours"
        return "none" if ours == 0 else "other"


_UNKNOWN: Final = (
    "the event store failed while recording and could not be asked whether the write was "
    "recorded; retry with the same Idempotency-Key"
)


_RESULT_MODULES: Final = ("domain.", "service")
"""Where the classes of recorded results may come from: a recorded outcome names its
dataclass or enum by topic, and only the project's own are rebuilt from it."""


def _encoded_result(result: object) -> dict[str, Any] | None:
    """A command's result as JSON that tells its type again (numbers, texts, ids, truth
    values, dates, the project's enums and dataclasses, and tuples, lists and text-keyed
    dicts of those); None: not one of those (the retry then hears "already recorded")."""
    if result is None:
        return {"none": None}
    if isinstance(result, Enum):
        value = _encoded_result(result.value)
        topic = get_topic(type(result))
        return (
            None
            if value is None or not topic.startswith(_RESULT_MODULES)
            else {"enum": [topic, value]}
        )
    if isinstance(result, bool):
        return {"bool": result}
    if isinstance(result, int):
        return {"int": result}
    if isinstance(result, str):
        return {"str": result}
    if isinstance(result, UUID):
        return {"uuid": str(result)}
    if isinstance(result, datetime):
        return {"datetime": result.isoformat()}
    if isinstance(result, date):
        return {"date": result.isoformat()}
    if isinstance(result, Decimal):
        return {"decimal": str(result)}
    if isinstance(result, (tuple, list)):
        items = [_encoded_result(item) for item in result]
        if any(item is None for item in items):
            return None
        return {"tuple" if isinstance(result, tuple) else "list": items}
    if isinstance(result, dict):
        if not all(isinstance(key, str) for key in result):
            return None
        values = {key: _encoded_result(value) for key, value in result.items()}
        return None if any(v is None for v in values.values()) else {"dict": values}
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        topic = get_topic(type(result))
        if not topic.startswith(_RESULT_MODULES):
            return None
        fields = {
            f.name: _encoded_result(getattr(result, f.name))
            for f in dataclasses.fields(result)
            if f.init
        }
        if any(value is None for value in fields.values()):
            return None
        return {"dataclass": [topic, fields]}
    return None


def _decoded_result(encoded: Mapping[str, Any]) -> object:
    [(kind, value)] = encoded.items()
    simple: dict[str, Callable[[Any], object]] = {
        "int": int,
        "str": str,
        "uuid": UUID,
        "bool": bool,
        "datetime": datetime.fromisoformat,
        "date": date.fromisoformat,
        "decimal": Decimal,
    }
    if kind in simple:
        return simple[kind](value)
    if kind == "tuple":
        return tuple(_decoded_result(item) for item in value)
    if kind == "list":
        return [_decoded_result(item) for item in value]
    if kind == "dict":
        return {key: _decoded_result(item) for key, item in value.items()}
    if kind in ("enum", "dataclass"):
        topic, content = value
        if not str(topic).startswith(_RESULT_MODULES):
            return None
        cls = resolve_topic(topic)
        if kind == "enum" and isinstance(cls, type) and issubclass(cls, Enum):
            return cls(_decoded_result(content))
        if kind == "dataclass" and isinstance(cls, type) and dataclasses.is_dataclass(cls):
            return cls(**{name: _decoded_result(item) for name, item in content.items()})
    return None


def _pending_events(objs: Sequence[Any]) -> list[DomainEventProtocol[UUID]]:
    """The events ``save`` is about to write (it takes them from the aggregates)."""
    events: list[DomainEventProtocol[UUID]] = []
    for obj in objs:
        if obj is None:
            continue
        if is_domain_event(obj):
            events.append(obj)
        else:
            events.extend(getattr(obj, "pending_events", ()))
    return events


def _recording(event: DomainEventProtocol[UUID], position: int) -> Recording[UUID]:
    return Recording(
        domain_event=event,
        notification=Notification(
            id=position,
            originator_id=event.originator_id,
            originator_version=event.originator_version,
            topic="",
            state=b"",
        ),
    )


FORGET_EVERY: Final = timedelta(minutes=10)
"""How often a process deletes expired keys (when it stores an answer)."""


class AnswerMemory:
    """Stores the first answer of a write recorded with a key, and forgets old keys."""

    def __init__(self, writes: WriteTruth, clock: Clock) -> None:
        self._writes = writes
        self._clock = clock
        self._forgotten_at: datetime | None = None

    def remember(self, claim: IdempotencyClaim, answer: StoredAnswer) -> None:
        outcomes = self._writes.outcomes
        if outcomes is None or not claim.recorded or claim.key_hash is None:
            return
        try:
            outcomes.store_answer(claim.key_hash, claim.attempt, answer)
            now = self._clock()
            if self._forgotten_at is None or now - self._forgotten_at >= FORGET_EVERY:
                self._forgotten_at = now
                outcomes.forget_keys(now - self._writes.retention)
        except PersistenceError:
            # The write stands and its key with it; a retry then hears that it was
            # recorded (without this answer's body). Nothing to undo.
            return
