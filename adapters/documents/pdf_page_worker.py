"""The process that opens PDFs for :mod:`adapters.documents.pdf_pages`, under limits.

Run as ``python -m adapters.documents.pdf_page_worker MEMORY_BYTES``. It caps its own
address space at ``MEMORY_BYTES`` first (so that a PDF whose streams inflate to gigabytes
fails here, not in the server), then answers requests on stdin/stdout until stdin closes:

- request: an 8-byte big-endian length, then that many bytes of a PDF;
- answer: one JSON line, ``{"pages": N}``, ``{"unreadable": true}`` (PDFium cannot open
  it: damaged, truncated, encrypted, not a PDF), or ``{"too_complex": "memory"}`` (after
  which the process ends: its heap may be in any state).

PDFium (through pypdfium2) is the PDF engine of Chromium: maintained, fuzzed, and made to
open hostile files. It imports nothing of Akte, so a crash here is only this process.
"""

from __future__ import annotations

import json
import resource
import struct
import sys
from typing import BinaryIO, Final

_LENGTH: Final = struct.Struct(">Q")


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    # A buffered read of ``size`` fills one bytes object of that size: an upload is held
    # once, not twice (the memory cap counts every copy).
    data = stream.read(size)
    return data if len(data) == size else None


def answer(data: bytes) -> dict[str, object]:
    """What PDFium says about ``data``."""
    import pypdfium2 as pdfium  # imported after the memory cap, so its heap is capped too

    try:
        document = pdfium.PdfDocument(data)
    except pdfium.PdfiumError:
        return {"unreadable": True}
    try:
        return {"pages": len(document)}
    finally:
        document.close()


def serve(memory_bytes: int, requests: BinaryIO, answers: BinaryIO) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    while True:
        header = _read_exactly(requests, _LENGTH.size)
        if header is None:
            return
        data = _read_exactly(requests, _LENGTH.unpack(header)[0])
        if data is None:
            return
        try:
            reply = answer(data)
        except MemoryError:
            answers.write(b'{"too_complex": "memory"}\n')
            answers.flush()
            return
        del data
        answers.write(json.dumps(reply).encode() + b"\n")
        answers.flush()


if __name__ == "__main__":  # pragma: no cover - the worker's entry point, run by pdf_pages
    serve(int(sys.argv[1]), sys.stdin.buffer, sys.stdout.buffer)
