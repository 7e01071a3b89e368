"""Worklist "unconfirmed holds": bookings awaiting their confirmation, oldest deadline first.

A row per appointment while it is held: when the hold lapses, how its newest
confirmation mail fared (queued, sent, failed with a code, bounced with a status) and
whether the reminder has gone out. A caseworker sees at once whose mail bounced and can
call or confirm at the counter before the seat goes. The row leaves when the booking is
confirmed (by code or at the counter), cancelled or lapsed. No personal data, and never
the booking's reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from domain.appointments import Appointment
from projections.paging import DEFAULT_PAGE_SIZE, Filter, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME: Final = "appointment_holds"


@dataclass
class HoldRow:
    case_id: str
    """The appointment's id."""
    office_id: str
    reference: str
    service_point_id: str
    appointment_type: str
    starts_at: datetime
    held_until: datetime
    origin: str
    confirmation_mail: int
    """The number of the newest confirmation mail (a re-sent one replaces the first)."""
    mail_status: str
    """Of that mail: ``queued``, ``sent``, ``failed`` or ``bounced``."""
    mail_attempts: int
    mail_reason: str | None
    """A failure code (``smtp-550``, ``unreachable``) or a bounce's status (``5.1.1``)."""
    reminder_mail: int | None
    reminder_status: str | None
    """``None`` until the reminder is due; then as ``mail_status``."""
    version: int


TABLE: Final = Table(NAME, HoldRow, indexes=(("office_id", "held_until"),))
ORDER: Final = ("held_until", "case_id")


def _opened(event: Appointment.Booked) -> tuple[str, str]:
    return event.office_id, ""


def _booked(appointment: CaseRows, event: Appointment.Booked) -> None:
    appointment.put(
        TABLE,
        HoldRow(
            case_id=appointment.case_id,
            office_id=event.office_id,
            reference="",
            service_point_id=event.service_point_id,
            appointment_type=event.appointment_type,
            starts_at=event.starts_at,
            held_until=event.held_until,
            origin=event.origin,
            confirmation_mail=0,
            mail_status="queued",
            mail_attempts=0,
            mail_reason=None,
            reminder_mail=None,
            reminder_status=None,
            version=event.originator_version,
        ),
    )


def _row(appointment: CaseRows, event: Appointment.Event) -> HoldRow | None:
    row = appointment.get(TABLE)
    if row is not None:
        row.version = event.originator_version
    return row


def _queued(appointment: CaseRows, event: Appointment.MailQueued) -> None:
    row = _row(appointment, event)
    if row is None:
        return
    if event.kind == "confirmation":
        row.confirmation_mail = event.mail_number
        row.mail_status, row.mail_attempts, row.mail_reason = "queued", 0, None
    elif event.kind == "reminder":
        row.reminder_mail, row.reminder_status = event.mail_number, "queued"
    appointment.put(TABLE, row)


def _email_corrected(appointment: CaseRows, event: Appointment.EmailCorrected) -> None:
    # The confirmation goes again, to the corrected address: its mail is the one to watch.
    row = _row(appointment, event)
    if row is not None:
        row.confirmation_mail = event.mail_number
        row.mail_status, row.mail_attempts, row.mail_reason = "queued", 0, None
        appointment.put(TABLE, row)


def _hold_extended(appointment: CaseRows, event: Appointment.HoldExtended) -> None:
    row = _row(appointment, event)
    if row is not None:
        row.held_until = event.held_until
        appointment.put(TABLE, row)


def _requested(appointment: CaseRows, event: Appointment.ConfirmationMailRequested) -> None:
    row = _row(appointment, event)
    if row is not None:
        row.confirmation_mail = event.mail_number
        row.mail_status, row.mail_attempts, row.mail_reason = "queued", 0, None
        appointment.put(TABLE, row)


