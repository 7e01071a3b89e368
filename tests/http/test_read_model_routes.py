"""The day a list is for: ``?on=`` or today in the office's time zone, never the UTC
date (:mod:`adapters.http.read_model_routes`); both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import pytest
from eventsourcing.persistence import OperationalError
from fastapi.testclient import TestClient
from pydantic import ValidationError

from adapters.bootstrap import build_app
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock, bearer

LATE_EVENING_UTC = datetime(2024, 3, 4, 23, 30, tzinfo=UTC)
"""Monday 23:30 UTC: in Berlin (CET, UTC+1) already Tuesday 00:30."""
BERLIN_DAY = date(2024, 3, 5)
VALID_UNTIL = date(2024, 3, 15)
PERSON = MasterData("Beispiel", "Amal", date(1991, 7, 14), "SYR", "N1234567")


@pytest.fixture
def position(service: AkteService, settings: Settings, clock: FakeClock) -> int:
    """A Fiktionsbescheinigung valid until 15 March, recorded late on 4 March (UTC)."""
    clock.now = LATE_EVENING_UTC
    opened = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="sb-01")
    issued = service.issue_fiction_certificate(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        kind="81_3_1",
        valid_from=date(2024, 1, 15),
        valid_until=VALID_UNTIL,
        carrier_sheet_number="FB0000001",
    )
    return issued.position


def _expiring(
    client: TestClient, settings: Settings, position: int, **params: Any
) -> list[dict[str, Any]]:
    response = client.get(
        "/worklists/expiring-documents",
        params={"min_position": position, "within_days": 28} | params,
        headers=bearer(settings, "sb-01", Role.CASEWORKER),
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_today_is_the_office_date_not_the_utc_date(
    client: TestClient, settings: Settings, position: int
) -> None:
    [item] = _expiring(client, settings, position)

    # 10 days from Tuesday 5 March (Berlin); the UTC date, Monday 4 March, would give 11.
    assert item["days_left"] == (VALID_UNTIL - BERLIN_DAY).days == 10


def test_on_asks_the_list_of_another_day(
    client: TestClient, settings: Settings, position: int
) -> None:
    [earlier] = _expiring(client, settings, position, on="2024-02-20")
    [later] = _expiring(client, settings, position, on="2024-03-14")
    after_the_end = _expiring(client, settings, position, on="2024-03-16")

    assert (earlier["days_left"], later["days_left"]) == (24, 1)
    assert after_the_end == []


@pytest.mark.parametrize("path", ["/worklists/expiring-documents", "/worklists/my-open-procedures"])
@pytest.mark.parametrize("on", ["2024-02-30", "tomorrow", "05.03.2024", ""])
def test_a_day_that_is_not_a_date_is_a_422(
    client: TestClient, settings: Settings, path: str, on: str
) -> None:
    response = client.get(
        path, params={"on": on}, headers=bearer(settings, "sb-01", Role.CASEWORKER)
    )

    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert any("on" in str(error) for error in response.json()["errors"]), response.text


@pytest.fixture
def client_in_new_york(
    service: AkteService, settings: Settings, read_models: ReadModels
) -> Iterator[TestClient]:
    elsewhere = settings.model_copy(update={"office_time_zone": "America/New_York"})
    with TestClient(build_app(elsewhere, service, read_models=read_models)) as test_client:
        yield test_client


def test_the_office_time_zone_is_a_setting(
    client_in_new_york: TestClient, settings: Settings, position: int
) -> None:
    [item] = _expiring(client_in_new_york, settings, position)

    # 18:30 on Monday 4 March in New York (UTC-5).
    assert item["days_left"] == (VALID_UNTIL - (BERLIN_DAY - timedelta(days=1))).days == 11


def test_an_unknown_time_zone_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="office_time_zone"):
        Settings(office_time_zone="Europe/Atlantis")


def test_retention_due_is_asked_on_a_day(
    client: TestClient, settings: Settings, read_models: ReadModels, position: int
) -> None:
    headers = bearer(settings, "tl-01", Role.TEAM_LEAD)
    assert read_models.wait_until(position, 10), "the views did not follow the log"

    default = client.get("/retention/due", headers=headers)
    chosen = client.get("/retention/due", params={"on": "2030-01-31"}, headers=headers)
    bad = client.get("/retention/due", params={"on": "2030-13-01"}, headers=headers)

    assert (default.status_code, chosen.status_code, bad.status_code) == (200, 200, 422)
    assert default.json()["today"] == BERLIN_DAY.isoformat()
    assert chosen.json()["today"] == "2030-01-31"


class _ReplicaNeverAsked:
    """A replica the history would read from: it must not be reached when the primary
    cannot tell the log's head."""

    def read_events(self, *args: object, **kwargs: object) -> object:
        raise AssertionError("the replica was asked although the primary is away")


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/worklists/expiring-documents", Role.CASEWORKER),
        ("/reports/yearly/2024", Role.HEAD_OF_OFFICE),
        ("HISTORY", Role.AUDITOR),
    ],
)
def test_a_primary_away_when_the_position_is_checked_is_a_503_to_try_again(
    client: TestClient,
    service: AkteService,
    read_models: ReadModels,
    settings: Settings,
    position: int,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    role: Role,
) -> None:
    if path == "HISTORY":
        case_id = service.open_case(
            office_id=settings.default_office_id, master_data=PERSON, by="sb-01"
        ).case_id
        path = f"/cases/{case_id}/history"
        # The history asks the log's head only where it may read from a replica.
        monkeypatch.setattr(read_models, "replica", _ReplicaNeverAsked())

    def away() -> int:
        msg = "couldn't get a connection after 5.00 sec"
        raise OperationalError(msg)

    monkeypatch.setattr(service.recorder, "max_notification_id", away)
    response = client.get(
        path, params={"min_position": position}, headers=bearer(settings, "x-01", role)
    )
    assert response.status_code == 503, response.text
    assert response.json()["type"].endswith("/store-unavailable")
    assert int(response.headers["retry-after"]) > 0


