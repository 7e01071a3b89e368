"""The yearly report over HTTP: formats, drill-down, read-your-writes, office scoping."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from service import AkteService
from tests.conftest import FakeClock, bearer
from tests.http.routes.test_worklists import PERSON

YEAR = 2024


@pytest.fixture(autouse=True)
def in_the_next_year(clock: FakeClock) -> None:
    """The report is of a past year: business times must not lie in the future."""
    clock.now = datetime(YEAR + 1, 1, 15, 9, tzinfo=UTC)


def decided_procedures(service: AkteService, office_id: str, count: int) -> int:
    """``count`` procedures received in March and decided in April; the last position."""
    position = 0
    for number in range(count):
        opened = service.open_case(
            office_id=office_id,
            master_data=PERSON,
            by="sb-01",
            at=datetime(YEAR, 3, 1, 9, tzinfo=UTC),
        )
        received = service.receive_procedure(
            opened.case_id,
            expected_version=opened.version,
            by="sb-01",
            channel=("contact_form", "mail")[number % 2],
            topic="extend_residence_permit",
            legal_basis="aufenthg-16b",
            at=datetime(YEAR, 3, 4 + number, 9, tzinfo=UTC),
        )
        decided = service.decide_procedure(
            opened.case_id,
            expected_version=received.version,
            by="sb-02",
            procedure_number=1,
            outcome="granted",
            at=datetime(YEAR, 4, 4 + number, 9, tzinfo=UTC),
        )
        position = decided.position
    return position


def head(settings: Settings) -> dict[str, str]:
    return bearer(settings, "ho-01", Role.HEAD_OF_OFFICE)


def test_the_report_reflects_a_write_at_once_and_lists_what_it_counts(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 3)
    answer = client.get(
        f"/reports/yearly/{YEAR}", params={"min_position": position}, headers=head(settings)
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    report: dict[str, Any] = answer.json()
    figures = {figure["key"]: figure for figure in report["figures"]}
    assert figures["procedures_processed"]["value"] == 3
    assert figures["procedures_processed"]["by_month"][3] == 3  # April
    assert figures["digital_share"]["value"] == pytest.approx(66.7)
    assert figures["customers"]["value"] == 3  # three files served
    assert figures["appointments_served"]["value"] is None  # no appointment recorded yet

    link = figures["procedures_processed"]["drill_down"]
    first = client.get(link, params={"limit": 2}, headers=head(settings))
    assert first.status_code == 200, first.text
    assert len(first.json()["items"]) == 2
    assert 'rel="next"' in first.headers["Link"]
    rest = client.get(
        link, params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=head(settings)
    )
    items = first.json()["items"] + rest.json()["items"]
    assert rest.json()["next_cursor"] is None
    assert [item["event"] for item in items] == ["ProcedureDecided"] * 3
    assert {item["actor"] for item in items} == {"sb-02"}
    assert all(item["days"] == 31 for item in items)


def test_the_customers_drill_down_lists_each_customer_once_and_adds_up(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 3)
    report = client.get(
        f"/reports/yearly/{YEAR}", params={"min_position": position}, headers=head(settings)
    ).json()
    customers_figure = next(f for f in report["figures"] if f["key"] == "customers")
    assert customers_figure["drill_down"] == f"/reports/yearly/{YEAR}/customers"

    first = client.get(customers_figure["drill_down"], params={"limit": 2}, headers=head(settings))
    assert first.status_code == 200, first.text
    rest = client.get(
        customers_figure["drill_down"],
        params={"limit": 2, "cursor": first.json()["next_cursor"]},
        headers=head(settings),
    )
    lines = first.json()["items"] + rest.json()["items"]
    assert rest.json()["next_cursor"] is None
    # As many lines as the figure says, each customer once.
    assert len(lines) == customers_figure["value"] == 3
    assert len({line["customer"] for line in lines}) == 3
    for line in lines:
        behind = client.get(
            f"/reports/yearly/{YEAR}/figures/customers/events",
            params={"customer": line["customer"], "limit": 100},
            headers=head(settings),
        )
        assert behind.status_code == 200, behind.text
        assert len(behind.json()["items"]) == line["events"] >= 1

    refused = client.get(
        f"/reports/yearly/{YEAR}/figures/customers/events",
        params={"customer": "not a customer"},
        headers=head(settings),
    )
    assert refused.status_code == 422
    assert (
        client.get(
            customers_figure["drill_down"], headers=bearer(settings, "sb-01", Role.CASEWORKER)
        )
    ).status_code == 403


def test_the_customers_drill_down_reflects_a_write_at_once(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 3)
    drill_down = f"/reports/yearly/{YEAR}/customers"
    answer = client.get(drill_down, params={"min_position": position}, headers=head(settings))
    assert answer.status_code == 200, answer.text
    assert "X-Akte-Views-Behind" not in answer.headers
    assert len(answer.json()["items"]) == 3
    # The position is honoured, not ignored: one beyond the log is refused.
    beyond = client.get(
        drill_down, params={"min_position": position + 1000}, headers=head(settings)
    )
    assert beyond.status_code == 422, beyond.text


def test_csv_and_html_by_accept_header_or_format(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 1)
    params = {"min_position": position}
    as_csv = client.get(
        f"/reports/yearly/{YEAR}", params=params, headers=head(settings) | {"Accept": "text/csv"}
    )
    assert as_csv.status_code == 200, as_csv.text
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert any(row["key"] == "procedures_processed" for row in rows)
    as_html = client.get(
        f"/reports/yearly/{YEAR}", params=params, headers=head(settings) | {"Accept": "text/html"}
    )
    assert as_html.headers["content-type"].startswith("text/html")
    assert "<svg" in as_html.text
    assert str(YEAR) in as_html.text
    forced = client.get(
        f"/reports/yearly/{YEAR}",
        params=params | {"format": "csv"},
        headers=head(settings) | {"Accept": "text/html"},
    )
    assert forced.headers["content-type"].startswith("text/csv")


def test_unknown_and_unrecorded_figures_and_bad_years(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    base = f"/reports/yearly/{YEAR}/figures"
    unknown = client.get(f"{base}/no_such_figure/events", headers=head(settings))
    assert unknown.status_code == 404
    assert "no figure no_such_figure" in unknown.json()["detail"]
    position = decided_procedures(service, settings.default_office_id, 1)
    before_the_log = f"/reports/yearly/{YEAR - 1}/figures/customers/events"
    unrecorded = client.get(
        before_the_log, params={"min_position": position}, headers=head(settings)
    )
    assert unrecorded.status_code == 404
    assert "not recorded" in unrecorded.json()["detail"]
    assert client.get("/reports/yearly/12", headers=head(settings)).status_code == 422
    beyond = client.get(
        f"/reports/yearly/{YEAR}", params={"min_position": 10**9}, headers=head(settings)
    )
    assert beyond.status_code == 422


def test_a_year_in_the_future_or_before_the_log_is_refused_naming_the_years(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 3)  # in 2024
    params = {"min_position": position}
    for year in (YEAR + 2, 2199, YEAR - 5):  # the clock stands in January 2025
        for path in ("", "/figures/procedures_processed/events", "/customers"):
            answer = client.get(
                f"/reports/yearly/{year}{path}", params=params, headers=head(settings)
            )
            assert answer.status_code == 404, (year, path, answer.text)
            detail = answer.json()["detail"]
            assert "not recorded" in detail
            assert "Beispiel" not in answer.text  # no personal data
    assert (
        "2024-2025"
        in client.get(f"/reports/yearly/{YEAR - 5}", headers=head(settings)).json()["detail"]
    )


def test_workload_counts_are_not_recorded_in_the_year_the_log_began_before(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 3)  # in 2024
    data = client.get(
        f"/reports/yearly/{YEAR}", params={"min_position": position}, headers=head(settings)
    ).json()
    workload = {figure["key"]: figure for figure in data["workload"]}
    for key in ("workload_actions", "workload_decided", "workload_backlog_assigned"):
        assert workload[key]["value"] is not None, key
        assert workload[key]["previous"] is None, key  # 2023: before the log, not 0
        assert workload[key]["change"] is None, key


def test_the_running_year_is_provisional_and_not_compared_with_a_whole_year(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, settings.default_office_id, 3)  # in 2024
    answer = client.get(
        f"/reports/yearly/{YEAR + 1}", params={"min_position": position}, headers=head(settings)
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["provisional"] is True
    assert data["as_of"] == "2025-01-15"
    assert data["summary"].startswith("Vorläufig, Stand 15. Januar 2025")
    assert "Vorjahr:" not in data["summary"]
    assert "weniger als im Vorjahr" not in data["summary"]
    past = client.get(f"/reports/yearly/{YEAR}", headers=head(settings)).json()
    assert past["provisional"] is False
    assert past["as_of"] is None
    assert "Vorläufig" not in past["summary"]


def test_a_head_of_office_sees_only_their_office_an_auditor_every_office(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    position = decided_procedures(service, "abh-nachbarstadt", 2)
    other: dict[str, str | int] = {"office_id": "abh-nachbarstadt", "min_position": position}
    refused = client.get(f"/reports/yearly/{YEAR}", params=other, headers=head(settings))
    assert refused.status_code == 403
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    seen = client.get(f"/reports/yearly/{YEAR}", params=other, headers=auditor)
    assert seen.status_code == 200, seen.text
    figures = {figure["key"]: figure["value"] for figure in seen.json()["figures"]}
    assert figures["procedures_processed"] == 2
    own = client.get(f"/reports/yearly/{YEAR}", headers=head(settings))
    own_figures = {figure["key"]: figure["value"] for figure in own.json()["figures"]}
    assert own_figures["procedures_processed"] is None  # nothing recorded in this office
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    assert client.get(f"/reports/yearly/{YEAR}", headers=caseworker).status_code == 403
