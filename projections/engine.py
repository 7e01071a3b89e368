"""The projection engine: read models of the event log, kept up to date batch by batch.

A read model is a :class:`~projections.projection.Projection`: a name, its tables (rows
are dataclasses whose fields become columns) and one handler per event class it cares
about (:mod:`projections.projection`). The engine reads the notification log in
batches, decodes only the events some projection handles, loads the rows of the case
files the batch touches, lets the handlers change those rows in memory and writes back
only what changed, together with the projection's position, in ONE transaction per
batch. A crash at any moment therefore leaves each projection at the
end of a whole batch: its next run continues there, and no event is lost or counted
twice. Rebuilding is: drop and recreate the tables, position 0, catch up.

Each projection keeps its own small table of case files (``<projection>_cases``), filled
from ``CaseFile.Opened``. Events of other aggregates (file-number claims) are skipped.

A case file taken over from another office holds that office's events as
``CaseFile.PartTakenOver``. For the read models that say so
(``Projection.sees_taken_over_parts``: the caseworkers' worklists) the engine reads the
parts too (their topic joins the query's) and hands each on as the event it was, rebuilt
once per batch for all of them (:func:`_source_event`), to the handler of that event's
class: the list then shows what the person brought along as if it had happened on this
file. The other read models (figures, audit) never receive them as such events. A part
that cannot be rebuilt (its kind unknown to this code) stops the read models that see
parts, at its position (which of them would have handled it is not known), and no others.

Positions (:mod:`projections.positions`) compare-and-set: a batch commits only if the
projection's stored position is still the one the batch started from. Two engines
writing the same projection (which the runner's locks prevent anyway) thus cannot both
apply a batch: the loser rolls back, reloads its position and goes on from there.

Where the time goes, and what keeps it short (``bin/bench-projections``, figures in
``docs/performance/projections.md``). A rebuild is bound by Python CPU: all of the engine's
threads share one core (the GIL), while the database's side of the writes runs on
another. Measured on PostgreSQL, about 15 µs of the process's CPU per event (it was
39 µs): reading and decoding 3.5 (in bulk through
:class:`~projections.storage.DecodingEventLog` where the log offers it: tuples of only
the needed columns, orjson; unsealing personal data, where the service seals it, adds
about 3.5 more), the handlers with their row lookups 3.5,
comparing each touched file's rows with the stored ones 2, gathering and remembering
files 1.3, COPY and DELETE 2, the rest in deallocation and threads. What keeps it there:
- only the events some projection handles are read (by topic) and decoded, once for
  all projections; the next batch is read in a thread while the current one is applied;
- Python's cyclic garbage collector is paused while batches are processed
  (:func:`_collector_paused`): with the default thresholds it walked the rows cache a
  dozen times per batch and took a third of the CPU;
- batches of 20,000 events (:data:`DEFAULT_BATCH_SIZE`): files in progress touch most
  batches, and each time their rows are compared and rewritten;
- the rows of recently touched case files stay in memory between batches, up to a
  million rows in all (:data:`DEFAULT_CACHED_ROWS`; valid because of the compare-and-set:
  nobody else can have changed them), and the stored rows of append-only tables (an
  audit trail) are never read at all;
- what an event class does in a projection (opener, end of file, handler) is looked up
  once per class, and all positions are locked and advanced with one statement each;
- a batch's writes run in a thread while the next projection's changes are computed.
  Only the rows the handlers put, removed or got are compared and written (one DELETE by
  primary key per table, then COPY), never the rest of a file's history: rewriting the
  touched files whole made a rebuild grow with the square of the log (issue 25).

The engine never reads a clock for business logic (queries take ``today``); it reads
one only to stamp ``updated_at`` in the positions table.

Storage is abstract here (:mod:`projections.storage`): ``adapters/views/store.py``
implements it on SQLite and PostgreSQL, and ``adapters/views/runner.py`` adapts the
library's notification log to :class:`~projections.storage.EventLog`.
"""

from __future__ import annotations

import gc
import queue
import threading
import time
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from domain.case_file import TAKEN_OVER_WITHOUT_STATE, CaseFile, taken_over_kind, upcast_state
from domain.personal import personal_fields
from projections.errors import (
    InconsistentLog,
    ProjectionError,
    ReadModelFailed,
    ReadModelNewer,
    UnknownProjection,
    ViewsRowRefused,
)
from projections.positions import (
    PositionsSql,
    StoredPosition,
    read_generations,
    read_positions,
)
from projections.projection import TOTALS_COUNT, CaseRows, Handler, Opener, Projection, Table
from projections.storage import CaseHistoryLog, DecodingEventLog, EventLog, ViewsWriter
from projections.table_sql import TableSql
from runtime.garbage_collection import collect_and_freeze, collection_paused

DEFAULT_BATCH_SIZE: Final = 20_000
"""Notifications per batch (and per transaction) of a rebuild or catch-up: large enough
that one commit is spread over thousands of events and that a file in progress is
rewritten once for many of its events (files in progress touch most batches; against
5,000 a rebuild copied a quarter fewer rows, compared fewer files and ran 1.4x faster),
small enough that memory stays flat (it is bounded by the batch, not by the log)."""

