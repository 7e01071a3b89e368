"""The demo's documents are PDFs a caseworker can open: generated, valid, stored."""

from __future__ import annotations

import io

import pytest

from adapters.documents.inspection import PDF, count_pdf_pages, inspect_file
from adapters.simulation.demo_documents import demo_pdf
from adapters.simulation.demo_office import load_demo_office
from service import AkteService


@pytest.mark.parametrize("pages", [1, 3, 30])
def test_a_demo_pdf_is_a_valid_pdf(pages: int) -> None:
    pdf = demo_pdf("Mietvertrag (Übersetzung)", "Demo-Dokument (fiktiv) \\ ok", pages=pages)

    assert pdf.startswith(b"%PDF-1.4\n")
    assert pdf.rstrip().endswith(b"%%EOF")
    assert count_pdf_pages(pdf) == pages
    inspection = inspect_file(io.BytesIO(pdf), max_bytes=len(pdf))
    assert (inspection.media_type, inspection.page_count) == (PDF, pages)
    # The title is on the page, in WinAnsiEncoding; parentheses and backslashes escaped.
    assert "(Mietvertrag \\(Übersetzung\\))".encode("cp1252") in pdf
    assert b"\\\\ ok" in pdf
    # The cross-reference table points at each object.
    start = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n", 1)[0])
    table = pdf[start:].split(b"trailer", 1)[0].splitlines()[2:]
    for number, entry in enumerate(table[1:], start=1):
        offset = int(entry.split()[0])
        assert pdf[offset:].startswith(b"%d 0 obj" % number)


def test_a_pdf_has_a_page() -> None:
    with pytest.raises(ValueError, match="at least one page"):
        demo_pdf("Leer", "", pages=0)


def test_every_demo_document_is_a_stored_pdf(service: AkteService) -> None:
    summary = load_demo_office(service, cases=4)

    references = service.intake.referenced_documents()
    case_ids = set(summary.case_ids)
    on_case_files = [ref for ref in references if ref.owner in case_ids]
    from_contact_forms = [ref for ref in references if ref.owner not in case_ids]
    assert on_case_files
    assert len(from_contact_forms) == summary.contact_submissions == 3
    for reference in references:
        content = service.intake.documents.read_bytes(
            reference.sha256, owner=reference.owner, size_bytes=reference.size_bytes
        )
        assert content.startswith(b"%PDF-")
        assert content.rstrip().endswith(b"%%EOF")
        assert count_pdf_pages(content) is not None
    for case_id in summary.case_ids:
        for document in service.get_case(case_id).documents:
            assert document.media_type == PDF
