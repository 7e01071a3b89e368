"""Read model "how much work is there, and for whom": workload per caseworker.

For the team lead's view (``GET /reports/workload``) and the workload section of the
yearly report:

- **actions** per caseworker per week: every case-file event, counted for the staff id
  that recorded it (``by``), except the portal's and the public's own steps
  (:data:`NOT_STAFF`) and the erasure of the person's data (:data:`NOT_WORK_STEPS`: a
  data-protection action, not casework; an erasure must leave every report as it was)
  and the parts of a file taken over from another office (``PartTakenOver``: that
  office's work, not this one's);
  **decided procedures** (``ProcedureDecided``) likewise. A row per counted step, with
  its ISO week and Berlin month (``workload_weeks``, append-only: a rebuild never reads a
  file's earlier steps back); totals by office, week and actor and by office, month and
  actor are kept beside them, and are what the reports read;
- the **open backlog** per caseworker: a row per stretch of time a procedure was
  assigned to someone and undecided (``workload_spans``): from ``ProcedureAssigned``
  until it is re-assigned, decided, closed or leaves with its file
  (``TransferredToOffice``). Totals count the stretches begun and ended per week and
  actor, so the backlog at the end of any week is two small sums; the **age** of the
  backlog (days since the procedure was received) is read from the open stretches.

The "booked out for N weeks" series is read from the appointment figures' history
(:mod:`projections.appointments.appointment_figures`), and the staff (posts and people at work by
month) is configuration (:class:`StaffPlan`), so the figures can be put per post and
per person at work. Weeks are ISO weeks of the Berlin calendar; months Berlin months.

No personal data: staff ids, file numbers, counts.
"""

from __future__ import annotations

import statistics as stats
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

from domain.case_file import CaseFile
from projections.appointments import appointment_figures
from projections.figures.statistics import OFFICE_TIME_ZONE
from projections.projection import (
    TOTALS_COUNT,
    CaseRows,
    Handler,
    Projection,
    Table,
    Totals,
    handlers,
)
from projections.storage import ViewsSession

NAME: Final = "workload"
NOT_STAFF: Final = frozenset({"portal", "public", "system"})
"""Actors that are not staff: the online portal and the public booking."""
NOT_WORK_STEPS: Final[frozenset[type[CaseFile.Event]]] = frozenset(
    {CaseFile.PersonalDataErased, CaseFile.PartTakenOver}
)
"""Case-file events that are no caseworker's work step: not counted, not even read. A
part taken over from another office's file is that office's work (its own ``by`` is the
inbox that took it over here)."""
OPEN_YEAR: Final = 9999
"""The end week of a stretch that has not ended (totals group by non-null columns)."""


@dataclass
class WeekRow:
    case_id: str
    office_id: str
    reference: str
    week_year: int
    week: int
    year: int
    month: int
    actor: str
    actions: int
    decided: int
    version: int
    """The step counted (its event's version in the file)."""


@dataclass
class ProcedureRow:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    received_at: datetime
    spans: int
    """Stretches of assignment so far (the next one's ``seq``)."""
    open: int
    """1 while undecided."""


@dataclass
class SpanRow:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    seq: int
    actor: str
    received_at: datetime
    started_at: datetime
    start_year: int
    start_week: int
    ended_at: datetime | None
    end_year: int
    end_week: int


WEEKS_WEEKLY: Final = f"{NAME}_weeks_weekly"
WEEKS_MONTHLY: Final = f"{NAME}_weeks_monthly"
SPANS_STARTED: Final = f"{NAME}_spans_started"
SPANS_ENDED: Final = f"{NAME}_spans_ended"

WEEKS: Final = Table(
    f"{NAME}_weeks",
    WeekRow,
    key=("version",),
    totals=(
        Totals(WEEKS_WEEKLY, ("office_id", "week_year", "week", "actor"), ("actions", "decided")),
        Totals(WEEKS_MONTHLY, ("office_id", "year", "month", "actor"), ("actions", "decided")),
    ),
    # A row per step rather than a counter per file, week and actor: a counter had to
    # be read back whenever its file came up again, and a file's counters grow with its
    # history (at 4.47 million events they were 57 % of the read model's rows).
    append_only=True,
)
PROCEDURES: Final = Table(f"{NAME}_procedures", ProcedureRow, key=("procedure_number",))
SPANS: Final = Table(
    f"{NAME}_spans",
    SpanRow,
    key=("procedure_number", "seq"),
    indexes=(("office_id", "started_at"),),
    totals=(
        Totals(SPANS_STARTED, ("office_id", "start_year", "start_week", "actor")),
        Totals(SPANS_ENDED, ("office_id", "end_year", "end_week", "actor")),
    ),
)


