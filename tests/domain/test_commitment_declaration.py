"""Unit tests of the commitment declaration: every transition, every rule, no store."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper

from adapters.store.transcoding import json_transcoder, orjson_transcoder
from domain.commitment_declaration import (
    CommitmentDeclaration,
    DeclarationReference,
    PaymentTransaction,
    hash_reference,
)
from domain.errors import (
    AbilityToPayNotShown,
    DeclarationHandedOver,
    DeclarationNotHandedOver,
    DeclarationWithdrawn,
    DomainError,
    FeeAlreadyPaid,
    FeeNotPaid,
    InvalidValue,
    NothingToCorrect,
    PaymentMismatch,
    PaymentNotFound,
    PaymentNotRefundable,
    PaymentStillOpen,
)
from domain.personal import personal_fields
from domain.values import Money, add_years
from tests.support.declarations import (
    GUARANTOR,
    NOW,
    PERSONAL_VALUES,
    VISITOR,
    act,
    every_kind_of_event,
    full_life,
    handed_over,
    paid,
    ready_for_handover,
    submitted,
    with_payment,
)


def settle(
    declaration: CommitmentDeclaration,
    transaction_id: str = "TX-1",
    outcome: Any = "paid",
    *,
    amount_cents: int = 2900,
    currency: str = "EUR",
) -> str:
    return declaration.settle_payment(
        transaction_id=transaction_id,
        outcome=outcome,
        amount_cents=amount_cents,
        currency=currency,
        method="giropay",
        act=act("payment-provider"),
    )


def new_event_types(declaration: CommitmentDeclaration) -> list[str]:
    return [type(event).__name__ for event in declaration.collect_events()]


# ------------------------------------------------------------------ submission


def test_a_submission_assesses_the_fee_at_once() -> None:
    declaration = submitted()

    submitted_event, fee = declaration.collect_events()

    assert isinstance(submitted_event, CommitmentDeclaration.Submitted)
    assert isinstance(fee, CommitmentDeclaration.FeeAssessed)
    assert (fee.amount_cents, fee.currency, fee.legal_basis) == (2900, "EUR", "aufenthv-47-1-12")
    assert (submitted_event.by, submitted_event.at, submitted_event.timestamp) == (
        "public",
        NOW,
        NOW,
    )
    assert submitted_event.office_id == "abh-musterstadt"
    assert declaration.guarantor == GUARANTOR
    assert declaration.invited_person == VISITOR
    assert (declaration.status, declaration.fee_status) == ("fee_due", "due")
    assert declaration.fee == Money(2900, "EUR")
    assert declaration.stay_days == 30


def test_income_or_assets_or_both_may_be_declared() -> None:
    assert submitted(monthly_net_income_cents=None, assets_cents=1_500_000).assets_cents == (
        1_500_000
    )
    both = submitted(assets_cents=1)
    assert (both.monthly_net_income_cents, both.assets_cents) == (320_000, 1)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"monthly_net_income_cents": None}, "monthly_net_income_cents"),
        ({"monthly_net_income_cents": 0}, "monthly_net_income_cents"),
        ({"monthly_net_income_cents": -100}, "monthly_net_income_cents"),
        ({"monthly_net_income_cents": True}, "monthly_net_income_cents"),
        ({"monthly_net_income_cents": 12.5}, "monthly_net_income_cents"),
        ({"assets_cents": 0}, "assets_cents"),
        ({"assets_cents": 10**14}, "assets_cents"),
        ({"purpose": "smuggling"}, "purpose"),
        ({"stay_from": NOW.date() - timedelta(days=1)}, "stay_from"),
        ({"stay_until": NOW.date()}, "stay_until"),
        ({"guarantor": replace(GUARANTOR, surname=" ")}, "guarantor.surname"),
        ({"guarantor": replace(GUARANTOR, given_names="")}, "guarantor.given_names"),
        (
            {"guarantor": replace(GUARANTOR, date_of_birth=date(2010, 1, 1))},
            "guarantor.date_of_birth",
        ),
        (
            {"guarantor": replace(GUARANTOR, date_of_birth=date(1899, 12, 31))},
            "guarantor.date_of_birth",
        ),
        ({"guarantor": replace(GUARANTOR, address="")}, "guarantor.address"),
        ({"guarantor": replace(GUARANTOR, nationality="DE")}, "guarantor.nationality"),
        (
            {"guarantor": replace(GUARANTOR, id_document_number="l01-x")},
            "guarantor.id_document_number",
        ),
        ({"invited_person": replace(VISITOR, surname="")}, "invited_person.surname"),
        (
            {"invited_person": replace(VISITOR, date_of_birth=date(2030, 1, 1))},
            "invited_person.date_of_birth",
        ),
        ({"invited_person": replace(VISITOR, nationality="tur")}, "invited_person.nationality"),
        (
            {"invited_person": replace(VISITOR, passport_number="?")},
            "invited_person.passport_number",
        ),
    ],
)
def test_an_invalid_submission_names_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        submitted(**changes)
    assert raised.value.field == field


def test_the_guarantor_must_be_of_full_age_on_the_day() -> None:
    eighteen_today = replace(GUARANTOR, date_of_birth=date(2006, 5, 6))
    eighteen_tomorrow = replace(GUARANTOR, date_of_birth=date(2006, 5, 7))

    assert submitted(guarantor=eighteen_today).guarantor == eighteen_today
    with pytest.raises(InvalidValue, match="at least 18"):
        submitted(guarantor=eighteen_tomorrow)


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [
        (0, "EUR", "amount_cents"),
        (-2900, "EUR", "amount_cents"),
        (True, "EUR", "amount_cents"),
        (29.0, "EUR", "amount_cents"),
        (2900, "USD", "currency"),
        (2900, "eur", "currency"),
    ],
)
def test_money_is_positive_cents_in_euros(amount: Any, currency: str, field: str) -> None:
    with pytest.raises(InvalidValue) as raised:
        Money(amount, currency)
    assert raised.value.field == field


def test_a_submission_checks_its_office_and_reference_hash() -> None:
    base: dict[str, Any] = {
        "declaration_id": uuid.uuid4(),
        "guarantor": GUARANTOR,
        "invited_person": VISITOR,
        "purpose": "tourism",
        "stay_from": date(2024, 6, 1),
        "stay_until": date(2024, 6, 2),
        "monthly_net_income_cents": 1,
        "assets_cents": None,
        "act": act("public"),
    }
    with pytest.raises(InvalidValue, match="office_id"):
        CommitmentDeclaration.submit(office_id="ABH X", reference_sha256="a" * 64, **base)
    with pytest.raises(InvalidValue, match="reference_sha256"):
        CommitmentDeclaration.submit(office_id="abh-x", reference_sha256="secret", **base)


# --------------------------------------------------------------------- payment


def test_a_payment_is_initiated_for_the_assessed_fee() -> None:
    declaration = submitted()
    declaration.collect_events()

    number = declaration.initiate_payment(
        provider="stand-in",
        method="paypal",
        transaction_id="SI-abc.1",
        redirect_url="https://pay.example/pay/SI-abc.1",
        act=act("public"),
    )

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.PaymentInitiated)
    assert (event.payment_number, event.amount_cents, event.currency) == (1, 2900, "EUR")
    assert (event.provider, event.method, event.transaction_id) == (
        "stand-in",
        "paypal",
        "SI-abc.1",
    )
    assert number == 1
    assert declaration.pending_payment is declaration.payments[0]
    assert (declaration.status, declaration.fee_status) == ("payment_pending", "payment_pending")


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "Stand In"}, "provider"),
        ({"method": "cash"}, "method"),
        ({"transaction_id": ""}, "transaction_id"),
        ({"transaction_id": "tx 1"}, "transaction_id"),
        ({"transaction_id": "x" * 101}, "transaction_id"),
        ({"redirect_url": "javascript:alert(1)"}, "redirect_url"),
    ],
)
def test_an_invalid_payment_initiation_names_the_field(changes: dict[str, Any], field: str) -> None:
    arguments: dict[str, Any] = {
        "provider": "stand-in",
        "method": "visa",
        "transaction_id": "TX-1",
        "redirect_url": "https://pay.example/pay/TX-1",
    } | changes
    with pytest.raises(InvalidValue) as raised:
        submitted().initiate_payment(act=act("public"), **arguments)
    assert raised.value.field == field


def test_only_one_payment_is_open_at_a_time() -> None:
    declaration = submitted()
    with_payment(declaration, "TX-1")

    with pytest.raises(PaymentStillOpen, match="payment 1 is still open"):
        with_payment(declaration, "TX-2")


def test_a_failed_or_expired_payment_makes_way_for_another() -> None:
    declaration = submitted()
    with_payment(declaration, "TX-1")
    settle(declaration, "TX-1", "failed")
    with_payment(declaration, "TX-2")
    settle(declaration, "TX-2", "expired")

    with_payment(declaration, "TX-3")

    assert [payment.status for payment in declaration.payments] == ["failed", "expired", "pending"]


def test_a_reused_transaction_id_is_refused() -> None:
    declaration = submitted()
    with_payment(declaration, "TX-1")
    settle(declaration, "TX-1", "failed")

    with pytest.raises(InvalidValue, match="reused"):
        with_payment(declaration, "TX-1")


def test_a_paid_fee_is_not_paid_a_second_time() -> None:
    declaration = paid()

    with pytest.raises(FeeAlreadyPaid, match="paid with payment 1"):
        with_payment(declaration, "TX-2")


def test_a_withdrawn_declaration_is_not_paid() -> None:
    declaration = submitted()
    declaration.withdraw(reason=None, act=act())

    with pytest.raises(DeclarationWithdrawn):
        with_payment(declaration)


def test_a_paid_report_records_the_fee_with_amount_currency_and_time_of_payment() -> None:
    declaration = submitted()
    with_payment(declaration)
    declaration.collect_events()
    paid_at = NOW + timedelta(minutes=5)  # after the initiation at NOW

    outcome = declaration.settle_payment(
        transaction_id="TX-1",
        outcome="paid",
        amount_cents=2900,
        currency="EUR",
        method="mastercard",
        act=act("payment-provider", at=paid_at),
    )

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.FeePaid)
    assert (event.amount_cents, event.currency, event.method) == (2900, "EUR", "mastercard")
    assert (event.by, event.at, event.payment_number) == ("payment-provider", paid_at, 1)
    assert outcome == "recorded"
    assert (declaration.fee_status, declaration.fee_paid_at) == ("paid", paid_at)
    assert declaration.status == "awaiting_ability_check"


@pytest.mark.parametrize(
    ("first", "then", "status", "events"),
    [
        ("paid", "paid", "paid", ["FeePaid"]),
        ("paid", "failed", "paid", ["FeePaid"]),
        ("paid", "expired", "paid", ["FeePaid"]),
        ("failed", "failed", "failed", ["PaymentFailed"]),
        ("failed", "expired", "failed", ["PaymentFailed"]),
        ("expired", "expired", "expired", ["PaymentExpired"]),
        ("failed", "paid", "paid", ["PaymentFailed", "FeePaid"]),
        ("expired", "paid", "paid", ["PaymentExpired", "FeePaid"]),
    ],
)
def test_reports_are_recorded_once_and_paid_wins(
    first: str, then: str, status: str, events: list[str]
) -> None:
    declaration = submitted()
    with_payment(declaration)
    declaration.collect_events()

    outcomes = [settle(declaration, "TX-1", first), settle(declaration, "TX-1", then)]

    assert new_event_types(declaration) == events
    assert declaration.payments[0].status == status
    assert outcomes == ["recorded", "recorded" if len(events) == 2 else "already_recorded"]


@pytest.mark.parametrize(
    ("amount", "currency", "field"),
    [(2800, "EUR", "amount_cents"), (29, "EUR", "amount_cents"), (2900, "USD", "currency")],
)
def test_a_report_over_another_amount_or_currency_is_refused(
    amount: int, currency: str, field: str
) -> None:
    declaration = submitted()
    with_payment(declaration)
    declaration.collect_events()

    with pytest.raises(PaymentMismatch) as raised:
        settle(declaration, "TX-1", "paid", amount_cents=amount, currency=currency)

    assert raised.value.field == field
    assert declaration.collect_events() == []
    assert declaration.fee_status == "payment_pending"


def test_a_mismatching_report_is_refused_even_after_the_payment() -> None:
    declaration = paid()
    declaration.collect_events()

    with pytest.raises(PaymentMismatch):
        settle(declaration, "TX-1", "paid", amount_cents=1)


def test_a_report_on_an_unknown_transaction_is_refused() -> None:
    declaration = submitted()
    with_payment(declaration)

    with pytest.raises(PaymentNotFound):
        settle(declaration, "TX-OTHER")


def test_a_late_payment_of_a_settled_fee_is_a_surplus_to_refund() -> None:
    declaration = submitted()
    with_payment(declaration, "TX-1")
    settle(declaration, "TX-1", "failed")
    with_payment(declaration, "TX-2")
    settle(declaration, "TX-2", "paid")
    declaration.collect_events()

    settle(declaration, "TX-1", "paid")

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.SurplusPaymentReceived)
    assert (event.payment_number, event.amount_cents) == (1, 2900)
    assert declaration.fee_payment_number == 2
    assert [payment.status for payment in declaration.payments] == ["paid", "paid"]


def test_money_paid_for_a_withdrawn_declaration_is_still_recorded() -> None:
    declaration = submitted()
    with_payment(declaration)
    declaration.withdraw(reason="Reise abgesagt", act=act())
    declaration.collect_events()

    settle(declaration, "TX-1", "paid")

    assert new_event_types(declaration) == ["FeePaid"]
    assert (declaration.status, declaration.fee_status) == ("withdrawn", "paid")


# ------------------------------------------------------- ability, pickup, handover


def test_the_ability_to_pay_is_checked_and_the_latest_check_counts() -> None:
    declaration = paid()
    declaration.check_ability_to_pay(passed=False, reason="Einkommen zu gering", act=act())
    status_after_failure = declaration.status

    declaration.check_ability_to_pay(passed=True, reason=None, act=act("sb-02"))

    assert declaration.ability_to_pay is not None
    assert (declaration.ability_to_pay.passed, declaration.ability_to_pay.by) == (True, "sb-02")
    assert (status_after_failure, declaration.status) == ("ability_not_shown", "ready_for_pickup")


def test_a_failed_check_needs_its_reason() -> None:
    with pytest.raises(InvalidValue, match="reason"):
        paid().check_ability_to_pay(passed=False, reason=None, act=act())
    with pytest.raises(InvalidValue, match="reason"):
        paid().check_ability_to_pay(passed=False, reason="  ", act=act())


def test_the_ability_may_be_checked_before_payment_but_the_fee_stays_due() -> None:
    declaration = submitted()

    declaration.check_ability_to_pay(passed=False, reason="nicht leistungsfähig", act=act())

    assert (declaration.status, declaration.fee_status) == ("fee_due", "due")


def test_a_pickup_appointment_needs_the_fee_and_the_ability_and_a_time_ahead() -> None:
    declaration = ready_for_handover()
    tomorrow = NOW + timedelta(days=1)

    declaration.set_pickup_appointment(appointment_at=tomorrow, act=act())

    assert (declaration.pickup_appointment_at, declaration.status) == (
        tomorrow,
        "pickup_scheduled",
    )
    with pytest.raises(FeeNotPaid):
        submitted().set_pickup_appointment(appointment_at=tomorrow, act=act())
    with pytest.raises(AbilityToPayNotShown):
        paid().set_pickup_appointment(appointment_at=tomorrow, act=act())
    with pytest.raises(InvalidValue, match="appointment_at"):
        declaration.set_pickup_appointment(appointment_at=NOW, act=act())
    with pytest.raises(InvalidValue, match="time zone"):
        declaration.set_pickup_appointment(appointment_at=datetime(2024, 6, 1, 9), act=act())


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (submitted, FeeNotPaid, "the fee is due, not paid"),
        (
            lambda: _pending(),
            FeeNotPaid,
            "the fee is payment pending, not paid",
        ),
        (paid, AbilityToPayNotShown, "not been checked"),
        (lambda: _failed_check(), AbilityToPayNotShown, "not shown"),
        (handed_over, DeclarationHandedOver, "already been handed over"),
        (lambda: _withdrawn(paid()), DeclarationWithdrawn, "withdrawn"),
        (lambda: _refunded(ready_for_handover()), FeeNotPaid, "refunded"),
    ],
)
def test_no_handover_before_payment_and_a_passed_check(
    make: Callable[[], CommitmentDeclaration], error: type[DomainError], message: str
) -> None:
    declaration = make()
    declaration.collect_events()

    with pytest.raises(error, match=message):
        declaration.hand_over(act=act())

    assert declaration.collect_events() == []


def _pending() -> CommitmentDeclaration:
    declaration = submitted()
    with_payment(declaration)
    return declaration


def _failed_check() -> CommitmentDeclaration:
    declaration = paid()
    declaration.check_ability_to_pay(passed=False, reason="zu gering", act=act())
    return declaration


def _withdrawn(declaration: CommitmentDeclaration) -> CommitmentDeclaration:
    declaration.withdraw(reason=None, act=act())
    return declaration


def _refunded(declaration: CommitmentDeclaration) -> CommitmentDeclaration:
    declaration.refund_payment(payment_number=None, reason="Ermessen", act=act())
    return declaration


def test_a_declaration_is_handed_over_when_paid_and_checked() -> None:
    declaration = ready_for_handover()
    declaration.collect_events()

    declaration.hand_over(act=act("sb-02"))

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.SignedAndHandedOver)
    assert (event.by, declaration.handed_over_at, declaration.status) == (
        "sb-02",
        NOW,
        "handed_over",
    )


def test_nothing_but_the_entry_is_recorded_after_handover() -> None:
    declaration = handed_over()

    for command in (
        lambda: declaration.check_ability_to_pay(passed=True, reason=None, act=act()),
        lambda: declaration.set_pickup_appointment(
            appointment_at=NOW + timedelta(days=1), act=act()
        ),
        lambda: declaration.withdraw(reason=None, act=act()),
        lambda: with_payment(declaration, "TX-9"),
    ):
        with pytest.raises(DeclarationHandedOver):
            command()


# ---------------------------------------------------------------- entry, liability


def test_the_visitors_entry_starts_five_years_of_liability() -> None:
    declaration = handed_over()
    declaration.collect_events()
    later = NOW + timedelta(days=40)

    declaration.record_visitor_entry(entry_date=date(2024, 6, 1), reason=None, act=act(at=later))

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.VisitorEntryRecorded)
    assert (event.entry_date, event.liability_until) == (date(2024, 6, 1), date(2029, 6, 1))
    assert event.previous_entry_date is None
    assert declaration.liability_until == date(2029, 6, 1)


def test_liability_from_a_leap_day_ends_on_28_february() -> None:
    assert add_years(date(2024, 2, 29), 5) == date(2029, 2, 28)
    assert add_years(date(2024, 3, 1), 5) == date(2029, 3, 1)


def test_an_entry_needs_a_handed_over_declaration_and_a_plausible_date() -> None:
    with pytest.raises(DeclarationNotHandedOver):
        ready_for_handover().record_visitor_entry(entry_date=NOW.date(), reason=None, act=act())
    declaration = handed_over()
    for day in (NOW.date() - timedelta(days=1), NOW.date() + timedelta(days=1)):
        with pytest.raises(InvalidValue, match="entry_date"):
            declaration.record_visitor_entry(entry_date=day, reason=None, act=act())


def test_a_recorded_entry_is_corrected_with_a_reason() -> None:
    declaration = handed_over()
    declaration.record_visitor_entry(entry_date=NOW.date(), reason=None, act=act())
    later = act(at=NOW + timedelta(days=10))

    with pytest.raises(NothingToCorrect):
        declaration.record_visitor_entry(entry_date=NOW.date(), reason="x", act=later)
    with pytest.raises(InvalidValue, match="reason"):
        declaration.record_visitor_entry(
            entry_date=NOW.date() + timedelta(days=2), reason=None, act=later
        )
    declaration.collect_events()
    declaration.record_visitor_entry(
        entry_date=NOW.date() + timedelta(days=2), reason="Stempel im Pass", act=later
    )

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.VisitorEntryRecorded)
    assert event.previous_entry_date == NOW.date()
    assert declaration.liability_until == date(2029, 5, 8)


# ------------------------------------------------------------ withdrawal, refund


def test_a_declaration_is_withdrawn_once_before_handover() -> None:
    declaration = submitted()

    declaration.withdraw(reason="Besuch abgesagt", act=act())

    assert declaration.status == "withdrawn"
    with pytest.raises(DeclarationWithdrawn):
        declaration.withdraw(reason=None, act=act())
    with pytest.raises(DeclarationWithdrawn):
        declaration.check_ability_to_pay(passed=True, reason=None, act=act())


def test_the_paid_fee_is_refunded_once_with_a_reason() -> None:
    declaration = _withdrawn(paid())
    declaration.collect_events()

    number = declaration.refund_payment(payment_number=None, reason="Ermessen", act=act())

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.PaymentRefunded)
    assert (event.payment_number, event.amount_cents, event.currency) == (1, 2900, "EUR")
    assert (event.transaction_id, event.reason, number) == ("TX-1", "Ermessen", 1)
    assert declaration.fee_status == "refunded"
    with pytest.raises(PaymentNotRefundable, match="already been refunded"):
        declaration.refund_payment(payment_number=None, reason="again", act=act())


def test_only_a_paid_payment_is_refunded() -> None:
    with pytest.raises(PaymentNotRefundable, match="not been paid"):
        submitted().refund_payment(payment_number=None, reason="x", act=act())
    pending = _pending()
    with pytest.raises(PaymentNotRefundable, match="pending"):
        pending.refund_payment(payment_number=1, reason="x", act=act())
    with pytest.raises(PaymentNotFound):
        paid().refund_payment(payment_number=2, reason="x", act=act())
    with pytest.raises(InvalidValue, match="reason"):
        paid().refund_payment(payment_number=None, reason="", act=act())


def test_refunding_a_surplus_leaves_the_fee_paid() -> None:
    declaration = submitted()
    with_payment(declaration, "TX-1")
    settle(declaration, "TX-1", "failed")
    with_payment(declaration, "TX-2")
    settle(declaration, "TX-2", "paid")
    settle(declaration, "TX-1", "paid")

    declaration.refund_payment(payment_number=1, reason="doppelt bezahlt", act=act())

    assert declaration.fee_status == "paid"
    assert declaration.payments[0].refunded_at == NOW


# ------------------------------------------------------------------ case link


def test_a_declaration_is_linked_to_the_visitors_case_file() -> None:
    declaration = submitted()
    first, second = uuid.uuid4(), uuid.uuid4()
    declaration.link_to_case_file(case_id=first, act=act())
    declaration.collect_events()

    with pytest.raises(NothingToCorrect):
        declaration.link_to_case_file(case_id=first, act=act())
    declaration.link_to_case_file(case_id=second, act=act())

    [event] = declaration.collect_events()
    assert isinstance(event, CommitmentDeclaration.LinkedToCaseFile)
    assert (event.case_id, event.previous_case_id) == (str(second), str(first))
    assert declaration.case_id == str(second)


# ------------------------------------------------------------ events and state


def test_every_event_carries_who_when_and_when_recorded() -> None:
    for event in every_kind_of_event():
        assert event.by, type(event)
        assert event.at.tzinfo is not None, type(event)
        assert event.timestamp.tzinfo is not None, type(event)


def test_the_history_covers_every_event_class() -> None:
    defined = {
        name
        for name, cls in vars(CommitmentDeclaration).items()
        if isinstance(cls, type)
        and issubclass(cls, CommitmentDeclaration.Event)
        and name not in ("Event", "Created")
    }
    assert defined == {type(event).__name__ for event in every_kind_of_event()}


@pytest.mark.parametrize("writer", [orjson_transcoder, json_transcoder])
@pytest.mark.parametrize("reader", [orjson_transcoder, json_transcoder])
def test_events_and_snapshots_round_trip(writer: Any, reader: Any) -> None:
    write, read = Mapper[Any](transcoder=writer()), Mapper[Any](transcoder=reader())
    for event in every_kind_of_event():
        assert read.to_domain_event(write.to_stored_event(event)) == event
        fields = {k: v for k, v in vars(event).items() if k != "originator_id"}
        assert not any(isinstance(value, uuid.UUID) for value in fields.values())
    declaration = full_life()
    declaration.collect_events()
    snapshot = read.to_domain_event(write.to_stored_event(Snapshot.take(declaration)))
    assert isinstance(snapshot, Snapshot)
    assert snapshot.mutate(None) == declaration


def test_personal_fields_are_marked() -> None:
    assert personal_fields(CommitmentDeclaration.Submitted) == {
        "guarantor_surname",
        "guarantor_given_names",
        "guarantor_date_of_birth",
        "guarantor_address",
        "guarantor_nationality",
        "guarantor_id_document_number",
        "invited_surname",
        "invited_given_names",
        "invited_date_of_birth",
        "invited_nationality",
        "invited_passport_number",
        "purpose",
        "monthly_net_income_cents",
        "assets_cents",
    }
    with_reason: tuple[type[CommitmentDeclaration.Event], ...] = (
        CommitmentDeclaration.AbilityToPayChecked,
        CommitmentDeclaration.PaymentRefunded,
        CommitmentDeclaration.VisitorEntryRecorded,
        CommitmentDeclaration.Withdrawn,
    )
    for event_class in with_reason:
        assert personal_fields(event_class) == {"reason"}, event_class
    without: tuple[type[CommitmentDeclaration.Event], ...] = (
        CommitmentDeclaration.FeeAssessed,
        CommitmentDeclaration.PaymentInitiated,
        CommitmentDeclaration.FeePaid,
        CommitmentDeclaration.SignedAndHandedOver,
    )
    for event_class in without:
        assert personal_fields(event_class) == frozenset(), event_class


def test_error_messages_do_not_quote_personal_data() -> None:
    messages: list[str] = []
    for changes in (
        {"guarantor": replace(GUARANTOR, id_document_number="Beispiel!")},
        {"invited_person": replace(VISITOR, nationality="Yılmaz")},
        {"guarantor": replace(GUARANTOR, surname="Amal" * 100)},
    ):
        with pytest.raises(InvalidValue) as raised:
            submitted(**changes)
        messages.append(str(raised.value))
    assert not [m for m in messages if any(value in m for value in PERSONAL_VALUES)]


def test_the_index_aggregates_are_named_by_hash_and_by_transaction() -> None:
    reference_hash = hash_reference("some-secret-reference")
    declaration_id = uuid.uuid4()

    claim = DeclarationReference.claim(
        reference_sha256=reference_hash, declaration_id=declaration_id, act=act("public")
    )
    transaction = PaymentTransaction.claim(
        provider="stand-in",
        transaction_id="TX-1",
        declaration_id=declaration_id,
        payment_number=1,
        act=act("public"),
    )

    assert len(reference_hash) == 64
    assert "some-secret" not in reference_hash
    assert claim.id == DeclarationReference.id_for(reference_hash)
    assert claim.declaration_id == str(declaration_id)
    assert transaction.id == PaymentTransaction.id_for("stand-in", "TX-1")
    assert transaction.id != PaymentTransaction.id_for("other-provider", "TX-1")
    assert (transaction.declaration_id, transaction.payment_number) == (str(declaration_id), 1)


def test_the_status_follows_the_declarations_life() -> None:
    declaration = submitted()
    seen = [declaration.status]
    with_payment(declaration)
    seen.append(declaration.status)
    settle(declaration)
    seen.append(declaration.status)
    declaration.check_ability_to_pay(passed=True, reason=None, act=act())
    seen.append(declaration.status)
    declaration.set_pickup_appointment(appointment_at=NOW + timedelta(hours=2), act=act())
    seen.append(declaration.status)
    declaration.hand_over(act=act())
    seen.append(declaration.status)

    assert seen == [
        "fee_due",
        "payment_pending",
        "awaiting_ability_check",
        "ready_for_pickup",
        "pickup_scheduled",
        "handed_over",
    ]
    assert _refunded(paid()).status == "fee_refunded"
