"""Request and response bodies of the commitment-declaration and payment routes.

As in :mod:`adapters.http.schemas.cases`, request bodies check shapes only; the domain checks
formats and rules and names the offending field. What the applicant sees (``...Status``)
is kept apart from what caseworkers see (``DeclarationPublic``): the applicant's view has
states, the fee and dates, no personal data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas.cases import (
    MAX_ADDRESS,
    BusinessTime,
    DocumentNumber,
    FreeText,
    PartNumber,
    ShortText,
)
from adapters.http.schemas.lawful import LawfulDate, LawfulRequest, LawfulTime, Line, Text
from domain.values import (
    MAX_CENTS,
    CommitmentStatus,
    Currency,
    FeeStatus,
    PaymentMethod,
    PaymentOutcome,
    PaymentStatus,
    VisitPurpose,
)

MAX_SECRET_REFERENCE: Final = 64
Nationality = Annotated[Line, Field(max_length=3, examples=["DEU"])]
Cents = Annotated[int, Field(ge=1, le=MAX_CENTS, description="In whole cents.")]


class _Create(LawfulRequest):
    model_config = ConfigDict(extra="forbid")


class _CaseworkerCreate(_Create):
    at: BusinessTime = None


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# ------------------------------------------------------------ the applicant


class GuarantorCreate(_Create):
    """The person who declares to pay for the visitor (Verpflichtungsgeber)."""

    surname: ShortText
    given_names: ShortText
    date_of_birth: LawfulDate
    address: Annotated[Text, Field(max_length=MAX_ADDRESS)]
    nationality: Nationality
    id_document_number: Annotated[
        DocumentNumber, Field(description="Identity card or passport number.")
    ]


class InvitedPersonCreate(_Create):
    surname: ShortText
    given_names: ShortText
    date_of_birth: LawfulDate
    nationality: Annotated[Line, Field(max_length=3, examples=["TUR"])]
    passport_number: DocumentNumber


class DeclarationCreate(_Create):
    """A commitment declaration (Verpflichtungserklärung, § 68 AufenthG), submitted online.

    Declare a monthly net income, assets or both. The fee of 29 EUR (§ 47 Abs. 1 Nr. 12
    AufenthV) is due on submission, whether the ability to pay is shown or not.
    """

    guarantor: GuarantorCreate
    invited_person: InvitedPersonCreate
    purpose: VisitPurpose
    stay_from: Annotated[LawfulDate, Field(description="First day of the planned stay.")]
    stay_until: Annotated[LawfulDate, Field(description="Last day of the planned stay.")]
    monthly_net_income_cents: Cents | None = None
    assets_cents: Cents | None = None


class PaymentStartCreate(_Create):
    method: Annotated[
        PaymentMethod, Field(description="How to pay; the provider's page may offer a change.")
    ]


class FeePublic(_Public):
    amount_cents: int
    currency: Currency
    status: FeeStatus


class DeclarationSubmittedPublic(BaseModel):
    reference: Annotated[
        str,
        Field(
            description=(
                "The secret reference: shown only now and stored only as a hash. Keep it: "
                "it is needed (header `X-Declaration-Reference`) to pay and to follow the "
                "declaration. Whoever holds it can see the declaration's status."
            )
        ),
    ]
    status: CommitmentStatus
    fee: FeePublic
    submitted_at: datetime


class ApplicantPaymentPublic(BaseModel):
    number: int
    status: PaymentStatus
    method: PaymentMethod
    amount_cents: int
    currency: Currency
    initiated_at: datetime
    settled_at: datetime | None
    redirect_url: Annotated[
        str | None, Field(description="The provider's page, while the payment is open there.")
    ]


class PaymentStartedPublic(BaseModel):
    payment: ApplicantPaymentPublic
    redirect_url: Annotated[str, Field(description="Send the payer here to pay.")]


class DeclarationStatusPublic(BaseModel):
    """Where one's own declaration stands: states, the fee and dates, no personal data."""

    status: CommitmentStatus
    fee: FeePublic
    submitted_at: datetime
    stay_from: date
    stay_until: date
    fee_paid_at: datetime | None
    payments: list[ApplicantPaymentPublic]
    pickup_appointment_at: datetime | None
    handed_over_at: datetime | None
    withdrawn_at: datetime | None


# ---------------------------------------------------------------- payments


