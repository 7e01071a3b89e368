"""The file request between offices (domain/file_transfers.py) and taking a file over
(CaseFile.take_over in domain/case_file.py): rules, provenance, and the parts changing the
new file as the originals changed the old one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from typing import cast
from uuid import uuid4

import pytest

from adapters.simulation.case_histories import rich_case, taken_over_case
from domain.acts import Act
from domain.case_file import (
    CaseFile,
    MasterData,
    TakenOverPart,
    TakeOverProvenance,
    taken_over_kind,
)
from domain.errors import CaseFileNotActive, InvalidValue
from domain.file_transfers import FileRequest, FileRequestAnswer, FileRequestEnded
from domain.history import case_state, describe
from domain.personal import REDACTED_TEXT
from projections.engine import _source_event as engine_source_event

NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
ACT = Act(by="sb-01", at=NOW, recorded_at=NOW)


def a_request() -> FileRequest:
    return FileRequest.send(
        request_id=uuid4(),
        office_id="abh-neu",
        from_office_id="abh-alt",
        surname="Nowak",
        given_names="Iryna",
        date_of_birth=date(1990, 5, 17),
        file_number=None,
        moved_in_on=date(2024, 5, 1),
        act=ACT,
    )


def test_a_request_ends_once() -> None:
    request = a_request()
    request.refuse(answer_message_id="m-1", reason="nicht-zustaendig", act=ACT)
    assert (request.status, request.reason) == ("refused", "nicht-zustaendig")
    with pytest.raises(FileRequestEnded):
        request.take_over(answer_message_id="m-2", case_id=uuid4(), act=ACT)
    with pytest.raises(FileRequestEnded):
        request.refuse(answer_message_id="m-1", reason="nicht-zustaendig", act=ACT)


def test_a_request_names_another_office_and_a_past_move() -> None:
    with pytest.raises(InvalidValue, match="from_office_id"):
        FileRequest.send(
            request_id=uuid4(),
            office_id="abh-neu",
            from_office_id="abh-neu",
            surname="Nowak",
            given_names="Iryna",
            date_of_birth=date(1990, 5, 17),
            file_number=None,
            moved_in_on=date(2024, 5, 1),
            act=ACT,
        )
    with pytest.raises(InvalidValue, match="moved_in_on"):
        FileRequest.send(
            request_id=uuid4(),
            office_id="abh-neu",
            from_office_id="abh-alt",
            surname="Nowak",
            given_names="Iryna",
            date_of_birth=date(1990, 5, 17),
            file_number=None,
            moved_in_on=date(2024, 6, 1),
            act=ACT,
        )


def test_an_answer_is_claimed_per_office_and_request_and_says_what_it_sent() -> None:
    one = FileRequestAnswer.id_for("abh-alt", "abh-neu", "m-1")
    assert one == FileRequestAnswer.id_for("abh-alt", "abh-neu", "m-1")
    assert one != FileRequestAnswer.id_for("abh-alt", "abh-dritt", "m-1")
    sent = FileRequestAnswer.answer(
        office_id="abh-alt",
        requesting_office_id="abh-neu",
        request_message_id="m-1",
        answer_message_id="a-1",
        outcome="sent",
        reason=None,
        case_id=uuid4(),
        case_version=7,
        act=ACT,
    )
    assert (sent.id, sent.case_version, sent.answered_at) == (one, 7, NOW)
    with pytest.raises(InvalidValue, match="outcome"):
        FileRequestAnswer.answer(
            office_id="abh-alt",
            requesting_office_id="abh-neu",
            request_message_id="m-1",
            answer_message_id="a-1",
            outcome="sent",
            reason="hinderungsgrund",
            case_id=uuid4(),
            case_version=7,
            act=ACT,
        )


def test_the_parts_make_the_new_file_what_the_old_one_was() -> None:
    previous = rich_case()
    new = taken_over_case()
    before, after = case_state(previous), case_state(new)
    for part in ("documents", "procedures", "residence_documents", "fiction_certificates"):
        assert after[part] == before[part], part
    for part in ("entry_procedures", "inquiries", "correspondence", "notes"):
        assert after[part] == before[part], part
    assert (new.office_id, new.status, new.taken_over_from) == (
        "abh-nachbarstadt",
        "active",
        previous.office_id,
    )


def test_the_history_says_where_each_part_came_from() -> None:
    events = taken_over_case().collect_events()
    lines = [describe(cast(CaseFile.Event, event)) for event in events]
    assert lines[1].startswith("Akte 2024-000001 von Ausländerbehörde abh-musterstadt übernommen")
    assert all(
        line.startswith("übernommen von Ausländerbehörde abh-musterstadt am 06.05.2024 (dort ")
        for line in lines[2:]
    )
    assert any(line.endswith("Vermerk 1 angelegt") for line in lines[2:])


def test_an_erased_part_still_replays_and_reads_redacted() -> None:
    events = taken_over_case().collect_events()
    note = next(
        e for e in events if isinstance(e, CaseFile.PartTakenOver) and e.source_kind == "NoteAdded"
    )
    erased = note.__class__(**{**vars(note), "personal": REDACTED_TEXT})
    original = erased.source_event(note.originator_id)
    assert isinstance(original, CaseFile.NoteAdded)
    assert original.text == REDACTED_TEXT
    assert describe(erased).endswith("Vermerk 1 angelegt")


def provenance() -> TakeOverProvenance:
    return TakeOverProvenance(
        from_office_id="abh-alt",
        from_reference="2024-1",
        from_case_id=uuid4().hex,
        request_id=str(uuid4()),
        answer_message_id=str(uuid4()),
        sent_at=NOW,
        sent_by="inbox",
        proof_sha256="a" * 64,
        proof_size_bytes=10,
        stream_head="b" * 64,
    )


def new_file() -> CaseFile:
    return CaseFile.open(
        case_id=uuid4(),
        office_id="abh-neu",
        reference="2024-2",
        master_data=MasterData("Nowak", "Iryna", date(1990, 5, 17), "UKR", "FX1234567"),
        act=ACT,
    )


def test_only_a_new_file_takes_over_and_only_whole_histories_in_order() -> None:
    parts = [
        part
        for part in taken_over_case().collect_events()
        if isinstance(part, CaseFile.PartTakenOver)
    ]
    told = [
        TakenOverPart(
            p.source_kind,
            p.source_version,
            p.source_at,
            p.source_recorded_at,
            p.source_by,
            p.facts,
            p.personal,
        )
        for p in parts
    ]
    used = new_file()
    used.add_note(text="schon hier", act=ACT)
    with pytest.raises(InvalidValue, match="newly opened"):
        used.take_over(provenance=provenance(), parts=told, act=ACT)
    with pytest.raises(InvalidValue, match="parts"):
        new_file().take_over(provenance=provenance(), parts=told[1:], act=ACT)
    changed = [*told[:3], replace(told[3], facts={**told[3].facts, "invented": 1}), *told[4:]]
    with pytest.raises(InvalidValue, match="does not fit its kind"):
        new_file().take_over(provenance=provenance(), parts=changed, act=ACT)
    reviewed = next(i for i, part in enumerate(told) if part.source_kind == "DocumentReviewed")
    wrong_type = [
        *told[:reviewed],
        replace(told[reviewed], facts={"document_number": "eins"}),
        *told[reviewed + 1 :],
    ]
    with pytest.raises(InvalidValue, match="does not fit the file"):
        new_file().take_over(provenance=provenance(), parts=wrong_type, act=ACT)
    wrong_kind = [replace(told[0], source_kind="Created"), *told[1:]]
    with pytest.raises(InvalidValue, match="source_kind"):
        new_file().take_over(provenance=provenance(), parts=wrong_kind, act=ACT)
    with pytest.raises(InvalidValue, match="from_office_id"):
        new_file().take_over(
            provenance=replace(provenance(), from_office_id="abh-neu"), parts=told, act=ACT
        )
    closed = new_file()
    closed.close(closure_reason="left", act=ACT)
    with pytest.raises(CaseFileNotActive):
        closed.take_over(provenance=provenance(), parts=told, act=ACT)


def test_a_part_of_an_older_class_version_is_taken_over_and_read_upcast() -> None:
    previous = rich_case()
    parts = [
        TakenOverPart(
            p.source_kind,
            p.source_version,
            p.source_at,
            p.source_recorded_at,
            p.source_by,
            p.facts,
            p.personal,
        )
        for p in taken_over_case().collect_events()
        if isinstance(p, CaseFile.PartTakenOver)
    ]
    issued = next(i for i, p in enumerate(parts) if p.source_kind == "FictionCertificateIssued")
    # The certificate as class version 1 had it (before the basis of § 81 (4)).
    old = parts[issued]
    v2_facts = {"order_basis", "previous_title_valid_until"}
    parts[issued] = replace(
        old,
        facts={k: v for k, v in old.facts.items() if k not in v2_facts},
        personal={k: v for k, v in old.personal.items() if k != "hardship_reason"},
    )
    new = new_file()
    new.take_over(provenance=provenance(), parts=parts, act=ACT)
    taken = [e for e in new.collect_events() if isinstance(e, CaseFile.PartTakenOver)]
    part = taken[issued]
    assert (part.source_kind, part.source_class_version) == ("FictionCertificateIssued", 1)
    assert "order_basis" not in part.facts  # kept as told, read upcast
    assert {p.source_class_version for p in taken if p is not part} == {
        getattr(taken_over_kind(p.source_kind), "class_version", 1) for p in taken if p is not part
    }
    event = part.source_event(new.id)
    assert isinstance(event, CaseFile.FictionCertificateIssued)
    assert (event.order_basis, event.previous_title_valid_until, event.hardship_reason) == (
        None,
        None,
        None,
    )
    assert case_state(new)["fiction_certificates"] == case_state(previous)["fiction_certificates"]
    # The read models' rebuild of the part (no personal fields): upcast too.
    seen = engine_source_event(part)
    assert isinstance(seen, CaseFile.FictionCertificateIssued)
    assert (seen.order_basis, seen.previous_title_valid_until) == (None, None)
    assert "hardship_reason" not in vars(seen)

    told_as_v2 = [replace(parts[issued], source_class_version=2), *parts[issued + 1 :]]
    with pytest.raises(InvalidValue, match="does not fit its kind"):
        new_file().take_over(provenance=provenance(), parts=[*parts[:issued], *told_as_v2], act=ACT)
    told_as_v3 = [replace(parts[issued], source_class_version=3), *parts[issued + 1 :]]
    with pytest.raises(InvalidValue, match="unknown class version"):
        new_file().take_over(provenance=provenance(), parts=[*parts[:issued], *told_as_v3], act=ACT)
