"""The document store: one suite over both backends (a directory, PostgreSQL).

Content addressing, atomic writes (a failed write leaves nothing under any hash),
deduplication, verification on every read (a corrupted or shortened document raises),
streaming in chunks, and the orphan sweep (removes what no event references, never what
one does, never what was stored within the grace period).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.inspection import (
    EmptyFile,
    FileTooLarge,
    UnreadableFile,
    UnsupportedFileType,
    count_pdf_pages,
    inspect_file,
)
from adapters.documents.postgres import CHUNKS_TABLE, DOCUMENTS_TABLE, PostgresDocumentStore
from adapters.documents.store import (
    DocumentCorrupted,
    DocumentNotStored,
    DocumentStore,
    SourceChanged,
    StoredDocument,
)
from adapters.documents.sweep import sweep_orphans
from adapters.simulation.legacy_scans import make_jpeg, make_pdf, make_png
from tests.conftest import POSTGRES

CHUNK = 4096
"""Small chunks, so that every test document spans several."""
SECOND = timedelta(seconds=1)


class Backend:
    """A store under test, and how to reach behind its back (to corrupt or age a file)."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store

    def corrupt(self, sha256: str) -> None:
        raise NotImplementedError

    def shorten(self, sha256: str) -> None:
        raise NotImplementedError

    def age(self, sha256: str, by: timedelta) -> None:
        raise NotImplementedError

    def leftovers(self) -> int:
        """Everything stored that is not a complete document (half files, stray chunks)."""
        raise NotImplementedError


