"""Documents encrypted per person: what the application's document store port is.

Uploaded documents, scans and contact form files are personal data of one person, their
owner: the case file's person or the contact form's sender. Every document is stored
encrypted with a key bound to its owner, so that erasing the owner's data key (crypto-
shredding, :mod:`service_data_protection`) makes the document unreadable too, on either
backend (:mod:`adapters.documents.directory`, :mod:`adapters.documents.postgres`):

* **envelope encryption**: a random 256-bit data key per stored document encrypts the
  bytes with AES-GCM, in segments of :data:`SEGMENT_BYTES` (each with its own tag, its
  index and whether it is the last one in the nonce, so that a reordered, shortened or
  lengthened object fails), and that data key is stored beside them *wrapped* under the
  owner's key from the key store (:mod:`adapters.personal_data.key_store`, the key that
  seals the owner's personal fields in the events);
* **keyed addresses**: a document is stored under ``HMAC-SHA256(owner address key,
  sha256)`` instead of its bare hash, the address key derived from the owner's key. Two
  persons' copies of the same file lie under unrelated addresses with unrelated bytes,
  and nobody without the owner's key can tell which stored object belongs to which
  recorded hash. Deduplication stays within one owner;
* **verified reads**: reading decrypts (every segment's tag checked) and checks the
  plaintext against the sha256 and size the event recorded, so the recorded hash stays
  verifiable with the owner's key.

After the owner's key is destroyed, reading raises :class:`DocumentErased` (the routes
answer ``410 Gone``) and the stored object is noise; the orphan sweep removes it, since no
live owner references it any more.

Objects written before documents were encrypted lie in clear under their bare sha256;
they are still read (verified by hash) until ``akte documents encrypt``
(:mod:`adapters.documents.encrypt_clear`) has encrypted them per owner and removed them.

Messages name hashes and owner ids (random UUIDs), never content or key material.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import BinaryIO, Final, Protocol
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from adapters.documents.store import (
    DEFAULT_CHUNK_BYTES,
    DocumentBatch,
    DocumentCorrupted,
    DocumentNotStored,
    DocumentStore,
    DocumentStoreError,
    SourceChanged,
    StoredDocument,
    StoredEntry,
    hash_file,
    read_in_chunks,
    require_address,
)
from adapters.personal_data.key_store import DataKeyErased, DataKeyMissing
from service_ports import DocumentReference

MAGIC: Final = b"AKTE-DOCUMENT-1\n"
"""The first bytes of every encrypted object (never those of a PDF, JPEG or PNG)."""
SEGMENT_BYTES: Final = 65_536
_TAG_BYTES: Final = 16
_NONCE_BYTES: Final = 12
_KEY_BYTES: Final = 32
_WRAPPED_BYTES: Final = _NONCE_BYTES + _KEY_BYTES + _TAG_BYTES
HEADER_BYTES: Final = len(MAGIC) + 4 + _WRAPPED_BYTES
"""Magic, segment size (4 bytes, big-endian), the wrapped data key (nonce, key, tag)."""
_ADDRESS_KEY_NONCE: Final = b"akte-doc-adr"
"""A nonce that only ever encrypts the one constant below: the owner's AES-GCM key
applied to a constant is a pseudo-random function of that key, from which the address
key is taken (the key store hands out ciphers, never raw keys). Any other use of the
owner's key takes a random 96-bit nonce, which meets this one with negligible chance."""
_ADDRESS_KEY_LABEL: Final = b"akte-document-address-key"


class DocumentErased(DocumentStoreError):
    """The owner's personal data was erased: the document can no longer be decrypted."""

    def __init__(self, sha256: str, owner: str) -> None:
        super().__init__(f"document {sha256} of {owner} was erased with its owner's data key")
        self.sha256 = sha256
        self.owner = owner


class OwnerKeysMissing(DocumentStoreError):
    """The store was used before the key store was given to it (a wiring mistake)."""


class OwnerKeys(Protocol):
    """The per-person data keys (:class:`adapters.personal_data.key_store.DataKeys`)."""

    def for_writing(self, owner_id: str) -> AESGCM: ...

    def for_reading(self, owner_id: str) -> AESGCM: ...


def _key_aad(address: str) -> bytes:
    # Binds the wrapped data key to its object: a header copied elsewhere does not open.
    return b"akte-document-key:" + address.encode()