class PaymentNotificationPublic(BaseModel):
    """A payment platform's report on a payment; the body must be signed (HMAC-SHA256)."""

    # Platforms add fields over time; the signature covers them, the rest is ignored.
    model_config = ConfigDict(extra="ignore")

    transaction_id: Annotated[
        str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")
    ]
    status: PaymentOutcome
    amount_cents: Annotated[int, Field(ge=1, le=MAX_CENTS)]
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]
    method: PaymentMethod | None = None
    occurred_at: Annotated[
        LawfulTime | None, Field(description="When it was paid, failed or expired.")
    ] = None


class NotificationReceivedPublic(BaseModel):
    outcome: Annotated[
        Literal["recorded", "already_recorded"],
        Field(description="`already_recorded`: a repeated or outdated report, nothing new."),
    ]


class PaymentReturnPublic(BaseModel):
    message: str


# -------------------------------------------------------------- caseworkers


class GuarantorPublic(_Public):
    surname: str
    given_names: str
    date_of_birth: LawfulDate
    address: str
    nationality: str
    id_document_number: str


class InvitedPersonPublic(_Public):
    surname: str
    given_names: str
    date_of_birth: LawfulDate
    nationality: str
    passport_number: str


class PaymentPublic(_Public):
    number: int
    provider: str
    method: PaymentMethod
    transaction_id: str
    amount_cents: int
    currency: Currency
    initiated_at: datetime
    status: PaymentStatus
    settled_at: datetime | None
    paid_with: PaymentMethod | None
    refunded_at: datetime | None


class AbilityToPayCheckPublic(_Public):
    passed: bool
    reason: str | None
    by: str
    checked_at: datetime


class DeclarationFeePublic(FeePublic):
    legal_basis: str
    payment_number: Annotated[int | None, Field(description="The payment that paid it.")]
    paid_at: datetime | None
    refunded_at: datetime | None


class DeclarationPublic(BaseModel):
    """A commitment declaration as it is now; its version is also the response's ETag."""

    id: UUID
    version: int
    office_id: str
    status: CommitmentStatus
    submitted_at: datetime
    guarantor: GuarantorPublic
    invited_person: InvitedPersonPublic
    purpose: VisitPurpose
    stay_from: date
    stay_until: date
    stay_days: int
    monthly_net_income_cents: int | None
    assets_cents: int | None
    fee: DeclarationFeePublic
    payments: list[PaymentPublic]
    ability_to_pay: AbilityToPayCheckPublic | None
    pickup_appointment_at: datetime | None
    handed_over_at: datetime | None
    visitor_entry_date: date | None
    liability_until: Annotated[
        date | None, Field(description="Last day of liability: five years from entry.")
    ]
    withdrawn_at: datetime | None
    case_id: Annotated[UUID | None, Field(description="The visitor's case file, if linked.")]


class DeclarationSummaryPublic(BaseModel):
    id: UUID
    version: int
    office_id: str
    status: CommitmentStatus
    fee_status: FeeStatus
    submitted_at: datetime
    stay_from: date
    stay_until: date


class DeclarationRecordedPublic(BaseModel):
    """What a write recorded: the declaration's new version."""

    declaration_id: UUID
    version: int
    payment_number: Annotated[int | None, Field(description="The payment refunded.")] = None


class AbilityCheckCreate(_CaseworkerCreate):
    passed: bool
    reason: Annotated[FreeText | None, Field(description="Required when not passed.")] = None


class PickupAppointmentCreate(_CaseworkerCreate):
    appointment_at: Annotated[LawfulTime, Field(description="After the time it is set.")]


class HandoverCreate(_CaseworkerCreate):
    """Signed in person and handed over; needs the fee paid and the ability to pay shown."""


class VisitorEntryCreate(_CaseworkerCreate):
    entry_date: Annotated[
        LawfulDate,
        Field(description="Between the day of handover and today; liability runs 5 years."),
    ]
    reason: Annotated[
        FreeText | None, Field(description="Required when correcting a recorded date.")
    ] = None


class WithdrawalCreate(_CaseworkerCreate):
    reason: FreeText | None = None


class RefundCreate(_CaseworkerCreate):
    reason: FreeText
    payment_number: Annotated[
        PartNumber | None,
        Field(description="Omitted: the payment that paid the fee; else a surplus payment."),
    ] = None


class CaseLinkCreate(_CaseworkerCreate):
    case_id: Annotated[UUID, Field(description="The visitor's case file, in the same office.")]
