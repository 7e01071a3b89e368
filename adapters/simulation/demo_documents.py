"""The demo's documents: small PDFs that a caseworker can open, and a few contact form
submissions that bring them.

:func:`demo_pdf` writes a valid PDF 1.4 by hand (no PDF library): one page per page
asked for, each with the document's title and a line saying it is a demo, in Helvetica
(one of the standard fonts every reader has, so nothing is embedded). Text outside
Windows-1252 is written as ``?``.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date
from typing import Final

from adapters.documents.inspection import PDF
from domain.intake import ContactDetails
from domain.values import CONTACT_FORM_DOCUMENT_KIND
from service import AkteService
from service_intake import IncomingDocument

_PAGE_WIDTH: Final = 595  # A4 in points
_PAGE_HEIGHT: Final = 842


def _text(value: str) -> bytes:
    """A PDF string literal of ``value`` in WinAnsiEncoding."""
    raw = value.encode("cp1252", errors="replace")
    escaped = raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    return b"(" + escaped + b")"


def demo_pdf(title: str, line: str, *, pages: int = 1) -> bytes:
    """A PDF 1.4 of ``pages`` A4 pages, each with ``title`` and ``line``."""
    if pages < 1:
        msg = "a PDF has at least one page"
        raise ValueError(msg)
    font = 3
    first_page = 4
    page_ids = [first_page + 2 * index for index in range(pages)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % page for page in page_ids)
        + b"] /Count %d >>" % pages,
        font: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    }
    for index, page in enumerate(page_ids):
        footer = f"Seite {index + 1} von {pages}" if pages > 1 else ""
        stream = b"\n".join(
            (
                b"BT /F1 20 Tf 72 760 Td " + _text(title) + b" Tj ET",
                b"BT /F1 12 Tf 72 730 Td " + _text(line) + b" Tj ET",
                b"BT /F1 10 Tf 72 60 Td " + _text(footer) + b" Tj ET",
            )
        )
        objects[page] = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] " % (
            _PAGE_WIDTH,
            _PAGE_HEIGHT,
        ) + b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>" % (font, page + 1)
        objects[page + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    out = io.BytesIO()
    # The comment with bytes above 127 tells transfer programs the file is binary.
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for number in sorted(objects):
        offsets[number] = out.tell()
        out.write(b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n")
    xref = out.tell()
    count = max(objects) + 1
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
    for number in range(1, count):
        out.write(b"%010d 00000 n \n" % offsets[number])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref))
    return out.getvalue()


def demo_document(
    title: str, line: str, *, kind: str, pages: int = 1, name: str = ""
) -> IncomingDocument:
    """A generated PDF as the intake takes an uploaded file."""
    content = demo_pdf(title, line, pages=pages)
    return IncomingDocument(
        content=io.BytesIO(content),
        sha256=hashlib.sha256(content).hexdigest(),
        size_bytes=len(content),
        media_type=PDF,
        page_count=pages,
        name=name,
        kind=kind,
    )


_SUBMISSIONS: Final = (
    (
        "change_of_address",
        "Guten Tag, ich bin umgezogen. Die neue Meldebescheinigung liegt bei.",
        "Meldebescheinigung",
        ("Ana", "Beispiel", "ana.beispiel@example.org"),
    ),
    (
        "extend_residence_permit",
        "Mein Aufenthaltstitel läuft in sechs Wochen ab. Anbei die Immatrikulation.",
        "Immatrikulationsbescheinigung",
        ("Ravi", "Muster", "ravi.muster@example.org"),
    ),
    (
        "general_question",
        "Wie ist der Stand meines Antrags? Den Mietvertrag sende ich mit.",
        "Mietvertrag",
        ("Olena", "Probe", "olena.probe@example.org"),
    ),
)


def submit_demo_contact_forms(service: AkteService, *, office_id: str) -> int:
    """A few contact form submissions from fictitious people, each with a PDF: the
    caseworkers' inbox has something to open and to link."""
    for topic, message, title, (given_names, surname, email) in _SUBMISSIONS:
        service.intake.submit_contact_form(
            office_id=office_id,
            topic=topic,
            message=message,
            contact=ContactDetails(
                surname=surname,
                given_names=given_names,
                date_of_birth=date(1990, 5, 17),
                email=email,
            ),
            files=[
                demo_document(
                    title,
                    f"Demo-Dokument von {given_names} {surname} (fiktiv)",
                    kind=CONTACT_FORM_DOCUMENT_KIND,
                    name=f"{title}.pdf",
                )
            ],
        )
    return len(_SUBMISSIONS)
