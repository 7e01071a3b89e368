"""Case histories built in memory, shared by several tests."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import cast
from uuid import uuid4

from domain.acts import Act
from domain.case_file import (
    CaseFile,
    MasterData,
    RegistrationNoticeChanges,
    TakenOverPart,
    TakeOverProvenance,
    event_field_names,
)
from domain.deadlines import NoHolidays
from domain.personal import personal_fields
from domain.values import Validity

NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)


def rich_case() -> CaseFile:
    """A case file (events still pending) with at least one event of every kind."""
    act = Act(by="sb-01", at=NOW, recorded_at=NOW)
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2024-000001",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678", None),
        act=act,
    )
    case.correct_master_data(corrections={"address": "Weg 1"}, reason="Umzug", act=act)
    doc = case.attach_document(
        kind="passport_copy",
        sha256="d" * 64,
        size_bytes=1,
        media_type="application/pdf",
        page_count=1,
        source="scan",
        act=act,
    )
    case.review_document(document_number=doc, act=act)
    p = case.receive_procedure(
        channel="contact_form", topic="student_permit", legal_basis="aufenthg-16b", act=act
    )
    case.assign_procedure(procedure_number=p, assignee="sb-02", act=act)
    case.request_documents(procedure_number=p, what=["Pass"], due_on=date(2024, 6, 1), act=act)
    f = case.issue_fiction_certificate(
        kind="81_3_1",
        validity=Validity(date(2024, 5, 6), date(2024, 8, 6)),
        carrier_sheet_number="FB0000001",
        procedure_number=p,
        act=act,
    )
    case.extend_fiction_certificate(
        certificate_number=f, valid_until=date(2024, 11, 6), new_carrier_sheet_number=None, act=act
    )
    case.end_fiction_certificate(certificate_number=f, end_reason="decision", act=act)
    case.decide_procedure(
        procedure_number=p, outcome="granted", legal_basis="aufenthg-16b", reason=None, act=act
    )
    case.close_procedure(procedure_number=p, act=act)
    r = case.issue_residence_document(
        kind="eat",
        legal_basis="aufenthg-16b",
        validity=Validity(date(2024, 5, 6), date(2026, 5, 5)),
        document_number="Y00ABC123",
        procedure_number=p,
        act=act,
    )
    case.order_eat_card(residence_document_number=r, act=act)
    case.record_eat_card_arrived(residence_document_number=r, act=act)
    case.hand_over_eat_card(residence_document_number=r, act=act)
    case.extend_residence_document(
        residence_document_number=r, valid_until=date(2027, 5, 5), reason="Verlängerung", act=act
    )
    case.transfer_eat_to_new_passport(
        residence_document_number=r, new_card_number="Y00DEF456", act=act
    )
    case.end_residence_document(
        residence_document_number=r, end_reason="expired", reason=None, act=act
    )
    case.issue_integration_course_entitlement(legal_basis="aufenthg-44", act=act)
    case.impose_integration_course_obligation(legal_basis="aufenthg-44a", act=act)
    e = case.request_entry_consent(legal_basis="aufenthv-31", act=act)
    case.give_entry_consent(entry_procedure_number=e, valid_until=date(2024, 12, 1), act=act)
    e2 = case.request_entry_consent(legal_basis="aufenthv-31", act=act)
    case.refuse_entry_consent(entry_procedure_number=e2, reason="Nein", act=act)
    e3 = case.request_entry_consent(legal_basis="aufenthv-31", act=act)
    case.deem_entry_consent_given(
        entry_procedure_number=e3,
        holidays=NoHolidays(),
        today=NOW.date() + timedelta(days=30),  # the § 31 AufenthV period has passed
        act=act,
    )
    i = case.receive_inquiry(kind="civil_registry", act=act)
    case.answer_inquiry(inquiry_number=i, act=act)
    case.record_correspondence(
        direction="sent",
        counterpart_kind="authority",
        counterpart_name="Standesamt Musterstadt",
        subject="Auskunft",
        attachment_numbers=[doc],
        act=act,
    )
    case.add_note(text="Notiz", act=act)
    case.record_appointment_attendance(
        appointment_id=uuid4(),
        outcome="attended",
        service_point_id=uuid4(),
        appointment_type="fiction-certificate",
        procedure_kind="fiction_certificate",
        legal_basis="aufenthg-81-4",
        act=act,
    )
    case.record_registration_notice(
        notice_kind="aenderung_hauptwohnung",
        message_id="6b0f3c1e-2d4a-4f5b-9c8d-7e6f5a4b3c2d",
        sender="meldebehoerde-musterstadt",
        effective_on=NOW.date(),
        changes=RegistrationNoticeChanges(address="Neuer Weg 2"),
        act=act,
    )
    case.transfer_to_office(to_office_id="abh-anderswo", reason=None, act=act)
    return case


def closed_case() -> CaseFile:
    act = Act(by="sb-01", at=NOW, recorded_at=NOW)
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2024-000002",
        master_data=MasterData("Beispiel", "Omar", date(1980, 1, 1), "XXA", "P7654321", None),
        act=act,
    )
    # Handed over to another office, which returned it untaken: active again here.
    case.transfer_to_office(to_office_id="abh-anderswo", reason=None, act=act)
    case.return_hand_over(
        to_office_id="abh-anderswo",
        answer_message_id="2f6c3a1e-5b4d-4e7f-8a9b-0c1d2e3f4a5b",
        return_message_id="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
        reason="regel-verletzt",
        hints="nachweis: the proof does not verify",
        act=act,
    )
    case.close(closure_reason="died", act=act)
    # Five years after death (§ 68 AufenthV) the person's data is erased.
    case.erase_personal_data(
        legal_ground="aufenthv-68",
        rule_id="died-5y",
        approved_by="dsb-01",
        linked_ids=[],
        act=act,
    )
    return case


def taken_over_case() -> CaseFile:
    """The rich case's history taken over by the office the person moved to (§ 67
    AufenthV): a new file with provenance and one part per event of the previous file."""
    previous = rich_case()
    events = [cast(CaseFile.Event, event) for event in previous.collect_events()]
    act = Act(by="inbox", at=NOW, recorded_at=NOW)
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-nachbarstadt",
        reference="2024-000003",
        master_data=MasterData(**vars(previous.master_data)),
        act=act,
    )
    parts = []
    for event in events:
        kind = type(event)
        names = event_field_names(kind)
        sealed = personal_fields(kind)
        parts.append(
            TakenOverPart(
                source_kind=kind.__name__,
                source_version=event.originator_version,
                source_at=event.at,
                source_recorded_at=event.timestamp,
                source_by=event.by,
                facts={name: getattr(event, name) for name in names - sealed},
                personal={name: getattr(event, name) for name in names & sealed},
            )
        )
    case.take_over(
        provenance=TakeOverProvenance(
            from_office_id=previous.office_id,
            from_reference=previous.reference,
            from_case_id=previous.id.hex,
            request_id=str(uuid4()),
            answer_message_id=str(uuid4()),
            sent_at=NOW,
            sent_by="inbox",
            proof_sha256="e" * 64,
            proof_size_bytes=1,
            stream_head="f" * 64,
        ),
        parts=parts,
        act=act,
    )
    return case
