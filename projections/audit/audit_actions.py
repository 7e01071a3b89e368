"""Audit trail "who did what, when": every action on every case file, for the revision.

A row per case-file event: file, office, file number, version, event kind, who acted,
business time (``at``) and recorded time. Auditors ask by actor ("everything sb-03 did
in March") and office-wide by day; both use the *recorded* time, when the action was
taken in the system, which nobody can back-date (a business time can be, e.g. a handover
recorded the day after). Days are calendar days in the office's time zone
(Europe/Berlin, as the yearly statistics count them).

Rows of transferred and closed files stay (``active_cases_only=False``): a file's trail
outlives it. The per-day counts by office and event kind are totals of the same table,
kept by the engine in the same transaction, so a year of days is one small read; the
actions of one day are the rows of that day.

Cost: the table is append-only (one row per event, under the event's version): the
engine writes only the rows a batch added and never reads a file's stored trail back, so
following the log and rebuilding cost the same per event however long the files'
histories grow. It once rewrote all rows of every file a batch touched, and later still
read them all back for every file it did not remember, which made the rebuild grow
faster than the log (issue 25).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from domain.case_file import CaseFile
from domain.history import described_event_classes
from projections.paging import DEFAULT_PAGE_SIZE, Filter, InvalidQuery, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, Totals, handlers, on
from projections.storage import ViewsStore

NAME = "audit_actions"
OFFICE_TIME_ZONE: Final = ZoneInfo("Europe/Berlin")
MAX_DAYS: Final = 366


@dataclass
class ActionRow:
    case_id: str
    office_id: str
    reference: str
    version: int
    kind: str
    """The event class, e.g. ``ProcedureDecided``."""
    by: str
    at: datetime
    """Business time."""
    recorded_at: datetime
    day: date
    """The office's calendar day of ``recorded_at``."""


DAILY: Final = f"{NAME}_rows_daily"
TABLE = Table(
    f"{NAME}_rows",
    ActionRow,
    key=("version",),
    indexes=(
        ("by", "recorded_at", "case_id", "version"),
        ("office_id", "recorded_at", "case_id", "version"),
    ),
    totals=(Totals(DAILY, group_by=("office_id", "day", "kind")),),
    append_only=True,
)
ORDER: Final = ("recorded_at", "case_id", "version")


def office_day(moment: datetime) -> date:
    return moment.astimezone(OFFICE_TIME_ZONE).date()


def _action(case: CaseRows, event: CaseFile.Event) -> None:
    case.put(
        TABLE,
        ActionRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference=case.reference,
            version=event.originator_version,
            kind=type(event).__name__,
            by=event.by,
            at=event.at,
            recorded_at=event.timestamp,
            day=office_day(event.timestamp),
        ),
    )


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(*(on(cls, _action) for cls in sorted(described_event_classes(), key=str))),
    active_cases_only=False,
)


def actions(
    views: ViewsStore,
    *,
    recorded_from: datetime,
    recorded_until: datetime,
    by: str | None = None,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[ActionRow]:
    """Actions recorded in ``[recorded_from, recorded_until)``, by ``by`` and in
    ``office_id`` where given, in the order they were recorded."""
    if recorded_until <= recorded_from:
        raise InvalidQuery("until", "must be after from")
    filters = [
        Filter("recorded_at", ">=", recorded_from),
        Filter("recorded_at", "<", recorded_until),
    ]
    if by is not None:
        filters.append(Filter("by", "=", by))
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page(rows, next_cursor)


@dataclass(frozen=True)
class DayCount:
    day: date
    kind: str
    actions: int


def actions_per_day(
    views: ViewsStore, *, first_day: date, last_day: date, office_id: str | None = None
) -> list[DayCount]:
    """Actions per office day and event kind, ``first_day`` to ``last_day`` inclusive."""
    if last_day < first_day:
        raise InvalidQuery("until", "must not be before from")
    if (last_day - first_day).days >= MAX_DAYS:
        raise InvalidQuery("until", f"at most {MAX_DAYS} days at a time")
    with views.reader() as session:
        p = session.param
        encode = session.encoder("date") or (lambda value: value)
        decode = session.decoder("date") or (lambda value: value)
        params: list[Any] = [encode(first_day), encode(last_day)]
        where = f"day >= {p} AND day <= {p}"
        if office_id is not None:
            where += f" AND office_id = {p}"
            params.append(office_id)
        rows = session.fetch(
            f"SELECT day, kind, SUM(row_count) FROM {session.table(DAILY)} WHERE {where} "
            "GROUP BY day, kind HAVING SUM(row_count) > 0 ORDER BY day, kind",
            params,
        )
    return [DayCount(decode(day), str(kind), int(count)) for day, kind, count in rows]


def day_bounds(first_day: date, last_day: date) -> tuple[datetime, datetime]:
    """The recorded-time range of office days ``first_day`` to ``last_day`` inclusive."""
    start = datetime.combine(first_day, time(), OFFICE_TIME_ZONE)
    end = datetime.combine(date.fromordinal(last_day.toordinal() + 1), time(), OFFICE_TIME_ZONE)
    return start, end
