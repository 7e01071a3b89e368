"""The read-access log: each read of a case file is recorded before it is answered, the
auditors list the log, and reading the log is logged too; both stores."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.http.read_log import is_logged
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from domain.case_file import MasterData
from domain.read_access import ReadAccess
from service import AkteService
from service_common import StoreUnavailable
from tests.conftest import FakeClock, bearer

PERSON = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567")


def reads_in_store(service: AkteService) -> list[ReadAccess.Recorded]:
    topic = f"{ReadAccess.Recorded.__module__}:{ReadAccess.Recorded.__qualname__}"
    notifications = service.recorder.select_notifications(start=1, limit=10**6, topics=[topic])
    return [
        cast(ReadAccess.Recorded, service.mapper.to_domain_event(notification))
        for notification in notifications
    ]


def test_every_read_of_a_case_file_is_recorded_with_who_when_and_where(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    opened = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="x")
    case_id = opened.case_id
    reference = opened.result
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    auditor = bearer(settings, "au-01", Role.AUDITOR)

    for path, headers in (
        (f"/cases/{case_id}", caseworker),
        (f"/cases/{case_id}?version=1", caseworker),
        (f"/cases/{case_id}/history", auditor),
        (f"/cases/{case_id}/diff", auditor),
        (f"/cases/{case_id}/events", caseworker),
        (f"/cases/by-reference/{reference}", caseworker),
    ):
        clock.advance(seconds=1)
        assert client.get(path, headers=headers).status_code == 200, path

    reads = reads_in_store(service)
    assert [(r.by, r.endpoint) for r in reads] == [
        ("sb-01", "GET /cases/{case_id}"),
        ("sb-01", "GET /cases/{case_id}"),
        ("au-01", "GET /cases/{case_id}/history"),
        ("au-01", "GET /cases/{case_id}/diff"),
        ("sb-01", "GET /cases/{case_id}/events"),
        ("sb-01", "GET /cases/by-reference/{reference:path}"),
    ]
    assert {r.case_id for r in reads} == {str(case_id)}
    assert {r.office_id for r in reads} == {settings.default_office_id}
    assert [r.at for r in reads] == [r.timestamp for r in reads]
    assert reads[0].at == clock.now - timedelta(seconds=5)
    # Reads are their own aggregates: the case file's history has not changed.
    assert service.get_case(case_id).version == 1


def test_refused_and_failed_reads_are_not_recorded(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = service.open_case(
        office_id=settings.default_office_id, master_data=PERSON, by="x"
    ).case_id

    assert client.get(f"/cases/{case_id}").status_code == 401
    head = bearer(settings, "ho-01", Role.HEAD_OF_OFFICE)
    assert client.get(f"/cases/{case_id}", headers=head).status_code == 403
    other = bearer(settings, "sb-91", Role.CASEWORKER, "abh-anderswo")
    assert client.get(f"/cases/{case_id}", headers=other).status_code == 404
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    assert client.get(f"/cases/{case_id}?version=7", headers=caseworker).status_code == 404
    assert client.get(f"/cases/{UUID(int=1)}", headers=caseworker).status_code == 404

    assert reads_in_store(service) == []


def test_a_read_that_cannot_be_recorded_is_not_served(
    client: TestClient, service: AkteService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = service.open_case(
        office_id=settings.default_office_id, master_data=PERSON, by="x"
    ).case_id

    def unavailable(**_: Any) -> int:
        msg = "the event store failed: OperationalError"
        raise StoreUnavailable(msg)

    monkeypatch.setattr(service, "record_read", unavailable)
    response = client.get(f"/cases/{case_id}", headers=bearer(settings, "sb-01", Role.CASEWORKER))

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert "Beispiel" not in response.text


def test_auditors_list_the_reads_and_reading_the_log_is_logged(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    read_models: ReadModels,
    clock: FakeClock,
) -> None:
    first = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="x")
    second = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="x")
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    client.get(f"/cases/{first.case_id}", headers=caseworker)
    clock.advance(minutes=1)
    client.get(f"/cases/{second.case_id}/history", headers=caseworker)
    clock.advance(minutes=1)
    head = service.recorder.max_notification_id()

    of_first = client.get(
        "/audit/reads",
        params={"case_id": str(first.case_id), "min_position": head},
        headers=auditor,
    )
    by_sb01 = client.get(
        "/audit/reads", params={"actor": "sb-01", "min_position": head}, headers=auditor
    )

    assert of_first.status_code == 200, of_first.text
    assert [(r["by"], r["endpoint"]) for r in of_first.json()["items"]] == [
        ("sb-01", "GET /cases/{case_id}")
    ]
    assert [r["case_id"] for r in by_sb01.json()["items"]] == [
        str(first.case_id),
        str(second.case_id),
    ]
    # Both reads of the log are in the log, naming the case file asked about, if any.
    logged = [r for r in reads_in_store(service) if r.endpoint == "GET /audit/reads"]
    assert [(r.by, r.case_id) for r in logged] == [("au-01", str(first.case_id)), ("au-01", None)]
    position = service.recorder.max_notification_id()
    log_reads = client.get(
        "/audit/reads", params={"actor": "au-01", "min_position": position}, headers=auditor
    )
    assert [r["endpoint"] for r in log_reads.json()["items"]] == ["GET /audit/reads"] * 2


def test_only_auditors_read_the_log(client: TestClient, settings: Settings) -> None:
    for role in (Role.CASEWORKER, Role.TEAM_LEAD, Role.HEAD_OF_OFFICE):
        response = client.get("/audit/reads", headers=bearer(settings, "x-01", role))
        assert response.status_code == 403, role
    assert client.get("/audit/reads").status_code == 401


def test_every_read_route_of_a_case_file_is_logged(client: TestClient) -> None:
    """A route added below /cases/{case_id} later is logged without anyone remembering to."""
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    case_reads = [
        path for path, item in paths.items() if path.startswith("/cases/") and "get" in item
    ]
    assert case_reads
    for path in case_reads:
        assert is_logged("GET", path.replace("{reference}", "{reference:path}")), path
    assert not is_logged("POST", "/cases/{case_id}/notes")
    assert not is_logged("GET", "/worklists/unassigned-procedures")
