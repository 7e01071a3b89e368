"""Three offices of different size (the reference city, a small district office, a
large city), each simulated for a year: every figure the simulator promises is in the
report exactly, the customers come out within 2 % of the profile's, the year before
reads "nicht erfasst" (the office started recording with the simulated year) and the
summary never compares with it; on SQLite and PostgreSQL.

The printable page of each office is kept at ``test-output/yearly-report-<office>.html``
(and, where Chromium is installed, its PDF's first two pages as PNG) for a person to
look at as a council member would.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest

from adapters.reference.staff_plan import staff_plan_from_json
from adapters.reports import pdf
from adapters.reports.yearly_report import (
    NOT_RECORDED,
    ReportHeading,
    change,
    code_labels,
    german_summary,
    report_html,
)
from adapters.settings import Settings
from adapters.simulation.profile import OfficeProfile, load_profile, targets_for
from adapters.simulation.simulator import simulate
from adapters.simulation.tally import SimulationResult, achieved
from projections.figures.yearly_report import YearlyReport, yearly_report
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.projections.test_statistics import (
    STATISTICS,
    assert_drill_downs_add_up,
    comparable_figures,
    report_figures,
)
from tests.support.projections import engine_for, views_for
from tests.system.test_report_browser import HEIGHT, OUTPUT, WIDTH, run_chromium

YEAR = 2024
PROFILES = Path(__file__).parents[1] / "fixtures" / "profiles"
OFFICES: dict[str, tuple[Path | None, float]] = {
    # name: (profile, scale): some 600-1,100 procedures each, every figure non-zero.
    "reference": (None, 0.005),
    "small": (PROFILES / "office-small.json", 0.025),
    "large": (PROFILES / "office-large.json", 0.0018),
}
NEW_FIGURES = (
    "entry_consents_deemed",
    "residence_documents_extended",
    "residence_documents_transferred",
    "fiction_certificates_extended",
)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def _simulated(
    service: AkteService, views: ViewsStore, clock: FakeClock, office: str
) -> tuple[OfficeProfile, float, SimulationResult, YearlyReport]:
    path, scale = OFFICES[office]
    profile = load_profile(path)
    clock.now = datetime(YEAR + 1, 6, 2, 9, tzinfo=UTC)
    result = simulate(service, profile, seed=23, year=YEAR, scale=scale, office_id=f"abh-{office}")
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    report = yearly_report(
        views,
        result.office_id,
        YEAR,
        staff=staff_plan_from_json(result.staff_plan),
        recorded_since=YEAR,
    )
    return profile, scale, result, report


def _promised(report: YearlyReport) -> dict[str, Any]:
    figures = comparable_figures(report_figures(report))
    for key in (*NEW_FIGURES, "staff_posts", "staff_at_work"):
        figures[key] = report.figure(key).value
    return figures


@pytest.mark.long
@pytest.mark.parametrize("office", sorted(OFFICES))
def test_every_promised_figure_of_three_offices(
    service: AkteService, views: ViewsStore, clock: FakeClock, settings: Settings, office: str
) -> None:
    profile, scale, result, report = _simulated(service, views, clock, office)
    truth = result.truth[YEAR]

    # The profile's figures exactly, and every figure of the simulator's truth.
    assert achieved(truth) == targets_for(profile, scale=scale)
    promised = _promised(report)
    assert promised == {key: comparable_figures(truth)[key] for key in promised}
    # They happen, and count (deemed consents are rare: see the simulator's tests).
    assert all(promised[key] for key in NEW_FIGURES[1:]), promised
    # Posts scaled as the figures (at least one): a small-scale office is not staffed
    # for the whole city.
    posts = profile.staff_target(scale=scale)
    assert promised["staff_posts"] == posts
    # Customers: the profile's figure within 2 %, counted to the one definition.
    wanted = profile.customer_target(scale=scale)
    assert abs(truth["customers"] - wanted) <= 0.02 * wanted, (truth["customers"], wanted)
    assert_drill_downs_add_up(views, report, limit=500)

    # The year before was not recorded: never 0, no percentage against it.
    for figure in report.figures:
        assert figure.previous is None, figure.key
        assert change(figure) is None, figure.key
    summary = german_summary(report)
    assert "Vorjahr" not in summary
    stellen = "Stelle" if posts == 1 else "Stellen"
    assert summary.startswith(f"Im Jahr {YEAR} hatte die Ausländerbehörde {posts} {stellen};")

    page = report_html(report, heading=_heading(office))
    assert page.count(NOT_RECORDED) >= len(report.figures) - 1
    if settings.store == "sqlite":
        _keep(office, page)


_NAMES = {"reference": "Musterstadt", "small": "Landkreis Kleinau", "large": "Großstadt"}


def _heading(office: str) -> ReportHeading:
    return ReportHeading(
        office_name=f"Ausländerbehörde {_NAMES[office]} (simuliert)",
        office_address="Rathausplatz 1, 99999 Simulationsstadt",
        generated_on=date(YEAR + 1, 1, 15),
        labels=code_labels({}, {}, {}),
    )


def _keep(office: str, page: str) -> None:
    """The page (and its PDF's first two pages, where Chromium is there) for a person to
    look at."""
    OUTPUT.mkdir(exist_ok=True)
    kept = OUTPUT / f"yearly-report-{office}.html"
    kept.write_text(page, encoding="utf-8")
    try:
        binary = pdf.chromium_binary()
    except pdf.PdfUnavailable:
        return
    with tempfile.TemporaryDirectory(prefix="akte-shot-") as scratch:
        screenshot = OUTPUT / f"yearly-report-{office}-screen.png"
        run_chromium(
            binary,
            Path(scratch) / "profile",
            f"--screenshot={screenshot}",
            f"--window-size={WIDTH},{HEIGHT}",
            kept.resolve().as_uri(),
        )
    printed = pdf.html_to_pdf(page)
    document = pdfium.PdfDocument(printed)
    for number in range(min(2, len(document))):
        image = document[number].render(scale=1.5).to_pil()
        image.save(OUTPUT / f"yearly-report-{office}-page-{number + 1}.png")
