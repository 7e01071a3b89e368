"""Where read models live: a SQLite file of their own, or the events' PostgreSQL schema.

SQLite: ``<data_dir>/views.sqlite3``, never the events file (the library's table names
there are fixed, and a rebuild must not lock the event store). WAL mode, so queries
never wait for a batch being written; ``synchronous=NORMAL``: a power cut may lose the
last committed batches, but rows and position are lost together, so they are simply
processed again. Writers take ``BEGIN IMMEDIATE``; a projection is followed by one
worker at a time through a lock file per projection (``flock``, released by the kernel
when the holder dies).

PostgreSQL: the same database and schema as the events (``AKTE_POSTGRES_SCHEMA`` or
``public``), table names prefixed ``akte_view_``; the writer commits with
``synchronous_commit = off`` for the same reason as SQLite's ``synchronous=NORMAL``.
Each projection is followed by one worker at a time through a session advisory lock held
by the writer's connection (released when that connection ends, however it ends).

Driver errors never leave this module raw: they become :class:`ViewsStoreUnavailable`
(or :class:`ViewNotBuilt` for a table that does not exist yet) carrying only the
driver's first line, which names the failure, not the data; a row the store refuses
(a NUL character in text on PostgreSQL, a violated constraint) becomes
:class:`ViewsRowRefused`, naming only the error's type and SQLSTATE, as it fails the
same way on every retry.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import psycopg
import psycopg_pool
from psycopg import sql

from adapters.store.failover import bound_reconnects, failover_connection_args
from projections.errors import ViewNotBuilt, ViewsRowRefused, ViewsStoreUnavailable
from projections.storage import (
    Column,
    ColumnType,
    Dialect,
    TableSchema,
    ViewsSession,
    ViewsWriter,
)

T = TypeVar("T")

TABLE_PREFIX: Final = "akte_view_"
SQLITE_FILE_NAME: Final = "views.sqlite3"
_SQLITE_BUSY_TIMEOUT_SECONDS: Final = 10.0
_READER_POOL_SIZE: Final = 4
_SWITCH_LOCK_ATTEMPT_MS: Final = 100
"""How long one attempt to take a read model's tables for a switch waits for readers."""
_SWITCH_LOCK_PAUSE_SECONDS: Final = 0.05
_SWITCH_LOCK_WAIT_SECONDS: Final = 60.0
_MAX_REASON_LENGTH: Final = 200


def _reason(error: BaseException) -> str:
    # Only the first line: drivers put details such as offending key values on later lines.
    lines = str(error).strip().splitlines()
    return lines[0][:_MAX_REASON_LENGTH] if lines else type(error).__name__


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


# ------------------------------------------------------------------------ SQLite


def _sqlite_date(value: date) -> str:
    return value.isoformat()


def _sqlite_timestamp(value: datetime) -> str:
    # One fixed width in UTC, so text order is time order (keyset pagination compares).
    return value.astimezone(UTC).isoformat(timespec="microseconds")


_SQLITE_TYPES: Final[dict[ColumnType, str]] = {
    "text": "TEXT",
    "integer": "INTEGER",
    "date": "TEXT",
    "timestamp": "TEXT",
}
_SQLITE_ENCODERS: Final[dict[ColumnType, Callable[[Any], Any] | None]] = {
    "text": None,
    "integer": None,
    "date": _sqlite_date,
    "timestamp": _sqlite_timestamp,
}
_SQLITE_DECODERS: Final[dict[ColumnType, Callable[[Any], Any] | None]] = {
    "text": None,
    "integer": None,
    "date": date.fromisoformat,
    "timestamp": datetime.fromisoformat,
}


def _sqlite_error(error: sqlite3.Error) -> Exception:
    if isinstance(error, sqlite3.OperationalError) and "no such table" in str(error):
        return ViewNotBuilt(f"a read model is not built yet: {_reason(error)}")
    if isinstance(error, _SQLITE_REFUSALS):
        return ViewsRowRefused(f"the views store (SQLite) refused a row: {type(error).__name__}")
    return ViewsStoreUnavailable(f"the views store (SQLite) failed: {_reason(error)}")


