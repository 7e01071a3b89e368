"""The appointment lists and figures over HTTP, and booking on behalf of a person
(FastAPI's test client, SQLite and PostgreSQL, a runner following the log)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, Final

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_read_models
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock
from tests.http.routes.test_appointments import bearer
from tests.service.test_appointments import NEXT_MONDAY, TUESDAY
from tests.support.appointments import OFFICE, RecordingMailer, local, set_up

PROBLEMS: Final = "https://akte.example/problems/"


@pytest.fixture
def http(service: AkteService, settings: Settings, clock: FakeClock) -> Iterator[TestClient]:
    set_up(service, RecordingMailer())
    read_models = build_read_models(settings, service, follow=True)
    app = build_app(settings, service, read_models=read_models)
    with TestClient(app) as test_client:
        yield test_client
    read_models.close()


def office_booking(starts: str, n: int = 0, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "service_point": "rathaus",
        "appointment_type": "extend-title",
        "starts_at": starts,
        "situation": {
            "holds": "eat",
            "holds_legal_basis": "aufenthg-16b",
            "wants": "extend_residence_permit",
        },
        "person": {
            "surname": "Yılmaz",
            "given_names": f"Ayşe {n}",
            "date_of_birth": "1991-07-14",
            "email": "ayse@example.org",
        },
    }
    return body | overrides


def test_a_caseworker_books_for_a_person_and_sees_it_in_the_lists(
    http: TestClient, service: AkteService, settings: Settings
) -> None:
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    case = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Yılmaz", "Ayşe", date(1991, 7, 14), "TUR", "U1234567"),
        by="sb-01",
    )
    booked = http.post(
        "/appointments/office-bookings",
        json=office_booking(local(TUESDAY, 9).isoformat(), case_id=str(case.case_id)),
        headers=caseworker,
    )
    assert booked.status_code == 201, booked.text
    body = booked.json()
    assert body["status"] == "held"
    assert len(body["reference"]) >= 16
    assert booked.headers["ETag"] == f'"{body["version"]}"'
    position = booked.headers["X-Akte-Position"]
    own = http.get("/appointments/bookings/own", headers={"X-Booking-Reference": body["reference"]})
    assert own.json()["status"] == "held"

    day = http.get(
        "/appointments/day",
        params={"day": TUESDAY.isoformat(), "min_position": position},
        headers=caseworker,
    )
    assert day.status_code == 200, day.text
    assert "X-Akte-Views-Behind" not in day.headers
    [line] = day.json()["items"]
    assert (line["appointment_id"], line["version"]) == (body["appointment_id"], body["version"])
    assert (line["origin"], line["case_id"]) == ("office", str(case.case_id))
    assert "Yılmaz" not in day.text
    holds = http.get("/appointments/holds", params={"min_position": position}, headers=caseworker)
    [hold] = holds.json()["items"]
    assert (hold["mail_status"], hold["reminder_sent"]) == ("sent", False)
    assert hold["service_point"] == "rathaus"
    assert "Yılmaz" not in holds.text
    sent = http.get("/appointments/holds", params={"mail_status": "bounced"}, headers=caseworker)
    assert sent.json()["items"] == []


def test_an_office_booking_is_refused_clearly_and_records_nothing(
    http: TestClient, service: AkteService, settings: Settings
) -> None:
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    elsewhere = service.open_case(
        office_id="abh-nachbarstadt",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
        by="sb-91",
    )
    before = service.recorder.max_notification_id()
    starts = local(NEXT_MONDAY, 9).isoformat()
    foreign = http.post(
        "/appointments/office-bookings",
        json=office_booking(starts, case_id=str(elsewhere.case_id)),
        headers=caseworker,
    )
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "case_id"
    unknown = http.post(
        "/appointments/office-bookings",
        json=office_booking(starts, service_point="nirgendwo"),
        headers=caseworker,
    )
    assert unknown.status_code == 404
    assert unknown.json()["type"] == PROBLEMS + "service-point-not-found"
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    refused = http.post(
        "/appointments/office-bookings", json=office_booking(starts), headers=auditor
    )
    assert refused.status_code == 403
    assert service.recorder.max_notification_id() == before


def test_figures_now_and_day_by_day_for_the_office_and_for_auditors(
    http: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    clock.now = local(date(2024, 3, 4), 7, 30)
    service.appointments.run_appointment_tick()
    clock.now = local(TUESDAY, 7, 30)
    service.appointments.run_appointment_tick()
    position = service.recorder.max_notification_id()

    now = http.get("/appointments/figures", params={"min_position": position}, headers=lead)
    assert now.status_code == 200, now.text
    figures = {f["appointment_type"]: f for f in now.json()["figures"]}
    assert set(figures) == {"eat-pickup", "extend-title", "fiction-certificate"}
    assert figures["extend-title"]["waiting"] == 0
    assert figures["extend-title"]["booked_out_days"] == 0
    assert figures["extend-title"]["booked_out_weeks"] == 0

    history = http.get(
        "/appointments/figures/history",
        params={"type": "extend-title", "from": "2024-03-04", "until": "2024-03-05", "limit": 1},
        headers=lead,
    )
    assert history.status_code == 200, history.text
    [first] = history.json()["items"]
    assert (first["day"], first["booked_out_days"]) == ("2024-03-04", 0)
    assert history.json()["next_cursor"] is not None
    assert 'rel="next"' in history.headers["Link"]
    rest = http.get(
        "/appointments/figures/history",
        params={"type": "extend-title", "cursor": history.json()["next_cursor"], "limit": 1},
        headers=lead,
    )
    assert [item["day"] for item in rest.json()["items"]] == ["2024-03-05"]
    backwards = http.get(
        "/appointments/figures/history",
        params={"from": "2024-03-05", "until": "2024-03-04"},
        headers=lead,
    )
    assert backwards.status_code == 422

    auditor = bearer(settings, "au-01", Role.AUDITOR, "abh-landesamt")
    audited = http.get(
        "/appointments/figures/history", params={"office_id": OFFICE}, headers=auditor
    )
    assert len(audited.json()["items"]) == 6
    other = bearer(settings, "sb-91", Role.CASEWORKER, "abh-nachbarstadt")
    assert http.get("/appointments/figures/history", headers=other).json()["items"] == []
    reached = http.get("/appointments/figures/history", params={"office_id": OFFICE}, headers=other)
    assert reached.status_code == 403
    head = bearer(settings, "ho-01", Role.HEAD_OF_OFFICE)
    assert http.get("/appointments/figures", headers=head).status_code == 403
    missing = http.get("/appointments/figures", params={"service_point": "nord"}, headers=lead)
    assert missing.status_code == 404
