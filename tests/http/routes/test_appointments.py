"""Appointments over HTTP (FastAPI's test client, SQLite and PostgreSQL): the public
booking by reference, the refusal naming the type that fits, and the counter's routes
with their permissions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any, Final

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_read_models
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from service_appointment_mails import solve_challenge
from tests.conftest import FakeClock
from tests.service.test_appointments import NEXT_MONDAY, TUESDAY
from tests.support.appointments import OFFICE, RecordingMailer, local, set_up
from tests.support.erasure_requests import erase_over_http

PROBLEMS: Final = "https://akte.example/problems/"
REF: Final = "X-Booking-Reference"


@pytest.fixture
def client(
    service: AkteService, settings: Settings, clock: FakeClock
) -> Iterator[tuple[TestClient, RecordingMailer]]:
    mailer = RecordingMailer()
    set_up(service, mailer)
    # As `akte serve` does: a runner in the process keeps the lists built.
    read_models = build_read_models(settings, service, follow=True)
    app = build_app(settings, service, read_models=read_models)
    with TestClient(app) as test_client:
        yield test_client, mailer
    read_models.close()


def bearer(settings: Settings, user: str, role: Role, office: str = OFFICE) -> dict[str, str]:
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    return {"Authorization": f"Bearer {issuer.issue(user_id=user, roles=[role], office_id=office)}"}


def booking(http: TestClient, starts: str, **overrides: Any) -> dict[str, Any]:
    challenge = http.post("/appointments/challenges").json()
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
            "given_names": "Ayşe",
            "date_of_birth": "1991-07-14",
            "email": "ayse@example.org",
        },
        "proof": {
            "challenge": challenge["challenge"],
            "nonce": solve_challenge(challenge["challenge"], challenge["bits"]),
        },
    }
    return body | overrides


def test_booking_confirming_and_following_a_booking_by_its_reference(
    client: tuple[TestClient, RecordingMailer],
) -> None:
    http, mailer = client
    points = http.get("/appointments/service-points").json()
    assert [p["code"] for p in points] == ["rathaus"]
    offer = http.get(
        "/appointments/offers",
        params={"service_point": "rathaus", "holds": "eat", "wants": "extend_residence_permit"},
    ).json()
    assert [t["code"] for t in offer["fitting_types"]] == ["extend-title"]
    starts = local(NEXT_MONDAY, 9).isoformat()
    assert any(slot["starts_at"] == starts for slot in offer["slots"]) or offer["slots"]

    booked = http.post("/appointments/bookings", json=booking(http, starts))
    assert booked.status_code == 201, booked.text
    reference = booked.json()["reference"]
    status = http.get("/appointments/bookings/own", headers={REF: reference}).json()
    assert status["status"] == "held"
    assert status["mails"] == [
        {"number": 1, "kind": "confirmation", "status": "sent", "attempts": 1}
    ]
    assert "Yılmaz" not in str(status)
    assert "ayse" not in str(status)

    wrong = http.post(
        "/appointments/bookings/own/confirmation",
        headers={REF: reference},
        json={"code": "XXXXXXXX"},
    )
    assert wrong.status_code == 422
    code = mailer.sent[0].body.split("Bestätigungscode: ")[1].split()[0]
    confirmed = http.post(
        "/appointments/bookings/own/confirmation", headers={REF: reference}, json={"code": code}
    )
    assert confirmed.json()["status"] == "confirmed"

    unknown = http.get("/appointments/bookings/own", headers={REF: "y" * 22})
    assert unknown.status_code == 404
    assert unknown.json()["type"] == PROBLEMS + "booking-not-found"


def test_a_type_that_does_not_fit_is_refused_with_the_type_that_fits_named(
    client: tuple[TestClient, RecordingMailer],
) -> None:
    http, _ = client
    body = booking(
        http,
        local(NEXT_MONDAY, 9).isoformat(),
        situation={
            "holds": "fiction_certificate",
            "holds_legal_basis": "aufenthg-81-4",
            "wants": "fiction_certificate",
        },
    )
    refused = http.post("/appointments/bookings", json=body)

    assert refused.status_code == 422
    problem = refused.json()
    assert problem["type"] == PROBLEMS + "appointment-type-does-not-fit"
    assert problem["errors"][0]["field"] == "appointment_type"
    assert "fiction-certificate" in problem["detail"]
    assert "Yılmaz" not in refused.text


def test_the_last_seat_is_refused_clearly(client: tuple[TestClient, RecordingMailer]) -> None:
    http, _ = client
    starts = local(NEXT_MONDAY, 9).isoformat()
    assert http.post("/appointments/bookings", json=booking(http, starts)).status_code == 201
    other = booking(http, starts)
    other["person"] = other["person"] | {"surname": "Andere"}
    taken = http.post("/appointments/bookings", json=other)
    assert taken.status_code == 409
    assert taken.json()["type"] == PROBLEMS + "slot-taken"
    replayed = http.post(
        "/appointments/bookings", json=other | {"starts_at": local(NEXT_MONDAY, 10).isoformat()}
    )
    assert replayed.status_code == 201  # the refused attempt did not spend its challenge


def test_the_counter_serves_and_records_attendance(
    client: tuple[TestClient, RecordingMailer],
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
) -> None:
    http, _ = client
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    booked = http.post("/appointments/bookings", json=booking(http, local(TUESDAY, 9).isoformat()))
    assert booked.status_code == 201
    case = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
        by="sb-01",
    )
    proposals = http.get(f"/cases/{case.case_id}/appointment-proposals", headers=caseworker)
    assert proposals.status_code == 200
    assert proposals.json() == []

    clock.now = local(TUESDAY, 8, 50)
    position = service.recorder.max_notification_id()
    day = http.get(
        "/appointments/day", params={"min_position": position}, headers=caseworker
    ).json()
    [line] = day["items"]
    assert line["service_point"] == "rathaus"
    assert "Yılmaz" not in str(day)  # the name only in the appointment itself
    appointment_id = line["appointment_id"]
    url = f"/appointments/{appointment_id}"
    read = http.get(url, headers=caseworker)
    assert read.json()["surname"] == "Yılmaz"
    version = read.headers["ETag"]

    stale = http.post(url + "/check-in", headers=caseworker | {"If-Match": '"1"'})
    assert stale.status_code == 412
    linked = http.post(
        url + "/case-link",
        headers=caseworker | {"If-Match": version},
        json={"case_id": str(case.case_id)},
    )
    assert linked.status_code == 200, linked.text
    checked = http.post(
        url + "/check-in", headers=caseworker | {"If-Match": linked.headers["ETag"]}
    )
    assert checked.status_code == 200
    served = http.post(
        url + "/attendance", headers=caseworker | {"If-Match": checked.headers["ETag"]}
    )
    assert served.status_code == 200
    assert service.case_events(case.case_id)[-1].outcome == "attended"  # type: ignore[attr-defined]

    other_office = bearer(settings, "sb-91", Role.CASEWORKER, "abh-nachbarstadt")
    assert http.get(url, headers=other_office).status_code == 404
    head = bearer(settings, "ho-01", Role.HEAD_OF_OFFICE)
    assert http.get(url, headers=head).status_code == 403
    assert http.post(url + "/check-in", headers={"If-Match": '"1"'}).status_code == 401


def test_only_team_leads_configure_service_points(
    client: tuple[TestClient, RecordingMailer], settings: Settings
) -> None:
    http, _ = client
    body = {
        "code": "aussenstelle",
        "name": "Außenstelle Nord",
        "counters": 2,
        "same_day_counters": 1,
        "opening_hours": ["2 08:00-12:00"],
        "types": [
            {
                "code": "eat-pickup",
                "label_de": "eAT abholen",
                "topic": "eat_pickup",
                "procedure_kind": "document_handover",
                "for_documents": ["eat"],
                "duration_minutes": 10,
            }
        ],
    }
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    assert (
        http.post("/appointments/service-points", json=body, headers=caseworker).status_code == 403
    )
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    made = http.post("/appointments/service-points", json=body, headers=lead)
    assert made.status_code == 200, made.text
    closed = http.post(
        "/appointments/service-points/aussenstelle/closed-days",
        json={"day": "2024-03-05", "reason": "Feiertag"},
        headers=lead,
    )
    assert closed.json()["closed_days"] == ["2024-03-05"]
    assert [p["code"] for p in http.get("/appointments/service-points").json()] == [
        "rathaus",
        "aussenstelle",
    ]


def test_a_counter_booking_made_with_a_case_file_is_exported_and_erased_with_it(
    client: tuple[TestClient, RecordingMailer], service: AkteService, settings: Settings
) -> None:
    http, _ = client
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    case = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Quellbrandt", "Oriel", date(1979, 11, 23), "SYR", "N7654321"),
        by="sb-01",
    )
    person = {
        "surname": "Quellbrandt",
        "given_names": "Oriel",
        "date_of_birth": "1979-11-23",
        "email": "oriel.quellbrandt@example.org",
    }
    booked = http.post(
        "/appointments/office-bookings",
        json={
            "service_point": "rathaus",
            "appointment_type": "extend-title",
            "starts_at": local(TUESDAY, 9).isoformat(),
            "situation": {
                "holds": "eat",
                "holds_legal_basis": "aufenthg-16b",
                "wants": "extend_residence_permit",
            },
            "person": person,
            "case_id": str(case.case_id),
        },
        headers=caseworker,
    )
    assert booked.status_code == 201, booked.text
    url = f"/appointments/{booked.json()['appointment_id']}"
    assert http.get(url, headers=caseworker).json()["email"] == person["email"]

    # Booked with the file's id, never linked afterwards: the export lists it all the same.
    export = http.get(f"/cases/{case.case_id}/subject-access", headers=officer)
    assert export.status_code == 200, export.text
    [listed] = export.json()["appointments"]
    assert listed["state"]["id"] == booked.json()["appointment_id"]
    assert listed["state"]["person"]["email"] == person["email"]
    page = http.get(f"/cases/{case.case_id}/subject-access?format=html", headers=officer)
    assert page.status_code == 200
    assert person["email"] in page.text

    erased = erase_over_http(http, case.case_id, requester=lead, approver=officer)
    assert erased.status_code == 200, erased.text
    assert erased.json()["keys_destroyed"] == 2  # the file's and the booking's

    after = http.get(url, headers=caseworker)
    assert after.status_code == 200, after.text
    for value in (*person.values(), "1979"):
        assert value not in after.text
    assert after.json()["date_of_birth"] == "0001-01-01"


def test_the_counter_checks_in_no_one_before_the_appointment_s_day(
    client: tuple[TestClient, RecordingMailer],
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
) -> None:
    http, _ = client
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    booked = http.post(
        "/appointments/bookings", json=booking(http, local(date(2024, 3, 28), 9).isoformat())
    )
    assert booked.status_code == 201, booked.text
    position = service.recorder.max_notification_id()
    day = http.get(
        "/appointments/day",
        params={"on": "2024-03-28", "min_position": position},
        headers=caseworker,
    ).json()
    url = f"/appointments/{day['items'][0]['appointment_id']}"
    version = http.get(url, headers=caseworker).headers["ETag"]

    for step in ("/check-in", "/no-show"):
        early = http.post(url + step, headers=caseworker | {"If-Match": version})
        assert early.status_code == 409, step
        assert early.json()["type"] == PROBLEMS + "appointment-state-conflict"
        assert "has not begun yet" in early.json()["detail"]
    assert http.get(url, headers=caseworker).json()["status"] == "held"

    clock.now = local(date(2024, 3, 28), 8, 5)  # early on the day: welcome
    checked = http.post(url + "/check-in", headers=caseworker | {"If-Match": version})
    assert checked.status_code == 200, checked.text
    served = http.post(
        url + "/attendance", headers=caseworker | {"If-Match": checked.headers["ETag"]}
    )
    assert served.status_code == 200, served.text


def test_a_day_is_closed_without_bookings_and_opened_again(
    client: tuple[TestClient, RecordingMailer], settings: Settings
) -> None:
    http, _ = client
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    days = "/appointments/service-points/rathaus/closed-days"
    booked = http.post(
        "/appointments/bookings", json=booking(http, local(NEXT_MONDAY, 9).isoformat())
    )
    assert booked.status_code == 201

    refused = http.post(
        days, json={"day": NEXT_MONDAY.isoformat(), "reason": "Betriebsausflug"}, headers=lead
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == PROBLEMS + "day-has-bookings"
    assert "1 booking" in refused.json()["detail"]
    past = http.post(days, json={"day": "2024-03-01", "reason": "x"}, headers=lead)
    assert past.status_code == 422
    assert [e["field"] for e in past.json()["errors"]] == ["day"]

    closed = http.post(days, json={"day": "2024-03-12", "reason": "Feiertag"}, headers=lead)
    assert closed.json()["closed_days"] == ["2024-03-12"]
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    assert http.delete(f"{days}/2024-03-12", headers=caseworker).status_code == 403
    reopened = http.delete(f"{days}/2024-03-12", headers=lead)
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["closed_days"] == []
    again = http.delete(f"{days}/2024-03-12", headers=lead)
    assert again.status_code == 200  # idempotent: not closed, nothing recorded
    assert http.delete(f"{days}/2024-02-30", headers=lead).status_code == 422


def test_the_office_cancels_and_mails_or_records_that_the_person_asked(
    client: tuple[TestClient, RecordingMailer], settings: Settings
) -> None:
    http, mailer = client
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)

    def office_booking(hour: int, email: str) -> tuple[str, dict[str, str]]:
        person = {"surname": "Yılmaz", "given_names": "Ayşe", "email": email}
        body = booking(
            http,
            local(TUESDAY, hour).isoformat(),
            person=person | {"date_of_birth": f"19{80 + hour}-07-14"},
        )
        del body["proof"]  # the office books without a challenge
        booked = http.post("/appointments/office-bookings", json=body, headers=caseworker)
        assert booked.status_code == 201, booked.text
        url = f"/appointments/{booked.json()['appointment_id']}/cancellation"
        return url, caseworker | {"If-Match": booked.headers["ETag"]}

    (first, first_headers), (second, second_headers) = (
        office_booking(9, "ayse@example.org"),
        office_booking(10, "o@example.org"),
    )
    already = len(mailer.sent)

    by_office = http.post(first, headers=first_headers, json={"reason": "Personalausfall"})
    assert by_office.status_code == 200, by_office.text
    [notice] = mailer.sent[already:]
    assert notice.to == "ayse@example.org"
    assert notice.subject == "Ihr Termin wurde abgesagt"
    assert "Personalausfall" not in notice.body

    unknown = http.post(second, headers=second_headers, json={"cancelled_by": "nobody"})
    assert unknown.status_code == 422
    asked = http.post(second, headers=second_headers, json={"cancelled_by": "person"})
    assert asked.status_code == 200, asked.text
    assert len(mailer.sent) == already + 1  # the person asked: no mail
