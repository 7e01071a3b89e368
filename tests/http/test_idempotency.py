"""``Idempotency-Key`` over HTTP: a retry with the key hears the first answer and records
nothing, the key with another request is refused, and a write whose acknowledgement was
lost is answered truthfully (with or without a key), never as a stale version.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.http.idempotency import open_answer, open_stored_answer, parse_key
from adapters.settings import Settings
from domain.case_file import CaseFile
from service import AkteService
from service_idempotency import key_hash
from tests.conftest import FakeClock, bearer
from tests.support.lost_acknowledgements import LostAcknowledgement

PROBLEMS: Final = "https://akte.example/problems/"
PERSON: Final = {
    "surname": "Beispiel",
    "given_names": "Amal",
    "date_of_birth": "1991-02-03",
    "nationality": "SYR",
    "passport_number": "N12345678",
}
REPLAYED: Final = ("ETag", "Location", "X-Akte-Position", "Content-Type")


@pytest.fixture
def staff(settings: Settings) -> dict[str, str]:
    return bearer(settings, "sb-01", Role.CASEWORKER)


def open_case(client: TestClient, staff: dict[str, str]) -> tuple[str, str]:
    opened = client.post("/cases", json=PERSON, headers=staff)
    assert opened.status_code == 201, opened.text
    return opened.json()["case_id"], opened.headers["ETag"]


def note(
    client: TestClient, staff: dict[str, str], case: tuple[str, str], text: str, key: str | None
) -> Any:
    headers = {**staff, "If-Match": case[1]}
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"/cases/{case[0]}/notes", json={"text": text}, headers=headers)


def notes(service: AkteService, case_id: str) -> list[str]:
    return [e.text for e in service.case_events(UUID(case_id)) if isinstance(e, CaseFile.NoteAdded)]


def same_answer(first: Any, again: Any) -> None:
    assert again.status_code == first.status_code
    assert again.content == first.content
    for name in REPLAYED:
        assert again.headers.get(name) == first.headers.get(name), name


def test_the_same_key_and_request_hear_the_first_answer_and_record_once(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    case = open_case(client, staff)

    first = note(client, staff, case, "called back", "note-7f3a")
    head = service.recorder.max_notification_id()
    again = note(client, staff, case, "called back", "note-7f3a")

    assert first.status_code == 201
    same_answer(first, again)
    assert service.recorder.max_notification_id() == head
    assert notes(service, case[0]) == ["called back"]


def test_the_same_key_with_another_request_is_refused(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    case = open_case(client, staff)
    first = note(client, staff, case, "called back", "note-7f3a")

    other = note(client, staff, (case[0], first.headers["ETag"]), "other", "note-7f3a")

    assert other.status_code == 422
    assert other.json()["type"] == PROBLEMS + "idempotency-key-reused"
    assert notes(service, case[0]) == ["called back"]


def test_keys_belong_to_the_acting_user(
    client: TestClient, service: AkteService, settings: Settings, staff: dict[str, str]
) -> None:
    headers = {"Idempotency-Key": "open-1"}
    mine = client.post("/cases", json=PERSON, headers={**staff, **headers})
    colleague = bearer(settings, "sb-02", Role.CASEWORKER)
    theirs = client.post("/cases", json=PERSON, headers={**colleague, **headers})

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["case_id"] != theirs.json()["case_id"]


@pytest.mark.parametrize("key", ["", "a" * 256, "tab\tkey", "umlaut-ä"])
def test_a_malformed_key_is_refused_and_nothing_recorded(
    client: TestClient, service: AkteService, staff: dict[str, str], key: str
) -> None:
    head = service.recorder.max_notification_id()
    sent = [(name.encode(), value.encode()) for name, value in staff.items()]
    answer = client.post("/cases", json=PERSON, headers=[*sent, (b"Idempotency-Key", key.encode())])

    assert answer.status_code == 400
    assert answer.json()["type"] == PROBLEMS + "malformed-idempotency-key"
    assert service.recorder.max_notification_id() == head


def test_key_syntax() -> None:
    assert parse_key('"8e03978e-40d5-43e8-bc93-6894a57f9324"') == (
        "8e03978e-40d5-43e8-bc93-6894a57f9324"
    )
    assert parse_key("x" * 255) == "x" * 255
    assert parse_key("two words") is None


def test_a_lost_acknowledgement_is_answered_as_the_success_it_was(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    case = open_case(client, staff)
    fault = LostAcknowledgement(service)

    fault.arm()
    with_key = note(client, staff, case, "with key", "note-1")
    fault.arm()
    without_key = note(client, staff, (case[0], with_key.headers["ETag"]), "no key", None)
    retried = note(client, staff, case, "with key", "note-1")

    assert fault.committed == 2
    assert (with_key.status_code, without_key.status_code) == (201, 201)
    assert without_key.headers["ETag"] == f'"{int(case[1].strip(chr(34))) + 2}"'
    same_answer(with_key, retried)
    assert notes(service, case[0]) == ["with key", "no key"]


def test_an_outcome_the_store_cannot_tell_is_503_and_the_retry_with_the_key_finds_it(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    case = open_case(client, staff)
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)

    unknown = note(client, staff, case, "called back", "note-1")
    fault.heal()
    retried = note(client, staff, case, "called back", "note-1")
    again = note(client, staff, case, "called back", "note-1")

    assert unknown.status_code == 503
    assert unknown.json()["type"] == PROBLEMS + "outcome-unknown"
    assert int(unknown.headers["Retry-After"]) > 0
    # The answer the first request would have given: its status, Location, ETag, position.
    version = int(case[1].strip('"')) + 1
    assert retried.status_code == 201, retried.text
    assert retried.headers["ETag"] == f'"{version}"'
    assert retried.headers["Location"].endswith(f"/cases/{case[0]}/notes/1")
    assert int(retried.headers["X-Akte-Position"]) == service.recorder.max_notification_id()
    assert retried.json() == {"case_id": case[0], "version": version, "number": 1}
    same_answer(retried, again)
    assert notes(service, case[0]) == ["called back"]
    assert client.get(retried.headers["Location"], headers=staff).json()["text"] == "called back"


def test_a_case_opened_whose_answer_was_lost_is_found_by_the_retry(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)
    headers = {**staff, "Idempotency-Key": "open-5d1e"}

    unknown = client.post("/cases", json=PERSON, headers=headers)
    fault.heal()
    head = service.recorder.max_notification_id()
    retried = client.post("/cases", json=PERSON, headers=headers)

    assert unknown.status_code == 503
    assert unknown.json()["type"] == PROBLEMS + "outcome-unknown"
    assert retried.status_code == 201, retried.text
    assert service.recorder.max_notification_id() == head  # nothing recorded again
    opened = retried.json()
    assert retried.headers["Location"].endswith(f"/cases/{opened['case_id']}")
    assert retried.headers["ETag"] == '"1"'
    assert int(retried.headers["X-Akte-Position"]) == head
    case = client.get(retried.headers["Location"], headers=staff)
    assert case.status_code == 200
    assert case.json()["reference"] == opened["reference"]
    assert case.json()["master_data"]["surname"] == PERSON["surname"]


@pytest.mark.parametrize(
    ("path", "body", "route"),
    [
        ("procedures", {"channel": "mail", "topic": "blue_card"}, "procedures"),
        ("inquiries", {"kind": "civil_registry"}, "inquiries"),
    ],
)
def test_a_numbered_part_created_by_a_lost_write_is_named_by_the_retry(
    client: TestClient,
    service: AkteService,
    staff: dict[str, str],
    path: str,
    body: dict[str, str],
    route: str,
) -> None:
    case = open_case(client, staff)
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)
    headers = {**staff, "If-Match": case[1], "Idempotency-Key": f"{path}-1"}

    unknown = client.post(f"/cases/{case[0]}/{path}", json=body, headers=headers)
    fault.heal()
    retried = client.post(f"/cases/{case[0]}/{path}", json=body, headers=headers)

    assert unknown.status_code == 503, unknown.text
    assert retried.status_code == 201, retried.text
    assert retried.headers["Location"].endswith(f"/cases/{case[0]}/{route}/1")
    assert retried.headers["ETag"] == f'"{int(case[1].strip(chr(34))) + 1}"'
    assert client.get(retried.headers["Location"], headers=staff).status_code == 200


def test_a_retry_without_key_of_a_write_it_cannot_tell_is_never_recorded_twice(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    case = open_case(client, staff)
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)

    unknown = note(client, staff, case, "called back", None)
    fault.heal()
    retried = note(client, staff, case, "called back", None)

    assert unknown.status_code == 503
    assert unknown.json()["type"] == PROBLEMS + "outcome-unknown"
    # Without a key the retry is a new write on the old version: refused, not recorded.
    assert retried.status_code == 412
    assert notes(service, case[0]) == ["called back"]


def test_an_expired_key_may_be_used_again(
    client: TestClient, service: AkteService, staff: dict[str, str], clock: FakeClock
) -> None:
    case = open_case(client, staff)
    first = note(client, staff, case, "called back", "note-1")
    clock.advance(hours=25)

    second = note(client, staff, (case[0], first.headers["ETag"]), "again", "note-1")

    assert second.status_code == 201
    assert notes(service, case[0]) == ["called back", "again"]


def test_a_stored_answer_is_readable_only_with_the_clients_key(
    client: TestClient, service: AkteService, staff: dict[str, str]
) -> None:
    # A public booking's or declaration's answer carries its secret reference: the table
    # must not give it to whoever reads the database.
    opened = client.post("/cases", json=PERSON, headers={**staff, "Idempotency-Key": "open-91c2"})
    assert opened.status_code == 201, opened.text
    outcomes = service.writes.outcomes
    assert outcomes is not None

    record = outcomes.find_key(key_hash("sb-01", "open-91c2"), datetime.min.replace(tzinfo=UTC))

    assert record is not None
    assert record.answer is not None
    assert opened.json()["case_id"].encode() not in record.answer.body
    assert opened.json()["reference"].encode() not in record.answer.body
    assert record.answer.headers == ()  # Location names the case: sealed with the body
    assert opened.headers["Location"].encode() not in record.answer.body
    stored = open_stored_answer("open-91c2", record.answer)
    assert stored is not None
    assert stored[1] == opened.content
    assert ("location", opened.headers["Location"]) in stored[0]
    assert open_answer("another-key", record.answer.body) is None
    again = client.post("/cases", json=PERSON, headers={**staff, "Idempotency-Key": "open-91c2"})
    same_answer(opened, again)
