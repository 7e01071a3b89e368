"""History, point in time and diff over HTTP: JSON and HTML, 404s, who sees what; both stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_read_models
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock, bearer

PROBLEMS = "https://akte.example/problems/"
PERSON = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567")


@pytest.fixture
def read_models(service: AkteService, settings: Settings) -> Iterator[ReadModels]:
    models = build_read_models(settings, service, follow=False)
    try:
        yield models
    finally:
        models.close()


def a_case(service: AkteService, clock: FakeClock, office_id: str) -> UUID:
    """Opened, a procedure received an hour later, decided with a reason an hour after."""
    opened = service.open_case(office_id=office_id, master_data=PERSON, by="sb-01")
    clock.advance(hours=1)
    received = service.receive_procedure(
        opened.case_id,
        expected_version=1,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        legal_basis="aufenthg-16b",
    )
    clock.advance(hours=1)
    service.decide_procedure(
        opened.case_id,
        expected_version=received.version,
        by="sb-02",
        procedure_number=1,
        outcome="refused",
        reason="<b>Einkommen</b> nicht gesichert",
    )
    return opened.case_id


def test_the_history_as_json_shows_personal_data_to_auditors_only(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    auditor = bearer(settings, "au-01", Role.AUDITOR, office="abh-anderswo")

    seen = client.get(f"/cases/{case_id}/history", headers=caseworker)
    audited = client.get(f"/cases/{case_id}/history", headers=auditor)

    assert seen.status_code == 200, seen.text
    assert seen.headers["content-type"].startswith("application/json")
    body = seen.json()
    assert body["version"] == 3
    assert body["personal_data_shown"] is False
    assert [e["kind"] for e in body["entries"]] == [
        "Opened",
        "ProcedureReceived",
        "ProcedureDecided",
    ]
    decided = body["entries"][2]
    assert decided["description"] == "Vorgang 1 entschieden: abgelehnt"
    assert decided["by"] == "sb-02"
    assert decided["reason"] is None
    assert decided["withheld"] == ["reason"]
    assert "Beispiel" not in seen.text
    assert body["entries"][1]["legal_basis"] == "aufenthg-16b"
    full = audited.json()
    assert full["personal_data_shown"] is True
    assert full["entries"][2]["reason"] == "<b>Einkommen</b> nicht gesichert"
    assert full["entries"][0]["data"]["surname"] == "Beispiel"


def test_the_history_filters_and_pages(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    start = clock.now
    case_id = a_case(service, clock, settings.default_office_id)
    headers = bearer(settings, "sb-01", Role.CASEWORKER)
    url = f"/cases/{case_id}/history"

    def versions(**params: str | int) -> list[int]:
        response = client.get(url, params=params, headers=headers)
        assert response.status_code == 200, response.text
        return [entry["version"] for entry in response.json()["entries"]]

    assert versions(actor="sb-02") == [3]
    assert versions(kind="ProcedureReceived") == [2]
    assert versions(**{"from": (start + timedelta(minutes=30)).isoformat()}) == [2, 3]
    assert versions(until=(start + timedelta(minutes=90)).isoformat()) == [1, 2]
    first = client.get(url, params={"limit": 2}, headers=headers)
    assert first.json()["next_after_version"] == 2
    assert 'after_version=2>; rel="next"' in first.headers["link"]
    assert versions(after_version=2) == [3]
    unknown = client.get(url, params={"kind": "Deleted"}, headers=headers)
    assert unknown.status_code == 422
    naive = client.get(url, params={"from": "2024-03-04T09:00:00"}, headers=headers)
    assert naive.status_code == 422


def test_the_history_as_a_printable_page_escapes_what_was_recorded(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)
    auditor = bearer(settings, "au-01", Role.AUDITOR)

    by_accept = client.get(
        f"/cases/{case_id}/history", headers=auditor | {"Accept": "text/html,*/*;q=0.8"}
    )
    by_format = client.get(f"/cases/{case_id}/history?format=html", headers=auditor)

    for page in (by_accept, by_format):
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "Vorgang 1 entschieden: abgelehnt" in page.text
        assert "&lt;b&gt;Einkommen&lt;/b&gt; nicht gesichert" in page.text
        assert "<b>" not in page.text
        assert "<script" not in page.text


def test_the_state_as_of_a_time_or_version(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    opened_at = clock.now
    case_id = a_case(service, clock, settings.default_office_id)
    headers = bearer(settings, "sb-01", Role.CASEWORKER)
    url = f"/cases/{case_id}"

    at_open = client.get(url, params={"as_of": opened_at.isoformat()}, headers=headers)
    later = client.get(
        url, params={"as_of": (opened_at + timedelta(minutes=90)).isoformat()}, headers=headers
    )
    second = client.get(url, params={"version": 2}, headers=headers)
    now = client.get(url, headers=headers)

    assert at_open.status_code == 200, at_open.text
    assert at_open.json()["version"] == 1
    assert at_open.json()["procedures"] == []
    assert at_open.headers["ETag"] == '"1"'
    assert later.json()["version"] == 2
    assert later.json()["procedures"][0]["status"] == "received"
    assert second.json() == later.json()
    assert now.json()["procedures"][0]["status"] == "decided"


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({"as_of": "2024-03-04T08:59:59+00:00"}, "did not exist yet at 2024-03-04T08:59:59+00:00"),
        ({"version": 0}, "has no version 0: its versions are 1 to 3"),
        ({"version": 4}, "has no version 4: its versions are 1 to 3"),
    ],
)
def test_a_point_the_file_never_had_is_404_with_a_clear_message(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    params: dict[str, str | int],
    detail: str,
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)

    response = client.get(
        f"/cases/{case_id}", params=params, headers=bearer(settings, "sb-01", Role.CASEWORKER)
    )

    assert response.status_code == 404
    problem = response.json()
    assert problem["type"] == PROBLEMS + "case-version-not-found"
    assert detail in problem["detail"]


def test_as_of_and_version_together_are_refused(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)
    response = client.get(
        f"/cases/{case_id}",
        params={"version": 1, "as_of": clock.now.isoformat()},
        headers=bearer(settings, "sb-01", Role.CASEWORKER),
    )
    assert response.status_code == 422


def test_a_diff_shows_what_changed_and_by_which_events(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    opened_at = clock.now
    case_id = a_case(service, clock, settings.default_office_id)
    headers = bearer(settings, "sb-01", Role.CASEWORKER)
    url = f"/cases/{case_id}/diff"

    last = client.get(url, headers=headers)
    by_versions = client.get(url, params={"from_version": 1, "to_version": 3}, headers=headers)
    by_times = client.get(
        url,
        params={
            "from": opened_at.isoformat(),
            "until": (opened_at + timedelta(minutes=90)).isoformat(),
        },
        headers=headers,
    )
    backwards = client.get(url, params={"from_version": 3, "to_version": 2}, headers=headers)
    before = client.get(
        url, params={"until": (opened_at - timedelta(seconds=1)).isoformat()}, headers=headers
    )

    assert last.status_code == 200, last.text
    assert (last.json()["from_version"], last.json()["to_version"]) == (2, 3)
    assert [e["kind"] for e in last.json()["events"]] == ["ProcedureDecided"]
    changes = {c["path"]: (c["before"], c["after"]) for c in last.json()["changes"]}
    assert changes["/procedures/0/status"] == ("received", "decided")
    assert changes["/procedures/0/outcome"] == (None, "refused")
    assert [e["version"] for e in by_versions.json()["events"]] == [2, 3]
    assert [e["version"] for e in by_times.json()["events"]] == [2]
    assert by_times.json()["changes"][0]["path"].startswith("/version")
    assert backwards.status_code == 422
    assert before.status_code == 404
    assert before.json()["type"] == PROBLEMS + "case-version-not-found"


def test_history_reaches_the_offices_the_role_reaches(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)
    for path in ("/history", "/diff", "?version=1"):
        url = f"/cases/{case_id}{path}"
        other = client.get(url, headers=bearer(settings, "sb-91", Role.CASEWORKER, "abh-anderswo"))
        head = client.get(url, headers=bearer(settings, "ho-01", Role.HEAD_OF_OFFICE))
        nobody = client.get(url)
        assert other.status_code == 404, url
        assert head.status_code == 403, url
        assert nobody.status_code == 401, url
