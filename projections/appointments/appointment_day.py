"""Worklist "today's appointments per service point": the day's list at the counter.

A row per appointment that holds a seat or has ended at the counter (held, confirmed,
checked in, attended, no-show); a cancelled or lapsed booking leaves the list, as its
seat is free again. No personal data: the caseworker opens the appointment (its id) for
the person's name. In time order, per office, service point and day.

The day is the date of ``Appointment.Booked.starts_at``, which the service records in
the service point's local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from domain.appointments import Appointment
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME: Final = "appointment_day"


@dataclass
class DayRow:
    case_id: str
    """The appointment's id: the engine keys rows by their aggregate."""
    office_id: str
    reference: str
    """Empty: a booking's reference is the person's secret."""
    service_point_id: str
    day: date
    starts_at: datetime
    ends_at: datetime
    appointment_type: str
    status: str
    origin: str
    case_file_id: str | None
    """The case file the appointment is linked to, if any."""
    version: int
    """The appointment's version after the last event: ``If-Match`` at the counter."""


TABLE: Final = Table(NAME, DayRow, indexes=(("office_id", "day", "starts_at"),))
ORDER: Final = ("starts_at", "case_id")


def _opened(event: Appointment.Booked) -> tuple[str, str]:
    return event.office_id, ""


def _booked(appointment: CaseRows, event: Appointment.Booked) -> None:
    appointment.put(
        TABLE,
        DayRow(
            case_id=appointment.case_id,
            office_id=event.office_id,
            reference="",
            service_point_id=event.service_point_id,
            day=event.starts_at.date(),
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            appointment_type=event.appointment_type,
            status="held",
            origin=event.origin,
            case_file_id=event.case_id,
            version=event.originator_version,
        ),
    )


def _changed(**changes: Any) -> Any:
    def handle(appointment: CaseRows, event: Any) -> None:
        row = appointment.get(TABLE)
        if row is None:
            return
        for name, value in changes.items():
            setattr(row, name, value(event) if callable(value) else value)
        row.version = event.originator_version
        appointment.put(TABLE, row)

    return handle


def _gone(appointment: CaseRows, _event: object) -> None:
    appointment.remove(TABLE)


_VERSION_ONLY: Final = (
    Appointment.MailQueued,
    Appointment.MailSent,
    Appointment.MailFailed,
    Appointment.MailBounced,
    Appointment.ConfirmationMailRequested,
)

PROJECTION: Final = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(Appointment.Booked, _booked),
        *(on(event_class, _changed()) for event_class in _VERSION_ONLY),
        on(Appointment.Confirmed, _changed(status="confirmed")),
        on(Appointment.CheckedIn, _changed(status="checked_in")),
        on(Appointment.Attended, _changed(status="attended")),
        on(Appointment.NoShow, _changed(status="no_show")),
        on(
            Appointment.Retyped,
            _changed(appointment_type=lambda event: event.appointment_type),
        ),
        on(
            Appointment.LinkedToCaseFile,
            _changed(case_file_id=lambda event: event.case_id),
        ),
        on(Appointment.Cancelled, _gone),
        on(Appointment.CancelledAfterErasure, _gone),
        on(Appointment.Lapsed, _gone),
    ),
    openers={Appointment.Booked: _opened},
)


@dataclass(frozen=True)
class DayAppointment:
    appointment_id: str
    version: int
    status: str
    service_point_id: str
    appointment_type: str
    starts_at: datetime
    ends_at: datetime
    origin: str
    case_id: str | None


def appointments_of_day(
    views: ViewsStore,
    *,
    office_id: str,
    day: date,
    service_point_ids: list[str] | None = None,
    statuses: list[str] | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[DayAppointment]:
    """The day's appointments of an office (of these service points), in time order."""
    filters = [Filter("office_id", "=", office_id), Filter("day", "=", day)]
    if service_point_ids is not None:
        filters.append(Filter("service_point_id", "in", service_point_ids))
    if statuses is not None:
        filters.append(Filter("status", "in", statuses))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    items = [
        DayAppointment(
            appointment_id=row.case_id,
            version=row.version,
            status=row.status,
            service_point_id=row.service_point_id,
            appointment_type=row.appointment_type,
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            origin=row.origin,
            case_id=row.case_file_id,
        )
        for row in rows
    ]
    return Page(items, next_cursor)
