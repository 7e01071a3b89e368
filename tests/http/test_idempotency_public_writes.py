"""The public writes after a lost answer (issue 20, point 1): a commitment declaration,
a contact form, a booking and an erasure request whose commit went through while the
answer was lost (``503 outcome-unknown``) are answered to the retry with the same key as
the first request would have been (status, ``Location``, cookie, body with the secret
reference), through the API and through the public pages' forms, and recorded once. The
secret reference kept with the key for that is sealed with the client's key.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.http.idempotency import FORM_FIELD, open_answer
from adapters.settings import Settings
from service import AkteService
from service_common import PUBLIC_APPLICANT
from service_idempotency import key_hash
from tests.conftest import FakeClock, bearer
from tests.http.pages.test_booking import PERSON as BOOKING_PERSON
from tests.http.pages.test_booking import Site, site  # noqa: F401 - the booking pages' fixture
from tests.http.pages.test_contact import FIELDS as CONTACT_PAGE_FIELDS
from tests.http.pages.test_contact import NO_FILE
from tests.http.pages.test_declaration import form as declaration_form
from tests.http.routes.test_appointments import booking
from tests.http.routes.test_contact_form import FIELDS as CONTACT_FIELDS
from tests.http.routes.test_contact_form import pdf
from tests.service.test_appointments import NEXT_MONDAY
from tests.support.appointments import RecordingMailer, local, set_up
from tests.support.declarations import submission_json
from tests.support.lost_acknowledgements import LostAcknowledgement

PROBLEMS: Final = "https://akte.example/problems/"
KEY: Final = re.compile(rf'<input type="hidden" name="{FORM_FIELD}" value="([0-9a-f]{{32}})">')


def lost_then_retried(
    service: AkteService, send: Callable[[], httpx.Response]
) -> tuple[httpx.Response, int]:
    """Sends the request while its commit's acknowledgement is lost and the store cannot
    be read, then twice more, healed. Asserts the first was answered ``outcome-unknown``,
    the two retries alike, and that nothing was recorded again; returns the first retry
    and the log's head."""
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)
    unknown = send()
    fault.heal()
    head = service.recorder.max_notification_id() or 0
    retried = send()
    again = send()

    assert fault.committed == 1
    assert unknown.status_code == 503, unknown.text
    assert retried.status_code == again.status_code
    assert retried.content == again.content
    assert retried.headers.get("Location") == again.headers.get("Location")
    assert retried.headers.get("set-cookie") == again.headers.get("set-cookie")
    assert service.recorder.max_notification_id() == head  # nothing recorded again
    return retried, head


def kept_with_the_key(service: AkteService, by: str, key: str) -> bytes:
    """What the key's row holds of the outcome, as stored."""
    outcomes = service.writes.outcomes
    assert outcomes is not None
    record = outcomes.find_key(key_hash(by, key), datetime.min.replace(tzinfo=UTC))
    assert record is not None
    assert record.outcome is not None
    return record.outcome


def assert_sealed(stored: bytes, key: str, secret: str) -> None:
    assert secret.encode() not in stored
    opened = open_answer(key, stored)
    assert opened is not None
    assert secret.encode() in opened  # the client's key, and only it, opens it
    assert open_answer(key + "-other", stored) is None


# ------------------------------------------------------------------------ the API


def test_a_declaration_whose_answer_was_lost_gives_its_reference_to_the_retry(
    client: TestClient, service: AkteService, clock: FakeClock
) -> None:
    body = submission_json(clock.now.date())
    headers = {"Idempotency-Key": "declare-1"}

    retried, head = lost_then_retried(
        service, lambda: client.post("/commitment-declarations", json=body, headers=headers)
    )

    assert retried.status_code == 201, retried.text
    assert int(retried.headers["X-Akte-Position"]) == head
    reference = retried.json()["reference"]
    own = client.get("/commitment-declarations/own", headers={"X-Declaration-Reference": reference})
    assert own.status_code == 200, own.text
    assert_sealed(kept_with_the_key(service, PUBLIC_APPLICANT, "declare-1"), "declare-1", reference)


def test_a_contact_form_whose_answer_was_lost_gives_its_receipt_to_the_retry(
    client: TestClient, service: AkteService
) -> None:
    headers = {"Idempotency-Key": "contact-1"}

    retried, head = lost_then_retried(
        service,
        lambda: client.post("/contact-form", data=CONTACT_FIELDS, files=[pdf()], headers=headers),
    )

    assert retried.status_code == 201, retried.text
    assert int(retried.headers["X-Akte-Position"]) == head
    receipt = retried.json()["receipt"]
    submission = service.intake.get_submission(service.intake.find_submission_by_receipt(receipt))
    assert [f["page_count"] for f in retried.json()["files"]] == [2]
    assert len(submission.files) == 1
    assert_sealed(kept_with_the_key(service, PUBLIC_APPLICANT, "contact-1"), "contact-1", receipt)


