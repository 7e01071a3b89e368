"""The HTTP interface, end to end through FastAPI's test client, on SQLite and PostgreSQL.

Requests carry bearer tokens of the local issuer (the default ``auth_mode``); access
control itself, over real HTTP and with an identity provider's keys, is tested in
``tests/http/auth/``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from domain.case_reference import CaseReference
from service import AkteService
from service_common import StoreUnavailable
from tests.conftest import FakeClock

USER = "tl-17"
"""A team lead: the one role that may record every action, assignments included."""
PROBLEMS = "https://akte.example/problems/"
PERSON: dict[str, Any] = {
    "surname": "Yılmaz",
    "given_names": "Ayşe Nur",
    "date_of_birth": "1991-07-14",
    "nationality": "TUR",
    "passport_number": "U12345678",
    "address": "Hauptstraße 5, 12345 Musterstadt",
}
EAT: dict[str, Any] = {
    "kind": "eat",
    "legal_basis": "aufenthg-16b",
    "valid_from": "2024-03-04",
    "valid_until": "2026-03-03",
    "document_number": "Y0000AB12",
}
FICTION: dict[str, Any] = {
    "kind": "81_3_1",  # no application on file: § 81 (4) would need one (and its basis)
    "valid_from": "2024-03-04",
    "valid_until": "2024-06-03",
    "carrier_sheet_number": "F1234567",
}
DOCUMENT: dict[str, Any] = {
    "kind": "passport-copy",
    "sha256": "ab" * 32,
    "size_bytes": 2048,
    "media_type": "application/pdf",
    "page_count": 2,
    "source": "scan",
}


@pytest.fixture(scope="session")
def issuer_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One signing key for the whole run: generating RSA keys takes a while."""
    path = tmp_path_factory.mktemp("local-issuer") / "local-issuer.pem"
    LocalIssuer.load_or_create(path)
    return path


@pytest.fixture(scope="session")
def issuer(issuer_key_file: Path) -> LocalIssuer:
    return LocalIssuer.load_or_create(issuer_key_file)


def bearer(
    issuer: LocalIssuer,
    *,
    user: str = USER,
    roles: tuple[Role, ...] = (Role.TEAM_LEAD,),
    office: str = "abh-musterstadt",
) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.issue(user_id=user, roles=roles, office_id=office)}"}


@pytest.fixture
def client(
    service: AkteService, settings: Settings, issuer: LocalIssuer, issuer_key_file: Path
) -> Iterator[TestClient]:
    """A client that sends USER's token (a team lead of the default office, also its
    auditor, so that the events it checks show their personal fields) by default."""
    app_settings = settings.model_copy(update={"local_issuer_key_path": issuer_key_file})
    app = build_app(app_settings, service)
    headers = bearer(
        issuer, roles=(Role.TEAM_LEAD, Role.AUDITOR), office=settings.default_office_id
    )
    with TestClient(app, headers=headers) as test_client:
        yield test_client


@dataclass
class Case:
    id: str
    etag: str

    @property
    def version(self) -> int:
        return int(self.etag.strip('"'))


def open_case(client: TestClient, headers: dict[str, str] | None = None, **fields: Any) -> Case:
    response = client.post("/cases", json=PERSON | fields, headers=headers or {})
    assert response.status_code == 201, response.text
    return Case(response.json()["case_id"], response.headers["ETag"])


def write(
    client: TestClient, case: Case, path: str, body: Any = None, *, expected: int = 200
) -> httpx.Response:
    """POST with the case's ETag; checks the answer's new ETag and moves the case on."""
    response: httpx.Response = client.post(
        f"/cases/{case.id}{path}",
        json=body,
        headers={"If-Match": case.etag},
    )
    assert response.status_code == expected, response.text
    new_version = case.version + 1
    assert response.headers["ETag"] == f'"{new_version}"'
    assert response.json()["version"] == new_version
    case.etag = response.headers["ETag"]
    return response


def attempt(
    client: TestClient, case: Case, path: str, body: Any = None, **headers: str
) -> httpx.Response:
    """POST a write that is meant to fail, with the case's ETag unless told otherwise."""
    sent = {"If-Match": case.etag} | headers
    response: httpx.Response = client.post(f"/cases/{case.id}{path}", json=body, headers=sent)
    return response