DEFAULT_CACHED_ROWS: Final = 1_000_000
"""Rows an engine remembers between batches, shared out evenly among its projections
(each file's least recently used go first): files in progress touch many batches, and
their rows need not be read again. Bounded by rows, not by files: files' rows differ a
hundredfold, and a bound of 5,000 files per read model let a rebuild re-read most files
for every batch once an office had more files in progress than that (at 4.7 million
events it spent 59 % of its time so; issue 25). A row remembered costs about 650 bytes
(its stored values and its row object; wide rows more), so an engine holds about 0.65 GB
of them at most: a rebuild of one read model may use all of it (at 4.5 million events a
rebuild's process peaked at 1.0 to 1.4 GB in all), the runner following all 19 about
52,000 rows each."""


class _PositionMoved(ProjectionError):
    """Another engine committed a batch of this projection first (compare-and-set)."""


# --------------------------------------------------------------------- progress


@dataclass(frozen=True)
class Progress:
    """How far a catch-up or rebuild has come."""

    done: int
    """Notifications processed in this run."""
    total: int
    """Notifications this run set out to process (head - start at the start)."""
    position: int
    head: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class BatchResult:
    read: int
    """Notifications read (only those some projection handles)."""
    advanced: int
    """How far the positions moved: notifications processed, skipped ones included
    (0: nothing new)."""
    applied: int
    """Events handed to at least one projection's handlers."""
    position: int
    """The lowest position of the engine's projections afterwards."""
    conflict: bool = False
    """Another engine had committed this batch first: nothing written, positions re-read."""


# ----------------------------------------------------------------------- engine

_REGISTRY_EVENTS: Final[tuple[type[Any], ...]] = (
    CaseFile.TransferredToOffice,
    CaseFile.HandOverReturned,
    CaseFile.Closed,
)


@dataclass(frozen=True)
class _Batch:
    """Notifications read and decoded: per projection the events it handles."""

    after: int
    until: int
    read: int
    full: bool
    """As many as a batch holds: more are likely waiting."""
    last_id: int
    """Where the positions move: the last notification read, or ``until`` when fewer
    than a batch came back (everything up to it has been seen)."""
    per_projection: list[list[tuple[int, Any, str]]]
    last_recorded_at: datetime | None


class _Prefetch:
    """Reads and decodes the next batch in a thread while the current one is applied:
    it runs while the engine's thread waits for its writes and commit."""

    def __init__(self, load: Callable[[int, int], _Batch], after: int, until: int) -> None:
        self.after = after
        self.until = until
        self._batch: _Batch | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(load,), name="akte-projections-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, load: Callable[[int, int], _Batch]) -> None:
        try:
            self._batch = load(self.after, self.until)
        except BaseException as error:  # handed over to the engine's thread
            self._error = error

    def result(self) -> _Batch:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._batch is not None
        return self._batch