def _every_role(settings: Settings) -> dict[str, str]:
    """A token holding every role, so that each route below is reached."""
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    token = issuer.issue(user_id="x-01", roles=list(Role), office_id=settings.default_office_id)
    return {"Authorization": f"Bearer {token}"}


EARLIEST_TIME = "0001-01-01T00:00:00+14:00"
"""Before 1900, and in UTC before the first day Python can make."""
LATEST_TIME = "9999-12-31T23:59:59-14:00"
"""After 2199, and in UTC after the last day Python can make."""


OUT_OF_RANGE: Final[list[tuple[str, dict[str, str]]]] = [
    ("/worklists/deadlines", {"on": "9999-12-31"}),
    ("/worklists/expiring-documents", {"on": "9999-12-31"}),
    ("/worklists/my-open-procedures", {"on": "0001-01-01"}),
    ("/retention/due", {"on": "9999-12-31"}),
    ("/appointments/day", {"on": "9999-12-31"}),
    ("/appointments/day", {"day": "0001-01-01"}),
    ("/appointments/figures/history", {"from": "0001-01-01"}),
    ("/appointments/figures/history", {"until": "9999-12-31"}),
    ("/appointments/offers", {"from_day": "9999-12-31"}),
    ("/audit/days", {"until": "9999-12-31"}),
    ("/audit/days", {"from": "0001-01-01"}),
    ("/audit/reads", {"from": EARLIEST_TIME}),
    ("/audit/reads", {"until": LATEST_TIME}),
    ("/audit/actions", {"from": EARLIEST_TIME}),
    ("/audit/actions", {"until": LATEST_TIME}),
    ("/cases/{case_id}", {"on": "9999-12-31"}),
    ("/cases/{case_id}", {"as_of": LATEST_TIME}),
    ("/cases/{case_id}/history", {"on": "9999-12-31"}),
    ("/cases/{case_id}/history", {"from": EARLIEST_TIME}),
    ("/cases/{case_id}/history", {"until": LATEST_TIME}),
    ("/cases/{case_id}/diff", {"to_on": "0001-01-01"}),
    ("/cases/{case_id}/diff", {"from_on": "0001-01-01", "to_on": "2024-01-01"}),
    ("/cases/{case_id}/diff", {"from": EARLIEST_TIME, "until": "2024-01-01T00:00:00Z"}),
    ("/cases/{case_id}/diff", {"until": LATEST_TIME}),
    ("/reports/workload", {"until": "0001-01-01"}),
    ("/reports/workload", {"from": "9999-12-31"}),
    ("/reports/whatif", {"from": "0001-01-01"}),
    ("/reports/whatif", {"until": "9999-12-31"}),
    ("/reports/whatif", {"policy": "ordinance-extension", "extended_to": "9999-12-31"}),
]
"""Queries with a day or time outside 1900-2199, one per parameter that takes one."""


def test_a_day_or_time_outside_1900_to_2199_in_a_query_is_a_422(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    """Every date and time a query takes is a lawful one (``LawfulDate``,
    ``LawfulTime``): converting it to UTC or to a day's end cannot overflow into a 500.
    One client for all of them (an app per request would make this the slowest test)."""
    case_id = service.open_case(
        office_id=settings.default_office_id, master_data=PERSON, by="sb-01"
    ).case_id
    wrong: list[str] = []
    for path, params in OUT_OF_RANGE:
        response = client.get(
            path.format(case_id=case_id), params=params, headers=_every_role(settings)
        )
        fields = (
            [error["field"] for error in response.json().get("errors", [])]
            if response.headers["Content-Type"].startswith("application/problem+json")
            else []
        )
        if response.status_code != 422 or not any(
            name in field for field in fields for name in params
        ):
            wrong.append(f"{path} {params}: {response.status_code} {fields}")
    assert wrong == []
