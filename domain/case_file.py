"""The case file (Ausländerakte): one per person, and every action recorded on it.

Each public method is a command: it checks the rules (``check_*``) first and only then
triggers an event, so a rejected command leaves neither an event nor a changed state.
Each event's ``apply`` only changes state; it never re-checks rules, so history written
under older rules always replays.

Every event carries ``by`` (acting user id), ``at`` (business time) and the library's
``timestamp`` (recorded time); fields holding personal data are marked ``Personal``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date, datetime
from typing import Any, Final, Literal, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.acts import Act
from domain.deadlines import (
    DEEMED_ENTRY_CONSENT,
    DeadlineNotPassed,
    DeadlineRuleNotApplicable,
    HolidayCalendar,
    has_passed,
    legal_day,
)
from domain.erasure import ERASURE_GROUNDS
from domain.errors import (
    BusinessTimeBeforeFact,
    CarrierSheetExhausted,
    CaseFileErased,
    CaseFileNotActive,
    DocumentAlreadyReviewed,
    DocumentNotFound,
    EntryProcedureDecided,
    EntryProcedureNotFound,
    FictionCertificateEnded,
    FictionCertificateNotFound,
    InquiryAlreadyAnswered,
    InquiryNotFound,
    InvalidValue,
    NothingToCorrect,
    OpenProceduresRemain,
    ProcedureNotFound,
    ProcedureStateConflict,
    ResidenceDocumentEnded,
    ResidenceDocumentNotFound,
)
from domain.personal import Personal, personal_fields, redacted_fields
from domain.values import (
    MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET,
    CaseFileStatus,
    Channel,
    ClosureReason,
    CounterpartKind,
    DecisionOutcome,
    Direction,
    DocumentSource,
    EatCardStatus,
    EntryProcedureStatus,
    FictionEndReason,
    FictionKind,
    FictionOrderBasis,
    InquiryKind,
    LawfulEvent,
    ProcedureStatus,
    ResidenceDocumentEndReason,
    ResidenceDocumentKind,
    Validity,
    require_choice,
    require_document_number,
    require_media_type,
    require_nationality,
    require_sha256,
    require_text,
)

_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,59}$")
MAX_FREE_TEXT: Final = 4000
MAX_PAGES: Final = 100_000
HandOverReturnReason = Literal[
    "nachricht-unlesbar", "schema-verletzt", "regel-verletzt", "nachrichtentyp-unbekannt"
]
"""Why the other office returned a hand-over (the reasons of a return to the sender)."""
HAND_OVER_HINTS_MAX: Final = 2000

V = TypeVar("V")


def _require_paragraph(legal_basis: str, paragraph: str, what: str) -> None:
    """``legal_basis`` is ``paragraph`` or one of its sub-codes (``aufenthg-44-1-1``): the
    law grants ``what`` under that paragraph only, and the yearly report counts it so."""
    if legal_basis != paragraph and not legal_basis.startswith(paragraph + "-"):
        raise InvalidValue("legal_basis", f"{what} rests on {paragraph} (or one of its sub-codes)")


def require_code(field_name: str, value: str) -> None:
    """Codes (legal bases, topics, offices, document kinds): lower-case, no spaces."""
    if not _CODE.fullmatch(value):
        raise InvalidValue(field_name, "must be a code of lower-case letters, digits, - and _")


def _optional_text(field_name: str, value: str | None, max_length: int = MAX_FREE_TEXT) -> None:
    if value is not None:
        require_text(field_name, value, max_length=max_length, line_breaks=True)


# -- State of the parts of a case file. Plain mutable dataclasses, because snapshots
# -- store them; they are changed only by event ``apply`` methods.


@dataclass
class MasterData:
    """Personal master data (Stammdaten) of the person the file is about."""

    surname: str
    given_names: str
    date_of_birth: date
    nationality: str
    passport_number: str
    address: str | None = None


REGISTRATION_NOTICE_KINDS: Final = (
    "anmeldung",
    "abmeldung",
    "aenderung_hauptwohnung",
    "namensaenderung",
    "aenderung_staatsangehoerigkeit",
    "tod",
)
"""The registration office's notices to the foreigners' office (§ 72 (1) AufenthV) that
Akte records, named after XAusländer's occasions (Anlässe): registration, deregistration,
change of the main residence (a move within the city), name change, change of
nationality, death."""

REGISTRATION_NOTICE_CHANGES: Final[dict[str, frozenset[str]]] = {
    "anmeldung": frozenset({"address"}),
    "abmeldung": frozenset(),
    "aenderung_hauptwohnung": frozenset({"address"}),
    "namensaenderung": frozenset({"surname", "given_names"}),
    "aenderung_staatsangehoerigkeit": frozenset({"nationality"}),
    "tod": frozenset(),
}
"""Which master data each kind of notice may change."""

REGISTRATION_NOTICE_REQUIRED: Final = frozenset(
    {"anmeldung", "aenderung_hauptwohnung", "namensaenderung", "aenderung_staatsangehoerigkeit"}
)
"""Kinds of notice that are empty without a change."""


@dataclass(frozen=True)
class RegistrationNoticeChanges:
    """The new values a registration office's notice brings; ``None``: unchanged."""

    address: str | None = None
    surname: str | None = None
    given_names: str | None = None
    nationality: str | None = None


@dataclass
class AttachedDocument:
    """A document on file; the bytes live in the document store, addressed by sha256."""

    number: int
    kind: str
    sha256: str
    size_bytes: int
    media_type: str
    page_count: int
    source: DocumentSource
    attached_at: datetime
    reviewed_at: datetime | None = None


@dataclass
class DocumentRequest:
    what: list[str]
    due_on: date
    requested_at: datetime


@dataclass
class Procedure:
    """A procedure (Vorgang) inside the case file."""

    number: int
    channel: Channel
    topic: str
    legal_basis: str | None
    received_at: datetime
    status: ProcedureStatus = "received"
    assignee: str | None = None
    document_requests: list[DocumentRequest] = field(default_factory=list)
    outcome: DecisionOutcome | None = None
    decided_at: datetime | None = None
    closed_at: datetime | None = None
    changed_at: datetime | None = None
    """Business time of its last event (None in snapshots from before it was kept)."""

    @property
    def is_open(self) -> bool:
        """Open until decided."""
        return self.status not in ("decided", "closed")


@dataclass
class ResidenceDocument:
    """eAT (§78 AufenthG), Duldung (§60a AufenthG) or Aufenthaltsgestattung (§55 AsylG)."""

    number: int
    kind: ResidenceDocumentKind
    legal_basis: str
    valid_from: date
    valid_until: date
    document_number: str
    issued_at: datetime
    extensions: int = 0
    card_status: EatCardStatus = "not_ordered"
    transfers_to_new_passport: int = 0
    ended_reason: ResidenceDocumentEndReason | None = None
    ended_at: datetime | None = None
    changed_at: datetime | None = None
    """Business time of its last event: extension, card ordered, arrived, handed over,
    transferred (None in snapshots from before it was kept)."""

    @property
    def is_ended(self) -> bool:
        return self.ended_reason is not None


@dataclass
class FictionCertificate:
    """Fiktionsbescheinigung (§81 (3), (4) AufenthG, form Anlage D3 AufenthV)."""

    number: int
    kind: FictionKind
    valid_from: date
    valid_until: date
    carrier_sheet_number: str
    issued_at: datetime
    procedure_number: int | None = None
    extensions: int = 0
    extensions_on_current_sheet: int = 0
    ended_reason: FictionEndReason | None = None
    ended_at: datetime | None = None
    changed_at: datetime | None = None
    """Business time of its last extension (None: none, or a snapshot from before)."""
    order_basis: FictionOrderBasis | None = None
    """§ 81 (4): why the previous title continues (None for § 81 (3) and old events)."""

    @property
    def is_ended(self) -> bool:
        return self.ended_reason is not None


@dataclass
class EntryProcedure:
    """Pre-approval for a visa (Vorabzustimmung, §31 AufenthV, §81a AufenthG)."""

    number: int
    legal_basis: str
    requested_at: datetime
    status: EntryProcedureStatus = "requested"
    consent_valid_until: date | None = None
    decided_at: datetime | None = None
    deemed: bool = False
    """The consent counts as given by the office's silence (§ 31 Abs. 1 AufenthV), not
    by a decision (False in snapshots from before it was kept)."""


@dataclass
class Inquiry:
    """A civil-registry (Standesamt) or naturalisation inquiry about the person."""

    number: int
    kind: InquiryKind
    received_at: datetime
    answered_at: datetime | None = None


@dataclass
class IntegrationCourseRecord:
    """Entitlement (§44 AufenthG) or obligation (§44a AufenthG) to attend a course."""

    kind: str
    legal_basis: str
    recorded_at: datetime


