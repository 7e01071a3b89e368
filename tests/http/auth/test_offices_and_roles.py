"""Access control over real HTTP: a caller's office and roles decide which case files it
reaches and what it may do there.
"""

from __future__ import annotations

from uuid import UUID

from tests.http.auth.access_policy import AUDITOR, CASEWORKER, OTHER_OFFICE, Caller
from tests.http.auth.identity_provider import MUSTERSTADT, NACHBARSTADT, ProviderKeys
from tests.http.auth.route_table import PERSON, PROBLEMS, add_note, open_case, receive_procedure
from tests.support.live_server import ServedApp


def test_a_new_case_file_is_opened_in_the_callers_office(
    served: ServedApp, keys: ProviderKeys
) -> None:
    response = served.http.post("/cases", json=PERSON, headers=OTHER_OFFICE.headers(keys))
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]

    assert served.service.get_case(UUID(case_id)).office_id == NACHBARSTADT
    elsewhere = served.http.get(f"/cases/{case_id}", headers=CASEWORKER.headers(keys))
    assert elsewhere.status_code == 404
    own = served.http.get(f"/cases/{case_id}", headers=OTHER_OFFICE.headers(keys))
    assert own.status_code == 200
    chosen = served.http.post(
        "/cases", json=PERSON | {"office_id": MUSTERSTADT}, headers=OTHER_OFFICE.headers(keys)
    )
    assert chosen.status_code == 422
    assert chosen.json()["errors"][0]["field"] == "office_id"


def test_an_auditor_reads_every_office_and_writes_nothing(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service, (add_note,), office=NACHBARSTADT)
    auditor = AUDITOR.headers(keys)

    state = served.http.get(f"/cases/{case.id}", headers=auditor)
    history = served.http.get(f"/cases/{case.id}/events", headers=auditor)
    by_reference = served.http.get(
        f"/cases/by-reference/{case.reference}",
        params={"office_id": NACHBARSTADT},
        headers=auditor,
    )
    note = served.http.post(
        f"/cases/{case.id}/notes",
        json={"text": "x"},
        headers=auditor | {"If-Match": f'"{case.version}"'},
    )

    assert (state.status_code, history.status_code, by_reference.status_code) == (200, 200, 200)
    assert [event["type"] for event in history.json()] == ["Opened", "NoteAdded"]
    assert note.status_code == 403


def test_a_file_number_of_another_office_is_not_found(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    caseworker_elsewhere = OTHER_OFFICE.headers(keys)

    implicit = served.http.get(
        f"/cases/by-reference/{case.reference}", headers=caseworker_elsewhere
    )
    explicit = served.http.get(
        f"/cases/by-reference/{case.reference}",
        params={"office_id": MUSTERSTADT},
        headers=caseworker_elsewhere,
    )
    missing = served.http.get("/cases/by-reference/AZ-NOWHERE", headers=caseworker_elsewhere)

    assert implicit.status_code == explicit.status_code == missing.status_code == 404
    assert implicit.json() == explicit.json() == missing.json()


def test_a_team_lead_of_another_office_cannot_assign_there(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service, (receive_procedure,))
    team_lead_elsewhere = Caller("tl", "tl-91", ("team_lead",), NACHBARSTADT).headers(keys)

    response = served.http.post(
        f"/cases/{case.id}/procedures/1/assignment",
        json={"assignee": "sb-91"},
        headers=team_lead_elsewhere | {"If-Match": f'"{case.version}"'},
    )

    assert response.status_code == 404
    assert served.service.get_case(case.id).version == case.version


def test_an_account_without_office_or_known_role_reaches_no_case(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    no_office = Caller("no office", "sb-00", ("caseworker",), None).headers(keys)
    unknown_roles = Caller("no role", "x-01", ("uma_authorization",), MUSTERSTADT).headers(keys)

    assert served.http.get(f"/cases/{case.id}", headers=no_office).status_code == 404
    opened = served.http.post("/cases", json=PERSON, headers=no_office)
    assert opened.status_code == 403
    assert opened.json()["type"] == PROBLEMS + "forbidden"
    assert served.http.get(f"/cases/{case.id}", headers=unknown_roles).status_code == 403
    assert served.http.get("/catalogue", headers=unknown_roles).status_code == 200
