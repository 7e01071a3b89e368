"""The allow-list and the CloudEvents mapping (adapters/outbox/cloudevents.py)."""

from __future__ import annotations

import orjson
import pytest

from adapters.outbox.cloudevents import (
    DEFAULT_EVENTS,
    InvalidSubjectToken,
    Selection,
    UnknownEventKind,
    aggregate_kind,
    published_fields,
    subject_token,
    to_message,
)
from domain.case_file import CaseFile
from domain.commitment_declaration import CommitmentDeclaration
from domain.personal import personal_fields
from tests.adapters.outbox.stories import OFFICE, person_values, story


def test_the_default_allow_list_is_the_life_of_case_files_and_procedures() -> None:
    selection = Selection.parse(None)
    assert selection.names == DEFAULT_EVENTS
    assert Selection.parse(" ,") == selection
    assert "domain.case_file:CaseFile.Opened" in selection.topics
    assert CaseFile.NoteAdded not in selection.classes


def test_entries_are_class_names_or_topics_and_unknown_ones_are_refused() -> None:
    selection = Selection.parse("CaseFile.Closed, domain.case_file:CaseFile.Opened,CaseFile.Closed")
    assert selection.classes == (CaseFile.Closed, CaseFile.Opened)
    with pytest.raises(UnknownEventKind, match=r"CaseFile\.Nonsense"):
        Selection.parse("CaseFile.Opened,CaseFile.Nonsense")
    with pytest.raises(UnknownEventKind):
        Selection.parse("CaseFile.Event")  # the base class is no event of its own


def test_published_fields_leave_out_personal_fields_and_who_acted() -> None:
    assert published_fields(CaseFile.Opened) == ("at", "office_id", "reference")
    assert "reason" not in published_fields(CaseFile.ProcedureDecided)
    # A hand-over that came back leaves with its reason code, never the other office's
    # hints (free text about the person).
    assert "CaseFile.HandOverReturned" in DEFAULT_EVENTS
    assert "reason" in published_fields(CaseFile.HandOverReturned)
    assert "hints" not in published_fields(CaseFile.HandOverReturned)
    for event_class in (CaseFile.Opened, CommitmentDeclaration.Submitted):
        fields = set(published_fields(event_class))
        assert personal_fields(event_class)
        assert not fields & personal_fields(event_class)
        assert "by" not in fields


def test_an_event_becomes_a_cloud_event_with_a_stable_id_and_subject() -> None:
    case = story(1, "f00d")
    events = case.collect_events()
    aggregate_id = str(case.id)
    message = to_message(events[2], aggregate_id, office=OFFICE, prefix="akte")

    assert message.subject == f"akte.{OFFICE}.case-file.{aggregate_id}"
    assert message.message_id == f"{aggregate_id}:3"
    assert to_message(events[2], aggregate_id, office=OFFICE, prefix="akte") == message
    envelope = orjson.loads(message.payload)
    assert envelope == {
        "specversion": "1.0",
        "id": f"{aggregate_id}:3",
        "source": f"akte/{OFFICE}",
        "type": "de.akte.CaseFile.ProcedureDecided",
        "subject": aggregate_id,
        "time": "2024-05-06T10:00:00+00:00",
        "datacontenttype": "application/json",
        "akteversion": 3,
        "data": {
            "at": "2024-05-06T10:00:00+00:00",
            "procedure_number": 1,
            "outcome": "refused",
            "legal_basis": None,
        },
    }


def test_an_event_holding_personal_data_in_the_clear_is_published_without_it() -> None:
    # Events collected in memory hold every personal value, as events written with
    # encryption switched off do: the fields are left out by name, not by their absence.
    case = story(2, "beef42")
    for event in case.collect_events():
        payload = to_message(event, str(case.id), office=OFFICE, prefix="akte").payload
        for value in person_values("beef42"):
            assert value not in payload


def test_aggregate_kinds_and_subject_tokens() -> None:
    assert aggregate_kind(CaseFile.Opened) == "case-file"
    assert aggregate_kind(CommitmentDeclaration.Submitted) == "commitment-declaration"
    assert subject_token("abh-musterstadt", "office") == "abh-musterstadt"
    for bad in ("abh.musterstadt", "abh *", ">", ""):
        with pytest.raises(InvalidSubjectToken):
            subject_token(bad, "office")