def iso_week(at: datetime) -> tuple[int, int]:
    """The Berlin ISO week-year and week of a business time."""
    year, week, _ = at.astimezone(OFFICE_TIME_ZONE).isocalendar()
    return year, week


def week_label(week_year: int, week: int) -> str:
    return f"{week_year:04d}-W{week:02d}"


# ------------------------------------------------------------------ handlers


def _count(case: CaseRows, event: CaseFile.Event, *, decided: int = 0) -> None:
    if event.by in NOT_STAFF:
        return
    local = event.at.astimezone(OFFICE_TIME_ZONE)
    week_year, week, _ = local.isocalendar()
    case.put(
        WEEKS,
        WeekRow(
            case.case_id,
            case.office_id,
            case.reference,
            week_year,
            week,
            local.year,
            local.month,
            event.by,
            1,
            decided,
            event.originator_version,
        ),
    )


def _end_span(case: CaseRows, procedure: ProcedureRow, at: datetime) -> None:
    if procedure.spans == 0:
        return
    span = case.get(SPANS, procedure.procedure_number, procedure.spans)
    if span is not None and span.ended_at is None:
        span.ended_at = at
        span.end_year, span.end_week = iso_week(at)
        case.put(SPANS, span)


def _any_event(case: CaseRows, event: CaseFile.Event) -> None:
    _count(case, event)


def _received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    _count(case, event)
    case.put(
        PROCEDURES,
        ProcedureRow(
            case.case_id, case.office_id, case.reference, event.procedure_number, event.at, 0, 1
        ),
    )


