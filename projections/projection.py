"""Declaring a read model: a :class:`Projection` with its tables, their rows and totals,
and one handler per event class, which changes the :class:`CaseRows` of one case file.

Rows are dataclasses whose fields become columns. Every row names its case file's
office and file number (``office_id``, ``reference``), but only ``CaseFile.Opened``
carries them. So each projection keeps its own small table of case files
(``<projection>_cases``, rows of :class:`CaseRecord`), filled from ``Opened``: a
projection never needs another one to rebuild. The engine
(:mod:`projections.engine`) applies the events.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from operator import attrgetter
from typing import Any, Final, Generic, Literal, TypeVar

from domain.case_file import CaseFile
from projections.storage import Column, ColumnType, TableSchema

R = TypeVar("R")
E = TypeVar("E")

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


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

    ``append_only``: handlers only add rows, each under a key the file has not used
    before (one row per event, say), and never look at the stored ones. The engine then
    never reads a file's stored rows of this table: an audit trail grows with the file's
    history, and reading all of it back for every batch that touches the file made
    rebuilds grow faster than the log (issue 25). ``get``, ``rows`` and ``remove`` on
    such a table are refused, and a key used twice fails the batch at the primary key.
    """

    def __init__(
        self,
        name: str,
        row_type: type[R],
        *,
        key: tuple[str, ...] = (),
        indexes: tuple[tuple[str, ...], ...] = (),
        totals: tuple[Totals, ...] = (),
        append_only: bool = False,
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
            if nullable and field_name in key:
                # Rows are written back by key: a NULL never equals itself in SQL, so
                # such a row could never be found again (SQLite would keep duplicates).
                msg = f"{row_type.__name__}.{field_name} is in the key and must not be None"
                raise TypeError(msg)
            columns.append(Column(field_name, column_type, nullable))
        self.name = name
        self.row_type = row_type
        self.key = key
        self.schema = TableSchema(name, tuple(columns), ("case_id", *key), indexes)
        self.totals = totals
        self.append_only = append_only
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
    note) are not handed to the handlers. When the other office returns the hand-over
    (``HandOverReturned``), the engine rebuilds the file's rows from its events before
    the return, and hands it the later ones again.

    ``sees_taken_over_parts``: a case file taken over from another office
    (``CaseFile.TakenOver``) holds that office's events as ``CaseFile.PartTakenOver``.
    A read model that says yes receives each part as the event it was
    (``PartTakenOver.source_event``), through the handler of that event class, as if it
    had happened on this file: a caseworker's list must show the eAT or the open
    procedure the person brought along. Figures say no: what the previous office did is
    not this office's work. Parts that do not change the file's state
    (``TAKEN_OVER_WITHOUT_STATE``: the other file's opening, its end) are never handed on.
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
    sees_taken_over_parts: bool = False
    registry: Table[CaseRecord] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            msg = f"projection name {self.name!r} must be lower-case letters, digits and _"
            raise ValueError(msg)
        for table in self.tables:
            if not table.name.startswith(self.name):
                msg = f"table {table.name!r} must be named after its projection {self.name!r}"
                raise ValueError(msg)
        if self.active_cases_only and any(table.append_only for table in self.tables):
            # The engine removes a finished file's rows, and counts them out of the
            # totals: it would need the stored rows it never read.
            msg = f"projection {self.name!r}: rows of active files only cannot be append-only"
            raise ValueError(msg)
        if self.sees_taken_over_parts and (
            CaseFile.PartTakenOver in self.handlers or CaseFile.Opened not in self.openers
        ):
            msg = (
                f"projection {self.name!r}: seeing taken-over parts as their events needs "
                "case files and no handler of its own for the parts"
            )
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


def _refuse_append_only(table: Table[Any], what: str) -> None:
    """An append-only table's stored rows are never read: nothing could be found,
    changed or removed among them (``get`` of a row put in the same batch would work by
    chance, and fail once the batches fall differently)."""
    if table.append_only:
        msg = f"{table.name} is append-only: {what} is not allowed on it"
        raise TypeError(msg)


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
    The engine (:mod:`projections.engine`) fills and reads the underscored attributes:
    they are the rows as stored, which handlers never see.
    """

    __slots__ = (
        "_dirty",
        "_loaded",
        "_record",
        "_rows",
        "_tables",
        "_whole",
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
        self._dirty: dict[Table[Any], set[tuple[Any, ...]]] = {}
        """Per table, the keys of rows a handler may have changed since the last write:
        put, removed, or handed out by :meth:`get` (a handler may change a row it got).
        The engine compares and writes only these, not the file's whole history."""
        self._whole: set[Table[Any]] = set()
        """Tables a handler may have changed anywhere (:meth:`rows`, :meth:`clear`): all
        their rows are compared."""

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

    def _touch(self, table: Table[Any], key: tuple[Any, ...]) -> None:
        keys = self._dirty.get(table)
        if keys is None:
            self._dirty[table] = {key}
        else:
            keys.add(key)

    def get(self, table: Table[R], *key: Any) -> R | None:
        """The row with this key, or None. A handler may change the row it gets (then it
        is compared and written like one put)."""
        if table.append_only:
            _refuse_append_only(table, "get")
        rows = self._rows.get(table)
        if rows is None:
            rows = self._table(table)
        row = rows.get(key)
        if row is not None:
            self._touch(table, key)
        return row

    def put(self, table: Table[R], row: R) -> None:
        """Add a row or replace the row with the same key."""
        rows = self._rows.get(table)
        if rows is None:
            rows = self._table(table)
        key = table.key_of(row)
        if table.append_only and key in rows:
            # Across batches the primary key refuses it; within one, so does this.
            msg = f"{table.name} is append-only: a key was put twice"
            raise TypeError(msg)
        rows[key] = row
        self._touch(table, key)

    def remove(self, table: Table[R], *key: Any) -> None:
        _refuse_append_only(table, "remove")
        rows = self._rows.get(table)
        if rows is None:
            rows = self._table(table)
        if rows.pop(key, None) is not None:
            self._touch(table, key)

    def rows(self, table: Table[R]) -> list[R]:
        """Every row of the table (a handler may change any of them)."""
        _refuse_append_only(table, "rows")
        rows = self._table(table)
        self._whole.add(table)
        return list(rows.values())

    def clear(self) -> None:
        """Remove every row of this case file (not its record)."""
        for table in self._tables:
            _refuse_append_only(table, "clear")
        for table in self._tables:
            self._rows[table] = {}
            self._whole.add(table)