def events(client: TestClient, case: Case) -> list[dict[str, Any]]:
    response = client.get(f"/cases/{case.id}/events", params={"limit": 1000})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def assert_last_events(
    client: TestClient, case: Case, types: list[str], *, at: datetime
) -> list[dict[str, Any]]:
    """The case's last events have these types, were done by USER at ``at``."""
    last = events(client, case)[-len(types) :]
    assert [event["type"] for event in last] == types
    for event in last:
        assert event["by"] == USER
        assert datetime.fromisoformat(event["at"]) == at
    assert last[-1]["version"] == case.version
    return last


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + code
    assert problem["status"] == status
    assert problem["title"]
    assert problem["detail"]
    return problem


def assert_nothing_written(client: TestClient, case: Case) -> None:
    assert len(events(client, case)) == case.version
    assert client.get(f"/cases/{case.id}").headers["ETag"] == case.etag


def created_part(
    client: TestClient, case: Case, response: httpx.Response, collection: str
) -> dict[str, Any]:
    """A 201 names the new part's number and where to read it; reading it works."""
    number = response.json()["number"]
    assert response.headers["Location"].endswith(f"/cases/{case.id}/{collection}/{number}")
    part = client.get(response.headers["Location"])
    assert part.status_code == 200, part.text
    assert part.headers["ETag"] == case.etag
    found: dict[str, Any] = part.json()
    assert found["number"] == number
    return found


# ------------------------------------------------------------------- reading


def test_opening_a_case_answers_201_with_location_and_etag(
    client: TestClient, settings: Settings, clock: FakeClock
) -> None:
    response = client.post("/cases", json=PERSON)

    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == '"1"'
    opened = response.json()
    assert opened["version"] == 1
    assert response.headers["Location"].endswith(f"/cases/{opened['case_id']}")

    case = client.get(response.headers["Location"])
    assert case.status_code == 200
    assert case.headers["ETag"] == '"1"'
    state = case.json()
    assert state["id"] == opened["case_id"]
    assert state["reference"] == opened["reference"]
    assert state["office_id"] == settings.default_office_id
    assert state["status"] == "active"
    assert state["master_data"] == PERSON
    opened_event = assert_last_events(
        client, Case(opened["case_id"], '"1"'), ["Opened"], at=clock.now
    )[0]
    assert datetime.fromisoformat(opened_event["recorded_at"]) == clock.now
    assert opened_event["data"]["passport_number"] == PERSON["passport_number"]


def test_a_case_is_found_by_its_file_number_in_its_office(
    client: TestClient, issuer: LocalIssuer
) -> None:
    nordstadt = bearer(issuer, office="abh-nordstadt")
    case = open_case(client, nordstadt, reference="ABH/2024/0001")

    found = client.get(
        "/cases/by-reference/ABH/2024/0001",
        params={"office_id": "abh-nordstadt"},
        headers=nordstadt,
    )
    elsewhere = client.get("/cases/by-reference/ABH/2024/0001")

    assert found.status_code == 200, found.text
    assert found.json()["id"] == case.id
    assert found.headers["ETag"] == case.etag
    assert found.headers["Content-Location"].endswith(f"/cases/{case.id}")
    assert_problem(elsewhere, 404, "case-not-found")


def test_events_come_in_pages_linked_by_after_version(client: TestClient) -> None:
    case = open_case(client)
    for text in ("first", "second", "third"):
        write(client, case, "/notes", {"text": text}, expected=201)

    first = client.get(f"/cases/{case.id}/events", params={"limit": 2})
    second = client.get(first.links["next"]["url"])
    last = client.get(second.links["next"]["url"])

    assert [event["version"] for event in first.json()] == [1, 2]
    assert [event["type"] for event in second.json()] == ["NoteAdded", "NoteAdded"]
    assert [event["data"]["text"] for event in second.json()] == ["second", "third"]
    assert last.status_code == 200
    assert last.json() == []
    assert "next" not in last.links


def test_the_catalogue_lists_legal_bases_and_topics(client: TestClient) -> None:
    response = client.get("/catalogue")

    assert response.status_code == 200
    catalogue = response.json()
    bases = {basis["code"]: basis for basis in catalogue["legal_bases"]}
    assert bases["aufenthg-16b"]["paragraph"] == "§ 16b Abs. 1 AufenthG"
    assert bases["aufenthg-16b"]["label_de"] == "Studium"
    assert "extend_residence_permit" in catalogue["topics"]


