"""One notice in triage over HTTP (adapters/http/routes/registration_notices.py): a
caseworker opens it from the worklist (the read is logged), records it on the right case
file or dismisses it, as the token's subject; other roles and other offices are refused
as for case files, and a refusal records nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from uuid import UUID, uuid4

from eventsourcing.utils import get_topic
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from domain.case_file import MasterData
from domain.read_access import ReadAccess
from domain.registration_notices import RegistrationNotice
from service import AkteService
from tests.conftest import bearer
from tests.service.test_notices import notice

OFFICE = "abh-musterstadt"
OTHER_OFFICE = "abh-nachbarstadt"
PERSON = MasterData("Yılmaz", "Ayşe Nur", date(1991, 7, 14), "TUR", "U12345678")


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def reads(service: AkteService) -> list[ReadAccess.Recorded]:
    found = service.recorder.select_notifications(
        start=1, limit=1000, topics=[get_topic(ReadAccess.Recorded)]
    )
    return [
        event
        for notification in found
        for event in service.events_of(
            UUID(str(notification.originator_id)), ReadAccess.Event, KeyError()
        )
        if isinstance(event, ReadAccess.Recorded)
    ]


def resolvers(service: AkteService, notice_id: UUID) -> list[str]:
    events = service.events_of(notice_id, RegistrationNotice.Event, KeyError())
    return [event.by for event in events if isinstance(event, RegistrationNotice.Resolved)]


def test_a_caseworker_reads_a_notice_and_records_it_on_a_case_file(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    uncertain = service.notices.receive_notice(notice(person=PERSON, given_names="Ayse"))
    headers = bearer(settings, "sb-02", Role.CASEWORKER, office=OFFICE)

    response = client.get(f"/registration-notices/{uncertain.subject_id}", headers=headers)

    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["person"]["given_names"] == "Ayse"
    assert shown["person"]["date_of_birth"] == "1991-07-14"
    assert shown["changes"]["address"] == "Neue Straße 5, 12345 Musterstadt"
    assert shown["reasons"] == ["given-names-differ"]
    assert shown["candidate_case_ids"] == [str(case_id)]
    assert shown["resolution"] is None
    assert response.headers["Cache-Control"] == "no-store"
    logged = reads(service)
    # The log names the notice read (its random id), not only the route.
    assert [(r.by, r.endpoint, r.case_id, r.office_id) for r in logged] == [
        ("sb-02", f"GET /registration-notices/{uncertain.subject_id}", None, OFFICE)
    ]

    # A "by" in the body is not who decides: the body refuses unknown fields.
    refused = client.post(
        f"/registration-notices/{uncertain.subject_id}/resolution",
        json={"resolution": "recorded_on_case_file", "case_id": str(case_id), "by": "sb-99"},
        headers=headers,
    )
    assert refused.status_code == 422, refused.text
    response = client.post(
        f"/registration-notices/{uncertain.subject_id}/resolution",
        json={"resolution": "recorded_on_case_file", "case_id": str(case_id)},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["case_id"] == str(case_id)
    assert int(response.headers["X-Akte-Position"]) == head(service)
    assert resolvers(service, uncertain.subject_id) == ["sb-02"]
    assert service.get_case(case_id).master_data.address == "Neue Straße 5, 12345 Musterstadt"
    # Read again once resolved: the log also names the case file it was recorded on.
    assert client.get(f"/registration-notices/{uncertain.subject_id}", headers=headers).is_success
    assert [(r.endpoint, r.case_id) for r in reads(service)][1:] == [
        (f"GET /registration-notices/{uncertain.subject_id}", str(case_id))
    ]
    # Once: a notice that left triage is not resolved again.
    before = head(service)
    again = client.post(
        f"/registration-notices/{uncertain.subject_id}/resolution",
        json={"resolution": "dismissed"},
        headers=headers,
    )
    assert again.status_code == 409, again.text
    assert again.json()["type"].endswith("/notice-already-resolved")
    assert head(service) == before


def test_a_notice_is_dismissed_and_the_rules_of_the_domain_apply(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    unknown = service.notices.receive_notice(notice(person=replace(PERSON, surname="Fremd")))
    url = f"/registration-notices/{unknown.subject_id}/resolution"
    headers = bearer(settings, "tl-01", Role.TEAM_LEAD, office=OFFICE)
    before = head(service)
    # Recording needs a case file, and only recording takes one.
    missing = client.post(url, json={"resolution": "recorded_on_case_file"}, headers=headers)
    assert missing.status_code == 422, missing.text
    stranger = client.post(
        url,
        json={"resolution": "recorded_on_case_file", "case_id": str(uuid4())},
        headers=headers,
    )
    assert stranger.status_code == 404, stranger.text
    # Another office's file answers as one that does not exist: nothing to learn of it.
    elsewhere = service.open_case(office_id=OTHER_OFFICE, master_data=PERSON, by="sb-09")
    before = head(service)
    theirs = client.post(
        url,
        json={"resolution": "recorded_on_case_file", "case_id": str(elsewhere.case_id)},
        headers=headers,
    )
    assert theirs.status_code == 404, theirs.text
    assert theirs.json()["type"] == stranger.json()["type"]
    assert theirs.json()["detail"] == f"case file {elsewhere.case_id} does not exist"
    assert head(service) == before
    response = client.post(url, json={"resolution": "dismissed"}, headers=headers)
    assert response.status_code == 200, response.text
    assert service.notices.get_notice(unknown.subject_id).resolution == "dismissed"
    assert resolvers(service, unknown.subject_id) == ["tl-01"]


def test_other_roles_and_offices_are_refused_and_nothing_is_recorded(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    triaged = service.notices.receive_notice(notice(person=replace(PERSON, surname="Fremd")))
    url = f"/registration-notices/{triaged.subject_id}"
    resolution = {"resolution": "dismissed"}
    before = head(service)

    assert client.get(url).status_code == 401
    assert client.post(url + "/resolution", json=resolution).status_code == 401
    head_of_office = bearer(settings, "ho-01", Role.HEAD_OF_OFFICE, office=OFFICE)
    assert client.get(url, headers=head_of_office).status_code == 403
    auditor = bearer(settings, "au-01", Role.AUDITOR, office=OFFICE)
    assert client.post(url + "/resolution", json=resolution, headers=auditor).status_code == 403
    # Another office's caseworker hears what they would for a notice that does not exist.
    other = bearer(settings, "sb-91", Role.CASEWORKER, office=OTHER_OFFICE)
    hidden = client.get(url, headers=other)
    missing = client.get(f"/registration-notices/{uuid4()}", headers=other)
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["type"] == missing.json()["type"]
    assert hidden.json()["type"].endswith("/notice-not-found")
    refused = client.post(url + "/resolution", json=resolution, headers=other)
    assert refused.status_code == 404, refused.text
    assert head(service) == before
    # The auditor, who reaches every office, reads it (and the read is logged).
    assert client.get(url, headers=auditor).status_code == 200
    assert [r.by for r in reads(service)] == ["au-01"]
