"""Online applications from the state's portal through the service
(:mod:`service_notices`), on SQLite and PostgreSQL: a procedure with its documents on a
matched file, else a contact submission; once per message; refused without a trace."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from uuid import uuid4

import pytest

from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import MasterData
from domain.intake import ContactSubmission
from service import AkteService
from service_intake import IncomingDocument
from service_notices import Applicant, InboundApplication, MessageRefused
from tests.service.test_notices import _TRIAGE_TOPIC, OFFICE, PERSON, head, open_case

# ------------------------------------------------------------ applications


def pdf_document() -> IncomingDocument:
    data = make_pdf(1, marker=str(uuid4()))
    return IncomingDocument(
        content=io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        media_type="application/pdf",
        page_count=1,
        name="antrag.pdf",
    )


def application(person: MasterData = PERSON, message_id: str | None = None) -> InboundApplication:
    return InboundApplication(
        office_id=OFFICE,
        sender="portal-land",
        message_id=message_id or str(uuid4()),
        message_type="Portal.Aufenthaltsantrag",
        applicant=Applicant(
            surname=person.surname,
            given_names=person.given_names,
            date_of_birth=person.date_of_birth,
            email="antrag@example.org",
        ),
        topic="extend_residence_permit",
        legal_basis="aufenthg-16b",
        text="Bitte um Verlängerung.",
        documents=[pdf_document()],
    )


def test_an_application_of_a_known_person_becomes_a_procedure_once(service: AkteService) -> None:
    case_id = open_case(service)
    message = application()
    outcome = service.notices.receive_application(message)
    assert (outcome.outcome, outcome.subject_id, outcome.procedure_number) == (
        "procedure",
        case_id,
        1,
    )
    case = service.get_case(case_id)
    [procedure] = case.procedures
    assert (procedure.channel, procedure.topic, procedure.legal_basis) == (
        "online_application",
        "extend_residence_permit",
        "aufenthg-16b",
    )
    [document] = case.documents
    assert document.sha256 == message.documents[0].sha256
    again = service.notices.receive_application(message)
    assert again.duplicate
    assert service.get_case(case_id).version == case.version


def test_an_application_of_an_unknown_person_becomes_a_contact_submission(
    service: AkteService,
) -> None:
    message = application()
    outcome = service.notices.receive_application(message)
    assert outcome.outcome == "submission"
    assert outcome.receipt is not None
    submission = service.find(outcome.subject_id, ContactSubmission)
    assert submission is not None
    assert submission.topic == "extend_residence_permit"
    assert len(submission.files) == 1
    before = head(service)
    again = service.notices.receive_application(message)
    assert (again.duplicate, again.subject_id) == (True, outcome.subject_id)
    assert head(service) == before


def test_an_application_with_an_unknown_topic_is_refused(service: AkteService) -> None:
    before = head(service)
    with pytest.raises(MessageRefused) as refused:
        service.notices.receive_application(replace(application(), topic="no_such_topic"))
    assert refused.value.field == "topic"
    assert head(service) == before
    assert not service.recorder.select_notifications(start=1, limit=10, topics=[_TRIAGE_TOPIC])
