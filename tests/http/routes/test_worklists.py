"""Worklists over HTTP: read-your-writes, cursor pages, office scoping; both stores."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_read_models
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock, bearer

PERSON = MasterData(
    "Beispiel", "Amal", FakeClock().now.date().replace(year=1991), "SYR", "N1234567"
)


def received_procedure(service: AkteService, office_id: str) -> tuple[UUID, int]:
    opened = service.open_case(office_id=office_id, master_data=PERSON, by="sb-01")
    received = service.receive_procedure(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        channel="contact_form",
        topic="extend_residence_permit",
        legal_basis="aufenthg-16b",
    )
    return opened.case_id, received.version


def test_an_assigned_procedure_is_in_my_list_at_once(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id, version = received_procedure(service, settings.default_office_id)
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    assigned = client.post(
        f"/cases/{case_id}/procedures/1/assignment",
        json={"assignee": "sb-02"},
        headers=lead | {"If-Match": f'"{version}"'},
    )
    assert assigned.status_code == 200, assigned.text
    position = int(assigned.headers["X-Akte-Position"])

    mine = client.get(
        "/worklists/my-open-procedures",
        params={"min_position": position},
        headers=bearer(settings, "sb-02", Role.CASEWORKER),
    )

    assert mine.status_code == 200, mine.text
    assert "X-Akte-Views-Behind" not in mine.headers
    [item] = mine.json()["items"]
    assert (item["case_id"], item["procedure_number"], item["assignee"]) == (
        str(case_id),
        1,
        "sb-02",
    )
    assert "surname" not in item
    assert "Beispiel" not in mine.text


def test_the_unassigned_queue_pages_with_a_cursor(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    expected = []
    for _ in range(5):
        case_id, _version = received_procedure(service, settings.default_office_id)
        expected.append(str(case_id))
        clock.advance(hours=1)
    position = service.recorder.max_notification_id()
    headers = bearer(settings, "sb-01", Role.CASEWORKER)

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, "min_position": position}
    while True:
        page = client.get("/worklists/unassigned-procedures", params=params, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["case_id"] for item in body["items"]]
        if body["next_cursor"] is None:
            assert "Link" not in page.headers
            break
        assert 'rel="next"' in page.headers["Link"]
        params = {"limit": 2, "cursor": body["next_cursor"]}

    assert seen == expected  # oldest first, each once


def test_another_offices_worklist_is_forbidden(client: TestClient, settings: Settings) -> None:
    headers = bearer(settings, "sb-01", Role.CASEWORKER)
    response = client.get(
        "/worklists/unassigned-procedures",
        params={"office_id": "abh-nachbarstadt"},
        headers=headers,
    )
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("application/problem+json")


def test_expiring_documents_list_what_runs_out_soon(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    opened = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="sb-01")
    today = clock.now.date()
    issued = service.issue_fiction_certificate(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        kind="81_3_1",
        valid_from=today - timedelta(days=60),
        valid_until=today + timedelta(days=10),
        carrier_sheet_number="FB0000001",
    )
    response = client.get(
        "/worklists/expiring-documents",
        params={"min_position": issued.position, "within_days": 28},
        headers=bearer(settings, "sb-01", Role.CASEWORKER),
    )
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["case_id"] == str(opened.case_id)
    assert "FB0000001" not in response.text


def test_read_models_far_behind_the_log_are_reported_not_ready(
    service: AkteService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.views.read_models

    monkeypatch.setattr(adapters.views.read_models, "READY_LAG_EVENTS", 1)
    received_procedure(service, settings.default_office_id)
    idle = build_read_models(settings, service, follow=False)
    try:
        assert "behind" in (idle.lag_problem() or "")
        with TestClient(build_app(settings, service, read_models=idle)) as client:
            response = client.get("/readyz")
        assert response.status_code == 503
        assert "read_models" in response.json()["checks"]
    finally:
        idle.close()
    following = build_read_models(settings, service, follow=True)
    try:
        assert following.wait_until(service.recorder.max_notification_id() or 0, 10)
        assert following.lag_problem() is None
    finally:
        following.close()


def test_a_paid_declaration_waits_for_handover_then_leaves_the_list(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    from tests.support.declarations import handed_over, paid

    waiting, done = paid(), handed_over()
    service.save(waiting, done)
    headers = bearer(settings, "sb-01", Role.CASEWORKER, office=waiting.office_id)
    response = client.get(
        "/worklists/commitment-declarations-awaiting-handover",
        params={"min_position": service.recorder.max_notification_id(), "office_id": None},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert [item["declaration_id"] for item in response.json()["items"]] == [str(waiting.id)]
    assert response.json()["items"][0]["ability_to_pay"] == "unchecked"


def test_an_untriaged_submission_is_listed_until_it_is_dismissed(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    from tests.service.test_intake import OFFICE, submit

    first, second = submit(service), submit(service)
    dismissed = service.intake.dismiss_submission(
        second.submission_id, expected_version=second.version, by="sb-01", reason="duplicate"
    )
    response = client.get(
        "/worklists/untriaged-submissions",
        params={"min_position": dismissed.position},
        headers=bearer(settings, "sb-01", Role.CASEWORKER, office=OFFICE),
    )
    assert response.status_code == 200, response.text
    [item] = response.json()["items"]
    assert item["submission_id"] == str(first.submission_id)
    assert item["file_count"] == 1
    assert "Bitte" not in response.text  # no message text on the list


def _cursor_values(cursor: str) -> list[Any]:
    decoded: list[Any] = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return decoded


def _cursor(content: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(content).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("index", "edited"),
    [(2, 10**30), (2, -(10**30)), (1, "\ud800"), (1, "a\x00b"), (0, "0001-01-01T00:00:00+14:00")],
)
def test_an_edited_cursor_is_refused_as_no_cursor_of_the_list(
    client: TestClient, service: AkteService, settings: Settings, index: int, edited: object
) -> None:
    """A cursor is base64 JSON a client can change: a value no page hands out (too big a
    number, a lone surrogate, NUL, a time at the edge of the calendar) is a 422."""
    for _ in range(2):
        received_procedure(service, settings.default_office_id)
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    position = service.recorder.max_notification_id()
    first = client.get(
        "/worklists/unassigned-procedures",
        params={"limit": 1, "min_position": position},
        headers=caseworker,
    ).json()
    name, values = _cursor_values(first["next_cursor"])
    values[index] = edited
    edited_page = client.get(
        "/worklists/unassigned-procedures",
        params={"limit": 1, "cursor": _cursor([name, values])},
        headers=caseworker,
    )
    assert edited_page.status_code == 422, edited_page.text
    assert "cursor" in edited_page.json()["detail"]
