"""Figures of scarcity: waitlist length, the next free slot per appointment type, and the
"booked out for N weeks" figure over time.

Three sources, one read model:

* **Waitlists** (``Waitlist`` events): a row per person waiting, until offered a seat or
  gone; the engine keeps their count per office, service point and type in step
  (:class:`~projections.projection.Totals`), so the length is one small read.
* **Slots** (``Slot`` events): the seats held per slot start. The next free slot is not
  a fact of the log alone (it depends on the clock, the calendar and same-day release):
  the query combines these rows with the service point's calendar, as of now, through
  :func:`domain.appointments.next_free_slot`, the same function the tick uses.
* **Observations** (``AvailabilityObservation.Observed``, once per service point, type
  and day, recorded by ``akte appointments tick``): the series over time. Each is what
  was true that morning, recorded as an event, so the history is exact and replays the
  same, whatever the calendar has become since.

No personal data: waitlist rows hold the entry's id and when it joined.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from domain.appointments import (
    NO_HOLIDAYS,
    AvailabilityObservation,
    ServicePoint,
    Slot,
    Waitlist,
    next_free_slot,
)
from domain.deadlines import HolidayCalendar
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, fetch_page
from projections.projection import TOTALS_COUNT, CaseRows, Projection, Table, Totals, handlers, on
from projections.storage import ViewsStore

NAME: Final = "appointment_figures"


@dataclass
class SlotRow:
    case_id: str
    """The slot's id."""
    office_id: str
    reference: str
    service_point_id: str
    starts_at: datetime
    seats_held: int


@dataclass
class WaitlistRow:
    case_id: str
    """The waitlist's id (one per office, service point and type)."""
    office_id: str
    reference: str
    service_point_id: str
    appointment_type: str


@dataclass
class WaitingRow:
    case_id: str
    """The waitlist's id."""
    office_id: str
    reference: str
    service_point_id: str
    appointment_type: str
    entry_id: str
    joined_at: datetime


@dataclass
class ObservationRow:
    case_id: str
    """The observation's id."""
    office_id: str
    reference: str
    service_point_id: str
    service_point: str
    """The service point's code."""
    appointment_type: str
    day: date
    waiting: int
    next_free_slot: datetime | None
    booked_out_days: int | None
    horizon_days: int
    observed_at: datetime


SLOTS: Final = Table(f"{NAME}_slots", SlotRow, indexes=(("service_point_id", "starts_at"),))
WAITLISTS: Final = Table(f"{NAME}_waitlists", WaitlistRow)
WAITING_TOTALS: Final = f"{NAME}_waiting_totals"
WAITING: Final = Table(
    f"{NAME}_waiting",
    WaitingRow,
    key=("entry_id",),
    totals=(Totals(WAITING_TOTALS, ("office_id", "service_point_id", "appointment_type")),),
)
HISTORY: Final = Table(
    f"{NAME}_history",
    ObservationRow,
    indexes=(("office_id", "day"),),
)
HISTORY_ORDER: Final = ("day", "service_point", "appointment_type", "case_id")


def _office_of(event: Slot.Opened | Waitlist.Started) -> tuple[str, str]:
    return event.office_id, ""


def _observation_office(event: AvailabilityObservation.Observed) -> tuple[str, str]:
    return event.office_id, ""


# ------------------------------------------------------------------------ slots


def _slot_opened(slot: CaseRows, event: Slot.Opened) -> None:
    slot.put(
        SLOTS,
        SlotRow(slot.case_id, event.office_id, "", event.service_point_id, event.starts_at, 0),
    )


def _seats(change: int) -> Callable[[CaseRows, Slot.Event], None]:
    def handle(slot: CaseRows, _event: Slot.Event) -> None:
        row = slot.get(SLOTS)
        if row is not None:
            row.seats_held += change
            slot.put(SLOTS, row)

    return handle


# -------------------------------------------------------------------- waitlists


def _waitlist_started(waitlist: CaseRows, event: Waitlist.Started) -> None:
    waitlist.put(
        WAITLISTS,
        WaitlistRow(
            waitlist.case_id,
            event.office_id,
            "",
            event.service_point_id,
            event.appointment_type,
        ),
    )


def _joined(waitlist: CaseRows, event: Waitlist.Joined) -> None:
    header = waitlist.get(WAITLISTS)
    if header is None:
        return
    waitlist.put(
        WAITING,
        WaitingRow(
            waitlist.case_id,
            header.office_id,
            "",
            header.service_point_id,
            header.appointment_type,
            event.entry_id,
            event.at,
        ),
    )


def _offered(waitlist: CaseRows, event: Waitlist.Offered) -> None:
    waitlist.remove(WAITING, event.entry_id)


def _left(waitlist: CaseRows, event: Waitlist.Left) -> None:
    waitlist.remove(WAITING, event.entry_id)


# ----------------------------------------------------------------- observations


def _observed(observation: CaseRows, event: AvailabilityObservation.Observed) -> None:
    observation.put(
        HISTORY,
        ObservationRow(
            case_id=observation.case_id,
            office_id=event.office_id,
            reference="",
            service_point_id=event.service_point_id,
            service_point=event.service_point_code,
            appointment_type=event.appointment_type,
            day=event.day,
            waiting=event.waiting,
            next_free_slot=event.next_free_slot,
            booked_out_days=event.booked_out_days,
            horizon_days=event.horizon_days,
            observed_at=event.at,
        ),
    )


