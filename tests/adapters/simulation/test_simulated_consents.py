"""Entry procedures whose consent is deemed given (§ 31 Abs. 1 AufenthV): the simulator
lets the period pass on some, the deadline tick records the consent on the day it finds
the period passed, and the yearly report counts them as the simulator's truth does; on
SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.settings import Settings
from adapters.simulation.profile import TARGET_FIGURES, OfficeProfile
from adapters.simulation.simulator import simulate
from domain.case_file import CaseFile
from domain.deadlines import DEEMED_ENTRY_CONSENT, NoHolidays
from projections.figures.yearly_report import yearly_report
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.projections.test_statistics import STATISTICS
from tests.support.projections import engine_for, views_for
from tests.support.statistics_oracle import BERLIN, all_events

YEAR = 2024
# A small office that mostly takes part in entry procedures: enough of them that some
# are left to the silence period (a tenth of the § 31 ones).
PROFILE = OfficeProfile(
    year=YEAR,
    figures=dict.fromkeys(TARGET_FIGURES, 2)
    | {"entry_procedures": 150, "procedures_processed": 40, "appointments_served": 10},
    staff=4,
    customers=30,
)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def test_consents_deemed_given_are_simulated_and_counted(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    clock.now = datetime(YEAR + 1, 6, 2, 9, tzinfo=UTC)
    result = simulate(service, PROFILE, seed=5, year=YEAR, scale=1.0)
    deemed = result.truth[YEAR]["entry_consents_deemed"]
    assert deemed > 0

    events = all_events(service)
    requested = {
        (event.originator_id, event.entry_procedure_number): event.at
        for event in events
        if isinstance(event, CaseFile.EntryProcedureRequested)
    }
    given = [event for event in events if isinstance(event, CaseFile.EntryConsentDeemedGiven)]
    # Counted in the year the tick found the period passed (December's run into January).
    assert sum(event.at.astimezone(BERLIN).year == YEAR for event in given) == deemed
    for event in given:
        asked = requested[event.originator_id, event.entry_procedure_number]
        # Recorded on a day after the period's last day, never before.
        last_day = DEEMED_ENTRY_CONSENT.ends_on(asked.astimezone(BERLIN).date(), NoHolidays())
        assert event.at.astimezone(BERLIN).date() > last_day

    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    report = yearly_report(views, result.office_id, YEAR)
    assert report.figure("entry_consents_deemed").value == deemed
    assert report.figure("entry_procedures").value == 150
