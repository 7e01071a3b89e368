"""The document store (uploaded and scanned files) and what works on it.

* :mod:`adapters.documents.store`: the interface, its errors and shared behaviour;
* :mod:`adapters.documents.directory` and :mod:`adapters.documents.postgres`: the backends;
* :mod:`adapters.documents.inspection`: what a file is, by its bytes;
* :mod:`adapters.documents.sweep`: removing stored files no event references.
"""

from __future__ import annotations

from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.postgres import PostgresDocumentStore
from adapters.documents.store import DocumentStore
from adapters.settings import Settings


def document_store_for(settings: Settings) -> DocumentStore:
    """The document store the settings ask for; PostgreSQL connects on first use."""
    if settings.documents_in_postgres:
        connection = {
            "host": settings.postgres_host,
            "port": settings.postgres_port,
            "dbname": settings.postgres_dbname,
            "user": settings.postgres_user,
            "password": settings.postgres_password.get_secret_value(),
            "connect_timeout": 5,
        }
        return PostgresDocumentStore(
            connection=connection,
            schema=settings.postgres_schema or None,
            chunk_bytes=settings.document_chunk_bytes,
            pool_size=settings.postgres_pool_size,
        )
    return DirectoryDocumentStore(settings.documents_directory)


__all__ = ["DocumentStore", "document_store_for"]
