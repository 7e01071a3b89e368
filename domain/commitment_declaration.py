"""The commitment declaration (Verpflichtungserklärung, §68 AufenthG) and its fee.

A resident who invites a foreign visitor declares that they will pay the visitor's living
costs. The declaration is an aggregate of its own: the guarantor often has no case file
(it can be linked to the visitor's case file when one exists). Its life:

1. submitted online, and the fee assessed at once: 29 EUR (§47 (1) Nr. 12 AufenthV), due
   whether or not the ability to pay is shown later;
2. paid by ePayment: a payment is initiated at the provider, which later reports it paid,
   failed or expired; after a failure or expiry the applicant may pay again;
3. the ability to pay checked (passed, or failed with a reason);
4. a pickup appointment set, then signed in person and handed over;
5. the visitor's entry recorded when known: the guarantor is liable for five years from it.

It can be withdrawn before handover, and a paid fee refunded where the office decides so.

As in :mod:`domain.case_file`, each command checks its rules first (``check_*``) and only
then triggers an event; ``apply`` only changes state. A provider's report is the one input
that is never refused for the declaration's state: the money has moved, so it is recorded
whatever happened meanwhile (a payment arriving for a fee that another payment had already
settled is recorded as a surplus, to be refunded). Reports that repeat or contradict an
outcome already recorded for the same payment record nothing.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.case_file import require_code
from domain.errors import (
    AbilityToPayNotShown,
    BusinessTimeBeforeFact,
    DeclarationHandedOver,
    DeclarationNotHandedOver,
    DeclarationWithdrawn,
    FeeAlreadyPaid,
    FeeNotPaid,
    InvalidValue,
    NothingToCorrect,
    PaymentMismatch,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentStillOpen,
)
from domain.personal import Personal
from domain.values import (
    COMMITMENT_DECLARATION_FEE,
    COMMITMENT_DECLARATION_FEE_LEGAL_BASIS,
    COMMITMENT_LIABILITY_YEARS,
    GUARANTOR_MINIMUM_AGE,
    CommitmentStatus,
    Currency,
    FeeStatus,
    LawfulEvent,
    Money,
    PaymentMethod,
    PaymentOutcome,
    PaymentStatus,
    VisitPurpose,
    add_years,
    require_aware,
    require_choice,
    require_document_number,
    require_http_url,
    require_nationality,
    require_positive_cents,
    require_sha256,
    require_text,
    require_transaction_id,
)

MAX_FREE_TEXT: Final = 4000
MAX_ADDRESS: Final = 500
_OLDEST_BIRTH_DATE: Final = date(1900, 1, 1)
_DECLARATION_REFERENCE_NAMESPACE: Final = UUID("0c6a5f1e-3f7d-4b0e-9a54-7d1c2e8b9f30")
_PAYMENT_TRANSACTION_NAMESPACE: Final = UUID("a7e2c4d9-1b6f-4c3a-8e5d-2f9b0c7a6e14")

SettlementOutcome = Literal["recorded", "already_recorded"]
"""What a provider's report did: recorded an event, or repeated what is on record."""


# -- State. Plain mutable dataclasses, because snapshots store them; they are changed
# -- only by event ``apply`` methods.


@dataclass
class Guarantor:
    """The resident who declares to pay for the visitor (Verpflichtungsgeber)."""

    surname: str
    given_names: str
    date_of_birth: date
    address: str
    nationality: str
    id_document_number: str


@dataclass
class InvitedPerson:
    """The foreign visitor the declaration is for."""

    surname: str
    given_names: str
    date_of_birth: date
    nationality: str
    passport_number: str


@dataclass
class PaymentAttempt:
    """One payment of the fee at the provider, numbered 1, 2, ... in the declaration."""

    number: int
    provider: str
    method: PaymentMethod
    transaction_id: str
    amount_cents: int
    currency: Currency
    redirect_url: str
    initiated_at: datetime
    status: PaymentStatus = "pending"
    settled_at: datetime | None = None
    paid_with: PaymentMethod | None = None
    """The method the payer finally used, as the provider reports it."""
    refunded_at: datetime | None = None


@dataclass
class AbilityToPayCheck:
    passed: bool
    reason: str | None
    by: str
    checked_at: datetime


