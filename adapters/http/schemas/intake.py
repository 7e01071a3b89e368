"""Request and response bodies of the contact form and its triage.

The form itself is ``multipart/form-data`` (fields and files), declared on the route; the
caseworkers' triage routes take JSON like every other write.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas.cases import (
    MAX_ADDRESS,
    MAX_DOCUMENT_NUMBER,
    MAX_REFERENCE,
    BusinessTime,
    DocumentKindCode,
    FreeText,
    LegalBasisCode,
    ShortText,
    TopicCode,
)
from adapters.http.schemas.lawful import LawfulDate, LawfulRequest, Line, Text
from domain.values import DismissalReason, SubmissionStatus


class _Create(LawfulRequest):
    model_config = ConfigDict(extra="forbid")

    at: BusinessTime = None


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ------------------------------------------------------------------ requests


class SubmissionCaseLinkCreate(_Create):
    case_id: Annotated[UUID, Field(description="The sender's case file, in the same office.")]


class SubmissionCaseCreate(_Create):
    """Open the sender's case file from the submission. Names and date of birth default to
    what the sender gave; nationality and passport number come from their documents."""

    reference: Annotated[
        Line | None,
        Field(
            max_length=MAX_REFERENCE,
            description="The office's file number (Aktenzeichen); omitted: one is generated.",
        ),
    ] = None
    surname: ShortText | None = None
    given_names: ShortText | None = None
    date_of_birth: Annotated[
        LawfulDate | None, Field(description="Required unless the sender gave it.")
    ] = None
    nationality: Annotated[Line, Field(max_length=3, examples=["SYR"])]
    passport_number: Annotated[Line, Field(max_length=MAX_DOCUMENT_NUMBER)]
    address: Annotated[Text | None, Field(max_length=MAX_ADDRESS)] = None


class SubmissionProcedureCreate(_Create):
    topic: Annotated[
        TopicCode | None, Field(description="Omitted: the topic the sender chose.")
    ] = None
    legal_basis: Annotated[
        LegalBasisCode | None,
        Field(description="One of the topic's legal bases (`GET /catalogue`)."),
    ] = None
    document_kind: Annotated[
        DocumentKindCode | None,
        Field(description="The kind the files get as documents; omitted: contact-form-upload."),
    ] = None


class SubmissionReplyCreate(_Create):
    reply: Annotated[FreeText, Field(description="What the office answered (by e-mail).")]


class SubmissionDismissalCreate(_Create):
    reason: DismissalReason
    note: FreeText | None = None


# ----------------------------------------------------------------- responses


class ReceivedFilePublic(BaseModel):
    number: int
    media_type: str
    size_bytes: int
    page_count: int


class ContactFormReceiptPublic(BaseModel):
    """The sender's receipt: quote the reference when contacting the office."""

    receipt: Annotated[
        str,
        Field(
            examples=["KF-7GQ2M-4XD9T-PARW3-KH8NC"],
            description="Quote it when contacting the office; it is shown only now.",
        ),
    ]
    topic: str
    submitted_at: datetime
    files: list[ReceivedFilePublic]


class ContactPublic(_Public):
    surname: str
    given_names: str
    email: str
    date_of_birth: date | None
    file_number: Annotated[
        str | None, Field(description="The file number the sender says they have (unchecked).")
    ]


class SubmittedFilePublic(BaseModel):
    number: int
    name: Annotated[str, Field(description="The sender's file name (never used for storage).")]
    media_type: str
    size_bytes: int
    page_count: int
    sha256: str


class SubmissionReplyPublic(_Public):
    text: str
    by: str
    at: datetime


class SubmissionSummaryPublic(BaseModel):
    id: UUID
    version: int
    office_id: str
    status: SubmissionStatus
    topic: str
    submitted_at: datetime
    file_count: int
    case_id: UUID | None


class SubmissionPublic(BaseModel):
    """A contact form submission as it is now; its version is also the ETag."""

    id: UUID
    version: int
    office_id: str
    status: SubmissionStatus
    topic: str
    message: str
    contact: ContactPublic
    files: list[SubmittedFilePublic]
    submitted_at: datetime
    suggested_case_id: Annotated[
        UUID | None,
        Field(
            description=(
                "The case file of the office with the file number the sender gave, if any: "
                "a hint for linking, to be checked."
            )
        ),
    ]
    case_id: UUID | None
    case_opened_from_submission: bool
    procedure_number: int | None
    procedure_topic: str | None
    procedure_kind: str | None
    legal_basis: str | None
    document_numbers: list[int]
    reply: SubmissionReplyPublic | None
    dismissal_reason: DismissalReason | None
    triaged_at: datetime | None
    triaged_by: str | None


class SubmissionRecordedPublic(BaseModel):
    submission_id: UUID
    version: int


class CaseFromSubmissionPublic(BaseModel):
    case_id: UUID
    reference: str
    version: Annotated[int, Field(description="The case file's version.")]


class SubmissionCaseOpenedPublic(SubmissionRecordedPublic):
    case: CaseFromSubmissionPublic


class ProcedureFromSubmissionPublic(BaseModel):
    case_id: UUID
    version: Annotated[int, Field(description="The case file's version.")]
    procedure_number: int
    document_numbers: list[int]


class SubmissionProcedurePublic(SubmissionRecordedPublic):
    procedure: ProcedureFromSubmissionPublic