@dataclass
class Correspondence:
    number: int
    direction: Direction
    counterpart_kind: CounterpartKind
    counterpart_name: str
    subject: str
    attachment_numbers: list[int]
    at: datetime


@dataclass
class Note:
    number: int
    text: str
    by: str
    at: datetime


def _find(items: list[V], number: int, error: Exception) -> V:
    """Parts of a case file are numbered 1, 2, ... in order and never removed."""
    if 1 <= number <= len(items):
        return items[number - 1]
    raise error


class CaseFile(Aggregate):
    """The case file (Ausländerakte) of one person, kept by one office."""

    personal_data_erased_at: datetime | None = None
    """When the person's data was erased (key destroyed); ``None``: it was not. A class
    default rather than set in ``__init__``, so that snapshots taken before erasure
    existed still load."""

    opened_at: datetime | None = None
    """Business time of the opening; ``None`` only in snapshots from before it was kept
    (a class default for the same reason)."""

    ended_at: datetime | None = None
    """Business time of the transfer or closure; ``None``: neither (or an old snapshot)."""

    taken_over_from: str | None = None
    """The office this file was taken over from (:class:`CaseFile.TakenOver`); ``None``:
    opened here (a class default, so that older snapshots still load)."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.reference: str = ""
        self.master_data: MasterData = MasterData("", "", date.min, "", "")
        self.status: CaseFileStatus = "active"
        self.transferred_to: str | None = None
        self.closure_reason: ClosureReason | None = None
        self.documents: list[AttachedDocument] = []
        self.procedures: list[Procedure] = []
        self.residence_documents: list[ResidenceDocument] = []
        self.fiction_certificates: list[FictionCertificate] = []
        self.entry_procedures: list[EntryProcedure] = []
        self.inquiries: list[Inquiry] = []
        self.integration_courses: list[IntegrationCourseRecord] = []
        self.correspondence: list[Correspondence] = []
        self.notes: list[Note] = []

    # ------------------------------------------------------------------ events

    class Event(LawfulEvent, Aggregate.Event):
        """Base of every case-file event: who acted (``by``) and when (``at``)."""

        by: str
        at: datetime

    class Opened(Event, Aggregate.Created):
        office_id: str
        reference: str
        surname: Personal[str]
        given_names: Personal[str]
        date_of_birth: Personal[date]
        nationality: Personal[str]
        passport_number: Personal[str]
        address: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            case.opened_at = self.at
            case.office_id = self.office_id
            case.reference = self.reference
            case.master_data = MasterData(
                surname=self.surname,
                given_names=self.given_names,
                date_of_birth=self.date_of_birth,
                nationality=self.nationality,
                passport_number=self.passport_number,
                address=self.address,
            )

    class MasterDataCorrected(Event):
        """Only the corrected fields are set; ``None`` means unchanged."""

        surname: Personal[str | None]
        given_names: Personal[str | None]
        date_of_birth: Personal[date | None]
        nationality: Personal[str | None]
        passport_number: Personal[str | None]
        address: Personal[str | None]
        reason: Personal[str]

        def apply(self, case: CaseFile) -> None:
            for name in _MASTER_DATA_FIELDS:
                value = getattr(self, name)
                if value is not None:
                    setattr(case.master_data, name, value)

    class DocumentAttached(Event):
        document_number: int
        kind: str
        sha256: str
        size_bytes: int
        media_type: str
        page_count: int
        source: DocumentSource

        def apply(self, case: CaseFile) -> None:
            case.documents.append(
                AttachedDocument(
                    number=self.document_number,
                    kind=self.kind,
                    sha256=self.sha256,
                    size_bytes=self.size_bytes,
                    media_type=self.media_type,
                    page_count=self.page_count,
                    source=self.source,
                    attached_at=self.at,
                )
            )

    class DocumentReviewed(Event):
        """A caseworker has looked at an attached document (e.g. an upload)."""

        document_number: int

        def apply(self, case: CaseFile) -> None:
            case.documents[self.document_number - 1].reviewed_at = self.at

    class ProcedureReceived(Event):
        procedure_number: int
        channel: Channel
        topic: str
        legal_basis: str | None

        def apply(self, case: CaseFile) -> None:
            case.procedures.append(
                Procedure(
                    number=self.procedure_number,
                    channel=self.channel,
                    topic=self.topic,
                    legal_basis=self.legal_basis,
                    received_at=self.at,
                )
            )

    class ProcedureAssigned(Event):
        procedure_number: int
        assignee: str

        def apply(self, case: CaseFile) -> None:
            procedure = case.procedures[self.procedure_number - 1]
            procedure.changed_at = self.at
            procedure.assignee = self.assignee
            if procedure.status == "received":
                procedure.status = "assigned"

    class DocumentsRequested(Event):
        procedure_number: int
        what: Personal[list[str]]
        due_on: date

        def apply(self, case: CaseFile) -> None:
            procedure = case.procedures[self.procedure_number - 1]
            procedure.changed_at = self.at
            procedure.document_requests.append(
                DocumentRequest(what=list(self.what), due_on=self.due_on, requested_at=self.at)
            )
            procedure.status = "documents_requested"

    class ProcedureDecided(Event):
        procedure_number: int
        outcome: DecisionOutcome
        legal_basis: str | None
        reason: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            procedure = case.procedures[self.procedure_number - 1]
            procedure.status = "decided"
            procedure.outcome = self.outcome
            procedure.decided_at = self.at
            procedure.changed_at = self.at
            if self.legal_basis is not None:
                procedure.legal_basis = self.legal_basis

    class ProcedureClosed(Event):
        procedure_number: int

        def apply(self, case: CaseFile) -> None:
            procedure = case.procedures[self.procedure_number - 1]
            procedure.status = "closed"
            procedure.closed_at = self.at
            procedure.changed_at = self.at

    class ResidenceDocumentIssued(Event):
        residence_document_number: int
        kind: ResidenceDocumentKind
        legal_basis: str
        valid_from: date
        valid_until: date
        document_number: Personal[str]
        procedure_number: int | None

        def apply(self, case: CaseFile) -> None:
            case.residence_documents.append(
                ResidenceDocument(
                    number=self.residence_document_number,
                    kind=self.kind,
                    legal_basis=self.legal_basis,
                    valid_from=self.valid_from,
                    valid_until=self.valid_until,
                    document_number=self.document_number,
                    issued_at=self.at,
                )
            )

    class ResidenceDocumentExtended(Event):
        residence_document_number: int
        previous_valid_until: date
        valid_until: date
        reason: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            document = case.residence_documents[self.residence_document_number - 1]
            document.valid_until = self.valid_until
            document.extensions += 1
            document.changed_at = self.at

    class EatCardOrdered(Event):
        """Biometrics taken and the card ordered from the Bundesdruckerei (4-6 weeks)."""

        residence_document_number: int

        def apply(self, case: CaseFile) -> None:
            document = case.residence_documents[self.residence_document_number - 1]
            document.card_status = "ordered"
            document.changed_at = self.at

    class EatCardArrived(Event):
        residence_document_number: int

        def apply(self, case: CaseFile) -> None:
            document = case.residence_documents[self.residence_document_number - 1]
            document.card_status = "arrived"
            document.changed_at = self.at

    class EatCardHandedOver(Event):
        residence_document_number: int

        def apply(self, case: CaseFile) -> None:
            document = case.residence_documents[self.residence_document_number - 1]
            document.card_status = "handed_over"
            document.changed_at = self.at

    class EatTransferredToNewPassport(Event):
        """Übertrag: the same title on a new card for a new passport."""

        residence_document_number: int
        new_card_number: Personal[str]

        def apply(self, case: CaseFile) -> None:
            document = case.residence_documents[self.residence_document_number - 1]
            document.document_number = self.new_card_number
            document.transfers_to_new_passport += 1
            document.card_status = "ordered"
            document.changed_at = self.at

    class ResidenceDocumentEnded(Event):
        residence_document_number: int
        end_reason: ResidenceDocumentEndReason
        reason: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            document = case.residence_documents[self.residence_document_number - 1]
            document.ended_reason = self.end_reason
            document.ended_at = self.at

    class FictionCertificateIssued(Event):
        """``kind`` states the fiction's effect: § 81 (3) S. 1, (3) S. 2 or (4) AufenthG.

        For (4) (version 2 on): ``order_basis`` says why the previous title continues,
        ``timely_application`` (the application was received on or before
        ``previous_title_valid_until``) or ``hardship_order`` (the office's order of
        § 81 (4) S. 3 for a late application, with ``hardship_reason``). Version 1 events
        lack the three; they read as None."""

        class_version = 2

        certificate_number: int
        kind: FictionKind
        valid_from: date
        valid_until: date
        carrier_sheet_number: Personal[str]
        procedure_number: int | None
        order_basis: FictionOrderBasis | None = None
        previous_title_valid_until: date | None = None
        hardship_reason: Personal[str | None] = None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Certificates issued before the basis of § 81 (4) was recorded."""
            state["order_basis"] = None
            state["previous_title_valid_until"] = None
            state["hardship_reason"] = None

        def apply(self, case: CaseFile) -> None:
            case.fiction_certificates.append(
                FictionCertificate(
                    number=self.certificate_number,
                    kind=self.kind,
                    valid_from=self.valid_from,
                    valid_until=self.valid_until,
                    carrier_sheet_number=self.carrier_sheet_number,
                    issued_at=self.at,
                    procedure_number=self.procedure_number,
                    order_basis=self.order_basis,
                )
            )

    class FictionCertificateExtended(Event):
        certificate_number: int
        previous_valid_until: date
        valid_until: date
        new_carrier_sheet_number: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            certificate = case.fiction_certificates[self.certificate_number - 1]
            certificate.valid_until = self.valid_until
            certificate.extensions += 1
            certificate.changed_at = self.at
            if self.new_carrier_sheet_number is not None:
                certificate.carrier_sheet_number = self.new_carrier_sheet_number
                certificate.extensions_on_current_sheet = 1
            else:
                certificate.extensions_on_current_sheet += 1

    class FictionCertificateEnded(Event):
        certificate_number: int
        end_reason: FictionEndReason

        def apply(self, case: CaseFile) -> None:
            certificate = case.fiction_certificates[self.certificate_number - 1]
            certificate.ended_reason = self.end_reason
            certificate.ended_at = self.at

    class IntegrationCourseEntitlementIssued(Event):
        """Entitlement to an integration course (§44 AufenthG)."""

        legal_basis: str

        def apply(self, case: CaseFile) -> None:
            case.integration_courses.append(
                IntegrationCourseRecord("entitlement", self.legal_basis, self.at)
            )

    class IntegrationCourseObligationImposed(Event):
        """Obligation to attend an integration course (§44a AufenthG)."""

        legal_basis: str

        def apply(self, case: CaseFile) -> None:
            case.integration_courses.append(
                IntegrationCourseRecord("obligation", self.legal_basis, self.at)
            )

    class EntryProcedureRequested(Event):
        entry_procedure_number: int
        legal_basis: str

        def apply(self, case: CaseFile) -> None:
            case.entry_procedures.append(
                EntryProcedure(
                    number=self.entry_procedure_number,
                    legal_basis=self.legal_basis,
                    requested_at=self.at,
                )
            )

    class EntryConsentGiven(Event):
        """Pre-approval given (Vorabzustimmung, §31 AufenthV)."""

        entry_procedure_number: int
        valid_until: date

        def apply(self, case: CaseFile) -> None:
            procedure = case.entry_procedures[self.entry_procedure_number - 1]
            procedure.status = "consent_given"
            procedure.consent_valid_until = self.valid_until
            procedure.decided_at = self.at

    class EntryConsentDeemedGiven(Event):
        """The office's silence counts as consent (Schweigefrist, § 31 Abs. 1 AufenthV):
        the period of ``rule`` (:mod:`domain.deadlines`) ended on ``period_ended_on``
        without a decision. ``source``: the provision the rule follows."""

        entry_procedure_number: int
        rule: str
        source: str
        period_ended_on: date

        def apply(self, case: CaseFile) -> None:
            procedure = case.entry_procedures[self.entry_procedure_number - 1]
            procedure.status = "consent_given"
            procedure.deemed = True
            procedure.decided_at = self.at

    class EntryConsentRefused(Event):
        entry_procedure_number: int
        reason: Personal[str]

        def apply(self, case: CaseFile) -> None:
            procedure = case.entry_procedures[self.entry_procedure_number - 1]
            procedure.status = "consent_refused"
            procedure.decided_at = self.at

    class InquiryReceived(Event):
        inquiry_number: int
        kind: InquiryKind

        def apply(self, case: CaseFile) -> None:
            case.inquiries.append(
                Inquiry(number=self.inquiry_number, kind=self.kind, received_at=self.at)
            )

    class InquiryAnswered(Event):
        inquiry_number: int

        def apply(self, case: CaseFile) -> None:
            case.inquiries[self.inquiry_number - 1].answered_at = self.at

    class CorrespondenceRecorded(Event):
        correspondence_number: int
        direction: Direction
        counterpart_kind: CounterpartKind
        counterpart_name: Personal[str]
        subject: Personal[str]
        attachment_numbers: list[int]

        def apply(self, case: CaseFile) -> None:
            case.correspondence.append(
                Correspondence(
                    number=self.correspondence_number,
                    direction=self.direction,
                    counterpart_kind=self.counterpart_kind,
                    counterpart_name=self.counterpart_name,
                    subject=self.subject,
                    attachment_numbers=list(self.attachment_numbers),
                    at=self.at,
                )
            )

    class NoteAdded(Event):
        note_number: int
        text: Personal[str]

        def apply(self, case: CaseFile) -> None:
            case.notes.append(Note(self.note_number, self.text, self.by, self.at))

    class TransferredToOffice(Event):
        """The person moved away; the file goes to the new office (§67 AufenthV)."""

        to_office_id: str
        reason: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            case.status = "transferred"
            case.transferred_to = self.to_office_id
            case.ended_at = self.at

    class HandOverReturned(Event):
        """The office the file was handed over to (``to_office_id``) returned the hand-over
        (an ``Administration.ReturnToSender`` of the answer ``answer_message_id``, for
        ``reason``, with the other office's ``hints``): it did not take the file over, so
        this office holds it again and the file is active (what a transfer ended, it
        does not end any more)."""

        to_office_id: str
        answer_message_id: str
        return_message_id: str
        reason: str
        hints: Personal[str]

        def apply(self, case: CaseFile) -> None:
            case.status = "active"
            case.transferred_to = None
            case.ended_at = None

    class AppointmentAttendanceRecorded(Event):
        """The person came to an appointment (``attended``) or did not (``no_show``);
        the appointment itself is in :mod:`domain.appointments`."""

        appointment_id: str
        outcome: str
        service_point_id: str
        appointment_type: str
        procedure_kind: str
        legal_basis: str | None

        def apply(self, case: CaseFile) -> None:
            # A fact of the history only: no state, so that snapshots taken before this
            # event existed still load.
            pass

    class Closed(Event):
        closure_reason: ClosureReason

        def apply(self, case: CaseFile) -> None:
            case.status = "closed"
            case.closure_reason = self.closure_reason
            case.ended_at = self.at

    class PersonalDataErased(Event):
        """The person's data was erased by destroying the file's key (crypto-shredding;
        § 91 AufenthG, § 68 AufenthV, Art. 17 DSGVO). The events stay; from now on their
        personal fields read as redacted. Nothing can be recorded on the file afterwards.
        ``linked_ids``: linked records (contact form submissions, appointments) whose keys
        were destroyed with it."""

        legal_ground: str
        rule_id: str | None
        approved_by: str
        linked_ids: list[str]

        def apply(self, case: CaseFile) -> None:
            case.personal_data_erased_at = self.at

    class RegistrationNoticeRecorded(Event):
        """A registration office's notice (§ 72 AufenthV) about the file's person was
        matched to this file and recorded: registration, deregistration, change of the
        main residence, name change, nationality change or death (``notice_kind``, one of
        :data:`REGISTRATION_NOTICE_KINDS`). ``message_id`` and ``sender`` name the
        message it came in (de-duplication and provenance); ``effective_on`` is the day
        the change took effect. The new values (set only where the notice changes them)
        become the file's master data; a death or a deregistration is a fact only (the
        caseworker closes the file)."""

        notice_kind: str
        message_id: str
        sender: str
        effective_on: date
        address: Personal[str | None]
        surname: Personal[str | None]
        given_names: Personal[str | None]
        nationality: Personal[str | None]

        def apply(self, case: CaseFile) -> None:
            for name in ("address", "surname", "given_names", "nationality"):
                value = getattr(self, name)
                if value is not None:
                    setattr(case.master_data, name, value)

    class TakenOver(Event):
        """The file came from the previous office after the person moved (§ 67 AufenthV):
        ``from_office_id`` sent its file ``from_reference`` (``from_case_id``) in the answer
        ``answer_message_id`` to the request ``request_id``, at ``sent_at``. The parts follow
        as :class:`PartTakenOver`, one per event of the previous office's file;
        ``proof_sha256`` names the previous office's chained events as they were sent (kept
        in the document store), ``stream_head`` the head of their chain."""

        from_office_id: str
        from_reference: str
        from_case_id: str
        request_id: str
        answer_message_id: str
        sent_at: datetime
        sent_by: str
        parts: int
        proof_sha256: str
        proof_size_bytes: int
        stream_head: str

        def apply(self, case: CaseFile) -> None:
            case.taken_over_from = self.from_office_id

    class PartTakenOver(Event):
        """One event of the previous office's file, taken over with its provenance: what
        it was (``source_kind``, a case-file event class), its version there, when and by
        whom it was recorded there, its non-personal fields (``facts``) and its personal
        fields (``personal``, sealed here like any personal data). It changes this file as
        the original changed the previous office's (a document attached there is document
        n here too: the parts are taken over in order into a new file)."""

        from_office_id: str
        source_kind: str
        source_version: int
        source_at: datetime
        source_recorded_at: datetime
        source_by: str
        facts: dict[str, Any]
        personal: Personal[dict[str, Any]]
        source_class_version: int
        """The class version of ``source_kind`` that ``facts`` and ``personal`` are in (as
        taken over, never changed): a later class version reads them through its kind's
        upcasters, as the store reads an old event."""

        def source_event(self, case_id: UUID, *, checked: bool = False) -> CaseFile.Event:
            """The original event, rebuilt (personal fields redacted once erased here).
            Unchecked, as events read from the store are (what was recorded stays
            readable); ``checked``: made as a new event is, its values checked."""
            kind = taken_over_kind(self.source_kind)
            erased = not isinstance(self.personal, dict)
            fields = upcast_state(
                kind,
                {**self.facts, **({} if erased else self.personal)},
                self.source_class_version,
            )
            if erased:
                # Personal fields of the current class, redacted (an upcaster may add some).
                fields.update(redacted_fields(kind))
            envelope: dict[str, Any] = {}
            if issubclass(kind, Aggregate.Created):
                envelope["originator_topic"] = get_topic(CaseFile)
            values: dict[str, Any] = {
                **envelope,
                "originator_id": case_id,
                "originator_version": self.source_version,
                "timestamp": self.source_recorded_at,
                "by": self.source_by,
                "at": self.source_at,
                **fields,
            }
            if checked:
                return kind(**values)
            event = object.__new__(kind)
            object.__setattr__(event, "__dict__", values)
            return event

        def apply(self, case: CaseFile) -> None:
            if self.source_kind not in TAKEN_OVER_WITHOUT_STATE:
                self.source_event(case.id).apply(case)

    # ---------------------------------------------------------------- commands

    @classmethod
    def open(
        cls,
        *,
        case_id: UUID,
        office_id: str,
        reference: str,
        master_data: MasterData,
        act: Act,
    ) -> CaseFile:
        """Open the case file of a person."""
        require_code("office_id", office_id)
        check_reference(reference)
        check_master_data(master_data, today=act.at.date())
        return cls._create(
            cls.Opened,
            id=case_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            reference=reference,
            surname=master_data.surname,
            given_names=master_data.given_names,
            date_of_birth=master_data.date_of_birth,
            nationality=master_data.nationality,
            passport_number=master_data.passport_number,
            address=master_data.address,
        )

    def _record(self, event_class: type[CaseFile.Event], act: Act, **fields: Any) -> None:
        self.check_not_erased()
        # Nothing is recorded on a file before it existed (each command checks its own
        # facts before this, so a refusal names the most specific one).
        self.check_not_before(act, "the case file's opening", self.opened_at)
        self.trigger_event(event_class, by=act.by, at=act.at, timestamp=act.recorded_at, **fields)

    def correct_master_data(self, *, corrections: dict[str, Any], reason: str, act: Act) -> None:
        """Correct master data; ``corrections`` maps field names to their new values."""
        self.check_not_closed()
        unknown = set(corrections) - set(_MASTER_DATA_FIELDS)
        if unknown:
            raise InvalidValue(sorted(unknown)[0], "is not a master data field")
        require_text("reason", reason, max_length=MAX_FREE_TEXT, line_breaks=True)
        changed = {
            name: value
            for name, value in corrections.items()
            if value is not None and getattr(self.master_data, name) != value
        }
        if not changed:
            raise NothingToCorrect("the corrections equal the recorded master data")
        corrected = MasterData(**{**vars(self.master_data), **changed})
        check_master_data(corrected, today=act.at.date())
        self._record(
            self.MasterDataCorrected,
            act,
            reason=reason,
            **{name: changed.get(name) for name in _MASTER_DATA_FIELDS},
        )

    def attach_document(
        self,
        *,
        kind: str,
        sha256: str,
        size_bytes: int,
        media_type: str,
        page_count: int,
        source: DocumentSource,
        act: Act,
    ) -> int:
        """Attach a document; returns its number within the case file."""
        self.check_not_closed()
        require_code("kind", kind)
        require_sha256("sha256", sha256)
        require_media_type("media_type", media_type)
        require_choice("source", source, DocumentSource)
        if size_bytes <= 0:
            raise InvalidValue("size_bytes", "must be positive")
        if not 1 <= page_count <= MAX_PAGES:
            raise InvalidValue("page_count", f"must be between 1 and {MAX_PAGES}")
        number = len(self.documents) + 1
        self._record(
            self.DocumentAttached,
            act,
            document_number=number,
            kind=kind,
            sha256=sha256,
            size_bytes=size_bytes,
            media_type=media_type,
            page_count=page_count,
            source=source,
        )
        return number

    def review_document(self, *, document_number: int, act: Act) -> None:
        """Record that a caseworker has looked at an attached document."""
        document = _find(
            self.documents,
            document_number,
            DocumentNotFound(f"document {document_number} is not attached to this case file"),
        )
        if document.reviewed_at is not None:
            raise DocumentAlreadyReviewed(f"document {document_number} is already reviewed")
        self.check_not_before(
            act, f"the attachment of document {document_number}", document.attached_at
        )
        self._record(self.DocumentReviewed, act, document_number=document_number)

    def receive_procedure(
        self, *, channel: Channel, topic: str, legal_basis: str | None, act: Act
    ) -> int:
        """A procedure (Vorgang) is received; returns its number within the case file."""
        self.check_active()
        require_choice("channel", channel, Channel)
        require_code("topic", topic)
        if legal_basis is not None:
            require_code("legal_basis", legal_basis)
        number = len(self.procedures) + 1
        self._record(
            self.ProcedureReceived,
            act,
            procedure_number=number,
            channel=channel,
            topic=topic,
            legal_basis=legal_basis,
        )
        return number

    def assign_procedure(self, *, procedure_number: int, assignee: str, act: Act) -> None:
        """Assign or re-assign an open procedure to a caseworker."""
        self.check_active()
        procedure = self.open_procedure(procedure_number)
        require_text("assignee", assignee, max_length=100)
        if procedure.assignee == assignee:
            raise ProcedureStateConflict(
                f"procedure {procedure_number} is already assigned to this user"
            )
        self.check_after_procedure(act, procedure)
        self._record(
            self.ProcedureAssigned, act, procedure_number=procedure_number, assignee=assignee
        )

    def request_documents(
        self, *, procedure_number: int, what: list[str], due_on: date, act: Act
    ) -> None:
        """Ask the person for documents by a due date."""
        self.check_active()
        procedure = self.open_procedure(procedure_number)
        if not what:
            raise InvalidValue("what", "must name at least one document")
        for item in what:
            require_text("what", item)
        if due_on <= legal_day(act.at):
            raise InvalidValue("due_on", "must be after the day of the request")
        self.check_after_procedure(act, procedure)
        self._record(
            self.DocumentsRequested,
            act,
            procedure_number=procedure_number,
            what=list(what),
            due_on=due_on,
        )

    def decide_procedure(
        self,
        *,
        procedure_number: int,
        outcome: DecisionOutcome,
        legal_basis: str | None,
        reason: str | None,
        act: Act,
    ) -> None:
        """Decide an open procedure: granted, refused (with reason) or withdrawn.

        The decision ends the fiction of § 81 AufenthG the application gave: every
        current Fiktionsbescheinigung issued for the procedure ends with it (recorded as
        ``FictionCertificateEnded``, by decision, or by withdrawal when withdrawn)."""
        self.check_active()
        procedure = self.open_procedure(procedure_number)
        require_choice("outcome", outcome, DecisionOutcome)
        if legal_basis is not None:
            require_code("legal_basis", legal_basis)
        _optional_text("reason", reason)
        if outcome == "refused" and reason is None:
            raise InvalidValue("reason", "a refusal must give its reason")
        self.check_after_procedure(act, procedure)
        fictions = [
            certificate
            for certificate in self.fiction_certificates
            if certificate.procedure_number == procedure_number and not certificate.is_ended
        ]
        for certificate in fictions:
            self.check_after_fiction_certificate(act, certificate)
        self._record(
            self.ProcedureDecided,
            act,
            procedure_number=procedure_number,
            outcome=outcome,
            legal_basis=legal_basis,
            reason=reason,
        )
        end_reason: FictionEndReason = "withdrawal" if outcome == "withdrawn" else "decision"
        for certificate in fictions:
            self._record(
                self.FictionCertificateEnded,
                act,
                certificate_number=certificate.number,
                end_reason=end_reason,
            )

    def close_procedure(self, *, procedure_number: int, act: Act) -> None:
        """Close a decided procedure."""
        procedure = self.procedure(procedure_number)
        if procedure.status != "decided":
            raise ProcedureStateConflict(
                f"procedure {procedure_number} is {procedure.status}; only a decided "
                "procedure can be closed"
            )
        self.check_after_procedure(act, procedure)
        self._record(self.ProcedureClosed, act, procedure_number=procedure_number)

    def issue_residence_document(
        self,
        *,
        kind: ResidenceDocumentKind,
        legal_basis: str,
        validity: Validity,
        document_number: str,
        procedure_number: int | None,
        act: Act,
    ) -> int:
        """Issue an eAT, a Duldung or an Aufenthaltsgestattung; returns its number."""
        self.check_active()
        require_choice("kind", kind, ResidenceDocumentKind)
        require_code("legal_basis", legal_basis)
        require_document_number("document_number", document_number)
        if procedure_number is not None:
            procedure = self.procedure(procedure_number)
            self.check_not_before(
                act, f"the receipt of procedure {procedure_number}", procedure.received_at
            )
        number = len(self.residence_documents) + 1
        self._record(
            self.ResidenceDocumentIssued,
            act,
            residence_document_number=number,
            kind=kind,
            legal_basis=legal_basis,
            valid_from=validity.valid_from,
            valid_until=validity.valid_until,
            document_number=document_number,
            procedure_number=procedure_number,
        )
        return number

    def extend_residence_document(
        self, *, residence_document_number: int, valid_until: date, reason: str | None, act: Act
    ) -> None:
        self.check_active()
        document = self.current_residence_document(residence_document_number)
        if valid_until <= document.valid_until:
            raise InvalidValue("valid_until", "an extension must end after the current validity")
        _optional_text("reason", reason)
        self.check_after_residence_document(act, document)
        self._record(
            self.ResidenceDocumentExtended,
            act,
            residence_document_number=residence_document_number,
            previous_valid_until=document.valid_until,
            valid_until=valid_until,
            reason=reason,
        )

    def order_eat_card(self, *, residence_document_number: int, act: Act) -> None:
        """Biometrics taken and card ordered at the Bundesdruckerei."""
        self.check_active()
        document = self.current_eat(residence_document_number)
        if document.card_status != "not_ordered":
            raise ProcedureStateConflict(
                f"the card of residence document {residence_document_number} is already "
                f"{document.card_status}"
            )
        self.check_after_residence_document(act, document)
        self._record(self.EatCardOrdered, act, residence_document_number=residence_document_number)

    def record_eat_card_arrived(self, *, residence_document_number: int, act: Act) -> None:
        self.check_active()
        document = self.current_eat(residence_document_number)
        if document.card_status != "ordered":
            raise ProcedureStateConflict(
                f"the card of residence document {residence_document_number} is "
                f"{document.card_status}, not ordered"
            )
        self.check_after_residence_document(act, document)
        self._record(self.EatCardArrived, act, residence_document_number=residence_document_number)

    def hand_over_eat_card(self, *, residence_document_number: int, act: Act) -> None:
        self.check_not_closed()
        document = self.current_eat(residence_document_number)
        if document.card_status != "arrived":
            raise ProcedureStateConflict(
                f"the card of residence document {residence_document_number} is "
                f"{document.card_status}; only an arrived card can be handed over"
            )
        self.check_after_residence_document(act, document)
        self._record(
            self.EatCardHandedOver, act, residence_document_number=residence_document_number
        )

    def transfer_eat_to_new_passport(
        self, *, residence_document_number: int, new_card_number: str, act: Act
    ) -> None:
        """Übertrag: the same title, a new card for the person's new passport."""
        self.check_active()
        document = self.current_eat(residence_document_number)
        require_document_number("new_card_number", new_card_number)
        if new_card_number == document.document_number:
            raise InvalidValue("new_card_number", "must differ from the current card number")
        self.check_after_residence_document(act, document)
        self._record(
            self.EatTransferredToNewPassport,
            act,
            residence_document_number=residence_document_number,
            new_card_number=new_card_number,
        )

    def end_residence_document(
        self,
        *,
        residence_document_number: int,
        end_reason: ResidenceDocumentEndReason,
        reason: str | None,
        act: Act,
    ) -> None:
        """End a residence document: expired (§51), revoked (§52), replaced or departed."""
        self.check_not_closed()
        document = self.current_residence_document(residence_document_number)
        require_choice("end_reason", end_reason, ResidenceDocumentEndReason)
        _optional_text("reason", reason)
        if end_reason == "revoked" and reason is None:
            raise InvalidValue("reason", "a revocation must give its reason")
        self.check_after_residence_document(act, document)
        self._record(
            self.ResidenceDocumentEnded,
            act,
            residence_document_number=residence_document_number,
            end_reason=end_reason,
            reason=reason,
        )

    def issue_fiction_certificate(
        self,
        *,
        kind: FictionKind,
        validity: Validity,
        carrier_sheet_number: str,
        procedure_number: int | None,
        act: Act,
        order_basis: FictionOrderBasis | None = None,
        previous_title_valid_until: date | None = None,
        hardship_reason: str | None = None,
    ) -> int:
        """Issue a Fiktionsbescheinigung; returns its number within the case file.

        ``kind`` is the fiction's effect (§ 81 (3) S. 1, (3) S. 2, (4) AufenthG). The
        application (``procedure_number``) gave the fiction, so it must still be open:
        the decision ends the fiction. § 81 (4) needs the application and its basis:
        received while the previous title was valid (``timely_application`` with the day
        it was valid until) or, for a late one, the office's order to avoid hardship
        (§ 81 (4) S. 3, ``hardship_order`` with its reason)."""
        self.check_active()
        require_choice("kind", kind, FictionKind)
        require_document_number("carrier_sheet_number", carrier_sheet_number)
        procedure = None if procedure_number is None else self.procedure(procedure_number)
        if procedure is not None and not procedure.is_open:
            raise ProcedureStateConflict(
                f"procedure {procedure_number} is already {procedure.status}: its decision "
                "ended the fiction (§ 81 AufenthG)"
            )
        _check_fiction_basis(
            kind, procedure, order_basis, previous_title_valid_until, hardship_reason
        )
        if procedure is not None:
            self.check_not_before(
                act, f"the receipt of procedure {procedure_number}", procedure.received_at
            )
        number = len(self.fiction_certificates) + 1
        self._record(
            self.FictionCertificateIssued,
            act,
            certificate_number=number,
            kind=kind,
            valid_from=validity.valid_from,
            valid_until=validity.valid_until,
            carrier_sheet_number=carrier_sheet_number,
            procedure_number=procedure_number,
            order_basis=order_basis,
            previous_title_valid_until=previous_title_valid_until,
            hardship_reason=hardship_reason,
        )
        return number

    def extend_fiction_certificate(
        self,
        *,
        certificate_number: int,
        valid_until: date,
        new_carrier_sheet_number: str | None,
        act: Act,
    ) -> None:
        """Extend a certificate; a carrier sheet holds two extensions, then a new one is due."""
        self.check_active()
        certificate = self.current_fiction_certificate(certificate_number)
        self.check_fiction_pending(certificate)
        if valid_until <= certificate.valid_until:
            raise InvalidValue("valid_until", "an extension must end after the current validity")
        if new_carrier_sheet_number is None:
            if certificate.extensions_on_current_sheet >= MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET:
                raise CarrierSheetExhausted(
                    f"certificate {certificate_number} has been extended "
                    f"{MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET} times on its carrier sheet; "
                    "a further extension needs a new carrier sheet"
                )
        else:
            require_document_number("new_carrier_sheet_number", new_carrier_sheet_number)
            if new_carrier_sheet_number == certificate.carrier_sheet_number:
                raise InvalidValue(
                    "new_carrier_sheet_number", "must differ from the current carrier sheet"
                )
        self.check_after_fiction_certificate(act, certificate)
        self._record(
            self.FictionCertificateExtended,
            act,
            certificate_number=certificate_number,
            previous_valid_until=certificate.valid_until,
            valid_until=valid_until,
            new_carrier_sheet_number=new_carrier_sheet_number,
        )

    def end_fiction_certificate(
        self, *, certificate_number: int, end_reason: FictionEndReason, act: Act
    ) -> None:
        """The fiction ends by a decision on the application or by its withdrawal."""
        self.check_not_closed()
        certificate = self.current_fiction_certificate(certificate_number)
        require_choice("end_reason", end_reason, FictionEndReason)
        self.check_after_fiction_certificate(act, certificate)
        self._record(
            self.FictionCertificateEnded,
            act,
            certificate_number=certificate_number,
            end_reason=end_reason,
        )

    def issue_integration_course_entitlement(self, *, legal_basis: str, act: Act) -> None:
        """§44 AufenthG."""
        self.check_active()
        require_code("legal_basis", legal_basis)
        _require_paragraph(legal_basis, "aufenthg-44", "an entitlement to an integration course")
        self._record(self.IntegrationCourseEntitlementIssued, act, legal_basis=legal_basis)

    def impose_integration_course_obligation(self, *, legal_basis: str, act: Act) -> None:
        """§44a AufenthG."""
        self.check_active()
        require_code("legal_basis", legal_basis)
        _require_paragraph(
            legal_basis, "aufenthg-44a", "an obligation to attend an integration course"
        )
        self._record(self.IntegrationCourseObligationImposed, act, legal_basis=legal_basis)

    def request_entry_consent(self, *, legal_basis: str, act: Act) -> int:
        """An entry procedure (Vorabzustimmung, §31 AufenthV / §81a AufenthG) is requested."""
        self.check_active()
        require_code("legal_basis", legal_basis)
        number = len(self.entry_procedures) + 1
        self._record(
            self.EntryProcedureRequested,
            act,
            entry_procedure_number=number,
            legal_basis=legal_basis,
        )
        return number

    def give_entry_consent(
        self, *, entry_procedure_number: int, valid_until: date, act: Act
    ) -> None:
        self.check_active()
        entry = self.undecided_entry_procedure(entry_procedure_number)
        if valid_until <= legal_day(act.at):
            raise InvalidValue("valid_until", "the consent must be valid after the day it is given")
        self.check_not_before(
            act, f"the request of entry procedure {entry_procedure_number}", entry.requested_at
        )
        self._record(
            self.EntryConsentGiven,
            act,
            entry_procedure_number=entry_procedure_number,
            valid_until=valid_until,
        )

    def deem_entry_consent_given(
        self,
        *,
        entry_procedure_number: int,
        holidays: HolidayCalendar,
        today: date,
        act: Act,
    ) -> date:
        """Record that the office's silence counts as consent: the period of
        :data:`domain.deadlines.DEEMED_ENTRY_CONSENT`, counted from the request with the
        office's ``holidays``, ended before ``today`` (the office's date) without a
        decision. Returns the period's last day."""
        self.check_active()
        entry = self.undecided_entry_procedure(entry_procedure_number)
        rule = DEEMED_ENTRY_CONSENT
        if not rule.applies(entry.legal_basis):
            raise DeadlineRuleNotApplicable(
                f"entry procedure {entry_procedure_number}: {rule.source.provision} has no "
                "deemed consent for its legal basis"
            )
        last_day = rule.ends_on(legal_day(entry.requested_at), holidays)
        if not has_passed(last_day, today):
            raise DeadlineNotPassed(
                f"entry procedure {entry_procedure_number}: the period of "
                f"{rule.source.provision} runs until {last_day.isoformat()}"
            )
        self.check_not_before(
            act, f"the request of entry procedure {entry_procedure_number}", entry.requested_at
        )
        self._record(
            self.EntryConsentDeemedGiven,
            act,
            entry_procedure_number=entry_procedure_number,
            rule=rule.code,
            source=rule.source.provision,
            period_ended_on=last_day,
        )
        return last_day

    def refuse_entry_consent(self, *, entry_procedure_number: int, reason: str, act: Act) -> None:
        self.check_active()
        entry = self.undecided_entry_procedure(entry_procedure_number)
        require_text("reason", reason, max_length=MAX_FREE_TEXT, line_breaks=True)
        self.check_not_before(
            act, f"the request of entry procedure {entry_procedure_number}", entry.requested_at
        )
        self._record(
            self.EntryConsentRefused,
            act,
            entry_procedure_number=entry_procedure_number,
            reason=reason,
        )

    def receive_inquiry(self, *, kind: InquiryKind, act: Act) -> int:
        """A civil-registry or naturalisation inquiry; allowed on a closed file too."""
        require_choice("kind", kind, InquiryKind)
        number = len(self.inquiries) + 1
        self._record(self.InquiryReceived, act, inquiry_number=number, kind=kind)
        return number

    def answer_inquiry(self, *, inquiry_number: int, act: Act) -> None:
        inquiry = _find(
            self.inquiries,
            inquiry_number,
            InquiryNotFound(f"inquiry {inquiry_number} does not exist on this case file"),
        )
        if inquiry.answered_at is not None:
            raise InquiryAlreadyAnswered(f"inquiry {inquiry_number} is already answered")
        self.check_not_before(act, f"the receipt of inquiry {inquiry_number}", inquiry.received_at)
        self._record(self.InquiryAnswered, act, inquiry_number=inquiry_number)

    def record_correspondence(
        self,
        *,
        direction: Direction,
        counterpart_kind: CounterpartKind,
        counterpart_name: str,
        subject: str,
        attachment_numbers: list[int],
        act: Act,
    ) -> int:
        """A letter from or to an authority, court or lawyer; allowed on a closed file too."""
        require_choice("direction", direction, Direction)
        require_choice("counterpart_kind", counterpart_kind, CounterpartKind)
        require_text("counterpart_name", counterpart_name)
        require_text("subject", subject, max_length=MAX_FREE_TEXT, line_breaks=True)
        for number in attachment_numbers:
            if not 1 <= number <= len(self.documents):
                msg = f"document {number} is not attached to this case file"
                raise InvalidValue("attachment_numbers", msg)
        for number in attachment_numbers:
            attached_at = self.documents[number - 1].attached_at
            self.check_not_before(act, f"the attachment of document {number}", attached_at)
        number = len(self.correspondence) + 1
        self._record(
            self.CorrespondenceRecorded,
            act,
            correspondence_number=number,
            direction=direction,
            counterpart_kind=counterpart_kind,
            counterpart_name=counterpart_name,
            subject=subject,
            attachment_numbers=list(attachment_numbers),
        )
        return number

    def add_note(self, *, text: str, act: Act) -> int:
        """A free-text note; allowed on a closed file too."""
        require_text("text", text, max_length=MAX_FREE_TEXT, line_breaks=True)
        number = len(self.notes) + 1
        self._record(self.NoteAdded, act, note_number=number, text=text)
        return number

    def record_appointment_attendance(
        self,
        *,
        appointment_id: UUID,
        outcome: str,
        service_point_id: UUID,
        appointment_type: str,
        procedure_kind: str,
        legal_basis: str | None,
        act: Act,
    ) -> None:
        """Attendance at an appointment; allowed on a closed file too (it happened)."""
        if outcome not in ("attended", "no_show"):
            raise InvalidValue("outcome", "must be one of attended, no_show")
        require_code("appointment_type", appointment_type)
        require_code("procedure_kind", procedure_kind)
        if legal_basis is not None:
            require_code("legal_basis", legal_basis)
        self._record(
            self.AppointmentAttendanceRecorded,
            act,
            appointment_id=str(appointment_id),
            outcome=outcome,
            service_point_id=str(service_point_id),
            appointment_type=appointment_type,
            procedure_kind=procedure_kind,
            legal_basis=legal_basis,
        )

    def transfer_to_office(self, *, to_office_id: str, reason: str | None, act: Act) -> None:
        """The person moved away: the file goes to another office."""
        self.check_active()
        require_code("to_office_id", to_office_id)
        if to_office_id == self.office_id:
            raise InvalidValue("to_office_id", "must be another office than the current one")
        _optional_text("reason", reason)
        self.check_no_open_procedures()
        self.check_after_decisions(act)
        self._record(self.TransferredToOffice, act, to_office_id=to_office_id, reason=reason)

    def return_hand_over(
        self,
        *,
        to_office_id: str,
        answer_message_id: str,
        return_message_id: str,
        reason: str,
        hints: str,
        act: Act,
    ) -> None:
        """The office the file was sent to returned it untaken: the file is active again.
        Only a file transferred to that very office comes back."""
        if self.status != "transferred" or self.transferred_to != to_office_id:
            raise CaseFileNotActive("the case file is not handed over to that office")
        self.check_not_before(act, "the transfer", self.ended_at)
        require_choice("reason", reason, HandOverReturnReason)
        for name, value in (
            ("answer_message_id", answer_message_id),
            ("return_message_id", return_message_id),
        ):
            require_text(name, value, max_length=100)
        if len(hints) > HAND_OVER_HINTS_MAX:
            raise InvalidValue("hints", f"must be at most {HAND_OVER_HINTS_MAX} characters")
        self._record(
            self.HandOverReturned,
            act,
            to_office_id=to_office_id,
            answer_message_id=answer_message_id,
            return_message_id=return_message_id,
            reason=reason,
            hints=hints,
        )

    def close(self, *, closure_reason: ClosureReason, act: Act) -> None:
        """Close the file: the person was naturalised, died or left Germany."""
        self.check_active()
        require_choice("closure_reason", closure_reason, ClosureReason)
        self.check_no_open_procedures()
        self.check_after_decisions(act)
        self._record(self.Closed, act, closure_reason=closure_reason)

    def erase_personal_data(
        self,
        *,
        legal_ground: str,
        rule_id: str | None,
        approved_by: str,
        linked_ids: list[str],
        act: Act,
    ) -> None:
        """Record the erasure of the person's data; the caller then destroys the key."""
        self.check_not_erased()
        if legal_ground not in ERASURE_GROUNDS:
            raise InvalidValue("legal_ground", "must be one of " + ", ".join(ERASURE_GROUNDS))
        if rule_id is not None:
            require_code("rule_id", rule_id)
        require_text("approved_by", approved_by, max_length=200)
        self.check_not_before(act, f"the case file's {self.status_fact}", self.ended_at)
        self._record(
            self.PersonalDataErased,
            act,
            legal_ground=legal_ground,
            rule_id=rule_id,
            approved_by=approved_by,
            linked_ids=list(linked_ids),
        )

    def record_registration_notice(
        self,
        *,
        notice_kind: str,
        message_id: str,
        sender: str,
        effective_on: date,
        changes: RegistrationNoticeChanges,
        act: Act,
    ) -> None:
        """Record a registration office's notice about this file's person; the changes
        it brings (new address, name, nationality) must fit its kind."""
        self.check_active()
        check_registration_notice(
            notice_kind=notice_kind,
            message_id=message_id,
            sender=sender,
            effective_on=effective_on,
            changes=changes,
            today=act.at.date(),
        )
        given = {name for name, value in vars(changes).items() if value is not None}
        corrected = MasterData(
            **{**vars(self.master_data), **{name: getattr(changes, name) for name in given}}
        )
        check_master_data(corrected, today=act.at.date())
        self._record(
            self.RegistrationNoticeRecorded,
            act,
            notice_kind=notice_kind,
            message_id=message_id,
            sender=sender,
            effective_on=effective_on,
            address=changes.address,
            surname=changes.surname,
            given_names=changes.given_names,
            nationality=changes.nationality,
        )

    def take_over(
        self, *, provenance: TakeOverProvenance, parts: list[TakenOverPart], act: Act
    ) -> None:
        """Take over the previous office's file into this new file: its provenance, then
        each of its events as a part, in their order. Only a file that holds nothing else
        yet (just opened, in the same transaction) takes parts over, so the parts keep
        their numbers."""
        self.check_active()
        if self.version != 1 or self.taken_over_from is not None:
            raise InvalidValue("case_id", "only a newly opened case file takes a file over")
        require_code("from_office_id", provenance.from_office_id)
        if provenance.from_office_id == self.office_id:
            raise InvalidValue("from_office_id", "must be another office than this one")
        require_sha256("proof_sha256", provenance.proof_sha256)
        versions = [part.source_version for part in parts]
        if versions != list(range(1, len(parts) + 1)):
            raise InvalidValue("parts", "must be the previous file's events 1..n, in order")
        class_versions = [_part_class_version(part) for part in parts]
        self._record(
            self.TakenOver,
            act,
            from_office_id=provenance.from_office_id,
            from_reference=provenance.from_reference,
            from_case_id=provenance.from_case_id,
            request_id=provenance.request_id,
            answer_message_id=provenance.answer_message_id,
            sent_at=provenance.sent_at,
            sent_by=provenance.sent_by,
            parts=len(parts),
            proof_sha256=provenance.proof_sha256,
            proof_size_bytes=provenance.proof_size_bytes,
            stream_head=provenance.stream_head,
        )
        for part, class_version in zip(parts, class_versions, strict=True):
            try:
                self._record(
                    self.PartTakenOver,
                    act,
                    from_office_id=provenance.from_office_id,
                    source_kind=part.source_kind,
                    source_version=part.source_version,
                    source_at=part.source_at,
                    source_recorded_at=part.source_recorded_at,
                    source_by=part.source_by,
                    facts=dict(part.facts),
                    personal=dict(part.personal),
                    source_class_version=class_version,
                )
                recorded = self.pending_events[-1]
                assert isinstance(recorded, CaseFile.PartTakenOver)
                recorded.source_event(self.id, checked=True)
            except InvalidValue:
                raise
            except (TypeError, ValueError, LookupError, AttributeError):
                # A value of the wrong type, or a part naming one that is not there: the
                # file would not replay. Nothing is recorded (the new file is not saved).
                msg = f"part {part.source_version} does not fit the file it is taken into"
                raise InvalidValue("parts", msg) from None

    # ------------------------------------------------------------------ checks

    def check_not_before(self, act: Act, fact: str, time: datetime | None) -> None:
        """Business time may be back-dated, but not to before a fact the command builds
        on (``None``: the fact's time is unknown, in snapshots older than the rule)."""
        if time is not None and act.at < time:
            raise BusinessTimeBeforeFact("at", fact)

    @property
    def status_fact(self) -> str:
        return "transfer" if self.status == "transferred" else "closure"

    def check_after_procedure(self, act: Act, procedure: Procedure) -> None:
        """After the procedure's receipt and its last step (assignment, request, decision)."""
        number = procedure.number
        self.check_not_before(act, f"the receipt of procedure {number}", procedure.received_at)
        if procedure.decided_at is not None:
            self.check_not_before(act, f"the decision of procedure {number}", procedure.decided_at)
        self.check_not_before(act, f"the last step of procedure {number}", procedure.changed_at)

    def check_after_residence_document(self, act: Act, document: ResidenceDocument) -> None:
        """After the document's issue and its last step (the card's order, arrival, ...)."""
        number = document.number
        self.check_not_before(act, f"the issue of residence document {number}", document.issued_at)
        last_step = {
            "ordered": "the card's order",
            "arrived": "the card's arrival",
            "handed_over": "the card's handover",
        }.get(document.card_status, "the last extension")
        self.check_not_before(
            act, f"{last_step} of residence document {number}", document.changed_at
        )

    def check_after_fiction_certificate(self, act: Act, certificate: FictionCertificate) -> None:
        number = certificate.number
        self.check_not_before(
            act, f"the issue of Fiktionsbescheinigung {number}", certificate.issued_at
        )
        self.check_not_before(
            act, f"the last extension of Fiktionsbescheinigung {number}", certificate.changed_at
        )

    def check_fiction_pending(self, certificate: FictionCertificate) -> None:
        """The fiction lasts until the decision on the application (§ 81 AufenthG);
        certificates recorded before decisions ended them are caught here too."""
        number = certificate.procedure_number
        if number is not None and not self.procedure(number).is_open:
            raise FictionCertificateEnded(
                f"Fiktionsbescheinigung {certificate.number}: the decision on procedure "
                f"{number} ended the fiction"
            )

    def check_after_decisions(self, act: Act) -> None:
        """A transfer or closure comes after every procedure was decided and closed."""
        for procedure in self.procedures:
            self.check_after_procedure(act, procedure)

    @property
    def is_erased(self) -> bool:
        return self.personal_data_erased_at is not None

    def check_not_erased(self) -> None:
        if self.personal_data_erased_at is not None:
            raise CaseFileErased(
                "the personal data of this case file has been erased: nothing more can be "
                "recorded on it"
            )

    def check_active(self) -> None:
        if self.status != "active":
            raise CaseFileNotActive(f"the case file is {self.status}")

    def check_not_closed(self) -> None:
        if self.status == "closed":
            raise CaseFileNotActive("the case file is closed")

    def check_no_open_procedures(self) -> None:
        open_numbers = [p.number for p in self.procedures if p.is_open]
        if open_numbers:
            listed = ", ".join(str(number) for number in open_numbers)
            raise OpenProceduresRemain(f"decide or withdraw the open procedures first: {listed}")

    def procedure(self, number: int) -> Procedure:
        return _find(
            self.procedures,
            number,
            ProcedureNotFound(f"procedure {number} does not exist on this case file"),
        )

    def open_procedure(self, number: int) -> Procedure:
        procedure = self.procedure(number)
        if not procedure.is_open:
            raise ProcedureStateConflict(f"procedure {number} is already {procedure.status}")
        return procedure

    def current_residence_document(self, number: int) -> ResidenceDocument:
        document = _find(
            self.residence_documents,
            number,
            ResidenceDocumentNotFound(f"residence document {number} does not exist"),
        )
        if document.is_ended:
            raise ResidenceDocumentEnded(
                f"residence document {number} has ended ({document.ended_reason})"
            )
        return document

    def current_eat(self, number: int) -> ResidenceDocument:
        document = self.current_residence_document(number)
        if document.kind != "eat":
            raise InvalidValue(
                "residence_document_number", f"residence document {number} is not an eAT"
            )
        return document

    def current_fiction_certificate(self, number: int) -> FictionCertificate:
        certificate = _find(
            self.fiction_certificates,
            number,
            FictionCertificateNotFound(f"Fiktionsbescheinigung {number} does not exist"),
        )
        if certificate.is_ended:
            raise FictionCertificateEnded(
                f"Fiktionsbescheinigung {number} has ended ({certificate.ended_reason})"
            )
        return certificate

    def undecided_entry_procedure(self, number: int) -> EntryProcedure:
        procedure = _find(
            self.entry_procedures,
            number,
            EntryProcedureNotFound(f"entry procedure {number} does not exist"),
        )
        if procedure.status != "requested":
            raise EntryProcedureDecided(f"entry procedure {number} is already decided")
        return procedure


