"""Request (``XCreate``) and response (``XPublic``) bodies of the HTTP API.

These describe the wire format and are kept apart from the domain events, so either can
change without the other. Request bodies check shapes only (types, vocabularies,
lengths); the domain checks the formats and rules and names the offending field too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas.lawful import LawfulDate, LawfulRequest, LawfulTime, Line, Text
from domain.case_file import MAX_FREE_TEXT, MAX_PAGES
from domain.values import (
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
    ProcedureStatus,
    ResidenceDocumentEndReason,
    ResidenceDocumentKind,
)

# The domain's own limits (see domain/values.py and domain/case_file.py).
MAX_SHORT_TEXT: Final = 200
MAX_ADDRESS: Final = 500
MAX_CODE: Final = 60
MAX_REFERENCE: Final = 40
MAX_DOCUMENT_NUMBER: Final = 20
MAX_USER_ID: Final = 100
MAX_LIST_ITEMS: Final = 100

ShortText = Annotated[Line, Field(max_length=MAX_SHORT_TEXT)]
FreeText = Annotated[Text, Field(max_length=MAX_FREE_TEXT)]
# A code of the catalogue or the office. Each kind of code has its own example, one that
# the commands accept (`GET /catalogue`): an example must never be refused with a 422.
Code = Annotated[Line, Field(max_length=MAX_CODE)]
LegalBasisCode = Annotated[Code, Field(examples=["aufenthg-16b"])]
TopicCode = Annotated[Code, Field(examples=["extend_residence_permit"])]
DocumentKindCode = Annotated[Code, Field(examples=["passport"])]
OfficeId = Annotated[Code, Field(examples=["abh-nachbarstadt"])]
DocumentNumber = Annotated[Line, Field(max_length=MAX_DOCUMENT_NUMBER, examples=["C01X00T47"])]
PartNumber = Annotated[int, Field(ge=1)]
BusinessTime = Annotated[
    LawfulTime | None,
    Field(
        description=(
            "When it happened at the office (with time zone); not in the future. Omitted: now."
        )
    ),
]


class _Create(LawfulRequest):
    model_config = ConfigDict(extra="forbid")

    at: BusinessTime = None


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ------------------------------------------------------------------ requests


class ActionCreate(_Create):
    """An action that needs nothing but, optionally, its business time."""


class CaseCreate(_Create):
    """A new case file; it is opened in the office of the account that sends it."""

    reference: Annotated[
        Line | None,
        Field(
            max_length=MAX_REFERENCE,
            description="The office's file number (Aktenzeichen); omitted: one is generated.",
        ),
    ] = None
    surname: ShortText
    given_names: ShortText
    date_of_birth: LawfulDate
    nationality: Annotated[Line, Field(max_length=3, examples=["SYR"])]
    passport_number: DocumentNumber
    address: Annotated[Text | None, Field(max_length=MAX_ADDRESS)] = None


class MasterDataCorrectionCreate(_Create):
    """Only the fields given are corrected; at least one must differ from the record."""

    surname: ShortText | None = None
    given_names: ShortText | None = None
    date_of_birth: LawfulDate | None = None
    nationality: Annotated[Line | None, Field(max_length=3)] = None
    passport_number: Annotated[Line | None, Field(max_length=MAX_DOCUMENT_NUMBER)] = None
    address: Annotated[Text | None, Field(max_length=MAX_ADDRESS)] = None
    reason: FreeText

    def corrections(self) -> dict[str, Any]:
        return self.model_dump(exclude={"at", "reason"}, exclude_none=True)


class DocumentCreate(_Create):
    kind: DocumentKindCode
    sha256: Annotated[Line, Field(min_length=64, max_length=64)]
    size_bytes: Annotated[int, Field(ge=1)]
    media_type: Annotated[Line, Field(max_length=MAX_SHORT_TEXT, examples=["application/pdf"])]
    page_count: Annotated[int, Field(ge=1, le=MAX_PAGES)]
    source: DocumentSource


class ProcedureCreate(_Create):
    channel: Channel
    topic: TopicCode
    legal_basis: LegalBasisCode | None = None


class AssignmentCreate(_Create):
    assignee: Annotated[Line, Field(max_length=MAX_USER_ID)]


class DocumentRequestCreate(_Create):
    what: Annotated[list[ShortText], Field(min_length=1, max_length=MAX_LIST_ITEMS)]
    due_on: LawfulDate


class DecisionCreate(_Create):
    outcome: DecisionOutcome
    legal_basis: LegalBasisCode | None = None
    reason: Annotated[
        FreeText | None, Field(description="Required when the outcome is refused.")
    ] = None


class ResidenceDocumentCreate(_Create):
    kind: ResidenceDocumentKind
    legal_basis: LegalBasisCode
    valid_from: LawfulDate
    valid_until: Annotated[LawfulDate, Field(description="The last day of validity.")]
    document_number: DocumentNumber
    procedure_number: PartNumber | None = None


class ResidenceDocumentExtensionCreate(_Create):
    valid_until: LawfulDate
    reason: FreeText | None = None


class PassportTransferCreate(_Create):
    new_card_number: DocumentNumber


class ResidenceDocumentEndCreate(_Create):
    end_reason: ResidenceDocumentEndReason
    reason: Annotated[
        FreeText | None, Field(description="Required when the document is revoked.")
    ] = None


class FictionCertificateCreate(_Create):
    kind: Annotated[
        FictionKind,
        Field(
            description=(
                "The fiction's effect: § 81 (3) S. 1 (81_3_1), (3) S. 2 (81_3_2) or "
                "(4) AufenthG (81_4)."
            )
        ),
    ]
    valid_from: LawfulDate
    valid_until: LawfulDate
    carrier_sheet_number: DocumentNumber
    procedure_number: Annotated[
        PartNumber | None,
        Field(description="The application (procedure) that gave the fiction; 81_4 needs it."),
    ] = None
    order_basis: Annotated[
        FictionOrderBasis | None,
        Field(
            description=(
                "81_4 only: timely_application (received while the previous title was "
                "valid) or hardship_order (§ 81 (4) S. 3 AufenthG, for a late application)."
            )
        ),
    ] = None
    previous_title_valid_until: Annotated[
        LawfulDate | None,
        Field(description="timely_application only: the previous title's last valid day."),
    ] = None
    hardship_reason: Annotated[
        FreeText | None, Field(description="hardship_order only: why the office ordered it.")
    ] = None


class FictionCertificateExtensionCreate(_Create):
    valid_until: LawfulDate
    new_carrier_sheet_number: Annotated[
        DocumentNumber | None,
        Field(description="Required once the current carrier sheet holds two extensions."),
    ] = None


class FictionCertificateEndCreate(_Create):
    end_reason: FictionEndReason


class IntegrationCourseCreate(_Create):
    legal_basis: Annotated[
        Code | None,
        Field(
            description="Omitted: § 44 AufenthG, or § 44a for an obligation.",
            examples=["aufenthg-44"],
        ),
    ] = None


class EntryProcedureCreate(_Create):
    legal_basis: Annotated[
        Code | None, Field(description="Omitted: § 31 AufenthV.", examples=["aufenthv-31"])
    ] = None


class EntryConsentCreate(_Create):
    valid_until: LawfulDate


class EntryRefusalCreate(_Create):
    reason: FreeText


class InquiryCreate(_Create):
    kind: InquiryKind


class CorrespondenceCreate(_Create):
    direction: Direction
    counterpart_kind: CounterpartKind
    counterpart_name: ShortText
    subject: FreeText
    attachment_numbers: Annotated[
        list[PartNumber], Field(default_factory=list, max_length=MAX_LIST_ITEMS)
    ]


class NoteCreate(_Create):
    text: FreeText


class TransferCreate(_Create):
    to_office_id: OfficeId
    reason: FreeText | None = None


class ClosureCreate(_Create):
    closure_reason: ClosureReason


# ----------------------------------------------------------------- responses


class RecordedPublic(BaseModel):
    """What a write recorded: the case file's new version and any new part's number."""

    case_id: UUID
    version: int
    number: int | None = None


class CaseOpenedPublic(BaseModel):
    case_id: UUID
    reference: str
    version: int


class MasterDataPublic(_Public):
    surname: str
    given_names: str
    date_of_birth: date
    nationality: str
    passport_number: str
    address: str | None


class DocumentPublic(_Public):
    number: int
    kind: str
    sha256: str
    size_bytes: int
    media_type: str
    page_count: int
    source: DocumentSource
    attached_at: datetime


class DocumentRequestPublic(_Public):
    what: list[str]
    due_on: date
    requested_at: datetime


class ProcedurePublic(_Public):
    number: int
    channel: Channel
    topic: str
    legal_basis: str | None
    received_at: datetime
    status: ProcedureStatus
    assignee: str | None
    document_requests: list[DocumentRequestPublic]
    outcome: DecisionOutcome | None
    decided_at: datetime | None
    closed_at: datetime | None


class ResidenceDocumentPublic(_Public):
    number: int
    kind: ResidenceDocumentKind
    legal_basis: str
    valid_from: date
    valid_until: date
    document_number: str
    issued_at: datetime
    extensions: int
    card_status: EatCardStatus
    transfers_to_new_passport: int
    ended_reason: ResidenceDocumentEndReason | None
    ended_at: datetime | None


class FictionCertificatePublic(_Public):
    number: int
    kind: FictionKind
    valid_from: date
    valid_until: date
    carrier_sheet_number: str
    issued_at: datetime
    procedure_number: int | None
    extensions: int
    extensions_on_current_sheet: int
    ended_reason: FictionEndReason | None
    ended_at: datetime | None
    order_basis: Annotated[
        FictionOrderBasis | None,
        Field(description="81_4: why the previous title continues (None: 81_3_x, or older)."),
    ] = None


class EntryProcedurePublic(_Public):
    number: int
    legal_basis: str
    requested_at: datetime
    status: EntryProcedureStatus
    consent_valid_until: date | None
    decided_at: datetime | None


class InquiryPublic(_Public):
    number: int
    kind: InquiryKind
    received_at: datetime
    answered_at: datetime | None


class IntegrationCoursePublic(_Public):
    kind: Literal["entitlement", "obligation"]
    legal_basis: str
    recorded_at: datetime


class CorrespondencePublic(_Public):
    number: int
    direction: Direction
    counterpart_kind: CounterpartKind
    counterpart_name: str
    subject: str
    attachment_numbers: list[int]
    at: datetime


class NotePublic(_Public):
    number: int
    text: str
    by: str
    at: datetime


class CasePublic(_Public):
    """A case file as it is now; its version is also the response's ETag."""

    id: UUID
    version: int
    office_id: str
    reference: str
    status: CaseFileStatus
    transferred_to: str | None
    closure_reason: ClosureReason | None
    master_data: MasterDataPublic
    documents: list[DocumentPublic]
    procedures: list[ProcedurePublic]
    residence_documents: list[ResidenceDocumentPublic]
    fiction_certificates: list[FictionCertificatePublic]
    entry_procedures: list[EntryProcedurePublic]
    inquiries: list[InquiryPublic]
    integration_courses: list[IntegrationCoursePublic]
    correspondence: list[CorrespondencePublic]
    notes: list[NotePublic]
    personal_data_erased_at: Annotated[
        datetime | None,
        Field(
            description="When the person's data was erased (crypto-shredding): its personal "
            'fields then read "[gelöscht]" (dates 0001-01-01). Null: not erased.'
        ),
    ] = None


