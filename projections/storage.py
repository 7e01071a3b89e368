"""What the projection engine needs of its storage: the views store and the event log.

Protocols only: ``adapters/views/store.py`` implements the views store on SQLite and
PostgreSQL, and ``adapters/views/runner.py`` adapts the library's notification log to
:class:`EventLog`. A table is described by its :class:`TableSchema` (a read model's
tables declare theirs through :class:`~projections.projection.Table`).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

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

    def rename_table(self, name: str, new_name: str) -> None:
        """Give a logical table another logical name (its rows, keys and indexes go along)."""
        ...

    def lock_tables(self, names: Sequence[str]) -> None:
        """Take the named tables (those that exist) for this transaction alone, waiting
        for the readers that use them now without keeping new readers waiting for long:
        the switch to a rebuilt generation (:mod:`projections.generations`)."""
        ...

    def lock_schema(self) -> None:
        """Serialise schema changes with other writers until the transaction ends."""
        ...

    def case_in(self, column: str, case_ids: Sequence[str]) -> tuple[str, Any]:
        """A condition ``column IN case_ids`` and its one parameter."""
        ...

    def keys_in(
        self, columns: Sequence[Column], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, tuple[Any, ...]]:
        """A condition ``(columns) IN keys`` and its parameters, for any number of keys
        (values as stored: encoded); the rows it names are found by the primary key."""
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
class CaseHistoryLog(Protocol):
    """A log that also reads one case file's events (the engine uses it when a file
    comes back from another office: the worklists' rows as if it had never left)."""

    def case_history(self, case_id: str, before_version: int) -> Sequence[Any]:
        """The events of case file ``case_id`` before ``before_version``, in order,
        decoded as :meth:`EventLog.decode` does."""
        ...


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