def _check_fiction_basis(
    kind: FictionKind,
    procedure: Procedure | None,
    order_basis: FictionOrderBasis | None,
    previous_title_valid_until: date | None,
    hardship_reason: str | None,
) -> None:
    """§ 81 (4) AufenthG: the previous title continues only for an application received
    while it was valid (S. 1) or by the office's order against hardship (S. 3)."""
    if kind != "81_4":
        for name, value in (
            ("order_basis", order_basis),
            ("previous_title_valid_until", previous_title_valid_until),
            ("hardship_reason", hardship_reason),
        ):
            if value is not None:
                raise InvalidValue(name, "applies to a fiction of § 81 (4) AufenthG only")
        return
    if procedure is None:
        raise InvalidValue(
            "procedure_number", "a fiction of § 81 (4) AufenthG needs the application it follows"
        )
    if order_basis is None:
        raise InvalidValue(
            "order_basis",
            "a fiction of § 81 (4) AufenthG needs its basis: timely_application or hardship_order",
        )
    require_choice("order_basis", order_basis, FictionOrderBasis)
    if order_basis == "timely_application":
        if hardship_reason is not None:
            raise InvalidValue("hardship_reason", "belongs to a hardship order only")
        if previous_title_valid_until is None:
            raise InvalidValue(
                "previous_title_valid_until",
                "a timely application needs the day the previous title was valid until",
            )
        if previous_title_valid_until < legal_day(procedure.received_at):
            raise InvalidValue(
                "previous_title_valid_until",
                f"procedure {procedure.number} was received after the previous title "
                "expired: § 81 (4) S. 1 AufenthG does not apply, only an order of "
                "§ 81 (4) S. 3 (hardship_order)",
            )
        return
    if previous_title_valid_until is not None:
        raise InvalidValue("previous_title_valid_until", "belongs to a timely application only")
    if hardship_reason is None:
        raise InvalidValue(
            "hardship_reason", "an order of § 81 (4) S. 3 AufenthG must give its reason"
        )
    require_text("hardship_reason", hardship_reason, max_length=MAX_FREE_TEXT, line_breaks=True)


