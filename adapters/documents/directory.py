"""Documents in a directory on disk: the default, under the data directory.

Layout, with nothing but hashes in names (file names people chose never reach the disk)::

    <root>/objects/3f/3fa9…c1     one file per stored object, named by its address
    <root>/incoming/<random>.part writes in progress (and what a crash left of them)

An address is a document's sha256 for what was written in clear (:meth:`put_chunks`,
before documents were encrypted), or the keyed address of an encrypted document
(:meth:`put_at`, :mod:`adapters.documents.encryption`).

A write goes to ``incoming``, is flushed and fsynced, then renamed onto its final name
(``rename`` is atomic within a file system) and the directory fsynced: a document is
there completely or not at all. Storing the same bytes again renames the new copy over
the old one (same bytes) or, when the caller hashed first, just renews its time.

Inside :meth:`DocumentStore.writing_together` (:class:`DirectoryBatch`) the part files
are written and left in ``incoming`` until the batch commits; then they are fsynced
(several at a time), all renamed, and each directory they landed in is fsynced once: one
round of fsyncs for the batch instead of two per document, nothing under ``objects``
before it.

The orphan sweep removes a document by first renaming it into ``incoming``: a write of
the same bytes that lands meanwhile creates a fresh file under the final name, and a
document stored again just before (recent time) is renamed back, so the sweep never
removes a document someone has just stored.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from adapters.documents.store import (
    DEFAULT_CHUNK_BYTES,
    DocumentBatch,
    DocumentNotStored,
    DocumentStore,
    DocumentStoreUnavailable,
    StoredDocument,
    StoredEntry,
    require_address,
)

_DIRECTORY_MODE: Final = 0o700
_FILE_MODE: Final = 0o600
"""Documents hold personal data: only the service's own user may read them."""
_PART_SUFFIX: Final = ".part"
_SWEEP_SUFFIX: Final = ".sweep"
_FSYNC_THREADS: Final = 8


@contextmanager
def _disk_errors() -> Iterator[None]:
    try:
        yield
    except OSError as error:
        reason = error.strerror or type(error).__name__
        msg = f"the document store (directory) failed: {reason}"
        raise DocumentStoreUnavailable(msg) from None


