"""The document store: the bytes of uploaded and scanned files, outside the event log.

Events only reference documents (sha256, size, media type, pages); the bytes are kept here,
addressed by their sha256. Every store

* writes atomically: a document appears under its hash completely or not at all, never as
  a half file (a crash leaves at most an abandoned write, which the sweep removes);
* deduplicates: the same bytes stored twice are kept once;
* verifies on every read: the bytes read must hash to the address and, where the caller
  knows it from an event, have the recorded size, or :class:`DocumentCorrupted` is raised;
* streams: documents go in and out in chunks, never as a whole in memory.

Two backends share this interface and one test suite: a directory on disk
(:mod:`adapters.documents.directory`, the default) and PostgreSQL
(:mod:`adapters.documents.postgres`, for several API hosts and one backup of everything).

Nothing here knows a person: documents are named by hash only, and errors name hashes.

These backends keep bytes as they are given. The application stores documents through
:class:`adapters.documents.encryption.EncryptedDocumentStore`, which encrypts each one
with a key bound to its owner (a person) and stores it under a keyed address with
:meth:`DocumentStore.put_at`; the content-addressed writes (:meth:`DocumentStore.put_chunks`)
are what stores held before documents were encrypted, and what ``akte documents
encrypt`` migrates.
"""

from __future__ import annotations

import hashlib
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import BinaryIO, Final

# The values of the application's document store port; this store implements the port.
from service_ports import StoredDocument as StoredDocument
from service_ports import StoredEntry as StoredEntry

DEFAULT_CHUNK_BYTES: Final = 1_048_576
"""1 MiB: large enough for few round trips, small enough to never matter in memory."""

_SHA256: Final = re.compile(r"[0-9a-f]{64}")


class DocumentStoreError(Exception):
    """Base of the document store's errors; messages name hashes, never content."""


class DocumentNotStored(DocumentStoreError):
    def __init__(self, sha256: str) -> None:
        super().__init__(f"document {sha256} is not in the document store")
        self.sha256 = sha256


class DocumentCorrupted(DocumentStoreError):
    """The stored bytes do not hash to their address, or differ from the recorded size."""

    def __init__(self, sha256: str, reason: str) -> None:
        super().__init__(f"document {sha256} failed verification: {reason}")
        self.sha256 = sha256
        self.reason = reason


class DocumentStoreUnavailable(DocumentStoreError):
    """The store could not be reached or failed; nothing was stored."""


class SourceChanged(DocumentStoreError):
    """The file changed while it was being stored; nothing was stored under its hash."""


class DocumentBatch:
    """The writes of one thread held together (:meth:`DocumentStore.writing_together`).

    What a batch writes becomes durable when it is committed, many documents in one
    transaction of the store (PostgreSQL) or one round of fsyncs (directory). The scan
    import commits a group's documents strictly before the group's events
    (:mod:`service_unit_of_work`), so an event never points at a missing document.
    Until committed, a write is the batch's only: other connections do not see it, and
    a crash leaves nothing of it (at most a part file that the sweep removes).

    This base batch is for a store with nothing better: each write is its own
    transaction, as outside a batch, and nothing is taken back.
    """

    max_units: int | None = None
    """Units a batch holds at most before its writer should commit (None: no limit)."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.transactions = 0
        """Commits that made documents durable."""
        self.pending_bytes = 0
        """Bytes written since the last commit."""
        self.pending_units = 0
        """Units (legacy files) completed since the last commit, counted by the caller."""
        self.pending: list[str] = []
        """Addresses written since the last commit, in order."""
        self.awaiting: list[str] = []
        """Addresses committed whose events are not yet confirmed written."""

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Writes that stand or fall together (one legacy file's scans): if the block
        raises, none of what it wrote is kept."""
        yield

    def wrote(self, address: str, size_bytes: int) -> None:
        """The store wrote an object in this batch (not yet durable)."""
        self.pending.append(address)
        self.pending_bytes += size_bytes

    def commit(self) -> None:
        """Make what was written durable, together."""
        self._commit()
        if self.pending:
            self.transactions += 1
        self.awaiting += self.pending
        self.pending = []
        self.pending_bytes = 0
        self.pending_units = 0

    def _commit(self) -> None:
        """The backend's commit of what ``pending`` names."""

    def confirm(self) -> None:
        """The events that reference the committed documents are written: they stay."""
        self.awaiting = []

    def take_back(self) -> None:
        """The events that would have referenced the committed documents were refused
        (not written). The documents stay for the orphan sweep, which removes only what
        no event references after its grace period: the same address may be a document
        written before (the same bytes uploaded by a caseworker) or by another writer
        whose events were written, and deleting it here would break those."""
        self.awaiting = []

    def referenced(self) -> None:
        """A saved command references the open unit's writes: they stay even if the
        unit's block raises after the save (an interrupt); its events are written."""

    def discard(self) -> None:
        """Drop what was written and not committed (the batch ends with an error)."""
        self.pending = []
        self.pending_bytes = 0
        self.pending_units = 0

    def close(self) -> None:
        """Release what the batch holds (a connection)."""


