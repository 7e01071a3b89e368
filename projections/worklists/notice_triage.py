"""Worklist "notice triage": which registration-office notices need a caseworker?

A row per notice (§ 72 AufenthV) that could not be recorded on a case file for certain
(:mod:`domain.registration_notices`): from its arrival until a caseworker records it on
a file or dismisses it. It shows the kind of notice, when it arrived and took effect,
why it is here (reason codes) and the candidate files; no names or addresses: the
caseworker opens the notice for those. Oldest first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from domain.deadlines import legal_day
from domain.registration_notices import RegistrationNotice
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, days_between, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "notice_triage"


@dataclass
class NoticeTriageRow:
    case_id: str
    """The notice's id: the engine keys rows by their aggregate."""
    office_id: str
    reference: str
    notice_kind: str
    sender: str
    received_at: datetime
    received_on: date
    effective_on: date
    reasons: str
    """Reason codes, comma-separated."""
    candidate_case_ids: str
    """Candidate case files' ids, comma-separated."""


TABLE = Table(NAME, NoticeTriageRow, indexes=(("received_at",),))
ORDER = ("received_at", "case_id")


def _opened(event: RegistrationNotice.PutInTriage) -> tuple[str, str]:
    return event.office_id, ""


def _put_in_triage(notice: CaseRows, event: RegistrationNotice.PutInTriage) -> None:
    notice.put(
        TABLE,
        NoticeTriageRow(
            case_id=notice.case_id,
            office_id=event.office_id,
            reference="",
            notice_kind=event.notice_kind,
            sender=event.sender,
            received_at=event.at,
            received_on=legal_day(event.at),
            effective_on=event.effective_on,
            reasons=",".join(event.reasons),
            candidate_case_ids=",".join(event.candidate_case_ids),
        ),
    )


def _resolved(notice: CaseRows, _event: RegistrationNotice.Resolved) -> None:
    notice.remove(TABLE)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(RegistrationNotice.PutInTriage, _put_in_triage),
        on(RegistrationNotice.Resolved, _resolved),
    ),
    openers={RegistrationNotice.PutInTriage: _opened},
    # 2: days are the German legal day of the event, not its UTC date.
    version=2,
)


@dataclass(frozen=True)
class NoticeInTriage:
    notice_id: str
    office_id: str
    notice_kind: str
    sender: str
    received_on: date
    effective_on: date
    age_days: int
    reasons: list[str]
    candidate_case_ids: list[str]


def notice_triage(
    views: ViewsStore,
    *,
    today: date,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[NoticeInTriage]:
    """Registration-office notices waiting for a caseworker, oldest first."""
    filters = [] if office_id is None else [Filter("office_id", "=", office_id)]
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    items = [
        NoticeInTriage(
            notice_id=row.case_id,
            office_id=row.office_id,
            notice_kind=row.notice_kind,
            sender=row.sender,
            received_on=row.received_on,
            effective_on=row.effective_on,
            age_days=days_between(row.received_on, today),
            reasons=row.reasons.split(",") if row.reasons else [],
            candidate_case_ids=row.candidate_case_ids.split(",") if row.candidate_case_ids else [],
        )
        for row in rows
    ]
    return Page(items, next_cursor)
