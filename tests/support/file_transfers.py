"""Case files between offices, for the transfer tests: a file with a history worth moving
at the previous office, and the exchange of messages without a broker (each message's
bytes handed to the other office's handling, as the inbox consumer does)."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from adapters.inbox.file_transfers import (
    TransferHandled,
    handle_transfer_message,
    request_message,
)
from adapters.inbox.messages import Answer
from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import MasterData
from service import AkteService
from service_file_transfers import OutgoingRequest, RequestedPerson
from service_intake import IncomingDocument

OFFICE_A = "abh-alt"
OFFICE_B = "abh-neu"
PREFIX = "akte"
PERSON = MasterData("Nowak", "Iryna", date(1990, 5, 17), "UKR", "FX1234567", "Alter Weg 1")


@dataclass(frozen=True)
class MovedFile:
    case_id: UUID
    reference: str
    version: int
    document_sha256: str


def log_length(service: AkteService) -> int:
    """How many events the office's log holds (what a message did or did not add)."""
    return service.recorder.max_notification_id() or 0


def file_with_history(service: AkteService, office_id: str = OFFICE_A) -> MovedFile:
    """A file with a decided procedure, an issued eAT, a document and a note."""
    opened = service.open_case(office_id=office_id, master_data=PERSON, by="sb-01")
    case_id = opened.case_id
    version = opened.version
    pdf = make_pdf(2)
    uploaded = service.intake.upload_document(
        case_id,
        expected_version=version,
        by="sb-01",
        document=IncomingDocument(
            content=io.BytesIO(pdf),
            sha256=hashlib.sha256(pdf).hexdigest(),
            size_bytes=len(pdf),
            media_type="application/pdf",
            page_count=2,
            kind="passport_copy",
        ),
        source="caseworker",
    )
    version = uploaded.version
    version = service.receive_procedure(
        case_id,
        expected_version=version,
        by="sb-01",
        channel="appointment",
        topic="extend_residence_permit",
        legal_basis="aufenthg-16b",
    ).version
    version = service.decide_procedure(
        case_id,
        expected_version=version,
        by="sb-01",
        procedure_number=1,
        outcome="granted",
        legal_basis="aufenthg-16b",
        reason=None,
    ).version
    version = service.issue_residence_document(
        case_id,
        expected_version=version,
        by="sb-01",
        kind="eat",
        legal_basis="aufenthg-16b",
        valid_from=date(2024, 3, 4),
        valid_until=date(2026, 3, 3),
        document_number="Y12345678",
        procedure_number=1,
    ).version
    version = service.add_note(
        case_id, expected_version=version, by="sb-01", text="Umzug angekündigt"
    ).version
    return MovedFile(case_id, opened.result, version, hashlib.sha256(pdf).hexdigest())


def ask_for(
    service: AkteService,
    *,
    person: MasterData = PERSON,
    file_number: str | None = None,
    office_id: str = OFFICE_B,
    from_office_id: str = OFFICE_A,
) -> tuple[OutgoingRequest, Answer]:
    """B's request, recorded, and its message."""
    outgoing = service.file_transfers.request_file(
        office_id=office_id,
        from_office_id=from_office_id,
        person=RequestedPerson(
            person.surname, person.given_names, person.date_of_birth, file_number
        ),
        moved_in_on=date(2024, 3, 1),
        by="sb-neu",
    )
    return outgoing, request_message(outgoing, subject_prefix=PREFIX, created=service.clock())


def deliver(message: Answer | bytes, service: AkteService, office_id: str) -> TransferHandled:
    """One delivery of a message to ``office_id``'s handling."""
    data = message if isinstance(message, bytes) else message.payload()
    return handle_transfer_message(
        data,
        transfers=service.file_transfers,
        office_id=office_id,
        now=service.clock(),
        subject_prefix=PREFIX,
    )


def forged_file(answer: Answer) -> bytes:
    """A's file with a fact changed on the way: the proof does not verify at B."""
    body = json.loads(answer.payload())
    body["akte"]["ereignisse"][1]["fakten"]["page_count"] = 3
    return json.dumps(body).encode()


def returned_file(service: AkteService) -> tuple[MovedFile, TransferHandled]:
    """A's file sent to B, both offices in this one store; B cannot take it over (the
    proof fails) and returns it; A records the return (the file is active again)."""
    moved = file_with_history(service, OFFICE_A)
    _request, message = ask_for(service)
    sent = deliver(message, service, OFFICE_A)
    assert sent.answer is not None
    returned = deliver(forged_file(sent.answer), service, OFFICE_B)
    assert returned.answer is not None
    handled = deliver(returned.answer, service, OFFICE_A)
    assert handled.outcome == "reopened"
    return moved, handled


class RecordingClient:
    """A core NATS client for tests: what is published (fire-and-forget) is recorded."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, payload))

    async def flush(self) -> None:
        return None
