"""What a file is, told from its bytes: media type by magic number, pages of a PDF.

Names and declared content types are the sender's claims; only the bytes count. A file
that is not a PDF, JPEG or PNG by its first bytes is refused whatever it is called, and
a PDF whose pages cannot be found (damaged, truncated, encrypted) is refused as
unreadable: nobody at the office could open it either.

Pages are counted by PDFium in a worker process with capped memory and time
(:mod:`adapters.documents.pdf_pages`): a PDF built to exhaust the reader (object-stream
bombs, endless page trees) is refused as too complex, and costs the server nothing but
the worker it killed. JPEG and PNG files are never decoded here (only their first bytes
are read), so an image bomb cannot go off in the server. Large files are memory-mapped,
not read into memory.
"""

from __future__ import annotations

import hashlib
import mmap
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from adapters.documents.pdf_pages import PdfPageCounter, PdfTooComplex, default_counter
from domain.case_file import MAX_PAGES

PDF: Final = "application/pdf"
JPEG: Final = "image/jpeg"
PNG: Final = "image/png"

_PDF_HEADER: Final = b"%PDF-"
_JPEG_HEADER: Final = b"\xff\xd8\xff"
_PNG_HEADER: Final = b"\x89PNG\r\n\x1a\n"
_HEAD_BYTES: Final = 16
_EOF_MARKER: Final = b"%%EOF"
_EOF_WINDOW: Final = 2048
"""A PDF ends with %%EOF; some writers add a little after it."""
_READ_INTO_MEMORY_BELOW: Final = 4 * 1_048_576


class UnacceptableFile(Exception):
    """A file refused for what its bytes are; ``code`` names the rule for problem types."""

    code = "unacceptable-file"


class EmptyFile(UnacceptableFile):
    code = "empty-file"


class FileTooLarge(UnacceptableFile):
    code = "file-too-large"


class UnsupportedFileType(UnacceptableFile):
    code = "unsupported-file-type"


class UnreadableFile(UnacceptableFile):
    code = "unreadable-file"


class FileTooComplex(UnreadableFile):
    """A PDF that would take the reader more memory or time than any ordinary file."""

    code = "file-too-complex"


@dataclass(frozen=True)
class Inspection:
    media_type: str
    size_bytes: int
    page_count: int
    sha256: str
    """Of the bytes inspected: the address they will have in the document store."""


def media_type_of(head: bytes) -> str | None:
    """PDF, JPEG or PNG by their magic numbers; ``None`` for anything else."""
    if head.startswith(_PDF_HEADER):
        return PDF
    if head.startswith(_JPEG_HEADER):
        return JPEG
    if head.startswith(_PNG_HEADER) and head[12:16] == b"IHDR":
        return PNG
    return None


def inspect_file(
    source: BinaryIO, *, max_bytes: int, counter: PdfPageCounter | None = None
) -> Inspection:
    """Check an upload by its bytes; raises :class:`UnacceptableFile` with the reason.

    ``source`` must be seekable; it is left at its start. ``counter`` counts a PDF's pages
    (default: the process's, :func:`adapters.documents.pdf_pages.default_counter`).
    """
    source.seek(0, 2)
    size = source.tell()
    source.seek(0)
    if size == 0:
        raise EmptyFile("the file is empty")
    if size > max_bytes:
        raise FileTooLarge(f"the file is larger than {max_bytes} bytes")
    media_type = media_type_of(source.read(_HEAD_BYTES))
    source.seek(0)
    if media_type is None:
        raise UnsupportedFileType("the file is not a PDF, JPEG or PNG (judged by its content)")
    counted: int | None = 1
    with _readable(source, size) as data:
        # One pass over the bytes for both: hashlib reads a memory map without copying.
        sha256 = hashlib.sha256(data).hexdigest()
        if media_type == PDF:
            counted = count_pdf_pages(data, counter)
    source.seek(0)
    if counted is None:
        raise UnreadableFile("the PDF cannot be read: it is damaged, truncated or encrypted")
    return Inspection(media_type=media_type, size_bytes=size, page_count=counted, sha256=sha256)


def inspect_path(path: Path) -> Inspection:
    """Like :func:`inspect_file` for a file on disk, without a size limit."""
    with path.open("rb") as source:
        return inspect_file(source, max_bytes=path.stat().st_size)


@contextmanager
def _readable(source: BinaryIO, size: int) -> Iterator[bytes | mmap.mmap]:
    """The file's bytes: read if small, memory-mapped (paged in by the OS) if large."""
    if size < _READ_INTO_MEMORY_BELOW:
        yield source.read()
        return
    try:
        mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, AttributeError):
        yield source.read()  # not backed by a file of its own
        return
    with mapped:
        yield mapped


def count_pdf_pages(data: bytes | mmap.mmap, counter: PdfPageCounter | None = None) -> int | None:
    """The number of pages of a PDF; ``None`` when it cannot be told (not a PDF for us).

    Raises :class:`FileTooComplex` when reading it would exceed the reader's limits."""
    if data[: len(_PDF_HEADER)] != _PDF_HEADER or _EOF_MARKER not in data[-_EOF_WINDOW:]:
        return None
    try:
        counted = (counter or default_counter()).pages(data)
    except PdfTooComplex as error:
        raise FileTooComplex(str(error)) from None
    if counted is None:
        return None
    return counted if 1 <= counted <= MAX_PAGES else None
