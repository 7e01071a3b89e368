"""A case file on a business date over HTTP: ``?on=`` of the state and the history,
``from_on``/``to_on`` of the diff, their problems and their documentation; both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_read_models
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock, bearer

BERLIN = ZoneInfo("Europe/Berlin")
PERSON = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567")


@pytest.fixture
def read_models(service: AkteService, settings: Settings) -> Iterator[ReadModels]:
    models = build_read_models(settings, service, follow=False)
    try:
        yield models
    finally:
        models.close()


def a_case(service: AkteService, clock: FakeClock) -> UUID:
    """Opened on 1 July 2024; a procedure received late on 2 July (Berlin: 00:30 on
    3 July) and a note dated 1 July, both recorded on 10 July."""
    clock.now = datetime(2024, 7, 1, 9, tzinfo=BERLIN)
    opened = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01")
    clock.now = datetime(2024, 7, 10, 9, tzinfo=BERLIN)
    received = service.receive_procedure(
        opened.case_id,
        expected_version=1,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        at=datetime(2024, 7, 2, 22, 30, tzinfo=ZoneInfo("UTC")),
    )
    service.add_note(
        opened.case_id,
        expected_version=received.version,
        by="sb-01",
        text="Anruf",
        at=datetime(2024, 7, 1, 16, tzinfo=BERLIN),
    )
    return opened.case_id


@pytest.fixture
def caseworker(settings: Settings) -> dict[str, str]:
    return bearer(settings, "sb-01", Role.CASEWORKER)


def test_the_state_on_a_business_date_counts_the_office_s_day(
    client: TestClient, service: AkteService, clock: FakeClock, caseworker: dict[str, str]
) -> None:
    case_id = a_case(service, clock)

    on_2 = client.get(f"/cases/{case_id}", params={"on": "2024-07-02"}, headers=caseworker)
    on_3 = client.get(f"/cases/{case_id}", params={"on": "2024-07-03"}, headers=caseworker)

    assert on_2.status_code == 200, on_2.text
    assert on_2.json()["procedures"] == []
    assert [n["number"] for n in on_2.json()["notes"]] == [1]
    assert on_2.headers["ETag"] == '"3"'  # the last event it includes: the note
    assert [p["number"] for p in on_3.json()["procedures"]] == [1]


def test_before_the_opening_is_404_and_mixed_points_are_422(
    client: TestClient, service: AkteService, clock: FakeClock, caseworker: dict[str, str]
) -> None:
    case_id = a_case(service, clock)

    before = client.get(f"/cases/{case_id}", params={"on": "2024-06-30"}, headers=caseworker)
    both = client.get(
        f"/cases/{case_id}", params={"on": "2024-07-02", "version": 1}, headers=caseworker
    )
    history_both = client.get(
        f"/cases/{case_id}/history",
        params={"on": "2024-07-02", "until": "2024-07-02T00:00:00+02:00"},
        headers=caseworker,
    )
    diff_mixed = client.get(
        f"/cases/{case_id}/diff",
        params={"to_on": "2024-07-02", "from_version": 1},
        headers=caseworker,
    )
    diff_backwards = client.get(
        f"/cases/{case_id}/diff",
        params={"from_on": "2024-07-03", "to_on": "2024-07-02"},
        headers=caseworker,
    )

    assert before.status_code == 404
    assert before.json()["type"].endswith("/case-version-not-found")
    assert "2024-06-30" in before.json()["detail"]
    for response in (both, history_both, diff_mixed, diff_backwards):
        assert response.status_code == 422, response.text
        assert response.json()["type"].endswith("/invalid-value")


def test_the_history_on_a_date_lists_what_the_state_is_made_of(
    client: TestClient, service: AkteService, clock: FakeClock, caseworker: dict[str, str]
) -> None:
    case_id = a_case(service, clock)

    history = client.get(
        f"/cases/{case_id}/history", params={"on": "2024-07-02"}, headers=caseworker
    )

    assert history.status_code == 200, history.text
    assert [(e["version"], e["kind"]) for e in history.json()["entries"]] == [
        (1, "Opened"),
        (3, "NoteAdded"),
    ]


def test_the_diff_between_business_dates(
    client: TestClient, service: AkteService, clock: FakeClock, caseworker: dict[str, str]
) -> None:
    case_id = a_case(service, clock)

    on_the_3rd = client.get(
        f"/cases/{case_id}/diff", params={"to_on": "2024-07-03"}, headers=caseworker
    )
    until_today = client.get(
        f"/cases/{case_id}/diff", params={"from_on": "2024-06-01"}, headers=caseworker
    )

    assert on_the_3rd.status_code == 200, on_the_3rd.text
    body = on_the_3rd.json()
    assert (body["from_on"], body["to_on"]) == ("2024-07-02", "2024-07-03")
    assert (body["from_version"], body["to_version"]) == (3, 3)
    assert [e["kind"] for e in body["events"]] == ["ProcedureReceived"]
    paths = {c["path"] for c in body["changes"]}
    assert "/procedures/0/status" in paths
    assert not any(p.startswith("/notes") for p in paths)
    # From before the file to the office's today (10 July): everything.
    assert until_today.status_code == 200, until_today.text
    assert until_today.json()["from_version"] == 0
    assert until_today.json()["to_on"] == "2024-07-10"
    assert [e["version"] for e in until_today.json()["events"]] == [1, 2, 3]


def test_the_openapi_document_explains_the_business_date(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    case = {p["name"]: p for p in paths["/cases/{case_id}"]["get"]["parameters"]}
    history = {p["name"]: p for p in paths["/cases/{case_id}/history"]["get"]["parameters"]}
    diff = {p["name"]: p for p in paths["/cases/{case_id}/diff"]["get"]["parameters"]}

    assert "business date" in case["on"]["description"]
    assert "time zone" in case["on"]["description"]
    assert "business date" in history["on"]["description"]
    assert {"from_on", "to_on"} <= set(diff)
    assert "Recorded time" in case["as_of"]["description"]


def test_a_date_far_back_is_answered_from_the_whole_file(
    client: TestClient, service: AkteService, clock: FakeClock, caseworker: dict[str, str]
) -> None:
    case_id = a_case(service, clock)
    clock.advance(days=400)
    version = 3
    for _ in range(60):  # beyond a snapshot interval
        version = service.add_note(case_id, expected_version=version, by="sb-01", text="x").version

    on_1_july = client.get(f"/cases/{case_id}", params={"on": "2024-07-01"}, headers=caseworker)
    today = clock.now.astimezone(BERLIN).date().isoformat()
    now = client.get(f"/cases/{case_id}", params={"on": today}, headers=caseworker)

    assert len(on_1_july.json()["notes"]) == 1
    assert len(now.json()["notes"]) == 61
    assert now.headers["ETag"] == f'"{version}"'
