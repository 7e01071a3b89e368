"""Worklist "my open procedures": procedures assigned to a caseworker, not decided yet.

A row per open procedure of an active case file, assigned or not (the assignment may
come later, and only ``ProcedureReceived`` carries topic, channel and legal basis); the
query shows those assigned to the given caseworker. A procedure leaves the list when it
is decided (``ProcedureDecided``; closing needs a decision first) and with its case file
when that is transferred or closed (the domain requires no open procedure then anyway).
Re-assignment moves it to the new assignee's list.

Document requests have no event that fulfils them, so every request of an open
procedure counts as open: ``earliest_due_on`` is the earliest due date among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.case_file import CaseFile
from domain.deadlines import legal_day
from projections.paging import DEFAULT_PAGE_SIZE, Filter, InvalidQuery, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "open_procedures_by_assignee"


@dataclass
class OpenProcedureRow:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    topic: str
    channel: str
    legal_basis: str | None
    status: str
    """``received``, ``assigned`` or ``documents_requested``."""
    assignee: str | None
    received_at: datetime
    received_on: date
    """The business day it was received (``at``'s date, as the domain counts days)."""
    assigned_on: date | None
    earliest_due_on: date | None
    document_requests: int


TABLE = Table(
    NAME,
    OpenProcedureRow,
    key=("procedure_number",),
    indexes=(("assignee", "received_at", "case_id", "procedure_number"),),
)
ORDER = ("received_at", "case_id", "procedure_number")
"""Oldest first; case id and procedure number make the order total."""


def _received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    case.put(
        TABLE,
        OpenProcedureRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            procedure_number=event.procedure_number,
            topic=event.topic,
            channel=event.channel,
            legal_basis=event.legal_basis,
            status="received",
            assignee=None,
            received_at=event.at,
            received_on=legal_day(event.at),
            assigned_on=None,
            earliest_due_on=None,
            document_requests=0,
        ),
    )


def _assigned(case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
    row = case.get(TABLE, event.procedure_number)
    if row is not None:
        row.assignee = event.assignee
        row.assigned_on = legal_day(event.at)
        if row.status == "received":
            row.status = "assigned"


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
class OpenProcedure:
    """An open procedure as the caseworker's list shows it."""

    case_id: str
    reference: str
    office_id: str
    procedure_number: int
    topic: str
    channel: str
    legal_basis: str | None
    status: str
    assignee: str
    received_on: date
    age_days: int
    """Days since it was received, as of the query's ``today``."""
    assigned_on: date | None
    earliest_due_on: date | None
    """Earliest due date of its document requests (all open while it is undecided)."""
    document_requests: int


def open_procedures_by_assignee(
    views: ViewsStore,
    *,
    assignee: str,
    today: date,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[OpenProcedure]:
    """The open procedures assigned to ``assignee``, oldest first."""
    if not assignee:
        raise InvalidQuery("assignee", "must not be empty")
    filters = [Filter("assignee", "=", assignee)]
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page([_item(row, today) for row in rows], next_cursor)


def _item(row: OpenProcedureRow, today: date) -> OpenProcedure:
    return OpenProcedure(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        procedure_number=row.procedure_number,
        topic=row.topic,
        channel=row.channel,
        legal_basis=row.legal_basis,
        status=row.status,
        assignee=row.assignee or "",
        received_on=row.received_on,
        age_days=(today - row.received_on).days,
        assigned_on=row.assigned_on,
        earliest_due_on=row.earliest_due_on,
        document_requests=row.document_requests,
    )
