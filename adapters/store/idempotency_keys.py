"""Idempotency keys, recorded in the transaction of a write's events (the port
``service_ports.WriteOutcomes``, mixed into the recorders of :mod:`adapters.store.recorders`).

**The table** ``akte_idempotency_keys`` (on PostgreSQL ``<app>_idempotency_keys`` in the
store's schema, ``akte_idempotency_keys`` for the default app), one row per key:
``key_hash`` (primary key: SHA-256 of the acting user and the client's key, so the key
itself and whom it belongs to are not readable), ``fingerprint`` (SHA-256 of method,
path, query, content type, body and acting user), ``attempt`` (random per request: tells
the request that wrote the row from a concurrent one with the same key), the last
event's ``originator_id``, ``originator_version`` and ``position`` (notification id),
``recorded_at``, and the first answer (``status``, ``headers`` as JSON, ``body``), filled
in after the write answered. Until then ``status`` is NULL and ``body`` holds the write's
outcome, if its command noted one (:meth:`service_idempotency.WriteTruth.note`: the case
file, its version and the command's result, sealed with the client's key like the
answer): what a retry needs to answer as the first request would have, when that
request ended before its answer was stored. The answer, once stored, replaces it.

**When it is written.** By the recorder, in the transaction that inserts the events, after
them: the key is recorded if and only if the events are, which is what lets the service
tell, after a lost acknowledgement, whether its write went through. A row whose key has
expired (older than the retention) is deleted in the same transaction before the insert;
a live row with the same hash makes the insert, and so the whole write, fail on the
primary key (a concurrent request with the same key). The answer is stored afterwards,
in a transaction of its own: a request that stopped in between leaves a row without one.

Expired rows are deleted by :meth:`forget_keys` (the service calls it now and then).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from adapters.store.hash_chain import canonical_id
from service_ports import KeyRecord, NewKey, StoredAnswer

SQLITE_KEYS_TABLE: Final = "akte_idempotency_keys"
_COLUMNS: Final = (
    "key_hash, fingerprint, attempt, originator_id, originator_version, position, "
    "recorded_at, status, headers, body"
)


def new_key_of(kwargs: dict[str, Any]) -> NewKey | None:
    key = kwargs.get("idempotency")
    return key if isinstance(key, NewKey) else None


def _micros(moment: datetime) -> int:
    """SQLite keeps times as microseconds since the epoch: compared as numbers."""
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(
        microsecond=micros % 1_000_000
    )


def _answer(status: int | None, headers: str | None, body: bytes | None) -> StoredAnswer | None:
    if status is None:
        return None
    pairs = tuple((str(name), str(value)) for name, value in json.loads(headers or "[]"))
    return StoredAnswer(status=status, headers=pairs, body=bytes(body or b""))


def _key_record(row: Sequence[Any], recorded_at: datetime) -> KeyRecord:
    status, body = row[7], row[9]
    return KeyRecord(
        key_hash=row[0],
        fingerprint=row[1],
        attempt=row[2],
        originator_id=row[3],
        originator_version=row[4],
        position=row[5],
        recorded_at=recorded_at,
        answer=_answer(status, row[8], body),
        # Before the answer is stored, the body column holds the noted outcome.
        outcome=bytes(body) if status is None and body else None,
    )


def _headers_json(answer: StoredAnswer) -> str:
    return json.dumps([list(pair) for pair in answer.headers])


class SQLiteWriteOutcomes:
    """For :class:`adapters.store.recorders.ChainedSQLiteApplicationRecorder`."""

    datastore: SQLiteDatastore
    events_table_name: str

    def idempotency_create_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {SQLITE_KEYS_TABLE} ("
            "key_hash TEXT PRIMARY KEY, "
            "fingerprint TEXT NOT NULL, "
            "attempt TEXT NOT NULL, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "position INTEGER NOT NULL, "
            "recorded_at INTEGER NOT NULL, "
            "status INTEGER, headers TEXT, body BLOB)",
            f"CREATE INDEX IF NOT EXISTS {SQLITE_KEYS_TABLE}_recorded_at "
            f"ON {SQLITE_KEYS_TABLE} (recorded_at)",
        ]

    def record_key(
        self,
        c: SQLiteCursor,
        key: NewKey,
        notification_ids: Sequence[int],
        stored_events: Sequence[StoredEvent],
    ) -> None:
        """In the events' transaction, after their insert."""
        last = stored_events[-1]
        c.execute(
            f"DELETE FROM {SQLITE_KEYS_TABLE} WHERE key_hash = ? AND recorded_at < ?",
            (key.key_hash, _micros(key.replaces_before)),
        )
        c.execute(
            f"INSERT INTO {SQLITE_KEYS_TABLE} ({_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?)",
            (
                key.key_hash,
                key.fingerprint,
                key.attempt,
                canonical_id(last.originator_id),
                last.originator_version,
                max(notification_ids),
                _micros(key.recorded_at),
                key.outcome,
            ),
        )

    def find_key(self, key_hash: str, recorded_after: datetime) -> KeyRecord | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT {_COLUMNS} FROM {SQLITE_KEYS_TABLE} "
                "WHERE key_hash = ? AND recorded_at >= ?",
                (key_hash, _micros(recorded_after)),
            )
            row = c.fetchone()
        if row is None:
            return None
        return _key_record(row, _from_micros(row[6]))

    def store_answer(self, key_hash: str, attempt: str, answer: StoredAnswer) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"UPDATE {SQLITE_KEYS_TABLE} SET status = ?, headers = ?, body = ? "
                "WHERE key_hash = ? AND attempt = ?",
                (answer.status, _headers_json(answer), answer.body, key_hash, attempt),
            )

    def forget_keys(self, recorded_before: datetime) -> int:
        with self.datastore.transaction(commit=True) as c:
            c.execute(
                f"DELETE FROM {SQLITE_KEYS_TABLE} WHERE recorded_at < ?",
                (_micros(recorded_before),),
            )
            c.execute("SELECT changes()")
            return int(c.fetchone()[0])

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT rowid FROM {self.events_table_name} "
                "WHERE originator_id = ? AND originator_version = ?",
                (canonical_id(originator_id), version),
            )
            row = c.fetchone()
        return None if row is None else int(row[0])