def _assigned(case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
    _count(case, event)
    procedure = case.get(PROCEDURES, event.procedure_number)
    if procedure is None or not procedure.open:
        return
    current = case.get(SPANS, procedure.procedure_number, procedure.spans)
    if current is not None and current.ended_at is None and current.actor == event.assignee:
        return  # assigned again to the same person: the same stretch goes on
    _end_span(case, procedure, event.at)
    procedure.spans += 1
    start_year, start_week = iso_week(event.at)
    case.put(
        SPANS,
        SpanRow(
            case.case_id,
            case.office_id,
            case.reference,
            procedure.procedure_number,
            procedure.spans,
            event.assignee,
            procedure.received_at,
            event.at,
            start_year,
            start_week,
            None,
            OPEN_YEAR,
            0,
        ),
    )
    case.put(PROCEDURES, procedure)


def _finished(case: CaseRows, number: int, at: datetime) -> None:
    procedure = case.get(PROCEDURES, number)
    if procedure is None or not procedure.open:
        return
    _end_span(case, procedure, at)
    procedure.open = 0
    case.put(PROCEDURES, procedure)


def _decided(case: CaseRows, event: CaseFile.ProcedureDecided) -> None:
    _count(case, event, decided=1)
    _finished(case, event.procedure_number, event.at)


def _closed(case: CaseRows, event: CaseFile.ProcedureClosed) -> None:
    _count(case, event)
    _finished(case, event.procedure_number, event.at)


def _transferred(case: CaseRows, event: CaseFile.TransferredToOffice) -> None:
    _count(case, event)
    for procedure in case.rows(PROCEDURES):
        _finished(case, procedure.procedure_number, event.at)


def _case_file_events() -> list[type[CaseFile.Event]]:
    return sorted(
        (
            value
            for value in vars(CaseFile).values()
            if isinstance(value, type)
            and issubclass(value, CaseFile.Event)
            and value is not CaseFile.Event
            and value not in NOT_WORK_STEPS
        ),
        key=lambda cls: cls.__name__,
    )


_SPECIAL: Final[dict[type[Any], Handler]] = {
    CaseFile.ProcedureReceived: _received,
    CaseFile.ProcedureAssigned: _assigned,
    CaseFile.ProcedureDecided: _decided,
    CaseFile.ProcedureClosed: _closed,
    CaseFile.TransferredToOffice: _transferred,
}

PROJECTION: Final = Projection(
    name=NAME,
    tables=(WEEKS, PROCEDURES, SPANS),
    handlers=handlers(
        *((cls, _SPECIAL.get(cls, _any_event)) for cls in _case_file_events()),
    ),
    # The history of work stays a fact, whatever became of the file later.
    active_cases_only=False,
    # 2: erasures are no longer counted as work steps (views of version 1 are rebuilt).
    # 3: nor are the parts of taken-over files.
    # 4: a row per step in workload_weeks (append-only); the totals are the same.
    version=4,
)


# ---------------------------------------------------------------------- staff


@dataclass(frozen=True)
class StaffMonth:
    posts: float
    """Posts (Stellen) of the office that month, in full-time equivalents."""
    at_work: float
    """People actually at work that month (full-time equivalents, vacancies, sickness
    and leave taken off)."""


@dataclass(frozen=True)
class StaffPlan:
    """Posts and people at work per office and month (``YYYY-MM``): configuration."""

    months: Mapping[str, Mapping[str, StaffMonth]] = field(default_factory=dict)

    def month(self, office_id: str, year: int, month: int) -> StaffMonth | None:
        return self.months.get(office_id, {}).get(f"{year:04d}-{month:02d}")


# --------------------------------------------------------------------- queries


def _week_start(week_year: int, week: int) -> date:
    return date.fromisocalendar(week_year, week, 1)


def _weeks_between(period_from: date, period_until: date) -> list[tuple[int, int]]:
    weeks: list[tuple[int, int]] = []
    day = period_from - timedelta(days=period_from.weekday())
    while day <= period_until:
        year, week, _ = day.isocalendar()
        weeks.append((year, week))
        day += timedelta(days=7)
    return weeks


def built(session: ViewsSession) -> bool:
    """Whether the workload tables exist (a runner prepared them)."""
    return all(session.table_exists(schema.name) for schema in PROJECTION.schemas)


@dataclass(frozen=True)
class CaseworkerWeek:
    week: str
    actor: str
    actions: int
    decided: int


@dataclass(frozen=True)
class WorkloadWeek:
    week: str
    """ISO week, ``YYYY-Www``."""
    starts_on: date
    actions: int
    decided: int
    backlog: int
    """Assigned, undecided procedures at the end of the week (Sunday 24:00 Berlin)."""
    booked_out_weeks: int | None
    """The highest "booked out for N weeks" observed that week, over service points and
    appointment types (``None``: nothing observed that week)."""
    beyond_horizon_days: int
    """Observations that week with no free slot within the booking horizon at all."""
    posts: float | None
    at_work: float | None
    actions_per_post: float | None
    actions_per_person_at_work: float | None


@dataclass(frozen=True)
class CaseworkerBacklog:
    actor: str
    open: int
    median_age_days: float | None
    oldest_age_days: int | None


@dataclass(frozen=True)
class Workload:
    office_id: str
    period_from: date
    period_until: date
    position: int
    weeks: tuple[WorkloadWeek, ...]
    by_caseworker: tuple[CaseworkerWeek, ...]
    backlog: tuple[CaseworkerBacklog, ...]
    """At the end of the period's last day."""
    backlog_age: Mapping[str, int]
    """Open assigned procedures at the end of the period by age band."""
    staff_configured: bool
    notes: tuple[str, ...]


AGE_BANDS: Final = ((0, 30, "0-30"), (31, 90, "31-90"), (91, 180, "91-180"), (181, None, "181+"))


def age_band(days: int) -> str:
    for low, high, label in AGE_BANDS:
        if days >= low and (high is None or days <= high):
            return label
    return AGE_BANDS[0][2]


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), OFFICE_TIME_ZONE)