def test_docs_and_openapi_are_served(client: TestClient) -> None:
    docs = client.get("/docs")
    openapi = client.get("/openapi.json")

    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()
    assert openapi.status_code == 200
    document = openapi.json()
    assert "Authorization: Bearer" in document["info"]["description"]
    assert "X-Akte-User" not in openapi.text
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    decision = document["paths"]["/cases/{case_id}/procedures/{procedure_number}/decision"]
    responses = decision["post"]["responses"]
    assert set(responses) >= {"200", "401", "403", "409", "412", "422", "428"}
    assert "application/problem+json" in responses["412"]["content"]
    assert "ETag" in responses["200"]["headers"]
    assert decision["post"]["description"].startswith("Decide an open procedure")
    assert decision["post"]["security"] == [{"bearer": []}]
    assert decision["post"]["x-akte-permission"] == "case.write"
    assert "`case.write`" in decision["post"]["description"]
    headers = {p["name"]: p for p in decision["post"]["parameters"] if p["in"] == "header"}
    # If-Match makes the write conditional; Idempotency-Key makes it safe to retry.
    assert set(headers) == {"if-match", "Idempotency-Key"}
    assert headers["Idempotency-Key"]["required"] is False
    assert headers["if-match"]["required"] is True
    catalogue = document["paths"]["/catalogue"]["get"]
    assert {} in catalogue["security"]


# ------------------------------------------------------------------- writing


