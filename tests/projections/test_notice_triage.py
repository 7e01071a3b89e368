"""The worklist "notice triage" (projections/worklists/notice_triage.py) and its route
``GET /worklists/notice-triage``: a notice no file could be matched to for certain is
listed with its reasons and candidates, without names, until a caseworker resolves it."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import FakeClock, bearer
from tests.service.test_notices import notice

OFFICE = "abh-musterstadt"
PERSON = MasterData("Yılmaz", "Ayşe Nur", date(1991, 7, 14), "TUR", "U12345678")


def test_a_notice_in_triage_is_listed_until_it_is_resolved(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    uncertain = service.notices.receive_notice(notice(person=PERSON, given_names="Ayse"))
    clock.advance(minutes=1)  # oldest first
    unknown = service.notices.receive_notice(notice(person=replace(PERSON, surname="Fremd")))
    recorded = service.notices.receive_notice(notice(person=PERSON))
    assert (uncertain.outcome, unknown.outcome, recorded.outcome) == (
        "triage",
        "triage",
        "recorded",
    )
    headers = bearer(settings, "sb-01", Role.CASEWORKER, office=OFFICE)
    response = client.get(
        "/worklists/notice-triage", params={"min_position": recorded.position}, headers=headers
    )
    assert response.status_code == 200, response.text
    items = response.json()["items"]
    assert [item["notice_id"] for item in items] == [
        str(uncertain.subject_id),
        str(unknown.subject_id),
    ]
    assert items[0]["reasons"] == ["given-names-differ"]
    assert items[0]["candidate_case_ids"] == [str(case_id)]
    assert items[0]["notice_kind"] == "aenderung_hauptwohnung"
    assert items[1]["reasons"] == ["unknown-person"]
    for value in ("Yılmaz", "Fremd", "Ayse", "Neue Straße", "1991-07-14"):
        assert value not in response.text
    position = service.notices.resolve_notice(
        uncertain.subject_id, by="sb-01", resolution="recorded_on_case_file", case_id=case_id
    )
    response = client.get(
        "/worklists/notice-triage", params={"min_position": position}, headers=headers
    )
    assert [item["notice_id"] for item in response.json()["items"]] == [str(unknown.subject_id)]
