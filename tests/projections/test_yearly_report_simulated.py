"""A simulated office year: the report reproduces the simulator's ground truth exactly,
equals a naive count over the raw event list, and every drill-down adds up; on SQLite
and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.settings import Settings
from adapters.simulation.profile import load_profile
from adapters.simulation.simulator import simulate
from adapters.simulation.tally import SimulationResult
from projections.figures.yearly_report import yearly_report
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
from tests.support.statistics_oracle import naive_figures

YEAR = 2024
SCALE = 0.005
"""750 procedures processed, 70 documents issued ...: every figure is non-zero."""


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


@pytest.fixture
def simulated(service: AkteService, views: ViewsStore, clock: FakeClock) -> SimulationResult:
    clock.now = datetime(YEAR + 1, 6, 2, 9, tzinfo=UTC)  # the simulated year lies in the past
    result = simulate(service, load_profile(), seed=7, year=YEAR, scale=SCALE)
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    return result


def test_the_report_reproduces_the_simulated_year(
    service: AkteService, views: ViewsStore, simulated: SimulationResult
) -> None:
    report = yearly_report(views, simulated.office_id, YEAR)
    figures = comparable_figures(report_figures(report))
    truth = comparable_figures(simulated.truth[YEAR])
    assert figures == {key: truth[key] for key in figures}
    assert figures == comparable_figures(naive_figures(service, simulated.office_id, YEAR))
    assert report.figure("procedures_processed").value == 750
    assert_drill_downs_add_up(views, report, limit=500)
