"""Worklist "unreviewed uploads": documents sent through the contact form nobody has looked at.

A row per document attached with source ``contact_form`` to an active case file until a
caseworker records ``DocumentReviewed``, oldest first. Transferring or closing the file
removes its rows: the file is then no longer worked on in this office (uploads that
still reach a transferred file do not appear either).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.case_file import CaseFile
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "unreviewed_uploads"
UPLOAD_SOURCE = "contact_form"


@dataclass
class UploadRow:
    case_id: str
    office_id: str
    reference: str
    document_number: int
    kind: str
    media_type: str
    page_count: int
    attached_at: datetime
    attached_on: date


TABLE = Table(
    NAME,
    UploadRow,
    key=("document_number",),
    indexes=(("attached_at", "case_id", "document_number"),),
)
ORDER = ("attached_at", "case_id", "document_number")


def _attached(case: CaseRows, event: CaseFile.DocumentAttached) -> None:
    if event.source != UPLOAD_SOURCE:
        return
    case.put(
        TABLE,
        UploadRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            document_number=event.document_number,
            kind=event.kind,
            media_type=event.media_type,
            page_count=event.page_count,
            attached_at=event.at,
            attached_on=legal_day(event.at),
        ),
    )


def _reviewed(case: CaseRows, event: CaseFile.DocumentReviewed) -> None:
    case.remove(TABLE, event.document_number)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CaseFile.DocumentAttached, _attached),
        on(CaseFile.DocumentReviewed, _reviewed),
    ),
    # A file taken over from another office lists what the person brought along.
    sees_taken_over_parts=True,
    # 2: parts of taken-over files are listed (views of version 1 are rebuilt).
    # 3: days are the German legal day of the event, not its UTC date.
    version=3,
)


@dataclass(frozen=True)
class UnreviewedUpload:
    case_id: str
    reference: str
    office_id: str
    document_number: int
    kind: str
    media_type: str
    page_count: int
    attached_on: date
    age_days: int


def unreviewed_uploads(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[UnreviewedUpload]:
    """Uploaded documents not reviewed yet, oldest first."""
    filters = [] if office_id is None else [Filter("office_id", "=", office_id)]
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page([_item(row, today) for row in rows], next_cursor)


def _item(row: UploadRow, today: date) -> UnreviewedUpload:
    return UnreviewedUpload(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        document_number=row.document_number,
        kind=row.kind,
        media_type=row.media_type,
        page_count=row.page_count,
        attached_on=row.attached_on,
        age_days=(today - row.attached_on).days,
    )
