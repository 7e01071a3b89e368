"""Commitment declarations for tests: submissions, a provider, and a declaration's life."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from uuid import uuid4

from adapters.payment.provider import CreatedPayment, PaymentOrder
from domain.acts import Act
from domain.commitment_declaration import CommitmentDeclaration, Guarantor, InvitedPerson

NOW: Final = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
OFFICE: Final = "abh-musterstadt"
GUARANTOR: Final = Guarantor(
    surname="Beispiel",
    given_names="Amal",
    date_of_birth=date(1980, 2, 3),
    address="Hauptstraße 1, 12345 Musterstadt",
    nationality="DEU",
    id_document_number="L01X00T47",
)
VISITOR: Final = InvitedPerson(
    surname="Yılmaz",
    given_names="Ayşe Nur",
    date_of_birth=date(1995, 7, 14),
    nationality="TUR",
    passport_number="U12345678",
)
PERSONAL_VALUES: Final = (
    "Beispiel",
    "Amal",
    "Hauptstraße",
    "L01X00T47",
    "Yılmaz",
    "Ayşe",
    "U12345678",
    "1980-02-03",
    "1995-07-14",
)
"""What must never appear where personal data does not belong (logs, problems, views)."""


def submission(today: date, **changes: Any) -> dict[str, Any]:
    """The keyword arguments of a valid submission, planned for a month from ``today``."""
    fields: dict[str, Any] = {
        "guarantor": replace(GUARANTOR),
        "invited_person": replace(VISITOR),
        "purpose": "family_visit",
        "stay_from": today + timedelta(days=30),
        "stay_until": today + timedelta(days=59),
        "monthly_net_income_cents": 320_000,
        "assets_cents": None,
    }
    return fields | changes


def submission_json(today: date, **changes: Any) -> dict[str, Any]:
    """The same submission as the public route takes it."""
    body: dict[str, Any] = {
        "guarantor": {
            "surname": GUARANTOR.surname,
            "given_names": GUARANTOR.given_names,
            "date_of_birth": GUARANTOR.date_of_birth.isoformat(),
            "address": GUARANTOR.address,
            "nationality": GUARANTOR.nationality,
            "id_document_number": GUARANTOR.id_document_number,
        },
        "invited_person": {
            "surname": VISITOR.surname,
            "given_names": VISITOR.given_names,
            "date_of_birth": VISITOR.date_of_birth.isoformat(),
            "nationality": VISITOR.nationality,
            "passport_number": VISITOR.passport_number,
        },
        "purpose": "family_visit",
        "stay_from": (today + timedelta(days=30)).isoformat(),
        "stay_until": (today + timedelta(days=59)).isoformat(),
        "monthly_net_income_cents": 320_000,
    }
    return body | changes


def act(by: str = "sb-01", at: datetime = NOW) -> Act:
    """Recorded at NOW, or at ``at`` when that is later."""
    return Act(by=by, at=at, recorded_at=max(at, NOW))


def submitted(**changes: Any) -> CommitmentDeclaration:
    return CommitmentDeclaration.submit(
        declaration_id=uuid4(),
        office_id=OFFICE,
        reference_sha256="e" * 64,
        act=act("public"),
        **submission(NOW.date(), **changes),
    )


def with_payment(declaration: CommitmentDeclaration, transaction_id: str = "TX-1") -> str:
    declaration.initiate_payment(
        provider="stand-in",
        method="visa",
        transaction_id=transaction_id,
        redirect_url=f"https://pay.example/pay/{transaction_id}",
        act=act("public"),
    )
    return transaction_id


def paid(**changes: Any) -> CommitmentDeclaration:
    declaration = submitted(**changes)
    transaction_id = with_payment(declaration)
    declaration.settle_payment(
        transaction_id=transaction_id,
        outcome="paid",
        amount_cents=2900,
        currency="EUR",
        method="visa",
        act=act("payment-provider"),
    )
    return declaration


def ready_for_handover() -> CommitmentDeclaration:
    declaration = paid()
    declaration.check_ability_to_pay(passed=True, reason=None, act=act())
    return declaration


def handed_over() -> CommitmentDeclaration:
    declaration = ready_for_handover()
    declaration.hand_over(act=act())
    return declaration


def full_life() -> CommitmentDeclaration:
    """A declaration (events still pending) with every kind of event but a withdrawal."""
    declaration = submitted()
    first = with_payment(declaration, "TX-1")
    declaration.settle_payment(
        transaction_id=first,
        outcome="failed",
        amount_cents=2900,
        currency="EUR",
        method=None,
        act=act("payment-provider"),
    )
    second = with_payment(declaration, "TX-2")
    declaration.settle_payment(
        transaction_id=second,
        outcome="expired",
        amount_cents=2900,
        currency="EUR",
        method=None,
        act=act("payment-provider"),
    )
    third = with_payment(declaration, "TX-3")
    for transaction_id in (third, first):  # the late "paid" of the first is a surplus
        declaration.settle_payment(
            transaction_id=transaction_id,
            outcome="paid",
            amount_cents=2900,
            currency="EUR",
            method="paypal",
            act=act("payment-provider"),
        )
    declaration.refund_payment(payment_number=1, reason="paid twice", act=act())
    declaration.check_ability_to_pay(passed=False, reason="Einkommen zu gering", act=act())
    declaration.check_ability_to_pay(passed=True, reason="Kontoauszüge", act=act())
    declaration.set_pickup_appointment(appointment_at=NOW + timedelta(days=3), act=act())
    declaration.link_to_case_file(case_id=uuid.uuid4(), act=act())
    declaration.hand_over(act=act())
    declaration.record_visitor_entry(entry_date=NOW.date(), reason=None, act=act())
    return declaration


def every_kind_of_event() -> list[Any]:
    withdrawn = submitted()
    withdrawn.withdraw(reason="Besuch abgesagt", act=act())
    return [*full_life().collect_events(), *withdrawn.collect_events()]


@dataclass
class RecordingProvider:
    """A payment provider in memory: records the orders and hands out transaction ids."""

    name: str = "stand-in"
    orders: list[PaymentOrder] = field(default_factory=list)
    fail_with: Exception | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def create_payment(self, order: PaymentOrder) -> CreatedPayment:
        if self.fail_with is not None:
            raise self.fail_with
        with self._lock:
            self.orders.append(order)
        transaction_id = f"TX-{uuid.uuid4().hex[:16]}"
        return CreatedPayment(transaction_id, f"https://pay.example/pay/{transaction_id}")
