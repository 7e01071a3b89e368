"""Kept histories beside the snapshots, so a long file's history is written once per
store, not once per process.

:mod:`adapters.reports.kept_histories` keeps the entries written for a long case file's
history, sealed with the file's own data key, in the API process's memory. A new process
(a deployment, a restart, a second API replica) started with nothing kept, and its first
request of a 5,000-event file decoded all 5,000 events (about 90 ms here). This keeps the
same sealed blobs in a table of the store, where any process of the shard finds them:

**The table** ``<app>_kept_histories`` on PostgreSQL (``akte_kept_histories`` in the
shard's schema, beside ``akte_snapshots``), ``stored_kept_histories`` in the SQLite
events file: ``case_id``, ``view`` (``personal`` or ``withheld``), ``writer`` (the code
that wrote the entries, :func:`adapters.reports.kept_histories.writer_fingerprint`),
``version`` (the entries are those of versions 1 to it), ``sealed`` (nonce and AES-GCM
ciphertext, as kept in memory) and ``kept_at``. One row per file and view; a row is
replaced only by one with more entries, or by another release's (the release in service
then keeps its own; during a rolling deployment the two may replace each other's).

**Why beside the snapshots.** Both are the file's state sealed whole with its key, written
from its immutable events, and both go together: an erasure deletes the kept histories and
then the snapshots (:class:`adapters.store.snapshot_deletion.RecorderSnapshotDeletion`), a
backup copies both with the events (``akte_*``, one snapshot), and a restore brings both
back consistent with the events they were written from. An API process whose key cache
still holds the erased file's key (for up to a minute) may put a history back after the
erasure: sealed with the destroyed key, it opens for nobody, and ``akte histories keep``
removes it.

**A cache, not a record.** Nothing depends on a row being there: a store that cannot
answer reads as nothing kept (the history is written from the events) and a failed write
is left for a later request. The errors are swallowed here, by their database types only.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any, Final
from uuid import UUID
from weakref import WeakKeyDictionary

import psycopg
from eventsourcing.persistence import AggregateRecorder, ApplicationRecorder, PersistenceError
from psycopg import sql

from service import AkteService

_STORE_ERRORS: Final = (PersistenceError, psycopg.Error, sqlite3.Error)


def shelf_table(snapshots_table: str) -> str:
    """``akte_snapshots`` → ``akte_kept_histories``; ``stored_snapshots`` →
    ``stored_kept_histories``."""
    return snapshots_table.removesuffix("snapshots") + "kept_histories"


def create_statement(dialect: str, table: str) -> str:
    """The table's ``CREATE TABLE IF NOT EXISTS`` (``table`` as the statement names it):
    made at every start and by step 2 of the events store's schema
    (:mod:`adapters.store.migrations`)."""
    if dialect == "postgres":
        return (
            f"CREATE TABLE IF NOT EXISTS {table} (case_id text NOT NULL, view text NOT NULL, "
            "writer text NOT NULL, version bigint NOT NULL, sealed bytea NOT NULL, "
            "kept_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (case_id, view))"
        )
    return (
        f"CREATE TABLE IF NOT EXISTS {table} (case_id TEXT NOT NULL, view TEXT NOT NULL, "
        "writer TEXT NOT NULL, version INTEGER NOT NULL, sealed BLOB NOT NULL, "
        "kept_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (case_id, view))"
    )


class KeptHistoryShelf:
    """The kept histories of one store, in the database of its snapshot recorder (the
    protocol :class:`adapters.reports.kept_histories.KeptShelf`)."""

    def __init__(self, snapshots: AggregateRecorder) -> None:
        recorder: Any = snapshots
        self._datastore: Any = recorder.datastore
        name = shelf_table(recorder.events_table_name)
        self._postgres = hasattr(self._datastore, "schema")
        # One text per statement, the table as ``{}`` and parameters as ``?``: composed
        # SQL with ``%s`` on PostgreSQL, plain text on SQLite.
        if self._postgres:
            table = sql.SQL("{}.{}").format(
                sql.Identifier(self._datastore.schema), sql.Identifier(name)
            )

            def statement(text: str) -> Any:
                return sql.SQL(text.replace("?", "%s")).format(table)

        else:

            def statement(text: str) -> Any:
                return text.format(name)

        dialect = "postgres" if self._postgres else "sqlite"
        self._create = statement(create_statement(dialect, "{}"))
        self._load = statement(
            "SELECT version, sealed FROM {} WHERE case_id = ? AND view = ? AND writer = ?"
        )
        self._save = statement(
            "INSERT INTO {} AS kept (case_id, view, writer, version, sealed) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (case_id, view) DO UPDATE "
            "SET writer = excluded.writer, version = excluded.version, "
            "sealed = excluded.sealed, kept_at = CURRENT_TIMESTAMP "
            "WHERE kept.version < excluded.version OR kept.writer <> excluded.writer"
        )
        self._discard = statement(
            "DELETE FROM {} WHERE case_id = ? AND view = ? AND writer = ? AND version = ?"
        )
        self._version = statement(
            "SELECT version FROM {} WHERE case_id = ? AND view = ? AND writer = ?"
        )
        self._files = statement("SELECT DISTINCT case_id FROM {}")
        self._delete = statement("DELETE FROM {} WHERE case_id = ?")

    def create_table(self) -> None:
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._create)

    def load(self, case_id: UUID, view: str, writer: str) -> tuple[int, bytes] | None:
        """The version and sealed blob ``writer`` kept for the file in this view; None if
        none is kept, another writer's is, or the store cannot answer now."""
        try:
            with self._datastore.transaction(commit=False) as cursor:
                if self._postgres:
                    # Binary results: the blob (some MB) as bytes, not as hex text to
                    # parse; 2 ms instead of 13 for 1.8 MB here.
                    cursor.execute(self._load, (str(case_id), view, writer), binary=True)
                else:
                    cursor.execute(self._load, (str(case_id), view, writer))
                row = cursor.fetchone()
        except _STORE_ERRORS:
            return None
        if row is None:
            return None
        return int(row["version"]), bytes(row["sealed"])

    def save(
        self, case_id: UUID, view: str, writer: str, version: int, sealed: bytes
    ) -> bool | None:
        """Keep ``sealed`` unless the same writer kept as many entries or more: True if
        kept, False if refused so, None if the store could not answer."""
        try:
            with self._datastore.transaction(commit=True) as cursor:
                cursor.execute(self._save, (str(case_id), view, writer, version, sealed))
                return bool(self._rowcount(cursor))
        except _STORE_ERRORS:
            return None

    def discard(self, case_id: UUID, view: str, writer: str, version: int) -> None:
        """Delete the row ``writer`` kept for the file in this view if it still holds
        ``version`` (a blob that no longer opens)."""
        try:
            with self._datastore.transaction(commit=True) as cursor:
                cursor.execute(self._discard, (str(case_id), view, writer, version))
        except _STORE_ERRORS:
            return

    def kept_version(self, case_id: UUID, view: str, writer: str) -> int | None:
        """How many entries ``writer`` kept for the file in this view (None: none), without
        reading them; raises if the store cannot answer."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._version, (str(case_id), view, writer))
            row = cursor.fetchone()
        return None if row is None else int(row["version"])

    def files(self) -> list[UUID]:
        """Every file something is kept for; raises if the store cannot answer."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._files)
            rows = cursor.fetchall()
        return [UUID(str(row["case_id"])) for row in rows]

    def delete(self, case_id: UUID) -> int:
        """Delete what is kept for the file in every view (an erasure); raises if the
        store cannot, as deleting the snapshots does."""
        with self._datastore.transaction(commit=True) as cursor:
            cursor.execute(self._delete, (str(case_id),))
            return int(self._rowcount(cursor))

    def _rowcount(self, cursor: Any) -> int:
        return int(cursor.rowcount if self._postgres else cursor.sqlite_cursor.rowcount)


