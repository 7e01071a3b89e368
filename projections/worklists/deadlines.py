"""Worklist "deadlines": which legal deadlines end within the next days, or have passed?

A row per running deadline of an active case file, one per rule of
:data:`domain.deadlines.RULES`: the silence period of an undecided § 31 AufenthV entry
procedure (until it is decided, or its consent recorded as deemed given), the validity
of a given entry consent, the due date of each document request of an undecided
procedure, and the end of each current Fiktionsbescheinigung (extensions move it; its
end removes it). Transferring or closing the file removes its rows.

Dated deadlines store their last day. A period counted in working days depends on the
office's public holidays, which a read model does not know: its row stores the earliest
possible last day (weekends only), and the query, given the office's
:class:`~domain.deadlines.HolidayCalendar`, counts the real one; holidays only ever move
it later, so the stored day is a safe lower bound for the database to filter on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from domain.case_file import CaseFile
from domain.deadlines import (
    DEEMED_ENTRY_CONSENT,
    DOCUMENT_REQUEST_DUE,
    ENTRY_CONSENT_VALIDITY,
    FICTION_CERTIFICATE_END,
    RULES_BY_CODE,
    HolidayCalendar,
    legal_day,
)
from projections.paging import DEFAULT_PAGE_SIZE, Filter, InvalidQuery, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "deadlines"
DEFAULT_WITHIN_DAYS: Final = 28
MAX_DAYS: Final = 3660


@dataclass
class DeadlineRow:
    case_id: str
    office_id: str
    reference: str
    rule: str
    """The rule's code (:data:`domain.deadlines.RULES`)."""
    number: int
    """The entry procedure's, procedure's or Fiktionsbescheinigung's number."""
    item: int
    """The document request's number within its procedure (1, 2, ...); 0 otherwise."""
    legal_basis: str | None
    starts_on: date
    ends_on: date
    """The last day; for a period counted in working days the earliest possible one."""


HOLIDAY_SLACK_DAYS: Final = 14
"""How much later than its earliest end (no holidays) a period's real end can be: the
holidays inside a few working days and the end's move past a weekend and holidays
(§ 193 BGB) come to a week at Easter or Christmas; twice that for safety."""


TABLE = Table(
    NAME,
    DeadlineRow,
    key=("rule", "number", "item"),
    indexes=(("ends_on", "case_id", "rule", "number", "item"),),
)
ORDER = ("ends_on", "case_id", "rule", "number", "item")


def _entry_requested(case: CaseRows, event: CaseFile.EntryProcedureRequested) -> None:
    rule = DEEMED_ENTRY_CONSENT
    if not rule.applies(event.legal_basis):
        return
    starts_on = legal_day(event.at)
    case.put(
        TABLE,
        DeadlineRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            rule=rule.code,
            number=event.entry_procedure_number,
            item=0,
            legal_basis=event.legal_basis,
            starts_on=starts_on,
            ends_on=rule.earliest_end(starts_on),
        ),
    )


def _entry_decided(
    case: CaseRows,
    event: CaseFile.EntryConsentGiven
    | CaseFile.EntryConsentRefused
    | CaseFile.EntryConsentDeemedGiven,
) -> None:
    case.remove(TABLE, DEEMED_ENTRY_CONSENT.code, event.entry_procedure_number, 0)


def _consent_given(case: CaseRows, event: CaseFile.EntryConsentGiven) -> None:
    silence = case.get(TABLE, DEEMED_ENTRY_CONSENT.code, event.entry_procedure_number, 0)
    _entry_decided(case, event)
    case.put(
        TABLE,
        DeadlineRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            rule=ENTRY_CONSENT_VALIDITY.code,
            number=event.entry_procedure_number,
            item=0,
            legal_basis=None if silence is None else silence.legal_basis,
            starts_on=legal_day(event.at),
            ends_on=event.valid_until,
        ),
    )


def _documents_requested(case: CaseRows, event: CaseFile.DocumentsRequested) -> None:
    earlier = [
        row.item
        for row in case.rows(TABLE)
        if row.rule == DOCUMENT_REQUEST_DUE.code and row.number == event.procedure_number
    ]
    case.put(
        TABLE,
        DeadlineRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            rule=DOCUMENT_REQUEST_DUE.code,
            number=event.procedure_number,
            item=max(earlier, default=0) + 1,
            legal_basis=None,
            starts_on=legal_day(event.at),
            ends_on=event.due_on,
        ),
    )


def _procedure_decided(
    case: CaseRows, event: CaseFile.ProcedureDecided | CaseFile.ProcedureClosed
) -> None:
    for row in case.rows(TABLE):
        if row.rule == DOCUMENT_REQUEST_DUE.code and row.number == event.procedure_number:
            case.remove(TABLE, row.rule, row.number, row.item)


