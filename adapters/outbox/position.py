"""How far the outbox has published the log: a table in the events database.

**Why the events database, not the views store.** The views store is disposable: read
models are dropped and rebuilt from the log (``akte projections rebuild``), and a
position kept there would go with them, and the whole log would be published again.
The outbox position is a fact about the outside world (what the broker has
acknowledged), like the log itself: it lives beside the events, is backed up and
restored with them (a restored store and its position fit together), and needs no
second database to be reachable.

**The table** ``akte_outbox_position`` (on PostgreSQL ``<app>_outbox_position`` in the
store's schema, like the idempotency keys), one row per stream: ``name`` (the JetStream
stream), ``position`` (the notification id up to which every chosen event is
acknowledged), ``updated_at`` (ISO 8601, UTC), ``last_error`` and ``last_error_at`` (the
broker's last failure, cleared by the next success; a reason, never event data). It is
created by the outbox itself (``CREATE TABLE IF NOT EXISTS``) the first time it runs: a
new table that nothing else reads, so it needs no migration step.

The position only moves forward (the update keeps the larger of the two): a second publisher
on the same stream, or a late one, can never move it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore
from psycopg import sql
from psycopg.rows import tuple_row

SQLITE_TABLE: Final = "akte_outbox_position"
_MAX_ERROR_LENGTH: Final = 300


@dataclass(frozen=True)
class OutboxState:
    """One stream's row; a stream never published to is at position 0."""

    name: str
    position: int = 0
    updated_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None


class OutboxPositions(Protocol):
    def create_table(self) -> None: ...

    def state(self, name: str) -> OutboxState: ...

    def advance(self, name: str, position: int) -> None:
        """Move ``name`` to ``position`` (never back) and clear its last error."""
        ...

    def record_error(self, name: str, reason: str) -> None: ...


def outbox_positions(recorder: object) -> OutboxPositions:
    """The position table of ``recorder``'s database (the library's SQLite or PostgreSQL)."""
    if isinstance(recorder, PostgresApplicationRecorder):
        return PostgresOutboxPositions(recorder.datastore, recorder.events_table_name)
    if isinstance(recorder, SQLiteApplicationRecorder):
        return SqliteOutboxPositions(recorder.datastore)
    msg = f"the outbox keeps its position in SQLite or PostgreSQL, not {type(recorder).__name__}"
    raise TypeError(msg)


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _state(name: str, row: tuple[Any, ...] | None) -> OutboxState:
    if row is None:
        return OutboxState(name)
    return OutboxState(
        name=name,
        position=int(row[0]),
        updated_at=_moment(row[1]),
        last_error=row[2],
        last_error_at=_moment(row[3]),
    )


class SqliteOutboxPositions:
    def __init__(self, datastore: SQLiteDatastore) -> None:
        self._datastore = datastore

    def create_table(self) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                f"CREATE TABLE IF NOT EXISTS {SQLITE_TABLE} ("
                "name TEXT PRIMARY KEY, position INTEGER NOT NULL, updated_at TEXT NOT NULL, "
                "last_error TEXT, last_error_at TEXT)"
            )

    def state(self, name: str) -> OutboxState:
        with self._datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT position, updated_at, last_error, last_error_at FROM {SQLITE_TABLE} "
                "WHERE name = ?",
                (name,),
            )
            row = c.fetchone()
        return _state(name, None if row is None else tuple(row))

    def advance(self, name: str, position: int) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {SQLITE_TABLE} (name, position, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET position = max(position, excluded.position), "
                "updated_at = excluded.updated_at, last_error = NULL, last_error_at = NULL",
                (name, position, _now()),
            )

    def record_error(self, name: str, reason: str) -> None:
        with self._datastore.transaction(commit=True) as c:
            c.execute(
                f"INSERT INTO {SQLITE_TABLE} (name, position, updated_at, last_error, "
                "last_error_at) VALUES (?, 0, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "last_error = excluded.last_error, last_error_at = excluded.last_error_at",
                (name, _now(), reason[:_MAX_ERROR_LENGTH], _now()),
            )


class PostgresOutboxPositions:
    def __init__(self, datastore: PostgresDatastore, events_table_name: str) -> None:
        self._datastore = datastore
        prefix = events_table_name.removesuffix("_events")
        self._table = sql.SQL("{}.{}").format(
            sql.Identifier(datastore.schema), sql.Identifier(f"{prefix}_outbox_position")
        )

    def _execute(self, text: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with (
            self._datastore.get_connection() as connection,
            connection.transaction(),
            connection.cursor(row_factory=tuple_row) as cursor,
        ):
            cursor.execute(sql.SQL(text).format(table=self._table), params)
            return cursor.fetchone() if cursor.description else None

    def create_table(self) -> None:
        self._execute(
            "CREATE TABLE IF NOT EXISTS {table} ("
            "name text PRIMARY KEY, position bigint NOT NULL, updated_at text NOT NULL, "
            "last_error text, last_error_at text)"
        )

    def state(self, name: str) -> OutboxState:
        row = self._execute(
            "SELECT position, updated_at, last_error, last_error_at FROM {table} WHERE name = %s",
            (name,),
        )
        return _state(name, row)

    def advance(self, name: str, position: int) -> None:
        self._execute(
            "INSERT INTO {table} AS t (name, position, updated_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET "
            "position = greatest(t.position, excluded.position), "
            "updated_at = excluded.updated_at, last_error = NULL, last_error_at = NULL",
            (name, position, _now()),
        )

    def record_error(self, name: str, reason: str) -> None:
        self._execute(
            "INSERT INTO {table} (name, position, updated_at, last_error, last_error_at) "
            "VALUES (%s, 0, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "last_error = excluded.last_error, last_error_at = excluded.last_error_at",
            (name, _now(), reason[:_MAX_ERROR_LENGTH], _now()),
        )


__all__ = [
    "OutboxPositions",
    "OutboxState",
    "PostgresOutboxPositions",
    "SqliteOutboxPositions",
    "outbox_positions",
]
