"""The read-access log at the HTTP edge (:mod:`adapters.http.read_log`): a read it cannot
record is not served; both stores."""

from __future__ import annotations

from datetime import date
from uuid import UUID

import pytest
from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from domain.case_file import MasterData
from domain.errors import InvalidValue
from domain.read_access import ReadAccess
from service import AkteService
from tests.conftest import bearer

PERSON = MasterData("Beispiel", "Amal", date(1991, 7, 14), "SYR", "N1234567")


def test_a_value_the_log_refuses_is_a_422_not_a_503_to_try_again(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value of the request the log refuses is the request's fault: retrying the same
    request cannot help, so it is no ``503`` with ``Retry-After``."""

    def refuse(*, by: str, endpoint: str, case_id: UUID | None, office_id: str | None) -> int:
        raise InvalidValue("office_id", "must not contain control characters")

    opened = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="sb-01")
    monkeypatch.setattr(service, "record_read", refuse)

    response = client.get(
        f"/cases/{opened.case_id}", headers=bearer(settings, "sb-01", Role.CASEWORKER)
    )

    assert response.status_code == 422, response.text
    assert "retry-after" not in response.headers
    problem = response.json()
    assert problem["type"].endswith("/invalid-value")
    assert [error["field"] for error in problem["errors"]] == ["office_id"]
    assert "master_data" not in problem  # the read itself is withheld


def test_an_auditors_search_by_case_file_is_logged_with_the_files_office(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    """Searched without an office, the read is still about that file: an audit of the
    file's office must find who looked into its read history."""
    opened = service.open_case(office_id=settings.default_office_id, master_data=PERSON, by="sb-01")
    before = service.recorder.max_notification_id() or 0

    response = client.get(
        "/audit/reads",
        # Once the trails have caught up with the file's opening (not served before).
        params={"case_id": str(opened.case_id), "min_position": before},
        headers=bearer(settings, "au-01", Role.AUDITOR),
    )

    assert response.status_code == 200, response.text
    [logged] = [
        event
        for notification in service.recorder.select_notifications(
            start=before + 1, limit=10, topics=[get_topic(ReadAccess.Recorded)]
        )
        for event in service.events_of(
            UUID(str(notification.originator_id)), ReadAccess.Event, KeyError()
        )
        if isinstance(event, ReadAccess.Recorded)
    ]
    assert (logged.by, logged.endpoint) == ("au-01", "GET /audit/reads")
    assert (logged.case_id, logged.office_id) == (str(opened.case_id), settings.default_office_id)