def test_master_data_is_corrected(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    write(
        client,
        case,
        "/master-data/corrections",
        {"passport_number": "N98765432", "reason": "new passport"},
    )

    master_data = client.get(f"/cases/{case.id}").json()["master_data"]
    assert master_data == PERSON | {"passport_number": "N98765432"}
    corrected = assert_last_events(client, case, ["MasterDataCorrected"], at=clock.now)[0]
    assert corrected["data"]["passport_number"] == "N98765432"
    assert corrected["data"]["surname"] is None


def test_a_document_is_attached(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    response = write(client, case, "/documents", DOCUMENT, expected=201)

    document = created_part(client, case, response, "documents")
    assert document["sha256"] == DOCUMENT["sha256"]
    assert document["source"] == "scan"
    assert_last_events(client, case, ["DocumentAttached"], at=clock.now)


def test_a_procedure_runs_from_receipt_to_closure(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    received = write(
        client,
        case,
        "/procedures",
        {"channel": "mail", "topic": "extend_residence_permit"},
        expected=201,
    )
    assert received.json()["number"] == 1
    write(client, case, "/procedures/1/assignment", {"assignee": "caseworker-42"})
    write(
        client,
        case,
        "/procedures/1/document-requests",
        {"what": ["proof of income"], "due_on": "2024-04-01"},
    )
    write(
        client,
        case,
        "/procedures/1/decision",
        {"outcome": "granted", "legal_basis": "aufenthg-16b"},
    )
    write(client, case, "/procedures/1/closure")

    procedure = created_part(client, case, received, "procedures")
    assert procedure["status"] == "closed"
    assert procedure["assignee"] == "caseworker-42"
    assert procedure["outcome"] == "granted"
    assert procedure["document_requests"][0]["what"] == ["proof of income"]
    assert_last_events(
        client,
        case,
        [
            "ProcedureReceived",
            "ProcedureAssigned",
            "DocumentsRequested",
            "ProcedureDecided",
            "ProcedureClosed",
        ],
        at=clock.now,
    )


def test_a_residence_document_runs_from_issue_to_end(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    issued = write(client, case, "/residence-documents", EAT, expected=201)
    write(client, case, "/residence-documents/1/extensions", {"valid_until": "2027-03-03"})
    write(client, case, "/residence-documents/1/card-order")
    write(client, case, "/residence-documents/1/card-arrival", {})
    write(client, case, "/residence-documents/1/card-handover")
    write(
        client, case, "/residence-documents/1/passport-transfer", {"new_card_number": "Y0000CD34"}
    )
    write(
        client,
        case,
        "/residence-documents/1/end",
        {"end_reason": "revoked", "reason": "§ 52 (1) Nr. 1 AufenthG"},
    )

    document = created_part(client, case, issued, "residence-documents")
    assert document["valid_until"] == "2027-03-03"
    assert document["document_number"] == "Y0000CD34"
    assert document["transfers_to_new_passport"] == 1
    assert document["ended_reason"] == "revoked"
    assert_last_events(
        client,
        case,
        [
            "ResidenceDocumentIssued",
            "ResidenceDocumentExtended",
            "EatCardOrdered",
            "EatCardArrived",
            "EatCardHandedOver",
            "EatTransferredToNewPassport",
            "ResidenceDocumentEnded",
        ],
        at=clock.now,
    )


def test_a_fiction_certificate_is_issued_extended_and_ended(
    client: TestClient, clock: FakeClock
) -> None:
    case = open_case(client)

    issued = write(client, case, "/fiction-certificates", FICTION, expected=201)
    write(client, case, "/fiction-certificates/1/extensions", {"valid_until": "2024-09-03"})
    write(client, case, "/fiction-certificates/1/end", {"end_reason": "decision"})

    certificate = created_part(client, case, issued, "fiction-certificates")
    assert certificate["valid_until"] == "2024-09-03"
    assert certificate["extensions"] == 1
    assert certificate["ended_reason"] == "decision"
    assert_last_events(
        client,
        case,
        ["FictionCertificateIssued", "FictionCertificateExtended", "FictionCertificateEnded"],
        at=clock.now,
    )


def test_integration_course_entitlement_and_obligation_are_recorded(
    client: TestClient, clock: FakeClock
) -> None:
    case = open_case(client)

    write(client, case, "/integration-course/entitlements")
    write(client, case, "/integration-course/obligations", {"legal_basis": "aufenthg-44a"})

    courses = client.get(f"/cases/{case.id}").json()["integration_courses"]
    assert [(course["kind"], course["legal_basis"]) for course in courses] == [
        ("entitlement", "aufenthg-44"),
        ("obligation", "aufenthg-44a"),
    ]
    assert_last_events(
        client,
        case,
        ["IntegrationCourseEntitlementIssued", "IntegrationCourseObligationImposed"],
        at=clock.now,
    )


def test_entry_procedures_get_consent_or_refusal(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    first = write(client, case, "/entry-procedures", expected=201)
    write(client, case, "/entry-procedures/1/consent", {"valid_until": "2024-09-01"})
    second = write(client, case, "/entry-procedures", {"legal_basis": "aufenthg-81a"}, expected=201)
    write(client, case, "/entry-procedures/2/refusal", {"reason": "requirements not met"})

    consented = created_part(client, case, first, "entry-procedures")
    refused = created_part(client, case, second, "entry-procedures")
    assert (consented["legal_basis"], consented["status"]) == ("aufenthv-31", "consent_given")
    assert consented["consent_valid_until"] == "2024-09-01"
    assert (refused["legal_basis"], refused["status"]) == ("aufenthg-81a", "consent_refused")
    assert_last_events(
        client,
        case,
        [
            "EntryProcedureRequested",
            "EntryConsentGiven",
            "EntryProcedureRequested",
            "EntryConsentRefused",
        ],
        at=clock.now,
    )


def test_an_inquiry_is_received_and_answered(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    received = write(client, case, "/inquiries", {"kind": "civil_registry"}, expected=201)
    write(client, case, "/inquiries/1/answer")

    inquiry = created_part(client, case, received, "inquiries")
    assert inquiry["kind"] == "civil_registry"
    assert datetime.fromisoformat(inquiry["answered_at"]) == clock.now
    assert_last_events(client, case, ["InquiryReceived", "InquiryAnswered"], at=clock.now)


def test_correspondence_and_notes_are_recorded(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)
    write(client, case, "/documents", DOCUMENT, expected=201)

    letter = write(
        client,
        case,
        "/correspondence",
        {
            "direction": "received",
            "counterpart_kind": "lawyer",
            "counterpart_name": "Kanzlei Beispiel",
            "subject": "Akteneinsicht",
            "attachment_numbers": [1],
        },
        expected=201,
    )
    note = write(client, case, "/notes", {"text": "called back"}, expected=201)

    assert created_part(client, case, letter, "correspondence")["attachment_numbers"] == [1]
    assert created_part(client, case, note, "notes")["by"] == USER
    assert_last_events(client, case, ["CorrespondenceRecorded", "NoteAdded"], at=clock.now)


def test_a_case_is_transferred_to_another_office(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    write(client, case, "/transfer", {"to_office_id": "abh-anderstadt", "reason": "moved"})

    state = client.get(f"/cases/{case.id}").json()
    assert (state["status"], state["transferred_to"]) == ("transferred", "abh-anderstadt")
    assert_last_events(client, case, ["TransferredToOffice"], at=clock.now)


def test_a_case_is_closed(client: TestClient, clock: FakeClock) -> None:
    case = open_case(client)

    write(client, case, "/closure", {"closure_reason": "naturalised"})

    state = client.get(f"/cases/{case.id}").json()
    assert (state["status"], state["closure_reason"]) == ("closed", "naturalised")
    assert_last_events(client, case, ["Closed"], at=clock.now)


def test_business_time_is_recorded_apart_from_recording_time(
    client: TestClient, clock: FakeClock
) -> None:
    case = open_case(client)
    clock.advance(days=1)

    write(
        client,
        case,
        "/notes",
        {"text": "handed over yesterday", "at": "2024-03-04T16:30:00+01:00"},
        expected=201,
    )

    note = events(client, case)[-1]
    assert datetime.fromisoformat(note["at"]) == datetime.fromisoformat("2024-03-04T16:30:00+01:00")
    assert datetime.fromisoformat(note["recorded_at"]) == clock.now


# -------------------------------------------------------------------- errors


def test_an_unknown_case_is_a_404_problem(client: TestClient) -> None:
    unknown = Case(str(uuid.uuid4()), '"1"')

    for response in (
        client.get(f"/cases/{unknown.id}"),
        client.get(f"/cases/{unknown.id}/events"),
        client.get(f"/cases/{unknown.id}/events", params={"after_version": 3}),
        client.get(f"/cases/{unknown.id}/notes/1"),
        attempt(client, unknown, "/notes", {"text": "hello"}),
    ):
        assert_problem(response, 404, "case-not-found")


def test_a_file_number_claim_is_no_case(client: TestClient, settings: Settings) -> None:
    open_case(client, reference="AZ-0815")
    claim_id = CaseReference.id_for(settings.default_office_id, "AZ-0815")

    assert_problem(client.get(f"/cases/{claim_id}"), 404, "case-not-found")


def test_an_unknown_part_of_a_case_is_a_404_problem(client: TestClient) -> None:
    case = open_case(client)

    response = client.get(f"/cases/{case.id}/procedures/1")

    problem = assert_problem(response, 404, "procedure-not-found")
    assert problem["detail"] == "procedure 1 does not exist on this case file"


def test_a_write_to_an_unknown_part_is_a_404_problem_and_writes_nothing(
    client: TestClient,
) -> None:
    case = open_case(client)

    response = attempt(client, case, "/procedures/99/decision", {"outcome": "withdrawn"})

    assert_problem(response, 404, "procedure-not-found")
    assert_nothing_written(client, case)


def test_unknown_routes_and_methods_are_problems(client: TestClient) -> None:
    case = open_case(client)

    assert_problem(client.get("/nowhere"), 404, "not-found")
    not_allowed = client.delete(f"/cases/{case.id}")
    assert_problem(not_allowed, 405, "method-not-allowed")
    assert not_allowed.headers["Allow"] == "GET"


def test_the_apis_errors_stay_problems_for_browsers_too(client: TestClient) -> None:
    # Only the public pages answer their errors as pages (tests/http/pages/test_errors.py).
    case = open_case(client)
    browser = {
        "accept": "text/html,*/*;q=0.8",
        "accept-language": "uk",
        "cookie": "akte_language=uk",
    }

    not_allowed = client.delete(f"/cases/{case.id}?lang=uk", headers=browser)
    unknown = client.get(f"/cases/{uuid.uuid4()}?lang=uk", headers=browser)

    assert_problem(not_allowed, 405, "method-not-allowed")
    assert not_allowed.headers["Allow"] == "GET"
    assert_problem(unknown, 404, "case-not-found")


def test_a_write_without_if_match_is_428_and_writes_nothing(client: TestClient) -> None:
    case = open_case(client)

    response = client.post(f"/cases/{case.id}/notes", json={"text": "hello"})

    assert_problem(response, 428, "if-match-required")
    assert_nothing_written(client, case)


@pytest.mark.parametrize("if_match", ["1", 'W/"1"', "*", '"1", "2"', '"one"', '"01"'])
def test_a_malformed_if_match_is_400_and_writes_nothing(client: TestClient, if_match: str) -> None:
    case = open_case(client)

    response = attempt(client, case, "/notes", {"text": "hello"}, **{"If-Match": if_match})

    assert_problem(response, 400, "malformed-if-match")
    assert_nothing_written(client, case)


def test_a_stale_if_match_is_412_and_writes_nothing(client: TestClient) -> None:
    case = open_case(client)
    stale = Case(case.id, case.etag)
    write(client, case, "/notes", {"text": "first"}, expected=201)

    response = attempt(client, stale, "/notes", {"text": "second"})

    problem = assert_problem(response, 412, "stale-version")
    assert (problem["expected_version"], problem["actual_version"]) == (1, 2)
    assert response.headers["ETag"] == case.etag
    assert_nothing_written(client, case)


def test_a_rule_violation_is_409_and_writes_nothing(client: TestClient) -> None:
    case = open_case(client)
    write(client, case, "/procedures", {"channel": "mail", "topic": "blue_card"}, expected=201)
    write(client, case, "/procedures/1/decision", {"outcome": "withdrawn"})

    response = attempt(client, case, "/procedures/1/decision", {"outcome": "granted"})

    problem = assert_problem(response, 409, "procedure-state-conflict")
    assert problem["detail"] == "procedure 1 is already decided"
    assert_nothing_written(client, case)


def test_a_taken_file_number_is_409(client: TestClient) -> None:
    open_case(client, reference="AZ-4711")

    response = client.post("/cases", json=PERSON | {"reference": "AZ-4711"})

    assert_problem(response, 409, "duplicate-reference")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        pytest.param(
            "/master-data/corrections",
            {"passport_number": "no spaces!", "reason": "typo"},
            "passport_number",
            id="passport-number-format",
        ),
        pytest.param(
            "/residence-documents",
            EAT | {"valid_from": "2024-03-04", "valid_until": "2024-03-01"},
            "valid_until",
            id="valid-until-before-valid-from",
        ),
        pytest.param(
            "/residence-documents",
            EAT | {"legal_basis": "asylg-55"},
            "legal_basis",
            id="legal-basis-unfit-for-kind",
        ),
        pytest.param("/notes", {"text": "x", "colour": "red"}, "colour", id="extra-field"),
        pytest.param(
            "/closure", {"closure_reason": "emigrated"}, "closure_reason", id="unknown-literal"
        ),
        pytest.param(
            "/fiction-certificates",
            FICTION | {"valid_from": "2024-13-01"},
            "valid_from",
            id="impossible-date",
        ),
        pytest.param(
            "/notes", {"text": "x", "at": "2024-03-04T08:00:00"}, "at", id="at-without-time-zone"
        ),
        pytest.param(
            "/notes", {"text": "x", "at": "2024-03-05T08:00:00+00:00"}, "at", id="at-in-future"
        ),
        pytest.param("/documents", DOCUMENT | {"page_count": 0}, "page_count", id="page-count"),
        pytest.param("/notes", {"text": "x" * 4001}, "text", id="text-too-long"),
        pytest.param("/notes", {}, "text", id="missing-field"),
        pytest.param("/notes", None, "body", id="missing-body"),
        pytest.param(
            "/correspondence",
            {
                "direction": "sent",
                "counterpart_kind": "court",
                "counterpart_name": "VG Musterstadt",
                "subject": "Stellungnahme",
                "attachment_numbers": [0],
            },
            "attachment_numbers.0",
            id="list-item",
        ),
    ],
)
def test_invalid_input_is_422_naming_the_field_and_writes_nothing(
    client: TestClient, path: str, body: Any, field: str
) -> None:
    case = open_case(client)

    response = attempt(client, case, path, body)

    problem = assert_problem(response, 422, "invalid-value")
    assert field in [error["field"] for error in problem["errors"]]
    assert all(error["message"] for error in problem["errors"])
    assert_nothing_written(client, case)


def test_an_invalid_new_case_is_422_and_is_not_opened(client: TestClient) -> None:
    response = client.post(
        "/cases", json=PERSON | {"reference": "AZ-0001", "passport_number": "u1234"}
    )

    problem = assert_problem(response, 422, "invalid-value")
    assert problem["errors"] == [
        {"field": "passport_number", "message": "must be 5 to 20 capital letters or digits"}
    ]
    assert_problem(client.get("/cases/by-reference/AZ-0001"), 404, "case-not-found")


@pytest.mark.parametrize("token", [None, "", "   ", "not-a-token", "user-id-too-long"])
def test_a_write_without_acting_user_is_401_and_writes_nothing(
    client: TestClient, issuer: LocalIssuer, token: str | None
) -> None:
    case = open_case(client)
    if token == "user-id-too-long":
        token = issuer.issue(user_id="u" * 101, roles=[Role.TEAM_LEAD], office_id="abh-musterstadt")
    authorization = "" if token is None else f"Bearer {token}"
    headers = {"If-Match": case.etag, "Authorization": authorization}

    note = client.post(f"/cases/{case.id}/notes", json={"text": "hello"}, headers=headers)
    new_case = client.post("/cases", json=PERSON, headers=headers)

    for response in (note, new_case):
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert_nothing_written(client, case)


SECRET_NAME = "Geheimname"
SECRET_DATE = "1985-02-30"


@pytest.mark.parametrize(
    ("body", "secrets"),
    [
        pytest.param(
            PERSON | {"surname": SECRET_NAME, "date_of_birth": SECRET_DATE},
            [SECRET_NAME, SECRET_DATE],
            id="impossible-birth-date",
        ),
        pytest.param(
            PERSON | {"surname": SECRET_NAME, "passport_number": "geheim123"},
            [SECRET_NAME, "geheim123"],
            id="passport-number-rejected-by-the-domain",
        ),
        pytest.param(
            PERSON | {"given_names": SECRET_NAME, "date_of_birth": "2031-01-01"},
            [SECRET_NAME, "2031-01-01"],
            id="birth-date-in-future",
        ),
        pytest.param(
            PERSON | {"nickname": SECRET_NAME}, [SECRET_NAME], id="unknown-field-with-name"
        ),
        pytest.param(PERSON | {"surname": SECRET_NAME * 30}, [SECRET_NAME], id="surname-too-long"),
        pytest.param(
            PERSON | {"nationality": ["Geheimland"], "surname": SECRET_NAME},
            [SECRET_NAME, "Geheimland"],
            id="wrong-type",
        ),
    ],
)
def test_error_bodies_hold_no_personal_data(
    client: TestClient, body: dict[str, Any], secrets: list[str]
) -> None:
    response = client.post("/cases", json=body)

    assert_problem(response, 422, "invalid-value")
    for secret in secrets:
        assert secret not in response.text


def test_a_broken_json_body_is_422_without_echoing_it(client: TestClient) -> None:
    response = client.post(
        "/cases",
        content=f'{{"surname": "{SECRET_NAME}", '.encode(),
        headers={"Content-Type": "application/json"},
    )

    problem = assert_problem(response, 422, "invalid-value")
    assert problem["errors"][0]["field"] == "body"
    assert SECRET_NAME not in response.text


def test_an_unexpected_error_is_a_bare_500_problem_and_logs_no_message(
    client: TestClient,
    service: AkteService,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"{SECRET_NAME} {SECRET_DATE}")

    monkeypatch.setattr(service, "get_case", fail)

    with caplog.at_level(logging.ERROR, logger="akte.http"):
        response = client.get(f"/cases/{uuid.uuid4()}")

    problem = assert_problem(response, 500, "internal-error")
    assert set(problem) == {"type", "title", "status", "detail"}
    assert SECRET_NAME not in response.text
    assert "RuntimeError" not in response.text
    assert "RuntimeError" in caplog.text
    assert "/cases/{case_id}" in caplog.text
    assert SECRET_NAME not in caplog.text


def test_an_unavailable_store_is_503(
    client: TestClient, service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("the event store failed: OperationalError")

    monkeypatch.setattr(service, "get_case", unavailable)

    response = client.get(f"/cases/{uuid.uuid4()}")

    assert_problem(response, 503, "store-unavailable")
    assert response.headers["Retry-After"].isdigit()
