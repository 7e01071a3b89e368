"""Unit tests of the case file: every command, every rule, no store involved."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest

from domain.acts import FUTURE_TOLERANCE, Act
from domain.case_file import CaseFile, MasterData
from domain.errors import (
    BusinessTimeInFuture,
    CarrierSheetExhausted,
    CaseFileNotActive,
    DocumentAlreadyReviewed,
    DocumentNotFound,
    DomainError,
    EntryProcedureDecided,
    FictionCertificateEnded,
    InquiryAlreadyAnswered,
    InvalidValue,
    NothingToCorrect,
    OpenProceduresRemain,
    ProcedureNotFound,
    ProcedureStateConflict,
    ResidenceDocumentEnded,
)
from domain.personal import personal_fields
from domain.values import Validity

NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
SHA = "a" * 64


def act(by: str = "sb-01", at: datetime = NOW) -> Act:
    return Act(by=by, at=at, recorded_at=NOW)


def master_data(**changes: object) -> MasterData:
    data = MasterData(
        surname="Beispiel",
        given_names="Amal",
        date_of_birth=date(1991, 2, 3),
        nationality="SYR",
        passport_number="N12345678",
        address="Hauptstraße 1, 12345 Musterstadt",
    )
    for name, value in changes.items():
        setattr(data, name, value)
    return data


def new_case() -> CaseFile:
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2024-000001",
        master_data=master_data(),
        act=act(),
    )
    case.collect_events()
    return case


def rejects(
    case: CaseFile, error: type[DomainError], command: Callable[[CaseFile], object]
) -> DomainError:
    """Assert the command raises ``error`` and leaves neither an event nor a change."""
    before = repr(case)
    pending_before = list(case.pending_events)
    with pytest.raises(error) as raised:
        command(case)
    assert case.pending_events == pending_before
    assert repr(case) == before
    return raised.value


def test_open_records_who_when_and_master_data() -> None:
    case_id = uuid4()
    case = CaseFile.open(
        case_id=case_id,
        office_id="abh-musterstadt",
        reference="2024-000001",
        master_data=master_data(),
        act=act(at=NOW - timedelta(days=1)),
    )
    [opened] = case.collect_events()
    assert isinstance(opened, CaseFile.Opened)
    assert (opened.by, opened.at, opened.timestamp) == ("sb-01", NOW - timedelta(days=1), NOW)
    assert case.id == case_id
    assert case.version == 1
    assert case.master_data == master_data()
    assert case.status == "active"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("surname", " "),
        ("nationality", "Syria"),
        ("passport_number", "n-123"),
        ("date_of_birth", date(1850, 1, 1)),
        ("date_of_birth", NOW.date() + timedelta(days=1)),
    ],
)
def test_open_rejects_malformed_master_data(field: str, value: object) -> None:
    with pytest.raises(InvalidValue) as raised:
        CaseFile.open(
            case_id=uuid4(),
            office_id="abh-musterstadt",
            reference="2024-000001",
            master_data=master_data(**{field: value}),
            act=act(),
        )
    assert raised.value.field == field


def test_error_messages_do_not_contain_the_rejected_personal_value() -> None:
    with pytest.raises(InvalidValue) as raised:
        CaseFile.open(
            case_id=uuid4(),
            office_id="abh-musterstadt",
            reference="2024-000001",
            master_data=master_data(passport_number="secret-passport"),
            act=act(),
        )
    assert "secret-passport" not in str(raised.value)


def test_act_rejects_business_time_in_the_future_and_naive_times() -> None:
    with pytest.raises(BusinessTimeInFuture) as raised:
        Act(by="sb-01", at=NOW + FUTURE_TOLERANCE + timedelta(seconds=1), recorded_at=NOW)
    assert raised.value.field == "at"
    # Within the tolerance a clock running ahead means "now": the recorded time.
    assert Act(by="sb-01", at=NOW + FUTURE_TOLERANCE, recorded_at=NOW).at == NOW
    with pytest.raises(InvalidValue):
        Act(by="sb-01", at=NOW.replace(tzinfo=None), recorded_at=NOW)
    with pytest.raises(InvalidValue):
        Act(by="", at=NOW, recorded_at=NOW)


def test_correct_master_data_records_only_changed_fields_with_reason() -> None:
    case = new_case()
    case.correct_master_data(
        corrections={"surname": "Beispiel-Neu", "nationality": "SYR"},
        reason="Heirat",
        act=act(),
    )
    [event] = case.collect_events()
    assert isinstance(event, CaseFile.MasterDataCorrected)
    assert event.surname == "Beispiel-Neu"
    assert event.nationality is None
    assert event.reason == "Heirat"
    assert case.master_data.surname == "Beispiel-Neu"
    rejects(
        case,
        NothingToCorrect,
        lambda c: c.correct_master_data(
            corrections={"surname": "Beispiel-Neu"}, reason="x", act=act()
        ),
    )
    error = rejects(
        case,
        InvalidValue,
        lambda c: c.correct_master_data(corrections={"shoe_size": 42}, reason="x", act=act()),
    )
    assert isinstance(error, InvalidValue)
    assert error.field == "shoe_size"


def test_attach_document_numbers_documents_and_checks_metadata() -> None:
    case = new_case()
    first = case.attach_document(
        kind="passport_copy",
        sha256=SHA,
        size_bytes=1000,
        media_type="application/pdf",
        page_count=2,
        source="scan",
        act=act(),
    )
    second = case.attach_document(
        kind="application_form",
        sha256="b" * 64,
        size_bytes=10,
        media_type="image/jpeg",
        page_count=1,
        source="contact_form",
        act=act(),
    )
    assert (first, second) == (1, 2)
    assert case.documents[1].source == "contact_form"
    case.collect_events()
    for bad in ({"sha256": "xyz"}, {"size_bytes": 0}, {"page_count": 0}, {"source": "fax"}):
        kwargs: dict[str, object] = {
            "kind": "passport_copy",
            "sha256": SHA,
            "size_bytes": 1,
            "media_type": "application/pdf",
            "page_count": 1,
            "source": "scan",
            **bad,
        }
        error = rejects(case, InvalidValue, lambda c, kw=kwargs: c.attach_document(**kw, act=act()))  # type: ignore[misc]
        assert isinstance(error, InvalidValue)
        assert error.field == next(iter(bad))


def test_a_document_is_reviewed_once() -> None:
    case = new_case()
    number = case.attach_document(
        kind="passport_copy",
        sha256=SHA,
        size_bytes=1,
        media_type="application/pdf",
        page_count=1,
        source="contact_form",
        act=act(),
    )
    case.review_document(document_number=number, act=act(by="sb-02"))
    assert case.documents[0].reviewed_at == NOW
    case.collect_events()
    rejects(
        case, DocumentAlreadyReviewed, lambda c: c.review_document(document_number=1, act=act())
    )
    rejects(case, DocumentNotFound, lambda c: c.review_document(document_number=2, act=act()))


def test_procedure_lifecycle() -> None:
    case = new_case()
    number = case.receive_procedure(
        channel="contact_form",
        topic="extend_residence_permit",
        legal_basis="aufenthg-16b",
        act=act(),
    )
    case.assign_procedure(procedure_number=number, assignee="sb-02", act=act())
    case.assign_procedure(procedure_number=number, assignee="sb-03", act=act(by="tl-01"))
    case.request_documents(
        procedure_number=number,
        what=["Immatrikulationsbescheinigung"],
        due_on=NOW.date() + timedelta(days=14),
        act=act(),
    )
    case.decide_procedure(
        procedure_number=number, outcome="granted", legal_basis=None, reason=None, act=act()
    )
    case.close_procedure(procedure_number=number, act=act())
    kinds = [type(e).__name__ for e in case.collect_events()]
    assert kinds == [
        "ProcedureReceived",
        "ProcedureAssigned",
        "ProcedureAssigned",
        "DocumentsRequested",
        "ProcedureDecided",
        "ProcedureClosed",
    ]
    procedure = case.procedures[0]
    assert (procedure.status, procedure.assignee, procedure.outcome) == (
        "closed",
        "sb-03",
        "granted",
    )


def test_procedure_rules() -> None:
    case = new_case()
    number = case.receive_procedure(
        channel="mail", topic="general_question", legal_basis=None, act=act()
    )
    case.collect_events()
    rejects(
        case,
        ProcedureNotFound,
        lambda c: c.assign_procedure(procedure_number=9, assignee="x", act=act()),
    )
    rejects(
        case,
        ProcedureStateConflict,
        lambda c: c.close_procedure(procedure_number=number, act=act()),
    )
    rejects(
        case,
        InvalidValue,
        lambda c: c.request_documents(
            procedure_number=number, what=["Pass"], due_on=NOW.date(), act=act()
        ),
    )
    rejects(
        case,
        InvalidValue,
        lambda c: c.request_documents(
            procedure_number=number, what=[], due_on=NOW.date() + timedelta(days=1), act=act()
        ),
    )
    rejects(
        case,
        InvalidValue,
        lambda c: c.decide_procedure(
            procedure_number=number, outcome="refused", legal_basis=None, reason=None, act=act()
        ),
    )
    case.assign_procedure(procedure_number=number, assignee="sb-01", act=act())
    case.collect_events()
    rejects(
        case,
        ProcedureStateConflict,
        lambda c: c.assign_procedure(procedure_number=number, assignee="sb-01", act=act()),
    )
    case.decide_procedure(
        procedure_number=number,
        outcome="refused",
        legal_basis=None,
        reason="Unterlagen fehlen",
        act=act(),
    )
    case.collect_events()
    rejects(
        case,
        ProcedureStateConflict,
        lambda c: c.decide_procedure(
            procedure_number=number, outcome="granted", legal_basis=None, reason=None, act=act()
        ),
    )
    rejects(
        case,
        ProcedureStateConflict,
        lambda c: c.assign_procedure(procedure_number=number, assignee="sb-02", act=act()),
    )


def issue_eat(case: CaseFile) -> int:
    number = case.issue_residence_document(
        kind="eat",
        legal_basis="aufenthg-16b",
        validity=Validity(date(2024, 5, 1), date(2026, 4, 30)),
        document_number="Y00ABC123",
        procedure_number=None,
        act=act(),
    )
    case.collect_events()
    return number


def test_validity_must_end_after_it_starts() -> None:
    with pytest.raises(InvalidValue) as raised:
        Validity(date(2024, 5, 1), date(2024, 5, 1))
    assert raised.value.field == "valid_until"


def test_eat_card_lifecycle_extension_transfer_and_end() -> None:
    case = new_case()
    number = issue_eat(case)
    rejects(
        case,
        ProcedureStateConflict,
        lambda c: c.hand_over_eat_card(residence_document_number=number, act=act()),
    )
    case.order_eat_card(residence_document_number=number, act=act())
    rejects(
        case,
        ProcedureStateConflict,
        lambda c: c.order_eat_card(residence_document_number=number, act=act()),
    )
    case.record_eat_card_arrived(residence_document_number=number, act=act())
    case.hand_over_eat_card(residence_document_number=number, act=act())
    case.extend_residence_document(
        residence_document_number=number, valid_until=date(2027, 4, 30), reason=None, act=act()
    )
    rejects(
        case,
        InvalidValue,
        lambda c: c.extend_residence_document(
            residence_document_number=number, valid_until=date(2027, 4, 30), reason=None, act=act()
        ),
    )
    case.transfer_eat_to_new_passport(
        residence_document_number=number, new_card_number="Y00XYZ999", act=act()
    )
    document = case.residence_documents[0]
    assert (document.document_number, document.transfers_to_new_passport, document.card_status) == (
        "Y00XYZ999",
        1,
        "ordered",
    )
    assert document.valid_until == date(2027, 4, 30)
    assert document.extensions == 1
    rejects(
        case,
        InvalidValue,
        lambda c: c.end_residence_document(
            residence_document_number=number, end_reason="revoked", reason=None, act=act()
        ),
    )
    case.end_residence_document(
        residence_document_number=number, end_reason="revoked", reason="§52 Abs. 1", act=act()
    )
    case.collect_events()
    rejects(
        case,
        ResidenceDocumentEnded,
        lambda c: c.extend_residence_document(
            residence_document_number=number, valid_until=date(2028, 1, 1), reason=None, act=act()
        ),
    )


def test_card_steps_apply_only_to_an_eat() -> None:
    case = new_case()
    number = case.issue_residence_document(
        kind="duldung",
        legal_basis="aufenthg-60a",
        validity=Validity(date(2024, 5, 1), date(2024, 8, 1)),
        document_number="D1234567",
        procedure_number=None,
        act=act(),
    )
    case.collect_events()
    rejects(
        case, InvalidValue, lambda c: c.order_eat_card(residence_document_number=number, act=act())
    )
    rejects(
        case,
        InvalidValue,
        lambda c: c.transfer_eat_to_new_passport(
            residence_document_number=number, new_card_number="Y00XYZ999", act=act()
        ),
    )


def test_fiction_certificate_two_extensions_per_carrier_sheet() -> None:
    case = new_case()
    renewal = case.receive_procedure(
        channel="mail", topic="extend_residence_permit", legal_basis=None, act=act()
    )
    number = case.issue_fiction_certificate(
        kind="81_4",
        validity=Validity(date(2024, 5, 1), date(2024, 8, 1)),
        carrier_sheet_number="FB1000001",
        procedure_number=renewal,
        order_basis="timely_application",
        previous_title_valid_until=date(2024, 5, 31),
        act=act(),
    )
    case.extend_fiction_certificate(
        certificate_number=number,
        valid_until=date(2024, 11, 1),
        new_carrier_sheet_number=None,
        act=act(),
    )
    case.extend_fiction_certificate(
        certificate_number=number,
        valid_until=date(2025, 2, 1),
        new_carrier_sheet_number=None,
        act=act(),
    )
    case.collect_events()
    error = rejects(
        case,
        CarrierSheetExhausted,
        lambda c: c.extend_fiction_certificate(
            certificate_number=number,
            valid_until=date(2025, 5, 1),
            new_carrier_sheet_number=None,
            act=act(),
        ),
    )
    assert "new carrier sheet" in error.message
    case.extend_fiction_certificate(
        certificate_number=number,
        valid_until=date(2025, 5, 1),
        new_carrier_sheet_number="FB1000002",
        act=act(),
    )
    certificate = case.fiction_certificates[0]
    assert (certificate.extensions, certificate.extensions_on_current_sheet) == (3, 1)
    assert certificate.carrier_sheet_number == "FB1000002"
    case.end_fiction_certificate(certificate_number=number, end_reason="decision", act=act())
    case.collect_events()
    rejects(
        case,
        FictionCertificateEnded,
        lambda c: c.extend_fiction_certificate(
            certificate_number=number,
            valid_until=date(2026, 1, 1),
            new_carrier_sheet_number="FB1000003",
            act=act(),
        ),
    )


def test_integration_course_entry_procedure_inquiries() -> None:
    case = new_case()
    case.issue_integration_course_entitlement(legal_basis="aufenthg-44", act=act())
    case.impose_integration_course_obligation(legal_basis="aufenthg-44a", act=act())
    entry = case.request_entry_consent(legal_basis="aufenthv-31", act=act())
    case.give_entry_consent(entry_procedure_number=entry, valid_until=date(2024, 12, 31), act=act())
    case.collect_events()
    rejects(
        case,
        EntryProcedureDecided,
        lambda c: c.refuse_entry_consent(entry_procedure_number=entry, reason="x", act=act()),
    )
    second = case.request_entry_consent(legal_basis="aufenthg-81a", act=act())
    case.refuse_entry_consent(entry_procedure_number=second, reason="Gefährdung", act=act())
    inquiry = case.receive_inquiry(kind="naturalisation", act=act())
    case.answer_inquiry(inquiry_number=inquiry, act=act())
    case.collect_events()
    rejects(
        case, InquiryAlreadyAnswered, lambda c: c.answer_inquiry(inquiry_number=inquiry, act=act())
    )
    assert [c.kind for c in case.integration_courses] == ["entitlement", "obligation"]
    assert [p.status for p in case.entry_procedures] == ["consent_given", "consent_refused"]


@pytest.mark.parametrize(
    ("command", "basis"),
    [
        ("issue_integration_course_entitlement", "aufenthg-16b"),
        ("issue_integration_course_entitlement", "aufenthg-44a"),
        ("issue_integration_course_entitlement", "aufenthg-440"),
        ("impose_integration_course_obligation", "asylg-55"),
        ("impose_integration_course_obligation", "aufenthg-44"),
    ],
)
def test_an_integration_course_rests_on_its_paragraph_only(command: str, basis: str) -> None:
    """§ 44 AufenthG grants the entitlement, § 44a imposes the obligation: another basis
    would be counted as such in the yearly report."""
    case = new_case()
    case.collect_events()
    with pytest.raises(InvalidValue, match="rests on"):
        getattr(case, command)(legal_basis=basis, act=act())
    assert case.collect_events() == []
    case.issue_integration_course_entitlement(legal_basis="aufenthg-44-1-1", act=act())
    case.impose_integration_course_obligation(legal_basis="aufenthg-44a-1-2", act=act())
    assert [c.kind for c in case.integration_courses] == ["entitlement", "obligation"]


def test_correspondence_needs_attached_documents_and_notes_record_author() -> None:
    case = new_case()
    rejects(
        case,
        InvalidValue,
        lambda c: c.record_correspondence(
            direction="received",
            counterpart_kind="court",
            counterpart_name="VG Musterstadt",
            subject="Az. 1 K 1/24",
            attachment_numbers=[1],
            act=act(),
        ),
    )
    case.add_note(text="Termin telefonisch vereinbart", act=act(by="sb-04"))
    assert case.notes[0].by == "sb-04"


def test_closing_requires_decided_procedures_and_stops_new_work() -> None:
    case = new_case()
    number = case.receive_procedure(
        channel="mail", topic="general_question", legal_basis=None, act=act()
    )
    case.collect_events()
    rejects(case, OpenProceduresRemain, lambda c: c.close(closure_reason="naturalised", act=act()))
    rejects(
        case,
        OpenProceduresRemain,
        lambda c: c.transfer_to_office(to_office_id="abh-anderswo", reason=None, act=act()),
    )
    case.decide_procedure(
        procedure_number=number, outcome="withdrawn", legal_basis=None, reason=None, act=act()
    )
    case.close(closure_reason="naturalised", act=act())
    case.collect_events()
    assert case.status == "closed"
    rejects(
        case,
        CaseFileNotActive,
        lambda c: c.receive_procedure(
            channel="mail", topic="general_question", legal_basis=None, act=act()
        ),
    )
    rejects(case, CaseFileNotActive, lambda c: c.close(closure_reason="died", act=act()))
    # Letters, notes and inquiries still arrive for a closed file.
    case.add_note(text="Akte archiviert", act=act())
    case.receive_inquiry(kind="civil_registry", act=act())


def test_transfer_to_another_office() -> None:
    case = new_case()
    rejects(
        case,
        InvalidValue,
        lambda c: c.transfer_to_office(to_office_id="abh-musterstadt", reason=None, act=act()),
    )
    case.transfer_to_office(to_office_id="abh-anderswo", reason="Umzug", act=act())
    assert (case.status, case.transferred_to) == ("transferred", "abh-anderswo")
    case.collect_events()
    rejects(
        case,
        CaseFileNotActive,
        lambda c: c.issue_integration_course_entitlement(legal_basis="aufenthg-44", act=act()),
    )


def test_personal_fields_are_marked() -> None:
    assert personal_fields(CaseFile.Opened) == {
        "surname",
        "given_names",
        "date_of_birth",
        "nationality",
        "passport_number",
        "address",
    }
    assert "text" in personal_fields(CaseFile.NoteAdded)
    assert "document_number" in personal_fields(CaseFile.ResidenceDocumentIssued)
    assert "legal_basis" not in personal_fields(CaseFile.ResidenceDocumentIssued)
    assert personal_fields(CaseFile.ProcedureReceived) == frozenset()