def weekly_actions(
    session: ViewsSession, office_id: str, weeks: Sequence[tuple[int, int]]
) -> dict[tuple[int, int, str], tuple[int, int]]:
    """Actions and decisions per (week-year, week, actor) for the given weeks."""
    if not weeks:
        return {}
    p = session.param
    years = sorted({year for year, _ in weeks})
    wanted = set(weeks)
    found: dict[tuple[int, int, str], tuple[int, int]] = {}
    for year in years:
        for week_year, week, actor, count, actions, decided in session.fetch(
            f"SELECT week_year, week, actor, {TOTALS_COUNT}, actions, decided "
            f"FROM {session.table(WEEKS_WEEKLY)} WHERE office_id = {p} AND week_year = {p}",
            (office_id, year),
        ):
            if (int(week_year), int(week)) in wanted and int(count) != 0:
                found[int(week_year), int(week), str(actor)] = (int(actions), int(decided))
    return found


def monthly_actions(
    session: ViewsSession, office_id: str, year: int
) -> dict[tuple[int, str], tuple[int, int]]:
    """Actions and decisions per (month, actor) in a calendar year."""
    p = session.param
    return {
        (int(month), str(actor)): (int(actions), int(decided))
        for month, actor, count, actions, decided in session.fetch(
            f"SELECT month, actor, {TOTALS_COUNT}, actions, decided "
            f"FROM {session.table(WEEKS_MONTHLY)} WHERE office_id = {p} AND year = {p}",
            (office_id, year),
        )
        if int(count) != 0
    }


def backlog_by_week(
    session: ViewsSession, office_id: str, weeks: Sequence[tuple[int, int]]
) -> dict[tuple[int, int], dict[str, int]]:
    """Per week: assigned, undecided procedures per actor at the week's end."""
    if not weeks:
        return {}
    p = session.param
    last = max(weeks)
    deltas: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for table, sign, year_column, week_column in (
        (SPANS_STARTED, 1, "start_year", "start_week"),
        (SPANS_ENDED, -1, "end_year", "end_week"),
    ):
        for year, week, actor, count in session.fetch(
            f"SELECT {year_column}, {week_column}, actor, {TOTALS_COUNT} "
            f"FROM {session.table(table)} WHERE office_id = {p} AND {year_column} <= {p}",
            (office_id, last[0]),
        ):
            if (int(year), int(week)) <= last:
                deltas[int(year), int(week)][str(actor)] += sign * int(count)
    running: dict[str, int] = defaultdict(int)
    wanted = set(weeks)
    result: dict[tuple[int, int], dict[str, int]] = {}
    for key in sorted(deltas.keys() | wanted):
        for actor, change in deltas.get(key, {}).items():
            running[actor] += change
        if key in wanted:
            result[key] = {actor: n for actor, n in running.items() if n}
    return result


def open_at(session: ViewsSession, office_id: str, moment: datetime) -> list[tuple[str, int]]:
    """(actor, age in days) of every procedure assigned and undecided at ``moment``."""
    p = session.param
    encode = session.encoder("timestamp") or (lambda value: value)
    decode = session.decoder("timestamp") or (lambda value: value)
    rows = session.fetch(
        f"SELECT actor, received_at FROM {session.table(SPANS.name)} "
        f"WHERE office_id = {p} AND started_at < {p} AND (ended_at IS NULL OR ended_at >= {p})",
        (office_id, encode(moment), encode(moment)),
    )
    today = (moment - timedelta(microseconds=1)).astimezone(OFFICE_TIME_ZONE).date()
    return [
        (str(actor), (today - decode(received).astimezone(OFFICE_TIME_ZONE).date()).days)
        for actor, received in rows
    ]


def booked_out_by_day(
    session: ViewsSession, office_id: str, period_from: date, period_until: date
) -> dict[date, tuple[int | None, int]]:
    """Per observed day: the highest booked-out days over service points and types, and
    how many observations found no free slot within the horizon."""
    history = appointment_figures.HISTORY
    if not session.table_exists(history.name):
        return {}
    p = session.param
    encode = session.encoder("date") or (lambda value: value)
    decode = session.decoder("date") or (lambda value: value)
    days: dict[date, tuple[int | None, int]] = {}
    for day, booked_out, horizon in session.fetch(
        f"SELECT day, booked_out_days, horizon_days FROM {session.table(history.name)} "
        f"WHERE office_id = {p} AND day >= {p} AND day <= {p}",
        (office_id, encode(period_from), encode(period_until)),
    ):
        observed = decode(day)
        highest, beyond = days.get(observed, (None, 0))
        if booked_out is None:
            beyond += 1
            booked_out = int(horizon) + 1
        highest = int(booked_out) if highest is None else max(highest, int(booked_out))
        days[observed] = (highest, beyond)
    return days


