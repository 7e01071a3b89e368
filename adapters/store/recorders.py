"""Application recorders that chain every event they write (tamper evidence).

Plugged in by :func:`adapters.bootstrap.library_env` through the library's
``APPLICATION_RECORDER_TOPIC``: the library's SQLite and PostgreSQL factories build these
instead of their own recorders, and nothing else changes (events table, notification ids,
subscriptions, snapshots).

**Where the chain lives.** A table beside the events, ``event_chain`` on SQLite (whose
table names are fixed, like ``stored_events``) and ``<app>_event_chain`` on PostgreSQL,
one row per event: ``notification_id`` (primary key), ``originator_id``,
``originator_version`` (unique together), ``stream_hash`` and ``log_hash`` (32 bytes each,
see :mod:`adapters.store.verifier`). A table rather than columns of the events table,
because the library owns that table's shape and its insert statements (on PostgreSQL a
composite type); rows carry stream and version so that a writer finds a stream's last
hash by index, and so that verification can tell a moved event from a changed one. There
is deliberately no foreign key to the events: a deleted event's chain entry must survive
to witness the deletion.

**When it is written.** In the transaction that inserts the events, after the insert, with
one extra statement per batch: on PostgreSQL the library holds ``LOCK TABLE <events> IN
EXCLUSIVE MODE`` there, and on SQLite the transaction holds the database's write lock, so
the last chain entry read there is the previous event of the log and no other writer can
slip in between. PostgreSQL reads the previous hashes in the same pipeline as the lock and
the insert, so the chain costs no extra round trip before the commit.

**Stores that held events before the chain existed.** When the chain table is created in
a store that already holds events, they are chained at once, in log order, in the same
transaction (holding the lock), and a row in ``event_chain_seal`` records up to which
notification id and when. ``akte audit verify`` reports it: those events were chained
when tamper evidence was introduced, so a change made to them before that moment cannot
be detected; everything after is chained as it is written. Sealing keeps one hash per
stream in memory (streams, not events).

Snapshots are not chained: they are derived from the events and may be thrown away.

**Idempotency keys** (:mod:`adapters.store.idempotency_keys`) are written in the same
transaction, after the chain: a save passes one as ``idempotency`` (a
``service_ports.NewKey``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, TypeVar, cast
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg import Cursor
from psycopg.rows import DictRow, TupleRow, tuple_row
from psycopg.sql import SQL, Composed, Identifier

from adapters.store.hash_chain import (
    ChainEntry,
    Chainer,
    Seal,
    StoredRow,
    WindowCheck,
    canonical_id,
)
from adapters.store.idempotency_keys import (
    PostgresWriteOutcomes,
    SQLiteWriteOutcomes,
    new_key_of,
)
from adapters.store.verifier import GENESIS, LOG_TAG, STREAM_TAG

SEAL_BATCH: Final = 10_000
_CHECK_WORK_MEM: Final = "64MB"
"""Sort memory of the server's check of one window (a window of 10,000 ids sorts about
5 MB; ``work_mem`` is 4 MB by default)."""

SQLITE_RECORDER_TOPIC: Final = "adapters.store.recorders:ChainedSQLiteApplicationRecorder"
POSTGRES_RECORDER_TOPIC: Final = "adapters.store.recorders:ChainedPostgresApplicationRecorder"


def _stored_rows(
    notification_ids: Sequence[int], stored_events: Sequence[StoredEvent]
) -> list[StoredRow]:
    return [
        StoredRow(nid, canonical_id(s.originator_id), s.originator_version, s.topic, s.state)
        for nid, s in zip(notification_ids, stored_events, strict=True)
    ]


def _merge(
    events: Sequence[StoredRow], entries: Sequence[ChainEntry]
) -> Iterator[tuple[StoredRow | None, ChainEntry | None]]:
    """Events and entries, both in notification order, paired by notification id."""
    i = j = 0
    while i < len(events) or j < len(entries):
        event = events[i] if i < len(events) else None
        entry = entries[j] if j < len(entries) else None
        if event is not None and (entry is None or event.notification_id < entry.notification_id):
            i += 1
            yield event, None
        elif entry is not None and (event is None or entry.notification_id < event.notification_id):
            j += 1
            yield None, entry
        else:
            i += 1
            j += 1
            yield event, entry


# ----------------------------------------------------------------------- SQLite


class ChainedSQLiteApplicationRecorder(SQLiteWriteOutcomes, SQLiteApplicationRecorder):
    chain_table: Final = "event_chain"
    parallel_reads = False
    """Readers share the datastore's connection and its lock: verify reads one pass at a
    time."""
    seal_table: Final = "event_chain_seal"

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)
        self._insert_chain = f"INSERT INTO {self.chain_table} VALUES (?,?,?,?,?)"
        self._last_log_hash = (
            f"SELECT log_hash FROM {self.chain_table} ORDER BY notification_id DESC LIMIT 1"
        )
        self._last_stream_hash = (
            f"SELECT stream_hash FROM {self.chain_table} WHERE originator_id=? "
            "ORDER BY originator_version DESC LIMIT 1"
        )

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {self.chain_table} ("
            "notification_id INTEGER PRIMARY KEY, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "stream_hash BLOB NOT NULL, "
            "log_hash BLOB NOT NULL, "
            "UNIQUE (originator_id, originator_version))",
            f"CREATE TABLE IF NOT EXISTS {self.seal_table} ("
            "sealed_up_to INTEGER NOT NULL, sealed_at TEXT NOT NULL)",
            *self.idempotency_create_statements(),
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        self._seal(c)

    def _seal(self, c: SQLiteCursor) -> None:
        c.execute(f"SELECT 1 FROM {self.seal_table}")
        if c.fetchone() is not None:
            return
        c.execute(f"SELECT 1 FROM {self.chain_table} LIMIT 1")
        if c.fetchone() is not None:
            # Entries without a seal row: someone deleted it. Re-sealing would bless
            # whatever was changed since; verify reports the missing seal instead.
            return
        c.execute(f"SELECT MAX(rowid) FROM {self.events_table_name}")
        head = c.fetchone()[0] or 0
        chainer = Chainer(GENESIS, {})
        after = 0
        while after < head:
            c.execute(
                f"SELECT rowid, originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ? "
                "ORDER BY rowid LIMIT ?",
                (after, head, SEAL_BATCH),
            )
            rows = [StoredRow(*row) for row in c.fetchall()]
            if not rows:
                break
            c.executemany(self._insert_chain, chainer.link(rows))
            after = rows[-1].notification_id
        c.execute(
            f"INSERT INTO {self.seal_table} VALUES (?, ?)",
            (head, datetime.now(tz=UTC).isoformat()),
        )

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._insert_events(c, stored_events, **kwargs)
        if not stored_events or notification_ids is None:
            return notification_ids
        rows = _stored_rows(notification_ids, stored_events)
        # The transaction holds the write lock since the insert: these are the latest.
        c.execute(self._last_log_hash)
        last = c.fetchone()
        streams: dict[str, bytes] = {}
        for oid in {row.originator_id for row in rows}:
            c.execute(self._last_stream_hash, (oid,))
            found = c.fetchone()
            if found is not None:
                streams[oid] = found[0]
        chainer = Chainer(GENESIS if last is None else last[0], streams)
        c.executemany(self._insert_chain, chainer.link(rows))
        key = new_key_of(kwargs)
        if key is not None:
            self.record_key(c, key, notification_ids, stored_events)
        return notification_ids

    # ------------------------------------------------------------- reading

    def chain_seal(self) -> Seal | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT sealed_up_to, sealed_at FROM {self.seal_table}")
            row = c.fetchone()
        return None if row is None else Seal(row[0], datetime.fromisoformat(row[1]))

    def chain_head(self) -> int:
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                f"SELECT MAX(m) FROM (SELECT MAX(rowid) AS m FROM {self.events_table_name} "
                f"UNION ALL SELECT MAX(notification_id) FROM {self.chain_table})"
            )
            return int(c.fetchone()[0] or 0)

    def last_entry(self) -> ChainEntry | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT * FROM {self.chain_table} ORDER BY notification_id DESC LIMIT 1")
            row = c.fetchone()
        return None if row is None else ChainEntry(*row)

    def log_rows(
        self, stop: int, batch_size: int
    ) -> Iterator[tuple[StoredRow | None, ChainEntry | None]]:
        after = 0
        while after < stop:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT rowid, originator_id, originator_version, topic, state "
                    f"FROM {self.events_table_name} WHERE rowid > ? AND rowid <= ? "
                    "ORDER BY rowid LIMIT ?",
                    (after, stop, batch_size),
                )
                events = [StoredRow(*row) for row in c.fetchall()]
                until = events[-1].notification_id if len(events) == batch_size else stop
                c.execute(
                    f"SELECT * FROM {self.chain_table} WHERE notification_id > ? "
                    "AND notification_id <= ? ORDER BY notification_id",
                    (after, until),
                )
                entries = [ChainEntry(*row) for row in c.fetchall()]
            yield from _merge(events, entries)
            after = until

    def stream_rows(
        self, stop: int, batch_size: int
    ) -> Iterator[tuple[StoredRow, ChainEntry | None]]:
        after: tuple[str, int] = ("", 0)
        while True:
            with self.datastore.transaction(commit=False) as c:
                c.execute(
                    "SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "
                    "c.notification_id, c.originator_id, c.originator_version, c.stream_hash, "
                    f"c.log_hash FROM {self.events_table_name} AS e "
                    f"LEFT JOIN {self.chain_table} AS c ON c.notification_id = e.rowid "
                    "WHERE (e.originator_id, e.originator_version) > (?, ?) AND e.rowid <= ? "
                    "ORDER BY e.originator_id, e.originator_version LIMIT ?",
                    (*after, stop, batch_size),
                )
                rows = c.fetchall()
            for row in rows:
                yield (
                    StoredRow(*row[:5]),
                    None if row[5] is None else ChainEntry(*row[5:]),
                )
            if len(rows) < batch_size:
                return
            after = (rows[-1][1], rows[-1][2])

    def stream_history(
        self, originator_id: UUID
    ) -> list[tuple[StoredRow, ChainEntry | None, ChainEntry | None]]:
        history = []
        with self.datastore.transaction(commit=False) as c:
            c.execute(
                "SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "
                "c.notification_id, c.originator_id, c.originator_version, c.stream_hash, "
                f"c.log_hash FROM {self.events_table_name} AS e "
                f"LEFT JOIN {self.chain_table} AS c ON c.notification_id = e.rowid "
                "WHERE e.originator_id = ? ORDER BY e.originator_version",
                (canonical_id(originator_id),),
            )
            rows = c.fetchall()
            for row in rows:
                c.execute(
                    f"SELECT * FROM {self.chain_table} WHERE notification_id < ? "
                    "ORDER BY notification_id DESC LIMIT 1",
                    (row[0],),
                )
                before = c.fetchone()
                history.append(
                    (
                        StoredRow(*row[:5]),
                        None if row[5] is None else ChainEntry(*row[5:]),
                        None if before is None else ChainEntry(*before),
                    )
                )
        return history


# ------------------------------------------------------------------- PostgreSQL


class ChainedPostgresApplicationRecorder(PostgresWriteOutcomes, PostgresApplicationRecorder):
    parallel_reads = True
    """Each reader has a connection of its own: verify reads both passes side by side."""

    retry_seconds: float = 2.0
    """How long the library's retries of a failed call may go on (it would try ten times,
    each waiting for the pool: twenty seconds and more while the database is away). A
    call that failed at once (a connection the restart broke) is tried again within
    this time; one that waited out the pool is not. :func:`bound_store_waits` sets it to
    the pool timeout."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids: Sequence[int] | None = _within(
            self.retry_seconds,
            lambda: _unretried(PostgresApplicationRecorder.insert_events)(
                self, stored_events, **kwargs
            ),
        )
        return ids

    def select_events(self, originator_id: Any, **kwargs: Any) -> Sequence[StoredEvent]:
        return _within(
            self.retry_seconds,
            lambda: _unretried(PostgresAggregateRecorder.select_events)(
                self, originator_id, **kwargs
            ),
        )

    def select_notifications(self, *args: Any, **kwargs: Any) -> Any:
        return _within(
            self.retry_seconds,
            lambda: _unretried(PostgresApplicationRecorder.select_notifications)(
                self, *args, **kwargs
            ),
        )

    def max_notification_id(self) -> int | None:
        highest: int | None = _within(
            self.retry_seconds,
            lambda: _unretried(PostgresApplicationRecorder.max_notification_id)(self),
        )
        return highest

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        prefix = events_table_name.removesuffix("_events")
        self.chain_table_name = f"{prefix}_event_chain"
        self.seal_table_name = f"{prefix}_event_chain_seal"
        self.check_identifier_length(self.chain_table_name)
        self.check_identifier_length(self.seal_table_name)
        self._pending = threading.local()
        schema = Identifier(self.datastore.schema)
        chain = Identifier(self.chain_table_name)
        events = Identifier(self.events_table_name)
        oid_type = Identifier(self.datastore.originator_id_type)
        names = {"schema": schema, "chain": chain, "events": events, "oid_type": oid_type}
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{chain} ("
                "notification_id bigint PRIMARY KEY, "
                "originator_id {oid_type} NOT NULL, "
                "originator_version bigint NOT NULL, "
                "stream_hash bytea NOT NULL, "
                "log_hash bytea NOT NULL, "
                "UNIQUE (originator_id, originator_version))"
            ).format(**names)
        )
        self.sql_create_statements.append(
            SQL(
                "CREATE TABLE IF NOT EXISTS {schema}.{seal} ("
                "sealed_up_to bigint NOT NULL, sealed_at timestamptz NOT NULL)"
            ).format(schema=schema, seal=Identifier(self.seal_table_name))
        )
        self.sql_create_statements.extend(self.idempotency_create_statements())
        self._select_previous = SQL(
            "SELECT NULL::{oid_type} AS originator_id, log_hash AS hash FROM ("
            "SELECT log_hash FROM {schema}.{chain} ORDER BY notification_id DESC LIMIT 1) AS l "
            "UNION ALL "
            "SELECT o.id, s.stream_hash FROM unnest(%s::{oid_type}[]) AS o(id) "
            "CROSS JOIN LATERAL (SELECT stream_hash FROM {schema}.{chain} "
            "WHERE originator_id = o.id ORDER BY originator_version DESC LIMIT 1) AS s"
        ).format(**names)
        self._insert_chain = SQL(
            "INSERT INTO {schema}.{chain} "
            "(notification_id, originator_id, originator_version, stream_hash, log_hash) "
            "SELECT * FROM unnest(%s::bigint[], %s::{oid_type}[], %s::bigint[], "
            "%s::bytea[], %s::bytea[])"
        ).format(**names)
        self._names = names

    def _sql(self, text: str) -> Composed:
        return SQL(text).format(**self._names, seal=Identifier(self.seal_table_name))

    def _native_id(self, originator_id: str) -> UUID | str:
        return UUID(originator_id) if self.datastore.originator_id_type == "uuid" else originator_id

    @contextmanager
    def _reading(self) -> Iterator[Cursor[TupleRow]]:
        """A cursor for verify's long reads: without parallel workers, which for these
        batches cost three times the time and take the core the verifier hashes on."""
        with (
            self.datastore.get_connection() as conn,
            conn.transaction(),
            # Binary results: bytea arrives as it is stored, not as hex text to decode.
            conn.cursor(row_factory=tuple_row, binary=True) as c,
        ):
            c.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            yield c

    @contextmanager
    def _checking(self) -> Iterator[Cursor[TupleRow]]:
        """A cursor for the server's check of a window: no parallel workers (as for
        :meth:`_reading`), no JIT (its compile time was a tenth of each window's,
        planned for row counts that lagging statistics overstate), enough memory to
        sort a window's rows without spilling them to disk, no merge join (it sorted the
        events with their canonical bytes; a hash join over the entries does not), and
        functions and operators from ``pg_catalog`` only: someone who can create objects
        in a schema cannot slip in a ``sha256`` or ``=`` of their own."""
        with self._reading() as c:
            c.execute("SET LOCAL search_path = pg_catalog")
            c.execute("SET LOCAL jit = off")
            c.execute(f"SET LOCAL work_mem = '{_CHECK_WORK_MEM}'")
            c.execute("SET LOCAL enable_mergejoin = off")
            yield c

    def _hex(self, column: str) -> str:
        """``column`` in canonical form (:func:`canonical_id`), computed by the server."""
        if self.datastore.originator_id_type == "uuid":
            return f"encode(uuid_send({column}), 'hex')"
        return column

    # -------------------------------------------------------------- writing

    def create_table(self) -> None:
        super().create_table()
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(self._sql("SELECT 1 FROM {schema}.{seal}"))
            if curs.fetchone() is not None:
                return
            # Writers (and other processes starting up) wait while existing events are
            # chained; no lock timeout, sealing a large store takes a while.
            curs.execute(SQL("SET LOCAL lock_timeout = 0"))
            curs.execute(SQL("SET LOCAL statement_timeout = 0"))
            curs.execute(self._sql("LOCK TABLE {schema}.{events} IN EXCLUSIVE MODE"))
            self._seal(curs)

    def _seal(self, curs: Cursor[DictRow]) -> None:
        curs.execute(self._sql("SELECT 1 FROM {schema}.{seal}"))
        if curs.fetchone() is not None:
            return
        curs.execute(self._sql("SELECT 1 FROM {schema}.{chain} LIMIT 1"))
        if curs.fetchone() is not None:
            # Entries without a seal row: someone deleted it. Re-sealing would bless
            # whatever was changed since; verify reports the missing seal instead.
            return
        curs.execute(self._sql("SELECT MAX(notification_id) AS head FROM {schema}.{events}"))
        found = curs.fetchone()
        head = int((found or {}).get("head") or 0)
        chainer = Chainer(GENESIS, {})
        after = 0
        select = self._sql(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {schema}.{events} WHERE notification_id > %s AND notification_id <= %s "
            "ORDER BY notification_id LIMIT %s"
        )
        with curs.connection.cursor(row_factory=tuple_row) as reader:
            while after < head:
                reader.execute(select, (after, head, SEAL_BATCH))
                rows = [_pg_stored_row(row) for row in reader.fetchall()]
                if not rows:
                    break
                self._write_entries(reader, chainer.link(rows))
                after = rows[-1].notification_id
        curs.execute(
            self._sql("INSERT INTO {schema}.{seal} VALUES (%s, now())"),
            (head,),
        )

    def _write_entries(self, curs: Cursor[Any], entries: Sequence[ChainEntry]) -> None:
        curs.execute(
            self._insert_chain,
            (
                [e.notification_id for e in entries],
                [self._native_id(e.originator_id) for e in entries],
                [e.version for e in entries],
                [e.stream_hash for e in entries],
                [e.log_hash for e in entries],
            ),
            prepare=True,
        )

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        self._lock_table(curs)
        self._notify_channel(curs)
        # Read the previous hashes under the lock, in the same pipeline as the insert:
        # their results arrive with the insert's, at the library's sync.
        previous = curs.connection.cursor(row_factory=tuple_row)
        streams = list(dict.fromkeys(s.originator_id for s in stored_events))
        previous.execute(self._select_previous, (streams,), prepare=True)
        self._pending.previous = previous
        PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)

    def _fetch_ids_after_insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        notification_ids = super()._fetch_ids_after_insert_events(curs, stored_events, **kwargs)
        previous: Cursor[TupleRow] = self._pending.previous
        del self._pending.previous
        if not notification_ids:
            return notification_ids
        last_log = GENESIS
        streams: dict[str, bytes] = {}
        for oid, found in previous.fetchall():
            if oid is None:
                last_log = found
            else:
                streams[canonical_id(oid)] = found
        previous.close()
        chainer = Chainer(last_log, streams)
        # Pipelined with the commit: no round trip of its own.
        self._write_entries(curs, chainer.link(_stored_rows(notification_ids, stored_events)))
        key = new_key_of(dict(kwargs))
        if key is not None:
            self.record_key(curs, key, notification_ids, stored_events)
        return notification_ids

    # ------------------------------------------------------------- reading

    def chain_seal(self) -> Seal | None:
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                self._sql("SELECT sealed_up_to, sealed_at FROM {schema}.{seal}")
            ).fetchone()
        return None if row is None else Seal(row["sealed_up_to"], row["sealed_at"])

    def chain_head(self) -> int:
        with self.datastore.get_connection() as conn:
            row = conn.execute(
                self._sql(
                    "SELECT GREATEST((SELECT MAX(notification_id) FROM {schema}.{events}), "
                    "(SELECT MAX(notification_id) FROM {schema}.{chain})) AS head"
                )
            ).fetchone()
        return int((row or {}).get("head") or 0)

    def last_entry(self) -> ChainEntry | None:
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(
                self._sql(
                    "SELECT notification_id, originator_id, originator_version, stream_hash, "
                    "log_hash FROM {schema}.{chain} ORDER BY notification_id DESC LIMIT 1"
                )
            )
            row = c.fetchone()
        return None if row is None else _pg_entry(row)

    def log_rows(
        self, stop: int, batch_size: int
    ) -> Iterator[tuple[StoredRow | None, ChainEntry | None]]:
        # Ids come back in canonical form (32 hex digits) from the server: decoding a
        # UUID object per row and formatting it again cost a third of verify's time.
        # A window of ids, not ``LIMIT``: with statistics that lag behind a growing log the
        # planner sorted every row up to ``stop`` for each batch (quadratic); a window is
        # one short index range, whatever the statistics say.
        select_events = self._sql(
            f"SELECT notification_id, {self._hex('originator_id')}, originator_version, "
            "topic, state FROM {schema}.{events} "
            "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id"
        )
        select_entries = self._sql(
            f"SELECT notification_id, {self._hex('originator_id')}, originator_version, "
            "stream_hash, log_hash FROM {schema}.{chain} "
            "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id"
        )
        after = 0
        while after < stop:
            with self._reading() as c:
                until = min(stop, after + batch_size)
                c.execute(select_events, (after, until))
                events = list(map(StoredRow._make, c.fetchall()))
                c.execute(select_entries, (after, until))
                entries = list(map(ChainEntry._make, c.fetchall()))
            yield from _merge(events, entries)
            after = until

    def stream_rows(
        self, stop: int, batch_size: int
    ) -> Iterator[tuple[StoredRow, ChainEntry | None]]:
        columns = (
            f"SELECT e.notification_id, {self._hex('e.originator_id')}, e.originator_version, "
            "e.topic, e.state, c.notification_id, "
            f"{self._hex('c.originator_id')}, c.originator_version, c.stream_hash, c.log_hash "
            "FROM {schema}.{events} AS e "
            "LEFT JOIN {schema}.{chain} AS c ON c.notification_id = e.notification_id "
        )
        first = self._sql(
            columns + "WHERE e.notification_id <= %s "
            "ORDER BY e.originator_id, e.originator_version LIMIT %s"
        )
        following = self._sql(
            columns + "WHERE (e.originator_id, e.originator_version) > (%s, %s) "
            "AND e.notification_id <= %s "
            "ORDER BY e.originator_id, e.originator_version LIMIT %s"
        )
        after: tuple[UUID | str, int] | None = None
        while True:
            with self._reading() as c:
                if after is None:
                    c.execute(first, (stop, batch_size))
                else:
                    c.execute(following, (*after, stop, batch_size))
                rows = c.fetchall()
            for row in rows:
                yield (
                    StoredRow._make(row[:5]),
                    None if row[5] is None else ChainEntry._make(row[5:]),
                )
            if len(rows) < batch_size:
                return
            after = (self._native_id(rows[-1][1]), rows[-1][2])

    # ------------------------------------------- verify with the server's digests

    def server_digests(self) -> bool:
        """Whether the server builds the canonical bytes exactly as :func:`link_hash`: its
        text is UTF-8 (``convert_to`` then changes nothing) and it has ``sha256``."""
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(
                "SELECT current_setting('server_encoding'), "
                "current_setting('server_version_num')::int"
            )
            row = c.fetchone()
        return row is not None and row[0] == "UTF8" and row[1] >= 110000

    def _canonical(self, alias: str) -> str:
        """The canonical bytes of a stored event after ``previous`` (see
        :mod:`adapters.store.verifier`), as a SQL expression over the events row ``alias``."""
        oid = f"convert_to({self._hex(f'{alias}.originator_id')}, 'UTF8')"
        topic = f"convert_to({alias}.topic, 'UTF8')"
        return (
            f"int4send(octet_length({oid})) || {oid} || int8send({alias}.originator_version) || "
            f"int4send(octet_length({topic})) || {topic} || "
            f"int8send(octet_length({alias}.state)::bigint) || {alias}.state"
        )

    def check_window(self, after: int, until: int) -> WindowCheck:
        """Recompute both links of every chain entry with notification ids in ``(after,
        until]`` on the server, and say whether all of them check (see
        :func:`adapters.store.hash_chain.verify_chains`). Only three numbers come back."""
        # c: the window's chain entries, each with the log entry before it (across the
        # window's start too) and its stream's entry before it where that is in the
        # window; p: the stream's entry before it elsewhere, by the unique index, only
        # where the window does not hold it; e: the events, each with its canonical bytes.
        select = self._sql(
            "SELECT count(e.nid), count(c.nid), COALESCE(bool_and(COALESCE("
            "e.oid = c.oid AND e.v = c.v "
            "AND CASE WHEN c.prev_v IS NOT NULL THEN c.prev_v = c.v - 1 AND c.prev_nid < c.nid "
            "WHEN c.v = 1 THEN true ELSE p.nid < c.nid END "
            "AND sha256(%(log_tag)s::bytea || c.prev_log || e.body) = c.log_hash "
            "AND sha256(%(stream_tag)s::bytea "
            "|| COALESCE(c.prev_stream, p.stream_hash, %(genesis)s::bytea) || e.body) "
            "= c.stream_hash, false)), true) "
            "FROM (SELECT notification_id AS nid, originator_id AS oid, "
            "originator_version AS v, stream_hash, log_hash, "
            "lag(log_hash, 1, COALESCE((SELECT log_hash FROM {schema}.{chain} "
            "WHERE notification_id <= %(after)s ORDER BY notification_id DESC LIMIT 1), "
            "%(genesis)s::bytea)) OVER (ORDER BY notification_id) AS prev_log, "
            "lag(originator_version) OVER s AS prev_v, lag(notification_id) OVER s AS prev_nid, "
            "lag(stream_hash) OVER s AS prev_stream "
            "FROM {schema}.{chain} "
            "WHERE notification_id > %(after)s AND notification_id <= %(until)s "
            "WINDOW s AS (PARTITION BY originator_id ORDER BY originator_version)) AS c "
            "FULL JOIN (SELECT notification_id AS nid, originator_id AS oid, "
            f"originator_version AS v, {self._canonical('x')} AS body "
            "FROM {schema}.{events} AS x "
            "WHERE notification_id > %(after)s AND notification_id <= %(until)s OFFSET 0) AS e "
            "ON e.nid = c.nid "
            "LEFT JOIN LATERAL (SELECT q.notification_id AS nid, q.stream_hash "
            "FROM {schema}.{chain} AS q WHERE c.prev_v IS NULL AND c.v > 1 "
            "AND q.originator_id = c.oid AND q.originator_version = c.v - 1 LIMIT 1) AS p "
            "ON true"
        )
        params = {
            "after": after,
            "until": until,
            "log_tag": LOG_TAG,
            "stream_tag": STREAM_TAG,
            "genesis": GENESIS,
        }
        with self._checking() as c:
            c.execute(select, params, prepare=True)
            row = c.fetchone()
        assert row is not None
        return WindowCheck(int(row[0]), int(row[1]), bool(row[2]))

    def log_hashes_at(self, notification_ids: Sequence[int], stop: int) -> dict[int, bytes]:
        """The log hashes of the chain entries at these notification ids, up to ``stop``."""
        with self._reading() as c:
            c.execute(
                self._sql(
                    "SELECT notification_id, log_hash FROM {schema}.{chain} "
                    "WHERE notification_id = ANY(%s) AND notification_id <= %s"
                ),
                (list(notification_ids), stop),
            )
            return {int(nid): bytes(log_hash) for nid, log_hash in c.fetchall()}

    def log_head(self, stop: int) -> tuple[int, bytes] | None:
        """The chain entry with the highest notification id up to ``stop``."""
        with self._reading() as c:
            c.execute(
                self._sql(
                    "SELECT notification_id, log_hash FROM {schema}.{chain} "
                    "WHERE notification_id <= %s ORDER BY notification_id DESC LIMIT 1"
                ),
                (stop,),
            )
            row = c.fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def stream_history(
        self, originator_id: UUID
    ) -> list[tuple[StoredRow, ChainEntry | None, ChainEntry | None]]:
        select = self._sql(
            "SELECT e.notification_id, e.originator_id, e.originator_version, e.topic, e.state, "
            "c.notification_id, c.originator_id, c.originator_version, c.stream_hash, c.log_hash, "
            "b.notification_id, b.originator_id, b.originator_version, b.stream_hash, b.log_hash "
            "FROM {schema}.{events} AS e "
            "LEFT JOIN {schema}.{chain} AS c ON c.notification_id = e.notification_id "
            "LEFT JOIN LATERAL (SELECT * FROM {schema}.{chain} AS p "
            "WHERE p.notification_id < e.notification_id "
            "ORDER BY p.notification_id DESC LIMIT 1) AS b ON true "
            "WHERE e.originator_id = %s ORDER BY e.originator_version"
        )
        native = (
            originator_id if self.datastore.originator_id_type == "uuid" else str(originator_id)
        )
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(select, (native,))
            rows = c.fetchall()
        return [
            (
                _pg_stored_row(row[:5]),
                None if row[5] is None else _pg_entry(row[5:10]),
                None if row[10] is None else _pg_entry(row[10:]),
            )
            for row in rows
        ]