@dataclass(frozen=True)
class TakeOverProvenance:
    """Where a taken-over file came from (see :class:`CaseFile.TakenOver`)."""

    from_office_id: str
    from_reference: str
    from_case_id: str
    request_id: str
    answer_message_id: str
    sent_at: datetime
    sent_by: str
    proof_sha256: str
    proof_size_bytes: int
    stream_head: str


@dataclass(frozen=True)
class TakenOverPart:
    """One event of the previous office's file (see :class:`CaseFile.PartTakenOver`)."""

    source_kind: str
    source_version: int
    source_at: datetime
    source_recorded_at: datetime
    source_by: str
    facts: dict[str, Any]
    personal: dict[str, Any]
    source_class_version: int | None = None
    """The class version of ``source_kind`` the fields are in; None: not told, the
    newest whose fields (upcast to the current class) they are."""


def _part_class_version(part: TakenOverPart) -> int:
    """The class version a part's fields are in: told, or the newest that fits them. A
    part of an older class version is taken over as it is and read upcast."""
    kind = taken_over_kind(part.source_kind)
    current = int(getattr(kind, "class_version", 1))
    told = part.source_class_version
    if told is not None and not 1 <= told <= current:
        raise InvalidValue("parts", f"part {part.source_version} has an unknown class version")
    personal = personal_fields(kind)
    if set(part.personal) - personal or set(part.facts) & personal:
        raise InvalidValue("parts", f"part {part.source_version} does not fit its kind")
    for version in [told] if told is not None else range(current, 0, -1):
        try:
            upcast = upcast_state(kind, {**part.facts, **part.personal}, version)
        except (AttributeError, KeyError, TypeError, ValueError):
            continue
        if set(upcast) == event_field_names(kind):
            return version
    raise InvalidValue("parts", f"part {part.source_version} does not fit its kind")