class DirectoryBackend(Backend):
    def __init__(self, root: Path) -> None:
        super().__init__(DirectoryDocumentStore(root, chunk_bytes=CHUNK))
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / "objects" / sha256[:2] / sha256

    def corrupt(self, sha256: str) -> None:
        data = bytearray(self.path(sha256).read_bytes())
        data[len(data) // 2] ^= 0xFF
        self.path(sha256).write_bytes(bytes(data))

    def shorten(self, sha256: str) -> None:
        with self.path(sha256).open("r+b") as file:
            file.truncate(file.seek(0, 2) - 1)

    def age(self, sha256: str, by: timedelta) -> None:
        then = self.path(sha256).stat().st_mtime - by.total_seconds()
        os.utime(self.path(sha256), (then, then))

    def leftovers(self) -> int:
        return len(list((self.root / "incoming").iterdir()))


class PostgresBackend(Backend):
    def __init__(self, schema: str) -> None:
        super().__init__(
            PostgresDocumentStore(connection=dict(POSTGRES), schema=schema, chunk_bytes=CHUNK)
        )
        self.schema = schema

    def _execute(self, statement: str, *params: Any) -> list[Any]:
        query = sql.SQL(statement).format(
            documents=sql.Identifier(self.schema, DOCUMENTS_TABLE),
            chunks=sql.Identifier(self.schema, CHUNKS_TABLE),
        )
        with psycopg.connect(autocommit=True, **POSTGRES) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def corrupt(self, sha256: str) -> None:
        self._execute(
            "UPDATE {chunks} SET data = overlay(data placing '\\xff'::bytea from 3)"
            " WHERE chunk_index = 1 AND blob_id = (SELECT blob_id FROM {documents}"
            " WHERE sha256 = %s)",
            sha256,
        )

    def shorten(self, sha256: str) -> None:
        self._execute(
            "DELETE FROM {chunks} WHERE chunk_index = 1 AND blob_id ="
            " (SELECT blob_id FROM {documents} WHERE sha256 = %s)",
            sha256,
        )

    def age(self, sha256: str, by: timedelta) -> None:
        self._execute(
            "UPDATE {documents} SET stored_at = stored_at - %s WHERE sha256 = %s", by, sha256
        )

    def leftovers(self) -> int:
        rows = self._execute(
            "SELECT count(*) FROM {chunks} c WHERE NOT EXISTS"
            " (SELECT 1 FROM {documents} d WHERE d.blob_id = c.blob_id)"
        )
        return int(rows[0][0])


@pytest.fixture(params=["directory", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "directory":
        chosen: Backend = DirectoryBackend(tmp_path / "documents")
    else:
        chosen = PostgresBackend(request.getfixturevalue("postgres_schema"))
    try:
        yield chosen
    finally:
        chosen.store.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content(size: int, seed: int = 1) -> bytes:
    return bytes((seed * 7919 + index * 31) % 251 for index in range(size))


# ------------------------------------------------------------------- writes


def test_a_document_is_stored_under_its_hash_and_read_back(backend: Backend) -> None:
    data = content(5 * CHUNK + 123)

    stored = backend.store.put_bytes(data)

    assert stored == StoredDocument(sha(data), len(data))
    assert backend.store.contains(stored.sha256)
    assert backend.store.read_bytes(stored.sha256, size_bytes=len(data)) == data
    assert backend.store.verify(stored.sha256) == stored


def test_reads_stream_in_chunks_never_the_whole_document(backend: Backend) -> None:
    data = content(10 * CHUNK)
    stored = backend.store.put_file(io.BytesIO(data))

    chunks = list(backend.store.read_chunks(stored.sha256))

    assert len(chunks) >= 10
    assert max(len(chunk) for chunk in chunks) <= CHUNK
    assert b"".join(chunks) == data


def test_the_same_bytes_are_stored_once(backend: Backend) -> None:
    data = content(3 * CHUNK)

    first = backend.store.put_bytes(data)
    second = backend.store.put_chunks([data[:100], data[100:]])
    third = backend.store.put_file(io.BytesIO(data))

    assert first == second == third
    assert [entry.sha256 for entry in backend.store.entries()] == [first.sha256]
    assert backend.leftovers() == 0


def test_a_write_that_fails_half_way_leaves_nothing(backend: Backend) -> None:
    def failing_source() -> Iterator[bytes]:
        yield content(2 * CHUNK)
        raise OSError("the upload broke off")

    with pytest.raises(OSError, match="broke off"):
        backend.store.put_chunks(failing_source())

    assert list(backend.store.entries()) == []
    assert backend.leftovers() == 0


def test_a_file_that_changes_while_stored_is_refused(backend: Backend) -> None:
    original = content(CHUNK)
    source = io.BytesIO(content(CHUNK, seed=2))

    with pytest.raises(SourceChanged):
        backend.store.put_hashed(source, StoredDocument(sha(original), len(original)))

    assert not backend.store.contains(sha(original))


# -------------------------------------------------------------------- reads


def test_a_corrupted_document_fails_verification_on_read(backend: Backend) -> None:
    data = content(3 * CHUNK)
    stored = backend.store.put_bytes(data)
    backend.corrupt(stored.sha256)

    with pytest.raises(DocumentCorrupted, match=stored.sha256) as caught:
        backend.store.read_bytes(stored.sha256)
    with pytest.raises(DocumentCorrupted):
        backend.store.verify(stored.sha256, size_bytes=len(data))

    assert "hash" in caught.value.reason


def test_a_shortened_document_fails_verification_on_read(backend: Backend) -> None:
    data = content(3 * CHUNK)
    stored = backend.store.put_bytes(data)
    backend.shorten(stored.sha256)

    with pytest.raises(DocumentCorrupted):
        backend.store.read_bytes(stored.sha256, size_bytes=len(data))


def test_the_size_an_event_recorded_is_checked_too(backend: Backend) -> None:
    data = content(CHUNK)
    stored = backend.store.put_bytes(data)

    with pytest.raises(DocumentCorrupted, match="recorded"):
        backend.store.verify(stored.sha256, size_bytes=len(data) + 1)
    with pytest.raises(DocumentCorrupted, match="recorded"):
        backend.store.verify(stored.sha256, size_bytes=len(data) - 1)


def test_a_document_not_stored_is_named_as_such(backend: Backend) -> None:
    missing = sha(b"never stored")

    assert not backend.store.contains(missing)
    with pytest.raises(DocumentNotStored, match=missing):
        backend.store.read_bytes(missing)


def test_only_hashes_address_documents(backend: Backend) -> None:
    for address in ("../../etc/passwd", "AB" * 32, "a" * 63, "a" * 64 + "/x"):
        with pytest.raises(ValueError, match="hexadecimal"):
            backend.store.read_bytes(address)


# -------------------------------------------------------------------- sweep


def test_the_sweep_removes_old_orphans_only(backend: Backend) -> None:
    referenced = backend.store.put_bytes(content(CHUNK, seed=1))
    orphan = backend.store.put_bytes(content(CHUNK, seed=2))
    recent_orphan = backend.store.put_bytes(content(CHUNK, seed=3))
    for document in (referenced, orphan):
        backend.age(document.sha256, timedelta(days=2))

    report = sweep_orphans(backend.store, lambda: {referenced.sha256}, older_than=timedelta(days=1))

    assert (report.stored, report.referenced, report.recent, report.removed) == (3, 1, 1, 1)
    assert report.removed_bytes == CHUNK
    assert backend.store.contains(referenced.sha256)
    assert backend.store.contains(recent_orphan.sha256)
    assert not backend.store.contains(orphan.sha256)
    assert backend.leftovers() == 0


def test_a_dry_run_removes_nothing(backend: Backend) -> None:
    orphan = backend.store.put_bytes(content(CHUNK))
    backend.age(orphan.sha256, timedelta(days=2))

    report = sweep_orphans(backend.store, set, older_than=timedelta(days=1), dry_run=True)

    assert report.removed == 1
    assert backend.store.contains(orphan.sha256)


def test_a_document_stored_again_during_the_sweep_stays(backend: Backend) -> None:
    data = content(CHUNK)
    orphan = backend.store.put_bytes(data)
    backend.age(orphan.sha256, timedelta(days=2))

    def references_read_while_someone_uploads_the_same_bytes() -> set[str]:
        backend.store.put_bytes(data)  # e.g. a second upload, whose event is not yet recorded
        return set()

    report = sweep_orphans(
        backend.store,
        references_read_while_someone_uploads_the_same_bytes,
        older_than=timedelta(days=1),
    )

    assert report.removed == 0
    assert backend.store.read_bytes(orphan.sha256) == data


def test_storing_known_bytes_again_renews_them_for_the_sweep(backend: Backend) -> None:
    data = content(CHUNK)
    stored = backend.store.put_bytes(data)
    backend.age(stored.sha256, timedelta(days=2))

    assert backend.store.put_file(io.BytesIO(data)) == stored
    [entry] = backend.store.entries()

    assert entry.stored_at > datetime.now(tz=UTC) - timedelta(hours=1)
    assert not backend.store.delete_unless_recent(stored.sha256, timedelta(days=1))


def test_the_directory_sweep_removes_abandoned_writes(tmp_path: Path) -> None:
    store = DirectoryDocumentStore(tmp_path, chunk_bytes=CHUNK)
    abandoned = tmp_path / "incoming" / "crashed.part"
    abandoned.write_bytes(b"half a file")
    old = abandoned.stat().st_mtime - 3 * 86400
    os.utime(abandoned, (old, old))

    report = sweep_orphans(store, set, older_than=timedelta(days=1))

    assert report.abandoned_writes_removed == 1
    assert not abandoned.exists()


def test_the_directory_store_keeps_nothing_but_hashes_in_names(tmp_path: Path) -> None:
    store = DirectoryDocumentStore(tmp_path, chunk_bytes=CHUNK)
    stored = store.put_bytes(make_pdf(2, marker="Yılmaz, Ayşe"))

    names = {path.name for path in tmp_path.rglob("*") if path.is_file()}

    assert names == {stored.sha256}
    assert oct((tmp_path / "objects").stat().st_mode & 0o777) == "0o700"
    [document] = (tmp_path / "objects").rglob(stored.sha256)
    assert oct(document.stat().st_mode & 0o777) == "0o600"


# --------------------------------------------------------------- inspection


@pytest.mark.parametrize("object_streams", [False, True], ids=["xref-table", "object-streams"])
@pytest.mark.parametrize("pages", [1, 3, 40])
def test_the_pages_of_a_pdf_are_counted(pages: int, object_streams: bool) -> None:
    assert count_pdf_pages(make_pdf(pages, object_streams=object_streams)) == pages


def test_files_are_told_apart_by_their_bytes() -> None:
    for data, media_type in ((make_jpeg("x"), "image/jpeg"), (make_png("x"), "image/png")):
        inspection = inspect_file(io.BytesIO(data), max_bytes=10_000)
        assert (inspection.media_type, inspection.page_count) == (media_type, 1)
        assert inspection.sha256 == sha(data)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        pytest.param(b"", EmptyFile, id="empty"),
        pytest.param(make_pdf(1, payload_bytes=5000), FileTooLarge, id="too-large"),
        pytest.param(b"MZ\x90\x00 an executable called scan.pdf", UnsupportedFileType, id="exe"),
        pytest.param(b"<html>%PDF-1.4", UnsupportedFileType, id="html"),
        pytest.param(make_pdf(3)[:-300], UnreadableFile, id="truncated-pdf"),
        pytest.param(b"%PDF-1.4\nno pages here\n%%EOF\n", UnreadableFile, id="no-pages"),
    ],
)
def test_unacceptable_files_are_refused(data: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        inspect_file(io.BytesIO(data), max_bytes=4096)
