"""One delivery without the broker (adapters/inbox/messages.py, adapters/inbox/schemas.py):
every message in and out checked against its schema; invalid ones go back to the sender
with the reason and change nothing; answers carry no personal values outside the
returned message itself."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters.inbox.messages import handle_message
from adapters.inbox.schemas import MESSAGE_TYPES, problems, schema_documents, validator
from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import MasterData
from service import AkteService
from tests.support.inbox import OFFICE, application, encoded, move, notice

PERSON = MasterData("Yılmaz", "Ayşe Nur", date(1991, 7, 14), "TUR", "U12345678", "Alter Weg 1")
NOW = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def handle(service: AkteService, message: dict[str, Any] | bytes) -> Any:
    raw = message if isinstance(message, bytes) else encoded(message)
    return handle_message(raw, notices=service.notices, office_id=OFFICE, now=NOW)


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def test_every_message_type_has_a_valid_schema() -> None:
    documents = schema_documents()
    for message_type in MESSAGE_TYPES:
        assert message_type in documents
        validator(message_type).check_schema(documents[message_type])
        assert "not certified" in documents[message_type]["description"] or (
            message_type.startswith("Portal.")
        )


def test_the_samples_fit_their_schemas() -> None:
    assert problems(move(PERSON), "MBABH.AenderungHauptwohnung") == []
    assert problems(notice("MBABH.Tod", PERSON), "MBABH.Tod") == []
    sample = application(PERSON, reply_to="portal.antworten", attachment=make_pdf(1))
    assert problems(sample, "Portal.Aufenthaltsantrag") == []
    without_reply = application(PERSON, reply_to="x", attachment=b"%PDF")
    del without_reply["nachrichtenkopf"]["antwortAn"]
    assert problems(without_reply, "Portal.Aufenthaltsantrag") == ["/nachrichtenkopf: required"]


def test_a_valid_notice_is_recorded_and_needs_no_answer(service: AkteService) -> None:
    case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    handled = handle(service, move(PERSON))
    assert handled.answer is None
    assert (handled.outcome.outcome, handled.outcome.subject_id) == ("recorded", case_id)


@pytest.mark.parametrize(
    ("broken", "reason", "hint"),
    [
        (b"\xff not json", "nachricht-unlesbar", "not JSON"),
        # Beyond the parser's limits: a number of 5,000 digits, nesting 100,000 deep.
        (b'{"a": ' + b"1" * 5000 + b"}", "nachricht-unlesbar", "not JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nachricht-unlesbar", "not JSON"),
        (
            b'{"nachrichtenkopf": {"nachrichtentyp": []}}',
            "nachrichtentyp-unbekannt",
            "nachrichtentyp",
        ),
        (
            # JSON Schema's "$" ends the text: a final line break is no subject.
            encoded(application(PERSON, reply_to="portal.antworten\n", attachment=make_pdf(1))),
            "schema-verletzt",
            "/nachrichtenkopf/antwortAn: pattern",
        ),
        (
            encoded(
                {**move(PERSON), "person": {**move(PERSON)["person"], "geburtsdatum": "1991-14-07"}}
            ),
            "schema-verletzt",
            "/person/geburtsdatum: format",
        ),
        (
            encoded(notice("MBABH.Tod", PERSON, {"neueAnschrift": "Weg 9"})),
            "schema-verletzt",
            "/anlass: additionalProperties",
        ),
        (
            encoded(
                notice(
                    "MBABH.AenderungStaatsangehoerigkeit",
                    PERSON,
                    {"neueStaatsangehoerigkeit": "TUR"},
                    effective_on=date(2030, 1, 1),
                )
            ),
            "regel-verletzt",
            "effective_on: must not lie after the day of receipt",
        ),
        (
            encoded({**move(PERSON), "nachrichtenkopf": {"nachrichtentyp": "Unbekannt"}}),
            "nachrichtentyp-unbekannt",
            "nachrichtentyp",
        ),
    ],
)
def test_an_invalid_message_goes_back_to_its_sender_and_changes_nothing(
    service: AkteService, broken: bytes, reason: str, hint: str
) -> None:
    service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    before = head(service)
    handled = handle(service, broken)
    assert handled.outcome is None
    assert handled.returned == reason
    answer = handled.answer
    assert answer.message_type == "Administration.ReturnToSender"
    assert problems(answer.body, "Administration.ReturnToSender") == []
    returned = answer.body["rueckweisung"]
    assert returned["grund"] == reason
    assert hint in returned["ergaenzendeHinweise"]
    assert base64.b64decode(returned["abgewieseneNachricht"]["nachricht"]) == broken
    # The reason names paths and rules; the person's values only travel inside the
    # returned message itself.
    text = json.dumps({**answer.body, "rueckweisung": {**returned, "abgewieseneNachricht": {}}})
    for value in ("Yılmaz", "Ayşe", "1991-14-07", "1991-07-14", "Weg 9"):
        assert value not in text
    assert head(service) == before


def test_a_return_goes_to_the_subject_the_sender_named(service: AkteService) -> None:
    broken = move(PERSON, reply_to="meldebehoerde.antworten")
    broken["wirksamAb"] = "gestern"
    handled = handle(service, broken)
    assert handled.answer.subject == "meldebehoerde.antworten"
    assert handled.answer.body["nachrichtenkopf"]["leser"]["kennung"] == (
        "meldebehoerde-musterstadt"
    )


def test_a_message_for_another_office_is_returned(service: AkteService) -> None:
    other = move(PERSON)
    other["nachrichtenkopf"]["leser"]["kennung"] = "abh-anderswo"
    handled = handle(service, other)
    assert handled.returned == "schema-verletzt"


def test_an_application_is_answered_with_a_receipt_once_recorded(service: AkteService) -> None:
    message = application(PERSON, reply_to="portal.antworten", attachment=make_pdf(1))
    handled = handle(service, message)
    assert handled.outcome.outcome == "submission"
    receipt = handled.answer
    assert receipt.subject == "portal.antworten"
    assert problems(receipt.body, "Portal.Eingangsbestaetigung") == []
    assert receipt.body["ergebnis"] == "kontaktanfrage-angelegt"
    assert receipt.body["bezug"]["nachrichtUUID"] == message["nachrichtenkopf"]["nachrichtUUID"]
    assert receipt.body["eingangsnummer"] == handled.outcome.receipt
    before = head(service)
    again = handle(service, message)
    assert again.answer.body["bereitsEingegangen"] is True
    assert "eingangsnummer" not in again.answer.body
    assert head(service) == before


def test_an_unreadable_attachment_is_returned(service: AkteService) -> None:
    message = application(PERSON, reply_to="portal.antworten", attachment=b"no document")
    before = head(service)
    handled = handle(service, message)
    assert handled.returned == "regel-verletzt"
    assert "anlagen/0/inhalt" in handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    assert head(service) == before


def test_the_asyncapi_payloads_are_the_schemas_inlined() -> None:
    """The AsyncAPI document's payloads (draft 7, refs resolved) accept and refuse what
    the schema files do."""
    from jsonschema import Draft7Validator

    from adapters.inbox.schemas import inlined_schema

    good = move(PERSON)
    bad = move(PERSON)
    bad["person"]["vornamen"] = ""
    payload = Draft7Validator(inlined_schema("MBABH.AenderungHauptwohnung"))
    assert list(payload.iter_errors(good)) == []
    assert [list(e.absolute_path) for e in payload.iter_errors(bad)] == [["person", "vornamen"]]
    assert "$ref" not in json.dumps(inlined_schema("Portal.Aufenthaltsantrag"))
