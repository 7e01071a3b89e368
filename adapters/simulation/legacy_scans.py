"""Small, valid PDF, JPEG and PNG files, and batches of scanned legacy files, made up here.

The PDFs are real enough for any reader: a catalogue, a page tree and empty pages with an
xref table, or (``object_streams=True``) the page tree inside a compressed object stream
as PDF 1.5 writers do. ``payload_bytes`` adds an incompressible stream per page, which
stands in for the scanned image.
"""

from __future__ import annotations

import json
import random
import zlib
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

MANIFEST_NAME: Final = "manifest.json"


def make_pdf(
    pages: int, *, marker: str = "", payload_bytes: int = 0, object_streams: bool = False
) -> bytes:
    """A PDF of ``pages`` empty pages; ``marker`` makes its bytes (and hash) unique."""
    rng = random.Random(f"{marker}/{pages}/{payload_bytes}")
    objects: dict[int, bytes] = {1: b"<< /Type /Catalog /Pages 2 0 R >>"}
    first_page = 3
    kids = " ".join(f"{first_page + 2 * i} 0 R" for i in range(pages))
    objects[2] = f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode()
    for index in range(pages):
        page_number = first_page + 2 * index
        content_number = page_number + 1
        objects[page_number] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            f"/Contents {content_number} 0 R >>"
        ).encode()
        payload = rng.randbytes(payload_bytes) if payload_bytes else b""
        body = b"% " + marker.encode() + f" page {index + 1}\n".encode() + payload
        objects[content_number] = (
            f"<< /Length {len(body)} >>\nstream\n".encode() + body + b"\nendstream"
        )
    if object_streams:
        return _with_object_stream(objects)
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += f"{number} 0 obj\n".encode() + objects[number] + b"\nendobj\n"
    xref = len(out)
    count = max(objects) + 1
    out += f"xref\n0 {count}\n0000000000 65535 f \n".encode()
    for number in range(1, count):
        out += f"{offsets[number]:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {count} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _with_object_stream(objects: dict[int, bytes]) -> bytes:
    """The dictionaries (not the content streams) packed into one FlateDecode object stream."""
    packed = {n: body for n, body in objects.items() if b"stream" not in body}
    plain = {n: body for n, body in objects.items() if b"stream" in body}
    header = bytearray()
    content = bytearray()
    for number, body in packed.items():
        header += f"{number} {len(content)} ".encode()
        content += body + b" "
    raw = bytes(header) + bytes(content)
    compressed = zlib.compress(raw)
    stream_number = max(objects) + 1
    out = bytearray(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
    for number, body in plain.items():
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    out += (
        f"{stream_number} 0 obj\n<< /Type /ObjStm /N {len(packed)} /First {len(header)} "
        f"/Filter /FlateDecode /Length {len(compressed)} >>\nstream\n"
    ).encode()
    out += compressed + b"\nendstream\nendobj\n"
    out += b"trailer\n<< /Root 1 0 R >>\nstartxref\n0\n%%EOF\n"
    return bytes(out)


def make_jpeg(marker: str = "") -> bytes:
    """JPEG magic, a comment segment and end of image: enough for a check by bytes."""
    comment = marker.encode() or b"x"
    return b"\xff\xd8\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + b"\xff\xd9"


def make_png(marker: str = "") -> bytes:
    signature = b"\x89PNG\r\n\x1a\n"
    ihdr = (1).to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    text = chunk(b"tEXt", b"Comment\x00" + (marker.encode() or b"x"))
    pixels = chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    return signature + chunk(b"IHDR", ihdr) + text + pixels + chunk(b"IEND", b"")


# ----------------------------------------------------------- legacy file batches


@dataclass(frozen=True)
class LegacyFolder:
    path: Path
    file_number: str
    documents: int
    pages: int
    size_bytes: int


def file_number_for(index: int) -> str:
    return f"ALT-{1990 + index % 30}-{index:06d}"


def person_for(index: int) -> dict[str, Any]:
    rng = random.Random(index)
    return {
        "surname": rng.choice(["Yılmaz", "Kowalski", "Nguyen", "Haddad", "Petrov", "Silva"]),
        "given_names": rng.choice(["Ayşe", "Anna", "Minh", "Samir", "Olga", "João"]),
        "date_of_birth": date(1940 + rng.randrange(60), 1 + rng.randrange(12), 1).isoformat(),
        "nationality": rng.choice(["TUR", "POL", "VNM", "SYR", "RUS", "BRA"]),
        "passport_number": f"P{index:08d}",
    }


def write_legacy_batch(
    directory: Path,
    folders: int,
    *,
    seed: int = 7,
    max_documents: int = 3,
    max_pages: int = 12,
    payload_bytes_per_page: int = 0,
) -> list[LegacyFolder]:
    """``folders`` legacy files, each a folder with a manifest and 1 to ``max_documents``
    PDFs of 1 to ``max_pages`` pages; deterministic for a seed."""
    rng = random.Random(seed)
    written = []
    for index in range(folders):
        file_number = file_number_for(index)
        folder = directory / f"akte-{index:06d}"
        folder.mkdir(parents=True)
        entries = []
        pages_total = 0
        size_total = 0
        for document in range(1 + rng.randrange(max_documents)):
            pages = 1 + rng.randrange(max_pages)
            content = make_pdf(
                pages,
                marker=f"{file_number}/{document}",
                payload_bytes=payload_bytes_per_page,
            )
            name = f"teil-{document + 1:02d}.pdf"
            (folder / name).write_bytes(content)
            entries.append({"file": name, "pages": pages})
            pages_total += pages
            size_total += len(content)
        manifest = {"file_number": file_number, "person": person_for(index), "documents": entries}
        (folder / MANIFEST_NAME).write_text(json.dumps(manifest, ensure_ascii=False))
        written.append(LegacyFolder(folder, file_number, len(entries), pages_total, size_total))
    return written