TAKEN_OVER_WITHOUT_STATE: Final = frozenset(
    {
        "Opened",
        "TakenOver",
        "TransferredToOffice",
        "HandOverReturned",
        "Closed",
        "PersonalDataErased",
    }
)
"""Parts that are history only on the new file: its opening, an earlier take-over, and
how the previous office's file ended are facts of that office's file, not of this one."""

_NOT_TAKEN_OVER: Final = frozenset({"Event", "Created"})


def taken_over_kind(name: str) -> type[CaseFile.Event]:
    """The case-file event class ``name`` names (a part's ``source_kind``)."""
    kind = getattr(CaseFile, name, None) if name not in _NOT_TAKEN_OVER else None
    if not isinstance(kind, type) or not issubclass(kind, CaseFile.Event):
        raise InvalidValue("source_kind", "is not an event of a case file")
    return kind


def upcast_state(
    kind: type[CaseFile.Event], state: Mapping[str, Any], class_version: int
) -> dict[str, Any]:
    """``state``, fields of a ``kind`` event of ``class_version``, as the current class
    has them: the kind's ``upcast_vN_vN+1`` steps run on a copy, as the store's mapper
    runs them on loading (an event kept elsewhere in its old form reads as a loaded one)."""
    upcast = dict(state)
    version = class_version
    while version < getattr(kind, "class_version", 1):
        getattr(kind, f"upcast_v{version}_v{version + 1}")(upcast)
        version += 1
    return upcast


