"""The projection engine: read models of the event log, kept up to date batch by batch.

A read model is a :class:`Projection`: a name, its tables (rows are dataclasses whose
fields become columns) and one handler per event class it cares about. The engine reads
the notification log in batches, decodes only the events some projection handles, loads
the rows of the case files the batch touches, lets the handlers change those rows in
memory and writes back only what changed, together with the projection's position, in
ONE transaction per batch. A crash at any moment therefore leaves each projection at the
end of a whole batch: its next run continues there, and no event is lost or counted
twice. Rebuilding is: drop and recreate the tables, position 0, catch up.

Every row names its case file's office and file number (``office_id``, ``reference``),
but only ``CaseFile.Opened`` carries them. So each projection keeps its own small table
of case files (``<projection>_cases``), filled from ``Opened``: a projection never needs
another one to rebuild. Events of other aggregates (file-number claims) are skipped.

Positions compare-and-set: a batch commits only if the projection's stored position is
still the one the batch started from. Two engines writing the same projection (which
the runner's locks prevent anyway) thus cannot both apply a batch: the loser rolls back,
reloads its position and goes on from there.

Where the time goes, and what keeps it short (``bin/bench-projections``, figures in
``benchmarks/PROJECTIONS.md``). A rebuild is bound by Python CPU: all of the engine's
threads share one core (the GIL), while the database's side of the writes runs on
another. Measured on PostgreSQL, about 15 µs of the process's CPU per event (it was
39 µs): reading and decoding 3.5 (in bulk through :class:`DecodingEventLog` where the log
offers it: tuples of only the needed columns, orjson; unsealing personal data, where
the service seals it, adds about 3.5 more), the handlers with their row lookups 3.5,
comparing each touched file's rows with the stored ones 2, gathering and remembering
files 1.3, COPY and DELETE 2, the rest in deallocation and threads. What keeps it there:
- only the events some projection handles are read (by topic) and decoded, once for
  all projections; the next batch is read in a thread while the current one is applied;
- Python's cyclic garbage collector is paused while batches are processed
  (:func:`_collector_paused`): with the default thresholds it walked the rows cache a
  dozen times per batch and took a third of the CPU;
- batches of 20,000 events (:data:`DEFAULT_BATCH_SIZE`): files in progress touch most
  batches, and each time their rows are compared and rewritten;
- the rows of the last few thousand case files stay in memory between batches (valid
  because of the compare-and-set: nobody else can have changed them);
- what an event class does in a projection (opener, end of file, handler) is looked up
  once per class, and all positions are locked and advanced with one statement each;
- a batch's writes run in a thread while the next projection's changes are computed.
  Changed files are rewritten whole (one DELETE per table, then COPY), which beats a
  statement per changed row.

The engine never reads a clock for business logic (queries take ``today``); it reads
one only to stamp ``updated_at`` in the positions table.

Storage is abstract here (:class:`ViewsStore`): ``adapters/views/store.py`` implements it
on SQLite and PostgreSQL, and ``adapters/views/runner.py`` adapts the library's
notification log to :class:`EventLog`.
"""

from __future__ import annotations

import dataclasses
import gc
import queue
import re
import threading
import time
import types
import typing
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from operator import attrgetter
from typing import Any, Final, Generic, Literal, Protocol, TypeVar

from domain.case_file import CaseFile

R = TypeVar("R")
E = TypeVar("E")

DEFAULT_BATCH_SIZE: Final = 20_000
"""Notifications per batch (and per transaction) of a rebuild or catch-up: large enough
that one commit is spread over thousands of events and that a file in progress is
rewritten once for many of its events (files in progress touch most batches; against
5,000 a rebuild copied a quarter fewer rows, compared fewer files and ran 1.4x faster),
small enough that memory stays flat (it is bounded by the batch, not by the log)."""

DEFAULT_CACHED_CASES: Final = 5000
"""Case files whose rows an engine remembers per projection (least recently used go):
files in progress touch many batches in a row, and their rows need not be read again."""

POSITIONS_TABLE: Final = "projection_positions"

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


# ----------------------------------------------------------------------- errors


class ProjectionError(Exception):
    """Base of every error the projection engine and the views store raise."""


class EventLogUnavailable(ProjectionError):
    """The event store could not be read; nothing was written to the views."""


class ViewsStoreUnavailable(ProjectionError):
    """The views store failed or could not be reached; the batch was rolled back."""


class ViewNotBuilt(ProjectionError):
    """A read model's tables do not exist yet: no runner has prepared them."""


class UnknownProjection(ProjectionError):
    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(f"no read model named {', '.join(sorted(names))}")