def _find_payment(payments: list[PaymentAttempt], number: int) -> PaymentAttempt:
    if 1 <= number <= len(payments):
        return payments[number - 1]
    raise PaymentNotFound(f"payment {number} does not exist for this declaration")


class CommitmentDeclaration(Aggregate):
    """One commitment declaration (Verpflichtungserklärung, §68 AufenthG)."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.reference_sha256: str = ""
        self.guarantor: Guarantor = Guarantor("", "", date.min, "", "", "")
        self.invited_person: InvitedPerson = InvitedPerson("", "", date.min, "", "")
        self.purpose: VisitPurpose = "other"
        self.stay_from: date = date.min
        self.stay_until: date = date.min
        self.monthly_net_income_cents: int | None = None
        self.assets_cents: int | None = None
        self.submitted_at: datetime = datetime.min
        self.fee_amount_cents: int = 0
        self.fee_currency: Currency = "EUR"
        self.fee_legal_basis: str = ""
        self.fee_payment_number: int | None = None
        """The payment that settled the fee; ``None`` while it is due."""
        self.fee_paid_at: datetime | None = None
        self.fee_refunded_at: datetime | None = None
        self.payments: list[PaymentAttempt] = []
        self.ability_to_pay: AbilityToPayCheck | None = None
        self.pickup_appointment_at: datetime | None = None
        self.handed_over_at: datetime | None = None
        self.visitor_entry_date: date | None = None
        self.liability_until: date | None = None
        self.withdrawn_at: datetime | None = None
        self.case_id: str | None = None

    # ------------------------------------------------------------------ events

    class Event(LawfulEvent, Aggregate.Event):
        """Base of every declaration event: who acted (``by``) and when (``at``)."""

        by: str
        at: datetime

    class Submitted(Event, Aggregate.Created):
        office_id: str
        reference_sha256: str
        """The hash of the applicant's secret reference; the reference itself is never stored."""
        guarantor_surname: Personal[str]
        guarantor_given_names: Personal[str]
        guarantor_date_of_birth: Personal[date]
        guarantor_address: Personal[str]
        guarantor_nationality: Personal[str]
        guarantor_id_document_number: Personal[str]
        invited_surname: Personal[str]
        invited_given_names: Personal[str]
        invited_date_of_birth: Personal[date]
        invited_nationality: Personal[str]
        invited_passport_number: Personal[str]
        # Personal: "medical_treatment" is health data of the visitor.
        purpose: Personal[VisitPurpose]
        stay_from: date
        stay_until: date
        monthly_net_income_cents: Personal[int | None]
        assets_cents: Personal[int | None]

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.office_id = self.office_id
            declaration.reference_sha256 = self.reference_sha256
            declaration.guarantor = Guarantor(
                surname=self.guarantor_surname,
                given_names=self.guarantor_given_names,
                date_of_birth=self.guarantor_date_of_birth,
                address=self.guarantor_address,
                nationality=self.guarantor_nationality,
                id_document_number=self.guarantor_id_document_number,
            )
            declaration.invited_person = InvitedPerson(
                surname=self.invited_surname,
                given_names=self.invited_given_names,
                date_of_birth=self.invited_date_of_birth,
                nationality=self.invited_nationality,
                passport_number=self.invited_passport_number,
            )
            declaration.purpose = self.purpose
            declaration.stay_from = self.stay_from
            declaration.stay_until = self.stay_until
            declaration.monthly_net_income_cents = self.monthly_net_income_cents
            declaration.assets_cents = self.assets_cents
            declaration.submitted_at = self.at

    class FeeAssessed(Event):
        """The fee is due (§47 (1) Nr. 12 AufenthV), whatever the ability check finds."""

        amount_cents: int
        currency: Currency
        legal_basis: str

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.fee_amount_cents = self.amount_cents
            declaration.fee_currency = self.currency
            declaration.fee_legal_basis = self.legal_basis

    class PaymentInitiated(Event):
        """The office created a payment at the provider; the payer is sent to its page."""

        payment_number: int
        provider: str
        method: PaymentMethod
        transaction_id: str
        amount_cents: int
        currency: Currency
        redirect_url: str

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.payments.append(
                PaymentAttempt(
                    number=self.payment_number,
                    provider=self.provider,
                    method=self.method,
                    transaction_id=self.transaction_id,
                    amount_cents=self.amount_cents,
                    currency=self.currency,
                    redirect_url=self.redirect_url,
                    initiated_at=self.at,
                )
            )

    class FeePaid(Event):
        """The provider reports the fee paid; ``at`` is when it was paid."""

        payment_number: int
        transaction_id: str
        amount_cents: int
        currency: Currency
        method: PaymentMethod | None

        def apply(self, declaration: CommitmentDeclaration) -> None:
            payment = declaration.payments[self.payment_number - 1]
            payment.status = "paid"
            payment.settled_at = self.at
            payment.paid_with = self.method
            declaration.fee_payment_number = self.payment_number
            declaration.fee_paid_at = self.at

    class SurplusPaymentReceived(Event):
        """A payment arrived for a fee another payment had already settled: to refund."""

        payment_number: int
        transaction_id: str
        amount_cents: int
        currency: Currency
        method: PaymentMethod | None

        def apply(self, declaration: CommitmentDeclaration) -> None:
            payment = declaration.payments[self.payment_number - 1]
            payment.status = "paid"
            payment.settled_at = self.at
            payment.paid_with = self.method

    class PaymentFailed(Event):
        payment_number: int
        transaction_id: str

        def apply(self, declaration: CommitmentDeclaration) -> None:
            payment = declaration.payments[self.payment_number - 1]
            payment.status = "failed"
            payment.settled_at = self.at

    class PaymentExpired(Event):
        """The payer did not complete the payment in time; the provider closed it."""

        payment_number: int
        transaction_id: str

        def apply(self, declaration: CommitmentDeclaration) -> None:
            payment = declaration.payments[self.payment_number - 1]
            payment.status = "expired"
            payment.settled_at = self.at

    class PaymentRefunded(Event):
        """The office pays a payment back: the fee, or a surplus payment."""

        payment_number: int
        transaction_id: str
        amount_cents: int
        currency: Currency
        reason: Personal[str]

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.payments[self.payment_number - 1].refunded_at = self.at
            if self.payment_number == declaration.fee_payment_number:
                declaration.fee_refunded_at = self.at

    class AbilityToPayChecked(Event):
        """The guarantor's income and assets were checked; the latest check counts."""

        passed: bool
        reason: Personal[str | None]

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.ability_to_pay = AbilityToPayCheck(
                passed=self.passed, reason=self.reason, by=self.by, checked_at=self.at
            )

    class PickupAppointmentSet(Event):
        appointment_at: datetime

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.pickup_appointment_at = self.appointment_at

    class SignedAndHandedOver(Event):
        """The guarantor signed in person and took the declaration."""

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.handed_over_at = self.at

    class VisitorEntryRecorded(Event):
        """The visitor entered on ``entry_date``; the guarantor is liable until
        ``liability_until`` (§68 (1) S.4 AufenthG). A later record corrects an earlier one."""

        entry_date: date
        liability_until: date
        previous_entry_date: date | None
        reason: Personal[str | None]

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.visitor_entry_date = self.entry_date
            declaration.liability_until = self.liability_until

    class Withdrawn(Event):
        reason: Personal[str | None]

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.withdrawn_at = self.at

    class LinkedToCaseFile(Event):
        """The declaration belongs to the visitor's case file (a later link replaces it)."""

        case_id: str
        previous_case_id: str | None

        def apply(self, declaration: CommitmentDeclaration) -> None:
            declaration.case_id = self.case_id

    # ----------------------------------------------------------------- queries

    @property
    def fee(self) -> Money:
        return Money(self.fee_amount_cents, self.fee_currency)

    @property
    def pending_payment(self) -> PaymentAttempt | None:
        """The payment still open at the provider; there is at most one."""
        for payment in self.payments:
            if payment.status == "pending":
                return payment
        return None

    @property
    def fee_status(self) -> FeeStatus:
        if self.fee_refunded_at is not None:
            return "refunded"
        if self.fee_paid_at is not None:
            return "paid"
        if self.pending_payment is not None:
            return "payment_pending"
        return "due"

    @property
    def stay_days(self) -> int:
        """The planned stay's duration in days, first and last day included."""
        return (self.stay_until - self.stay_from).days + 1

    @property
    def status(self) -> CommitmentStatus:
        if self.withdrawn_at is not None:
            return "withdrawn"
        if self.handed_over_at is not None:
            return "handed_over"
        fee_status = self.fee_status
        if fee_status == "refunded":
            return "fee_refunded"
        if fee_status == "payment_pending":
            return "payment_pending"
        if fee_status == "due":
            return "fee_due"
        if self.ability_to_pay is None:
            return "awaiting_ability_check"
        if not self.ability_to_pay.passed:
            return "ability_not_shown"
        if self.pickup_appointment_at is None:
            return "ready_for_pickup"
        return "pickup_scheduled"

    def payment(self, number: int) -> PaymentAttempt:
        return _find_payment(self.payments, number)

    def payment_by_transaction(self, transaction_id: str) -> PaymentAttempt:
        for payment in self.payments:
            if payment.transaction_id == transaction_id:
                return payment
        raise PaymentNotFound("no payment of this declaration has this transaction id")

    # ---------------------------------------------------------------- commands

    @classmethod
    def submit(
        cls,
        *,
        declaration_id: UUID,
        office_id: str,
        reference_sha256: str,
        guarantor: Guarantor,
        invited_person: InvitedPerson,
        purpose: VisitPurpose,
        stay_from: date,
        stay_until: date,
        monthly_net_income_cents: int | None,
        assets_cents: int | None,
        act: Act,
        fee: Money = COMMITMENT_DECLARATION_FEE,
    ) -> CommitmentDeclaration:
        """A declaration submitted online; its fee is assessed in the same breath."""
        require_code("office_id", office_id)
        require_sha256("reference_sha256", reference_sha256)
        today = act.at.date()
        check_guarantor(guarantor, today=today)
        check_invited_person(invited_person, today=today)
        require_choice("purpose", purpose, VisitPurpose)
        check_planned_stay(stay_from, stay_until, today=today)
        check_declared_means(monthly_net_income_cents, assets_cents)
        declaration = cls._create(
            cls.Submitted,
            id=declaration_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            reference_sha256=reference_sha256,
            guarantor_surname=guarantor.surname,
            guarantor_given_names=guarantor.given_names,
            guarantor_date_of_birth=guarantor.date_of_birth,
            guarantor_address=guarantor.address,
            guarantor_nationality=guarantor.nationality,
            guarantor_id_document_number=guarantor.id_document_number,
            invited_surname=invited_person.surname,
            invited_given_names=invited_person.given_names,
            invited_date_of_birth=invited_person.date_of_birth,
            invited_nationality=invited_person.nationality,
            invited_passport_number=invited_person.passport_number,
            purpose=purpose,
            stay_from=stay_from,
            stay_until=stay_until,
            monthly_net_income_cents=monthly_net_income_cents,
            assets_cents=assets_cents,
        )
        declaration._record(
            cls.FeeAssessed,
            act,
            amount_cents=fee.amount_cents,
            currency=fee.currency,
            legal_basis=COMMITMENT_DECLARATION_FEE_LEGAL_BASIS,
        )
        return declaration

    def _record(
        self, event_class: type[CommitmentDeclaration.Event], act: Act, **fields: Any
    ) -> None:
        self.trigger_event(event_class, by=act.by, at=act.at, timestamp=act.recorded_at, **fields)

    def initiate_payment(
        self,
        *,
        provider: str,
        method: PaymentMethod,
        transaction_id: str,
        redirect_url: str,
        act: Act,
    ) -> int:
        """Record a payment created at the provider; returns its number."""
        self.check_payment_may_start()
        require_code("provider", provider)
        require_choice("method", method, PaymentMethod)
        require_transaction_id("transaction_id", transaction_id)
        require_http_url("redirect_url", redirect_url)
        if any(payment.transaction_id == transaction_id for payment in self.payments):
            raise InvalidValue("transaction_id", "the provider reused an earlier transaction id")
        number = len(self.payments) + 1
        self._record(
            self.PaymentInitiated,
            act,
            payment_number=number,
            provider=provider,
            method=method,
            transaction_id=transaction_id,
            amount_cents=self.fee_amount_cents,
            currency=self.fee_currency,
            redirect_url=redirect_url,
        )
        return number

    def settle_payment(
        self,
        *,
        transaction_id: str,
        outcome: PaymentOutcome,
        amount_cents: int,
        currency: str,
        method: PaymentMethod | None,
        act: Act,
    ) -> SettlementOutcome:
        """Record the provider's report on a payment, unless it is already on record.

        A report must name exactly the amount and currency of the payment. ``paid`` wins
        over ``failed`` and ``expired`` whatever order they arrive in (the payer may retry
        on the provider's page after a declined card); after ``paid`` nothing changes the
        payment, and a repeated or second failure report records nothing.
        """
        payment = self.payment_by_transaction(transaction_id)
        require_choice("status", outcome, PaymentOutcome)
        if method is not None:
            require_choice("method", method, PaymentMethod)
        check_matches(payment, amount_cents=amount_cents, currency=currency)
        if payment.status == "paid":
            return "already_recorded"
        if outcome == "paid":
            check_reported_after_initiation(payment, act)
            # The money has moved: it is recorded even on a withdrawn declaration.
            fee_settled = self.fee_payment_number is not None
            self._record(
                self.SurplusPaymentReceived if fee_settled else self.FeePaid,
                act,
                payment_number=payment.number,
                transaction_id=transaction_id,
                amount_cents=amount_cents,
                currency=payment.currency,
                method=method,
            )
            return "recorded"
        if payment.status != "pending":
            return "already_recorded"
        check_reported_after_initiation(payment, act)
        self._record(
            self.PaymentFailed if outcome == "failed" else self.PaymentExpired,
            act,
            payment_number=payment.number,
            transaction_id=transaction_id,
        )
        return "recorded"

    def refund_payment(self, *, payment_number: int | None, reason: str, act: Act) -> int:
        """Pay back the fee (``payment_number`` omitted) or a surplus payment."""
        number = payment_number if payment_number is not None else self.fee_payment_number
        if number is None:
            raise PaymentNotRefundable("the fee has not been paid, so there is nothing to refund")
        payment = self.payment(number)
        if payment.status != "paid":
            raise PaymentNotRefundable(
                f"payment {number} is {payment.status}; only a paid payment can be refunded"
            )
        if payment.refunded_at is not None:
            raise PaymentNotRefundable(f"payment {number} has already been refunded")
        require_text("reason", reason, max_length=MAX_FREE_TEXT, line_breaks=True)
        if payment.settled_at is not None and act.at < payment.settled_at:
            raise BusinessTimeBeforeFact("at", f"the payment of payment {number}")
        self._record(
            self.PaymentRefunded,
            act,
            payment_number=number,
            transaction_id=payment.transaction_id,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            reason=reason,
        )
        return number

    def check_ability_to_pay(self, *, passed: bool, reason: str | None, act: Act) -> None:
        self.check_open()
        if not isinstance(passed, bool):
            raise InvalidValue("passed", "must be true or false")
        if reason is not None:
            require_text("reason", reason, max_length=MAX_FREE_TEXT, line_breaks=True)
        if not passed and reason is None:
            raise InvalidValue("reason", "a failed check must give its reason")
        self._record(self.AbilityToPayChecked, act, passed=passed, reason=reason)

    def set_pickup_appointment(self, *, appointment_at: datetime, act: Act) -> None:
        """Invite the guarantor to sign and pick up; a later appointment replaces it."""
        self.check_ready_for_handover()
        require_aware("appointment_at", appointment_at)
        if appointment_at <= act.at:
            raise InvalidValue("appointment_at", "must lie after the time it is set")
        self._record(self.PickupAppointmentSet, act, appointment_at=appointment_at)

    def hand_over(self, *, act: Act) -> None:
        """The guarantor signed in person and took the declaration."""
        self.check_ready_for_handover()
        self._record(self.SignedAndHandedOver, act)

    def record_visitor_entry(self, *, entry_date: date, reason: str | None, act: Act) -> None:
        """The visitor's entry, which starts the five years of liability."""
        if self.handed_over_at is None:
            raise DeclarationNotHandedOver(
                "the declaration has not been handed over, so no visitor entered on it"
            )
        if not self.handed_over_at.date() <= entry_date <= act.at.date():
            raise InvalidValue(
                "entry_date", "must lie between the day of handover and the day it is recorded"
            )
        if entry_date == self.visitor_entry_date:
            raise NothingToCorrect("this entry date is already recorded")
        if reason is not None:
            require_text("reason", reason, max_length=MAX_FREE_TEXT, line_breaks=True)
        if self.visitor_entry_date is not None and reason is None:
            raise InvalidValue("reason", "correcting a recorded entry date needs a reason")
        self._record(
            self.VisitorEntryRecorded,
            act,
            entry_date=entry_date,
            liability_until=add_years(entry_date, COMMITMENT_LIABILITY_YEARS),
            previous_entry_date=self.visitor_entry_date,
            reason=reason,
        )

    def withdraw(self, *, reason: str | None, act: Act) -> None:
        """The guarantor withdraws before handover; a paid fee stays paid unless refunded."""
        self.check_open()
        if reason is not None:
            require_text("reason", reason, max_length=MAX_FREE_TEXT, line_breaks=True)
        self._record(self.Withdrawn, act, reason=reason)

    def link_to_case_file(self, *, case_id: UUID, act: Act) -> None:
        if str(case_id) == self.case_id:
            raise NothingToCorrect("the declaration is already linked to this case file")
        self._record(
            self.LinkedToCaseFile, act, case_id=str(case_id), previous_case_id=self.case_id
        )

    # ------------------------------------------------------------------ checks

    def check_not_withdrawn(self) -> None:
        if self.withdrawn_at is not None:
            raise DeclarationWithdrawn("the declaration has been withdrawn")

    def check_open(self) -> None:
        """Neither withdrawn nor handed over."""
        self.check_not_withdrawn()
        if self.handed_over_at is not None:
            raise DeclarationHandedOver("the declaration has already been handed over")

    def check_payment_may_start(self) -> None:
        self.check_open()
        if self.fee_paid_at is not None:
            raise FeeAlreadyPaid(f"the fee was paid with payment {self.fee_payment_number}")
        pending = self.pending_payment
        if pending is not None:
            raise PaymentStillOpen(
                f"payment {pending.number} is still open at the provider; complete it there"
            )

    def check_ready_for_handover(self) -> None:
        """Paid (and not refunded), and the ability to pay shown."""
        self.check_open()
        if self.fee_status != "paid":
            raise FeeNotPaid(f"the fee is {self.fee_status.replace('_', ' ')}, not paid")
        if self.ability_to_pay is None:
            raise AbilityToPayNotShown("the ability to pay has not been checked yet")
        if not self.ability_to_pay.passed:
            raise AbilityToPayNotShown("the ability to pay was not shown in the last check")