_ENVELOPE: Final = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by", "at"}
)


def event_field_names(kind: type[CaseFile.Event]) -> frozenset[str]:
    """An event class's own fields: what a part's facts and personal values hold."""
    return frozenset(f.name for f in dataclass_fields(kind)) - _ENVELOPE


_MASTER_DATA_FIELDS: Final = (
    "surname",
    "given_names",
    "date_of_birth",
    "nationality",
    "passport_number",
    "address",
)

_REFERENCE = re.compile(r"^[A-Z0-9][A-Z0-9./-]{2,39}$")


def check_reference(reference: str) -> None:
    """The office's file number (Aktenzeichen): capitals, digits, '.', '/', '-'."""
    if not _REFERENCE.fullmatch(reference):
        raise InvalidValue("reference", "must be 3 to 40 capital letters, digits, '.', '/' or '-'")


def check_registration_notice(
    *,
    notice_kind: str,
    message_id: str,
    sender: str,
    effective_on: date,
    changes: RegistrationNoticeChanges,
    today: date,
) -> None:
    """A registration office's notice is well-formed: a known kind, the changes its kind
    brings (and no others), each a lawful value, and in effect by ``today``."""
    if notice_kind not in REGISTRATION_NOTICE_KINDS:
        choices = ", ".join(REGISTRATION_NOTICE_KINDS)
        raise InvalidValue("notice_kind", f"must be one of {choices}")
    require_text("message_id", message_id, max_length=100)
    require_code("sender", sender)
    if effective_on > today:
        raise InvalidValue("effective_on", "must not lie after the day of receipt")
    allowed = REGISTRATION_NOTICE_CHANGES[notice_kind]
    given = {name for name, value in vars(changes).items() if value is not None}
    if given - allowed:
        raise InvalidValue(sorted(given - allowed)[0], f"is not changed by a {notice_kind}")
    if notice_kind in REGISTRATION_NOTICE_REQUIRED and not given:
        raise InvalidValue(sorted(allowed)[0], f"is required for a {notice_kind}")
    if changes.surname is not None:
        require_text("surname", changes.surname)
    if changes.given_names is not None:
        require_text("given_names", changes.given_names)
    if changes.nationality is not None:
        require_nationality("nationality", changes.nationality)
    if changes.address is not None:
        require_text("address", changes.address, max_length=500, line_breaks=True)


def check_master_data(master_data: MasterData, *, today: date) -> None:
    require_text("surname", master_data.surname)
    require_text("given_names", master_data.given_names)
    require_nationality("nationality", master_data.nationality)
    require_document_number("passport_number", master_data.passport_number)
    if master_data.address is not None:
        require_text("address", master_data.address, max_length=500, line_breaks=True)
    if not date(1900, 1, 1) <= master_data.date_of_birth <= today:
        raise InvalidValue("date_of_birth", "must lie between 1900 and today")