def test_a_booking_whose_answer_was_lost_gives_its_reference_to_the_retry(
    client: TestClient, service: AkteService
) -> None:
    set_up(service, RecordingMailer())
    body = booking(client, local(NEXT_MONDAY, 9).isoformat())
    headers = {"Idempotency-Key": "book-1"}

    retried, head = lost_then_retried(
        service, lambda: client.post("/appointments/bookings", json=body, headers=headers)
    )

    assert retried.status_code == 201, retried.text
    assert int(retried.headers["X-Akte-Position"]) == head
    reference = retried.json()["reference"]
    assert retried.json()["status"] == "held"
    own = client.get("/appointments/bookings/own", headers={"X-Booking-Reference": reference})
    assert own.status_code == 200, own.text
    assert_sealed(kept_with_the_key(service, "public", "book-1"), "book-1", reference)


def test_an_erasure_request_whose_answer_was_lost_is_answered_to_the_retry(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    opened = client.post(
        "/cases",
        json={
            "surname": "Beispiel",
            "given_names": "Amal",
            "date_of_birth": "1991-02-03",
            "nationality": "SYR",
            "passport_number": "N12345678",
        },
        headers=bearer(settings, "sb-01", Role.CASEWORKER),
    )
    assert opened.status_code == 201, opened.text
    path = f"/cases/{opened.json()['case_id']}/erasure-requests"
    headers = {**lead, "Idempotency-Key": "erase-1"}

    retried, head = lost_then_retried(
        service, lambda: client.post(path, json={"legal_ground": "dsgvo-17"}, headers=headers)
    )

    assert retried.status_code == 201, retried.text
    assert retried.headers["Location"].endswith(path)
    assert int(retried.headers["X-Akte-Position"]) == head
    assert (retried.json()["number"], retried.json()["status"]) == (1, "pending")
    assert [r["number"] for r in client.get(path, headers=lead).json()["items"]] == [1]


# ------------------------------------------------------------- the public pages


def form_key(page: str) -> str:
    found = KEY.search(page)
    assert found is not None, "the form carries no idempotency key"
    return found.group(1)


def test_a_declaration_form_whose_answer_was_lost_leads_the_retry_to_its_page(
    client: TestClient, service: AkteService
) -> None:
    sent = {FORM_FIELD: form_key(client.get("/declaration").text), **declaration_form()}

    def send() -> httpx.Response:
        client.cookies.clear()
        return client.post("/declaration", data=sent, follow_redirects=False)

    retried, _head = lost_then_retried(service, send)

    assert retried.status_code == 303, retried.text
    # The status page named by the declaration's secret reference, and its cookie.
    assert "set-cookie" in retried.headers
    status = client.get(retried.headers["Location"])
    assert status.status_code == 200


def test_a_contact_form_page_whose_answer_was_lost_leads_the_retry_to_its_receipt(
    client: TestClient, service: AkteService
) -> None:
    sent: dict[str, Any] = {FORM_FIELD: form_key(client.get("/contact").text)}
    sent |= CONTACT_PAGE_FIELDS

    retried, _head = lost_then_retried(
        service,
        lambda: client.post("/contact", data=sent, files=NO_FILE, follow_redirects=False),
    )

    assert retried.status_code == 303, retried.text
    receipt = client.get(retried.headers["Location"])
    assert receipt.status_code == 200


def test_a_booking_form_whose_answer_was_lost_leads_the_retry_to_its_status_page(
    site: Site,  # noqa: F811 - the fixture imported above
) -> None:
    form = site.solved(site.details_form()) | BOOKING_PERSON
    assert next(iter(form)) == FORM_FIELD  # the page's key, as the browser sends it

    retried, _head = lost_then_retried(
        site.service,
        lambda: site.http.post("/booking/details?lang=tr", data=form, follow_redirects=False),
    )

    assert retried.status_code == 303, retried.text
    location = urlsplit(retried.headers["Location"])
    assert parse_qs(location.query) == {"lang": ["tr"]}
    view = site.service.appointments.booking_status(location.path.rsplit("/", 1)[1])
    assert view.status == "held"
    assert view.appointment is not None
    assert view.appointment.person.surname == BOOKING_PERSON["surname"]