class ProjectionBusy(ProjectionError):
    """Another worker follows these read models (it holds their locks)."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(f"another worker follows {', '.join(sorted(names))}")
        self.names = sorted(names)


class InconsistentLog(ProjectionError):
    """The log holds an event the projection cannot place (e.g. for an unopened file)."""


class _PositionMoved(ProjectionError):
    """Another engine committed a batch of this projection first (compare-and-set)."""


# ---------------------------------------------------------------- storage protocol

ColumnType = Literal["text", "integer", "date", "timestamp"]
Dialect = Literal["sqlite", "postgres"]


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    nullable: bool


@dataclass(frozen=True)
class TableSchema:
    """A table as the views store creates it; ``name`` is logical (the store prefixes it)."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    indexes: tuple[tuple[str, ...], ...] = ()

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)


class ViewsSession(Protocol):
    """One connection to the views store (the SQL is the store's dialect)."""

    @property
    def dialect(self) -> Dialect: ...

    def table(self, name: str) -> str:
        """The quoted, qualified name of a logical table."""
        ...

    @property
    def param(self) -> str:
        """The parameter placeholder (``?`` or ``%s``)."""
        ...

    def encoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        """Python value -> stored value (``None`` when the driver needs no help)."""
        ...

    def decoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        """Stored value -> Python value (``None`` when the driver needs no help)."""
        ...

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def table_exists(self, name: str) -> bool: ...