def _fsync_path(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _fsync_all(paths: list[Path]) -> None:
    """fsync files or directories, several at a time: the file system's journal takes
    fsyncs that arrive together in one commit (on ext4 here some ten times faster than
    one after the other)."""
    if len(paths) <= 1:
        for path in paths:
            _fsync_path(path)
        return
    with ThreadPoolExecutor(max_workers=min(_FSYNC_THREADS, len(paths))) as pool:
        list(pool.map(_fsync_path, paths))


def _fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in ``path`` survive a power cut."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class DirectoryDocumentStore(DocumentStore):
    def __init__(
        self, root: Path, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES, fsync: bool = True
    ) -> None:
        """``fsync=False`` only where durability does not matter (throwaway benchmarks)."""
        self.root = root
        self.chunk_bytes = chunk_bytes
        self._fsync = fsync
        self._objects = root / "objects"
        self._incoming = root / "incoming"
        # An OSError here (permissions, a file in the way) is a deployment problem: it
        # stops start-up like the event store's own directory would.
        for directory in (root, self._objects, self._incoming):
            directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        require_address(sha256)
        return self._objects / sha256[:2] / sha256

    # ---------------------------------------------------------------- writes

    def put_chunks(self, chunks: Iterable[bytes]) -> StoredDocument:
        digest = hashlib.sha256()
        size = 0

        def hashed() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                yield chunk

        self._write(hashed(), lambda: digest.hexdigest(), lambda: size)
        return StoredDocument(digest.hexdigest(), size)

    def put_at(self, address: str, chunks: Iterable[bytes]) -> int:
        require_address(address)
        size = 0

        def counted() -> Iterator[bytes]:
            nonlocal size
            for chunk in chunks:
                size += len(chunk)
                yield chunk

        self._write(counted(), lambda: address, lambda: size)
        return size

    def _write(
        self, chunks: Iterable[bytes], address: Callable[[], str], size: Callable[[], int]
    ) -> None:
        """Write ``chunks`` to a part file, then rename it onto ``address()`` (asked once
        every chunk is written: for content addressing, the hash of what was written);
        in a batch, leave it for the batch's commit."""
        part = self._incoming / f"{uuid.uuid4().hex}{_PART_SUFFIX}"
        batch = self.current_batch()
        if isinstance(batch, DirectoryBatch):
            try:
                self._write_part(part, chunks, fsync=False)
                batch.wrote_part(part, self._path(address()), size())
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            return
        try:
            self._write_part(part, chunks, fsync=self._fsync)
            final = self._path(address())
            with _disk_errors():
                self._make_shard(final.parent)
                # Over an existing copy too: same content, and a fresh time for the sweep.
                os.replace(part, final)
                if self._fsync:
                    _fsync_directory(final.parent)
        except BaseException:
            # Whatever stopped the write (the source, the disk, an interrupt): no half file.
            part.unlink(missing_ok=True)
            raise

    def _write_part(self, part: Path, chunks: Iterable[bytes], *, fsync: bool) -> None:
        with _disk_errors():
            descriptor = os.open(
                part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, _FILE_MODE
            )
            out = os.fdopen(descriptor, "wb")
        with out:
            # The source's own errors pass unchanged; only ours are the store's.
            for chunk in chunks:
                with _disk_errors():
                    out.write(chunk)
            with _disk_errors():
                out.flush()
                if fsync:
                    os.fsync(out.fileno())

    def _make_shard(self, shard: Path) -> None:
        if not shard.is_dir():
            shard.mkdir(mode=_DIRECTORY_MODE, exist_ok=True)
            if self._fsync:
                _fsync_directory(self._objects)

    def _new_batch(self) -> DocumentBatch:
        return DirectoryBatch(self)

    def remove(self, address: str) -> bool:
        path = self._path(address)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        if self._fsync:
            _fsync_directory(path.parent)
        return True

    def renew_if_stored(self, document: StoredDocument) -> bool:
        path = self._path(document.sha256)
        batch = self.current_batch()
        if isinstance(batch, DirectoryBatch) and batch.holds(path, document.size_bytes):
            return True  # written in this batch: stored with it
        try:
            if path.stat().st_size != document.size_bytes:
                return False  # damaged: the caller writes a good copy over it
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    # ----------------------------------------------------------------- reads

    def stored_chunks(self, sha256: str) -> Iterator[bytes]:
        try:
            source = self._path(sha256).open("rb")
        except FileNotFoundError:
            raise DocumentNotStored(sha256) from None
        with source:
            while chunk := source.read(self.chunk_bytes):
                yield chunk

    def contains(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def entries(self) -> Iterator[StoredEntry]:
        for shard in sorted(self._objects.iterdir()):
            if not shard.is_dir():
                continue
            for path in sorted(shard.iterdir()):
                try:
                    require_address(path.name)
                    status = path.stat()
                except (ValueError, FileNotFoundError):
                    continue  # not a document, or swept meanwhile
                yield StoredEntry(
                    sha256=path.name,
                    size_bytes=status.st_size,
                    stored_at=datetime.fromtimestamp(status.st_mtime, tz=UTC),
                )

    # ----------------------------------------------------------------- sweep

    def delete_unless_recent(self, sha256: str, older_than: timedelta) -> bool:
        final = self._path(sha256)
        set_aside = self._incoming / f"{sha256}.{uuid.uuid4().hex}{_SWEEP_SUFFIX}"
        try:
            os.rename(final, set_aside)
        except FileNotFoundError:
            return False
        if time.time() - set_aside.stat().st_mtime < older_than.total_seconds():
            # Stored again just before we took it: put it back (over any newer copy,
            # which holds the same bytes).
            os.replace(set_aside, final)
            return False
        set_aside.unlink()
        if self._fsync:
            _fsync_directory(final.parent)
        return True

    def remove_abandoned_writes(self, older_than: timedelta) -> int:
        """Remove old interrupted writes; put back what an interrupted sweep set aside."""
        removed = 0
        cutoff = time.time() - older_than.total_seconds()
        for path in self._incoming.iterdir():
            try:
                if path.name.endswith(_SWEEP_SUFFIX):
                    # The sweep stopped between setting it aside and deciding: let the
                    # next sweep decide again rather than lose a document.
                    final = self._path(path.name.split(".", 1)[0])
                    if final.exists():
                        path.unlink()
                    else:
                        os.rename(path, final)
                elif path.name.endswith(_PART_SUFFIX) and path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except (FileNotFoundError, ValueError):
                continue  # finished or removed meanwhile, or not ours
        return removed


class DirectoryBatch(DocumentBatch):
    """Part files held in ``incoming`` until :meth:`commit`, which fsyncs each, renames
    them all and fsyncs each directory they landed in once. A unit that fails removes
    its part files; so does a batch that ends with an error."""

    def __init__(self, store: DirectoryDocumentStore) -> None:
        super().__init__(store)
        self._store = store
        self._parts: list[tuple[Path, Path]] = []
        self._sizes: dict[Path, int] = {}
        self._unit_mark: tuple[int, int] | None = None

    def wrote_part(self, part: Path, final: Path, size: int) -> None:
        self._parts.append((part, final))
        self._sizes[final] = size
        self.wrote(final.name, size)

    def holds(self, final: Path, size: int) -> bool:
        return self._sizes.get(final) == size

    @contextmanager
    def unit(self) -> Iterator[None]:
        if self._unit_mark is not None:
            msg = "units of a batch do not nest"
            raise RuntimeError(msg)
        self._unit_mark = (len(self._parts), self.pending_bytes)
        try:
            yield
        except BaseException:
            written, size = self._unit_mark
            self._unit_mark = None
            dropped = self._parts[written:]
            self._drop(dropped)
            for _, final in dropped:
                self._sizes.pop(final, None)
            del self._parts[written:]
            del self.pending[written:]
            self.pending_bytes = size
            raise
        self._unit_mark = None

    def commit(self) -> None:
        super().commit()
        if self._unit_mark is not None:
            self._unit_mark = (0, 0)

    def _commit(self) -> None:
        parts, self._parts = self._parts, []
        self._sizes = {}
        store = self._store
        try:
            with _disk_errors():
                if store._fsync:
                    _fsync_all([part for part, _ in parts])
                for part, final in parts:
                    store._make_shard(final.parent)
                    os.replace(part, final)
                if store._fsync:
                    _fsync_all(sorted({final.parent for _, final in parts}))
        except BaseException:
            self._drop(parts)
            raise

    def referenced(self) -> None:
        if self._unit_mark is not None:
            # What the unit wrote so far stays with the saved command; from here on a
            # failure drops only what follows.
            self._unit_mark = (len(self._parts), self.pending_bytes)

    def discard(self) -> None:
        super().discard()
        parts, self._parts = self._parts, []
        self._sizes = {}
        self._drop(parts)

    @staticmethod
    def _drop(parts: list[tuple[Path, Path]]) -> None:
        for part, _ in parts:
            part.unlink(missing_ok=True)
