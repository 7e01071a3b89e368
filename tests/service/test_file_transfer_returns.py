"""A file the new office cannot take over comes back (service_file_transfers.py,
``FileTransfers.receive_return``), without a broker: two offices, each on a store of its
own (two SQLite files, or two PostgreSQL schemas), exchanging the messages' bytes.

B returns A's file (it breaks B's schema or rules) to the inbox the file names; A
records the return once, and its file is active again. A return of an answer A never
sent, or from another office than the one it went to, changes nothing."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.bootstrap import build_service
from adapters.inbox.file_transfers import TransferHandled, transfer_message_type, transfer_subject
from adapters.inbox.messages import Answer
from adapters.inbox.schemas import problems
from adapters.settings import Settings
from domain.case_file import CaseFile
from domain.file_transfers import FileRequestAnswer
from service import AkteService
from tests.conftest import FakeClock, another_deployment
from tests.support.file_transfers import (
    OFFICE_A,
    OFFICE_B,
    PERSON,
    PREFIX,
    MovedFile,
    ask_for,
    deliver,
    file_with_history,
    log_length,
)

A_INBOX = f"{PREFIX}.inbox.{OFFICE_A}.abh"


@pytest.fixture
def office_b(settings: Settings, tmp_path: Path, clock: FakeClock) -> Iterator[AkteService]:
    """The new office: a deployment of its own (never the previous office's store)."""
    with another_deployment(settings, tmp_path, "office-b") as settings_b:
        service = build_service(settings_b, clock=clock)
        try:
            yield service
        finally:
            service.close()


def sent_file(service: AkteService, office_b: AkteService) -> tuple[MovedFile, Answer, Answer]:
    """A's file sent to B: the file, B's request message and A's answer."""
    moved = file_with_history(service)
    _request, message = ask_for(office_b)
    at_a = deliver(message, service, OFFICE_A)
    assert at_a.outcome == "sent"
    assert at_a.answer is not None
    return moved, message, at_a.answer


def forged(answer: Answer) -> bytes:
    """A's file with a fact changed on the way: B's check of the proof fails."""
    body = json.loads(answer.payload())
    body["akte"]["ereignisse"][1]["fakten"]["page_count"] = 3
    return json.dumps(body).encode()


def returned_by_b(answer: bytes, office_b: AkteService) -> Answer:
    handled = deliver(answer, office_b, OFFICE_B)
    assert handled.returned is not None
    assert handled.answer is not None
    return handled.answer


def test_a_file_b_cannot_take_over_comes_back_and_is_active_again_at_a(
    service: AkteService, office_b: AkteService
) -> None:
    moved, _message, answer = sent_file(service, office_b)
    # The file names A's own inbox as its reply address, valid by its schema.
    assert answer.body["nachrichtenkopf"]["antwortAn"] == A_INBOX
    assert problems(answer.body, "ABH.Aktenuebersendung") == []
    assert service.get_case(moved.case_id).status == "transferred"

    back = returned_by_b(forged(answer), office_b)
    # To A's inbox (not B's own returned subject, which nobody reads).
    assert back.subject == A_INBOX == transfer_subject(PREFIX, OFFICE_A)
    assert back.body["rueckweisung"]["grund"] == "regel-verletzt"
    assert transfer_message_type(back.payload()) == "Administration.ReturnToSender"

    at_a = deliver(back, service, OFFICE_A)
    assert (at_a.outcome, at_a.duplicate, at_a.case_id) == ("reopened", False, moved.case_id)
    assert at_a.answer is None  # a return is never returned
    case = service.get_case(moved.case_id)
    assert (case.status, case.transferred_to, case.ended_at) == ("active", None, None)
    events = service.case_events(moved.case_id)
    last = events[-1]
    assert isinstance(last, CaseFile.HandOverReturned)
    assert (last.to_office_id, last.reason) == (OFFICE_B, "regel-verletzt")
    assert last.answer_message_id == answer.body["nachrichtenkopf"]["nachrichtUUID"]
    assert last.return_message_id == back.body["nachrichtenkopf"]["nachrichtUUID"]
    assert "page_count differs" in last.hints
    claim = _claim(service, answer)
    assert claim.is_returned
    assert claim.return_reason == "regel-verletzt"
    # A caseworker can work on the file again.
    service.add_note(moved.case_id, expected_version=case.version, by="sb-01", text="zurück")


def _claim(service: AkteService, answer: Answer) -> FileRequestAnswer:
    claim_id = FileRequestAnswer.id_for(OFFICE_A, OFFICE_B, answer.body["bezug"]["nachrichtUUID"])
    found = service.find(claim_id, FileRequestAnswer)
    assert found is not None
    return found


def test_a_file_against_bs_schema_comes_back_too(
    service: AkteService, office_b: AkteService
) -> None:
    moved, _message, answer = sent_file(service, office_b)
    body = json.loads(answer.payload())
    del body["akte"]["dokumente"]
    back = returned_by_b(json.dumps(body).encode(), office_b)
    assert (back.subject, back.body["rueckweisung"]["grund"]) == (A_INBOX, "schema-verletzt")
    assert deliver(back, service, OFFICE_A).outcome == "reopened"
    assert service.get_case(moved.case_id).status == "active"


def test_a_return_delivered_again_or_twice_changes_nothing_twice(
    service: AkteService, office_b: AkteService
) -> None:
    moved, message, answer = sent_file(service, office_b)
    back = returned_by_b(forged(answer), office_b)
    assert deliver(back, service, OFFICE_A).outcome == "reopened"
    version = service.get_case(moved.case_id).version
    before = log_length(service)

    again = deliver(back, service, OFFICE_A)
    assert (again.outcome, again.duplicate) == ("reopened", True)
    # B returned the file a second time (its message delivered twice): another return id.
    second = returned_by_b(forged(answer), office_b)
    assert (
        second.body["nachrichtenkopf"]["nachrichtUUID"]
        != (back.body["nachrichtenkopf"]["nachrichtUUID"])
    )
    assert deliver(second, service, OFFICE_A).duplicate
    # B's request delivered again: the file that came back is not sent again.
    repeated = deliver(message, service, OFFICE_A)
    assert (repeated.outcome, repeated.duplicate, repeated.answer) == ("returned", True, None)
    assert log_length(service) == before
    assert service.get_case(moved.case_id).version == version


def test_a_late_return_after_the_file_went_again_does_not_reopen_it(
    service: AkteService, office_b: AkteService
) -> None:
    moved, _message, answer = sent_file(service, office_b)
    back = returned_by_b(forged(answer), office_b)
    assert deliver(back, service, OFFICE_A).outcome == "reopened"
    # B asks again and takes the file over this time.
    _request, message = ask_for(office_b)
    at_a = deliver(message, service, OFFICE_A)
    assert at_a.answer is not None
    assert deliver(at_a.answer, office_b, OFFICE_B).outcome == "taken_over"
    before = log_length(service)
    # The first return comes once more: the file stays with B.
    assert deliver(back, service, OFFICE_A).duplicate
    assert log_length(service) == before
    assert service.get_case(moved.case_id).status == "transferred"


def _with_head(back: Answer, **changes: Any) -> bytes:
    body = json.loads(back.payload())
    body["nachrichtenkopf"].update(changes)
    return json.dumps(body).encode()


def _with_returned(back: Answer, change: Any) -> bytes:
    body = json.loads(back.payload())
    returned = body["rueckweisung"]["abgewieseneNachricht"]
    original = json.loads(base64.b64decode(returned["nachricht"]))
    change(original, returned)
    returned["nachricht"] = base64.b64encode(json.dumps(original).encode()).decode()
    return json.dumps(body).encode()


def test_a_return_from_another_office_or_of_no_answer_of_ours_changes_nothing(
    service: AkteService, office_b: AkteService, caplog: pytest.LogCaptureFixture
) -> None:
    moved, _message, answer = sent_file(service, office_b)
    back = returned_by_b(forged(answer), office_b)
    before = log_length(service)

    def never_sent(original: dict[str, Any], returned: dict[str, Any]) -> None:
        returned["nachrichtUUID"] = original["nachrichtenkopf"]["nachrichtUUID"] = str(uuid.uuid4())

    def other_request(original: dict[str, Any], returned: dict[str, Any]) -> None:
        original["bezug"]["nachrichtUUID"] = str(uuid.uuid4())

    def not_ours(original: dict[str, Any], returned: dict[str, Any]) -> None:
        original["nachrichtenkopf"]["autor"]["kennung"] = "abh-dritte"

    attempts = [
        # Another office than the one the file went to.
        _with_head(back, autor={"kennung": "abh-dritte"}),
        # For another office than this one.
        _with_head(back, leser={"kennung": "abh-dritte"}),
        _with_returned(back, never_sent),
        _with_returned(back, other_request),
        _with_returned(back, not_ours),
    ]
    for data in attempts:
        handled = deliver(data, service, OFFICE_A)
        assert isinstance(handled, TransferHandled)
        assert (handled.outcome, handled.answer, handled.returned) == ("ignored", None, None)
    assert log_length(service) == before
    assert service.get_case(moved.case_id).status == "transferred"
    # Logged, without personal data.
    assert "return" in caplog.text
    assert PERSON.surname not in caplog.text
    # The genuine return still reopens the file.
    assert deliver(back, service, OFFICE_A).outcome == "reopened"


def test_an_older_file_without_a_reply_address_is_still_taken_over(
    service: AkteService, office_b: AkteService
) -> None:
    moved, _message, answer = sent_file(service, office_b)
    body = json.loads(answer.payload())
    del body["nachrichtenkopf"]["antwortAn"]
    # Its return (when B cannot take it) goes to B's returned subject, as before.
    forged_body = json.loads(forged(answer))
    del forged_body["nachrichtenkopf"]["antwortAn"]
    assert returned_by_b(json.dumps(forged_body).encode(), office_b).subject is None
    at_b = deliver(json.dumps(body).encode(), office_b, OFFICE_B)
    assert (at_b.outcome, at_b.returned) == ("taken_over", None)
    assert service.get_case(moved.case_id).status == "transferred"


@pytest.mark.parametrize(
    "reply_to",
    [
        f"{PREFIX}.inbox.abh-dritte.abh",
        # Ends like A's inbox but is another subject.
        f"evil.inbox.{OFFICE_A}.abh",
        f"{PREFIX}.evil.inbox.{OFFICE_A}.abh",
    ],
)
def test_a_file_naming_another_reply_address_is_refused_and_not_returned_there(
    service: AkteService, office_b: AkteService, reply_to: str
) -> None:
    _moved, _message, answer = sent_file(service, office_b)
    body = json.loads(answer.payload())
    body["nachrichtenkopf"]["antwortAn"] = reply_to
    handled = deliver(json.dumps(body).encode(), office_b, OFFICE_B)
    assert handled.returned == "schema-verletzt"
    assert handled.answer is not None
    assert "antwortAn" in handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    # The file (personal data) goes back to no subject of the message's choosing.
    assert handled.answer.subject is None