PROJECTION: Final = Projection(
    name=NAME,
    tables=(SLOTS, WAITLISTS, WAITING, HISTORY),
    handlers=handlers(
        on(Slot.Opened, _slot_opened),
        on(Slot.Taken, _seats(+1)),
        on(Slot.Freed, _seats(-1)),
        on(Waitlist.Started, _waitlist_started),
        on(Waitlist.Joined, _joined),
        on(Waitlist.Offered, _offered),
        on(Waitlist.Left, _left),
        on(AvailabilityObservation.Observed, _observed),
    ),
    openers={
        Slot.Opened: _office_of,
        Waitlist.Started: _office_of,
        AvailabilityObservation.Observed: _observation_office,
    },
)


# ---------------------------------------------------------------------- queries


def waiting_counts(views: ViewsStore, *, office_id: str) -> dict[tuple[str, str], int]:
    """People waiting per service point id and appointment type (types nobody waits for
    are absent)."""
    with views.reader() as session:
        p = session.param
        rows = session.fetch(
            f"SELECT service_point_id, appointment_type, {TOTALS_COUNT} "
            f"FROM {session.table(WAITING_TOTALS)} WHERE office_id = {p} AND {TOTALS_COUNT} > 0",
            (office_id,),
        )
    return {(str(point), str(kind)): int(count) for point, kind, count in rows}


def seats_held(
    views: ViewsStore, *, service_point_id: str, since: datetime, until: datetime
) -> dict[datetime, int]:
    """Seats held per slot start of a service point, for starts in ``[since, until]``
    (slots nobody ever booked are absent: none of their seats is held)."""
    with views.reader() as session:
        p = session.param
        encode = session.encoder("timestamp") or (lambda value: value)
        decode = session.decoder("timestamp") or (lambda value: value)
        rows = session.fetch(
            f"SELECT starts_at, seats_held FROM {session.table(SLOTS.name)} "
            f"WHERE service_point_id = {p} AND starts_at >= {p} AND starts_at <= {p} "
            "AND seats_held > 0",
            (service_point_id, encode(since), encode(until)),
        )
    return {decode(starts): int(held) for starts, held in rows}


@dataclass(frozen=True)
class AvailabilityDay:
    day: date
    service_point: str
    service_point_id: str
    appointment_type: str
    waiting: int
    next_free_slot: datetime | None
    booked_out_days: int | None
    booked_out_weeks: int | None
    """Whole weeks of ``booked_out_days``: the "booked out for N weeks" figure."""
    horizon_days: int
    observed_at: datetime


def availability_history(
    views: ViewsStore,
    *,
    office_id: str,
    appointment_type: str | None = None,
    service_point: str | None = None,
    from_day: date | None = None,
    until_day: date | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[AvailabilityDay]:
    """The daily series, oldest day first (then by service point and type)."""
    filters = [Filter("office_id", "=", office_id)]
    if appointment_type is not None:
        filters.append(Filter("appointment_type", "=", appointment_type))
    if service_point is not None:
        filters.append(Filter("service_point", "=", service_point))
    if from_day is not None:
        filters.append(Filter("day", ">=", from_day))
    if until_day is not None:
        filters.append(Filter("day", "<=", until_day))
    rows, next_cursor = fetch_page(
        views, HISTORY, filters=filters, order=HISTORY_ORDER, limit=limit, cursor=cursor
    )
    items = [
        AvailabilityDay(
            day=row.day,
            service_point=row.service_point,
            service_point_id=row.service_point_id,
            appointment_type=row.appointment_type,
            waiting=row.waiting,
            next_free_slot=row.next_free_slot,
            booked_out_days=row.booked_out_days,
            booked_out_weeks=None if row.booked_out_days is None else row.booked_out_days // 7,
            horizon_days=row.horizon_days,
            observed_at=row.observed_at,
        )
        for row in rows
    ]
    return Page(items, next_cursor)


def _counted(held: dict[datetime, int]) -> Callable[[datetime], int]:
    return lambda start: held.get(start, 0)


@dataclass(frozen=True)
class CurrentFigures:
    service_point: str
    service_point_id: str
    appointment_type: str
    waiting: int
    next_free_slot: datetime | None
    booked_out_days: int | None
    booked_out_weeks: int | None
    horizon_days: int


def current_figures(
    views: ViewsStore,
    *,
    points: list[ServicePoint],
    now: datetime,
    holidays: HolidayCalendar = NO_HOLIDAYS,
) -> list[CurrentFigures]:
    """As of ``now``, per service point and type: how many wait and the next free slot
    (the seats held from the read model, the calendar from the service point, without
    the office's public ``holidays``)."""
    if not points:
        return []
    waiting = waiting_counts(views, office_id=points[0].office_id)
    figures: list[CurrentFigures] = []
    for point in points:
        horizon = point.rules.booking_horizon_days
        held = seats_held(
            views,
            service_point_id=str(point.id),
            since=now,
            until=now + timedelta(days=horizon + 2),
        )
        next_free = next_free_slot(point, now, _counted(held), holidays)
        today = point.local(now).date()
        days = None if next_free is None else (point.local(next_free).date() - today).days
        figures.extend(
            CurrentFigures(
                service_point=point.code,
                service_point_id=str(point.id),
                appointment_type=type_code,
                waiting=waiting.get((str(point.id), type_code), 0),
                next_free_slot=None if next_free is None else point.local(next_free),
                booked_out_days=days,
                booked_out_weeks=None if days is None else days // 7,
                horizon_days=horizon,
            )
            for type_code in sorted(point.types)
        )
    return figures