def require_address(sha256: str) -> None:
    """Hashes come from events and URLs: anything else must never reach a path or query."""
    if not _SHA256.fullmatch(sha256):
        msg = "a document address is 64 lower-case hexadecimal digits"
        raise ValueError(msg)


def read_in_chunks(source: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    while chunk := source.read(chunk_bytes):
        yield chunk


def rechunk(chunks: Iterable[bytes], chunk_bytes: int) -> Iterator[bytes]:
    """The same bytes in pieces of exactly ``chunk_bytes`` (the last one shorter)."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= chunk_bytes:
            yield bytes(pending[:chunk_bytes])
            del pending[:chunk_bytes]
    if pending:
        yield bytes(pending)


def hash_file(source: BinaryIO, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> StoredDocument:
    """The sha256 and size of what ``source`` holds from where it stands."""
    digest = hashlib.sha256()
    size = 0
    for chunk in read_in_chunks(source, chunk_bytes):
        digest.update(chunk)
        size += len(chunk)
    return StoredDocument(digest.hexdigest(), size)


class DocumentStore(ABC):
    """Content-addressed, atomic, deduplicating, verifying storage of documents."""

    chunk_bytes: int = DEFAULT_CHUNK_BYTES

    # ------------------------------------------------------------- backends

    @abstractmethod
    def put_chunks(self, chunks: Iterable[bytes]) -> StoredDocument:
        """Store the bytes ``chunks`` yields, atomically; returns their hash and size.

        If anything fails (or ``chunks`` raises), nothing is stored under any hash.
        """

    @abstractmethod
    def put_at(self, address: str, chunks: Iterable[bytes]) -> int:
        """Store the bytes ``chunks`` yields under ``address`` (replacing what is there),
        atomically; returns their size. For objects addressed by something other than
        their own hash: the encrypted documents (:mod:`adapters.documents.encryption`).
        Reads of such an object use :meth:`stored_chunks`, which does not verify."""

    @abstractmethod
    def remove(self, address: str) -> bool:
        """Remove the object now, whatever its age; whether it was there."""

    def compact(self) -> None:  # noqa: B027 - most stores free removed bytes at once
        """Let go of the bytes of removed objects that the store still keeps (PostgreSQL:
        dead tuples until vacuumed)."""

    @abstractmethod
    def renew_if_stored(self, document: StoredDocument) -> bool:
        """If this document is stored with this size, mark it stored now and say so.

        Lets a second copy skip writing its bytes, and keeps the sweep from removing a
        document that is about to be referenced again.
        """

    @abstractmethod
    def stored_chunks(self, sha256: str) -> Iterator[bytes]:
        """The stored bytes as they are, unverified; raises :class:`DocumentNotStored`."""

    @abstractmethod
    def contains(self, sha256: str) -> bool: ...

    @abstractmethod
    def entries(self) -> Iterator[StoredEntry]:
        """Every stored document, for the orphan sweep."""

    @abstractmethod
    def delete_unless_recent(self, sha256: str, older_than: timedelta) -> bool:
        """Remove the document unless it was stored within ``older_than``; whether it was.

        Atomic with respect to a concurrent :meth:`put_chunks` or :meth:`renew_if_stored`
        of the same bytes: a document stored again while the sweep runs stays.
        """

    def remove_abandoned_writes(self, older_than: timedelta) -> int:
        """Remove what writes interrupted by a crash left behind; how many."""
        return 0

    def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections; the store is not used afterwards."""

    # ------------------------------------------------------ batches of writes

    @contextmanager
    def writing_together(self) -> Iterator[DocumentBatch]:
        """Hold this thread's writes in a batch (:class:`DocumentBatch`) until its
        :meth:`DocumentBatch.commit`; at the end of the block what is left is committed,
        or dropped if the block raises. Reads see committed documents only."""
        if self.current_batch() is not None:
            msg = "this thread is writing in a batch already"
            raise RuntimeError(msg)
        batch = self._new_batch()
        self._batches().current = batch
        try:
            try:
                yield batch
            except BaseException:
                batch.discard()
                raise
            batch.commit()
        finally:
            self._batches().current = None
            batch.close()

    def current_batch(self) -> DocumentBatch | None:
        """The batch this thread writes in, if any."""
        batch: DocumentBatch | None = getattr(self._batches(), "current", None)
        return batch

    def _new_batch(self) -> DocumentBatch:
        return DocumentBatch(self)

    def _batches(self) -> threading.local:
        local: threading.local | None = self.__dict__.get("_batch_local")
        if local is None:
            local = self.__dict__.setdefault("_batch_local", threading.local())
        return local

    # ------------------------------------------------------- shared behaviour

    def put_file(self, source: BinaryIO) -> StoredDocument:
        """Store a seekable file from its start: hashed first, so that bytes already
        stored are not written again."""
        source.seek(0)
        expected = hash_file(source, self.chunk_bytes)
        return self.put_hashed(source, expected)

    def put_hashed(self, source: BinaryIO, expected: StoredDocument) -> StoredDocument:
        """Store a seekable file from its start whose hash and size the caller knows.

        Raises :class:`SourceChanged` if the bytes read now differ from ``expected``.
        """
        if self.renew_if_stored(expected):
            return expected
        source.seek(0)
        stored = self.put_chunks(read_in_chunks(source, self.chunk_bytes))
        if stored != expected:
            # Stored under the hash of what was read, so nothing false is addressed; but
            # what the caller checked and is about to record is not what was stored.
            msg = "the file changed while it was being stored"
            raise SourceChanged(msg)
        return stored

    def put_bytes(self, data: bytes) -> StoredDocument:
        return self.put_chunks([data])

    def read_chunks(self, sha256: str, *, size_bytes: int | None = None) -> Iterator[bytes]:
        """The document's bytes in chunks, verified against its hash and ``size_bytes``.

        A mismatch raises :class:`DocumentCorrupted`; a hash mismatch shows only after the
        last chunk, so callers that pass bytes on and cannot take them back (an HTTP
        response) call :meth:`verify` first.
        """
        require_address(sha256)
        digest = hashlib.sha256()
        size = 0
        for chunk in self.stored_chunks(sha256):
            size += len(chunk)
            if size_bytes is not None and size > size_bytes:
                raise DocumentCorrupted(sha256, f"longer than the recorded {size_bytes} bytes")
            digest.update(chunk)
            yield chunk
        if size_bytes is not None and size != size_bytes:
            raise DocumentCorrupted(sha256, f"{size} bytes instead of the recorded {size_bytes}")
        if digest.hexdigest() != sha256:
            raise DocumentCorrupted(sha256, "the bytes do not hash to the document's address")

    def verify(self, sha256: str, *, size_bytes: int | None = None) -> StoredDocument:
        """Read the whole document and check it; returns its hash and size."""
        size = 0
        for chunk in self.read_chunks(sha256, size_bytes=size_bytes):
            size += len(chunk)
        return StoredDocument(sha256, size)

    def read_bytes(self, sha256: str, *, size_bytes: int | None = None) -> bytes:
        """The whole document, verified; for small documents and tests."""
        return b"".join(self.read_chunks(sha256, size_bytes=size_bytes))