def _fiction_issued(case: CaseRows, event: CaseFile.FictionCertificateIssued) -> None:
    case.put(
        TABLE,
        DeadlineRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            rule=FICTION_CERTIFICATE_END.code,
            number=event.certificate_number,
            item=0,
            legal_basis=event.kind,
            starts_on=legal_day(event.at),
            ends_on=event.valid_until,
        ),
    )


def _fiction_extended(case: CaseRows, event: CaseFile.FictionCertificateExtended) -> None:
    row = case.get(TABLE, FICTION_CERTIFICATE_END.code, event.certificate_number, 0)
    if row is not None:
        row.ends_on = event.valid_until


def _fiction_ended(case: CaseRows, event: CaseFile.FictionCertificateEnded) -> None:
    case.remove(TABLE, FICTION_CERTIFICATE_END.code, event.certificate_number, 0)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CaseFile.EntryProcedureRequested, _entry_requested),
        on(CaseFile.EntryConsentGiven, _consent_given),
        on(CaseFile.EntryConsentRefused, _entry_decided),
        on(CaseFile.EntryConsentDeemedGiven, _entry_decided),
        on(CaseFile.DocumentsRequested, _documents_requested),
        on(CaseFile.ProcedureDecided, _procedure_decided),
        on(CaseFile.ProcedureClosed, _procedure_decided),
        on(CaseFile.FictionCertificateIssued, _fiction_issued),
        on(CaseFile.FictionCertificateExtended, _fiction_extended),
        on(CaseFile.FictionCertificateEnded, _fiction_ended),
    ),
    # A file taken over from another office lists what the person brought along.
    sees_taken_over_parts=True,
    # 2: parts of taken-over files are listed (views of version 1 are rebuilt).
    # 3: periods start on the day in Germany (legal_day), not the UTC date.
    version=3,
)


@dataclass(frozen=True)
class Deadline:
    case_id: str
    reference: str
    office_id: str
    rule: str
    title: str
    legal_basis: str | None
    """Of the thing the deadline is about (entry procedure; a Fiktionsbescheinigung's
    § 81 kind); None where the records name none."""
    provision: str
    """The provision the rule follows (its source)."""
    effect: str
    number: int
    item: int
    starts_on: date
    ends_on: date
    """The last day, counted with the office's holidays."""
    days_left: int
    """Days from the query's ``today`` to the last day (negative: passed)."""
    passed: bool


def deadlines(
    views: ViewsStore,
    *,
    today: date,
    holidays: HolidayCalendar,
    within_days: int = DEFAULT_WITHIN_DAYS,
    passed_within_days: int = 0,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[Deadline]:
    """Running deadlines whose last day is at most ``within_days`` after ``today``, and
    those that passed at most ``passed_within_days`` before it (0: none), soonest first.

    Rows whose real end, counted with the office's ``holidays``, lies outside the window
    are left out after the fetch; the page is filled up from the rows after them, so it
    holds ``limit`` items unless it is the last.
    """
    if not 0 <= within_days <= MAX_DAYS:
        raise InvalidQuery("within_days", f"must be between 0 and {MAX_DAYS}")
    if not 0 <= passed_within_days <= MAX_DAYS:
        raise InvalidQuery("passed_within_days", f"must be between 0 and {MAX_DAYS}")
    until = today + timedelta(days=within_days)
    since = today - timedelta(days=passed_within_days)
    filters = [
        Filter("ends_on", "<=", until),
        # The stored end of a period counted in working days is its earliest, without
        # holidays: the real end may lie up to HOLIDAY_SLACK_DAYS later, so a period
        # whose stored end lies before ``since`` may still run. Left out after the fetch.
        Filter("ends_on", ">=", since - timedelta(days=HOLIDAY_SLACK_DAYS)),
    ]
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    items: list[Deadline] = []
    next_cursor = cursor
    while True:
        # Never more rows than the page still needs: every row fetched is taken or left
        # out, so the cursor after the last fetch is where the next page starts.
        rows, next_cursor = fetch_page(
            views,
            TABLE,
            filters=filters,
            order=ORDER,
            limit=limit - len(items),
            cursor=next_cursor,
        )
        fetched = (_item(row, today, holidays) for row in rows)
        items += [item for item in fetched if since <= item.ends_on <= until]
        if len(items) >= limit or next_cursor is None:
            return Page(items, next_cursor)


def _item(row: DeadlineRow, today: date, holidays: HolidayCalendar) -> Deadline:
    rule = RULES_BY_CODE[row.rule]
    ends_on = rule.ends_on(row.starts_on, holidays) if rule.period else row.ends_on
    return Deadline(
        case_id=row.case_id,
        reference=row.reference,
        office_id=row.office_id,
        rule=row.rule,
        title=rule.title,
        legal_basis=row.legal_basis,
        provision=rule.source.provision,
        effect=rule.effect,
        number=row.number,
        item=row.item,
        starts_on=row.starts_on,
        ends_on=ends_on,
        days_left=(ends_on - today).days,
        passed=ends_on < today,
    )
