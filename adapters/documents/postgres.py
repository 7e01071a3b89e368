"""Documents in PostgreSQL, next to the event log: for several API hosts, one backup.

Two tables, in the event store's schema::

    akte_documents        sha256 (key), blob_id, size_bytes, chunk_count, stored_at
    akte_document_chunks  blob_id, chunk_index, data (bytea, at most one chunk: 1 MiB)

The ``sha256`` column holds the object's address: a document's sha256 for what was written
in clear (before documents were encrypted), or an encrypted document's keyed address
(:meth:`PostgresDocumentStore.put_at`, which replaces the object under it).

A write streams its chunks under a fresh ``blob_id`` and, in the same transaction, then
claims the hash with ``INSERT … ON CONFLICT (sha256) DO UPDATE SET stored_at = now()``:
if the hash was already there, its own chunks are deleted again (deduplicated) and the
existing document's time renewed. A crash or error rolls the whole write back, so a
document is there completely or not at all. Reads fetch one chunk per query inside one
repeatable-read transaction: never a whole document in memory, and a consistent view
even while the sweep runs. Inside :meth:`DocumentStore.writing_together` a thread's
writes share one connection and one transaction, each unit (a legacy file's scans) in a
savepoint, the statements sent in pipeline mode, committed together
(:class:`PostgresBatch`): one WAL flush for many documents instead of one each.

The sweep deletes a document row only if it is still old (``stored_at < now() -
interval``) in the same statement, which row locks order against a concurrent write of
the same bytes.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from adapters.documents.store import (
    DEFAULT_CHUNK_BYTES,
    DocumentBatch,
    DocumentCorrupted,
    DocumentNotStored,
    DocumentStore,
    DocumentStoreUnavailable,
    StoredDocument,
    StoredEntry,
    rechunk,
    require_address,
)
from adapters.store.failover import follow_primary

DOCUMENTS_TABLE: Final = "akte_documents"
CHUNKS_TABLE: Final = "akte_document_chunks"
_SCHEMA_LOCK: Final = 0x616B7465_646F6373
"""An advisory lock key ("aktedocs"): hosts starting together create the tables once."""
_ENTRIES_PAGE: Final = 1000


class PostgresDocumentStore(DocumentStore):
    def __init__(
        self,
        *,
        connection: dict[str, Any],
        schema: str | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        pool_size: int = 5,
    ) -> None:
        """``connection``: psycopg's connect arguments (host, port, dbname, user, ...).

        Nothing connects until the first use, so an app that never touches a document
        opens no connection.
        """
        self.chunk_bytes = chunk_bytes
        self._connection = dict(connection)
        self._pool_size = pool_size
        self._pool: ConnectionPool | None = None
        self._lock = threading.Lock()
        self._documents = _table(schema, DOCUMENTS_TABLE)
        self._chunks = _table(schema, CHUNKS_TABLE)

    # ------------------------------------------------------------ connections

    def _open_pool(self) -> ConnectionPool:
        with self._lock:
            if self._pool is None:
                pool = ConnectionPool(
                    kwargs=self._connection,
                    min_size=1,
                    max_size=self._pool_size,
                    open=True,
                    name="akte-documents",
                    timeout=10,
                    **follow_primary(self._connection.get("host")),
                )
                try:
                    with pool.connection() as conn:
                        self._create_tables(conn)
                except BaseException:
                    pool.close()
                    raise
                self._pool = pool
            return self._pool

    @contextmanager
    def _connected(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            pool = self._open_pool()
            with pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as error:
            # The first line only: drivers add details (values, hosts) on later ones.
            reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
            msg = f"the document store (PostgreSQL) is unavailable: {reason}"
            raise DocumentStoreUnavailable(msg) from None

    def _create_tables(self, conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {documents} ("
                    " sha256 text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{{64}}$'),"
                    " blob_id uuid NOT NULL UNIQUE,"
                    " size_bytes bigint NOT NULL CHECK (size_bytes >= 0),"
                    " chunk_count integer NOT NULL CHECK (chunk_count >= 0),"
                    " stored_at timestamptz NOT NULL)"
                ).format(documents=self._documents)
            )
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {chunks} ("
                    " blob_id uuid NOT NULL,"
                    " chunk_index integer NOT NULL,"
                    " data bytea NOT NULL,"
                    " PRIMARY KEY (blob_id, chunk_index))"
                ).format(chunks=self._chunks)
            )
            # Scans and photos are compressed already: no second try at compressing them.
            conn.execute(
                sql.SQL("ALTER TABLE {chunks} ALTER COLUMN data SET STORAGE EXTERNAL").format(
                    chunks=self._chunks
                )
            )

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    # ---------------------------------------------------------------- writes

    @contextmanager
    def _writing(self) -> Iterator[psycopg.Connection[Any]]:
        """A connection in a transaction for one write: its own, or in a batch the
        batch's, in a savepoint (a write that fails leaves the batch as it was)."""
        batch = self.current_batch()
        if isinstance(batch, PostgresBatch):
            with batch.savepoint() as conn:
                yield conn
        else:
            with self._connected() as conn, conn.transaction():
                yield conn

    def _wrote(self, address: str, size: int) -> None:
        batch = self.current_batch()
        if batch is not None:
            batch.wrote(address, size)

    def _new_batch(self) -> DocumentBatch:
        return PostgresBatch(self)

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredDocument:
        blob_id = uuid.uuid4()
        digest = hashlib.sha256()
        size = 0
        count = 0
        with self._writing() as conn:
            insert_chunk = sql.SQL(
                "INSERT INTO {chunks} (blob_id, chunk_index, data) VALUES (%s, %s, %s)"
            ).format(chunks=self._chunks)
            for chunk in rechunk(chunks, self.chunk_bytes):
                digest.update(chunk)
                size += len(chunk)
                conn.execute(insert_chunk, (blob_id, count, chunk))
                count += 1
            sha256 = digest.hexdigest()
            claimed = conn.execute(
                sql.SQL(
                    "INSERT INTO {documents} (sha256, blob_id, size_bytes, chunk_count, stored_at)"
                    " VALUES (%s, %s, %s, %s, now())"
                    " ON CONFLICT (sha256) DO UPDATE SET stored_at = now()"
                    " RETURNING blob_id, size_bytes"
                ).format(documents=self._documents),
                (sha256, blob_id, size, count),
            ).fetchone()
            assert claimed is not None  # RETURNING of an upsert always yields its row
            if claimed[0] != blob_id:
                # Stored before: keep that copy, drop ours.
                conn.execute(
                    sql.SQL("DELETE FROM {chunks} WHERE blob_id = %s").format(chunks=self._chunks),
                    (blob_id,),
                )
            else:
                self._wrote(sha256, size)
        return StoredDocument(sha256, size)

    def put_at(self, address: str, chunks: Iterable[bytes]) -> int:
        require_address(address)
        if isinstance(self.current_batch(), PostgresBatch):
            return self._put_at_in_batch(address, chunks)
        blob_id = uuid.uuid4()
        size = 0
        count = 0
        with self._writing() as conn:
            insert_chunk = sql.SQL(
                "INSERT INTO {chunks} (blob_id, chunk_index, data) VALUES (%s, %s, %s)"
            ).format(chunks=self._chunks)
            for chunk in rechunk(chunks, self.chunk_bytes):
                size += len(chunk)
                conn.execute(insert_chunk, (blob_id, count, chunk))
                count += 1
            # The row lock orders this against a concurrent write or sweep of the address.
            previous = conn.execute(
                sql.SQL("SELECT blob_id FROM {documents} WHERE sha256 = %s FOR UPDATE").format(
                    documents=self._documents
                ),
                (address,),
            ).fetchone()
            conn.execute(
                sql.SQL(
                    "INSERT INTO {documents} (sha256, blob_id, size_bytes, chunk_count, stored_at)"
                    " VALUES (%s, %s, %s, %s, now())"
                    " ON CONFLICT (sha256) DO UPDATE SET blob_id = excluded.blob_id,"
                    " size_bytes = excluded.size_bytes, chunk_count = excluded.chunk_count,"
                    " stored_at = now()"
                ).format(documents=self._documents),
                (address, blob_id, size, count),
            )
            if previous is not None:
                conn.execute(
                    sql.SQL("DELETE FROM {chunks} WHERE blob_id = %s").format(chunks=self._chunks),
                    (previous[0],),
                )
            self._wrote(address, size)
        return size

    def _put_at_in_batch(self, address: str, chunks: Iterable[bytes]) -> int:
        """:meth:`put_at` in a batch: the same rows, sent in the batch's pipeline (no
        round trip per statement), the document row claimed in one statement."""
        blob_id = uuid.uuid4()
        size = 0
        count = 0
        insert_chunk = sql.SQL(
            "INSERT INTO {chunks} (blob_id, chunk_index, data) VALUES (%s, %s, %s)"
        ).format(chunks=self._chunks)
        claim = sql.SQL(
            # The row lock orders this against a concurrent write or sweep of the address;
            # the chunks of a copy it replaces go in the same statement.
            "WITH previous AS (SELECT blob_id FROM {documents} WHERE sha256 = %(address)s"
            " FOR UPDATE), claimed AS (INSERT INTO {documents}"
            " (sha256, blob_id, size_bytes, chunk_count, stored_at)"
            " VALUES (%(address)s, %(blob_id)s, %(size)s, %(count)s, now())"
            " ON CONFLICT (sha256) DO UPDATE SET blob_id = excluded.blob_id,"
            " size_bytes = excluded.size_bytes, chunk_count = excluded.chunk_count,"
            " stored_at = now())"
            " DELETE FROM {chunks} WHERE blob_id IN (SELECT blob_id FROM previous)"
        ).format(documents=self._documents, chunks=self._chunks)
        with self._writing() as conn:  # the batch's connection is in pipeline mode
            for chunk in rechunk(chunks, self.chunk_bytes):
                size += len(chunk)
                conn.execute(insert_chunk, (blob_id, count, chunk))
                count += 1
            conn.execute(
                claim, {"address": address, "blob_id": blob_id, "size": size, "count": count}
            )
        self._wrote(address, size)
        return size

    def remove(self, address: str) -> bool:
        require_address(address)
        with self._writing() as conn:
            deleted = conn.execute(
                sql.SQL("DELETE FROM {documents} WHERE sha256 = %s RETURNING blob_id").format(
                    documents=self._documents
                ),
                (address,),
            ).fetchone()
            if deleted is None:
                return False
            conn.execute(
                sql.SQL("DELETE FROM {chunks} WHERE blob_id = %s").format(chunks=self._chunks),
                (deleted[0],),
            )
        return True

    def compact(self) -> None:
        # Deleted rows keep their bytes in dead tuples until vacuumed; VACUUM cannot run
        # inside a transaction block, hence autocommit.
        with self._connected() as conn:
            autocommit = conn.autocommit
            conn.autocommit = True
            try:
                conn.execute(sql.SQL("VACUUM {chunks}").format(chunks=self._chunks))
                conn.execute(sql.SQL("VACUUM {documents}").format(documents=self._documents))
            finally:
                conn.autocommit = autocommit

    def renew_if_stored(self, document: StoredDocument) -> bool:
        require_address(document.sha256)
        if isinstance(self.current_batch(), PostgresBatch):
            # Not asked in a batch (a round trip per document): the write that follows
            # replaces a copy stored already with the same bytes, in the same transaction
            # (and renews its time), which is what renewing it would have achieved.
            return False
        with self._writing() as conn:
            renewed = conn.execute(
                sql.SQL(
                    "UPDATE {documents} SET stored_at = now()"
                    " WHERE sha256 = %s AND size_bytes = %s RETURNING 1"
                ).format(documents=self._documents),
                (document.sha256, document.size_bytes),
            ).fetchone()
        return renewed is not None

    # ----------------------------------------------------------------- reads

    def stored_chunks(self, sha256: str) -> Iterator[bytes]:
        require_address(sha256)
        with self._connected() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            row = conn.execute(
                sql.SQL(
                    "SELECT blob_id, size_bytes, chunk_count FROM {documents} WHERE sha256 = %s"
                ).format(documents=self._documents),
                (sha256,),
            ).fetchone()
            if row is None:
                raise DocumentNotStored(sha256)
            blob_id, size_bytes, chunk_count = row
            select_chunk = sql.SQL(
                "SELECT data FROM {chunks} WHERE blob_id = %s AND chunk_index = %s"
            ).format(chunks=self._chunks)
            size = 0
            for index in range(chunk_count):
                chunk = conn.execute(select_chunk, (blob_id, index)).fetchone()
                if chunk is None:
                    raise DocumentCorrupted(sha256, f"chunk {index} of {chunk_count} is missing")
                data = bytes(chunk[0])
                size += len(data)
                yield data
            if size != size_bytes:
                raise DocumentCorrupted(sha256, f"{size} bytes stored, {size_bytes} recorded")

    def contains(self, sha256: str) -> bool:
        require_address(sha256)
        batch = self.current_batch()
        # In a batch, its own writes count.
        connected = batch.savepoint() if isinstance(batch, PostgresBatch) else self._connected()
        with connected as conn:
            found = conn.execute(
                sql.SQL("SELECT 1 FROM {documents} WHERE sha256 = %s").format(
                    documents=self._documents
                ),
                (sha256,),
            ).fetchone()
        return found is not None

    def entries(self) -> Iterator[StoredEntry]:
        after = ""
        while True:
            with self._connected() as conn:
                rows = conn.execute(
                    sql.SQL(
                        "SELECT sha256, size_bytes, stored_at FROM {documents}"
                        " WHERE sha256 > %s ORDER BY sha256 LIMIT %s"
                    ).format(documents=self._documents),
                    (after, _ENTRIES_PAGE),
                ).fetchall()
            for sha256, size_bytes, stored_at in rows:
                yield StoredEntry(sha256=sha256, size_bytes=size_bytes, stored_at=stored_at)
            if len(rows) < _ENTRIES_PAGE:
                return
            after = rows[-1][0]

    # ----------------------------------------------------------------- sweep

    def delete_unless_recent(self, sha256: str, older_than: timedelta) -> bool:
        require_address(sha256)
        with self._connected() as conn, conn.transaction():
            deleted = conn.execute(
                sql.SQL(
                    "DELETE FROM {documents} WHERE sha256 = %s AND stored_at < now() - %s"
                    " RETURNING blob_id"
                ).format(documents=self._documents),
                (sha256, older_than),
            ).fetchone()
            if deleted is None:
                return False
            conn.execute(
                sql.SQL("DELETE FROM {chunks} WHERE blob_id = %s").format(chunks=self._chunks),
                (deleted[0],),
            )
        return True


