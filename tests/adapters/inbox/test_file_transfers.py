"""The file transfer messages (adapters/inbox/file_transfers.py), their schemas and the
AsyncAPI channel, the proof's offline check, and ``akte transfers`` with ``akte inbox
run`` through the machine's NATS server (both offices on SQLite, each its own store)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, cast
from uuid import UUID, uuid4

import nats.js.errors
import pytest
from eventsourcing.persistence import Mapper

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.inbox.consumer import InboxConfig, InboxConsumer
from adapters.inbox.file_transfers import (
    TransferHandled,
    event_from_json,
    event_json,
    handle_transfer_message,
    proof_problems,
    transfer_subject,
    unchecked_versions,
)
from adapters.outbox.asyncapi import asyncapi_document
from adapters.outbox.cloudevents import Selection
from adapters.settings import Settings
from adapters.simulation.case_histories import rich_case, taken_over_case
from adapters.store.transcoding import json_transcoder
from adapters.store.verifier import GENESIS, LOG_TAG, STREAM_TAG, link_hash
from domain.case_file import CaseFile
from service import AkteService
from service_file_transfers import FileEvent, told_event
from tests.support.deliveries import Delivery
from tests.support.file_transfers import (
    OFFICE_A,
    OFFICE_B,
    PERSON,
    RecordingClient,
    ask_for,
    deliver,
    file_with_history,
)
from tests.support.inbox import encoded
from tests.support.outbox import Broker, own_stream


def test_every_event_crosses_as_json_and_back_with_its_types() -> None:
    for event in taken_over_case().collect_events():
        told = told_event(cast(CaseFile.Event, event))
        assert event_from_json(json.loads(json.dumps(event_json(told)))) == told


def test_a_proof_of_another_file_or_with_events_missing_is_named() -> None:
    told = [told_event(cast(CaseFile.Event, e)) for e in taken_over_case().collect_events()]
    case_id = uuid4()
    assert proof_problems({"format": "x"}, case_id, told)
    assert proof_problems({}, case_id, told) == ["the proof is unreadable"]
    empty = {"format": "akte-case-export/1", "originator_id": uuid4().hex, "events": []}
    found = proof_problems(empty, case_id, told)
    assert "the proof is of another case file" in found
    assert f"the proof holds 0 events, the file {len(told)}" in found


def test_the_asyncapi_document_has_the_transfer_channel_and_messages() -> None:
    document = asyncapi_document(Selection.parse(None))
    channel = document["channels"]["akte.inbox.{office}.abh"]
    names = ("ABH.Aktenanforderung", "ABH.Aktenuebersendung", "ABH.AktenanforderungAbgelehnt")
    # A file that cannot be taken over comes back on the sending office's subject.
    every = (*names, "Administration.ReturnToSender")
    for operation in ("publish", "subscribe"):
        refs = {item["$ref"] for item in channel[operation]["message"]["oneOf"]}
        assert refs == {f"#/components/messages/{name}" for name in every}
    for name in names:
        assert "not certified" in document["components"]["messages"][name]["description"]


def test_a_request_that_breaks_its_schema_is_returned_and_records_nothing(
    service: AkteService,
) -> None:
    file_with_history(service, OFFICE_A)
    before = service.recorder.max_notification_id()
    message: dict[str, Any] = {
        "nachrichtenkopf": {
            "nachrichtUUID": str(uuid4()),
            "nachrichtentyp": "ABH.Aktenanforderung",
            "erstellungszeitpunkt": "2024-03-04T08:00:00+01:00",
            "autor": {"kennung": OFFICE_B},
            "leser": {"kennung": OFFICE_A},
        },
        "person": {"familienname": PERSON.surname, "vornamen": PERSON.given_names},
        "zuzugAm": "2024-03-01",
    }
    handled = handle_transfer_message(
        encoded(message),
        transfers=service.file_transfers,
        office_id=OFFICE_A,
        now=service.clock(),
        subject_prefix="akte",
    )
    assert handled.returned == "schema-verletzt"
    assert handled.answer is not None
    hints = handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    # No reply subject, no birth date: named by path and rule, never by value.
    assert hints == "/nachrichtenkopf: required; /person: required"
    assert PERSON.surname not in hints
    assert service.recorder.max_notification_id() == before


@pytest.mark.parametrize(
    "reply_to",
    [
        "akte.inbox.abh-dritte.abh",
        # Ends like B's inbox but is another subject (a prefix of the sender's choosing).
        f"evil.inbox.{OFFICE_B}.abh",
        f"akte.evil.inbox.{OFFICE_B}.abh",
    ],
)
def test_a_file_goes_only_to_the_requesting_offices_inbox(
    service: AkteService, reply_to: str
) -> None:
    moved = file_with_history(service, OFFICE_A)
    _outgoing, message = ask_for(service, office_id=OFFICE_B, from_office_id=OFFICE_A)
    body = json.loads(message.payload())
    body["nachrichtenkopf"]["antwortAn"] = reply_to
    handled = handle_transfer_message(
        encoded(body),
        transfers=service.file_transfers,
        office_id=OFFICE_A,
        now=service.clock(),
        subject_prefix="akte",
    )
    assert handled.returned == "schema-verletzt"
    assert handled.answer is not None
    assert "antwortAn" in handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    # The return holds the request (personal data): never to the subject it named.
    assert handled.answer.subject is None
    assert service.get_case(moved.case_id).status == "active"


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def test_the_commands_request_take_over_show_and_verify_a_file(
    broker: Broker,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in {
        "AKTE_STORE": "sqlite",
        "AKTE_DATA_DIR": str(tmp_path / "office-b"),
        "AKTE_DEFAULT_OFFICE_ID": OFFICE_B,
        "AKTE_OUTBOX_URL": broker.url,
        "AKTE_OUTBOX_SUBJECT_PREFIX": broker.prefix,
        "AKTE_JSON_LOGS": "false",
    }.items():
        monkeypatch.setenv(name, value)
    office_a = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "office-a", default_office_id=OFFICE_A)
    )
    try:
        moved = file_with_history(office_a, OFFICE_A)
        settings_b = Settings()
        assert settings_b.default_office_id == OFFICE_B
        issuer = LocalIssuer.load_or_create(settings_b.local_issuer_key_file)
        token = tmp_path / "sb-neu.token"
        token.write_text(
            issuer.issue(user_id="sb-neu", roles=[Role.CASEWORKER], office_id=OFFICE_B)
        )
        request = [
            "transfers",
            "request",
            "--from-office",
            OFFICE_A,
            "--surname",
            PERSON.surname,
            "--given-names",
            PERSON.given_names,
            "--born",
            PERSON.date_of_birth.isoformat(),
            "--moved-in",
            "2024-03-01",
            "--stream",
            broker.stream,
            "--token-file",
            str(token),
        ]
        assert main(request) == 0
        found = re.search(r"request ([0-9a-f-]{36})", capsys.readouterr().out)
        assert found is not None
        request_id = UUID(found.group(1))

        async def answer_at_a() -> InboxConsumer:
            config = InboxConfig(
                office=OFFICE_A,
                url=broker.url,
                stream=broker.stream,
                subject_prefix=broker.prefix,
                fetch_timeout=0.5,
            )
            consumer = InboxConsumer(office_a.notices, config, transfers=office_a.file_transfers)
            await consumer.run(until_idle=True)
            return consumer

        assert asyncio.run(answer_at_a()).stats.transfers == 1
        assert office_a.get_case(moved.case_id).status == "transferred"
    finally:
        office_a.close()
    assert main(["inbox", "run", "--until-idle", "--stream", broker.stream]) == 0
    assert main(["transfers", "show", str(request_id)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["status"] == "taken_over"
    assert PERSON.surname not in json.dumps(shown)
    assert main(["transfers", "verify", shown["case_id"]]) == 0
    assert capsys.readouterr().out.startswith(f"OK: case file {shown['case_id']}")
    # The proof kept in B's document store changed (or lost): broken, not a crash.
    for stored in (tmp_path / "office-b").rglob("objects/*/*"):
        data = bytearray(stored.read_bytes())
        data[len(data) // 2] ^= 1
        stored.write_bytes(bytes(data))
    assert main(["transfers", "verify", shown["case_id"]]) == 4
    assert "the proof kept for this file cannot be read" in capsys.readouterr().err
    assert transfer_subject(broker.prefix, OFFICE_A) == f"{broker.prefix}.inbox.{OFFICE_A}.abh"
    # A file opened here is no taken-over file.
    other = build_service(Settings())
    try:
        own = other.open_case(office_id=OFFICE_B, master_data=PERSON, by="sb-neu").case_id
    finally:
        other.close()
    assert main(["transfers", "verify", str(own)]) == 1


class _Stream:
    """A JetStream context whose publish finds no stream, or stores what it is given."""

    def __init__(self, *, stored: bool) -> None:
        self.stored = stored
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        if not self.stored:
            raise nats.js.errors.NoStreamResponseError()
        self.published.append((subject, payload))


def test_an_answer_no_stream_stores_is_not_sent_loose_and_the_request_comes_back(
    service: AkteService,
) -> None:
    file_with_history(service, OFFICE_A)
    _outgoing, message = ask_for(service, office_id=OFFICE_B, from_office_id=OFFICE_A)
    consumer = InboxConsumer(
        service.notices, InboxConfig(office=OFFICE_A), transfers=service.file_transfers
    )
    client = RecordingClient()
    consumer._client = cast(Any, client)
    consumer._stream = cast(Any, _Stream(stored=False))
    first = Delivery(message.payload())
    assert asyncio.run(consumer.process(cast(Any, first))) is None
    # Neither acknowledged nor sent without a stream: the file cannot be lost unseen.
    assert not first.acked
    assert first.naked
    assert first.naked[0]
    assert client.published == []
    assert consumer.stats.retried == 1

    # The request comes again once a stream stores B's inbox: A's recorded answer goes out.
    stream = _Stream(stored=True)
    consumer._stream = cast(Any, stream)
    again = Delivery(message.payload())
    handled = asyncio.run(consumer.process(cast(Any, again)))
    assert again.acked
    assert isinstance(handled, TransferHandled)
    assert handled.outcome == "sent"
    assert handled.duplicate
    [(subject, payload)] = stream.published
    assert subject == transfer_subject("akte", OFFICE_B)
    assert json.loads(payload)["nachrichtenkopf"]["nachrichtentyp"] == "ABH.Aktenuebersendung"


def _chained_proof(
    case: CaseFile, *, old_fiction: bool, sealed_whole: int | None = None
) -> tuple[dict[str, Any], list[FileEvent]]:
    """A proof of ``case``'s events as a store chains them (and the events as told);
    ``old_fiction``: its Fiktionsbescheinigung issued as stored before class version 2;
    ``sealed_whole``: the version stored as unreadable bytes (encrypted as a whole)."""
    events = [cast(CaseFile.Event, event) for event in case.collect_events()]
    mapper: Mapper[Any] = Mapper(transcoder=json_transcoder())
    originator_id = case.id.hex
    rows: list[dict[str, Any]] = []
    stream = log = GENESIS
    for event in events:
        stored = mapper.to_stored_event(event)
        state = stored.state
        if old_fiction and isinstance(event, CaseFile.FictionCertificateIssued):
            fields = mapper.transcoder.decode(state)
            for name in ("class_version", "order_basis", "previous_title_valid_until"):
                fields.pop(name)
            fields.pop("hardship_reason")
            state = mapper.transcoder.encode(fields)
        version = event.originator_version
        if version == sealed_whole:
            state = b"\x00not json: encrypted as a whole"
        stream = link_hash(STREAM_TAG, stream, originator_id, version, stored.topic, state)
        before = log
        log = link_hash(LOG_TAG, before, originator_id, version, stored.topic, state)
        rows.append(
            {
                "notification_id": version,
                "version": version,
                "topic": stored.topic,
                "state": base64.b64encode(state).decode("ascii"),
                "stream_hash": stream.hex(),
                "log_hash": log.hex(),
                "log_previous": None
                if version == 1
                else {"notification_id": version - 1, "log_hash": before.hex()},
            }
        )
    proof = {
        "format": "akte-case-export/1",
        "originator_id": originator_id,
        "events": rows,
        "stream_head": stream.hex(),
        "sealed_up_to": 0,
    }
    return proof, [told_event(event) for event in events]


def test_a_stored_event_of_an_older_class_version_is_compared_upcast() -> None:
    case = rich_case()
    proof, told = _chained_proof(case, old_fiction=True)
    assert any(event.kind == "FictionCertificateIssued" for event in told)
    assert proof_problems(proof, case.id, told) == []

    # Upcast, the stored event is still compared field by field.
    place = next(e.version for e in told if e.kind == "FictionCertificateIssued")
    altered = [
        replace(e, facts={**e.facts, "certificate_number": 7}) if e.version == place else e
        for e in told
    ]
    assert proof_problems(proof, case.id, altered) == [
        f"version {place}: certificate_number differs from the stored event"
    ]


def test_an_event_stored_unreadably_is_chain_checked_and_named_unchecked() -> None:
    case = rich_case()
    proof, told = _chained_proof(case, old_fiction=False, sealed_whole=3)
    assert proof_problems(proof, case.id, told) == []
    assert unchecked_versions(proof) == [3]
    assert unchecked_versions(_chained_proof(case, old_fiction=False)[0]) == []


@pytest.mark.parametrize(
    ("event", "field", "value"),
    [
        (0, "date_of_birth", {"x": 1}),
        (0, "surname", 5),
        (0, "surname", "Beispiel\u0000"),
        (4, "document_number", {"a": 1}),
        (5, "text", ["a"]),
    ],
)
def test_a_sealed_field_changed_to_another_type_is_returned_and_nothing_taken_over(
    service: AkteService, event: int, field: str, value: object
) -> None:
    """The proof cannot vouch for fields A's store sealed: their types are checked on their
    own, or a name that arrived as a list would break every later read of the file."""
    file_with_history(service, OFFICE_A)
    _request, message = ask_for(service)
    sent = deliver(message, service, OFFICE_A)
    assert sent.answer is not None
    body = json.loads(sent.answer.payload())
    assert field in body["akte"]["ereignisse"][event]["personenbezogen"]
    body["akte"]["ereignisse"][event]["personenbezogen"][field] = value
    before = service.recorder.max_notification_id()

    handled = deliver(json.dumps(body).encode(), service, OFFICE_B)

    assert handled.returned == "regel-verletzt"
    assert handled.case_id is None
    assert handled.answer is not None
    hints = handled.answer.body["rueckweisung"]["ergaenzendeHinweise"]
    assert field in hints
    assert "Beispiel" not in hints
    # Nothing half-written: no case file, no part of one (B's request stays open).
    assert service.recorder.max_notification_id() == before
