"""Groups of commands written together: one commit for many commands (bulk writers).

Every command commits on its own: on PostgreSQL that is one WAL flush (fsync) per
command, which caps a bulk writer (the office-year simulator, the scan import) at a few
hundred commands a second however fast the rest is. Inside
``with service.grouped(max_events=5000):`` (:meth:`service.AkteService.grouped`) the same
commands run, check the same rules and produce the same events, but their saves are
deferred and written together, in one transaction of the recorder (hash chain entries
included), every ``max_events`` events and when the block ends.

**What the commands see.** A :class:`CommandGroup` keeps the aggregates its commands
saved, at their new versions: a command that loads an aggregate by id (``get_case``,
``find``, ``find_case_by_reference``, ``change_case`` and the contexts' loads through
them) gets the group's copy, so it sees what the commands before it changed, and its
expected version is the one they left. Reading the events of an aggregate the group
holds (``events_of``, ``case_head_version``) writes the group first. Scans of the whole
log (worklists, ticks, notification reads) see only what was written: call
:meth:`CommandGroup.flush` before them.

**Failures.** A command that raises saved nothing, so nothing of it is written. The
commands before it were accepted by the domain and are written, as a batch of separate
commits would have been; a later load of an aggregate the failed command had half
changed (events triggered, not saved) writes the group and loads the aggregate from the
store, so no half-changed state is reused. The block always writes what its commands
saved, also when it ends with an exception; if that write fails too, the block's own
exception is the one raised, with the failed write as a note.

**Limits.** A group belongs to the thread that opened it; other threads neither see nor
join it. It is for writers that own their data: a version conflict with another writer,
or a file number another writer claimed, surfaces when the group is written, as
:class:`GroupConflict`, and then none of the commands since the last write are recorded
(the scan import is simply run again; it skips what it finds on file). A command's
``Recorded.position`` inside a group is 0: its events have no place in the log yet.
Saves that carry an idempotency key are never deferred (the group is written first,
without the key: the key records that command's own events alone).

**Writes outside the log.** A command may write what its events reference elsewhere
first: the bytes of documents. A writer that holds those writes back to make them durable
together (a batch of the document store) joins them to the group with
:meth:`CommandGroup.write_first`: each time the group writes, they are committed first
and the events after them (an event never points at a missing document); if the events
are refused (:class:`GroupConflict`), they are taken back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import IntegrityError, Notification, Recording, StoredEvent

from service_common import ServiceError, is_domain_event

DEFAULT_GROUP_EVENTS: Final = 5000
"""Events written per transaction: large enough that the commit no longer counts, small
enough that a transaction holds the events table's lock for well under a second."""


class GroupConflict(ServiceError):
    """Writing the group met a conflict (another writer changed one of its aggregates, or
    claimed the same file number): none of the commands since the last write were
    recorded."""

    def __init__(self, commands: int, events: int) -> None:
        super().__init__(
            f"a group of {commands} commands ({events} events) conflicted with another "
            "writer and was not recorded"
        )
        self.commands = commands
        self.events = events


class WrittenFirst(Protocol):
    """Writes the group's events reference, made durable before them
    (:meth:`CommandGroup.write_first`)."""

    def commit(self) -> None:
        """Make what was written so far durable; raises if it cannot (then the events
        are not written)."""

    def confirm(self) -> None:
        """The events referencing what was committed are written."""

    def take_back(self) -> None:
        """The events referencing what was committed were refused: undo it."""

    def referenced(self) -> None:
        """A command saved into the group references what was written so far: it must
        stay, whatever the writer's block does next (it is written with the events)."""


@dataclass
class Batch:
    """What a group has to write: the events (and their stored form) in save order."""

    events: list[DomainEventProtocol[UUID]] = field(default_factory=list)
    stored: list[StoredEvent] = field(default_factory=list)
    aggregates: dict[UUID, Any] = field(default_factory=dict)
    """The latest object saved per id: what later commands of the group load."""
    saves: int = 0


