"""Case files between offices (service_file_transfers.py), without a broker: two offices,
each on a store of its own (two SQLite files, or two PostgreSQL schemas), exchanging the
messages' bytes. The file moves with its history and provenance, B checks A's chain, A's
file ends as transferred; refusals, duplicates and late answers change nothing twice."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from adapters.inbox.file_transfers import to_request
from adapters.inbox.schemas import problems
from adapters.settings import Settings
from domain.case_file import CaseFile, MasterData
from domain.history import describe
from domain.personal import REDACTED_TEXT
from service import AkteService
from service_file_transfers import SentFile
from tests.conftest import FakeClock, another_deployment
from tests.support.file_transfers import (
    OFFICE_A,
    OFFICE_B,
    PERSON,
    ask_for,
    deliver,
    file_with_history,
    log_length,
)


@pytest.fixture
def office_b(settings: Settings, tmp_path: Path, clock: FakeClock) -> Iterator[AkteService]:
    """The new office: a deployment of its own (never the previous office's store)."""
    with another_deployment(settings, tmp_path, "office-b") as settings_b:
        service = build_service(settings_b, clock=clock)
        try:
            yield service
        finally:
            service.close()


def test_the_file_moves_with_its_history_and_provenance(
    service: AkteService, office_b: AkteService
) -> None:
    moved = file_with_history(service)
    request, message = ask_for(office_b, file_number=moved.reference)
    assert problems(message.body, "ABH.Aktenanforderung") == []

    at_a = deliver(message, service, OFFICE_A)
    assert (at_a.outcome, at_a.duplicate, at_a.case_id) == ("sent", False, moved.case_id)
    assert at_a.answer is not None
    assert problems(at_a.answer.body, "ABH.Aktenuebersendung") == []
    assert at_a.answer.subject == f"akte.inbox.{OFFICE_B}.abh"

    at_b = deliver(at_a.answer, office_b, OFFICE_B)
    assert (at_b.outcome, at_b.duplicate) == ("taken_over", False)
    assert at_b.case_id is not None

    # A: the file ended as transferred to B.
    old = service.get_case(moved.case_id)
    assert (old.status, old.transferred_to) == ("transferred", OFFICE_B)
    # B: a new file of B's, with A's parts and their numbers.
    new = office_b.get_case(at_b.case_id)
    assert (new.office_id, new.status, new.taken_over_from) == (OFFICE_B, "active", OFFICE_A)
    assert new.master_data == PERSON
    assert [d.sha256 for d in new.documents] == [moved.document_sha256]
    assert [(p.number, p.status, p.outcome) for p in new.procedures] == [(1, "decided", "granted")]
    assert [d.document_number for d in new.residence_documents] == ["Y12345678"]
    assert [n.text for n in new.notes] == ["Umzug angekündigt"]
    assert office_b.intake.documents.read_bytes(moved.document_sha256, owner=new.id)
    # B's history says where each part came from.
    events = office_b.case_events(at_b.case_id)
    parts = [e for e in events if isinstance(e, CaseFile.PartTakenOver)]
    assert [p.source_version for p in parts] == list(range(1, moved.version + 1))
    lines = [describe(e) for e in events]
    assert any(
        line.startswith(f"Akte {moved.reference} von Ausländerbehörde {OFFICE_A}") for line in lines
    )
    attached = next(line for line in lines if "Dokument 1 zur Akte genommen" in line)
    assert attached.startswith(f"übernommen von Ausländerbehörde {OFFICE_A} am 04.03.2024")
    # B checks A's chain from what it keeps, without asking A.
    check = office_b.file_transfers.check_taken_over(at_b.case_id)
    assert check.ok, check.problems
    assert (check.from_office_id, check.parts) == (OFFICE_A, moved.version)
    request_state = office_b.file_transfers.get_request(request.request_id)
    assert (request_state.status, request_state.case_id) == ("taken_over", str(at_b.case_id))


def test_duplicates_and_late_messages_change_nothing_twice(
    service: AkteService, office_b: AkteService
) -> None:
    moved = file_with_history(service)
    _request, message = ask_for(office_b)
    first = deliver(message, service, OFFICE_A)
    assert first.answer is not None
    a_log = log_length(service)
    again = deliver(message, service, OFFICE_A)
    assert (again.outcome, again.duplicate) == ("sent", True)
    assert again.answer is not None
    # The same answer, under the same message id: B recognises it.
    assert (
        again.answer.body["nachrichtenkopf"]["nachrichtUUID"]
        == (first.answer.body["nachrichtenkopf"]["nachrichtUUID"])
    )
    assert again.answer.body["akte"] == first.answer.body["akte"]
    assert log_length(service) == a_log

    taken = deliver(first.answer, office_b, OFFICE_B)
    b_log = log_length(office_b)
    for late in (again.answer, first.answer):
        repeated = deliver(late, office_b, OFFICE_B)
        assert (repeated.outcome, repeated.duplicate, repeated.case_id) == (
            "taken_over",
            True,
            taken.case_id,
        )
    # A late answer of another kind to the same request (out of order): nothing either.
    late_refusal = {
        "nachrichtenkopf": {
            **first.answer.body["nachrichtenkopf"],
            "nachrichtUUID": str(uuid.uuid4()),
            "nachrichtentyp": "ABH.AktenanforderungAbgelehnt",
        },
        "bezug": first.answer.body["bezug"],
        "grund": "nicht-zustaendig",
    }
    late_answer = deliver(json.dumps(late_refusal).encode(), office_b, OFFICE_B)
    assert (late_answer.outcome, late_answer.duplicate) == ("taken_over", True)
    assert log_length(office_b) == b_log
    assert service.get_case(moved.case_id).version == moved.version + 1


def test_a_request_for_an_unknown_person_is_refused_and_changes_no_file(
    service: AkteService, office_b: AkteService
) -> None:
    moved = file_with_history(service)
    stranger = MasterData("Unbekannt", "Niemand", PERSON.date_of_birth, "UKR", "FX0000001")
    request, message = ask_for(office_b, person=stranger)
    at_a = deliver(message, service, OFFICE_A)
    assert (at_a.outcome, at_a.case_id) == ("refused", None)
    assert at_a.answer is not None
    assert problems(at_a.answer.body, "ABH.AktenanforderungAbgelehnt") == []
    assert at_a.answer.body["grund"] == "nicht-zustaendig"
    assert "person" not in json.dumps(at_a.answer.body)
    assert service.get_case(moved.case_id).version == moved.version
    at_b = deliver(at_a.answer, office_b, OFFICE_B)
    assert (at_b.outcome, at_b.duplicate) == ("refused", False)
    assert office_b.file_transfers.get_request(request.request_id).reason == "nicht-zustaendig"
    assert deliver(at_a.answer, office_b, OFFICE_B).duplicate


def test_open_procedures_hinder_sending(service: AkteService, office_b: AkteService) -> None:
    opened = service.open_case(office_id=OFFICE_A, master_data=PERSON, by="sb-01")
    service.receive_procedure(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        legal_basis=None,
    )
    _request, message = ask_for(office_b)
    at_a = deliver(message, service, OFFICE_A)
    assert at_a.outcome == "refused"
    assert at_a.answer is not None
    assert at_a.answer.body["grund"] == "hinderungsgrund"
    assert service.get_case(opened.case_id).status == "active"


def test_a_file_the_way_out_does_not_take_is_refused_and_stays_active(
    service: AkteService, office_b: AkteService
) -> None:
    moved = file_with_history(service)
    _request, message = ask_for(office_b)
    inbound = to_request(json.loads(message.payload()), OFFICE_A)
    measured: list[UUID] = []

    def too_large(file: SentFile, answer_id: str) -> bool:
        measured.append(file.case_id)
        assert UUID(answer_id)  # the message id the answer would go with
        return False

    answer = service.file_transfers.answer_request(inbound, fits=too_large)
    assert measured == [moved.case_id]
    assert (answer.outcome, answer.reason, answer.too_large) == ("refused", "hinderungsgrund", True)
    assert answer.file is None
    case = service.get_case(moved.case_id)
    assert (case.status, case.version) == ("active", moved.version)
    # The request once more: the same refusal, recorded once.
    again = service.file_transfers.answer_request(inbound)
    assert (again.outcome, again.reason, again.duplicate) == ("refused", "hinderungsgrund", True)
    assert again.too_large is False  # a duplicate: counted as one, not as too large again
    assert again.answer_message_id == answer.answer_message_id


def test_a_second_request_after_the_move_is_refused_as_not_responsible(
    service: AkteService, office_b: AkteService
) -> None:
    file_with_history(service)
    _first, message = ask_for(office_b)
    sent = deliver(message, service, OFFICE_A)
    _second, message_again = ask_for(office_b)
    refused = deliver(message_again, service, OFFICE_A)
    assert (refused.outcome, refused.duplicate) == ("refused", False)
    # Answers in the other order at B: each ends its own request once.
    assert refused.answer is not None
    assert sent.answer is not None
    assert deliver(refused.answer, office_b, OFFICE_B).outcome == "refused"
    assert deliver(sent.answer, office_b, OFFICE_B).outcome == "taken_over"


def test_a_proof_that_does_not_fit_is_returned_and_nothing_is_taken_over(
    service: AkteService, office_b: AkteService
) -> None:
    file_with_history(service)
    request, message = ask_for(office_b)
    answer = deliver(message, service, OFFICE_A).answer
    assert answer is not None
    # A fact changed on the way (a document's hash), or a stored event changed at A.
    forged = json.loads(answer.payload())
    forged["akte"]["ereignisse"][1]["fakten"]["page_count"] = 3
    handled = deliver(json.dumps(forged).encode(), office_b, OFFICE_B)
    assert (handled.outcome, handled.returned) == (None, "regel-verletzt")
    assert handled.answer is not None
    assert (
        "version 2: page_count differs"
        in handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    )
    tampered = json.loads(answer.payload())
    row = tampered["nachweis"]["events"][0]
    row["state"] = base64.b64encode(base64.b64decode(row["state"]) + b" ").decode()
    assert deliver(json.dumps(tampered).encode(), office_b, OFFICE_B).returned == "regel-verletzt"
    assert office_b.file_transfers.get_request(request.request_id).status == "requested"
    # The genuine answer still goes through.
    assert deliver(answer, office_b, OFFICE_B).outcome == "taken_over"


def test_an_answer_to_no_request_of_ours_is_returned(
    service: AkteService, office_b: AkteService
) -> None:
    file_with_history(service)
    request, message = ask_for(office_b)
    answer = deliver(message, service, OFFICE_A).answer
    assert answer is not None
    before = log_length(office_b)
    body = json.loads(answer.payload())
    body["bezug"]["nachrichtUUID"] = str(uuid.uuid4())
    handled = deliver(json.dumps(body).encode(), office_b, OFFICE_B)
    assert handled.returned == "regel-verletzt"
    body["bezug"]["nachrichtUUID"] = str(request.request_id)
    body["nachrichtenkopf"]["autor"]["kennung"] = "abh-dritte"
    # Its reply address is no longer its author's inbox: against the schema's rule.
    assert deliver(json.dumps(body).encode(), office_b, OFFICE_B).returned == "schema-verletzt"
    del body["nachrichtenkopf"]["antwortAn"]  # as files were sent before they named one
    assert deliver(json.dumps(body).encode(), office_b, OFFICE_B).returned == "regel-verletzt"
    assert log_length(office_b) == before
    assert office_b.file_transfers.get_request(request.request_id).status == "requested"


def test_a_taken_over_file_erased_at_b_still_loads_and_its_parts_read_redacted(
    service: AkteService, office_b: AkteService
) -> None:
    file_with_history(service)
    _request, message = ask_for(office_b)
    answer = deliver(message, service, OFFICE_A).answer
    assert answer is not None
    case_id = deliver(answer, office_b, OFFICE_B).case_id
    assert case_id is not None
    office_b.data_protection.erase_personal_data(
        case_id,
        expected_version=office_b.case_head_version(case_id),
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-02",
    )
    office_b.uncache_case(case_id)
    erased = office_b.get_case(case_id)
    assert erased.is_erased
    assert [note.text for note in erased.notes] == [REDACTED_TEXT]
    lines = [describe(event) for event in office_b.case_events(case_id)]
    assert any(line.endswith("Vermerk 1 angelegt") for line in lines)


def test_two_deliveries_of_the_file_at_once_take_it_over_once(
    service: AkteService, office_b: AkteService
) -> None:
    file_with_history(service)
    request, message = ask_for(office_b)
    answer = deliver(message, service, OFFICE_A).answer
    assert answer is not None
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda _: deliver(answer, office_b, OFFICE_B), range(2)))
    assert sorted(result.duplicate for result in results) == [False, True]
    assert {result.case_id for result in results} == {
        UUID(str(office_b.file_transfers.get_request(request.request_id).case_id))
    }
    opened = [
        notification
        for notification in office_b.recorder.select_notifications(start=1, limit=1000)
        if notification.topic.endswith("CaseFile.Opened")
    ]
    assert len(opened) == 1
