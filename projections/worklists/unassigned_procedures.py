"""Worklist "the team's unassigned queue": received procedures nobody is assigned to yet.

A row per undecided procedure of an active case file without an assignee, oldest first.
It leaves the queue when assigned (there is no un-assigning), when decided (a procedure
may be decided, e.g. withdrawn, without ever being assigned) and with its case file
when that is transferred or closed. Documents may be requested before anyone is
assigned: such a procedure stays in the queue, showing the earliest due date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.case_file import CaseFile
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "unassigned_procedures"


@dataclass
class UnassignedProcedureRow:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    topic: str
    channel: str
    legal_basis: str | None
    status: str
    """``received`` or ``documents_requested``."""
    received_at: datetime
    received_on: date
    earliest_due_on: date | None
    document_requests: int


TABLE = Table(
    NAME,
    UnassignedProcedureRow,
    key=("procedure_number",),
    indexes=(("office_id", "received_at", "case_id", "procedure_number"),),
)
ORDER = ("received_at", "case_id", "procedure_number")


def _received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    case.put(
        TABLE,
        UnassignedProcedureRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            procedure_number=event.procedure_number,
            topic=event.topic,
            channel=event.channel,
            legal_basis=event.legal_basis,
            status="received",
            received_at=event.at,
            received_on=legal_day(event.at),
            earliest_due_on=None,
            document_requests=0,
        ),
    )


def _assigned(case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
    case.remove(TABLE, event.procedure_number)


def _documents_requested(case: CaseRows, event: CaseFile.DocumentsRequested) -> None:
    row = case.get(TABLE, event.procedure_number)
    if row is not None:
        row.status = "documents_requested"
        row.document_requests += 1
        if row.earliest_due_on is None or event.due_on < row.earliest_due_on:
            row.earliest_due_on = event.due_on


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
class UnassignedProcedure:
    case_id: str
    reference: str
    office_id: str
    procedure_number: int
    topic: str
    channel: str
    legal_basis: str | None
    status: str
    received_on: date
    age_days: int
    """Days since it was received, as of the query's ``today``."""
    earliest_due_on: date | None
    document_requests: int


def unassigned_procedures(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[UnassignedProcedure]:
    """Undecided procedures without an assignee, oldest first."""
    filters = [] if office_id is None else [Filter("office_id", "=", office_id)]
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page([_item(row, today) for row in rows], next_cursor)


def _item(row: UnassignedProcedureRow, today: date) -> UnassignedProcedure:
    return UnassignedProcedure(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        procedure_number=row.procedure_number,
        topic=row.topic,
        channel=row.channel,
        legal_basis=row.legal_basis,
        status=row.status,
        received_on=row.received_on,
        age_days=(today - row.received_on).days,
        earliest_due_on=row.earliest_due_on,
        document_requests=row.document_requests,
    )