class CommandGroup:
    """The pending saves of a group of commands (see the module docstring)."""

    def __init__(
        self,
        max_events: int,
        *,
        encode: Callable[[DomainEventProtocol[UUID]], StoredEvent],
        write: Callable[[Batch], None],
    ) -> None:
        if max_events < 1:
            msg = "max_events must be at least 1"
            raise ValueError(msg)
        self.max_events = max_events
        self._encode = encode
        self._write = write
        self._batch = Batch()
        self.written_events = 0
        self.transactions = 0
        self._written_first: list[WrittenFirst] = []

    @property
    def pending_events(self) -> int:
        return len(self._batch.events)

    def holds(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self._batch.aggregates

    def aggregate(self, aggregate_id: UUID) -> Any | None:
        """The group's copy of the aggregate; None if the group holds none. A copy that a
        failed command left half changed (events triggered, never saved) is never handed
        out: the group is written and the caller loads from the store."""
        found = self._batch.aggregates.get(aggregate_id)
        if found is not None and getattr(found, "pending_events", None):
            self.flush()
            return None
        return found

    def add(self, objs: Sequence[Any]) -> list[Recording[UUID]]:
        """Defer one save: its events are collected and encoded now (so the keys of new
        aggregates count as used), written with the group later."""
        events: list[DomainEventProtocol[UUID]] = []
        aggregates: dict[UUID, Any] = {}
        # Refused before any event is taken off an aggregate: a held aggregate keeps its
        # pending events, so the group never hands it out as clean (a version gap).
        for obj in objs:
            if obj is None or is_domain_event(obj):
                continue
            pending = getattr(obj, "pending_events", ())
            if pending and pending[0].originator_version == 1 and obj.id in self._batch.aggregates:
                # Created twice in one group (a file number claimed twice): refused as
                # the store would refuse it.
                msg = "an aggregate with this id was already created in this group"
                raise IntegrityError(msg)
        for obj in objs:
            if obj is None:
                continue
            if is_domain_event(obj):
                events.append(obj)
                continue
            events.extend(obj.collect_events())
            aggregates[obj.id] = obj
        try:
            stored = [self._encode(event) for event in events]
        except BaseException:
            # The save's events are gone from its aggregates: write the group's earlier
            # commands and forget every copy, so the next command loads from the store.
            self.flush()
            raise
        self._batch.events.extend(events)
        self._batch.stored.extend(stored)
        self._batch.aggregates.update(aggregates)
        self._batch.saves += 1
        for writes in self._written_first:
            writes.referenced()
        recordings = [_unwritten(event, s) for event, s in zip(events, stored, strict=True)]
        if len(self._batch.events) >= self.max_events:
            self.flush()
        return recordings

    def write_first(self, writes: WrittenFirst) -> None:
        """Commit ``writes`` before each write of the group's events, confirm them after
        it, and take them back if the events are refused (:class:`GroupConflict`). A
        failing commit writes no events: the commands since the last write are lost,
        as with a failed write."""
        self._written_first.append(writes)

    def flush(self) -> None:
        """Write what the group's commands saved, in one transaction."""
        batch, self._batch = self._batch, Batch()
        if not batch.events:
            return
        for writes in self._written_first:
            writes.commit()
        try:
            self._write(batch)
        except GroupConflict as refused:
            # Refused for certain (nothing written): undo what was written for it. Any
            # other failure may have written the events, so what they reference stays.
            for writes in self._written_first:
                try:
                    writes.take_back()
                except Exception as undo_error:  # the conflict is what the caller needs
                    refused.add_note(
                        "taking back what was written for it also failed: "
                        + type(undo_error).__name__
                    )
            raise
        for writes in self._written_first:
            writes.confirm()
        self.written_events += len(batch.events)
        self.transactions += 1


def _unwritten(event: DomainEventProtocol[UUID], stored: StoredEvent) -> Recording[UUID]:
    """A save's answer before the group is written: position 0, "not in the log yet"."""
    return Recording(
        domain_event=event,
        notification=Notification(
            id=0,
            originator_id=stored.originator_id,
            originator_version=stored.originator_version,
            topic=stored.topic,
            state=stored.state,
        ),
    )


__all__ = ["DEFAULT_GROUP_EVENTS", "Batch", "CommandGroup", "GroupConflict", "WrittenFirst"]