def check_reported_after_initiation(payment: PaymentAttempt, act: Act) -> None:
    """The provider's time of a report (``occurred_at``, the event's business time)
    cannot precede the payment's initiation."""
    if act.at < payment.initiated_at:
        raise BusinessTimeBeforeFact("occurred_at", f"the initiation of payment {payment.number}")


def check_matches(payment: PaymentAttempt, *, amount_cents: int, currency: str) -> None:
    """A report about a payment must name the amount and currency the office asked for."""
    if currency != payment.currency:
        raise PaymentMismatch(
            "currency", f"payment {payment.number} was requested in {payment.currency}"
        )
    if amount_cents != payment.amount_cents:
        raise PaymentMismatch(
            "amount_cents",
            f"payment {payment.number} was requested over {payment.amount_cents} cents",
        )


def _check_birth_date(field: str, value: date, *, today: date) -> None:
    if not _OLDEST_BIRTH_DATE <= value <= today:
        raise InvalidValue(field, "must lie between 1900 and today")


def check_guarantor(guarantor: Guarantor, *, today: date) -> None:
    require_text("guarantor.surname", guarantor.surname)
    require_text("guarantor.given_names", guarantor.given_names)
    _check_birth_date("guarantor.date_of_birth", guarantor.date_of_birth, today=today)
    if add_years(guarantor.date_of_birth, GUARANTOR_MINIMUM_AGE) > today:
        raise InvalidValue(
            "guarantor.date_of_birth", f"the guarantor must be at least {GUARANTOR_MINIMUM_AGE}"
        )
    require_text("guarantor.address", guarantor.address, max_length=MAX_ADDRESS, line_breaks=True)
    require_nationality("guarantor.nationality", guarantor.nationality)
    require_document_number("guarantor.id_document_number", guarantor.id_document_number)