class _WriteBehind:
    """Runs a batch's writes, in order, in a thread of their own, while the engine goes on
    computing the next projection's changes (the writes mostly wait on the store).

    All writes go through the one writer connection, inside the batch's transaction;
    leaving the block waits for them and re-raises the first failure (the transaction then
    rolls back, so a failed write never commits)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], str | None] | None
        ] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._error_owner: str | None = None
        self._cancelled = False
        self.owner: str | None = None
        """The read model whose writes are being submitted (named when they fail)."""
        self._thread = threading.Thread(
            target=self._run, name="akte-projections-write", daemon=True
        )

    def __enter__(self) -> _WriteBehind:
        self._thread.start()
        return self

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        if self._error is not None:
            self._raise()
        self._jobs.put((function, args, self.owner))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._cancelled:
                function, args, owner = job
                try:
                    function(*args)
                except BaseException as error:  # handed over to the engine's thread
                    self._error = error
                    self._error_owner = owner

    def _raise(self) -> None:
        error, owner = self._error, self._error_owner
        assert error is not None
        if owner is not None and _is_refusal(error):
            # The store refused one read model's rows: the same batch would fail again.
            raise ReadModelFailed(owner, None, _refusal_reason(error)) from None
        raise error

    def __exit__(self, *exc: object) -> None:
        # The batch failed in the engine's thread: what is queued would be rolled back.
        self._cancelled = exc[0] is not None
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            self._raise()


def _is_refusal(error: BaseException) -> bool:
    """A write that fails the same way every time: a refused row or a value the driver
    cannot convert (an integer out of range), not a store that went away."""
    if isinstance(error, ViewsRowRefused):
        return True
    return isinstance(error, Exception) and not isinstance(error, ProjectionError | OSError)


def _refusal_reason(error: BaseException) -> str:
    # Our own messages name stores and error types; a foreign one may quote values.
    return str(error) if isinstance(error, ViewsRowRefused) else type(error).__name__


COLLECT_AFTER_ALLOCATIONS: Final = 200_000
"""While the collector is paused: collect once the objects it tracks have grown by this
many (the rows cache filling up, or garbage in reference cycles, which only it frees)."""


def _collector_paused() -> AbstractContextManager[None]:
    """Pause Python's automatic (cyclic) garbage collection while batches are processed.

    A batch allocates hundreds of thousands of objects and the rows cache keeps hundreds
    of thousands alive; with the default thresholds the collector ran a dozen times per
    batch, walking them again and again, and took about a third of a rebuild's CPU.
    Nothing the engine builds needs it (no reference cycles: reference counting frees
    every batch), so while paused the engine collects only when the tracked objects have
    grown by :data:`COLLECT_AFTER_ALLOCATIONS` (:func:`_collect_when_grown`), and memory
    stays as flat as before. What survives such a collection (the remembered rows, and
    whatever else the process holds) is frozen (``gc.freeze``): the next collections walk
    only what came after it. Unfrozen, a rebuild's full collections walked every
    remembered row each time, a quarter of a ``statistics`` rebuild at 2.2 million events,
    and every object of the process beside it (25 million, 2.95 GB, made that rebuild
    1.4 times slower; docs/performance/state.md). Frozen objects are still freed when their
    last reference goes; only garbage in reference cycles among them waits, for the end of
    the pause. The switch is process-wide, so the pause is the process's one counted pause
    (:mod:`runtime.garbage_collection`), shared with the store transactions of writers:
    collection resumes and everything is unfrozen when the last pause ends."""
    return collection_paused()


def _collect_when_grown() -> None:
    # The first count is allocations minus deallocations of tracked objects since the
    # last collection: it grows only with what stays alive.
    if gc.get_count()[0] > COLLECT_AFTER_ALLOCATIONS:
        collect_and_freeze()


_Step = tuple[Opener | None, str | None, Handler | None]
_ENDINGS: Final[Mapping[type[Any], str]] = types.MappingProxyType(
    {
        CaseFile.TransferredToOffice: "transferred",
        # The other office returned the hand-over: the file is this office's again.
        CaseFile.HandOverReturned: "active",
        CaseFile.Closed: "closed",
    }
)
_PART: Final = CaseFile.PartTakenOver


def _unreadable_part(case: CaseRows, event: CaseFile.PartTakenOver) -> None:
    """A part that could not be read as its source event reaches the read models that see
    parts as this handler: they stop on it (and only they), naming it."""
    msg = (
        f"the part taken over at version {event.originator_version} "
        f"({event.source_kind}) cannot be read as the event it was"
    )
    raise InconsistentLog(msg)


def _source_event(part: CaseFile.PartTakenOver) -> Any:
    """The event a part was at the previous office, on this file, as the read models read
    events: its personal fields absent (the engine's events keep personal data sealed,
    and a part's ``personal`` is not there to be read either). Its business time, actor
    and fields are the original's. Like ``PartTakenOver.source_event`` otherwise, which
    needs the unsealed part."""
    kind = taken_over_kind(part.source_kind)
    event = object.__new__(kind)
    # Facts of an older class version read as the current class has them; personal
    # fields an upcaster adds stay absent, like the part's own.
    facts = upcast_state(kind, part.facts, part.source_class_version)
    personal = personal_fields(kind)
    values: dict[str, Any] = {
        "originator_id": part.originator_id,
        "originator_version": part.source_version,
        "timestamp": part.source_recorded_at,
        "by": part.source_by,
        "at": part.source_at,
        **{name: value for name, value in facts.items() if name not in personal},
    }
    object.__setattr__(event, "__dict__", values)
    return event


def _step(projection: Projection, event_class: type[Any]) -> _Step:
    if event_class is _PART and projection.sees_taken_over_parts:
        return (None, None, _unreadable_part)
    return (
        projection.openers.get(event_class),
        _ENDINGS.get(event_class),
        projection.handlers.get(event_class),
    )


class ProjectionEngine:
    """Keeps a group of projections up to date from the log, through one writer.

    Not thread-safe: one engine per thread. Errors are :class:`ProjectionError`s.
    """

    def __init__(
        self,
        log: EventLog,
        writer: ViewsWriter,
        projections: Sequence[Projection],
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
        cached_rows: int = DEFAULT_CACHED_ROWS,
    ) -> None:
        """``cached_rows``: how many rows to remember between batches, in all (0: read
        them every time). Safe because a batch commits only while the position is the one
        this engine last wrote: then nobody else changed the rows."""
        if batch_size < 1:
            msg = "batch_size must be at least 1"
            raise ValueError(msg)
        names = [projection.name for projection in projections]
        if len(set(names)) != len(names):
            msg = "each projection may be given only once"
            raise ValueError(msg)
        self.log = log
        self.writer = writer
        self.projections = tuple(projections)
        self.batch_size = batch_size
        self._clock = clock
        self._positions: dict[str, int] = {}
        self._serving: dict[str, int] = {}
        """Per projection, the generation whose tables this engine writes (see
        :mod:`projections.generations`): a switch to another one is a moved position."""
        self._interested: dict[type[Any], tuple[int, ...]] = {}
        for index, projection in enumerate(self.projections):
            # Transfer and closure are case-file events: only case-file read models track them.
            lifecycle = _REGISTRY_EVENTS if CaseFile.Opened in projection.openers else ()
            # Parts of a taken-over file are read for the read models that see them as
            # their source events (unwrapped in _distribute_part).
            parts = (_PART,) if projection.sees_taken_over_parts else ()
            for event_class in (*projection.openers, *lifecycle, *projection.handlers, *parts):
                existing = self._interested.get(event_class, ())
                if index not in existing:
                    self._interested[event_class] = (*existing, index)
        self._sees_parts: frozenset[int] = frozenset(
            index
            for index, projection in enumerate(self.projections)
            if projection.sees_taken_over_parts
        )
        # Per projection, what an event of each class it receives does: open a file
        # (its opener), end one (its new status), and its handler.
        self._steps: dict[str, dict[type[Any], _Step]] = {
            projection.name: {
                event_class: _step(projection, event_class)
                for event_class, interested in self._interested.items()
                if index in interested
            }
            for index, projection in enumerate(self.projections)
        }
        self._sql: dict[str, TableSql] = {}
        self._positions_sql = PositionsSql(writer)
        self._prepared = False
        self._cached_rows = max(0, cached_rows) // len(self.projections) if projections else 0
        """Per projection."""
        # Per projection, the case files of recent batches, least recently used first,
        # with the number of rows each holds and their sum.
        self._cache: dict[str, dict[str, CaseRows]] = {p.name: {} for p in self.projections}
        self._cache_sizes: dict[str, dict[str, int]] = {p.name: {} for p in self.projections}
        self._cache_rows: dict[str, int] = {p.name: 0 for p in self.projections}
        # Per projection, the tables whose stored rows a batch reads (not append-only).
        self._read_tables: dict[str, tuple[Table[Any], ...]] = {
            p.name: tuple(table for table in p.tables if not table.append_only)
            for p in self.projections
        }
        self._prefetch: _Prefetch | None = None
        self._topics: tuple[str, ...] | None = None
        self._failed_at: int | None = None
        """The notification id of the event being applied (named when a handler fails)."""

    # -------------------------------------------------------------- public API

    def positions(self) -> dict[str, int]:
        """Each projection's position as of this engine's last read or commit."""
        self._prepare()
        return dict(self._positions)

    def prepare(self) -> None:
        """Create missing tables and rebuild projections of another version (position 0)."""
        self._prepared = False
        self._prepare()

    def reset(self, names: Iterable[str] | None = None) -> None:
        """Drop and recreate the tables of the named projections (all: None), position 0."""
        chosen = self._chosen(names)
        self._prepare()
        with self._writing():
            self.writer.lock_schema()
            for projection in chosen:
                self._reset(projection)
        for projection in chosen:
            self._positions[projection.name] = 0

    def rebuild(
        self,
        *,
        names: Iterable[str] | None = None,
        until: int | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> int:
        """Rebuild from scratch (reset, then catch up); returns notifications processed.

        Ends by refreshing the planner's statistics of the rebuilt tables: fresh tables
        filled in bulk have none, and without them PostgreSQL (until autovacuum comes by)
        and SQLite (never on its own) plan a full scan and sort where an index would do.
        """
        chosen = None if names is None else list(names)
        self._prepare()
        self.reset(chosen)
        done = self.catch_up(until=until, progress=progress)
        self.refresh_planner_statistics(chosen)
        return done

    def refresh_planner_statistics(self, names: Iterable[str] | None = None) -> None:
        """``ANALYZE`` the tables of the named projections (all: None)."""
        chosen = self._chosen(names)
        with self._writing():
            for projection in chosen:
                for schema in projection.schemas:
                    self.writer.execute(f"ANALYZE {self.writer.table(schema.name)}")

    def catch_up(
        self,
        *,
        until: int | None = None,
        max_batches: int | None = None,
        progress: Callable[[Progress], None] | None = None,
    ) -> int:
        """Process batches up to the head of the log as it was at the start (or ``until``).

        Returns the notifications processed (skipped ones included); ``progress`` is
        called after every batch.
        """
        self._prepare()
        start = self._low()
        head = self.log.head()
        target = head if until is None else min(until, head)
        with _collector_paused():
            return self._catch_up(start, head, target, max_batches, progress)

    def _catch_up(
        self,
        start: int,
        head: int,
        target: int,
        max_batches: int | None,
        progress: Callable[[Progress], None] | None,
    ) -> int:
        started = time.perf_counter()
        done = 0
        batches = 0
        while self._low() < target and (max_batches is None or batches < max_batches):
            result = self.process_batch(until=target)
            batches += 1
            if result.conflict:
                continue
            if result.advanced == 0:
                break
            done += result.advanced
            if progress is not None:
                progress(
                    Progress(
                        done=done,
                        total=max(target - start, done),
                        position=result.position,
                        head=head,
                        seconds=time.perf_counter() - started,
                    )
                )
        return done

    def process_batch(self, *, until: int | None = None) -> BatchResult:
        """Read and apply one batch; ``advanced == 0``: every projection is at the head.

        Only the events some projection handles are read. The head is looked up first:
        ids commit in order, so when fewer than a batch come back, every notification up
        to the head has been seen and the positions move to the head.
        """
        with _collector_paused():
            result = self._process_batch(until)
            _collect_when_grown()
            return result

    def _process_batch(self, until: int | None) -> BatchResult:
        self._prepare()
        low = self._low()
        head = self.log.head()
        target = head if until is None else min(until, head)
        if low >= target:
            return BatchResult(0, 0, 0, low)
        batch = self._next_batch(low, target)
        if batch.full:
            # More is likely waiting: read and decode it while this batch is applied.
            self._prefetch = _Prefetch(self._load_batch, batch.last_id, target)
        last_id = batch.last_id
        per_projection, last_recorded_at = batch.per_projection, batch.last_recorded_at
        applied = 0
        remembered: list[tuple[str, dict[str, CaseRows]]] = []
        pending: list[tuple[Projection, list[tuple[int, Any, str]], dict[str, CaseRows]]] = []
        try:
            with self._writing():
                # Read what the batch needs first; then, while a projection's changes are
                # written in the background, the next one is computed.
                behind = [
                    (index, projection)
                    for index, projection in enumerate(self.projections)
                    if self._positions[projection.name] < last_id
                ]
                names = [projection.name for _, projection in behind]
                stored = self._positions_sql.lock(names)
                for index, projection in behind:
                    position = self._positions[projection.name]
                    if stored.get(projection.name) != (position, self._serving[projection.name]):
                        raise _PositionMoved(projection.name)
                    events = per_projection[index]
                    if events and events[0][0] <= position:
                        events = [item for item in events if item[0] > position]
                    applied += len(events)
                    pending.append((projection, events, self._gather_cases(projection, events)))
                with _WriteBehind() as write_behind:
                    for projection, events, cases in pending:
                        write_behind.owner = projection.name
                        self._apply(projection, events, cases, write_behind)
                        remembered.append((projection.name, cases))
                    write_behind.owner = None
                    write_behind.submit(
                        self._positions_sql.advance, names, last_id, last_recorded_at, self._clock()
                    )
        except _PositionMoved:
            self._forget()
            self._load_positions()
            return BatchResult(batch.read, 0, 0, self._low(), conflict=True)
        except ReadModelFailed as failed:
            self._forget()
            self._prepared = False
            if failed.position is None:
                # Refused rows of a batch of one event: that event is the one.
                lists = [listed for p, listed, _ in pending if p.name == failed.name]
                if len(lists) == 1 and len(lists[0]) == 1:
                    raise ReadModelFailed(failed.name, lists[0][0][0], failed.reason) from None
            raise
        except BaseException:
            # The transaction rolled back: what this engine believes must be re-read.
            self._forget()
            self._prepared = False
            raise
        for projection in self.projections:
            self._positions[projection.name] = max(self._positions[projection.name], last_id)
        self._remember(remembered)
        return BatchResult(batch.read, last_id - low, applied, self._low())

    def stored_positions(self) -> list[StoredPosition]:
        """The positions table as stored (all projections, not only this engine's)."""
        return read_positions(self.writer)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table of the engine's projections, sorted (for comparisons)."""
        self._prepare()
        dumped: dict[str, list[tuple[Any, ...]]] = {}
        for projection in self.projections:
            for table in projection.all_tables:
                sql = self._table_sql(table)
                rows = self.writer.fetch(f"SELECT {', '.join(sql.columns)} FROM {sql.qualified}")
                dumped[table.name] = sorted((sql.decode(row) for row in rows), key=_sortable_row)
                for totals in sql.totals:
                    rows = self.writer.fetch(
                        f"SELECT {', '.join(totals.columns)} FROM {totals.qualified} "
                        f"WHERE {TOTALS_COUNT} <> 0"
                    )
                    dumped[totals.name] = sorted(
                        (totals.decode(row) for row in rows), key=_sortable_row
                    )
        return dumped

    # ---------------------------------------------------------------- internals

    def _chosen(self, names: Iterable[str] | None) -> list[Projection]:
        if names is None:
            return list(self.projections)
        wanted = set(names)
        unknown = wanted - {projection.name for projection in self.projections}
        if unknown:
            raise UnknownProjection(unknown)
        return [projection for projection in self.projections if projection.name in wanted]

    def _writing(self) -> AbstractContextManager[None]:
        return self.writer.transaction()

    def _prepare(self) -> None:
        if self._prepared:
            return
        with self._writing():
            self.writer.lock_schema()
            self._positions_sql.create()
            stored = {p.name: p for p in read_positions(self.writer)}
            self._refuse_newer(stored)
            for projection in self.projections:
                found = stored.get(projection.name)
                missing = any(
                    not self.writer.table_exists(schema.name) for schema in projection.schemas
                )
                if found is None or found.version != projection.version or missing:
                    self._reset(projection)
        self._load_positions()
        self._prepared = True

    def _reset(self, projection: Projection) -> None:
        self._forget([projection.name])
        for schema in projection.schemas:
            self.writer.drop_table(schema.name)
            self.writer.create_table(schema)
        self._positions_sql.reset(projection.name, projection.version, self._clock())

    def _refuse_newer(self, stored: Mapping[str, StoredPosition]) -> None:
        """A newer version serves (a newer release rebuilt it beside and switched): its
        rows are not this code's to reset or to change."""
        newer = [
            projection.name
            for projection in self.projections
            if (found := stored.get(projection.name)) is not None
            and found.version > projection.version
        ]
        if newer:
            raise ReadModelNewer(newer)

    def _load_positions(self) -> None:
        self._forget()
        stored = {p.name: p for p in read_positions(self.writer)}
        self._refuse_newer(stored)
        generations = read_generations(self.writer)
        for projection in self.projections:
            found_generation = generations.get(projection.name)
            self._serving[projection.name] = found_generation.serving if found_generation else 0
        for projection in self.projections:
            found = stored.get(projection.name)
            if found is None or found.version != projection.version:
                # Reset by an engine of another version meanwhile: prepare again.
                self._prepared = False
                self._positions[projection.name] = 0
            else:
                self._positions[projection.name] = found.position

    def _low(self) -> int:
        return min(self._positions[p.name] for p in self.projections)

    def _head(self) -> int:
        return self.log.head()

    def _handled_topics(self) -> tuple[str, ...]:
        if self._topics is None:
            self._topics = tuple(sorted(self.log.topic_of(cls) for cls in self._interested))
        return self._topics

    def _next_batch(self, after: int, until: int) -> _Batch:
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None and prefetch.after == after and prefetch.until == until:
            return prefetch.result()
        return self._load_batch(after, until)

    def _load_batch(self, after: int, until: int) -> _Batch:
        topics = self._handled_topics()
        log = self.log
        if isinstance(log, DecodingEventLog):
            items = log.read_events(after, self.batch_size, until=until, topics=topics)
        else:
            items = []
            for notification in log.read(after, self.batch_size, until=until, topics=topics):
                event = log.decode(notification)
                items.append((notification.id, event, str(event.originator_id)))
        full = len(items) == self.batch_size
        last_id = items[-1][0] if full else until
        per_projection, last_recorded_at = self._distribute(items, last_id)
        return _Batch(after, until, len(items), full, last_id, per_projection, last_recorded_at)

    def _forget(self, names: Iterable[str] | None = None) -> None:
        for name in self._cache if names is None else names:
            self._cache[name].clear()
            self._cache_sizes[name].clear()
            self._cache_rows[name] = 0
        self._prefetch = None

    def _remember(self, remembered: list[tuple[str, dict[str, CaseRows]]]) -> None:
        """After a commit: keep the batch's case files (their rows as now stored), and let
        the least recently used go until the projection's rows fit its share."""
        budget = self._cached_rows
        if budget <= 0:
            return
        for name, cases in remembered:
            cache = self._cache[name]
            sizes = self._cache_sizes[name]
            held = self._cache_rows[name]
            pop = cache.pop
            for case_id, case in cases.items():
                pop(case_id, None)  # re-inserted last: most recently used
                # Its record and its stored rows (the row objects of the tables a handler
                # asked for are about as many again).
                size = 1 + sum(map(len, case._loaded.values()))
                held += size - sizes.get(case_id, 0)
                sizes[case_id] = size
            cache.update(cases)
            if held > budget:
                going = []
                for case_id in cache:
                    if held <= budget:
                        break
                    going.append(case_id)
                    held -= sizes.pop(case_id)
                for case_id in going:
                    del cache[case_id]
            self._cache_rows[name] = held

    def _distribute(
        self, items: Sequence[tuple[int, Any, str]], last_id: int
    ) -> tuple[list[list[tuple[int, Any, str]]], datetime | None]:
        """Per projection the events it handles (notification id, event, case id as
        text), each decoded once for all. Also the recorded time of notification
        ``last_id`` (for the lag in seconds)."""
        per_projection: list[list[tuple[int, Any, str]]] = [[] for _ in self.projections]
        interested_by_class = self._interested
        last_event: Any = None
        last_handled = 0
        for item in items:
            interested = interested_by_class.get(type(item[1]))
            if interested is None:
                continue  # a renamed topic's alias may match more than the filter wanted
            last_handled = item[0]
            last_event = item[1]
            if type(last_event) is _PART:
                self._distribute_part(item, interested, per_projection)
                continue
            for index in interested:
                per_projection[index].append(item)
        if last_handled != last_id:
            # The batch ends with notifications no projection handles: look at the last.
            last_event = self._event_at(last_id)
        recorded_at = getattr(last_event, "timestamp", None)
        return per_projection, recorded_at if isinstance(recorded_at, datetime) else None

    def _distribute_part(
        self,
        item: tuple[int, Any, str],
        interested: tuple[int, ...],
        per_projection: list[list[tuple[int, Any, str]]],
    ) -> None:
        """A part taken over from another office's file: as its source event (rebuilt
        once) to the read models that see parts so and handle that event; as itself to
        any that handle parts as such."""
        part: CaseFile.PartTakenOver = item[1]
        source: Any = None
        unreadable = False
        for index in interested:
            if index not in self._sees_parts:
                per_projection[index].append(item)
                continue
            if part.source_kind in TAKEN_OVER_WITHOUT_STATE:
                continue  # history only: the other file's opening, take-over or end
            if source is None and not unreadable:
                try:
                    source = _source_event(part)
                except Exception:
                    # Not here (the batch is shared): its read models stop on it in _apply.
                    unreadable = True
            if unreadable:
                per_projection[index].append(item)
            elif index in self._interested.get(type(source), ()):
                per_projection[index].append((item[0], source, item[2]))

    def _event_at(self, notification_id: int) -> Any:
        """The event of notification ``notification_id`` (None when there is none)."""
        log = self.log
        if isinstance(log, DecodingEventLog):
            events = log.read_events(notification_id - 1, 1, until=notification_id)
            return events[0][1] if events else None
        found = log.read(notification_id - 1, 1, until=notification_id)
        return log.decode(found[0]) if found else None

    def _table_sql(self, table: Table[Any]) -> TableSql:
        sql = self._sql.get(table.name)
        if sql is None:
            sql = self._sql[table.name] = TableSql(self.writer, table)
        return sql

    def _gather_cases(
        self, projection: Projection, events: list[tuple[int, Any, str]]
    ) -> dict[str, CaseRows]:
        """The case files the events touch, with their rows (remembered or read)."""
        cases: dict[str, CaseRows] = {}
        to_read: list[str] = []
        cache = self._cache[projection.name]
        tables = projection.tables
        openers = projection.openers
        for _, event, case_id in events:
            if case_id in cases:
                continue
            remembered = cache.get(case_id)
            if remembered is not None:
                cases[case_id] = remembered
                continue
            cases[case_id] = CaseRows(case_id, tables)
            # A file opened in this batch has no rows yet: nothing to read for it.
            if type(event) not in openers:
                to_read.append(case_id)
        self._load(projection, cases, to_read)
        return cases

    def _apply(
        self,
        projection: Projection,
        events: list[tuple[int, Any, str]],
        cases: dict[str, CaseRows],
        write_behind: _WriteBehind,
    ) -> None:
        """Apply the events to the projection's rows and hand the changes to be written."""
        if not events:
            return
        try:
            self._apply_events(projection, events, cases)
        except ReadModelFailed:
            raise
        except InconsistentLog as error:
            raise ReadModelFailed(projection.name, self._failed_at, str(error)) from None
        except ProjectionError:
            raise
        except Exception as error:
            # A handler's bug on this event: its message may quote values, the type may not.
            raise ReadModelFailed(projection.name, self._failed_at, type(error).__name__) from None
        try:
            self._write(projection, cases, write_behind)
        except ProjectionError:
            raise
        except Exception as error:
            # Rows that cannot be turned into values: which event made them is not known.
            raise ReadModelFailed(projection.name, None, type(error).__name__) from None

    def _apply_events(
        self,
        projection: Projection,
        events: list[tuple[int, Any, str]],
        cases: dict[str, CaseRows],
    ) -> None:
        steps = self._steps[projection.name]
        active_only = projection.active_cases_only
        for position, event, case_id in events:
            self._failed_at = position
            case = cases[case_id]
            opener, ending, handler = steps[type(event)]
            if opener is not None:
                case.office_id, case.reference = opener(event)
                case.status = "active"
            elif not case.status:
                msg = (
                    f"projection {projection.name}: event {type(event).__name__} (version "
                    f"{event.originator_version}) of a case file whose Opened event it has "
                    "not seen"
                )
                raise InconsistentLog(msg)
            elif ending is not None:
                case.status = ending
                if active_only and ending == "active":
                    # The other office returned the hand-over: the file's open items
                    # come back, as its history up to the return makes them.
                    self._replay(projection, case, event.originator_version)
                elif active_only:
                    case.clear()
                    continue
            elif active_only and case.status != "active":
                continue
            if handler is not None:
                handler(case, event)

    def _replay(self, projection: Projection, case: CaseRows, before_version: int) -> None:
        """A file that came back from another office (``HandOverReturned``): its rows in
        a read model of active files' open items, rebuilt from its events before the
        return, as if it had never left (what reached the file while it was away, the
        domain allowed: it is the file's now). Needs a log that reads one file's events
        (:class:`~projections.storage.CaseHistoryLog`); without one the rows stay gone."""
        log = self.log
        if not isinstance(log, CaseHistoryLog):
            return
        index = self.projections.index(projection)
        steps = self._steps[projection.name]
        items: list[tuple[int, Any, str]] = []
        for event in log.case_history(case.case_id, before_version):
            interested = self._interested.get(type(event))
            if interested is None or index not in interested:
                continue
            item = (0, event, case.case_id)
            if type(event) is _PART:
                per_projection: list[list[tuple[int, Any, str]]] = [[] for _ in self.projections]
                self._distribute_part(item, (index,), per_projection)
                items += per_projection[index]
            else:
                items.append(item)
        case.clear()
        for _, event, _ in items:
            step = steps.get(type(event))
            if step is None or step[1] is not None:
                continue  # an earlier end and return: history only here
            handler = step[2]
            if handler is not None:
                handler(case, event)

    def _load(self, projection: Projection, cases: dict[str, CaseRows], ids: list[str]) -> None:
        if not ids:
            return
        condition, param = self.writer.case_in("case_id", ids)
        registry_sql = self._table_sql(projection.registry)
        for raw in self.writer.fetch(registry_sql.select_prefix + condition, (param,)):
            values = registry_sql.decode(raw)
            case_id, office_id, reference, status = values
            case = cases[case_id]
            case.office_id = office_id
            case.reference = reference
            case.status = status
            case._record = (case_id, office_id, reference, status)
        for table in self._read_tables[projection.name]:
            sql = self._table_sql(table)
            key_of = sql.key_of_values
            for raw in self.writer.fetch(sql.select_prefix + condition, (param,)):
                values = sql.decode(raw)
                cases[values[0]]._loaded.setdefault(table, {})[key_of(values)] = values

    def _write(
        self, projection: Projection, cases: dict[str, CaseRows], write_behind: _WriteBehind
    ) -> None:
        """Write back the rows the handlers changed: delete the stored rows that changed or
        went (one statement per table, by primary key), insert the new and changed ones
        (COPY on PostgreSQL).

        Only rows a handler put, removed or got (:class:`CaseRows` notes their keys) are
        compared, never the file's other rows: a file's history grows with the log, and
        comparing and rewriting all of it each batch it appears in made a rebuild grow
        with the square of the log (issue 25). A file all of whose rows went is deleted by
        its id."""
        registry = projection.registry
        records_gone: list[str] = []
        records: list[tuple[Any, ...]] = []
        tables = projection.tables
        cleared: dict[Table[Any], list[str]] = {table: [] for table in tables}
        gone: dict[Table[Any], list[tuple[Any, ...]]] = {table: [] for table in tables}
        inserts: dict[Table[Any], list[tuple[Any, ...]]] = {table: [] for table in tables}
        removed: dict[Table[Any], list[tuple[Any, ...]]] = {table: [] for table in tables}
        for case_id, case in cases.items():
            record = (case_id, case.office_id, case.reference, case.status)
            stored = case._record
            if stored != record:
                if stored is not None:
                    records_gone.append(case_id)
                records.append(record)
                case._record = record  # as stored once the batch commits
            dirty = case._dirty
            whole = case._whole
            if not dirty and not whole:
                continue  # no handler changed a row
            current_tables = case._rows
            loaded = case._loaded
            for table in whole:
                current = current_tables[table]
                # What is stored once the batch commits (forgotten if it does not).
                before = loaded.get(table)
                if before is None:
                    before = loaded[table] = {}
                if not current:
                    if before:
                        cleared[table].append(case_id)
                        removed[table].extend(before.values())
                        before.clear()
                    continue
                _compare(
                    case_id,
                    table,
                    current,
                    before,
                    current.keys() | before.keys(),
                    gone[table],
                    inserts[table],
                    removed[table],
                )
            for table, keys in dirty.items():
                if table in whole:
                    continue
                before = loaded.get(table)
                if before is None:
                    before = loaded[table] = {}
                _compare(
                    case_id,
                    table,
                    current_tables[table],
                    before,
                    keys,
                    gone[table],
                    inserts[table],
                    removed[table],
                )
                if table.append_only:
                    # Written, and never read again: a remembered file keeps none of it.
                    del current_tables[table], loaded[table]
            dirty.clear()
            whole.clear()
        self._submit_writes(registry, records_gone, [], records, write_behind)
        for table in tables:
            sql = self._table_sql(table)
            self._submit_writes(table, cleared[table], gone[table], inserts[table], write_behind)
            for totals_sql in sql.totals:
                differences: dict[tuple[Any, ...], list[int]] = {}
                totals_sql.add(differences, removed[table], -1)
                totals_sql.add(differences, inserts[table], +1)
                write_behind.submit(totals_sql.write, self.writer, differences)

    def _submit_writes(
        self,
        table: Table[Any],
        cleared: list[str],
        gone: list[tuple[Any, ...]],
        added: list[tuple[Any, ...]],
        write_behind: _WriteBehind,
    ) -> None:
        """``cleared``: files all of whose rows go; ``gone``: primary keys of rows that go
        (changed ones come back in ``added``)."""
        writer = self.writer
        sql = self._table_sql(table)
        if not table.key and gone:
            # One row per file: its key is the file's id.
            cleared = [*cleared, *(key[0] for key in gone)]
            gone = []
        if cleared:
            condition, param = writer.case_in("case_id", cleared)
            write_behind.submit(
                writer.execute, f"DELETE FROM {sql.qualified} WHERE {condition}", (param,)
            )
        if gone:
            write_behind.submit(sql.delete_keys, writer, gone)
        if added:
            write_behind.submit(sql.insert, writer, added)


def _compare(
    case_id: str,
    table: Table[Any],
    current: Mapping[tuple[Any, ...], Any],
    before: dict[tuple[Any, ...], tuple[Any, ...]],
    keys: Iterable[tuple[Any, ...]],
    gone: list[tuple[Any, ...]],
    added: list[tuple[Any, ...]],
    removed: list[tuple[Any, ...]],
) -> None:
    """Compare the rows of ``keys`` with the stored ones (``before``, brought up to date):
    the primary keys of stored rows that changed or went to ``gone`` and their values to
    ``removed``, the values of new and changed rows to ``added``."""
    values = table.values
    for key in keys:
        row = current.get(key)
        old = before.get(key)
        if row is None:
            if old is not None:
                gone.append((case_id, *key))
                removed.append(old)
                del before[key]
            continue
        new = values(row)
        if new == old:
            continue
        if table.key and table.key_of(row) != key:
            # Rows are written back by the key they were filed under: a handler that
            # changed a key field in place would leave the old row and duplicate the new.
            msg = f"{table.name}: a handler changed the key of a row in place"
            raise InconsistentLog(msg)
        if old is not None:
            gone.append((case_id, *key))
            removed.append(old)
        added.append(new)
        before[key] = new


def _sortable_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # None sorts before every value of its column.
    return tuple((value is not None, value) for value in row)