class EventPublic(BaseModel):
    """One recorded event of a case file."""

    version: int
    type: Annotated[str, Field(examples=["ProcedureDecided"])]
    by: Annotated[str, Field(description="The acting user's id.")]
    at: Annotated[datetime, Field(description="Business time.")]
    recorded_at: Annotated[datetime, Field(description="When the system recorded it.")]
    data: dict[str, Any]
    withheld: Annotated[
        list[str],
        Field(description="Personal fields left out for this reader (their names only)."),
    ] = []


class LegalBasisPublic(_Public):
    code: str
    paragraph: str
    label_de: str
    title_kind: str
    eat: Annotated[bool, Field(description="Issued as an electronic residence permit (eAT).")]


class ContactTopicPublic(_Public):
    code: str
    label_de: str
    label: str
    procedure_kind: Annotated[str, Field(description="The kind of procedure it starts.")]
    legal_bases: Annotated[
        list[str], Field(description="The legal bases its procedures may rest on (any: empty).")
    ]


class CataloguePublic(BaseModel):
    legal_bases: list[LegalBasisPublic]
    topics: list[str]
    contact_topics: Annotated[
        list[ContactTopicPublic], Field(description="The contact form's topics, with labels.")
    ] = []


class FieldErrorPublic(BaseModel):
    field: str
    message: str
    fact: Annotated[
        str | None,
        Field(
            description=(
                "The recorded fact the field's time may not precede (the file's opening, "
                "the procedure's receipt, ...) or lie after (the office's clock)."
            )
        ),
    ] = None


class ProblemPublic(BaseModel):
    """An error, as ``application/problem+json`` (RFC 9457)."""

    type: Annotated[str, Field(examples=["https://akte.example/problems/case-not-found"])]
    title: str
    status: int
    detail: str
    errors: Annotated[
        list[FieldErrorPublic] | None, Field(description="The invalid fields (422 only).")
    ] = None
    expected_version: Annotated[
        int | None, Field(description="The version the If-Match named (412 only).")
    ] = None
    actual_version: Annotated[
        int | None, Field(description="The case file's current version (412 only).")
    ] = None