_SHELVES: Final[WeakKeyDictionary[Any, KeptHistoryShelf]] = WeakKeyDictionary()
_SHELVES_LOCK: Final = threading.Lock()


def shelf_of(service: AkteService) -> KeptHistoryShelf | None:
    """The shelf of the service's store (one per snapshot recorder, made once), None for a
    service without snapshots (its histories are kept in memory only)."""
    snapshots = service.snapshots
    if snapshots is None:
        return None
    recorder = snapshots.recorder
    with _SHELVES_LOCK:
        shelf = _SHELVES.get(recorder)
        if shelf is None:
            shelf = _SHELVES[recorder] = KeptHistoryShelf(recorder)
    return shelf


def long_streams(events: ApplicationRecorder, min_events: int) -> list[UUID]:
    """The aggregates of ``events`` with at least ``min_events`` events, the longest
    first: the case files whose histories are worth keeping (``akte histories keep``).
    One pass over the events table's primary key."""
    recorder: Any = events
    datastore: Any = recorder.datastore
    table = recorder.events_table_name
    if hasattr(datastore, "schema"):  # PostgreSQL
        statement: Any = sql.SQL(
            "SELECT originator_id FROM {}.{} GROUP BY originator_id "
            "HAVING max(originator_version) >= %s ORDER BY max(originator_version) DESC"
        ).format(sql.Identifier(datastore.schema), sql.Identifier(table))
    else:
        statement = (
            f"SELECT originator_id FROM {table} GROUP BY originator_id "
            "HAVING max(originator_version) >= ? ORDER BY max(originator_version) DESC"
        )
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(statement, (min_events,))
        rows = cursor.fetchall()
    return [_uuid(row["originator_id"]) for row in rows]