def check_invited_person(person: InvitedPerson, *, today: date) -> None:
    require_text("invited_person.surname", person.surname)
    require_text("invited_person.given_names", person.given_names)
    _check_birth_date("invited_person.date_of_birth", person.date_of_birth, today=today)
    require_nationality("invited_person.nationality", person.nationality)
    require_document_number("invited_person.passport_number", person.passport_number)


def check_planned_stay(stay_from: date, stay_until: date, *, today: date) -> None:
    if stay_from < today:
        raise InvalidValue("stay_from", "the planned stay must not begin in the past")
    if stay_until < stay_from:
        raise InvalidValue("stay_until", "must not lie before stay_from")


def check_declared_means(monthly_net_income_cents: int | None, assets_cents: int | None) -> None:
    """Income, assets or both; each in whole, positive cents."""
    if monthly_net_income_cents is None and assets_cents is None:
        raise InvalidValue(
            "monthly_net_income_cents", "declare a monthly net income, assets or both"
        )
    if monthly_net_income_cents is not None:
        require_positive_cents("monthly_net_income_cents", monthly_net_income_cents)
    if assets_cents is not None:
        require_positive_cents("assets_cents", assets_cents)


class DeclarationReference(Aggregate):
    """Claims the hash of one secret reference for one declaration.

    The applicant's secret reference (128 random bits) is shown once and never stored;
    its sha256 names this aggregate, so the declaration is found by hashing what the
    applicant presents. Saved in the same transaction as the declaration, like
    :class:`domain.case_reference.CaseReference`.
    """

    def __init__(self) -> None:
        self.declaration_id: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Claimed(Event, Aggregate.Created):
        declaration_id: str

        def apply(self, claim: DeclarationReference) -> None:
            claim.declaration_id = self.declaration_id

    @staticmethod
    def id_for(reference_sha256: str) -> UUID:
        return uuid5(_DECLARATION_REFERENCE_NAMESPACE, reference_sha256)

    @classmethod
    def claim(
        cls, *, reference_sha256: str, declaration_id: UUID, act: Act
    ) -> DeclarationReference:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(reference_sha256),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            declaration_id=str(declaration_id),
        )


