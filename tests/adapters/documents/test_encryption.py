"""Documents encrypted per owner, on both backends (a directory, PostgreSQL).

Round trip in segments; no plaintext in the stored bytes; the same file of two persons
lies under different addresses with different bytes; a tampered, shortened or swapped
object fails; destroying the owner's key makes the document unreadable (erased) and the
sweep removes it; clear objects of before still read until migrated.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.encryption import (
    HEADER_BYTES,
    DocumentErased,
    EncryptedDocumentStore,
    encrypted_size,
    is_encrypted,
)
from adapters.documents.postgres import PostgresDocumentStore
from adapters.documents.store import (
    DocumentCorrupted,
    DocumentNotStored,
    DocumentStore,
    SourceChanged,
    StoredDocument,
)
from adapters.documents.sweep import sweep_orphans
from adapters.personal_data.key_store import DataKeys, MasterKeys, SqliteKeyStore
from adapters.simulation.legacy_scans import make_pdf
from service_ports import DocumentReference
from tests.conftest import POSTGRES
from tests.support.documents import raw_stored_bytes

CHUNK = 4096
SEGMENT = 1000
"""Small segments and chunks, so that a test document spans many of each (unaligned)."""
MARKER = b"Geheimvermerk-4711"
HOUR = timedelta(hours=1)


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
def backend(schema: str | None, tmp_path: Path) -> Iterator[DocumentStore]:
    chosen: DocumentStore
    if schema is None:
        chosen = DirectoryDocumentStore(tmp_path / "documents", chunk_bytes=CHUNK)
    else:
        chosen = PostgresDocumentStore(connection=dict(POSTGRES), schema=schema, chunk_bytes=CHUNK)
    try:
        yield chosen
    finally:
        chosen.close()


@pytest.fixture
def store(backend: DocumentStore, keys: DataKeys) -> EncryptedDocumentStore:
    return EncryptedDocumentStore(backend, keys, segment_bytes=SEGMENT)


def secret_document(size: int = 3 * CHUNK + 17) -> bytes:
    """A document with the marker at its start, middle and end, and bytes around it."""
    filler = bytes((index * 31 + 7) % 251 for index in range(size))
    middle = size // 2
    return MARKER + filler[:middle] + MARKER + filler[middle:] + MARKER


def stored_addresses(store: EncryptedDocumentStore) -> list[str]:
    return [entry.sha256 for entry in store.entries()]


# ------------------------------------------------------------------ round trip


@pytest.mark.parametrize("size", [0, 1, SEGMENT - 1, SEGMENT, 3 * SEGMENT, 5 * CHUNK + 123])
def test_a_document_reads_back_as_it_was_stored(store: EncryptedDocumentStore, size: int) -> None:
    data = bytes((index * 13) % 256 for index in range(size))
    owner = uuid4()

    stored = store.put_bytes(data, owner=owner)

    assert stored == StoredDocument(hashlib.sha256(data).hexdigest(), size)
    assert store.read_bytes(stored.sha256, owner=owner, size_bytes=size) == data
    assert store.verify(stored.sha256, owner=owner) == stored
    assert store.contains(stored.sha256, owner=owner)
    [entry] = store.entries()
    assert entry.size_bytes == encrypted_size(size, SEGMENT)


def test_no_plaintext_reaches_the_stored_bytes(
    store: EncryptedDocumentStore, schema: str | None
) -> None:
    data = secret_document()
    pdf = make_pdf(2, marker=MARKER.decode())
    owner = uuid4()

    first = store.put_file(io.BytesIO(data), owner=owner)
    second = store.put_bytes(pdf, owner=owner)

    raw = raw_stored_bytes(store, schema)
    assert len(raw) >= len(data) + len(pdf)
    assert MARKER not in raw
    assert data[100:140] not in raw  # nor any other stretch of them
    assert pdf[:8] not in raw
    assert first.sha256 not in stored_addresses(store)  # never under the bare hash
    assert second.sha256 not in stored_addresses(store)
    assert all(is_encrypted(b"".join(store.stored_chunks(a))) for a in stored_addresses(store))
    assert store.read_bytes(first.sha256, owner=owner) == data


def test_the_same_file_of_two_persons_is_stored_apart(store: EncryptedDocumentStore) -> None:
    data = secret_document()
    alice, bob = uuid4(), uuid4()

    store.put_bytes(data, owner=alice)
    stored = store.put_bytes(data, owner=bob)

    first, second = stored_addresses(store)
    assert first != second
    stored_first = b"".join(store.stored_chunks(first))
    stored_second = b"".join(store.stored_chunks(second))
    # Unrelated bytes: not even a shared segment.
    assert stored_first[HEADER_BYTES : HEADER_BYTES + 64] not in stored_second
    assert store.read_bytes(stored.sha256, owner=alice) == data
    assert store.read_bytes(stored.sha256, owner=bob) == data


def test_the_same_file_of_one_person_is_stored_once(store: EncryptedDocumentStore) -> None:
    data = secret_document()
    owner = uuid4()

    store.put_bytes(data, owner=owner)
    store.put_file(io.BytesIO(data), owner=owner)

    assert len(stored_addresses(store)) == 1


def test_a_copy_for_another_owner_is_encrypted_with_that_owners_key(
    store: EncryptedDocumentStore, keys: DataKeys
) -> None:
    data = secret_document()
    sender, case_file = uuid4(), uuid4()
    stored = store.put_bytes(data, owner=sender)

    store.copy(stored, from_owner=sender, to_owner=case_file)
    keys.destroy([str(sender)], datetime.now(tz=UTC))

    assert len(stored_addresses(store)) == 2
    assert store.read_bytes(stored.sha256, owner=case_file, size_bytes=len(data)) == data


# ---------------------------------------------------------------- integrity


def test_a_tampered_object_fails_and_is_never_served_whole(
    store: EncryptedDocumentStore, backend: DocumentStore
) -> None:
    data = secret_document()
    owner = uuid4()
    stored = store.put_bytes(data, owner=owner)
    [address] = stored_addresses(store)
    original = b"".join(store.stored_chunks(address))

    for position in (3, HEADER_BYTES - 1, HEADER_BYTES + SEGMENT // 2, len(original) - 1):
        tampered = bytearray(original)
        tampered[position] ^= 0x01
        backend.put_at(address, [bytes(tampered)])
        with pytest.raises(DocumentCorrupted):
            store.verify(stored.sha256, owner=owner)
    # Cut after a whole segment: it must not read as a shorter document.
    backend.put_at(address, [original[: HEADER_BYTES + SEGMENT + 16]])
    with pytest.raises(DocumentCorrupted):
        store.read_bytes(stored.sha256, owner=owner)
    # Another owner's object under this address: its key does not unwrap.
    other = store.put_bytes(data + b"!", owner=uuid4())
    [foreign] = [a for a in stored_addresses(store) if a != address]
    backend.put_at(address, [b"".join(store.stored_chunks(foreign))])
    with pytest.raises(DocumentCorrupted):
        store.read_bytes(stored.sha256, owner=owner)
    assert other.sha256 != stored.sha256


def test_a_source_that_changes_while_stored_stores_nothing(
    store: EncryptedDocumentStore,
) -> None:
    data = secret_document()
    expected = StoredDocument("0" * 64, len(data))  # not what the source holds

    with pytest.raises(SourceChanged):
        store.put_hashed(io.BytesIO(data), expected, owner=uuid4())

    assert stored_addresses(store) == []


def test_a_document_the_owner_never_stored_is_not_stored(store: EncryptedDocumentStore) -> None:
    owner = uuid4()
    stored = store.put_bytes(secret_document(), owner=owner)

    with pytest.raises(DocumentNotStored):
        store.read_bytes(stored.sha256, owner=uuid4())
    with pytest.raises(DocumentNotStored):
        store.read_bytes("ab" * 32, owner=owner)


# ------------------------------------------------------------------ erasure


def test_destroying_the_owners_key_erases_the_document(
    store: EncryptedDocumentStore, keys: DataKeys, schema: str | None
) -> None:
    data = secret_document()
    erased, kept = uuid4(), uuid4()
    gone = store.put_bytes(data, owner=erased)
    other = store.put_bytes(data + b"kept", owner=kept)
    references = [
        DocumentReference(erased, gone.sha256, gone.size_bytes),
        DocumentReference(kept, other.sha256, other.size_bytes),
    ]

    keys.destroy([str(erased)], datetime.now(tz=UTC))

    with pytest.raises(DocumentErased):
        store.read_chunks(gone.sha256, owner=erased)
    with pytest.raises(DocumentErased):
        store.put_bytes(data, owner=erased)
    assert not store.contains(gone.sha256, owner=erased)
    report = sweep_orphans(store, lambda: store.addresses_to_keep(references), older_than=HOUR)
    assert (report.removed, report.recent) == (0, 1)  # the grace period holds here too
    report = sweep_orphans(
        store, lambda: store.addresses_to_keep(references), older_than=timedelta(0)
    )
    assert (report.removed, report.referenced) == (1, 1)
    assert store.read_bytes(other.sha256, owner=kept) == data + b"kept"
    assert MARKER not in raw_stored_bytes(store, schema)


# ------------------------------------------------- clear objects of before


def test_a_clear_object_of_before_is_still_read_and_verified(
    store: EncryptedDocumentStore, backend: DocumentStore, keys: DataKeys
) -> None:
    data = secret_document()
    clear = backend.put_bytes(data)
    owner = uuid4()

    assert store.read_bytes(clear.sha256, owner=owner, size_bytes=len(data)) == data
    keys.for_writing(str(owner))
    assert store.read_bytes(clear.sha256, owner=owner) == data
    keys.destroy([str(owner)], datetime.now(tz=UTC))
    with pytest.raises(DocumentErased):
        store.read_bytes(clear.sha256, owner=owner)