class PostgresWriteOutcomes:
    """For :class:`adapters.store.recorders.ChainedPostgresApplicationRecorder`."""

    datastore: PostgresDatastore
    events_table_name: str

    def _keys_sql(self, text: str) -> Composed:
        prefix = self.events_table_name.removesuffix("_events")
        return SQL(text).format(
            schema=Identifier(self.datastore.schema),
            keys=Identifier(f"{prefix}_idempotency_keys"),
            keys_index=Identifier(f"{prefix}_idempotency_keys_recorded_at"),
            events=Identifier(self.events_table_name),
        )

    def idempotency_create_statements(self) -> list[Composed]:
        return [
            self._keys_sql(
                "CREATE TABLE IF NOT EXISTS {schema}.{keys} ("
                "key_hash text PRIMARY KEY, "
                "fingerprint text NOT NULL, "
                "attempt text NOT NULL, "
                "originator_id text NOT NULL, "
                "originator_version bigint NOT NULL, "
                "position bigint NOT NULL, "
                "recorded_at timestamptz NOT NULL, "
                "status integer, headers text, body bytea)"
            ),
            self._keys_sql(
                "CREATE INDEX IF NOT EXISTS {keys_index} ON {schema}.{keys} (recorded_at)"
            ),
        ]

    def record_key(
        self,
        curs: Cursor[DictRow],
        key: NewKey,
        notification_ids: Sequence[int],
        stored_events: Sequence[StoredEvent],
    ) -> None:
        """In the events' transaction, pipelined with its commit: a live row with the
        same hash fails the commit on the primary key."""
        last = stored_events[-1]
        curs.execute(
            self._keys_sql("DELETE FROM {schema}.{keys} WHERE key_hash = %s AND recorded_at < %s"),
            (key.key_hash, key.replaces_before),
        )
        curs.execute(
            self._keys_sql(
                "INSERT INTO {schema}.{keys} "
                "(key_hash, fingerprint, attempt, originator_id, originator_version, "
                "position, recorded_at, body) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            ),
            (
                key.key_hash,
                key.fingerprint,
                key.attempt,
                canonical_id(last.originator_id),
                last.originator_version,
                max(notification_ids),
                key.recorded_at,
                key.outcome,
            ),
        )

    def find_key(self, key_hash: str, recorded_after: datetime) -> KeyRecord | None:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(
                self._keys_sql(
                    f"SELECT {_COLUMNS} FROM {{schema}}.{{keys}} "
                    "WHERE key_hash = %s AND recorded_at >= %s"
                ),
                (key_hash, recorded_after),
            )
            row = c.fetchone()
        if row is None:
            return None
        return _key_record(row, row[6])

    def store_answer(self, key_hash: str, attempt: str, answer: StoredAnswer) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._keys_sql(
                    "UPDATE {schema}.{keys} SET status = %s, headers = %s, body = %s "
                    "WHERE key_hash = %s AND attempt = %s"
                ),
                (answer.status, _headers_json(answer), answer.body, key_hash, attempt),
            )

    def forget_keys(self, recorded_before: datetime) -> int:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._keys_sql("DELETE FROM {schema}.{keys} WHERE recorded_at < %s"),
                (recorded_before,),
            )
            return int(curs.rowcount)

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        native: UUID | str = (
            originator_id if self.datastore.originator_id_type == "uuid" else str(originator_id)
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(
                self._keys_sql(
                    "SELECT notification_id FROM {schema}.{events} "
                    "WHERE originator_id = %s AND originator_version = %s"
                ),
                (native, version),
            )
            row = c.fetchone()
        return None if row is None else int(row[0])