def _pg_stored_row(row: Sequence[Any]) -> StoredRow:
    return StoredRow(row[0], canonical_id(row[1]), row[2], row[3], bytes(row[4]))


def _pg_entry(row: Sequence[Any]) -> ChainEntry:
    return ChainEntry(row[0], canonical_id(row[1]), row[2], bytes(row[3]), bytes(row[4]))


def bound_store_waits(
    recorder: object, *, connect_timeout: int, statement_timeout: int, retry_seconds: float
) -> None:
    """Give every PostgreSQL connection of ``recorder``'s pool deadlines: opening one
    takes at most ``connect_timeout`` seconds, a statement runs at most
    ``statement_timeout`` seconds (0: no limit), and the library's retries of a failed
    call end ``retry_seconds`` after the first try. The pool's wait for a free connection
    is the library's ``POSTGRES_CONNECT_TIMEOUT`` (:func:`adapters.bootstrap.library_env`).

    The pool is open already (the tables were made): its connections are replaced by
    ones with the deadlines. Nothing to do on SQLite, whose waits are its busy timeout.
    """
    datastore = getattr(recorder, "datastore", None)
    if not isinstance(datastore, PostgresDatastore):
        return
    pool = datastore.pool
    if not isinstance(pool.kwargs, dict):
        return  # the library builds it as a dict; anything else is not ours to change
    if isinstance(recorder, ChainedPostgresApplicationRecorder):
        recorder.retry_seconds = float(retry_seconds)
    pool.kwargs["connect_timeout"] = connect_timeout
    pool.kwargs["options"] = f"-c statement_timeout={statement_timeout * 1000}"
    if not pool.closed:
        pool.drain()


_RETRY_WAIT: Final = 0.2
_T = TypeVar("_T")


def _unretried(method: Callable[..., _T]) -> Callable[..., _T]:
    """The library's method without its ``@retry`` (which keeps the original)."""
    return cast(Callable[..., _T], getattr(method, "__wrapped__", method))


def _within(seconds: float, call: Callable[[], _T]) -> _T:
    """``call()``, tried again after the library's connection errors while ``seconds``
    have not passed since the first try (as the library would, but bounded in time)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return call()
        except (InterfaceError, OperationalError):
            if time.monotonic() + _RETRY_WAIT >= deadline:
                raise
            time.sleep(_RETRY_WAIT)
