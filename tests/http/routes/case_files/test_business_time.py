"""The problems of a business time before a recorded fact or in the future (issue 19),
and § 81 (4) fields of a Fiktionsbescheinigung over HTTP."""

# ruff: noqa: F811 (the fixtures imported from tests.http.test_app are parameters here)

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from domain.acts import FUTURE_TOLERANCE
from tests.conftest import FakeClock
from tests.http.test_app import (  # noqa: F401 (fixtures)
    attempt,
    client,
    issuer,
    issuer_key_file,
    open_case,
    write,
)


def test_a_note_dated_before_the_files_opening_is_a_problem_naming_field_and_fact(
    client: TestClient, clock: FakeClock
) -> None:
    case = open_case(client)
    before = (clock.now - timedelta(days=400)).isoformat()

    response = attempt(client, case, "/notes", {"text": "x", "at": before})

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/business-time-before-fact")
    assert problem["errors"] == [
        {
            "field": "at",
            "message": "must not precede the case file's opening",
            "fact": "the case file's opening",
        }
    ]
    assert client.get(f"/cases/{case.id}").headers["ETag"] == case.etag  # nothing recorded


def test_a_business_time_beyond_the_tolerance_is_refused_within_it_taken_as_now(
    client: TestClient, clock: FakeClock
) -> None:
    case = open_case(client)
    clock.advance(hours=1)
    ahead = clock.now + FUTURE_TOLERANCE + timedelta(seconds=1)

    response = attempt(client, case, "/notes", {"text": "x", "at": ahead.isoformat()})

    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid-value")
    assert response.json()["errors"][0]["field"] == "at"
    assert response.json()["errors"][0]["fact"] == "the office's clock"
    within = (clock.now + FUTURE_TOLERANCE).isoformat()
    write(client, case, "/notes", {"text": "x", "at": within}, expected=201)
    events = client.get(f"/cases/{case.id}/events").json()
    items = events["items"] if isinstance(events, dict) else events
    assert items[-1]["at"].startswith(clock.now.isoformat()[:19])


def test_a_fiction_of_81_4_takes_its_basis_over_http(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)
    write(
        client,
        case,
        "/procedures",
        {"channel": "mail", "topic": "extend_residence_permit"},
        expected=201,
    )
    today = clock.now.date()
    late = attempt(
        client,
        case,
        "/fiction-certificates",
        {
            "kind": "81_4",
            "valid_from": today.isoformat(),
            "valid_until": (today + timedelta(days=90)).isoformat(),
            "carrier_sheet_number": "F1234567",
            "procedure_number": 1,
            "order_basis": "timely_application",
            "previous_title_valid_until": (today - timedelta(days=1)).isoformat(),
        },
    )
    assert late.status_code == 422
    assert late.json()["errors"][0]["field"] == "previous_title_valid_until"

    write(
        client,
        case,
        "/fiction-certificates",
        {
            "kind": "81_4",
            "valid_from": today.isoformat(),
            "valid_until": (today + timedelta(days=90)).isoformat(),
            "carrier_sheet_number": "F1234567",
            "procedure_number": 1,
            "order_basis": "hardship_order",
            "hardship_reason": "Antrag wegen Krankheit verspätet",
        },
        expected=201,
    )
    certificate = client.get(f"/cases/{case.id}/fiction-certificates/1").json()
    assert certificate["order_basis"] == "hardship_order"
