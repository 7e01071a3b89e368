"""``akte report --format pdf``: the printable page printed by Chromium, pages rendered to PNG.

The first two pages are rendered with PDFium and kept at
``test-output/yearly-report-page-<n>.png`` for a person to look at as a council member
would. Without Chromium the test is skipped, saying so; under ``CI=true`` that fails.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import pypdfium2 as pdfium
import pytest

from adapters.reports import pdf
from adapters.reports.yearly_report import ReportHeading, code_labels, report_html
from tests.adapters.reports.test_yearly_report import sample_report
from tests.support.browser import chromium_path as chromium
from tests.system.test_report_browser import OUTPUT

HEADING = ReportHeading(
    office_name="Ausländerbehörde Musterstadt",
    office_address="Rathausplatz 1, 12345 Musterstadt",
    generated_on=date(2025, 1, 15),
    labels=code_labels({}, {}, {}),
)


def test_the_report_prints_to_a_pdf_whose_pages_show_the_report() -> None:
    chromium()  # skips (or fails under CI) without it

    printed = pdf.html_to_pdf(report_html(sample_report(), heading=HEADING))

    assert printed.startswith(b"%PDF-")
    document = pdfium.PdfDocument(printed)
    assert len(document) >= 2
    first = document[0]
    width, height = first.get_size()
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    text = first.get_textpage().get_text_range()
    assert "Jahresbericht 2024" in text
    assert "Ausländerbehörde Musterstadt" in text
    assert "Stand: 15. Januar 2025" in text
    OUTPUT.mkdir(exist_ok=True)
    for number in (0, 1):
        image = document[number].render(scale=1.5).to_pil()
        image.save(OUTPUT / f"yearly-report-page-{number + 1}.png")
        # Painted, not blank: dark text on the page.
        darkest, _lightest = image.convert("L").getextrema()
        assert isinstance(darkest, int)
        assert darkest < 80


INKED_AT_LEAST: Final = 0.6
"""How far down every page but the last must carry ink (a share of the page's height)."""


def inked_depth(page: pdfium.PdfPage) -> float:
    """How far down the page its lowest painted pixel lies (0: blank, 1: at the foot)."""
    image = page.render(scale=0.5).to_pil().convert("L")
    # Ink is anything darker than near-white (text, rules, bars, shaded boxes).
    box = image.point(lambda value: 255 if value < 235 else 0).getbbox()
    return 0.0 if box is None else box[3] / image.height


def test_every_page_but_the_last_is_filled() -> None:
    """No page ends half empty: the charts follow the tables without a forced page
    break, and only the last page may stop early (a break before the charts once left
    page 2 with the management table alone on its upper third)."""
    chromium()

    document = pdfium.PdfDocument(pdf.html_to_pdf(report_html(sample_report(), heading=HEADING)))

    depths = [inked_depth(document[number]) for number in range(len(document))]
    assert len(depths) >= 2
    assert all(depth >= INKED_AT_LEAST for depth in depths[:-1]), depths
    assert depths[-1] > 0


def test_without_chromium_the_error_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AKTE_CHROMIUM", raising=False)
    monkeypatch.setattr("shutil.which", lambda _name: None)

    with pytest.raises(pdf.PdfUnavailable, match="apt-get install -y chromium"):
        pdf.html_to_pdf("<p>x</p>")