class ViewsWriter(ViewsSession, Protocol):
    """The connection a runner writes through; it also holds the projections' locks."""

    def transaction(self) -> AbstractContextManager[None]: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert many rows into a logical table (COPY where the store has it)."""
        ...

    def create_table(self, schema: TableSchema) -> None: ...

    def drop_table(self, name: str) -> None: ...

    def lock_schema(self) -> None:
        """Serialise schema changes with other writers until the transaction ends."""
        ...

    def case_in(self, column: str, case_ids: Sequence[str]) -> tuple[str, Any]:
        """A condition ``column IN case_ids`` and its one parameter."""
        ...

    @property
    def lock_row_suffix(self) -> str:
        """``FOR UPDATE`` where a write transaction does not already exclude others."""
        ...

    def try_lock(self, name: str) -> bool:
        """Take the exclusive right to follow projection ``name`` (held until unlock)."""
        ...

    def unlock(self, name: str) -> None: ...

    def close(self) -> None: ...


class ViewsStore(Protocol):
    """Where read models live (SQLite file or the events' PostgreSQL schema)."""

    @property
    def dialect(self) -> Dialect: ...

    @property
    def where(self) -> str:
        """Where the views are, for messages (no credentials)."""
        ...

    def writer(self) -> ViewsWriter:
        """A new connection for writing; the caller closes it."""
        ...

    def reader(self) -> AbstractContextManager[ViewsSession]:
        """A pooled connection for queries, in one read transaction."""
        ...

    def close(self) -> None: ...


class StoredNotification(Protocol):
    @property
    def id(self) -> int: ...

    @property
    def topic(self) -> str: ...


class EventLog(Protocol):
    """The notification log of the event store, in notification-id order."""

    def read(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        topics: Sequence[str] = (),
    ) -> Sequence[StoredNotification]:
        """Notifications with ``after < id (<= until)``, at most ``limit``, in order; only
        those of ``topics`` when given."""
        ...

    def head(self) -> int:
        """The highest notification id (0 for an empty log). Ids commit in order, so every
        notification up to the head is visible once the head is."""
        ...

    def event_class(self, topic: str) -> type[Any]: ...

    def topic_of(self, event_class: type[Any]) -> str:
        """The topic the store records events of ``event_class`` under."""
        ...

    def decode(self, notification: StoredNotification) -> Any: ...


@typing.runtime_checkable
class DecodingEventLog(EventLog, Protocol):
    """An :class:`EventLog` that also reads and decodes in bulk (the engine uses it when
    a log offers it: decoding one notification at a time costs more)."""

    def read_events(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        topics: Sequence[str] = (),
    ) -> Sequence[tuple[int, Any, str]]:
        """As :meth:`EventLog.read`, decoded: notification id, event, and the event's
        ``originator_id`` as text."""
        ...


# ------------------------------------------------------------------ read models


def _column_type(hint: Any) -> tuple[ColumnType, bool]:
    nullable = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        nullable = len(members) < len(typing.get_args(hint))
        if len(members) != 1:
            msg = f"a column holds one type, not {hint}"
            raise TypeError(msg)
        hint = members[0]
    if typing.get_origin(hint) is Literal:
        hint = type(typing.get_args(hint)[0])
    # datetime before date: a datetime is a date.
    for python_type, column_type in (
        (bool, None),
        (str, "text"),
        (int, "integer"),
        (datetime, "timestamp"),
        (date, "date"),
    ):
        if hint is python_type:
            if column_type is None:
                break
            return typing.cast(ColumnType, column_type), nullable
    msg = f"no column type for {hint!r}: use str, int, date or datetime"
    raise TypeError(msg)


@dataclass(frozen=True)
class Totals:
    """Counts (and sums) of a table's rows grouped by some of its columns, kept in step
    with the table in the same transaction.

    A figure such as "procedures decided per office, year and month" is then one small
    read, whatever the size of the history: the rows it counts stay available for
    drill-down, and the engine adds each batch's difference (rows a batch added minus rows
    it removed) to the totals. The table ``name`` has the ``group_by`` columns (its
    primary key), ``row_count``, and one column per name in ``sums`` (integer columns of
    the counted table, summed).
    """

    name: str
    group_by: tuple[str, ...]
    sums: tuple[str, ...] = ()


class Table(Generic[R]):
    """A table of a read model; its rows are instances of the dataclass ``row_type``.

    The dataclass's fields are the columns, in order; the first three must be
    ``case_id``, ``office_id`` and ``reference``. ``key`` names the fields that tell one
    row of a case file from another (the primary key is ``case_id`` plus these).
    ``totals``: tables of counts of these rows that the engine keeps up to date.
    """

    def __init__(
        self,
        name: str,
        row_type: type[R],
        *,
        key: tuple[str, ...] = (),
        indexes: tuple[tuple[str, ...], ...] = (),
        totals: tuple[Totals, ...] = (),
    ) -> None:
        if not _NAME.match(name):
            msg = f"table name {name!r} must be lower-case letters, digits and _"
            raise ValueError(msg)
        if not dataclasses.is_dataclass(row_type):
            msg = f"{row_type.__name__} must be a dataclass"
            raise TypeError(msg)
        hints = typing.get_type_hints(row_type)
        fields = [field.name for field in dataclasses.fields(row_type)]
        if fields[:3] != ["case_id", "office_id", "reference"]:
            msg = f"{row_type.__name__} must start with case_id, office_id and reference"
            raise TypeError(msg)
        for column in (*key, *(c for index in indexes for c in index)):
            if column not in fields:
                msg = f"{row_type.__name__} has no field {column!r}"
                raise TypeError(msg)
        columns = []
        for field_name in fields:
            column_type, nullable = _column_type(hints[field_name])
            columns.append(Column(field_name, column_type, nullable))
        self.name = name
        self.row_type = row_type
        self.key = key
        self.schema = TableSchema(name, tuple(columns), ("case_id", *key), indexes)
        self.totals = totals
        self.totals_schemas = tuple(_totals_schema(self.schema, each) for each in totals)
        self.values: Callable[[R], tuple[Any, ...]] = attrgetter(*fields)
        """The row as a tuple of column values, in column order."""
        self.key_of: Callable[[R], tuple[Any, ...]] = (
            (lambda row: ()) if not key else _tuple_getter(key)
        )

    def row(self, values: Sequence[Any]) -> R:
        return self.row_type(*values)


TOTALS_COUNT: Final = "row_count"


def _totals_schema(counted: TableSchema, totals: Totals) -> TableSchema:
    if not _NAME.match(totals.name) or not totals.name.startswith(counted.name):
        msg = f"totals {totals.name!r} must be named after their table {counted.name!r}"
        raise ValueError(msg)
    columns = {column.name: column for column in counted.columns}
    group = []
    for name in totals.group_by:
        column = columns.get(name)
        if column is None or column.nullable:
            msg = f"totals {totals.name!r}: {name!r} must be a non-null column of {counted.name}"
            raise TypeError(msg)
        group.append(column)
    sums = []
    for name in totals.sums:
        column = columns.get(name)
        if column is None or column.type != "integer":
            msg = f"totals {totals.name!r}: {name!r} must be an integer column of {counted.name}"
            raise TypeError(msg)
        sums.append(Column(name, "integer", nullable=False))
    if not group or len(set(totals.group_by) | set(totals.sums)) != len(group) + len(sums):
        msg = f"totals {totals.name!r}: group by at least one column, each column once"
        raise ValueError(msg)
    return TableSchema(
        totals.name,
        (*group, Column(TOTALS_COUNT, "integer", nullable=False), *sums),
        totals.group_by,
    )


def _tuple_getter(names: tuple[str, ...]) -> Callable[[Any], tuple[Any, ...]]:
    getter = attrgetter(*names)
    if len(names) == 1:
        return lambda row: (getter(row),)
    return typing.cast(Callable[[Any], tuple[Any, ...]], getter)


@dataclass
class CaseRecord:
    """What every projection knows about a case file: its office, number and status."""

    case_id: str
    office_id: str
    reference: str
    status: str
    """``active``, ``transferred`` or ``closed`` (as ``CaseFile.status``)."""


Handler = Callable[["CaseRows", Any], None]


def on(event_class: type[E], handler: Callable[[CaseRows, E], None]) -> tuple[type[Any], Handler]:
    """Pair an event class with its handler (typed: the handler takes that event)."""
    return event_class, handler


Opener = Callable[[Any], tuple[str, str]]
"""From an aggregate's first event: its office and its reference."""


def case_file_opener(event: CaseFile.Opened) -> tuple[str, str]:
    return event.office_id, event.reference


@dataclass(frozen=True)
class Projection:
    """A read model: its name, tables and event handlers.

    ``version``: raise it whenever the tables or the handlers change meaning; a runner
    finding rows written by another version rebuilds them from scratch.

    ``active_cases_only``: the rows are open items of active case files. When a file is
    transferred to another office or closed, the engine removes all its rows, and
    later events of that file (the domain still allows e.g. ending a document or a
    note) are not handed to the handlers.
    """

    name: str
    tables: tuple[Table[Any], ...]
    handlers: Mapping[type[Any], Handler]
    version: int = 1
    active_cases_only: bool = True
    openers: Mapping[type[Any], Opener] = dataclasses.field(
        default_factory=lambda: types.MappingProxyType({CaseFile.Opened: case_file_opener})
    )
    """The events that start the aggregates the rows belong to, each giving the office
    and the file number (or another display reference). Case files by default; a read
    model of commitment declarations or contact submissions names their own."""
    registry: Table[CaseRecord] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            msg = f"projection name {self.name!r} must be lower-case letters, digits and _"
            raise ValueError(msg)
        for table in self.tables:
            if not table.name.startswith(self.name):
                msg = f"table {table.name!r} must be named after its projection {self.name!r}"
                raise ValueError(msg)
        registry = Table(f"{self.name}_cases", CaseRecord)
        object.__setattr__(self, "registry", registry)

    @property
    def all_tables(self) -> tuple[Table[Any], ...]:
        return (self.registry, *self.tables)

    @property
    def schemas(self) -> tuple[TableSchema, ...]:
        """Every table the projection stores: its rows' tables and their totals."""
        return tuple(
            schema for table in self.all_tables for schema in (table.schema, *table.totals_schemas)
        )


def handlers(*pairs: tuple[type[Any], Handler]) -> Mapping[type[Any], Handler]:
    mapping = dict(pairs)
    if len(mapping) != len(pairs):
        msg = "an event class has two handlers"
        raise ValueError(msg)
    return types.MappingProxyType(mapping)


class CaseRows:
    """The rows of one case file in one projection, while a batch is applied to them.

    Rows are made into row objects only when a handler first asks for their table: most
    events touch one table of a file, and the others are written back only if changed.
    """

    __slots__ = (
        "_loaded",
        "_record",
        "_rows",
        "_tables",
        "case_id",
        "office_id",
        "reference",
        "status",
    )

    def __init__(self, case_id: str, tables: tuple[Table[Any], ...]) -> None:
        self.case_id = case_id
        self.office_id = ""
        self.reference = ""
        self.status = ""
        """Empty until the file's ``Opened`` event is known."""
        self._tables = tables
        # Keyed by the Table object itself: hashing it is cheaper than reading its name,
        # and every access of a handler goes through these.
        self._rows: dict[Table[Any], dict[tuple[Any, ...], Any]] = {}
        """Tables a handler has asked for: their rows by key, as changed so far."""
        self._loaded: dict[Table[Any], dict[tuple[Any, ...], tuple[Any, ...]]] = {}
        """Rows as stored (column values by key), per table."""
        self._record: tuple[str, str, str, str] | None = None
        """The file's row in the projection's table of case files, as stored."""

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def _table(self, table: Table[R]) -> dict[tuple[Any, ...], R]:
        rows = self._rows.get(table)
        if rows is None:
            loaded = self._loaded.get(table)
            rows = {key: table.row(values) for key, values in loaded.items()} if loaded else {}
            self._rows[table] = rows
        return rows

    def get(self, table: Table[R], *key: Any) -> R | None:
        rows = self._rows.get(table)
        if rows is None:
            rows = self._table(table)
        return rows.get(key)

    def put(self, table: Table[R], row: R) -> None:
        """Add a row or replace the row with the same key."""
        rows = self._rows.get(table)
        if rows is None:
            rows = self._table(table)
        rows[table.key_of(row)] = row

    def remove(self, table: Table[R], *key: Any) -> None:
        rows = self._rows.get(table)
        if rows is None:
            rows = self._table(table)
        rows.pop(key, None)

    def rows(self, table: Table[R]) -> list[R]:
        return list(self._table(table).values())

    def clear(self) -> None:
        """Remove every row of this case file (not its record)."""
        for table in self._tables:
            self._rows[table] = {}


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


@dataclass(frozen=True)
class StoredPosition:
    name: str
    position: int
    version: int
    event_recorded_at: datetime | None
    updated_at: datetime


# ----------------------------------------------------------------------- engine

_REGISTRY_EVENTS: Final[tuple[type[Any], ...]] = (
    CaseFile.TransferredToOffice,
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
        self._jobs: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(
            target=self._run, name="akte-projections-write", daemon=True
        )

    def __enter__(self) -> _WriteBehind:
        self._thread.start()
        return self

    def submit(self, function: Callable[..., Any], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        self._jobs.put((function, args))

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None and not self._cancelled:
                function, args = job
                try:
                    function(*args)
                except BaseException as error:  # handed over to the engine's thread
                    self._error = error

    def __exit__(self, *exc: object) -> None:
        # The batch failed in the engine's thread: what is queued would be rolled back.
        self._cancelled = exc[0] is not None
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error


class _Tables:
    """SQL of one table in one dialect, and the column converters, prepared once."""

    def __init__(self, session: ViewsSession, table: Table[Any]) -> None:
        schema = table.schema
        self.table = table
        self.qualified = session.table(schema.name)
        self.columns = schema.column_names
        column_list = ", ".join(self.columns)
        self.select_prefix = f"SELECT {column_list} FROM {self.qualified} WHERE "
        key_positions = [self.columns.index(name) for name in table.key]
        self.key_of_values: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda values: tuple(
            values[i] for i in key_positions
        )
        self.encoders = [session.encoder(column.type) for column in schema.columns]
        self.decoders = [session.decoder(column.type) for column in schema.columns]
        self.encode_any = any(self.encoders)
        self.decode_any = any(self.decoders)
        self.totals = [
            _TotalsSql(session, schema, totals_schema) for totals_schema in table.totals_schemas
        ]

    def encode(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.encode_any:
            return values
        return _encoded(values, self.encoders)

    def insert(self, writer: ViewsWriter, rows: list[tuple[Any, ...]]) -> None:
        if self.encode_any:
            rows = [_encoded(values, self.encoders) for values in rows]
        writer.insert_rows(self.table.name, self.columns, rows)

    def decode(self, values: Sequence[Any]) -> tuple[Any, ...]:
        if not self.decode_any:
            return tuple(values)
        return tuple(
            v if f is None or v is None else f(v)
            for v, f in zip(values, self.decoders, strict=True)
        )


class _TotalsSql:
    """The SQL that adds a batch's differences to one totals table."""

    def __init__(self, session: ViewsSession, counted: TableSchema, schema: TableSchema) -> None:
        self.name = schema.name
        self.qualified = session.table(schema.name)
        self.columns = schema.column_names
        counted_names = counted.column_names
        group = schema.primary_key
        sums = self.columns[len(group) + 1 :]
        group_at = [counted_names.index(name) for name in group]
        sums_at = [counted_names.index(name) for name in sums]
        self.group_of: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda values: tuple(
            values[i] for i in group_at
        )
        self.sums_of: Callable[[tuple[Any, ...]], tuple[int, ...]] = lambda values: tuple(
            values[i] or 0 for i in sums_at
        )
        self.width = len(sums) + 1
        self.encoders = [session.encoder(column.type) for column in schema.columns[: len(group)]]
        self.decoders = [session.decoder(column.type) for column in schema.columns]
        added = ", ".join(
            f"{name} = {self.qualified}.{name} + excluded.{name}"
            for name in self.columns[len(group) :]
        )
        placeholders = ", ".join(session.param for _ in self.columns)
        self.upsert = (
            f"INSERT INTO {self.qualified} ({', '.join(self.columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(group)}) DO UPDATE SET {added}"
        )

    def add(
        self,
        differences: dict[tuple[Any, ...], list[int]],
        rows: Iterable[tuple[Any, ...]],
        sign: int,
    ) -> None:
        """Count ``rows`` (values of the counted table) into ``differences`` with ``sign``."""
        for values in rows:
            difference = differences.get(group := self.group_of(values))
            if difference is None:
                difference = differences[group] = [0] * self.width
            difference[0] += sign
            for index, amount in enumerate(self.sums_of(values), start=1):
                difference[index] += sign * amount

    def write(self, writer: ViewsWriter, differences: dict[tuple[Any, ...], list[int]]) -> None:
        changes = [
            (*_encoded(group, self.encoders), *difference)
            for group, difference in differences.items()
            if any(difference)
        ]
        if changes:
            writer.executemany(self.upsert, changes)

    def decode(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            v if f is None or v is None else f(v)
            for v, f in zip(values, self.decoders, strict=True)
        )


def _encoded(
    values: tuple[Any, ...], encoders: Sequence[Callable[[Any], Any] | None]
) -> tuple[Any, ...]:
    return tuple(
        v if f is None or v is None else f(v) for v, f in zip(values, encoders, strict=True)
    )


COLLECT_AFTER_ALLOCATIONS: Final = 200_000
"""While the collector is paused: collect once the objects it tracks have grown by this
many (the rows cache filling up, or garbage in reference cycles, which only it frees)."""

_collector_lock = threading.Lock()
_collector_pauses = 0
_collector_was_enabled = False


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's automatic (cyclic) garbage collection while batches are processed.

    A batch allocates hundreds of thousands of objects and the rows cache keeps hundreds
    of thousands alive; with the default thresholds the collector ran a dozen times per
    batch, walking them again and again, and took about a third of a rebuild's CPU.
    Nothing the engine builds needs it (no reference cycles: reference counting frees
    every batch), so while paused the engine collects only when the tracked objects have
    grown by :data:`COLLECT_AFTER_ALLOCATIONS` (:func:`_collect_when_grown`), and memory
    stays as flat as before. The switch is process-wide, hence counted: automatic
    collection resumes when the last of overlapping pauses ends, and only if it was on
    before the first."""
    global _collector_pauses, _collector_was_enabled
    with _collector_lock:
        if _collector_pauses == 0:
            _collector_was_enabled = gc.isenabled()
            gc.disable()
        _collector_pauses += 1
    try:
        yield
    finally:
        with _collector_lock:
            _collector_pauses -= 1
            if _collector_pauses == 0 and _collector_was_enabled:
                gc.enable()


def _collect_when_grown() -> None:
    # The first count is allocations minus deallocations of tracked objects since the
    # last collection: it grows only with what stays alive.
    if gc.get_count()[0] > COLLECT_AFTER_ALLOCATIONS:
        gc.collect()


_Step = tuple[Opener | None, str | None, Handler | None]
_ENDINGS: Final[Mapping[type[Any], str]] = types.MappingProxyType(
    {CaseFile.TransferredToOffice: "transferred", CaseFile.Closed: "closed"}
)


def _step(projection: Projection, event_class: type[Any]) -> _Step:
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
        cached_cases: int = DEFAULT_CACHED_CASES,
    ) -> None:
        """``cached_cases``: per projection, how many case files' rows to remember between
        batches (0: read them every time). Safe because a batch commits only while the
        position is the one this engine last wrote: then nobody else changed the rows."""
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
        self._interested: dict[type[Any], tuple[int, ...]] = {}
        for index, projection in enumerate(self.projections):
            # Transfer and closure are case-file events: only case-file read models track them.
            lifecycle = _REGISTRY_EVENTS if CaseFile.Opened in projection.openers else ()
            for event_class in (*projection.openers, *lifecycle, *projection.handlers):
                existing = self._interested.get(event_class, ())
                if index not in existing:
                    self._interested[event_class] = (*existing, index)
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
        self._sql: dict[str, _Tables] = {}
        self._positions_sql = _PositionsSql(writer)
        self._prepared = False
        self._cached_cases = cached_cases
        # Per projection, the case files of recent batches, least recently used first.
        self._cache: dict[str, dict[str, CaseRows]] = {p.name: {} for p in self.projections}
        self._prefetch: _Prefetch | None = None
        self._topics: tuple[str, ...] | None = None

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
                pending = []
                for index, projection in behind:
                    position = self._positions[projection.name]
                    if stored.get(projection.name) != position:
                        raise _PositionMoved(projection.name)
                    events = per_projection[index]
                    if events and events[0][0] <= position:
                        events = [item for item in events if item[0] > position]
                    applied += len(events)
                    pending.append((projection, events, self._gather_cases(projection, events)))
                with _WriteBehind() as write_behind:
                    for projection, events, cases in pending:
                        self._apply(projection, events, cases, write_behind)
                        remembered.append((projection.name, cases))
                    write_behind.submit(
                        self._positions_sql.advance, names, last_id, last_recorded_at, self._clock()
                    )
        except _PositionMoved:
            self._forget()
            self._load_positions()
            return BatchResult(batch.read, 0, 0, self._low(), conflict=True)
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

    def _load_positions(self) -> None:
        self._forget()
        stored = {p.name: p for p in read_positions(self.writer)}
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
        self._prefetch = None

    def _remember(self, remembered: list[tuple[str, dict[str, CaseRows]]]) -> None:
        """After a commit: keep the batch's case files (their rows as now stored)."""
        if self._cached_cases <= 0:
            return
        for name, cases in remembered:
            cache = self._cache[name]
            pop = cache.pop
            for case_id in cases:
                pop(case_id, None)  # re-inserted last: most recently used
            cache.update(cases)
            if len(cache) > self._cached_cases:
                for case_id in list(islice(cache, len(cache) - self._cached_cases)):
                    del cache[case_id]

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
            for index in interested:
                per_projection[index].append(item)
        if last_handled != last_id:
            # The batch ends with notifications no projection handles: look at the last.
            last_event = self._event_at(last_id)
        recorded_at = getattr(last_event, "timestamp", None)
        return per_projection, recorded_at if isinstance(recorded_at, datetime) else None

    def _event_at(self, notification_id: int) -> Any:
        """The event of notification ``notification_id`` (None when there is none)."""
        log = self.log
        if isinstance(log, DecodingEventLog):
            events = log.read_events(notification_id - 1, 1, until=notification_id)
            return events[0][1] if events else None
        found = log.read(notification_id - 1, 1, until=notification_id)
        return log.decode(found[0]) if found else None

    def _table_sql(self, table: Table[Any]) -> _Tables:
        sql = self._sql.get(table.name)
        if sql is None:
            sql = self._sql[table.name] = _Tables(self.writer, table)
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
        steps = self._steps[projection.name]
        active_only = projection.active_cases_only
        for _, event, case_id in events:
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
                if active_only:
                    case.clear()
                    continue
            elif active_only and case.status != "active":
                continue
            if handler is not None:
                handler(case, event)
        self._write(projection, cases, write_behind)

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
        for table in projection.tables:
            sql = self._table_sql(table)
            key_of = sql.key_of_values
            for raw in self.writer.fetch(sql.select_prefix + condition, (param,)):
                values = sql.decode(raw)
                cases[values[0]]._loaded.setdefault(table, {})[key_of(values)] = values

    def _write(
        self, projection: Projection, cases: dict[str, CaseRows], write_behind: _WriteBehind
    ) -> None:
        """Write back the rows of the case files whose rows changed: delete all their
        rows (one statement per table), insert their current rows (COPY on PostgreSQL).

        Case files have few rows each, so rewriting a changed file's unchanged rows
        costs less than a statement per changed row."""
        registry = projection.registry
        records_gone: list[str] = []
        records: list[tuple[Any, ...]] = []
        tables = projection.tables
        changed: dict[Table[Any], list[str]] = {table: [] for table in tables}
        inserts: dict[Table[Any], list[tuple[Any, ...]]] = {table: [] for table in tables}
        totals: dict[Table[Any], list[tuple[_TotalsSql, dict[tuple[Any, ...], list[int]]]]] = {
            table: [(sql, {}) for sql in self._table_sql(table).totals]
            for table in tables
            if table.totals
        }
        for case_id, case in cases.items():
            record = (case_id, case.office_id, case.reference, case.status)
            stored = case._record
            if stored != record:
                if stored is not None:
                    records_gone.append(case_id)
                records.append(record)
                case._record = record  # as stored once the batch commits
            current_tables = case._rows
            if not current_tables:
                continue  # no handler asked for a table: unchanged
            loaded = case._loaded
            for table in tables:
                current = current_tables.get(table)
                if current is None:
                    continue
                before = loaded.get(table)
                values = table.values
                now = {key: values(row) for key, row in current.items()}
                if now == (before or {}):
                    continue
                if before:
                    changed[table].append(case_id)
                if now:
                    inserts[table].extend(now.values())
                for totals_sql, differences in totals.get(table, ()):
                    if before:
                        totals_sql.add(differences, before.values(), -1)
                    totals_sql.add(differences, now.values(), +1)
                # What is stored once the batch commits (forgotten if it does not).
                loaded[table] = now
        self._submit_writes(registry, records_gone, records, write_behind)
        for table in tables:
            self._submit_writes(table, changed[table], inserts[table], write_behind)
            for totals_sql, differences in totals.get(table, ()):
                write_behind.submit(totals_sql.write, self.writer, differences)

    def _submit_writes(
        self,
        table: Table[Any],
        gone: list[str],
        added: list[tuple[Any, ...]],
        write_behind: _WriteBehind,
    ) -> None:
        writer = self.writer
        sql = self._table_sql(table)
        if gone:
            condition, param = writer.case_in("case_id", gone)
            write_behind.submit(
                writer.execute, f"DELETE FROM {sql.qualified} WHERE {condition}", (param,)
            )
        if added:
            write_behind.submit(sql.insert, writer, added)


def _sortable_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # None sorts before every value of its column.
    return tuple((value is not None, value) for value in row)


# -------------------------------------------------------------------- positions


class _PositionsSql:
    def __init__(self, session: ViewsWriter) -> None:
        self.session = session
        p = session.param
        table = session.table(POSITIONS_TABLE)
        self.table = table
        self.encode_time = session.encoder("timestamp") or (lambda value: value)
        self.update = (
            f"UPDATE {table} SET position = {p}, event_recorded_at = {p}, updated_at = {p} WHERE "
        )
        self.delete = f"DELETE FROM {table} WHERE name = {p}"
        self.insert = (
            f"INSERT INTO {table} (name, position, version, event_recorded_at, updated_at) "
            f"VALUES ({p}, 0, {p}, NULL, {p})"
        )

    def create(self) -> None:
        self.session.create_table(POSITIONS_SCHEMA)

    def lock(self, names: Sequence[str]) -> dict[str, int]:
        """The positions of the named projections, locked until the transaction ends (in
        the order of their names, as every engine takes them)."""
        condition, param = self.session.case_in("name", names)
        rows = self.session.fetch(
            f"SELECT name, position FROM {self.table} WHERE {condition} "
            f"ORDER BY name{self.session.lock_row_suffix}",
            (param,),
        )
        return {str(name): int(position) for name, position in rows}

    def advance(
        self,
        names: Sequence[str],
        position: int,
        event_recorded_at: datetime | None,
        now: datetime,
    ) -> None:
        recorded = None if event_recorded_at is None else self.encode_time(event_recorded_at)
        condition, param = self.session.case_in("name", names)
        self.session.execute(
            self.update + condition, (position, recorded, self.encode_time(now), param)
        )

    def reset(self, name: str, version: int, now: datetime) -> None:
        self.session.execute(self.delete, (name,))
        self.session.execute(self.insert, (name, version, self.encode_time(now)))


POSITIONS_SCHEMA: Final = TableSchema(
    POSITIONS_TABLE,
    (
        Column("name", "text", nullable=False),
        Column("position", "integer", nullable=False),
        Column("version", "integer", nullable=False),
        Column("event_recorded_at", "timestamp", nullable=True),
        Column("updated_at", "timestamp", nullable=False),
    ),
    ("name",),
)


def read_positions(session: ViewsSession) -> list[StoredPosition]:
    """The positions table (empty when no projection has been prepared yet)."""
    if not session.table_exists(POSITIONS_TABLE):
        return []
    decode_time = session.decoder("timestamp") or (lambda value: value)
    rows = session.fetch(
        f"SELECT name, position, version, event_recorded_at, updated_at "
        f"FROM {session.table(POSITIONS_TABLE)} ORDER BY name"
    )
    return [
        StoredPosition(
            name=str(name),
            position=int(position),
            version=int(version),
            event_recorded_at=None if recorded is None else decode_time(recorded),
            updated_at=decode_time(updated),
        )
        for name, position, version, recorded, updated in rows
    ]


# ----------------------------------------------------------------------- status


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_events: int
    """Notifications after the position (ids may have gaps: an upper bound)."""
    lag_seconds: float
    """Recorded time of the head event minus that of the last processed event (0 when
    caught up); from the first event when nothing is processed yet."""
    updated_at: datetime | None
    built: bool
    """False: not prepared yet, or prepared by another version of this read model."""


def projection_status(
    log: EventLog, views: ViewsStore, projections: Sequence[Projection]
) -> list[ProjectionStatus]:
    """Position, head and lag of each projection (read-only; needs no lock)."""
    with views.reader() as session:
        stored = {p.name: p for p in read_positions(session)}
    head = log.head()
    head_time = _recorded_at(log, head) if head else None
    first_time: datetime | None = None
    statuses = []
    for projection in projections:
        found = stored.get(projection.name)
        built = found is not None and found.version == projection.version
        position = found.position if found is not None and built else 0
        lag_seconds = 0.0
        if position < head and head_time is not None:
            since = found.event_recorded_at if found is not None and position > 0 else None
            if since is None:
                if first_time is None:
                    first_time = _recorded_at(log, 0)
                since = first_time
            if since is not None:
                lag_seconds = max((head_time - since).total_seconds(), 0.0)
        statuses.append(
            ProjectionStatus(
                name=projection.name,
                position=position,
                head=head,
                lag_events=max(head - position, 0),
                lag_seconds=lag_seconds,
                updated_at=found.updated_at if found is not None else None,
                built=built,
            )
        )
    return statuses


def _recorded_at(log: EventLog, after_or_at: int) -> datetime | None:
    """Recorded time of the notification ``after_or_at`` (or the first one after it)."""
    found = log.read(max(after_or_at - 1, 0), 1)
    if not found:
        return None
    recorded = getattr(log.decode(found[0]), "timestamp", None)
    return recorded if isinstance(recorded, datetime) else None


def select_projections(
    available: Sequence[Projection], names: Iterable[str] | None
) -> list[Projection]:
    """The named projections (all: ``None`` or empty) in the order of ``available``."""
    wanted = set(names or ())
    if not wanted:
        return list(available)
    unknown = wanted - {projection.name for projection in available}
    if unknown:
        raise UnknownProjection(unknown)
    return [projection for projection in available if projection.name in wanted]


def partition_projections(projections: Sequence[Projection], jobs: int) -> list[list[Projection]]:
    """Split projections into at most ``jobs`` groups to be built by separate processes.

    Projections that handle a common event class stay in one group, so each group reads
    and decodes its events once (every group reads the few ``Opened``, transfer and
    closure events). Groups are balanced by the number of event classes they handle.
    """
    families: list[list[Projection]] = []
    for projection in projections:
        classes = set(projection.handlers)
        related = [f for f in families if any(classes & set(other.handlers) for other in f)]
        families = [f for f in families if f not in related]
        families.append([other for family in related for other in family] + [projection])
    groups: list[list[Projection]] = [[] for _ in range(max(1, min(jobs, len(families))))]
    weights = [0] * len(groups)
    for family in sorted(families, key=lambda f: -sum(len(p.handlers) for p in f)):
        lightest = weights.index(min(weights))
        groups[lightest] += family
        weights[lightest] += sum(len(p.handlers) for p in family)
    order = {projection.name: index for index, projection in enumerate(projections)}
    return [sorted(group, key=lambda p: order[p.name]) for group in groups if group]
