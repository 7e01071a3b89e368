"""Worklist "untriaged contact-form submissions": what the public sent that nobody has handled.

A row per submission from the moment it arrives until a caseworker turns it into a
procedure, answers or dismisses it; linking it to a case file keeps it on the list (the
work is not done) but shows the case. Oldest first. No names, e-mail addresses or
message text: the caseworker opens the submission for those.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.deadlines import legal_day
from domain.intake import ContactSubmission
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, days_between, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "untriaged_submissions"


@dataclass
class UntriagedSubmissionRow:
    case_id: str
    """The submission's id: the engine keys rows by their aggregate."""
    office_id: str
    reference: str
    topic: str
    submitted_at: datetime
    submitted_on: date
    file_count: int
    page_count: int
    linked_case_id: str | None


TABLE = Table(NAME, UntriagedSubmissionRow, indexes=(("submitted_at",),))
ORDER = ("submitted_at", "case_id")


def _opened(event: ContactSubmission.Submitted) -> tuple[str, str]:
    return event.office_id, ""


def _submitted(submission: CaseRows, event: ContactSubmission.Submitted) -> None:
    submission.put(
        TABLE,
        UntriagedSubmissionRow(
            case_id=submission.case_id,
            office_id=event.office_id,
            reference="",
            topic=event.topic,
            submitted_at=event.at,
            submitted_on=legal_day(event.at),
            file_count=len(event.files),
            page_count=sum(file.page_count for file in event.files),
            linked_case_id=None,
        ),
    )


def _linked(submission: CaseRows, event: ContactSubmission.LinkedToCaseFile) -> None:
    row = submission.get(TABLE)
    if row is not None:
        row.linked_case_id = event.case_id
        submission.put(TABLE, row)


def _triaged(submission: CaseRows, _event: object) -> None:
    submission.remove(TABLE)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(ContactSubmission.Submitted, _submitted),
        on(ContactSubmission.LinkedToCaseFile, _linked),
        on(ContactSubmission.TurnedIntoProcedure, _triaged),
        on(ContactSubmission.Answered, _triaged),
        on(ContactSubmission.Dismissed, _triaged),
    ),
    openers={ContactSubmission.Submitted: _opened},
    # 2: days are the German legal day of the event, not its UTC date.
    version=2,
)


@dataclass(frozen=True)
class UntriagedSubmission:
    submission_id: str
    office_id: str
    topic: str
    submitted_on: date
    age_days: int
    file_count: int
    page_count: int
    linked_case_id: str | None


def untriaged_submissions(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[UntriagedSubmission]:
    """Contact-form submissions not yet triaged, oldest first."""
    filters = [] if office_id is None else [Filter("office_id", "=", office_id)]
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    items = [
        UntriagedSubmission(
            submission_id=row.case_id,
            office_id=row.office_id,
            topic=row.topic,
            submitted_on=row.submitted_on,
            age_days=days_between(row.submitted_on, today),
            file_count=row.file_count,
            page_count=row.page_count,
            linked_case_id=row.linked_case_id,
        )
        for row in rows
    ]
    return Page(items, next_cursor)
