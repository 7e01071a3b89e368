"""The read model of counts for monitoring, on SQLite and PostgreSQL: erasures of closed
and transferred files count, outcomes are kept apart, and a rebuild counts the same.

Mails and payment notifications through real channels: tests/adapters/monitoring/.
"""

from __future__ import annotations

from uuid import UUID

from adapters.settings import Settings
from projections.figures.monitoring_counts import PROJECTION, event_counts
from service import AkteService
from tests.conftest import FakeClock
from tests.service.test_case_files import open_case
from tests.support.projections import catch_up, engine_for, views_for


def _erase(service: AkteService, case_id: UUID, version: int, ground: str) -> None:
    service.data_protection.erase_personal_data(
        case_id,
        expected_version=version,
        by="dsb-01",
        legal_ground=ground,
        approved_by="dsb-01",
    )


def test_erasures_of_closed_and_transferred_files_count_and_a_rebuild_counts_the_same(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    closed, version = open_case(service)
    version = service.close_case(
        closed, expected_version=version, by="sb-01", closure_reason="left"
    ).version
    moved, moved_version = open_case(service)
    moved_version = service.transfer_to_office(
        moved, expected_version=moved_version, by="sb-01", to_office_id="abh-anderswo"
    ).version
    active, active_version = open_case(service)
    clock.advance(days=1)
    _erase(service, closed, version, "aufenthg-91")
    _erase(service, moved, moved_version, "aufenthg-91")
    _erase(service, active, active_version, "dsgvo-17")

    with views_for(settings) as views:
        catch_up(service, views, [PROJECTION])
        counted = event_counts(views)
        with engine_for(service, views, [PROJECTION]) as engine:
            engine.rebuild()
        rebuilt = event_counts(views)

    assert counted == {("erasures", "aufenthg-91"): 2, ("erasures", "dsgvo-17"): 1}
    assert rebuilt == counted