def _uuid(stored: Any) -> UUID:
    return stored if isinstance(stored, UUID) else UUID(str(stored))


class StepsInLog:
    """Where the log shows aggregates reaching a multiple of a step, whoever wrote them:
    what the API process's history keeper follows to keep the files that other processes
    (an import, the inbox worker, ticks) grew long
    (:meth:`adapters.reports.history_keeper.HistoryKeeper.follow_log`)."""

    def __init__(self, events: ApplicationRecorder) -> None:
        recorder: Any = events
        self._recorder = recorder
        self._datastore: Any = recorder.datastore
        table = recorder.events_table_name
        if hasattr(self._datastore, "schema"):  # PostgreSQL
            self._statement: Any = sql.SQL(
                "SELECT originator_id, originator_version FROM {}.{} WHERE notification_id > %s "
                "AND notification_id <= %s AND originator_version >= %s "
                "AND originator_version %% %s = 0 ORDER BY notification_id"
            ).format(sql.Identifier(self._datastore.schema), sql.Identifier(table))
        else:
            self._statement = (
                f"SELECT originator_id, originator_version FROM {table} WHERE rowid > ? "
                "AND rowid <= ? "
                "AND originator_version >= ? AND originator_version % ? = 0 ORDER BY rowid"
            )

    def head(self) -> int:
        """The log's last position (0: empty); raises if the store cannot answer."""
        return int(self._recorder.max_notification_id() or 0)

    def reached(self, after: int, until: int, step: int, min_events: int) -> list[tuple[UUID, int]]:
        """The aggregates, with the version, whose event between the two positions
        (``after`` excluded) has a version of at least ``min_events`` that is a multiple of
        ``step``, in log order: one short range of the log's primary key."""
        with self._datastore.transaction(commit=False) as cursor:
            cursor.execute(self._statement, (after, until, min_events, step))
            rows = cursor.fetchall()
        return [(_uuid(row["originator_id"]), int(row["originator_version"])) for row in rows]
