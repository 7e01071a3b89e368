"""Worklist "commitment declarations paid but not handed over" (§68 AufenthG).

A row per declaration whose fee has been paid, until it is signed and handed over,
withdrawn, or its fee payment refunded; with the ability-to-pay check and the pickup
appointment, so the counter sees what is still missing. Oldest payment first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.commitment_declaration import CommitmentDeclaration
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, days_between, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "declarations_awaiting_handover"


@dataclass
class PaidDeclarationRow:
    case_id: str
    """The declaration's id: the engine keys rows by their aggregate."""
    office_id: str
    reference: str
    payment_number: int
    paid_at: datetime
    paid_on: date
    ability_to_pay: str
    """``unchecked``, ``passed`` or ``failed``."""
    pickup_at: datetime | None


TABLE = Table(NAME, PaidDeclarationRow, indexes=(("paid_at",),))
ORDER = ("paid_at", "case_id")


def _opened(event: CommitmentDeclaration.Submitted) -> tuple[str, str]:
    return event.office_id, ""


def _paid(declaration: CaseRows, event: CommitmentDeclaration.FeePaid) -> None:
    declaration.put(
        TABLE,
        PaidDeclarationRow(
            case_id=declaration.case_id,
            office_id=declaration.office_id,
            reference="",
            payment_number=event.payment_number,
            paid_at=event.at,
            paid_on=legal_day(event.at),
            ability_to_pay="unchecked",
            pickup_at=None,
        ),
    )


def _checked(declaration: CaseRows, event: CommitmentDeclaration.AbilityToPayChecked) -> None:
    row = declaration.get(TABLE)
    if row is not None:
        row.ability_to_pay = "passed" if event.passed else "failed"
        declaration.put(TABLE, row)


def _pickup(declaration: CaseRows, event: CommitmentDeclaration.PickupAppointmentSet) -> None:
    row = declaration.get(TABLE)
    if row is not None:
        row.pickup_at = event.appointment_at
        declaration.put(TABLE, row)


def _refunded(declaration: CaseRows, event: CommitmentDeclaration.PaymentRefunded) -> None:
    row = declaration.get(TABLE)
    if row is not None and row.payment_number == event.payment_number:
        declaration.remove(TABLE)


def _done(declaration: CaseRows, _event: object) -> None:
    declaration.remove(TABLE)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CommitmentDeclaration.FeePaid, _paid),
        on(CommitmentDeclaration.AbilityToPayChecked, _checked),
        on(CommitmentDeclaration.PickupAppointmentSet, _pickup),
        on(CommitmentDeclaration.PaymentRefunded, _refunded),
        on(CommitmentDeclaration.SignedAndHandedOver, _done),
        on(CommitmentDeclaration.Withdrawn, _done),
    ),
    openers={CommitmentDeclaration.Submitted: _opened},
    # 2: days are the German legal day of the event, not its UTC date.
    version=2,
)


@dataclass(frozen=True)
class PaidDeclaration:
    declaration_id: str
    office_id: str
    paid_on: date
    days_since_payment: int
    ability_to_pay: str
    pickup_at: datetime | None


def commitment_declarations_awaiting_handover(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[PaidDeclaration]:
    """Declarations paid but not handed over, oldest payment first."""
    filters = [] if office_id is None else [Filter("office_id", "=", office_id)]
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    items = [
        PaidDeclaration(
            declaration_id=row.case_id,
            office_id=row.office_id,
            paid_on=row.paid_on,
            days_since_payment=days_between(row.paid_on, today),
            ability_to_pay=row.ability_to_pay,
            pickup_at=row.pickup_at,
        )
        for row in rows
    ]
    return Page(items, next_cursor)
