"""The story of a student, told through HTTP with back-dated business times (issue 19).

A student holds an eAT for studies (§ 16b AufenthG) until 30 September 2025 and applies
for its extension in August, before it expires. The office cannot decide in time and
issues a Fiktionsbescheinigung of § 81 (4) AufenthG (the previous title continues),
extends it twice on the same carrier sheet, a third time on a new sheet, and finally
grants the title. Much of it is recorded a few days after it happened (mail opened on
Monday, a handover entered the next morning), so the business time is back-dated.

At each step the caseworker asks the worklists for a day (``?on=``), and at the end the
file is asked what it said on each date (``GET /cases/{id}?on=``), what it consisted of
(``/history?on=``) and what changed between two dates (``/diff?from_on=&to_on=``).
Both stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from tests.conftest import FakeClock, bearer

BERLIN = ZoneInfo("Europe/Berlin")


def berlin(day: date, hour: int = 10) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=BERLIN)


@dataclass
class StudentFile:
    client: TestClient
    clock: FakeClock
    headers: dict[str, str]
    case_id: str = ""
    etag: str = ""
    positions: list[int] = field(default_factory=list)

    def record(self, on: date, path: str, body: dict[str, Any], *, happened: date) -> None:
        """Recorded on ``on`` (the service's clock) what happened on ``happened``."""
        self.clock.now = berlin(on, 15)
        response = self.client.post(
            f"/cases/{self.case_id}{path}",
            json=body | {"at": berlin(happened).isoformat()},
            headers=self.headers | {"If-Match": self.etag},
        )
        assert response.status_code in (200, 201), response.text
        self.etag = response.headers["ETag"]
        self.positions.append(int(response.headers["X-Akte-Position"]))

    def state_on(self, day: date) -> dict[str, Any]:
        response = self.client.get(
            f"/cases/{self.case_id}", params={"on": day.isoformat()}, headers=self.headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def worklist(self, name: str, on: date, **params: Any) -> list[dict[str, Any]]:
        response = self.client.get(
            f"/worklists/{name}",
            params={"on": on.isoformat(), "min_position": self.positions[-1], **params},
            headers=self.headers,
        )
        assert response.status_code == 200, response.text
        return [i for i in response.json()["items"] if i["case_id"] == self.case_id]


def test_the_student_s_file_answers_for_every_date_what_a_caseworker_expects(
    client: TestClient, settings: Settings, clock: FakeClock
) -> None:
    story = StudentFile(client, clock, bearer(settings, "sb-01", Role.CASEWORKER))

    # 2023: the file is opened and the eAT for studies issued (entered the next day).
    clock.now = berlin(date(2023, 9, 26), 15)
    opened = client.post(
        "/cases",
        json={
            "surname": "Nguyen",
            "given_names": "Linh",
            "date_of_birth": "2001-04-12",
            "nationality": "VNM",
            "passport_number": "C1234567",
            "at": berlin(date(2023, 9, 25)).isoformat(),
        },
        headers=story.headers,
    )
    assert opened.status_code == 201, opened.text
    story.case_id, story.etag = opened.json()["case_id"], opened.headers["ETag"]
    story.positions.append(int(opened.headers["X-Akte-Position"]))
    story.record(
        date(2023, 10, 2),
        "/residence-documents",
        {
            "kind": "eat",
            "legal_basis": "aufenthg-16b",
            "valid_from": "2023-10-01",
            "valid_until": "2025-09-30",
            "document_number": "Y0STUDENT1",
        },
        happened=date(2023, 10, 1),
    )

    # August 2025: the eAT runs out within the worklist's window.
    [expiring] = story.worklist("expiring-documents", date(2025, 8, 18), within_days=60)
    assert (expiring["kind"], expiring["valid_until"], expiring["days_left"]) == (
        "eat",
        "2025-09-30",
        43,
    )
    # The application came by mail on Friday 15 August, entered on Monday.
    story.record(
        date(2025, 8, 18),
        "/procedures",
        {"channel": "mail", "topic": "extend_residence_permit", "legal_basis": "aufenthg-16b"},
        happened=date(2025, 8, 15),
    )

    # 29 September: no decision yet; § 81 (4): the previous title continues.
    story.record(
        date(2025, 9, 29),
        "/fiction-certificates",
        {
            "kind": "81_4",
            "valid_from": "2025-10-01",
            "valid_until": "2025-12-31",
            "carrier_sheet_number": "FB1000001",
            "procedure_number": 1,
            "order_basis": "timely_application",
            "previous_title_valid_until": "2025-09-30",
        },
        happened=date(2025, 9, 29),
    )
    assert story.worklist("deadlines", date(2025, 11, 30)) == []  # 31 Dec is 31 days off
    [due] = story.worklist("deadlines", date(2025, 12, 10))
    assert (due["rule"], due["number"], due["ends_on"], due["days_left"]) == (
        "fiction-certificate-end",
        1,
        "2025-12-31",
        21,
    )

    # First extension handed over on Friday 19 December, entered on Monday 22nd.
    story.record(
        date(2025, 12, 22),
        "/fiction-certificates/1/extensions",
        {"valid_until": "2026-03-31"},
        happened=date(2025, 12, 19),
    )
    [due] = story.worklist("deadlines", date(2026, 3, 20))
    assert (due["ends_on"], due["days_left"]) == ("2026-03-31", 11)
    # Second extension, same carrier sheet.
    story.record(
        date(2026, 3, 25),
        "/fiction-certificates/1/extensions",
        {"valid_until": "2026-06-30"},
        happened=date(2026, 3, 25),
    )
    # The third needs a new carrier sheet: without one it is refused.
    clock.now = berlin(date(2026, 6, 26), 15)
    full = client.post(
        f"/cases/{story.case_id}/fiction-certificates/1/extensions",
        json={"valid_until": "2026-09-30", "at": berlin(date(2026, 6, 24)).isoformat()},
        headers=story.headers | {"If-Match": story.etag},
    )
    assert full.status_code == 409, full.text
    assert full.json()["type"].endswith("/carrier-sheet-exhausted")
    story.record(
        date(2026, 6, 26),
        "/fiction-certificates/1/extensions",
        {"valid_until": "2026-09-30", "new_carrier_sheet_number": "FB1000002"},
        happened=date(2026, 6, 24),
    )
    [due] = story.worklist("deadlines", date(2026, 9, 5))
    assert (due["ends_on"], due["days_left"]) == ("2026-09-30", 25)

    # Granted on Friday 10 July 2026, entered on Tuesday 14th with the new eAT.
    story.record(
        date(2026, 7, 14),
        "/procedures/1/decision",
        {"outcome": "granted", "legal_basis": "aufenthg-16b"},
        happened=date(2026, 7, 10),
    )
    story.record(
        date(2026, 7, 14),
        "/residence-documents",
        {
            "kind": "eat",
            "legal_basis": "aufenthg-16b",
            "valid_from": "2026-07-10",
            "valid_until": "2028-07-09",
            "document_number": "Y0STUDENT2",
            "procedure_number": 1,
        },
        happened=date(2026, 7, 10),
    )
    # The decision ended the fiction: nothing left to watch but the new title.
    assert story.worklist("deadlines", date(2026, 9, 5)) == []
    [new_title] = story.worklist("expiring-documents", date(2028, 6, 1), within_days=60)
    assert (new_title["number"], new_title["valid_until"]) == (2, "2028-07-09")

    # ------------------------------------------------- what the file said on each date

    assert (
        client.get(f"/cases/{story.case_id}", params={"on": "2023-09-24"}, headers=story.headers)
        .json()["type"]
        .endswith("/case-version-not-found")
    )

    on_opening = story.state_on(date(2023, 9, 25))
    assert on_opening["residence_documents"] == []

    before_application = story.state_on(date(2025, 8, 14))
    [title] = before_application["residence_documents"]
    assert (title["legal_basis"], title["valid_until"]) == ("aufenthg-16b", "2025-09-30")
    assert before_application["procedures"] == []

    # Friday's application, although entered on Monday.
    on_application = story.state_on(date(2025, 8, 15))
    [procedure] = on_application["procedures"]
    assert (procedure["status"], procedure["received_at"][:10]) == ("received", "2025-08-15")

    on_issue = story.state_on(date(2025, 9, 30))
    [certificate] = on_issue["fiction_certificates"]
    assert (certificate["kind"], certificate["order_basis"]) == ("81_4", "timely_application")
    assert (certificate["valid_until"], certificate["extensions"]) == ("2025-12-31", 0)

    # On 19 December the first extension was handed over: the file says so for that day,
    # although the system only learnt of it on the 22nd.
    assert story.state_on(date(2025, 12, 18))["fiction_certificates"][0]["valid_until"] == (
        "2025-12-31"
    )
    certificate = story.state_on(date(2025, 12, 19))["fiction_certificates"][0]
    assert (certificate["valid_until"], certificate["extensions"]) == ("2026-03-31", 1)
    recorded_then = client.get(
        f"/cases/{story.case_id}",
        params={"as_of": berlin(date(2025, 12, 19), 23).isoformat()},
        headers=story.headers,
    ).json()
    assert recorded_then["fiction_certificates"][0]["valid_until"] == "2025-12-31"

    certificate = story.state_on(date(2026, 4, 1))["fiction_certificates"][0]
    assert (certificate["valid_until"], certificate["extensions"]) == ("2026-06-30", 2)
    assert certificate["carrier_sheet_number"] == "FB1000001"
    assert certificate["extensions_on_current_sheet"] == 2

    certificate = story.state_on(date(2026, 6, 30))["fiction_certificates"][0]
    assert (certificate["valid_until"], certificate["extensions"]) == ("2026-09-30", 3)
    assert (certificate["carrier_sheet_number"], certificate["extensions_on_current_sheet"]) == (
        "FB1000002",
        1,
    )

    # The day before the grant: still waiting, the fiction in force.
    before_grant = story.state_on(date(2026, 7, 9))
    assert before_grant["procedures"][0]["status"] == "received"
    assert before_grant["fiction_certificates"][0]["ended_at"] is None
    assert len(before_grant["residence_documents"]) == 1

    on_grant = story.state_on(date(2026, 7, 10))
    assert (on_grant["procedures"][0]["status"], on_grant["procedures"][0]["outcome"]) == (
        "decided",
        "granted",
    )
    assert on_grant["fiction_certificates"][0]["ended_reason"] == "decision"
    assert on_grant["residence_documents"][1]["valid_until"] == "2028-07-09"

    # What the file consisted of on 30 June 2026, and what changed on 10 July.
    history = client.get(
        f"/cases/{story.case_id}/history", params={"on": "2026-06-30"}, headers=story.headers
    )
    assert history.status_code == 200, history.text
    assert [e["kind"] for e in history.json()["entries"]] == [
        "Opened",
        "ResidenceDocumentIssued",
        "ProcedureReceived",
        "FictionCertificateIssued",
        "FictionCertificateExtended",
        "FictionCertificateExtended",
        "FictionCertificateExtended",
    ]
    diff = client.get(
        f"/cases/{story.case_id}/diff",
        params={"from_on": "2026-07-09", "to_on": "2026-07-10"},
        headers=story.headers,
    )
    assert diff.status_code == 200, diff.text
    assert [e["kind"] for e in diff.json()["events"]] == [
        "ProcedureDecided",
        "FictionCertificateEnded",
        "ResidenceDocumentIssued",
    ]
    changed = {c["path"]: c["after"] for c in diff.json()["changes"]}
    assert changed["/procedures/0/outcome"] == "granted"
    assert changed["/fiction_certificates/0/ended_reason"] == "decision"
    assert changed["/residence_documents/1/valid_until"] == "2028-07-09"
