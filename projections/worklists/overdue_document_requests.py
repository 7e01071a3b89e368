"""Worklist "overdue document requests": procedures waiting for documents past their due date.

A row per undecided procedure of an active case file (its details come only with
``ProcedureReceived``, so rows exist before the first request); the query shows those
with a document request whose due date lies before the given ``today``. The domain has
no event that marks requested documents as received, so every request of an undecided
procedure counts as open: a procedure is overdue once its earliest due date has passed,
and stays so until it is decided (or its file transferred or closed). ``latest_due_on``
shows whether a later request is still running.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.case_file import CaseFile
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "overdue_document_requests"


@dataclass
class ProcedureAwaitingDocumentsRow:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    topic: str
    channel: str
    legal_basis: str | None
    assignee: str | None
    received_at: datetime
    received_on: date
    earliest_due_on: date | None
    """None until documents are requested."""
    latest_due_on: date | None
    document_requests: int
    last_requested_on: date | None


TABLE = Table(
    NAME,
    ProcedureAwaitingDocumentsRow,
    key=("procedure_number",),
    indexes=(("earliest_due_on", "case_id", "procedure_number"),),
)
ORDER = ("earliest_due_on", "case_id", "procedure_number")
"""Longest overdue first."""


def _received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    case.put(
        TABLE,
        ProcedureAwaitingDocumentsRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            procedure_number=event.procedure_number,
            topic=event.topic,
            channel=event.channel,
            legal_basis=event.legal_basis,
            assignee=None,
            received_at=event.at,
            received_on=legal_day(event.at),
            earliest_due_on=None,
            latest_due_on=None,
            document_requests=0,
            last_requested_on=None,
        ),
    )


def _assigned(case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
    row = case.get(TABLE, event.procedure_number)
    if row is not None:
        row.assignee = event.assignee


def _documents_requested(case: CaseRows, event: CaseFile.DocumentsRequested) -> None:
    row = case.get(TABLE, event.procedure_number)
    if row is not None:
        row.document_requests += 1
        row.last_requested_on = legal_day(event.at)
        if row.earliest_due_on is None or event.due_on < row.earliest_due_on:
            row.earliest_due_on = event.due_on
        if row.latest_due_on is None or event.due_on > row.latest_due_on:
            row.latest_due_on = event.due_on


def _decided(case: CaseRows, event: CaseFile.ProcedureDecided) -> None:
    case.remove(TABLE, event.procedure_number)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CaseFile.ProcedureReceived, _received),
        on(CaseFile.ProcedureAssigned, _assigned),
        on(CaseFile.DocumentsRequested, _documents_requested),
        on(CaseFile.ProcedureDecided, _decided),
    ),
    # A file taken over from another office lists what the person brought along.
    sees_taken_over_parts=True,
    # 2: parts of taken-over files are listed (views of version 1 are rebuilt).
    # 3: days are the German legal day of the event, not its UTC date.
    version=3,
)


@dataclass(frozen=True)
class OverdueDocumentRequest:
    case_id: str
    reference: str
    office_id: str
    procedure_number: int
    topic: str
    channel: str
    legal_basis: str | None
    assignee: str | None
    received_on: date
    earliest_due_on: date
    days_overdue: int
    """Days since the earliest due date, as of the query's ``today`` (at least 1)."""
    latest_due_on: date
    document_requests: int
    last_requested_on: date


def overdue_document_requests(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    assignee: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[OverdueDocumentRequest]:
    """Undecided procedures with a document request due before ``today``."""
    filters = [Filter("earliest_due_on", "<", today)]
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    if assignee is not None:
        filters.append(Filter("assignee", "=", assignee))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page([_item(row, today) for row in rows], next_cursor)


def _item(row: ProcedureAwaitingDocumentsRow, today: date) -> OverdueDocumentRequest:
    # The filter guarantees a request, so the request dates are set.
    assert row.earliest_due_on is not None
    assert row.latest_due_on is not None
    assert row.last_requested_on is not None
    return OverdueDocumentRequest(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        procedure_number=row.procedure_number,
        topic=row.topic,
        channel=row.channel,
        legal_basis=row.legal_basis,
        assignee=row.assignee,
        received_on=row.received_on,
        earliest_due_on=row.earliest_due_on,
        days_overdue=(today - row.earliest_due_on).days,
        latest_due_on=row.latest_due_on,
        document_requests=row.document_requests,
        last_requested_on=row.last_requested_on,
    )
