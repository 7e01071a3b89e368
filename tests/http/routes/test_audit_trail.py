"""The audit trail read models: actions by actor in a time range and per office day; both
stores, through HTTP (the read models follow the log in-process)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_read_models
from adapters.http import read_model_routes
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from domain.case_file import MasterData
from projections.audit.audit_actions import office_day
from service import AkteService
from tests.conftest import FakeClock, bearer
from tests.support.projections import engine_for, views_for

PERSON = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567")
ELSEWHERE = "abh-anderswo"


def two_days_of_work(service: AkteService, clock: FakeClock, office_id: str) -> None:
    """Day 1 (2024-03-04): sb-01 opens two files, sb-02 adds a note. Day 2: sb-01 receives
    a procedure, back-dated to day 1; a file is opened in another office by sb-91."""
    one = service.open_case(office_id=office_id, master_data=PERSON, by="sb-01")
    clock.advance(minutes=10)
    two = service.open_case(office_id=office_id, master_data=PERSON, by="sb-01")
    clock.advance(minutes=10)
    service.add_note(two.case_id, expected_version=1, by="sb-02", text="Rückruf")
    back_then = clock.now
    clock.advance(days=1)
    service.receive_procedure(
        one.case_id,
        expected_version=1,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        at=back_then,
    )
    service.open_case(office_id=ELSEWHERE, master_data=PERSON, by="sb-91")


def caught_up(service: AkteService, read_models: ReadModels) -> dict[str, Any]:
    return {"min_position": service.recorder.max_notification_id()}


def test_everything_a_user_did_in_a_time_range(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    read_models: ReadModels,
) -> None:
    day_one = clock.now
    two_days_of_work(service, clock, settings.default_office_id)
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    whole = {"from": day_one.isoformat(), "until": (clock.now + timedelta(hours=1)).isoformat()}

    by_sb01 = client.get(
        "/audit/actions",
        params={**whole, "actor": "sb-01", **caught_up(service, read_models)},
        headers=auditor,
    )
    first_day = client.get(
        "/audit/actions",
        params={
            "from": day_one.isoformat(),
            "until": (day_one + timedelta(days=1)).isoformat(),
            "actor": "sb-01",
        },
        headers=auditor,
    )
    other_office = client.get(
        "/audit/actions", params={**whole, "office_id": ELSEWHERE}, headers=auditor
    )
    paged = client.get("/audit/actions", params={**whole, "limit": 2}, headers=auditor)

    assert by_sb01.status_code == 200, by_sb01.text
    items = by_sb01.json()["items"]
    assert [(i["kind"], i["version"]) for i in items] == [
        ("Opened", 1),
        ("Opened", 1),
        ("ProcedureReceived", 2),
    ]
    assert {i["by"] for i in items} == {"sb-01"}
    assert items[0]["reference"]
    # Recorded on day 2, though back-dated to day 1: the trail goes by recorded time.
    assert items[2]["at"] < items[2]["recorded_at"]
    assert [i["kind"] for i in first_day.json()["items"]] == ["Opened", "Opened"]
    assert [(i["by"], i["office_id"]) for i in other_office.json()["items"]] == [
        ("sb-91", ELSEWHERE)
    ]
    pages = [paged.json()]
    while pages[-1]["next_cursor"]:
        params = {**whole, "limit": 2, "cursor": pages[-1]["next_cursor"]}
        pages.append(client.get("/audit/actions", params=params, headers=auditor).json())
    assert [len(page["items"]) for page in pages] == [2, 2, 1]
    listed = [(i["case_id"], i["version"]) for page in pages for i in page["items"]]
    assert len(set(listed)) == 5


def test_actions_per_office_day_and_kind(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    read_models: ReadModels,
) -> None:
    day_one = office_day(clock.now)
    two_days_of_work(service, clock, settings.default_office_id)
    auditor = bearer(settings, "au-01", Role.AUDITOR)

    ours = client.get(
        "/audit/days",
        params={
            "from": day_one.isoformat(),
            "until": (day_one + timedelta(days=1)).isoformat(),
            "office_id": settings.default_office_id,
            **caught_up(service, read_models),
        },
        headers=auditor,
    )
    everywhere = client.get(
        "/audit/days",
        params={"from": day_one.isoformat(), "until": (day_one + timedelta(days=1)).isoformat()},
        headers=auditor,
    )
    by_default = client.get("/audit/days", headers=auditor)

    assert ours.status_code == 200, ours.text
    day_two = (day_one + timedelta(days=1)).isoformat()
    assert [(d["day"], d["kind"], d["actions"]) for d in ours.json()["days"]] == [
        (day_one.isoformat(), "NoteAdded", 1),
        (day_one.isoformat(), "Opened", 2),
        (day_two, "ProcedureReceived", 1),
    ]
    assert ours.json()["total"] == 4
    assert everywhere.json()["total"] == 5
    assert by_default.json()["total"] == 5  # the last 30 days up to the clock's today
    too_long = client.get(
        "/audit/days", params={"from": "2023-01-01", "until": "2024-03-04"}, headers=auditor
    )
    assert too_long.status_code == 422


def test_only_auditors_read_the_trails(client: TestClient, settings: Settings) -> None:
    for path in ("/audit/actions", "/audit/days"):
        for role in (Role.CASEWORKER, Role.TEAM_LEAD, Role.HEAD_OF_OFFICE):
            assert client.get(path, headers=bearer(settings, "x-01", role)).status_code == 403
        assert client.get(path).status_code == 401


def test_the_trail_keeps_transferred_and_closed_files_and_rebuilds_the_same(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    from projections.audit import audit_actions

    case = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="sb-01")
    service.transfer_to_office(case.case_id, expected_version=1, by="sb-01", to_office_id=ELSEWHERE)
    service.add_note(case.case_id, expected_version=2, by="sb-02", text="nach Abgabe")
    with views_for(settings) as views, engine_for(service, views, [audit_actions.PROJECTION]) as e:
        e.catch_up()
        followed = e.dump()
        e.rebuild()
        rebuilt = e.dump()
    rows = followed[audit_actions.TABLE.name]
    assert [row[4] for row in rows] == ["Opened", "TransferredToOffice", "NoteAdded"]
    assert rebuilt == followed


def test_a_trail_still_behind_the_callers_write_says_so(
    service: AkteService, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    office = settings.default_office_id
    first = service.open_case(office_id=office, master_data=PERSON, by="sb-01").position
    followed = build_read_models(settings, service, follow=True)
    try:
        assert followed.wait_until(first, 30)
    finally:
        followed.close()  # the trails stay where they are: nothing follows the log now
    later = service.open_case(office_id=office, master_data=PERSON, by="sb-01").position
    monkeypatch.setattr(read_model_routes, "MAX_WAIT_SECONDS", 0.05)
    standing = build_read_models(settings, service, follow=False)
    try:
        with TestClient(build_app(settings, service, read_models=standing)) as client:
            auditor = bearer(settings, "au-01", Role.AUDITOR)
            for path in ("/audit/actions", "/audit/days", "/audit/reads"):
                behind = client.get(path, params={"min_position": later}, headers=auditor)
                assert behind.status_code == 200, behind.text
                assert behind.headers.get("X-Akte-Views-Behind") == "true", path
                current = client.get(path, params={"min_position": first}, headers=auditor)
                assert "X-Akte-Views-Behind" not in current.headers, path
    finally:
        standing.close()