def _segment_aad(address: str) -> bytes:
    return b"akte-document:" + address.encode()


def _segment_nonce(index: int, *, last: bool) -> bytes:
    # A fresh data key per object, so a counter is a unique nonce; the last flag makes a
    # cut-off object fail instead of reading as a shorter document.
    return index.to_bytes(_NONCE_BYTES - 1, "big") + (b"\x01" if last else b"\x00")


def encrypted_size(size_bytes: int, segment_bytes: int = SEGMENT_BYTES) -> int:
    """The size of the stored object of a document of ``size_bytes``."""
    segments = max(1, -(-size_bytes // segment_bytes))
    return HEADER_BYTES + size_bytes + segments * _TAG_BYTES


def is_encrypted(head: bytes) -> bool:
    """Whether an object's first bytes are those of an encrypted document."""
    return head.startswith(MAGIC)


class EncryptedDocumentStore:
    """The document store port over a backend: every document encrypted for its owner.

    ``keys`` may be given after construction (:meth:`use_keys`): the service builds its
    key store together with its event store, after the document store is made.
    """

    def __init__(
        self,
        backend: DocumentStore,
        keys: OwnerKeys | None = None,
        *,
        segment_bytes: int = SEGMENT_BYTES,
    ) -> None:
        self.backend = backend
        self._keys = keys
        self.segment_bytes = segment_bytes

    def use_keys(self, keys: OwnerKeys) -> None:
        self._keys = keys

    @property
    def chunk_bytes(self) -> int:
        return getattr(self.backend, "chunk_bytes", DEFAULT_CHUNK_BYTES)

    # ------------------------------------------------------------------ keys

    def _owner_keys(self) -> OwnerKeys:
        if self._keys is None:
            msg = "the document store was given no data keys"
            raise OwnerKeysMissing(msg)
        return self._keys

    def _writing_key(self, sha256: str, owner: UUID) -> AESGCM:
        try:
            return self._owner_keys().for_writing(str(owner))
        except DataKeyErased:
            raise DocumentErased(sha256, str(owner)) from None

    def _reading_key(self, sha256: str, owner: UUID) -> AESGCM | None:
        """The owner's key; None: the owner never had one (so no encrypted copy)."""
        try:
            return self._owner_keys().for_reading(str(owner))
        except DataKeyErased:
            raise DocumentErased(sha256, str(owner)) from None
        except DataKeyMissing:
            return None

    @staticmethod
    def address(owner_key: AESGCM, sha256: str) -> str:
        """Where the owner's copy of the document with this hash is stored."""
        address_key = owner_key.encrypt(_ADDRESS_KEY_NONCE, bytes(_KEY_BYTES), _ADDRESS_KEY_LABEL)
        return hmac.new(
            address_key[:_KEY_BYTES], f"akte-document:{sha256}".encode(), hashlib.sha256
        ).hexdigest()

    # ---------------------------------------------------------------- writes

    def put_hashed(
        self, source: BinaryIO, expected: StoredDocument, *, owner: UUID
    ) -> StoredDocument:
        """Store a seekable file whose hash and size the caller knows, for ``owner``.

        Raises :class:`SourceChanged` (and stores nothing) if the bytes read now differ
        from ``expected``; :class:`DocumentErased` if the owner's data was erased.
        """

        def content() -> Iterable[bytes]:
            source.seek(0)
            return read_in_chunks(source, self.chunk_bytes)

        self._put(expected, owner, content)
        return expected

    def put_file(self, source: BinaryIO, *, owner: UUID) -> StoredDocument:
        source.seek(0)
        return self.put_hashed(source, hash_file(source, self.chunk_bytes), owner=owner)

    def put_bytes(self, data: bytes, *, owner: UUID) -> StoredDocument:
        expected = StoredDocument(hashlib.sha256(data).hexdigest(), len(data))
        self._put(expected, owner, lambda: [data])
        return expected

    def copy(self, document: StoredDocument, *, from_owner: UUID, to_owner: UUID) -> None:
        """Store ``from_owner``'s document for ``to_owner`` too (a contact form's files
        become the case file's documents), re-encrypted with ``to_owner``'s key."""
        self._put(
            document,
            to_owner,
            lambda: self.read_chunks(
                document.sha256, owner=from_owner, size_bytes=document.size_bytes
            ),
        )

    def put_from_clear(self, document: StoredDocument, *, owner: UUID) -> None:
        """Encrypt the clear object of ``document`` (as stored before encryption) for
        ``owner``; the clear object stays (the caller removes it)."""
        self._put(
            document,
            owner,
            lambda: self.backend.read_chunks(document.sha256, size_bytes=document.size_bytes),
        )

    def _put(
        self, expected: StoredDocument, owner: UUID, content: Callable[[], Iterable[bytes]]
    ) -> None:
        require_address(expected.sha256)
        owner_key = self._writing_key(expected.sha256, owner)
        address = self.address(owner_key, expected.sha256)
        stored = StoredDocument(address, encrypted_size(expected.size_bytes, self.segment_bytes))
        if self.backend.renew_if_stored(stored):
            return  # the owner has this document already
        self.backend.put_at(address, self._encrypt(owner_key, address, content(), expected))

    def _encrypt(
        self, owner_key: AESGCM, address: str, chunks: Iterable[bytes], expected: StoredDocument
    ) -> Iterator[bytes]:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(_NONCE_BYTES)
        wrapped = nonce + owner_key.encrypt(nonce, data_key, _key_aad(address))
        yield MAGIC + self.segment_bytes.to_bytes(4, "big") + wrapped
        cipher = AESGCM(data_key)
        aad = _segment_aad(address)
        segment = self.segment_bytes
        digest = hashlib.sha256()
        size = index = 0
        pending = bytearray()
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            pending += chunk
            start = 0
            # Keep at least one byte back: only the end of the source tells the last one.
            while len(pending) - start > segment:
                plain = bytes(pending[start : start + segment])
                yield cipher.encrypt(_segment_nonce(index, last=False), plain, aad)
                index += 1
                start += segment
            del pending[:start]
        if StoredDocument(digest.hexdigest(), size) != expected:
            # Raised inside the write: the backend stores nothing under the address.
            msg = "the file changed while it was being stored"
            raise SourceChanged(msg)
        yield cipher.encrypt(_segment_nonce(index, last=True), bytes(pending), aad)

    def writing_together(self) -> AbstractContextManager[DocumentBatch]:
        """This thread's writes in one batch of the backend, committed together
        (:meth:`adapters.documents.store.DocumentStore.writing_together`)."""
        return self.backend.writing_together()

    # ----------------------------------------------------------------- reads

    def read_chunks(
        self, sha256: str, *, owner: UUID, size_bytes: int | None = None
    ) -> Iterator[bytes]:
        """The owner's document, decrypted and verified against ``sha256`` and
        ``size_bytes`` (a mismatch raises :class:`DocumentCorrupted`, after the last chunk
        for a hash mismatch: call :meth:`verify` first before passing bytes on).

        Raises :class:`DocumentErased` at once when the owner's data was erased,
        :class:`DocumentNotStored` when the owner has no copy (nor a clear one exists).
        """
        require_address(sha256)
        owner_key = self._reading_key(sha256, owner)
        if owner_key is not None:
            address = self.address(owner_key, sha256)
            if self.backend.contains(address):
                plain = self._decrypt(owner_key, address, sha256, self.stored_chunks(address))
                return _verified(sha256, size_bytes, plain)
        if self.backend.contains(sha256):
            # Stored in clear before documents were encrypted (until the migration).
            return self.backend.read_chunks(sha256, size_bytes=size_bytes)
        raise DocumentNotStored(sha256)

    def stored_chunks(self, address: str) -> Iterator[bytes]:
        """The stored (encrypted) object as it is."""
        return self.backend.stored_chunks(address)

    def _decrypt(
        self, owner_key: AESGCM, address: str, sha256: str, stored: Iterable[bytes]
    ) -> Iterator[bytes]:
        cipher: AESGCM | None = None
        segment = 0
        aad = _segment_aad(address)
        index = 0
        pending = bytearray()
        for chunk in stored:
            pending += chunk
            if cipher is None:
                if len(pending) < HEADER_BYTES:
                    continue
                cipher, segment = _open_header(owner_key, address, sha256, bytes(pending))
                del pending[:HEADER_BYTES]
            sealed = segment + _TAG_BYTES
            start = 0
            while len(pending) - start > sealed:
                yield _open_segment(cipher, pending[start : start + sealed], index, sha256, aad)
                index += 1
                start += sealed
            del pending[:start]
        if cipher is None:
            raise DocumentCorrupted(sha256, "the encrypted object is shorter than its header")
        yield _open_segment(cipher, pending, index, sha256, aad, last=True)

    def verify(self, sha256: str, *, owner: UUID, size_bytes: int | None = None) -> StoredDocument:
        """Read the whole document and check it; returns its hash and size."""
        size = 0
        for chunk in self.read_chunks(sha256, owner=owner, size_bytes=size_bytes):
            size += len(chunk)
        return StoredDocument(sha256, size)

    def read_bytes(self, sha256: str, *, owner: UUID, size_bytes: int | None = None) -> bytes:
        """The whole document, verified; for small documents and tests."""
        return b"".join(self.read_chunks(sha256, owner=owner, size_bytes=size_bytes))

    def contains(self, sha256: str, *, owner: UUID) -> bool:
        """Whether the owner's document is stored (and readable: not erased)."""
        require_address(sha256)
        try:
            owner_key = self._reading_key(sha256, owner)
        except DocumentErased:
            return False
        if owner_key is not None and self.backend.contains(self.address(owner_key, sha256)):
            return True
        return self.backend.contains(sha256)

    # ------------------------------------------------- sweep and maintenance

    def addresses_to_keep(self, references: Iterable[DocumentReference]) -> set[str]:
        """The stored addresses the events reference: each live owner's copy, and the
        clear object of its hash (until migrated). Erased owners' copies are not kept:
        nobody can read them, the sweep removes them."""
        keep: set[str] = set()
        for reference in references:
            try:
                owner_key = self._reading_key(reference.sha256, reference.owner)
            except DocumentErased:
                continue
            if owner_key is not None:
                keep.add(self.address(owner_key, reference.sha256))
            keep.add(reference.sha256)
        return keep

    def entries(self) -> Iterator[StoredEntry]:
        """Every stored object (``sha256``: its address), for the orphan sweep."""
        return self.backend.entries()

    def delete_unless_recent(self, sha256: str, older_than: timedelta) -> bool:
        return self.backend.delete_unless_recent(sha256, older_than)

    def remove_abandoned_writes(self, older_than: timedelta) -> int:
        return self.backend.remove_abandoned_writes(older_than)

    def close(self) -> None:
        self.backend.close()


def _open_header(owner_key: AESGCM, address: str, sha256: str, header: bytes) -> tuple[AESGCM, int]:
    if not is_encrypted(header):
        raise DocumentCorrupted(sha256, "the stored object is not an encrypted document")
    position = len(MAGIC)
    segment = int.from_bytes(header[position : position + 4], "big")
    wrapped = header[position + 4 : HEADER_BYTES]
    if segment <= 0:
        raise DocumentCorrupted(sha256, "the encrypted object names no segment size")
    try:
        data_key = owner_key.decrypt(
            wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _key_aad(address)
        )
    except InvalidTag:
        raise DocumentCorrupted(sha256, "the document's key does not unwrap") from None
    return AESGCM(data_key), segment


def _open_segment(
    cipher: AESGCM,
    sealed: bytearray | bytes,
    index: int,
    sha256: str,
    aad: bytes,
    *,
    last: bool = False,
) -> bytes:
    try:
        return cipher.decrypt(_segment_nonce(index, last=last), bytes(sealed), aad)
    except InvalidTag:
        raise DocumentCorrupted(sha256, f"segment {index} fails its authentication") from None


def _verified(sha256: str, size_bytes: int | None, chunks: Iterable[bytes]) -> Iterator[bytes]:
    digest = hashlib.sha256()
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size_bytes is not None and size > size_bytes:
            raise DocumentCorrupted(sha256, f"longer than the recorded {size_bytes} bytes")
        digest.update(chunk)
        yield chunk
    if size_bytes is not None and size != size_bytes:
        raise DocumentCorrupted(sha256, f"{size} bytes instead of the recorded {size_bytes}")
    if digest.hexdigest() != sha256:
        raise DocumentCorrupted(sha256, "the bytes do not hash to the recorded sha256")