class PostgresBatch(DocumentBatch):
    """One connection, one transaction for a thread's writes until :meth:`commit`.

    Each :meth:`unit` runs in a savepoint (and each write outside a unit): a unit that
    raises is rolled back alone and the batch goes on. The connection stays in pipeline
    mode: statements are sent without waiting for their answers, which come with the
    commit (or a statement whose result is read); no round trip per document, nor per
    statement. Any error of the database ends the batch (reported late, it may belong to
    an earlier write): every
    later write and commit raises :class:`DocumentStoreUnavailable`, so nothing that
    refers to the batch's documents is written after it.
    """

    max_units = 60
    """Each unit is a savepoint, a subtransaction: past 64 in one transaction the
    server's cache of them overflows, which slows every other session's reads."""

    _UNIT: Final = "akte_documents_unit"
    _WRITE: Final = "akte_documents_write"

    def __init__(self, store: PostgresDocumentStore) -> None:
        super().__init__(store)
        self._store = store
        self._holding = store._connected()
        self._conn: psycopg.Connection[Any] = self._holding.__enter__()
        self._broken = False
        self._unit_mark: tuple[int, int] | None = None
        self._pipeline = self._conn.pipeline()
        try:
            self._pipeline.__enter__()
        except psycopg.Error as error:
            self._holding.__exit__(None, None, None)
            self._fail(error)

    def _check(self) -> None:
        if self._broken:
            msg = "the document store (PostgreSQL) is unavailable: an earlier write failed"
            raise DocumentStoreUnavailable(msg)

    def _execute(self, statement: str) -> None:
        self._check()
        try:
            self._conn.execute(statement)
        except psycopg.Error as error:
            self._fail(error)

    def _fail(self, error: psycopg.Error) -> None:
        self._broken = True
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        msg = f"the document store (PostgreSQL) is unavailable: {reason}"
        raise DocumentStoreUnavailable(msg) from None

    @contextmanager
    def savepoint(self) -> Iterator[psycopg.Connection[Any]]:
        """The batch's connection for one write: in a savepoint of its own, or inside a
        unit in the unit's (a failing write fails its unit, which is rolled back)."""
        if self._unit_mark is not None:
            self._check()
            try:
                yield self._conn
            except psycopg.Error as error:
                self._fail(error)
            return
        self._execute(f"SAVEPOINT {self._WRITE}")
        try:
            yield self._conn
        except psycopg.Error as error:
            self._fail(error)
        except BaseException:
            self._execute(f"ROLLBACK TO SAVEPOINT {self._WRITE}")
            self._execute(f"RELEASE SAVEPOINT {self._WRITE}")
            raise
        self._execute(f"RELEASE SAVEPOINT {self._WRITE}")

    @contextmanager
    def unit(self) -> Iterator[None]:
        if self._unit_mark is not None:
            msg = "units of a batch do not nest"
            raise RuntimeError(msg)
        self._execute(f"SAVEPOINT {self._UNIT}")
        self._unit_mark = (len(self.pending), self.pending_bytes)
        try:
            yield
        except BaseException:
            written, size = self._unit_mark
            self._unit_mark = None
            if not self._broken:
                self._execute(f"ROLLBACK TO SAVEPOINT {self._UNIT}")
                self._execute(f"RELEASE SAVEPOINT {self._UNIT}")
            del self.pending[written:]
            self.pending_bytes = size
            raise
        self._unit_mark = None
        self._execute(f"RELEASE SAVEPOINT {self._UNIT}")

    def commit(self) -> None:
        super().commit()
        if self._unit_mark is not None:
            # Committed in the middle of a unit (its command's events are being
            # written): what the unit writes from here on is rolled back on its own.
            self._execute(f"SAVEPOINT {self._UNIT}")
            self._unit_mark = (0, 0)

    def _commit(self) -> None:
        self._check()  # never report a lost batch as committed
        try:
            self._conn.commit()
        except psycopg.Error as error:
            self._fail(error)

    def referenced(self) -> None:
        if self._unit_mark is not None and not self._broken:
            # What the unit wrote so far stays with the saved command; from here on a
            # failure rolls back only what follows.
            self._execute(f"RELEASE SAVEPOINT {self._UNIT}")
            self._execute(f"SAVEPOINT {self._UNIT}")
            self._unit_mark = (len(self.pending), self.pending_bytes)

    def discard(self) -> None:
        super().discard()
        if not self._broken:
            try:
                self._conn.rollback()
            except psycopg.Error:
                self._broken = True

    def close(self) -> None:
        try:
            self._pipeline.__exit__(None, None, None)
        except psycopg.Error:
            self._broken = True
        try:
            idle = self._conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
            if not self._broken and not idle:
                self._conn.rollback()
        except psycopg.Error:
            pass
        finally:
            self._holding.__exit__(None, None, None)


def _table(schema: str | None, name: str) -> sql.Composable:
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)