class PaymentTransaction(Aggregate):
    """Claims one provider transaction for one payment of one declaration.

    The provider's notification names only its transaction; this aggregate, saved with
    the payment's initiation, leads from it to the declaration, and a transaction id a
    provider hands out twice conflicts on it instead of settling two payments.
    """

    def __init__(self) -> None:
        self.declaration_id: str = ""
        self.payment_number: int = 0

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Claimed(Event, Aggregate.Created):
        provider: str
        transaction_id: str
        declaration_id: str
        payment_number: int

        def apply(self, claim: PaymentTransaction) -> None:
            claim.declaration_id = self.declaration_id
            claim.payment_number = self.payment_number

    @staticmethod
    def id_for(provider: str, transaction_id: str) -> UUID:
        return uuid5(_PAYMENT_TRANSACTION_NAMESPACE, f"{provider}/{transaction_id}")

    @classmethod
    def claim(
        cls,
        *,
        provider: str,
        transaction_id: str,
        declaration_id: UUID,
        payment_number: int,
        act: Act,
    ) -> PaymentTransaction:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(provider, transaction_id),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            provider=provider,
            transaction_id=transaction_id,
            declaration_id=str(declaration_id),
            payment_number=payment_number,
        )


def hash_reference(reference: str) -> str:
    """The sha256 of a secret reference, as the declaration records it.

    A plain hash suffices, unlike for a password: a reference holds 128 random bits, so no
    guessing or precomputed table leads back from the hash to it.
    """
    return hashlib.sha256(reference.encode()).hexdigest()
