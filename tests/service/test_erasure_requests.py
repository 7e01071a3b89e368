"""Four eyes for erasure (issue 19, point 6): one user requests an erasure with their own
token, a second user with ``personal_data.erase.approve`` approves it with theirs, and
only then is anything erased. Over HTTP and in the service, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

import adapters.cli.main as cli
from adapters.bootstrap import build_service
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from domain.case_file import MasterData
from domain.erasure import ErasureRequestDecided, ErasureRequestPending, SelfApproval
from service import AkteService
from service_common import StoreUnavailable
from tests.conftest import FakeClock, bearer

PERSON = MasterData("Quexbrandt", "Zyrafina", date(1987, 6, 5), "TUR", "Q7Z9X4W2K")
PROBLEMS = "https://akte.example/problems/"


def open_case(service: AkteService, settings: Settings) -> UUID:
    return service.open_case(
        office_id=settings.default_office_id, master_data=PERSON, by="sb-01"
    ).case_id


def events(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def request_erasure(client: TestClient, case_id: UUID, who: dict[str, str]) -> int:
    answer = client.post(
        f"/cases/{case_id}/erasure-requests", json={"legal_ground": "dsgvo-17"}, headers=who
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["number"])


# ------------------------------------------------------------------- HTTP


def test_the_erasure_happens_only_once_a_second_person_approves(
    client: TestClient, service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    case_id = open_case(service, settings)
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)
    auditor = bearer(settings, "au-01", Role.AUDITOR)

    requested = client.post(
        f"/cases/{case_id}/erasure-requests",
        json={"legal_ground": "aufenthg-91"},
        headers=lead,
    )

    assert requested.status_code == 201, requested.text
    assert int(requested.headers["X-Akte-Position"]) == events(service)
    assert requested.headers["Location"].endswith(f"/cases/{case_id}/erasure-requests")
    body = requested.json()
    assert (body["number"], body["status"], body["requested_by"]) == (1, "pending", "tl-01")
    assert body["decided_by"] is None
    # Requested, not erased: the file still reads in the clear.
    assert (
        client.get(f"/cases/{case_id}", headers=auditor).json()["master_data"]["surname"]
        == PERSON.surname
    )
    pending = client.get("/erasure-requests", headers=officer)
    assert pending.status_code == 200, pending.text
    assert [(r["case_id"], r["number"]) for r in pending.json()["items"]] == [(str(case_id), 1)]
    assert len(client.get("/erasure-requests", headers=lead).json()["items"]) == 1

    clock.advance(hours=3)
    approved = client.post(f"/cases/{case_id}/erasure-requests/1/approval", headers=officer)

    assert approved.status_code == 200, approved.text
    assert approved.json()["keys_destroyed"] == 1
    assert approved.headers["ETag"] == f'"{approved.json()["version"]}"'
    assert int(approved.headers["X-Akte-Position"]) == events(service)
    request = approved.json()["request"]
    assert (request["status"], request["requested_by"], request["decided_by"]) == (
        "approved",
        "tl-01",
        "dsb-01",
    )
    # Request and approval are events, each with its own actor.
    assert [(e["kind"], e["by"]) for e in request["history"]] == [
        ("Requested", "tl-01"),
        ("Approved", "dsb-01"),
    ]
    assert (
        client.get(f"/cases/{case_id}", headers=auditor).json()["master_data"]["surname"]
        == "[gelöscht]"
    )
    # The file's history: the erasure by the requester, approved by the approver.
    history = client.get(f"/cases/{case_id}/history", headers=auditor).json()
    erased = history["entries"][-1]
    assert (erased["kind"], erased["by"]) == ("PersonalDataErased", "tl-01")
    assert erased["description"].endswith("freigegeben von dsb-01")
    listed = client.get(f"/cases/{case_id}/erasure-requests", headers=lead).json()["items"]
    assert [(r["number"], r["status"]) for r in listed] == [(1, "approved")]
    assert client.get("/erasure-requests", headers=officer).json()["items"] == []

    # Twice: refused, nothing more recorded.
    before = events(service)
    again = client.post(f"/cases/{case_id}/erasure-requests/1/approval", headers=officer)
    assert again.status_code == 409, again.text
    assert again.json()["type"] == PROBLEMS + "erasure-request-decided"
    assert events(service) == before


def test_approving_ones_own_request_is_refused(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = open_case(service, settings)
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)
    number = request_erasure(client, case_id, officer)
    before = events(service)

    refused = client.post(f"/cases/{case_id}/erasure-requests/{number}/approval", headers=officer)

    assert refused.status_code == 409, refused.text
    assert refused.json()["type"] == PROBLEMS + "erasure-self-approval"
    assert events(service) == before
    assert not service.get_case(case_id).is_erased
    # A second data protection officer may.
    other = bearer(settings, "dsb-02", Role.DATA_PROTECTION_OFFICER)
    approved = client.post(f"/cases/{case_id}/erasure-requests/{number}/approval", headers=other)
    assert approved.status_code == 200, approved.text
    assert service.get_case(case_id).is_erased


@pytest.mark.parametrize(
    ("user", "role"),
    [
        ("tl-02", Role.TEAM_LEAD),
        ("sb-01", Role.CASEWORKER),
        ("au-01", Role.AUDITOR),
        ("ho-01", Role.HEAD_OF_OFFICE),
    ],
)
def test_only_the_approving_role_approves(
    client: TestClient, service: AkteService, settings: Settings, user: str, role: Role
) -> None:
    case_id = open_case(service, settings)
    number = request_erasure(client, case_id, bearer(settings, "tl-01", Role.TEAM_LEAD))
    before = events(service)

    refused = client.post(
        f"/cases/{case_id}/erasure-requests/{number}/approval", headers=bearer(settings, user, role)
    )

    assert refused.status_code == 403, refused.text
    assert refused.json()["type"] == PROBLEMS + "forbidden"
    assert events(service) == before
    assert not service.get_case(case_id).is_erased


def test_the_approver_is_never_a_body_field(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = open_case(service, settings)
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    before = events(service)

    named = client.post(
        f"/cases/{case_id}/erasure-requests",
        json={"legal_ground": "dsgvo-17", "approved_by": "dsb-01"},
        headers=lead,
    )
    retired = client.post(
        f"/cases/{case_id}/erasure",
        json={"legal_ground": "dsgvo-17", "approved_by": "dsb-01"},
        headers=lead | {"If-Match": '"1"'},
    )

    assert named.status_code == 422, named.text
    assert retired.status_code == 422, retired.text
    assert retired.json()["type"] == PROBLEMS + "approver-not-accepted"
    assert "/erasure-requests" in retired.json()["detail"]
    assert events(service) == before
    # The retired route without an approver makes a request, and erases nothing.
    asked = client.post(
        f"/cases/{case_id}/erasure", json={"legal_ground": "dsgvo-17"}, headers=lead
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["status"] == "pending"
    assert not service.get_case(case_id).is_erased


def test_unknown_requests_and_files_are_404(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = open_case(service, settings)
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)

    none_yet = client.post(f"/cases/{case_id}/erasure-requests/1/approval", headers=officer)
    no_file = client.post(f"/cases/{uuid4()}/erasure-requests/1/approval", headers=officer)

    assert none_yet.status_code == 404, none_yet.text
    assert none_yet.json()["type"] == PROBLEMS + "erasure-request-not-found"
    assert no_file.status_code == 404
    assert no_file.json()["type"] == PROBLEMS + "case-not-found"
    assert client.get(f"/cases/{case_id}/erasure-requests", headers=officer).json() == {"items": []}


def test_one_pending_request_per_file_and_withdrawal(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = open_case(service, settings)
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)
    first = request_erasure(client, case_id, lead)

    second = client.post(
        f"/cases/{case_id}/erasure-requests", json={"legal_ground": "dsgvo-17"}, headers=officer
    )
    assert second.status_code == 409
    assert second.json()["type"] == PROBLEMS + "erasure-request-pending"

    declined = client.post(f"/cases/{case_id}/erasure-requests/{first}/withdrawal", headers=officer)
    assert declined.status_code == 200, declined.text
    assert (declined.json()["status"], declined.json()["decided_by"]) == ("withdrawn", "dsb-01")
    assert int(declined.headers["X-Akte-Position"]) == events(service)
    late = client.post(f"/cases/{case_id}/erasure-requests/{first}/approval", headers=officer)
    assert late.status_code == 409
    assert late.json()["type"] == PROBLEMS + "erasure-request-decided"
    assert not service.get_case(case_id).is_erased

    assert request_erasure(client, case_id, lead) == 2
    listed = client.get(f"/cases/{case_id}/erasure-requests", headers=lead).json()["items"]
    assert [(r["number"], r["status"]) for r in listed] == [(1, "withdrawn"), (2, "pending")]


def test_other_offices_see_no_requests(
    client: TestClient, service: AkteService, settings: Settings
) -> None:
    case_id = open_case(service, settings)
    request_erasure(client, case_id, bearer(settings, "tl-01", Role.TEAM_LEAD))
    elsewhere = bearer(settings, "tl-91", Role.TEAM_LEAD, office="abh-anderswo")

    assert client.get("/erasure-requests", headers=elsewhere).json()["items"] == []
    hidden = client.get(f"/cases/{case_id}/erasure-requests", headers=elsewhere)
    assert hidden.status_code == 404
    assert (
        client.get(
            "/erasure-requests", params={"office_id": settings.default_office_id}, headers=elsewhere
        ).status_code
        == 403
    )


# ---------------------------------------------------------------- service


def test_the_service_refuses_self_approval_and_a_second_pending_request(
    service: AkteService, settings: Settings
) -> None:
    case_id = open_case(service, settings)
    requests = service.erasure_requests
    requested = requests.request(case_id, by="tl-01", legal_ground="dsgvo-17")

    with pytest.raises(SelfApproval):
        requests.approve(case_id, requested.request.number, by="tl-01")
    with pytest.raises(ErasureRequestPending):
        requests.request(case_id, by="dsb-01", legal_ground="aufenthv-68")

    assert [r.status for r in requests.requests_of(case_id)] == ["pending"]
    assert not service.get_case(case_id).is_erased


def test_an_interrupted_approval_is_completed_by_approving_again(
    service: AkteService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = open_case(service, settings)
    requests = service.erasure_requests
    number = requests.request(case_id, by="tl-01", legal_ground="dsgvo-17").request.number

    def store_fails(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("the store failed")

    with monkeypatch.context() as patched:
        patched.setattr(service.data_protection, "erase_personal_data", store_fails)
        with pytest.raises(StoreUnavailable):
            requests.approve(case_id, number, by="dsb-01")
    assert requests.get(case_id, number).status == "approved"
    assert not service.get_case(case_id).is_erased

    approval = requests.approve(case_id, number, by="dsb-01")

    assert service.get_case(case_id).is_erased
    assert approval.erasure.result.keys_destroyed == [str(case_id)]
    erased = service.case_events(case_id)[-1]
    assert (erased.by, erased.approved_by) == ("tl-01", "dsb-01")  # type: ignore[attr-defined]
    with pytest.raises(ErasureRequestDecided):
        requests.approve(case_id, number, by="dsb-03")


def test_a_request_for_an_erased_file_is_refused(service: AkteService, settings: Settings) -> None:
    from domain.errors import CaseFileErased
    from tests.support.erasure_requests import erase_with_four_eyes

    case_id = open_case(service, settings)
    erase_with_four_eyes(service, case_id)

    with pytest.raises(CaseFileErased):
        service.erasure_requests.request(case_id, by="tl-01", legal_ground="dsgvo-17")


# -------------------------------------------------------------------- CLI


def test_the_command_line_takes_each_persons_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_JSON_LOGS", "false")
    settings = Settings()
    service = build_service(settings)
    try:
        case_id = open_case(service, settings)
    finally:
        service.close()
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    tokens: dict[str, Path] = {}
    for user in ("dsb-01", "dsb-02"):
        tokens[user] = tmp_path / f"{user}.token"
        tokens[user].write_text(
            issuer.issue(
                user_id=user,
                roles=[Role.DATA_PROTECTION_OFFICER],
                office_id=settings.default_office_id,
            )
        )
    forged = tmp_path / "forged.token"
    forged.write_text(  # signed with a key the deployment does not know
        LocalIssuer.load_or_create(tmp_path / "other-key.pem").issue(
            user_id="dsb-02",
            roles=[Role.DATA_PROTECTION_OFFICER],
            office_id=settings.default_office_id,
        )
    )
    capsys.readouterr()
    approve = ["erase", "approve", str(case_id), "1", "--yes", "--token-file"]

    request = ["erase", "request", str(case_id), "--legal-ground", "dsgvo-17", "--token-file"]
    assert cli.main([*request, str(tokens["dsb-01"])]) == 0
    assert cli.main([*approve, str(tokens["dsb-01"])]) == 1
    assert "another person than its requester" in capsys.readouterr().err
    assert cli.main([*approve, str(forged)]) == 2
    assert "the access token is refused" in capsys.readouterr().err
    assert cli.main(["erase", "approve", str(case_id), "1", "--yes"]) == 2
    assert "--token-file" in capsys.readouterr().err
    unknown = ["erase", "approve", str(case_id), "2", "--yes"]
    assert cli.main([*unknown, "--token-file", str(tokens["dsb-02"])]) == 1
    assert "no erasure request 2" in capsys.readouterr().err

    assert cli.main([*approve, str(tokens["dsb-02"])]) == 0
    assert "requested by dsb-01, approved by dsb-02" in capsys.readouterr().out
