"""PDFs built to exhaust a reader, for the tests of upload inspection (issue: a 385 KiB
"zip bomb" once cost the server 398 MiB, a 312 KiB file 10.6 s).

Each is a valid PDF of one page whose structure asks the reader for far more memory or
work than its size suggests.
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

_MIB: Final = 1_048_576
_PAGE_TREE: Final = (
    b"<< /Type /Catalog /Pages 2 0 R >> "
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >> "
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >> "
)
_OFFSETS: Final = b"1 0 2 34 3 78 "


def _deflate_repeated(head: bytes, chunk: bytes, times: int) -> bytes:
    """zlib data of ``head`` and ``times`` copies of ``chunk``, made in milliseconds: after
    a full flush the compressor starts afresh, so one compressed copy of ``chunk`` stands
    for every copy; only the checksum (Adler-32) is computed over all of them."""
    compressor = zlib.compressobj(9)
    start = compressor.compress(head) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(chunk) + compressor.flush(zlib.Z_FULL_FLUSH)
    finish = compressor.flush()[:-4]  # the final empty block, without the checksum
    checksum = zlib.adler32(head)
    for _ in range(times):
        checksum = zlib.adler32(chunk, checksum)
    return start + block * times + finish + struct.pack(">I", checksum)


def object_stream_bomb(inflated_mib: int, *, layers: int = 1) -> bytes:
    """The page tree inside an object stream that inflates to ``inflated_mib`` MiB of
    blanks; with ``layers=2`` the stream is deflated twice (``/Filter [/FlateDecode
    /FlateDecode]``), so a few KiB inflate to gigabytes."""
    stream = _deflate_repeated(_OFFSETS + _PAGE_TREE, b" " * _MIB, inflated_mib)
    filters = b"/FlateDecode"
    for _ in range(layers - 1):
        stream = zlib.compress(stream, 9)
        filters += b" /FlateDecode"
    out = bytearray(b"%PDF-1.5\n")
    out += b"4 0 obj\n<< /Type /ObjStm /N 3 /First %d /Filter [%s] /Length %d >>\nstream\n" % (
        len(_OFFSETS),
        filters,
        len(stream),
    )
    out += stream + b"\nendstream\nendobj\n"
    out += b"trailer\n<< /Root 1 0 R >>\nstartxref\n0\n%%EOF\n"
    return bytes(out)


def with_objects(objects: dict[int, bytes]) -> bytes:
    """A PDF of these numbered objects (1 is the catalog), with a cross-reference table."""
    out = bytearray(b"%PDF-1.4\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    count = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % count
    for number in range(1, count):
        out += b"%010d 00000 n \n" % offsets.get(number, 0)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref)
    return bytes(out)


def looping_page_tree() -> bytes:
    """A page tree that is its own child and claims 99,999 pages."""
    return with_objects(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R >>",
            2: b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 99999 >>",
            3: b"<< /Type /Page /Parent 2 0 R >>",
        }
    )


def deeply_nested(depth: int) -> bytes:
    """Arrays nested ``depth`` deep in the catalog."""
    return with_objects(
        {
            1: b"<< /Type /Catalog /Pages 2 0 R /X " + b"[" * depth + b"]" * depth + b" >>",
            2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R >>",
        }
    )


def page_chain(length: int) -> bytes:
    """One page under ``length`` nested /Pages nodes."""
    objects = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    for index in range(length):
        objects[2 + index] = b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % (3 + index)
    objects[2 + length] = b"<< /Type /Page /Parent %d 0 R >>" % (1 + length)
    return with_objects(objects)


def wide_page_tree(pages: int) -> bytes:
    """``pages`` pages as kids of one /Pages node."""
    kids = b" ".join(b"%d 0 R" % (3 + index) for index in range(pages))
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
    }
    for index in range(pages):
        objects[3 + index] = b"<< /Type /Page /Parent 2 0 R >>"
    return with_objects(objects)
