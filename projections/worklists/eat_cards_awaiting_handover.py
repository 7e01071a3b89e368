"""Worklist "eAT cards awaiting handover": cards ordered or arrived, not handed over yet.

A row per current eAT of an active case file (the order event names only the document's
number, so the title's legal basis and validity are kept from ``ResidenceDocumentIssued``);
the query shows those whose card is ``ordered`` (at the Bundesdruckerei) or ``arrived``
(ready to hand over), oldest order first. A new card for a new passport
(``EatTransferredToNewPassport``) is a new order: ordered again, today's order date, no
arrival. Ending the title, transferring or closing the file removes the row (the domain
forbids handing over the card of an ended title or in a closed file).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Final

from domain.case_file import CaseFile
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, InvalidQuery, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "eat_cards_awaiting_handover"
AWAITING: Final = ("arrived", "ordered")


@dataclass
class EatCardRow:
    case_id: str
    office_id: str
    reference: str
    residence_document_number: int
    legal_basis: str
    valid_until: date
    card_status: str
    """``not_ordered``, ``ordered``, ``arrived`` or ``handed_over``."""
    ordered_on: date | None
    arrived_on: date | None
    transfers_to_new_passport: int
    procedure_number: int | None


TABLE = Table(
    NAME,
    EatCardRow,
    key=("residence_document_number",),
    indexes=(("card_status", "ordered_on", "case_id", "residence_document_number"),),
)
ORDER = ("ordered_on", "case_id", "residence_document_number")


def _issued(case: CaseRows, event: CaseFile.ResidenceDocumentIssued) -> None:
    if event.kind != "eat":
        return
    case.put(
        TABLE,
        EatCardRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            residence_document_number=event.residence_document_number,
            legal_basis=event.legal_basis,
            valid_until=event.valid_until,
            card_status="not_ordered",
            ordered_on=None,
            arrived_on=None,
            transfers_to_new_passport=0,
            procedure_number=event.procedure_number,
        ),
    )


def _extended(case: CaseRows, event: CaseFile.ResidenceDocumentExtended) -> None:
    row = case.get(TABLE, event.residence_document_number)
    if row is not None:
        row.valid_until = event.valid_until


def _ordered(case: CaseRows, event: CaseFile.EatCardOrdered) -> None:
    row = case.get(TABLE, event.residence_document_number)
    if row is not None:
        row.card_status = "ordered"
        row.ordered_on = legal_day(event.at)
        row.arrived_on = None


def _arrived(case: CaseRows, event: CaseFile.EatCardArrived) -> None:
    row = case.get(TABLE, event.residence_document_number)
    if row is not None:
        row.card_status = "arrived"
        row.arrived_on = legal_day(event.at)


def _handed_over(case: CaseRows, event: CaseFile.EatCardHandedOver) -> None:
    row = case.get(TABLE, event.residence_document_number)
    if row is not None:
        row.card_status = "handed_over"


def _transferred_to_new_passport(
    case: CaseRows, event: CaseFile.EatTransferredToNewPassport
) -> None:
    row = case.get(TABLE, event.residence_document_number)
    if row is not None:
        row.card_status = "ordered"
        row.ordered_on = legal_day(event.at)
        row.arrived_on = None
        row.transfers_to_new_passport += 1


def _ended(case: CaseRows, event: CaseFile.ResidenceDocumentEnded) -> None:
    case.remove(TABLE, event.residence_document_number)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CaseFile.ResidenceDocumentIssued, _issued),
        on(CaseFile.ResidenceDocumentExtended, _extended),
        on(CaseFile.EatCardOrdered, _ordered),
        on(CaseFile.EatCardArrived, _arrived),
        on(CaseFile.EatCardHandedOver, _handed_over),
        on(CaseFile.EatTransferredToNewPassport, _transferred_to_new_passport),
        on(CaseFile.ResidenceDocumentEnded, _ended),
    ),
    # A file taken over from another office lists what the person brought along.
    sees_taken_over_parts=True,
    # 2: parts of taken-over files are listed (views of version 1 are rebuilt).
    # 3: days are the German legal day of the event, not its UTC date.
    version=3,
)


@dataclass(frozen=True)
class EatCardAwaitingHandover:
    case_id: str
    reference: str
    office_id: str
    residence_document_number: int
    legal_basis: str
    valid_until: date
    card_status: str
    """``ordered`` or ``arrived``."""
    ordered_on: date
    days_since_ordered: int
    arrived_on: date | None
    transfers_to_new_passport: int
    """More than 0: a replacement card for a new passport."""
    procedure_number: int | None


def eat_cards_awaiting_handover(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    card_status: Collection[str] = AWAITING,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[EatCardAwaitingHandover]:
    """eAT cards ordered or arrived but not handed over, oldest order first.

    ``card_status``: only ``ordered`` (still at the printer) or only ``arrived`` (ready).
    """
    if not card_status or set(card_status) - set(AWAITING):
        raise InvalidQuery("card_status", "must be ordered, arrived or both")
    filters = [Filter("card_status", "in", sorted(set(card_status)))]
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page([_item(row, today) for row in rows], next_cursor)


def _item(row: EatCardRow, today: date) -> EatCardAwaitingHandover:
    assert row.ordered_on is not None  # ordered and arrived cards have an order date
    return EatCardAwaitingHandover(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        residence_document_number=row.residence_document_number,
        legal_basis=row.legal_basis,
        valid_until=row.valid_until,
        card_status=row.card_status,
        ordered_on=row.ordered_on,
        days_since_ordered=(today - row.ordered_on).days,
        arrived_on=row.arrived_on,
        transfers_to_new_passport=row.transfers_to_new_passport,
        procedure_number=row.procedure_number,
    )
