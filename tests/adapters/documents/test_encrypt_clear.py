"""Encrypting a store written in clear (before documents were encrypted), on both
backends: every referenced clear object becomes one encrypted copy per owner and goes;
an interrupted or limited run resumes; a second run does nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.encrypt_clear import EncryptionProgress, encrypt_clear_documents
from adapters.documents.encryption import DocumentErased, EncryptedDocumentStore, is_encrypted
from adapters.documents.postgres import PostgresDocumentStore
from adapters.documents.store import DocumentCorrupted, DocumentStore
from adapters.personal_data.key_store import DataKeys, MasterKeys, SqliteKeyStore
from service_ports import DocumentReference
from tests.conftest import POSTGRES
from tests.support.documents import raw_stored_bytes

CHUNK = 4096


class Interrupted(BaseException):
    """Stands for Ctrl-C or a killed process."""


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[DataKeys]:
    store = SqliteKeyStore(tmp_path / "keys.sqlite3")
    store.create_tables()
    data_keys = DataKeys(store, MasterKeys.development())
    try:
        yield data_keys
    finally:
        data_keys.close()


@pytest.fixture(params=["directory", pytest.param("postgres", marks=pytest.mark.postgres)])
def schema(request: pytest.FixtureRequest) -> str | None:
    return None if request.param == "directory" else str(request.getfixturevalue("postgres_schema"))


@pytest.fixture
def store(schema: str | None, tmp_path: Path, keys: DataKeys) -> Iterator[EncryptedDocumentStore]:
    backend: DocumentStore
    if schema is None:
        backend = DirectoryDocumentStore(tmp_path / "documents", chunk_bytes=CHUNK)
    else:
        backend = PostgresDocumentStore(connection=dict(POSTGRES), schema=schema, chunk_bytes=CHUNK)
    encrypted = EncryptedDocumentStore(backend, keys, segment_bytes=1000)
    try:
        yield encrypted
    finally:
        encrypted.close()


def marker(number: int) -> bytes:
    return f"Klartext-Vermerk-{number:03d}".encode()


def document(number: int) -> bytes:
    return marker(number) + bytes(range(256)) * (number % 7 + 3) + marker(number)


class ClearStore:
    """A store as the old code wrote it: each file in clear under its bare sha256."""

    def __init__(self, store: EncryptedDocumentStore, count: int) -> None:
        self.owners = [uuid4() for _ in range(count)]
        self.references: list[DocumentReference] = []
        self.documents: dict[UUID, bytes] = {}
        for number, owner in enumerate(self.owners):
            data = document(number)
            stored = store.backend.put_bytes(data)  # the old, clear path
            self.references.append(DocumentReference(owner, stored.sha256, stored.size_bytes))
            self.documents[owner] = data
        # A contact form's file that became a case file's document: two owners, one object.
        shared = self.references[0]
        self.case_file = uuid4()
        self.references.append(DocumentReference(self.case_file, shared.sha256, shared.size_bytes))
        self.documents[self.case_file] = self.documents[self.owners[0]]
        # Never referenced (a write whose event failed): the sweep's, not the migration's.
        self.orphan = store.backend.put_bytes(b"orphan " + marker(999))


def clear_objects(store: EncryptedDocumentStore) -> list[str]:
    return [
        entry.sha256
        for entry in store.entries()
        if not is_encrypted(b"".join(store.stored_chunks(entry.sha256)))
    ]


def assert_all_encrypted_and_readable(
    store: EncryptedDocumentStore, clear: ClearStore, schema: str | None
) -> None:
    assert clear_objects(store) == [clear.orphan.sha256]
    for reference in clear.references:
        assert (
            store.read_bytes(
                reference.sha256, owner=reference.owner, size_bytes=reference.size_bytes
            )
            == (clear.documents[reference.owner])
        )
    raw = raw_stored_bytes(store, schema)
    assert not any(marker(number) in raw for number in range(len(clear.owners)))


def test_a_clear_store_is_encrypted_per_owner(
    store: EncryptedDocumentStore, schema: str | None
) -> None:
    clear = ClearStore(store, 12)
    seen: list[EncryptionProgress] = []

    report = encrypt_clear_documents(store, clear.references, batch_size=5, progress=seen.append)

    assert (report.clear_found, report.encrypted, report.copies) == (12, 12, 13)
    assert (report.erased_removed, report.failed, report.remaining) == (0, [], 0)
    assert [(step.done, step.total) for step in seen] == [(5, 12), (10, 12), (12, 12)]
    assert_all_encrypted_and_readable(store, clear, schema)
    # One object, two owners: two copies under unrelated addresses.
    assert len(list(store.entries())) == 13 + 1


def test_an_interrupted_run_resumes_and_a_second_run_does_nothing(
    store: EncryptedDocumentStore, schema: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    clear = ClearStore(store, 10)
    original = store.backend.put_at
    writes = 0

    def put_then_die(address: str, chunks: object) -> int:
        nonlocal writes
        writes += 1
        if writes == 7:
            raise Interrupted  # mid-write: the copy is not stored, the clear object stays
        return original(address, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(store.backend, "put_at", put_then_die)
    with pytest.raises(Interrupted):
        encrypt_clear_documents(store, clear.references, batch_size=3)
    monkeypatch.undo()
    left = len(clear_objects(store)) - 1  # the orphan stays clear
    assert 0 < left < 10  # some done (two batches at least), some not

    resumed = encrypt_clear_documents(store, clear.references, batch_size=3)
    again = encrypt_clear_documents(store, clear.references, batch_size=3)

    assert (resumed.clear_found, resumed.encrypted, resumed.remaining) == (left, left, 0)
    assert (again.clear_found, again.encrypted, again.copies) == (0, 0, 0)
    assert_all_encrypted_and_readable(store, clear, schema)


def test_a_limited_run_leaves_the_rest_for_the_next(
    store: EncryptedDocumentStore, schema: str | None
) -> None:
    clear = ClearStore(store, 6)

    first = encrypt_clear_documents(store, clear.references, limit=4)
    assert (first.clear_found, first.encrypted, first.remaining) == (6, 4, 2)
    assert len(clear_objects(store)) == 2 + 1
    second = encrypt_clear_documents(store, clear.references, limit=4)

    assert (second.clear_found, second.encrypted, second.remaining) == (2, 2, 0)
    assert_all_encrypted_and_readable(store, clear, schema)


def test_an_erased_owners_clear_object_is_removed_without_a_copy(
    store: EncryptedDocumentStore, keys: DataKeys, schema: str | None
) -> None:
    clear = ClearStore(store, 3)
    erased = clear.owners[2]
    keys.destroy([str(erased)], datetime.now(tz=UTC))

    report = encrypt_clear_documents(store, clear.references)

    assert (report.encrypted, report.erased_removed, report.copies) == (2, 1, 3)
    assert marker(2) not in raw_stored_bytes(store, schema)
    with pytest.raises(DocumentErased):
        store.read_bytes(clear.references[2].sha256, owner=erased)
    assert store.read_bytes(clear.references[1].sha256, owner=clear.owners[1]) == document(1)


def test_a_corrupted_clear_object_is_reported_and_left(
    store: EncryptedDocumentStore,
) -> None:
    clear = ClearStore(store, 2)
    victim = clear.references[1]
    store.backend.put_at(victim.sha256, [b"not what was stored"])

    report = encrypt_clear_documents(store, clear.references)

    assert report.failed == [victim.sha256]
    assert report.encrypted == 1
    assert store.backend.contains(victim.sha256)
    with pytest.raises(DocumentCorrupted):  # read in clear, still verified by its hash
        store.read_bytes(victim.sha256, owner=victim.owner)
