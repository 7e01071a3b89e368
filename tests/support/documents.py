"""Reaching behind a document store's back: its raw bytes, as an attacker with a copy of
the documents directory or of the chunk table would see them."""

from __future__ import annotations

import psycopg
from psycopg import sql

from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.encryption import EncryptedDocumentStore
from adapters.documents.postgres import CHUNKS_TABLE, PostgresDocumentStore
from adapters.documents.store import DocumentStore
from service_ports import DocumentStore as DocumentStorePort
from tests.conftest import POSTGRES


def backend_of(store: DocumentStorePort | DocumentStore) -> DocumentStore:
    if isinstance(store, EncryptedDocumentStore):
        return store.backend
    assert isinstance(store, DocumentStore)
    return store


def raw_stored_bytes(store: DocumentStorePort | DocumentStore, schema: str | None) -> bytes:
    """Every byte the store holds: each file under a directory store (documents, writes
    in progress), or every chunk row of a PostgreSQL store (one object's in order)."""
    backend = backend_of(store)
    if isinstance(backend, DirectoryDocumentStore):
        files = sorted(path for path in backend.root.rglob("*") if path.is_file())
        return b"\n".join(path.read_bytes() for path in files)
    assert isinstance(backend, PostgresDocumentStore)
    table = sql.Identifier(schema, CHUNKS_TABLE) if schema else sql.Identifier(CHUNKS_TABLE)
    with psycopg.connect(**POSTGRES) as conn:
        rows = conn.execute(
            sql.SQL("SELECT data FROM {} ORDER BY blob_id, chunk_index").format(table)
        ).fetchall()
    return b"".join(bytes(row[0]) for row in rows)
