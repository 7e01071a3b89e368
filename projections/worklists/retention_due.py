"""Worklist "which case files are due for erasure": the facts retention periods run from.

A row per case file that is not erased, with the dates retention periods can run from
(:data:`TRIGGERS`): when it was transferred to another office, when it was closed
because the person died, left Germany or was naturalised, and, for a file that holds
nothing but entry procedures (no procedure, residence document, Fiktionsbescheinigung or
integration course), when the last entry consent lapses. The rules (which trigger, how
many years, on which legal basis) are data, given to the query
(``adapters/reference/retention-rules.json``, loaded by :mod:`adapters.personal_data.retention`): a
changed period needs no rebuild. An erased file leaves the list.

Periods are counted as §§ 187, 188 BGB count them (:func:`period_ends_on`): "zehn Jahre
nach Übernahme" and "nicht innerhalb von zwei Jahren nach Ablauf der Geltungsdauer"
(§ 68 AufenthV) include the period's last day, so a file is due the day after it
(:func:`due_on`).

Only non-personal facts are read: event kinds, business times, closure reasons and the
validity of consents.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from domain.case_file import CaseFile
from projections.paging import Filter, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "retention_due"
BERLIN: Final = ZoneInfo("Europe/Berlin")


@dataclass
class RetentionRow:
    case_id: str
    office_id: str
    reference: str
    transferred_on: date | None
    died_on: date | None
    left_on: date | None
    naturalised_on: date | None
    consent_valid_until: date | None
    """The latest validity of an entry consent given on the file."""
    substantive: int
    """Procedures, residence documents, Fiktionsbescheinigungen, integration courses."""
    consent_lapsed_on: date | None
    """``consent_valid_until`` while ``substantive`` is 0 (an entry-consent-only file)."""


TABLE = Table(
    f"{NAME}_files",
    RetentionRow,
    indexes=(
        ("transferred_on", "case_id"),
        ("died_on", "case_id"),
        ("left_on", "case_id"),
        ("naturalised_on", "case_id"),
        ("consent_lapsed_on", "case_id"),
    ),
)

TRIGGERS: Final = {
    "transferred": "transferred_on",
    "closed_died": "died_on",
    "closed_left": "left_on",
    "closed_naturalised": "naturalised_on",
    "entry_consent_lapsed": "consent_lapsed_on",
}
"""What a retention period may run from (a rule's ``runs_from``), and its column."""

FROM_THE_NEXT_DAY: Final = frozenset({"entry_consent_lapsed"})
"""Triggers whose date is the last day of something (a consent's validity): the period
begins at the start of the next day (§ 187 (2) BGB). The others are events in the course
of their day, which is not counted (§ 187 (1) BGB)."""

_ONE_DAY: Final = timedelta(days=1)

_CLOSURE_COLUMNS: Final = {"died": "died_on", "left": "left_on", "naturalised": "naturalised_on"}


def _day(moment: datetime) -> date:
    return moment.astimezone(BERLIN).date()


def _row(case: CaseRows) -> RetentionRow | None:
    return case.get(TABLE)


def _opened(case: CaseRows, event: CaseFile.Opened) -> None:
    case.put(
        TABLE,
        RetentionRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            transferred_on=None,
            died_on=None,
            left_on=None,
            naturalised_on=None,
            consent_valid_until=None,
            substantive=0,
            consent_lapsed_on=None,
        ),
    )


def _refresh(row: RetentionRow) -> None:
    row.consent_lapsed_on = row.consent_valid_until if row.substantive == 0 else None


def _transferred(case: CaseRows, event: CaseFile.TransferredToOffice) -> None:
    row = _row(case)
    if row is not None:
        row.transferred_on = _day(event.at)


def _hand_over_returned(case: CaseRows, event: CaseFile.HandOverReturned) -> None:
    # The other office did not take the file over: no transfer for the period to run from.
    row = _row(case)
    if row is not None:
        row.transferred_on = None


def _closed(case: CaseRows, event: CaseFile.Closed) -> None:
    row = _row(case)
    column = _CLOSURE_COLUMNS.get(event.closure_reason)
    if row is not None and column is not None:
        setattr(row, column, _day(event.at))


def _consent_given(case: CaseRows, event: CaseFile.EntryConsentGiven) -> None:
    row = _row(case)
    if row is not None:
        if row.consent_valid_until is None or event.valid_until > row.consent_valid_until:
            row.consent_valid_until = event.valid_until
        _refresh(row)


def _substantive(case: CaseRows, event: CaseFile.Event) -> None:
    row = _row(case)
    if row is not None:
        row.substantive += 1
        _refresh(row)


def _erased(case: CaseRows, event: CaseFile.PersonalDataErased) -> None:
    case.remove(TABLE)


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(CaseFile.Opened, _opened),
        on(CaseFile.TransferredToOffice, _transferred),
        # A new event: no stored history reads differently, so the version stays.
        on(CaseFile.HandOverReturned, _hand_over_returned),
        on(CaseFile.Closed, _closed),
        on(CaseFile.EntryConsentGiven, _consent_given),
        on(CaseFile.ProcedureReceived, _substantive),
        on(CaseFile.ResidenceDocumentIssued, _substantive),
        on(CaseFile.FictionCertificateIssued, _substantive),
        on(CaseFile.IntegrationCourseEntitlementIssued, _substantive),
        on(CaseFile.IntegrationCourseObligationImposed, _substantive),
        on(CaseFile.PersonalDataErased, _erased),
    ),
    active_cases_only=False,
    # A file taken over from another office holds what the person brought along: a file
    # that held entry procedures only there lapses with their consent here too.
    sees_taken_over_parts=True,
    # 2: parts of taken-over files count (views of version 1 are rebuilt).
    version=2,
)