def _outcome(
    appointment: CaseRows,
    event: Appointment.Event,
    mail_number: int,
    status: str,
    attempt: int | None,
    reason: str | None,
) -> None:
    row = _row(appointment, event)
    if row is None:
        return
    if mail_number == row.confirmation_mail:
        row.mail_status, row.mail_reason = status, reason
        if attempt is not None:
            row.mail_attempts = attempt
    elif mail_number == row.reminder_mail:
        row.reminder_status = status
    appointment.put(TABLE, row)


def _sent(appointment: CaseRows, event: Appointment.MailSent) -> None:
    _outcome(appointment, event, event.mail_number, "sent", event.attempt, None)


def _failed(appointment: CaseRows, event: Appointment.MailFailed) -> None:
    _outcome(appointment, event, event.mail_number, "failed", event.attempt, event.reason)


def _bounced(appointment: CaseRows, event: Appointment.MailBounced) -> None:
    _outcome(appointment, event, event.mail_number, "bounced", None, event.reason)


def _retyped(appointment: CaseRows, event: Appointment.Retyped) -> None:
    row = _row(appointment, event)
    if row is not None:
        row.appointment_type = event.appointment_type
        appointment.put(TABLE, row)


def _touched(appointment: CaseRows, event: Appointment.LinkedToCaseFile) -> None:
    row = _row(appointment, event)
    if row is not None:
        appointment.put(TABLE, row)


def _no_longer_held(appointment: CaseRows, _event: object) -> None:
    appointment.remove(TABLE)


PROJECTION: Final = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(
        on(Appointment.Booked, _booked),
        on(Appointment.MailQueued, _queued),
        on(Appointment.ConfirmationMailRequested, _requested),
        on(Appointment.EmailCorrected, _email_corrected),
        on(Appointment.HoldExtended, _hold_extended),
        on(Appointment.MailSent, _sent),
        on(Appointment.MailFailed, _failed),
        on(Appointment.MailBounced, _bounced),
        on(Appointment.Retyped, _retyped),
        on(Appointment.LinkedToCaseFile, _touched),
        on(Appointment.Confirmed, _no_longer_held),
        on(Appointment.CheckedIn, _no_longer_held),
        on(Appointment.Cancelled, _no_longer_held),
        on(Appointment.CancelledAfterErasure, _no_longer_held),
        on(Appointment.Lapsed, _no_longer_held),
        on(Appointment.Attended, _no_longer_held),
        on(Appointment.NoShow, _no_longer_held),
    ),
    openers={Appointment.Booked: _opened},
)


@dataclass(frozen=True)
class UnconfirmedHold:
    appointment_id: str
    version: int
    service_point_id: str
    appointment_type: str
    starts_at: datetime
    held_until: datetime
    origin: str
    mail_status: str
    mail_attempts: int
    mail_reason: str | None
    reminder_sent: bool
    reminder_status: str | None


def unconfirmed_holds(
    views: ViewsStore,
    *,
    office_id: str,
    service_point_ids: list[str] | None = None,
    mail_statuses: list[str] | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[UnconfirmedHold]:
    """Bookings awaiting confirmation, the hold lapsing soonest first."""
    filters = [Filter("office_id", "=", office_id)]
    if service_point_ids is not None:
        filters.append(Filter("service_point_id", "in", service_point_ids))
    if mail_statuses is not None:
        filters.append(Filter("mail_status", "in", mail_statuses))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    items = [
        UnconfirmedHold(
            appointment_id=row.case_id,
            version=row.version,
            service_point_id=row.service_point_id,
            appointment_type=row.appointment_type,
            starts_at=row.starts_at,
            held_until=row.held_until,
            origin=row.origin,
            mail_status=row.mail_status,
            mail_attempts=row.mail_attempts,
            mail_reason=row.mail_reason,
            reminder_sent=row.reminder_status in ("sent", "bounced"),
            reminder_status=row.reminder_status,
        )
        for row in rows
    ]
    return Page(items, next_cursor)
