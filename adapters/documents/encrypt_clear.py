"""Encrypting the documents stored in clear before documents were encrypted per owner.

``akte documents encrypt`` finds the clear objects (stored under their bare sha256, the
address no encrypted object has) that events reference, and for each one, in batches:

1. encrypts a copy for every owner that references it (a case file, a contact form
   submission; :meth:`EncryptedDocumentStore.put_from_clear`), each copy written
   atomically under the owner's keyed address; an owner whose data was erased gets none;
2. removes the clear object, once every copy is stored;
3. after each batch, lets the backend drop the removed bytes (PostgreSQL: ``VACUUM``).

The store itself records the progress: an object is clear until step 2, and a copy
already stored is only renewed, not written again. An interrupted run (or one stopped
by ``limit``) therefore resumes where it stopped when started again, and a run over an
encrypted store does nothing. Clear objects no event references (left by a failed
write) are not anyone's to encrypt: the orphan sweep removes them.

A clear object that fails verification is left as it is and reported by its hash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final

from adapters.documents.encryption import DocumentErased, EncryptedDocumentStore
from adapters.documents.store import DocumentCorrupted, StoredDocument
from service_ports import DocumentReference

DEFAULT_BATCH_SIZE: Final = 100


@dataclass(frozen=True)
class EncryptionProgress:
    done: int
    """Clear objects handled in this run (encrypted, removed as erased, or failed)."""
    total: int
    """Clear objects found at the start of this run (at most ``limit``)."""
    copies: int
    """Encrypted copies written (or found written by an earlier, interrupted run)."""


@dataclass
class EncryptionReport:
    clear_found: int = 0
    """Referenced clear objects at the start of the run."""
    encrypted: int = 0
    """Clear objects encrypted for their owners and removed."""
    copies: int = 0
    erased_removed: int = 0
    """Clear objects all of whose owners were erased: removed without a copy."""
    failed: list[str] = field(default_factory=list)
    """Hashes of clear objects that failed verification (left as they are)."""
    remaining: int = 0
    """Clear objects left for a later run (``limit`` reached)."""


def encrypt_clear_documents(
    store: EncryptedDocumentStore,
    references: Iterable[DocumentReference],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    progress: Callable[[EncryptionProgress], None] | None = None,
) -> EncryptionReport:
    """Encrypt every referenced clear object for its owners and remove it (see the
    module's docstring); at most ``limit`` objects in this run."""
    owners: dict[str, dict[object, DocumentReference]] = {}
    for reference in references:
        # One copy per owner, whatever number of events name the document.
        owners.setdefault(reference.sha256, {})[reference.owner] = reference
    backend = store.backend
    clear = sorted(entry.sha256 for entry in backend.entries() if entry.sha256 in owners)
    report = EncryptionReport(clear_found=len(clear))
    if limit is not None and limit < len(clear):
        report.remaining = len(clear) - limit
        clear = clear[:limit]
    done = 0
    for start in range(0, len(clear), max(1, batch_size)):
        for sha256 in clear[start : start + max(1, batch_size)]:
            _encrypt_one(store, sha256, list(owners[sha256].values()), report)
            done += 1
        backend.compact()
        if progress is not None:
            progress(EncryptionProgress(done, len(clear), report.copies))
    return report


def _encrypt_one(
    store: EncryptedDocumentStore,
    sha256: str,
    references: list[DocumentReference],
    report: EncryptionReport,
) -> None:
    copies = 0
    try:
        for reference in references:
            document = StoredDocument(sha256, reference.size_bytes)
            try:
                store.put_from_clear(document, owner=reference.owner)
            except DocumentErased:
                continue  # erased: this owner keeps no copy
            copies += 1
    except DocumentCorrupted:
        report.failed.append(sha256)
        return
    # Only now, with every owner's copy stored: a crash before leaves the clear object
    # for the next run.
    store.backend.remove(sha256)
    report.copies += copies
    if copies:
        report.encrypted += 1
    else:
        report.erased_removed += 1