# ------------------------------------------------------------------ query


@dataclass(frozen=True)
class RetentionRule:
    """A retention period, as data: from which fact it runs, how long, on which ground."""

    id: str
    label_de: str
    legal_basis: str
    legal_ground: str
    """The erasure's legal ground code (:data:`domain.erasure.ERASURE_GROUNDS`)."""
    runs_from: str
    """A key of :data:`TRIGGERS`."""
    period_years: int
    event: str = ""
    verified: bool = False


@dataclass(frozen=True)
class DueFile:
    case_id: str
    office_id: str
    reference: str
    rule_id: str
    legal_basis: str
    legal_ground: str
    runs_from: date
    """The trigger's date (for an entry consent: the last day it was valid)."""
    due_on: date
    """The day after the period's last day (:func:`due_on`)."""
    days_overdue: int


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later (29 February: the 28th in a common year)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


def period_ends_on(runs_from: str, day: date, years: int) -> date:
    """The last day of a period of ``years`` running from ``day`` under trigger ``runs_from``.

    From an event (a transfer, a closure) the event's day is not counted (§ 187 (1) BGB):
    the period ends on the day that corresponds to it by its number (§ 188 (2) BGB), 28
    February for 29 February in a common year (§ 188 (3) BGB); 10 years from 4 March 2024
    end on 4 March 2034. From a last day of validity (:data:`FROM_THE_NEXT_DAY`) the period
    begins the next day (§ 187 (2) BGB) and ends the day before the day corresponding to
    that beginning (§ 188 (2) BGB): two years after a consent valid until 30 June 2024 run
    from 1 July 2024 to 30 June 2026, and after one valid until 28 February 2026 to 29
    February 2028.
    """
    if runs_from in FROM_THE_NEXT_DAY:
        begins = day + _ONE_DAY
        year = begins.year + years
        try:
            corresponding = begins.replace(year=year)
        except ValueError:  # 29 February in a common year: the period ends on the 28th
            corresponding = date(year, 3, 1)
        return corresponding - _ONE_DAY
    return add_years(day, years)


def due_on(rule: RetentionRule, runs_from: date) -> date:
    """The first day the file may be erased under ``rule``: the day after the period's
    last day, which the period includes (erasure "nach" the period, § 68 AufenthV)."""
    return period_ends_on(rule.runs_from, runs_from, rule.period_years) + _ONE_DAY


def _due_by(rule: RetentionRule, runs_from: date, today: date) -> bool:
    try:
        return due_on(rule, runs_from) <= today
    except (ValueError, OverflowError):  # due after the last date there is
        return False


def latest_due_by(rule: RetentionRule, today: date) -> date | None:
    """The latest date a period under ``rule`` may run from and be over by ``today`` (None:
    no date can be): the exact inverse of :func:`due_on`, which never decreases, also
    around 29 February. A file is due on ``today`` exactly if its date is on or before
    this one."""
    try:
        day = add_years(today, -rule.period_years)
    except ValueError:  # before the year 1 + period_years: nothing is due
        day = date.min
    while day < date.max and _due_by(rule, day + _ONE_DAY, today):
        day += _ONE_DAY
    while not _due_by(rule, day, today):
        if day == date.min:
            return None
        day -= _ONE_DAY
    return day


def due_files(
    views: ViewsStore,
    rules: list[RetentionRule],
    *,
    today: date,
    office_ids: list[str] | None = None,
    limit: int = 1000,
) -> list[DueFile]:
    """Files whose retention period is over before ``today`` (and that are not erased),
    longest overdue first; a file due under several rules is listed once, under the
    rule that fell due first."""
    due: dict[str, DueFile] = {}
    for rule in rules:
        column = TRIGGERS[rule.runs_from]
        cutoff = latest_due_by(rule, today)
        if cutoff is None:
            continue
        filters = [Filter(column, "<=", cutoff)]
        if office_ids is not None:
            filters.append(Filter("office_id", "in", list(office_ids)))
        cursor: str | None = None
        while True:
            rows, cursor = fetch_page(
                views, TABLE, filters=filters, order=(column, "case_id"), limit=500, cursor=cursor
            )
            for row in rows:
                runs_from = getattr(row, column)
                file_due_on = due_on(rule, runs_from)
                known = due.get(row.case_id)
                if known is None or file_due_on < known.due_on:
                    due[row.case_id] = DueFile(
                        case_id=row.case_id,
                        office_id=row.office_id,
                        reference=row.reference,
                        rule_id=rule.id,
                        legal_basis=rule.legal_basis,
                        legal_ground=rule.legal_ground,
                        runs_from=runs_from,
                        due_on=file_due_on,
                        days_overdue=(today - file_due_on).days,
                    )
            if cursor is None:
                break
    ordered = sorted(due.values(), key=lambda item: (item.due_on, item.case_id))
    return ordered[:limit]