def _ratio(amount: int, per: float | None) -> float | None:
    return None if per is None or per <= 0 else round(amount / per, 1)


def workload(
    session: ViewsSession,
    *,
    office_id: str,
    period_from: date,
    period_until: date,
    staff: StaffPlan | None,
    position: int,
) -> Workload:
    """The team lead's view of ``office_id`` from ``period_from`` to ``period_until``."""
    weeks = _weeks_between(period_from, period_until)
    actions = weekly_actions(session, office_id, weeks)
    backlog = backlog_by_week(session, office_id, weeks)
    booked = booked_out_by_day(
        session, office_id, _week_start(*weeks[0]), _week_start(*weeks[-1]) + timedelta(days=6)
    )
    rows: list[WorkloadWeek] = []
    for week_year, week in weeks:
        start = _week_start(week_year, week)
        in_week = [(a, d) for (y, w, _), (a, d) in actions.items() if (y, w) == (week_year, week)]
        done = sum(a for a, _ in in_week)
        observed = [
            booked[day] for day in (start + timedelta(days=n) for n in range(7)) if day in booked
        ]
        highest = [h for h, _ in observed if h is not None]
        thursday = start + timedelta(days=3)
        month = staff.month(office_id, thursday.year, thursday.month) if staff else None
        rows.append(
            WorkloadWeek(
                week=week_label(week_year, week),
                starts_on=start,
                actions=done,
                decided=sum(d for _, d in in_week),
                backlog=sum(backlog.get((week_year, week), {}).values()),
                booked_out_weeks=max(highest) // 7 if highest else None,
                beyond_horizon_days=sum(b for _, b in observed),
                posts=None if month is None else month.posts,
                at_work=None if month is None else month.at_work,
                actions_per_post=_ratio(done, None if month is None else month.posts),
                actions_per_person_at_work=_ratio(done, None if month is None else month.at_work),
            )
        )
    by_caseworker = tuple(
        CaseworkerWeek(week_label(y, w), actor, a, d)
        for (y, w, actor), (a, d) in sorted(actions.items())
    )
    ages: dict[str, list[int]] = defaultdict(list)
    for actor, age in open_at(session, office_id, _end_of(period_until)):
        ages[actor].append(age)
    caseworkers = tuple(
        CaseworkerBacklog(
            actor=actor,
            open=len(values),
            median_age_days=float(stats.median(values)) if values else None,
            oldest_age_days=max(values) if values else None,
        )
        for actor, values in sorted(ages.items())
    )
    bands = {label: 0 for _, _, label in AGE_BANDS}
    for values in ages.values():
        for age in values:
            bands[age_band(age)] += 1
    notes = [
        "Wochen nach ISO 8601 (Montag bis Sonntag, Ortszeit Berlin).",
        "Arbeitsschritte: jedes Ereignis einer Akte, gezählt für die Kennung, die es "
        "erfasst hat (ohne Schritte des Online-Portals und der Öffentlichkeit und ohne "
        "Löschungen personenbezogener Daten, die keine Sachbearbeitung sind).",
        "Offene Vorgänge: zugewiesen und noch nicht entschieden, am Ende der Woche bzw. "
        "des Zeitraums; ihr Alter in Tagen seit dem Eingang.",
        "Ausgebucht für N Wochen: der höchste Wert, den die tägliche Beobachtung der "
        "Terminverfügbarkeit in der Woche fand (über Standorte und Terminarten).",
    ]
    if staff is None:
        notes.append(
            "Stellen und anwesende Beschäftigte sind nicht konfiguriert (AKTE_STAFF_FILE): "
            "die Zahlen je Stelle und je anwesender Person sind nicht erfasst."
        )
    return Workload(
        office_id=office_id,
        period_from=period_from,
        period_until=period_until,
        position=position,
        weeks=tuple(rows),
        by_caseworker=by_caseworker,
        backlog=caseworkers,
        backlog_age=bands,
        staff_configured=staff is not None,
        notes=tuple(notes),
    )