_SQLITE_REFUSALS: Final = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.InterfaceError,
)
"""Errors that come back the same on every retry of the batch (not a store gone away)."""


class _SqliteSession:
    dialect: Final[Dialect] = "sqlite"
    param: Final = "?"
    lock_row_suffix: Final = ""  # BEGIN IMMEDIATE already excludes other writers

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def table(self, name: str) -> str:
        return _quote(TABLE_PREFIX + name)

    def encoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        return _SQLITE_ENCODERS[column_type]

    def decoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        return _SQLITE_DECODERS[column_type]

    def fetch(self, sql_text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.connection.execute(sql_text, params).fetchall()
        except sqlite3.Error as error:
            raise _sqlite_error(error) from None

    def table_exists(self, name: str) -> bool:
        rows = self.fetch(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
            (TABLE_PREFIX + name,),
        )
        return bool(rows)


class _SqliteWriter(_SqliteSession):
    def __init__(self, connection: sqlite3.Connection, lock_dir: Path) -> None:
        super().__init__(connection)
        self._lock_dir = lock_dir
        self._locks: dict[str, int] = {}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise _sqlite_error(error) from None
        try:
            yield
        except BaseException:
            # The original error says more than a failing rollback would.
            with contextlib.suppress(sqlite3.Error):
                self.connection.execute("ROLLBACK")
            raise
        try:
            self.connection.execute("COMMIT")
        except sqlite3.Error as error:
            raise _sqlite_error(error) from None

    def execute(self, sql_text: str, params: Sequence[Any] = ()) -> None:
        try:
            self.connection.execute(sql_text, params)
        except sqlite3.Error as error:
            raise _sqlite_error(error) from None

    def executemany(self, sql_text: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self.connection.executemany(sql_text, rows)
        except sqlite3.Error as error:
            raise _sqlite_error(error) from None

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        placeholders = ", ".join("?" for _ in columns)
        self.executemany(
            f"INSERT INTO {self.table(table)} ({', '.join(columns)}) VALUES ({placeholders})",
            rows,
        )

    def create_table(self, schema: TableSchema) -> None:
        for statement in _create_statements(schema, self.table, _SQLITE_TYPES, TABLE_PREFIX):
            self.execute(statement)

    def drop_table(self, name: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.table(name)}")

    def rename_table(self, name: str, new_name: str) -> None:
        self.execute(f"ALTER TABLE {self.table(name)} RENAME TO {self.table(new_name)}")

    def lock_tables(self, names: Sequence[str]) -> None:
        pass  # WAL: readers keep the snapshot they started with; BEGIN IMMEDIATE does the rest

    def lock_schema(self) -> None:
        pass  # BEGIN IMMEDIATE already serialises every writer

    def case_in(self, column: str, case_ids: Sequence[str]) -> tuple[str, Any]:
        # One JSON parameter instead of one per id: no limit on the number of ids.
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(case_ids))

    def keys_in(
        self, columns: Sequence[Column], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, tuple[Any, ...]]:
        # One JSON parameter of arrays, a row value per key. Cast to the columns' types:
        # without them SQLite looks up only the first column of the key by the index.
        names = ", ".join(column.name for column in columns)
        values = ", ".join(
            f"CAST(json_extract(value, '$[{index}]') AS {_SQLITE_TYPES[column.type]})"
            for index, column in enumerate(columns)
        )
        condition = f"({names}) IN (SELECT {values} FROM json_each(?))"
        return condition, (json.dumps([list(key) for key in keys]),)

    def try_lock(self, name: str) -> bool:
        if name in self._locks:
            return True
        try:
            self._lock_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(self._lock_dir / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            msg = f"the views store's lock directory failed: {_reason(error)}"
            raise ViewsStoreUnavailable(msg) from None
        try:
            # flock (not fcntl record locks): two descriptors in one process exclude
            # each other too, so two runners in one process cannot both follow.
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._locks[name] = descriptor
        return True

    def unlock(self, name: str) -> None:
        descriptor = self._locks.pop(name, None)
        if descriptor is not None:
            fcntl.flock(descriptor, fcntl.LOCK_UN)
            os.close(descriptor)

    def close(self) -> None:
        for name in list(self._locks):
            self.unlock(name)
        self.connection.close()


def _use_wal(connection: sqlite3.Connection) -> None:
    """Put the file in WAL mode, once: a file in WAL mode stays in it.

    Switching needs the file to itself, and SQLite answers "database is locked" at once,
    without waiting out the busy timeout, while another connection writes to a file not
    yet in WAL mode (waiting could deadlock): a reader opened while the first writer
    makes the tables of a new file. So the mode is asked first and the switch tried again
    until the busy timeout has passed."""
    deadline = time.monotonic() + _SQLITE_BUSY_TIMEOUT_SECONDS
    pause = 0.005
    while True:
        try:
            (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
            if str(mode).lower() != "wal":
                connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(pause)
            pause = min(pause * 2, 0.1)


class SqliteViewsStore:
    """Read models in a SQLite file of their own."""

    dialect: Final[Dialect] = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_dir = path.with_name(path.name + ".locks")
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    @property
    def where(self) -> str:
        return f"SQLite file {self.path}"

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(
                self.path,
                timeout=_SQLITE_BUSY_TIMEOUT_SECONDS,
                isolation_level=None,  # transactions are explicit (BEGIN IMMEDIATE)
                check_same_thread=False,  # pooled: one thread at a time uses it
            )
            _use_wal(connection)
            connection.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as error:
            raise _sqlite_error(error) from None
        except OSError as error:
            msg = f"the views store ({self.where}) is unavailable: {_reason(error)}"
            raise ViewsStoreUnavailable(msg) from None
        return connection

    def writer(self) -> ViewsWriter:
        return _SqliteWriter(self._connect(), self._lock_dir)

    def reader(self) -> AbstractContextManager[ViewsSession]:
        return self._reading()

    @contextmanager
    def _reading(self) -> Iterator[ViewsSession]:
        with self._readers_lock:
            connection = self._idle_readers.pop() if self._idle_readers else None
        if connection is None:
            connection = self._connect()
        healthy = False
        try:
            try:
                # One read transaction: every query of a page sees the same snapshot.
                connection.execute("BEGIN")
            except sqlite3.Error as error:
                raise _sqlite_error(error) from None
            yield _SqliteSession(connection)
            healthy = True
        finally:
            try:
                connection.execute("ROLLBACK")
            except sqlite3.Error:
                healthy = False
            with self._readers_lock:
                if healthy and not self._closed and len(self._idle_readers) < _READER_POOL_SIZE:
                    self._idle_readers.append(connection)
                    connection = None
            if connection is not None:
                connection.close()

    def close(self) -> None:
        with self._readers_lock:
            self._closed = True
            idle, self._idle_readers = self._idle_readers, []
        for connection in idle:
            connection.close()


# -------------------------------------------------------------------- PostgreSQL


_POSTGRES_TYPES: Final[dict[ColumnType, str]] = {
    "text": "text",
    "integer": "bigint",
    "date": "date",
    "timestamp": "timestamptz",
}


def _postgres_error(error: psycopg.Error) -> Exception:
    if isinstance(error, psycopg.errors.UndefinedTable):
        return ViewNotBuilt(f"a read model is not built yet: {_reason(error)}")
    if isinstance(error, psycopg.DataError | psycopg.IntegrityError):
        return ViewsRowRefused(f"the views store (PostgreSQL) refused a row: {_refusal(error)}")
    return ViewsStoreUnavailable(f"the views store (PostgreSQL) failed: {_reason(error)}")


def _refusal(error: psycopg.Error) -> str:
    """The error's type and SQLSTATE: a refusal's message may quote the refused value."""
    if "NUL (0x00)" in str(error):
        return f"{type(error).__name__}, text with a NUL character"
    return (
        f"{type(error).__name__}, SQLSTATE {error.sqlstate}"
        if error.sqlstate
        else type(error).__name__
    )


def advisory_lock_key(schema: str, name: str) -> int:
    """A stable signed 64-bit key per schema and projection (locks are per database)."""
    digest = hashlib.blake2b(f"akte_view:{schema}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _PostgresSession:
    dialect: Final[Dialect] = "postgres"
    param: Final = "%s"
    lock_row_suffix: Final = " FOR UPDATE"

    def __init__(self, connection: psycopg.Connection[Any], schema: str) -> None:
        self.connection = connection
        self.schema = schema

    def table(self, name: str) -> str:
        return f"{_quote(self.schema)}.{_quote(TABLE_PREFIX + name)}"

    def encoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        return None

    def decoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        return None

    def fetch(self, sql_text: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.connection.execute(sql_text.encode(), params).fetchall()
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def table_exists(self, name: str) -> bool:
        rows = self.fetch(
            "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s",
            (self.schema, TABLE_PREFIX + name),
        )
        return bool(rows)


class _PostgresWriter(_PostgresSession):
    def __init__(self, connection: psycopg.Connection[Any], schema: str) -> None:
        super().__init__(connection, schema)
        self._locks: set[str] = set()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        try:
            with self.connection.transaction():
                yield
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def execute(self, sql_text: str, params: Sequence[Any] = ()) -> None:
        try:
            self.connection.execute(sql_text.encode(), params)
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def executemany(self, sql_text: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            with self.connection.cursor() as cursor:
                cursor.executemany(sql_text.encode(), rows)
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        statement = f"COPY {self.table(table)} ({', '.join(columns)}) FROM STDIN"
        try:
            with self.connection.cursor() as cursor, cursor.copy(statement.encode()) as copy:
                for row in rows:
                    copy.write_row(row)
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def create_table(self, schema: TableSchema) -> None:
        for statement in _create_statements(schema, self.table, _POSTGRES_TYPES, TABLE_PREFIX):
            self.execute(statement)

    def drop_table(self, name: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {self.table(name)}")

    def rename_table(self, name: str, new_name: str) -> None:
        self.execute(f"ALTER TABLE {self.table(name)} RENAME TO {_quote(TABLE_PREFIX + new_name)}")

    def lock_tables(self, names: Sequence[str]) -> None:
        present = [name for name in names if self.table_exists(name)]
        if not present:
            return
        statement = (
            f"LOCK TABLE {', '.join(self.table(name) for name in present)} IN ACCESS EXCLUSIVE MODE"
        )
        deadline = time.monotonic() + _SWITCH_LOCK_WAIT_SECONDS
        while True:
            try:
                # A savepoint per attempt: a timed-out attempt gives back what it took (the
                # transaction's other locks stay). Readers queue behind a waiting LOCK, so
                # each attempt waits briefly; a reader holding one table and wanting another
                # this LOCK already took then waits for this attempt, never for a deadlock.
                with self.connection.transaction():
                    self.connection.execute(
                        f"SET LOCAL lock_timeout = {_SWITCH_LOCK_ATTEMPT_MS}".encode()
                    )
                    self.connection.execute(statement.encode())
                self.connection.execute(b"SET LOCAL lock_timeout TO DEFAULT")
                return
            except psycopg.errors.LockNotAvailable:
                if time.monotonic() >= deadline:
                    msg = "the views store (PostgreSQL) failed: readers kept a read model busy"
                    raise ViewsStoreUnavailable(msg) from None
                time.sleep(_SWITCH_LOCK_PAUSE_SECONDS)
            except psycopg.Error as error:
                raise _postgres_error(error) from None

    def lock_schema(self) -> None:
        # Concurrent CREATE TABLE IF NOT EXISTS can still collide in PostgreSQL's catalog.
        self.fetch("SELECT pg_advisory_xact_lock(%s)", (advisory_lock_key(self.schema, "~schema"),))

    def case_in(self, column: str, case_ids: Sequence[str]) -> tuple[str, Any]:
        return f"{column} = ANY(%s)", list(case_ids)

    def keys_in(
        self, columns: Sequence[Column], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, tuple[Any, ...]]:
        # One array per column, unnested side by side into the keys' rows.
        names = ", ".join(column.name for column in columns)
        arrays = ", ".join(f"%s::{_POSTGRES_TYPES[column.type]}[]" for column in columns)
        condition = f"({names}) IN (SELECT * FROM unnest({arrays}))"
        return condition, tuple([key[index] for key in keys] for index in range(len(columns)))

    def try_lock(self, name: str) -> bool:
        if name in self._locks:
            return True
        rows = self.fetch(
            "SELECT pg_try_advisory_lock(%s)", (advisory_lock_key(self.schema, name),)
        )
        if rows and rows[0][0]:
            self._locks.add(name)
            return True
        return False

    def unlock(self, name: str) -> None:
        if name in self._locks:
            self._locks.discard(name)
            self.fetch("SELECT pg_advisory_unlock(%s)", (advisory_lock_key(self.schema, name),))

    def close(self) -> None:
        # Closing the session releases its advisory locks too.
        self._locks.clear()
        self.connection.close()


class PostgresListener:
    """A connection that LISTENs on a channel; :meth:`wait` returns on a NOTIFY.

    LISTEN may hang on a connection that died silently (eventsourcing issue 305): TCP
    keepalives detect a dead peer, :meth:`check` runs a query to prove the connection
    alive, and callers never rely on notifications alone (they poll too).
    """

    def __init__(self, connection: psycopg.Connection[Any], channel: str) -> None:
        self._connection = connection
        try:
            connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except psycopg.Error as error:
            connection.close()
            raise _postgres_error(error) from None

    def wait(self, timeout: float) -> bool:
        """True when at least one notification arrived within ``timeout`` seconds."""
        try:
            return any(True for _ in self._connection.notifies(timeout=timeout, stop_after=1))
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def check(self) -> None:
        try:
            self._connection.execute("SELECT 1")
        except psycopg.Error as error:
            raise _postgres_error(error) from None

    def close(self) -> None:
        self._connection.close()


class PostgresViewsStore:
    """Read models in the events' PostgreSQL database and schema."""

    dialect: Final[Dialect] = "postgres"

    def __init__(
        self,
        *,
        host: str,
        port: int | str,
        dbname: str,
        user: str,
        password: str = "",
        schema: str = "public",
        connect_timeout: int = 5,
        pool_timeout: float = 10.0,
        read_statement_timeout: int = 0,
        read_only: bool = False,
        target_session_attrs: str = "",
        servers: str = "",
    ) -> None:
        """``pool_timeout``: how long a read waits for a connection; and
        ``read_statement_timeout``: how long one read may run (seconds, 0: no limit). The
        runner's writer has no statement limit: a rebuild's batch may take long.
        ``read_only``: every transaction of every connection is read-only (a replica's
        views, :mod:`adapters.views.replica`). ``target_session_attrs``: libpq's, with
        several hosts in ``host`` and ``port`` (``read-write``: the primary of them,
        :mod:`adapters.store.failover`). ``servers``: how messages name the servers
        (``Settings.postgres_servers``, ``db1:5432, db2:5433``; default ``host:port``)."""
        self.schema = schema
        self._pool_timeout = pool_timeout
        self._read_options = (
            f" -c statement_timeout={read_statement_timeout * 1000}"
            if read_statement_timeout
            else ""
        )
        options = "-c TimeZone=UTC" + (" -c default_transaction_read_only=on" if read_only else "")
        servers = servers or f"{host}:{port}"
        self._display = f"PostgreSQL at {servers}, database {dbname}, schema {schema}"
        self._connect_kwargs: dict[str, Any] = {
            "host": host,
            "port": port,
            "dbname": dbname,
            "user": user,
            "connect_timeout": connect_timeout,
            # Timestamps come back in UTC, whatever the server's default.
            "options": options,
            # A dead peer is noticed within about 30 s, even while idle in LISTEN.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        if password:
            self._connect_kwargs["password"] = password
        # With failover, the connection follows the primary; a pooled one to a primary
        # that died is checked and dropped before a read gets it.
        self._connect_kwargs.update(failover_connection_args(target_session_attrs))
        self._check = psycopg_pool.ConnectionPool.check_connection if target_session_attrs else None
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pool_lock = threading.Lock()

    @property
    def where(self) -> str:
        return self._display

    def connect(self, *, application_name: str = "akte-views") -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(
                autocommit=True, application_name=application_name, **self._connect_kwargs
            )
        except psycopg.Error as error:
            msg = f"the views store ({self.where}) is unavailable: {_reason(error)}"
            raise ViewsStoreUnavailable(msg) from None

    def writer(self) -> ViewsWriter:
        connection = self.connect(application_name=f"akte-projections {self.schema}"[:63])
        try:
            # A commit need not wait for its WAL flush: a server crash may lose the last
            # batches, but rows and position together, so they are simply redone.
            connection.execute("SET synchronous_commit = off")
            # A batch looks up a few thousand case ids: with the default cost of 4 (disks
            # that seek) the planner scans whole view tables instead, more so as they grow.
            connection.execute("SET random_page_cost = 1.1")
        except psycopg.Error as error:
            connection.close()
            raise _postgres_error(error) from None
        return _PostgresWriter(connection, self.schema)

    def listener(self, channel: str) -> PostgresListener:
        connection = self.connect(application_name=f"akte-listen {self.schema}"[:63])
        return PostgresListener(connection, channel)

    def reader(self) -> AbstractContextManager[ViewsSession]:
        return self._reading()

    def _reader_pool(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Any]]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = psycopg_pool.ConnectionPool(
                    kwargs={
                        **self._connect_kwargs,
                        "options": self._connect_kwargs["options"] + self._read_options,
                        "application_name": f"akte-views {self.schema}"[:63],
                    },
                    min_size=0,
                    max_size=_READER_POOL_SIZE,
                    timeout=self._pool_timeout,
                    open=True,
                    check=self._check,
                )
                bound_reconnects(self._pool)
            return self._pool

    @contextmanager
    def _reading(self) -> Iterator[ViewsSession]:
        try:
            with self._reader_pool().connection() as connection:
                # One read transaction per page (the pool commits it), not autocommit.
                yield _PostgresSession(connection, self.schema)
        except psycopg.Error as error:
            raise _postgres_error(error) from None
        except psycopg_pool.PoolTimeout as error:
            msg = f"the views store ({self.where}) is unavailable: {_reason(error)}"
            raise ViewsStoreUnavailable(msg) from None

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


# ------------------------------------------------------------------------ shared


def _create_statements(
    schema: TableSchema,
    qualify: Callable[[str], str],
    column_types: dict[ColumnType, str],
    prefix: str,
) -> list[str]:
    columns = [
        f"{column.name} {column_types[column.type]}{'' if column.nullable else ' NOT NULL'}"
        for column in schema.columns
    ]
    columns.append(f"PRIMARY KEY ({', '.join(schema.primary_key)})")
    statements = [f"CREATE TABLE IF NOT EXISTS {qualify(schema.name)} ({', '.join(columns)})"]
    for number, index in enumerate(schema.indexes, start=1):
        index_name = _quote(f"{prefix}{schema.name}_i{number}")
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {index_name} ON {qualify(schema.name)} "
            f"({', '.join(index)})"
        )
    return statements


__all__ = [
    "SQLITE_FILE_NAME",
    "TABLE_PREFIX",
    "PostgresListener",
    "PostgresViewsStore",
    "SqliteViewsStore",
    "advisory_lock_key",
]
