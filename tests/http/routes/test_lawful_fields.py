"""Request fields refuse what no read model can process: ``422`` naming the field, nothing
recorded; free text keeps its line breaks. Both stores."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, Final
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.http.schemas.lawful import LawfulRequest, LawfulTime, Line, Text
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock, bearer

PERSON = MasterData("Beispiel", "Amal", FakeClock().now.date().replace(year=1991), "SYR", "N12345")


def _received_procedure(
    service: AkteService, office_id: str, *, at: datetime | None = None
) -> tuple[UUID, int]:
    """A file with a procedure, both at business time ``at`` (else now); a file opened at
    the earliest lawful time is of a person born that day."""
    person = PERSON if at is None else replace(PERSON, date_of_birth=at.date())
    opened = service.open_case(office_id=office_id, master_data=person, by="sb-01", at=at)
    received = service.receive_procedure(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        at=at,
    )
    return opened.case_id, received.version


def _refused(response: Any, field: str) -> None:
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["type"].endswith("/invalid-value")
    assert [error["field"] for error in problem["errors"]] == [field]
    assert "\x00" not in response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "t", "at": "0001-01-01T00:00:00+14:00"}, "at"),
        ({"text": "t", "at": "9999-12-31T23:59:59-14:00"}, "at"),
        ({"text": "t", "at": "2024-03-01T09:00:00+23:59"}, "at"),
        ({"text": "t\u0000"}, "text"),
        ({"text": "t\u001b[2J"}, "text"),
        ({"text": "t\u0085"}, "text"),
    ],
)
def test_a_note_with_an_unlawful_value_is_422_and_nothing_is_recorded(
    client: TestClient, service: AkteService, settings: Settings, body: dict[str, Any], field: str
) -> None:
    case_id, version = _received_procedure(service, settings.default_office_id)

    response = client.post(
        f"/cases/{case_id}/notes",
        json=body,
        headers=bearer(settings, "sb-01", Role.CASEWORKER) | {"If-Match": f'"{version}"'},
    )

    _refused(response, field)
    assert service.case_head_version(case_id) == version


@pytest.mark.parametrize("assignee", ["sb\u000001", "sb-01\n", "sb\t01", "sb\u009b01"])
def test_an_assignee_with_a_control_character_is_422_and_nothing_is_recorded(
    client: TestClient, service: AkteService, settings: Settings, assignee: str
) -> None:
    case_id, version = _received_procedure(service, settings.default_office_id)

    response = client.post(
        f"/cases/{case_id}/procedures/1/assignment",
        json={"assignee": assignee},
        headers=bearer(settings, "tl-01", Role.TEAM_LEAD) | {"If-Match": f'"{version}"'},
    )

    _refused(response, "assignee")
    assert service.case_head_version(case_id) == version


def test_a_note_keeps_its_line_breaks_and_tabs(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    earliest = datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=14)))
    case_id, version = _received_procedure(service, settings.default_office_id, at=earliest)

    response = client.post(
        f"/cases/{case_id}/notes",
        json={"text": "Rückruf:\r\n\tMontag", "at": "1900-01-01T00:00:00+14:00"},
        headers=bearer(settings, "sb-01", Role.CASEWORKER) | {"If-Match": f'"{version}"'},
    )

    assert response.status_code == 201, response.text
    assert service.get_case(case_id).notes[-1].text == "Rückruf:\r\n\tMontag"


def test_every_field_of_a_request_is_checked_even_without_the_lawful_types() -> None:
    class Probe(LawfulRequest):
        plain: str
        when: object = None

    with pytest.raises(ValidationError) as refused:
        Probe(plain="a\x00b")
    assert refused.value.errors()[0]["loc"] == ("plain",)
    assert Probe(plain="a\nb").plain == "a\nb"


def test_the_lawful_types_tell_single_lines_from_free_text_and_bound_times() -> None:
    class Probe(LawfulRequest):
        line: Line = "x"
        text: Text = "x"
        at: LawfulTime | None = None

    assert Probe(text="a\nb").text == "a\nb"
    for unlawful in ({"line": "a\nb"}, {"text": "\ud800"}, {"at": "1899-12-31T23:59:59+00:00"}):
        with pytest.raises(ValidationError):
            Probe.model_validate(unlawful)


UNLAWFUL_LINES: Final[list[tuple[str, dict[str, str], str]]] = [
    ("/audit/reads", {"office_id": "\x1b[31m"}, "office_id"),
    ("/audit/reads", {"actor": "a\x00b"}, "actor"),
    ("/audit/actions", {"actor": "a\x00b"}, "actor"),
    ("/audit/actions", {"office_id": "a\x00b"}, "office_id"),
    ("/audit/days", {"office_id": "a\x00b"}, "office_id"),
    ("/audit/verify", {"anchor": "a\x00b"}, "anchor"),
    ("/worklists/deadlines", {"office_id": "a\x00b"}, "office_id"),
    ("/worklists/unassigned-procedures", {"office_id": "a\x1bb"}, "office_id"),
    ("/worklists/unassigned-procedures", {"cursor": "a\x00b"}, "cursor"),
    ("/worklists/overdue-document-requests", {"assignee": "a\x00b"}, "assignee"),
    ("/appointments/holds", {"office_id": "a\x00b"}, "office_id"),
    ("/appointments/figures/history", {"office_id": "a\x00b"}, "office_id"),
    ("/appointments/offers", {"wants": "a\x00b"}, "wants"),
    ("/retention/due", {"office_id": "a\x00b"}, "office_id"),
    ("/erasure-requests", {"office_id": "a\x00b"}, "office_id"),
    ("/reports/workload", {"office_id": "a\x00b"}, "office_id"),
    ("/reports/yearly/2024", {"office_id": "a\x00b"}, "office_id"),
    ("/cases/{case_id}/history", {"actor": "a\x00b"}, "actor"),
    ("/cases/{case_id}/history", {"kind": "a\x00b"}, "kind"),
    ("/cases/by-reference/X-1", {"office_id": "a\x00b"}, "office_id"),
]
"""Queries with a control character in a value that must be a single line, and the field."""


def test_a_query_value_with_a_control_character_is_422_not_a_store_error(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    """Office ids, user ids, kinds and cursors in a query are single lines (``Line``):
    refused before a store sees them, never answered ``503`` "try again later". One
    client for all of them (an app per request would make this the slowest test)."""
    case_id, _ = _received_procedure(service, settings.default_office_id)
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    token = issuer.issue(user_id="x-01", roles=list(Role), office_id=settings.default_office_id)
    wrong: list[str] = []
    for path, params, field in UNLAWFUL_LINES:
        response = client.get(
            path.format(case_id=case_id),
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        )
        problem = response.json() if response.status_code == 422 else {}
        named = any(error["field"].split(".")[0] == field for error in problem.get("errors", []))
        if (
            response.status_code != 422
            or not problem.get("type", "").endswith("/invalid-value")
            or not named
            or "\x00" in response.text
            or "\x1b" in response.text
        ):
            wrong.append(f"{path} {field}: {response.status_code}")
    assert wrong == []


def test_a_refused_body_field_is_told_the_rule_it_breaks(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    """The rule comes from the domain, which names rules and bounds, never the value."""
    case_id, version = _received_procedure(service, settings.default_office_id)

    response = client.post(
        f"/cases/{case_id}/notes",
        json={"text": "Secret-Name\u0000"},
        headers=bearer(settings, "sb-01", Role.CASEWORKER) | {"If-Match": f'"{version}"'},
    )

    _refused(response, "text")
    [error] = response.json()["errors"]
    assert error["message"] == "must not contain control characters other than line breaks and tabs"
    assert "Secret-Name" not in response.text


def test_a_refused_query_date_is_told_the_bounds(client: TestClient, settings: Settings) -> None:
    response = client.get(
        "/appointments/day",
        params={"on": "1899-12-31"},
        headers=bearer(settings, "sb-01", Role.CASEWORKER),
    )

    _refused(response, "on")
    [error] = response.json()["errors"]
    assert error["message"] == "must lie between 1900-01-01 and 2199-12-31"
