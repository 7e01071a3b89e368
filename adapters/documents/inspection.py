"""What a file is, told from its bytes: media type by magic number, pages of a PDF.

Names and declared content types are the sender's claims; only the bytes count. A file
that is not a PDF, JPEG or PNG by its first bytes is refused whatever it is called, and
a PDF whose pages cannot be found (damaged, truncated, encrypted object streams) is
refused as unreadable: nobody at the office could open it either.

Page counting reads the PDF's page tree without a PDF library: the ``/Count`` of the root
``/Pages`` dictionary (the one without ``/Parent``), looked for in the file and in its
compressed object streams; failing that, the number of ``/Page`` objects. Large files are
memory-mapped, not read into memory.
"""

from __future__ import annotations

import hashlib
import mmap
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

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
_DICTIONARY_WINDOW: Final = 1_048_576
_MAX_OBJECT_STREAM_BYTES: Final = 16 * 1_048_576
"""Decompressing more than this from one object stream is a zip bomb, not a page tree."""

_NAME_END: Final = rb"(?![A-Za-z0-9#_.-])"
_PAGES: Final = re.compile(rb"/Type\s*/Pages" + _NAME_END)
_PAGE: Final = re.compile(rb"/Type\s*/Page" + _NAME_END)
_OBJECT_STREAM: Final = re.compile(rb"/Type\s*/ObjStm" + _NAME_END)
_COUNT: Final = re.compile(rb"/Count\s+(\d{1,9})" + _NAME_END)
_PARENT: Final = re.compile(rb"/Parent\s*\d")
_LENGTH: Final = re.compile(rb"/Length\s+(\d{1,10})\s*(?:/|>>)")


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


def inspect_file(source: BinaryIO, *, max_bytes: int) -> Inspection:
    """Check an upload by its bytes; raises :class:`UnacceptableFile` with the reason.

    ``source`` must be seekable; it is left at its start.
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
            counted = count_pdf_pages(data)
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


def count_pdf_pages(data: bytes | mmap.mmap) -> int | None:
    """The number of pages of a PDF; ``None`` when it cannot be told (not a PDF for us)."""
    if data[: len(_PDF_HEADER)] != _PDF_HEADER or _EOF_MARKER not in data[-_EOF_WINDOW:]:
        return None
    texts: list[bytes | mmap.mmap] = [data, *_object_streams(data)]
    root_counts = [count for text in texts for count in _root_page_counts(text)]
    # Incremental updates append new versions of the page tree: the last one counts.
    counted = root_counts[-1] if root_counts else sum(len(_PAGE.findall(t)) for t in texts)
    return counted if 1 <= counted <= MAX_PAGES else None


def _root_page_counts(text: bytes | mmap.mmap) -> Iterator[int]:
    for match in _PAGES.finditer(text):
        bounds = _enclosing_dictionary(text, match.start())
        if bounds is None:
            continue
        dictionary = bytes(text[bounds[0] : bounds[1]])
        count = _COUNT.search(dictionary)
        if count is not None and _PARENT.search(dictionary) is None:
            yield int(count.group(1))


def _object_streams(data: bytes | mmap.mmap) -> Iterator[bytes]:
    """The decompressed contents of the PDF's object streams (PDF 1.5 and later)."""
    for match in _OBJECT_STREAM.finditer(data):
        bounds = _enclosing_dictionary(data, match.start())
        if bounds is None:
            continue
        dictionary = bytes(data[bounds[0] : bounds[1]])
        if b"/FlateDecode" not in dictionary:
            continue
        keyword = data.find(b"stream", bounds[1], bounds[1] + 64)
        if keyword < 0:
            continue
        begin = keyword + len(b"stream")
        begin += 2 if data[begin : begin + 2] == b"\r\n" else 1
        length = _LENGTH.search(dictionary)
        end = begin + int(length.group(1)) if length else data.find(b"endstream", begin)
        if end <= begin:
            continue
        try:
            inflater = zlib.decompressobj()
            yield inflater.decompress(bytes(data[begin:end]), _MAX_OBJECT_STREAM_BYTES)
        except zlib.error:
            continue  # encrypted or damaged: the file's own objects may still tell


def _enclosing_dictionary(text: bytes | mmap.mmap, position: int) -> tuple[int, int] | None:
    """Start and end of the ``<< … >>`` dictionary around ``position``, nesting respected."""
    floor = max(0, position - _DICTIONARY_WINDOW)
    cursor = position
    depth = 0
    while True:
        opening = text.rfind(b"<<", floor, cursor)
        closing = text.rfind(b">>", floor, cursor)
        if opening < 0:
            return None
        if closing > opening:
            depth += 1
            cursor = closing
        elif depth == 0:
            start = opening
            break
        else:
            depth -= 1
            cursor = opening
    ceiling = min(len(text), start + _DICTIONARY_WINDOW)
    cursor = start
    depth = 0
    while True:
        opening = text.find(b"<<", cursor, ceiling)
        closing = text.find(b">>", cursor, ceiling)
        if closing < 0:
            return None
        if 0 <= opening < closing:
            depth += 1
            cursor = opening + 2
        else:
            depth -= 1
            cursor = closing + 2
            if depth == 0:
                return start, cursor
