"""Worklist "expiring documents": titles and certificates whose validity ends soon.

A row per current (not ended) residence document (eAT, Duldung, Aufenthaltsgestattung)
and Fiktionsbescheinigung of an active case file; the query shows those whose last valid
day falls within ``within_days`` (default 28) of the given ``today``, soonest first.
Extensions move ``valid_until``; ``ResidenceDocumentEnded`` and
``FictionCertificateEnded`` remove the row, as does transferring or closing the file. A
new card for a new passport (``EatTransferredToNewPassport``) keeps the title's
validity, so it changes nothing here.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from domain.case_file import CaseFile
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, InvalidQuery, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "expiring_documents"
DEFAULT_WITHIN_DAYS: Final = 28
MAX_WITHIN_DAYS: Final = 3660

RESIDENCE_DOCUMENT: Final = "residence_document"
FICTION_CERTIFICATE: Final = "fiction_certificate"
KINDS: Final = frozenset({"eat", "duldung", "aufenthaltsgestattung", FICTION_CERTIFICATE})
"""``kind`` of a row: the residence document's kind, or ``fiction_certificate``."""


@dataclass
class CurrentDocumentRow:
    case_id: str
    office_id: str
    reference: str
    document: str
    """``residence_document`` or ``fiction_certificate``: which numbering ``number`` is in."""
    number: int
    kind: str
    fiction_kind: str | None
    """§81 kind of a Fiktionsbescheinigung (``81_3_1``, ``81_3_2``, ``81_4``)."""
    legal_basis: str | None
    """Of a residence document; a Fiktionsbescheinigung's basis is its kind."""
    valid_from: date
    valid_until: date
    extensions: int
    procedure_number: int | None
    issued_on: date


TABLE = Table(
    NAME,
    CurrentDocumentRow,
    key=("document", "number"),
    indexes=(("valid_until", "case_id", "document", "number"),),
)
ORDER = ("valid_until", "case_id", "document", "number")


def _residence_document_issued(case: CaseRows, event: CaseFile.ResidenceDocumentIssued) -> None:
    case.put(
        TABLE,
        CurrentDocumentRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            document=RESIDENCE_DOCUMENT,
            number=event.residence_document_number,
            kind=event.kind,
            fiction_kind=None,
            legal_basis=event.legal_basis,
            valid_from=event.valid_from,
            valid_until=event.valid_until,
            extensions=0,
            procedure_number=event.procedure_number,
            issued_on=legal_day(event.at),
        ),
    )


def _residence_document_extended(case: CaseRows, event: CaseFile.ResidenceDocumentExtended) -> None:
    row = case.get(TABLE, RESIDENCE_DOCUMENT, event.residence_document_number)
    if row is not None:
        row.valid_until = event.valid_until
        row.extensions += 1


def _residence_document_ended(case: CaseRows, event: CaseFile.ResidenceDocumentEnded) -> None:
    case.remove(TABLE, RESIDENCE_DOCUMENT, event.residence_document_number)


def _fiction_certificate_issued(case: CaseRows, event: CaseFile.FictionCertificateIssued) -> None:
    case.put(
        TABLE,
        CurrentDocumentRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            document=FICTION_CERTIFICATE,
            number=event.certificate_number,
            kind=FICTION_CERTIFICATE,
            fiction_kind=event.kind,
            legal_basis=None,
            valid_from=event.valid_from,
            valid_until=event.valid_until,
            extensions=0,
            procedure_number=event.procedure_number,
            issued_on=legal_day(event.at),
        ),
    )


def _fiction_certificate_extended(
    case: CaseRows, event: CaseFile.FictionCertificateExtended
) -> None:
    row = case.get(TABLE, FICTION_CERTIFICATE, event.certificate_number)
    if row is not None:
        row.valid_until = event.valid_until
        row.extensions += 1


def _fiction_certificate_ended(case: CaseRows, event: CaseFile.FictionCertificateEnded) -> None:
    case.remove(TABLE, FICTION_CERTIFICATE, event.certificate_number)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CaseFile.ResidenceDocumentIssued, _residence_document_issued),
        on(CaseFile.ResidenceDocumentExtended, _residence_document_extended),
        on(CaseFile.ResidenceDocumentEnded, _residence_document_ended),
        on(CaseFile.FictionCertificateIssued, _fiction_certificate_issued),
        on(CaseFile.FictionCertificateExtended, _fiction_certificate_extended),
        on(CaseFile.FictionCertificateEnded, _fiction_certificate_ended),
    ),
    # A file taken over from another office lists what the person brought along.
    sees_taken_over_parts=True,
    # 2: parts of taken-over files are listed (views of version 1 are rebuilt).
    # 3: days are the German legal day of the event, not its UTC date.
    version=3,
)


@dataclass(frozen=True)
class ExpiringDocument:
    case_id: str
    reference: str
    office_id: str
    document: str
    number: int
    kind: str
    fiction_kind: str | None
    legal_basis: str | None
    valid_from: date
    valid_until: date
    days_left: int
    """Days from the query's ``today`` to the last valid day (negative: lapsed)."""
    extensions: int
    procedure_number: int | None
    issued_on: date


def expiring_documents(
    views: ViewsStore,
    *,
    today: date,
    within_days: int = DEFAULT_WITHIN_DAYS,
    kinds: Collection[str] | None = None,
    office_id: str | None = None,
    include_lapsed: bool = False,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[ExpiringDocument]:
    """Current documents valid until at most ``today + within_days``, soonest first.

    ``include_lapsed``: also those whose validity already ended before ``today`` but
    that nobody has recorded as ended yet (they come first).
    """
    if not 0 <= within_days <= MAX_WITHIN_DAYS:
        raise InvalidQuery("within_days", f"must be between 0 and {MAX_WITHIN_DAYS}")
    filters = [Filter("valid_until", "<=", today + timedelta(days=within_days))]
    if not include_lapsed:
        filters.append(Filter("valid_until", ">=", today))
    if kinds is not None:
        unknown = set(kinds) - KINDS
        if unknown:
            raise InvalidQuery("kinds", f"must be among {', '.join(sorted(KINDS))}")
        filters.append(Filter("kind", "in", sorted(kinds)))
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page([_item(row, today) for row in rows], next_cursor)


def _item(row: CurrentDocumentRow, today: date) -> ExpiringDocument:
    return ExpiringDocument(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        document=row.document,
        number=row.number,
        kind=row.kind,
        fiction_kind=row.fiction_kind,
        legal_basis=row.legal_basis,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
        days_left=(row.valid_until - today).days,
        extensions=row.extensions,
        procedure_number=row.procedure_number,
        issued_on=row.issued_on,
    )
