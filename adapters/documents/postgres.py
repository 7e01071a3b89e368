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
even while the sweep runs. The sweep deletes a document row only if it is still old
(``stored_at < now() - interval``) in the same statement, which row locks order against
a concurrent write of the same bytes.
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

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredDocument:
        blob_id = uuid.uuid4()
        digest = hashlib.sha256()
        size = 0
        count = 0
        with self._connected() as conn, conn.transaction():
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
        return StoredDocument(sha256, size)

    def put_at(self, address: str, chunks: Iterable[bytes]) -> int:
        require_address(address)
        blob_id = uuid.uuid4()
        size = 0
        count = 0
        with self._connected() as conn, conn.transaction():
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
        return size

    def remove(self, address: str) -> bool:
        require_address(address)
        with self._connected() as conn, conn.transaction():
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
        with self._connected() as conn, conn.transaction():
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
        with self._connected() as conn:
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


def _table(schema: str | None, name: str) -> sql.Composable:
    return sql.Identifier(schema, name) if schema else sql.Identifier(name)
