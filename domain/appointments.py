"""Appointments (Termine): the calendar of a service point, bookings and the waitlist.

Offices serve by appointment only. What this module makes hold, whatever the traffic:

* **No slot is ever given to two people.** Each slot (service point and start time) is an
  aggregate of its own, :class:`Slot`, whose id is derived from office, service point and
  start, and which admits at most its capacity of holders. A booking saves the slot and
  the appointment in one transaction; two bookings racing for the last seat both load
  the slot at the same version, and the store accepts only one of them.
* **The right legal basis.** A service point offers appointment types, each for a topic
  (what the person wants), the documents a person may hold for it and the legal bases it
  serves; a booking names what the person holds and wants, and a type that does not fit
  is refused with the names of the types that do (:meth:`ServicePoint.check_fits`).
* **No silent lapse.** A booking is *held* until the person confirms it with the code of
  the confirmation mail. Each mail is queued in the transaction that makes it due and
  then sent, failed, or bounced, each an event; a reminder goes out before the hold
  lapses; a lapse is an event with its reason, and frees the slot in the same
  transaction.

Like :mod:`domain.case_file`, commands check their rules and only then trigger an event,
and ``apply`` only changes state. No clock is read here: ``now`` and the business time
come in with the :class:`~domain.acts.Act`.

Personal data (names, birth date, e-mail address, phone) lives only in ``Personal``
fields of :class:`Appointment` and :class:`WaitlistEntry`, whose ids are random. The
indexes that must be found by a person (:class:`PersonBookings`) are keyed by a keyed
hash of the person's normalised identity, computed by the service with a server secret.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, Literal, get_args
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.case_file import CaseFile, require_code
from domain.deadlines import HolidayCalendar, NoHolidays
from domain.errors import InvalidValue, PartNotFound, RuleViolation
from domain.personal import Personal, is_redacted, personal_fields
from domain.values import LawfulEvent, require_choice, require_email, require_text

_NAMESPACE: Final = UUID("5d0c7c1e-2b4f-4f8e-9a61-0e3c9b7d2a40")

DocumentHeld = Literal[
    "none", "visa", "eat", "fiction_certificate", "duldung", "aufenthaltsgestattung"
]
"""What a person holds when they book: the document their stay rests on now."""
AppointmentStatus = Literal[
    "held", "confirmed", "checked_in", "attended", "no_show", "cancelled", "lapsed"
]
Origin = Literal["online", "office", "waitlist"]
"""How the booking came: the public booking, a caseworker, an offer from the waitlist."""
MailKind = Literal["confirmation", "reminder", "lapse_notice", "cancellation_notice"]
NOTICES: Final[frozenset[str]] = frozenset({"lapse_notice", "cancellation_notice"})
"""Mails that tell the person their booking ended: sent whatever its state, unlike a
confirmation or a reminder, which are pointless once it is no longer held."""
MailStatus = Literal["queued", "sent", "failed", "bounced"]
CancelledBy = Literal["person", "office"]
NO_HOLIDAYS: Final = NoHolidays()
"""No public holidays: for listing what a day holds, whatever the day is."""
LapseReason = Literal["not_confirmed_in_time"]
ConfirmedVia = Literal["mail_code", "counter"]
WaitlistLeaveReason = Literal["left", "offer_lapsed", "booked_elsewhere", "erased"]

ENDED: Final = frozenset({"attended", "no_show", "cancelled", "lapsed"})
"""States after which nothing more happens to an appointment."""
HOLDING_A_SEAT: Final = frozenset({"held", "confirmed", "checked_in"})
MAX_MAIL_ATTEMPTS: Final = 5
"""Sending one mail is tried this often (server refusing or unreachable); then it stays
failed and the booking's status says so, for the person and the counter to see."""
MAX_RESENDS: Final = 5
"""Re-sends of the confirmation mail one booking may ask for: enough for a person who
deleted it, too few to turn the office into a mail cannon."""
MAX_EMAIL_CORRECTIONS: Final = 3
"""Corrections of the e-mail address one held booking may have: each sends the
confirmation mail to the new address, so they are limited like re-sends."""
HOLD_EXTENSION_MARGIN: Final = timedelta(hours=2)
"""An extended hold ends at least this long before the appointment begins: the counter
must know in time who comes, and a lapsed seat must still be worth offering to the
waitlist."""
MAIL_LANGUAGES: Final = frozenset({"de", "en", "uk", "ar", "tr"})
"""Languages a booking may record for its mails (mails are written in German and English;
the others read English)."""
MAX_SLOT_MINUTES: Final = 240
MAX_COUNTERS: Final = 100
MAX_HORIZON_DAYS: Final = 366
_OPENING: Final = re.compile(r"^([1-7]) ([0-2]\d):([0-5]\d)-([0-2]\d):([0-5]\d)$")
_TIME: Final = re.compile(r"^([0-2]\d):([0-5]\d)$")


# ------------------------------------------------------------------- errors


class SlotTaken(RuleViolation):
    """Every seat of the slot is held by someone else."""

    code = "slot-taken"


class SlotNotBookable(RuleViolation):
    """Not a slot of the calendar now: past, closed, beyond the horizon or not released."""

    code = "slot-not-bookable"


class AppointmentTypeDoesNotFit(InvalidValue):
    """The type chosen does not serve what the person holds and wants."""

    code = "appointment-type-does-not-fit"


class AppointmentStateConflict(RuleViolation):
    code = "appointment-state-conflict"


class BookingErased(RuleViolation):
    """The booking's personal data was erased with its person: a step that would record
    personal data on it (a reason, an address) has no key to seal it with."""

    code = "booking-erased"


class DayHasBookings(RuleViolation):
    """A day is closed only once no booking holds a seat on it: closing it would leave
    people coming to a closed office, unless the office told them."""

    code = "day-has-bookings"


class BookingLimitReached(RuleViolation):
    code = "booking-limit-reached"


class AlreadyWaiting(RuleViolation):
    """The person waits on this list already: one place per person and list."""

    code = "already-waiting"


class MailNotFound(PartNotFound):
    code = "mail-not-found"


# ------------------------------------------------------------ value objects


@dataclass(frozen=True)
class Situation:
    """What the person holds and wants: the booking's questions."""

    holds: DocumentHeld
    holds_legal_basis: str | None
    """The legal basis of the document held, where it has one (a title, a fiction)."""
    wants: str
    """A contact topic code: what the appointment is for."""

    def check(self) -> None:
        require_choice("holds", self.holds, DocumentHeld)
        if self.holds_legal_basis is not None:
            require_code("holds_legal_basis", self.holds_legal_basis)
        require_code("wants", self.wants)


@dataclass(frozen=True)
class AppointmentType:
    """What an appointment is for, at one service point (Terminart)."""

    code: str
    label_de: str
    topic: str
    """The contact topic it serves (``GET /catalogue``)."""
    procedure_kind: str
    legal_bases: tuple[str, ...]
    """The legal bases of the documents it serves; empty: any."""
    for_documents: tuple[str, ...]
    """What a person may hold to book it; empty: anything."""
    duration_minutes: int

    def fits(self, situation: Situation) -> bool:
        if situation.wants != self.topic:
            return False
        if self.for_documents and situation.holds not in self.for_documents:
            return False
        return not (
            self.legal_bases
            and situation.holds_legal_basis is not None
            and situation.holds_legal_basis not in self.legal_bases
        )


@dataclass(frozen=True)
class OpeningHours:
    weekday: int
    """ISO weekday: 1 Monday ... 7 Sunday."""
    opens: time
    closes: time

    def encode(self) -> str:
        return f"{self.weekday} {self.opens:%H:%M}-{self.closes:%H:%M}"

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        """``"1 08:00-12:00"``: Monday, eight to twelve (local time of the service point)."""
        match = _OPENING.match(text)
        if match is None:
            raise InvalidValue("opening_hours", "each entry must read like '1 08:00-12:00'")
        day, oh, om, ch, cm = (int(part) for part in match.groups())
        if oh > 23 or ch > 24 or (ch == 24 and cm):
            raise InvalidValue("opening_hours", "hours must lie between 00:00 and 24:00")
        closes = time(23, 59, 59) if ch == 24 else time(ch, cm)
        opening = cls(day, time(oh, om), closes)
        if opening.closes <= opening.opens:
            raise InvalidValue("opening_hours", "an office must close after it opens")
        return opening


@dataclass(frozen=True)
class CalendarRules:
    """How a service point's slots come to be, and how long a booking is held."""

    slot_minutes: int
    counters: int
    """Seats of one slot: how many people the counters serve at once."""
    same_day_counters: int
    """Of those, how many are held back and released on the morning of the day itself."""
    same_day_release: time
    """When the same-day seats are released, in the service point's local time."""
    booking_horizon_days: int
    """Slots are released this many days ahead (a rolling window)."""
    timezone: str
    opening_hours: tuple[OpeningHours, ...]
    hold_hours: int
    """How long a booking is held awaiting its confirmation."""
    reminder_hours: int
    """How long before the hold lapses the reminder goes out."""

    def check(self) -> None:
        if not 5 <= self.slot_minutes <= MAX_SLOT_MINUTES:
            raise InvalidValue("slot_minutes", f"must lie between 5 and {MAX_SLOT_MINUTES}")
        if not 1 <= self.counters <= MAX_COUNTERS:
            raise InvalidValue("counters", f"must lie between 1 and {MAX_COUNTERS}")
        if not 0 <= self.same_day_counters <= self.counters:
            raise InvalidValue("same_day_counters", "must lie between 0 and counters")
        if not 1 <= self.booking_horizon_days <= MAX_HORIZON_DAYS:
            raise InvalidValue("booking_horizon_days", f"must lie between 1 and {MAX_HORIZON_DAYS}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidValue("timezone", "is not a known time zone") from None
        if not 1 <= self.hold_hours <= 24 * 14:
            raise InvalidValue("hold_hours", "must lie between 1 and 336")
        if not 0 <= self.reminder_hours < self.hold_hours:
            raise InvalidValue("reminder_hours", "must lie between 0 and hold_hours")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_time(field_name: str, text: str) -> time:
    match = _TIME.match(text)
    if match is None or int(match.group(1)) > 23:
        raise InvalidValue(field_name, "must be a time of day like 07:00")
    return time(int(match.group(1)), int(match.group(2)))


def slot_id(office_id: str, service_point_code: str, starts_at: datetime) -> UUID:
    """One id per office, service point and start instant (whatever its time zone)."""
    instant = starts_at.astimezone(UTC).isoformat()
    return uuid5(_NAMESPACE, f"slot/{office_id}/{service_point_code}/{instant}")


# ------------------------------------------------------------ service point


class ServicePoint(Aggregate):
    """A place where an office serves (Servicestelle): its calendar and appointment types."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.code: str = ""
        self.name: str = ""
        self.rules: CalendarRules = CalendarRules(15, 1, 0, time(7), 28, "UTC", (), 48, 24)
        self.types: dict[str, AppointmentType] = {}
        self.closed_days: dict[date, str] = {}

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Defined(Event, Aggregate.Created):
        office_id: str
        code: str
        name: str
        slot_minutes: int
        counters: int
        same_day_counters: int
        same_day_release: str
        booking_horizon_days: int
        timezone: str
        opening_hours: list[str]
        hold_hours: int
        reminder_hours: int

        def apply(self, point: ServicePoint) -> None:
            point.office_id = self.office_id
            point.code = self.code
            point.name = self.name
            point.rules = _rules_of(self)

    class Reconfigured(Event):
        name: str
        slot_minutes: int
        counters: int
        same_day_counters: int
        same_day_release: str
        booking_horizon_days: int
        timezone: str
        opening_hours: list[str]
        hold_hours: int
        reminder_hours: int

        def apply(self, point: ServicePoint) -> None:
            point.name = self.name
            point.rules = _rules_of(self)

    class AppointmentTypeOffered(Event):
        """A type is offered (again, or with new terms: the later event wins)."""

        type_code: str
        label_de: str
        topic: str
        procedure_kind: str
        legal_bases: list[str]
        for_documents: list[str]
        duration_minutes: int

        def apply(self, point: ServicePoint) -> None:
            point.types[self.type_code] = AppointmentType(
                code=self.type_code,
                label_de=self.label_de,
                topic=self.topic,
                procedure_kind=self.procedure_kind,
                legal_bases=tuple(self.legal_bases),
                for_documents=tuple(self.for_documents),
                duration_minutes=self.duration_minutes,
            )

    class AppointmentTypeWithdrawn(Event):
        type_code: str

        def apply(self, point: ServicePoint) -> None:
            point.types.pop(self.type_code, None)

    class DayClosed(Event):
        """Closed on this day (holiday, staff meeting); bookings made before stay."""

        day: date
        reason: str

        def apply(self, point: ServicePoint) -> None:
            point.closed_days[self.day] = self.reason

    class DayReopened(Event):
        day: date

        def apply(self, point: ServicePoint) -> None:
            point.closed_days.pop(self.day, None)

    @staticmethod
    def id_for(office_id: str, code: str) -> UUID:
        return uuid5(_NAMESPACE, f"service-point/{office_id}/{code}")

    @classmethod
    def define(
        cls, *, office_id: str, code: str, name: str, rules: CalendarRules, act: Act
    ) -> ServicePoint:
        require_code("office_id", office_id)
        require_code("code", code)
        require_text("name", name, max_length=200)
        rules.check()
        return cls._create(
            cls.Defined,
            id=cls.id_for(office_id, code),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            code=code,
            name=name,
            **_rules_fields(rules),
        )

    def _record(self, event_class: type[ServicePoint.Event], act: Act, **fields: Any) -> None:
        self.trigger_event(event_class, by=act.by, at=act.at, timestamp=act.recorded_at, **fields)

    def reconfigure(self, *, name: str, rules: CalendarRules, act: Act) -> None:
        require_text("name", name, max_length=200)
        rules.check()
        if name == self.name and rules == self.rules:
            return
        self._record(self.Reconfigured, act, name=name, **_rules_fields(rules))

    def offer_type(self, appointment_type: AppointmentType, act: Act) -> None:
        require_code("appointment_type.code", appointment_type.code)
        require_text("appointment_type.label_de", appointment_type.label_de, max_length=200)
        require_code("appointment_type.topic", appointment_type.topic)
        require_code("appointment_type.procedure_kind", appointment_type.procedure_kind)
        for code in appointment_type.legal_bases:
            require_code("appointment_type.legal_bases", code)
        for held in appointment_type.for_documents:
            require_choice("appointment_type.for_documents", held, DocumentHeld)
        if not 5 <= appointment_type.duration_minutes <= self.rules.slot_minutes:
            # One appointment takes one seat of one slot: longer ones need longer slots.
            raise InvalidValue(
                "appointment_type.duration_minutes",
                f"must lie between 5 and the slot length ({self.rules.slot_minutes} minutes)",
            )
        if self.types.get(appointment_type.code) == appointment_type:
            return
        self._record(
            self.AppointmentTypeOffered,
            act,
            type_code=appointment_type.code,
            label_de=appointment_type.label_de,
            topic=appointment_type.topic,
            procedure_kind=appointment_type.procedure_kind,
            legal_bases=list(appointment_type.legal_bases),
            for_documents=list(appointment_type.for_documents),
            duration_minutes=appointment_type.duration_minutes,
        )

    def withdraw_type(self, type_code: str, act: Act) -> None:
        self.appointment_type(type_code)
        self._record(self.AppointmentTypeWithdrawn, act, type_code=type_code)

    def close_day(self, day: date, reason: str, act: Act) -> None:
        """Close the service point on a day, today or later at its place (the caller
        makes sure no booking holds a seat that day, :class:`DayHasBookings`); closing
        again with the same reason changes nothing, with another records the new one."""
        require_text("reason", reason, max_length=200)
        if self.closed_days.get(day) == reason:
            return
        today = self.local(act.at).date()
        if day < today:
            raise InvalidValue("day", f"is in the past (today is {today:%Y-%m-%d} here)")
        self._record(self.DayClosed, act, day=day, reason=reason)

    def reopen_day(self, day: date, act: Act) -> None:
        """Open a closed day again; a day that is not closed stays as it is (idempotent,
        like closing)."""
        if day not in self.closed_days:
            return
        self._record(self.DayReopened, act, day=day)

    # ----------------------------------------------------------------- queries

    def appointment_type(self, code: str) -> AppointmentType:
        known = self.types.get(code)
        if known is None:
            raise InvalidValue("appointment_type", "is not offered at this service point")
        return known

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.rules.zone)

    def slot_starts(self, day: date, holidays: HolidayCalendar = NO_HOLIDAYS) -> list[datetime]:
        """The starts of the day's slots, in order; none on a closed day, nor on a public
        holiday of ``holidays`` (the office's; the default knows none, for listing what
        was booked on a day whatever it is).

        Slots follow the wall clock of the service point. On the day summer time begins,
        local times that do not exist (02:00-02:59 in Berlin) are no slot starts; on the
        day it ends, a wall-clock time that occurs twice is a slot start once, at its
        first occurrence (summer time, ``fold=0``): the counters are staffed by the wall
        clock, not twice over for the repeated hour. Compare starts by instant (see
        :meth:`check_bookable`): an aware time in the same zone compares by wall clock.
        """
        if day in self.closed_days or holidays.is_holiday(day):
            return []
        zone = self.rules.zone
        step = timedelta(minutes=self.rules.slot_minutes)
        starts: list[datetime] = []
        for hours in sorted(self.rules.opening_hours, key=lambda h: h.opens):
            if hours.weekday != day.isoweekday():
                continue
            start = datetime.combine(day, hours.opens, tzinfo=zone)
            closes = datetime.combine(day, hours.closes, tzinfo=zone)
            while start + step <= closes:
                if _exists(start):
                    starts.append(start)
                start += step
        return starts

    def capacity_at(self, starts_at: datetime, now: datetime) -> int:
        """Seats bookable now: the same-day seats only from the morning of the day."""
        local_now = self.local(now)
        released = self.local(starts_at).date() == local_now.date() and (
            local_now.time() >= self.rules.same_day_release
        )
        if released:
            return self.rules.counters
        return self.rules.counters - self.rules.same_day_counters

    def check_bookable(
        self, starts_at: datetime, now: datetime, holidays: HolidayCalendar = NO_HOLIDAYS
    ) -> None:
        """A slot of the calendar, in the future and released, not on a public holiday of
        ``holidays`` (the office is closed then, without a closure recorded)."""
        local_start = self.local(starts_at)
        today = self.local(now).date()
        if starts_at <= now:
            raise SlotNotBookable("the slot has begun or is over")
        if local_start.date() > today + timedelta(days=self.rules.booking_horizon_days):
            raise SlotNotBookable(
                f"slots are released {self.rules.booking_horizon_days} days ahead; "
                "this one is not released yet"
            )
        if local_start.date() in self.closed_days:
            raise SlotNotBookable("the service point is closed on that day")
        if holidays.is_holiday(local_start.date()):
            raise SlotNotBookable("the service point is closed on that day: a public holiday")
        # By instant: the second 02:00 of the night summer time ends is not the first.
        instant = starts_at.astimezone(UTC)
        if all(start.astimezone(UTC) != instant for start in self.slot_starts(local_start.date())):
            raise SlotNotBookable("no slot of this service point starts at that time")
        if self.capacity_at(starts_at, now) == 0:
            raise SlotNotBookable(
                f"this slot's seats are released on its day at {self.rules.same_day_release:%H:%M}"
            )

    def fitting_types(self, situation: Situation) -> list[AppointmentType]:
        return [t for t in sorted(self.types.values(), key=lambda t: t.code) if t.fits(situation)]

    def check_fits(self, type_code: str, situation: Situation) -> AppointmentType:
        """The type, if it fits; else refused with the types that fit named."""
        chosen = self.appointment_type(type_code)
        if chosen.fits(situation):
            return chosen
        fitting = self.fitting_types(situation)
        if fitting:
            names = ", ".join(f"{t.code} ({t.label_de})" for t in fitting)
            advice = f"book {names} instead"
        else:
            advice = "no appointment type of this service point fits; write to the office"
        raise AppointmentTypeDoesNotFit(
            "appointment_type",
            f"{chosen.code} does not fit a person holding {situation.holds}"
            f"{_basis_text(situation.holds_legal_basis)} who wants {situation.wants}: {advice}",
        )

    def hold_times(self, booked_at: datetime, starts_at: datetime) -> tuple[datetime, datetime]:
        """Until when a booking is held, and when its reminder is due.

        A hold never outlasts the slot's start; the reminder comes ``reminder_hours``
        before the hold lapses, but at the earliest half-way through a short hold.
        """
        held_until = min(booked_at + timedelta(hours=self.rules.hold_hours), starts_at)
        lead = min(timedelta(hours=self.rules.reminder_hours), (held_until - booked_at) / 2)
        return held_until, held_until - lead


def _exists(local: datetime) -> bool:
    """Whether a wall-clock time (``fold=0``) exists in its zone: it survives the round
    trip through UTC (02:30 on the night summer time begins comes back as 03:30)."""
    back = local.astimezone(UTC).astimezone(local.tzinfo)
    return back.replace(tzinfo=None) == local.replace(tzinfo=None)


def _basis_text(legal_basis: str | None) -> str:
    return f" on {legal_basis}" if legal_basis else ""


def _rules_fields(rules: CalendarRules) -> dict[str, Any]:
    return {
        "slot_minutes": rules.slot_minutes,
        "counters": rules.counters,
        "same_day_counters": rules.same_day_counters,
        "same_day_release": f"{rules.same_day_release:%H:%M}",
        "booking_horizon_days": rules.booking_horizon_days,
        "timezone": rules.timezone,
        "opening_hours": [hours.encode() for hours in rules.opening_hours],
        "hold_hours": rules.hold_hours,
        "reminder_hours": rules.reminder_hours,
    }


def _rules_of(event: ServicePoint.Defined | ServicePoint.Reconfigured) -> CalendarRules:
    return CalendarRules(
        slot_minutes=event.slot_minutes,
        counters=event.counters,
        same_day_counters=event.same_day_counters,
        same_day_release=parse_time("same_day_release", event.same_day_release),
        booking_horizon_days=event.booking_horizon_days,
        timezone=event.timezone,
        opening_hours=tuple(OpeningHours.parse(text) for text in event.opening_hours),
        hold_hours=event.hold_hours,
        reminder_hours=event.reminder_hours,
    )


# ---------------------------------------------------------------------- slot


class Slot(Aggregate):
    """One start time of one service point, and who holds its seats.

    Created with its first booking. The capacity is passed to :meth:`take` by the
    caller, from the service point's rules at that moment (same-day seats depend on the
    time of booking); the slot checks it against its holders, which is the check the
    store's version constraint makes race-free.
    """

    def __init__(self) -> None:
        self.office_id: str = ""
        self.service_point_id: str = ""
        self.starts_at: datetime = datetime.min.replace(tzinfo=UTC)
        self.holders: list[str] = []
        self.closed: bool = False

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Opened(Event, Aggregate.Created):
        office_id: str
        service_point_id: str
        starts_at: datetime

        def apply(self, slot: Slot) -> None:
            slot.office_id = self.office_id
            slot.service_point_id = self.service_point_id
            slot.starts_at = self.starts_at

    class Taken(Event):
        appointment_id: str
        capacity: int
        """The seats the slot had when this one was taken."""

        def apply(self, slot: Slot) -> None:
            slot.holders.append(self.appointment_id)

    class Freed(Event):
        appointment_id: str
        reason: str
        """The appointment's end that freed the seat: cancelled, lapsed."""

        def apply(self, slot: Slot) -> None:
            slot.holders.remove(self.appointment_id)

    class Closed(Event):
        """The slot's day was closed (:meth:`ServicePoint.close_day`), in the same
        transaction: a booking that took a seat meanwhile makes the closure conflict, and
        a closure written first makes the booking's take conflict."""

        def apply(self, slot: Slot) -> None:
            slot.closed = True

    class Reopened(Event):
        def apply(self, slot: Slot) -> None:
            slot.closed = False

    @classmethod
    def open(
        cls, *, office_id: str, service_point_code: str, service_point_id: UUID,
        starts_at: datetime, act: Act,
    ) -> Slot:  # fmt: skip
        return cls._create(
            cls.Opened,
            id=slot_id(office_id, service_point_code, starts_at),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            service_point_id=str(service_point_id),
            starts_at=starts_at,
        )

    def take(self, appointment_id: UUID, *, capacity: int, act: Act) -> None:
        if self.closed:
            raise SlotNotBookable("the service point is closed on that day")
        if len(self.holders) >= capacity:
            raise SlotTaken(
                f"the slot at {self.starts_at.isoformat()} is fully booked; "
                "choose another slot or join the waitlist"
            )
        self.trigger_event(
            self.Taken,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            appointment_id=str(appointment_id),
            capacity=capacity,
        )

    def free(self, appointment_id: UUID, *, reason: str, act: Act) -> None:
        if str(appointment_id) not in self.holders:
            return
        self.trigger_event(
            self.Freed,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            appointment_id=str(appointment_id),
            reason=reason,
        )

    def close(self, act: Act) -> None:
        """Refuse every take from now on (the day is closed); closed already: nothing.
        The caller checked that no holder still holds a seat (holders of attended
        appointments stay listed)."""
        if self.closed:
            return
        self.trigger_event(self.Closed, by=act.by, at=act.at, timestamp=act.recorded_at)

    def reopen(self, act: Act) -> None:
        if not self.closed:
            return
        self.trigger_event(self.Reopened, by=act.by, at=act.at, timestamp=act.recorded_at)

    @property
    def seats_held(self) -> int:
        return len(self.holders)


# --------------------------------------------------------------- appointment


@dataclass(frozen=True)
class Person:
    """Who booked, as they told it; unverified until the counter sees them."""

    surname: str
    given_names: str
    date_of_birth: date
    email: str
    phone: str | None = None

    def check(self, *, today: date) -> None:
        require_text("person.surname", self.surname, max_length=200)
        require_text("person.given_names", self.given_names, max_length=200)
        require_email("person.email", self.email)
        if self.phone is not None:
            require_text("person.phone", self.phone, max_length=40)
        if not date(1900, 1, 1) <= self.date_of_birth <= today:
            raise InvalidValue("person.date_of_birth", "must lie between 1900 and today")


@dataclass
class Mail:
    number: int
    kind: MailKind
    status: MailStatus = "queued"
    attempts: int = 0
    last_reason: str | None = None
    queued_at: datetime | None = None
    sent_at: datetime | None = None


@dataclass(frozen=True)
class Booking:
    """What a new appointment is: where, when, what for, for whom."""

    office_id: str
    service_point_id: UUID
    slot_id: UUID
    starts_at: datetime
    appointment_type: AppointmentType
    situation: Situation
    person: Person
    person_key: str
    held_until: datetime
    reminder_at: datetime
    origin: Origin = "online"
    case_id: UUID | None = None
    reference_sha256: str | None = None
    waitlist_entry_id: UUID | None = None
    language: str = "de"
    """The language the person booked in: their mails are written in it (German or
    English; other languages read English)."""


class Appointment(Aggregate):
    """One booking of one seat of one slot, from the hold to its end."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.service_point_id: str = ""
        self.slot_id: str = ""
        self.starts_at: datetime = datetime.min.replace(tzinfo=UTC)
        self.ends_at: datetime = datetime.min.replace(tzinfo=UTC)
        self.appointment_type: str = ""
        self.topic: str = ""
        self.procedure_kind: str = ""
        self.legal_basis: str | None = None
        self.holds: str = "none"
        self.holds_legal_basis: str | None = None
        self.wants: str = ""
        self.case_id: str | None = None
        self.person_key: str = ""
        self.reference_sha256: str | None = None
        self.origin: str = "online"
        self.waitlist_entry_id: str | None = None
        self.person: Person = Person("", "", date.min, "")
        self.status: AppointmentStatus = "held"
        self.booked_at: datetime = datetime.min.replace(tzinfo=UTC)
        self.held_until: datetime = datetime.min.replace(tzinfo=UTC)
        self.reminder_at: datetime = datetime.min.replace(tzinfo=UTC)
        self.confirmed_at: datetime | None = None
        self.checked_in_at: datetime | None = None
        self.ended_at: datetime | None = None
        self.end_reason: str | None = None
        self.mails: list[Mail] = []
        self.resends: int = 0
        self.language: str = "de"
        self.email_corrections: int = 0
        self.hold_extended: bool = False

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Booked(Event, Aggregate.Created):
        """Version 2 on: ``language``, the language of the person's mails; version 1
        events lack it and read as German, the only language mails had then."""

        class_version = 2

        office_id: str
        service_point_id: str
        slot_id: str
        starts_at: datetime
        """In the service point's local time (the service books so): its date is the
        day at the counter."""
        ends_at: datetime
        appointment_type: str
        topic: str
        procedure_kind: str
        legal_basis: str | None
        """The legal basis the appointment is about, where the person named one."""
        holds: str
        holds_legal_basis: str | None
        wants: str
        case_id: str | None
        person_key: str
        """A keyed hash of the person's normalised identity (never reversible without the
        server's secret): the same person across bookings, for limits and for counting
        customers without a case file."""
        reference_sha256: str | None
        """The hash of the booking's reference; ``None`` for an offer from the waitlist,
        which the entry's reference reaches."""
        origin: str
        waitlist_entry_id: str | None
        held_until: datetime
        reminder_at: datetime
        surname: Personal[str]
        given_names: Personal[str]
        date_of_birth: Personal[date]
        email: Personal[str]
        phone: Personal[str | None]
        language: str = "de"

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Bookings made before the language was recorded: their mails were German."""
            state["language"] = "de"

        def apply(self, appointment: Appointment) -> None:
            appointment.language = self.language
            for name in _BOOKED_STATE_FIELDS:
                setattr(appointment, name, getattr(self, name))
            appointment.person = Person(
                self.surname, self.given_names, self.date_of_birth, self.email, self.phone
            )
            appointment.booked_at = self.at

    class MailQueued(Event):
        """A mail to the person is due; it is sent after the transaction that queued it."""

        mail_number: int
        kind: str

        def apply(self, appointment: Appointment) -> None:
            appointment.mails.append(
                Mail(self.mail_number, self.kind, queued_at=self.at)  # type: ignore[arg-type]
            )

    class MailSent(Event):
        """The office's mail server accepted the mail for delivery."""

        mail_number: int
        attempt: int

        def apply(self, appointment: Appointment) -> None:
            mail = appointment.mails[self.mail_number - 1]
            mail.status = "sent"
            mail.attempts = self.attempt
            mail.sent_at = self.at
            mail.last_reason = None

    class MailFailed(Event):
        """Sending failed; ``reason`` is a code (``smtp-550``, ``unreachable``), never the
        server's text, which may quote the address."""

        mail_number: int
        attempt: int
        reason: str

        def apply(self, appointment: Appointment) -> None:
            mail = appointment.mails[self.mail_number - 1]
            mail.status = "failed"
            mail.attempts = self.attempt
            mail.last_reason = self.reason

    class MailBounced(Event):
        """The mail came back after it was sent (a delivery status notification)."""

        mail_number: int
        reason: str
        """The DSN status code, e.g. ``5.1.1``."""

        def apply(self, appointment: Appointment) -> None:
            mail = appointment.mails[self.mail_number - 1]
            mail.status = "bounced"
            mail.last_reason = self.reason

    class ConfirmationMailRequested(Event):
        """The person asked for the confirmation mail again."""

        mail_number: int

        def apply(self, appointment: Appointment) -> None:
            appointment.resends += 1
            appointment.mails.append(Mail(self.mail_number, "confirmation", queued_at=self.at))

    class EmailCorrected(Event):
        """The person corrected the address of a held booking (a typo, a full inbox):
        the confirmation mail goes again, to the new address, with the same code."""

        mail_number: int
        email: Personal[str]

        def apply(self, appointment: Appointment) -> None:
            appointment.person = replace(appointment.person, email=self.email)
            appointment.email_corrections += 1
            appointment.mails.append(Mail(self.mail_number, "confirmation", queued_at=self.at))

    class HoldExtended(Event):
        """The person asked for more time to confirm (WCAG 2.2.1, timing adjustable);
        once per booking, never closer to the start than :data:`HOLD_EXTENSION_MARGIN`."""

        previous_held_until: datetime
        held_until: datetime
        reminder_at: datetime

        def apply(self, appointment: Appointment) -> None:
            appointment.held_until = self.held_until
            appointment.reminder_at = self.reminder_at
            appointment.hold_extended = True

    class Confirmed(Event):
        via: str

        def apply(self, appointment: Appointment) -> None:
            appointment.status = "confirmed"
            appointment.confirmed_at = self.at

    class Lapsed(Event):
        """The hold ended unconfirmed: the seat is free again, never silently."""

        reason: str
        held_until: datetime

        def apply(self, appointment: Appointment) -> None:
            appointment.status = "lapsed"
            appointment.ended_at = self.at
            appointment.end_reason = self.reason

    class Retyped(Event):
        """A caseworker booked the right type instead of sending the person away."""

        previous_type: str
        appointment_type: str
        topic: str
        procedure_kind: str
        legal_basis: str | None
        reason: Personal[str | None]

        def apply(self, appointment: Appointment) -> None:
            appointment.appointment_type = self.appointment_type
            appointment.topic = self.topic
            appointment.procedure_kind = self.procedure_kind
            appointment.legal_basis = self.legal_basis

    class LinkedToCaseFile(Event):
        case_id: str

        def apply(self, appointment: Appointment) -> None:
            appointment.case_id = self.case_id

    class CheckedIn(Event):
        def apply(self, appointment: Appointment) -> None:
            appointment.status = "checked_in"
            appointment.checked_in_at = self.at

    class Attended(Event):
        """Served at the counter. The yearly report counts these: one appointment served,
        its customer the case file (or, without one, the person key)."""

        office_id: str
        service_point_id: str
        appointment_type: str
        procedure_kind: str
        legal_basis: str | None
        case_id: str | None
        person_key: str

        def apply(self, appointment: Appointment) -> None:
            appointment.status = "attended"
            appointment.ended_at = self.at
            appointment.end_reason = "attended"

    class NoShow(Event):
        """The person did not come; counted for the no-show rate."""

        office_id: str
        service_point_id: str
        appointment_type: str
        procedure_kind: str
        legal_basis: str | None
        case_id: str | None
        person_key: str

        def apply(self, appointment: Appointment) -> None:
            appointment.status = "no_show"
            appointment.ended_at = self.at
            appointment.end_reason = "no_show"

    class Cancelled(Event):
        cancelled_by: str
        reason: Personal[str | None]

        def apply(self, appointment: Appointment) -> None:
            appointment.status = "cancelled"
            appointment.ended_at = self.at
            appointment.end_reason = f"cancelled_by_{self.cancelled_by}"

    class CancelledAfterErasure(Event):
        """Cancelled after the person's data was erased: a cancellation without a
        reason, since nothing personal can be sealed any more (their key is gone)."""

        cancelled_by: str

        def apply(self, appointment: Appointment) -> None:
            appointment.status = "cancelled"
            appointment.ended_at = self.at
            appointment.end_reason = f"cancelled_by_{self.cancelled_by}"

    # ---------------------------------------------------------------- commands

    @classmethod
    def book(cls, *, appointment_id: UUID, booking: Booking, act: Act) -> Appointment:
        """Book a seat (the caller takes it on the slot in the same transaction), held
        until confirmed, with the confirmation mail queued."""
        booking.situation.check()
        booking.person.check(today=act.at.date())
        if not booking.appointment_type.fits(booking.situation):
            raise AppointmentTypeDoesNotFit("appointment_type", "does not fit the situation")
        if booking.held_until > booking.starts_at or booking.reminder_at > booking.held_until:
            raise InvalidValue("held_until", "a hold must lapse before the slot begins")
        if booking.language not in MAIL_LANGUAGES:
            raise InvalidValue("language", f"must be one of {', '.join(sorted(MAIL_LANGUAGES))}")
        chosen = booking.appointment_type
        legal_basis = booking.situation.holds_legal_basis
        appointment = cls._create(
            cls.Booked,
            id=appointment_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=booking.office_id,
            service_point_id=str(booking.service_point_id),
            slot_id=str(booking.slot_id),
            starts_at=booking.starts_at,
            ends_at=booking.starts_at + timedelta(minutes=chosen.duration_minutes),
            appointment_type=chosen.code,
            topic=chosen.topic,
            procedure_kind=chosen.procedure_kind,
            legal_basis=legal_basis,
            holds=booking.situation.holds,
            holds_legal_basis=booking.situation.holds_legal_basis,
            wants=booking.situation.wants,
            case_id=None if booking.case_id is None else str(booking.case_id),
            person_key=booking.person_key,
            reference_sha256=booking.reference_sha256,
            origin=booking.origin,
            waitlist_entry_id=(
                None if booking.waitlist_entry_id is None else str(booking.waitlist_entry_id)
            ),
            held_until=booking.held_until,
            reminder_at=booking.reminder_at,
            surname=booking.person.surname,
            given_names=booking.person.given_names,
            date_of_birth=booking.person.date_of_birth,
            email=booking.person.email,
            phone=booking.person.phone,
            language=booking.language,
        )
        appointment._queue_mail("confirmation", act)
        return appointment

    def _record(self, event_class: type[Appointment.Event], act: Act, **fields: Any) -> None:
        if self.person_erased and personal_fields(event_class):
            raise BookingErased(
                "the booking's personal data was erased: nothing personal can be recorded "
                "on it any more"
            )
        self.trigger_event(event_class, by=act.by, at=act.at, timestamp=act.recorded_at, **fields)

    def _queue_mail(self, kind: MailKind, act: Act) -> int:
        number = len(self.mails) + 1
        self._record(self.MailQueued, act, mail_number=number, kind=kind)
        return number

    def record_mail_sent(self, mail_number: int, act: Act) -> None:
        mail = self._mail_to_send(mail_number)
        self._record(self.MailSent, act, mail_number=mail_number, attempt=mail.attempts + 1)

    def record_mail_failed(self, mail_number: int, reason: str, act: Act) -> None:
        mail = self._mail_to_send(mail_number)
        require_code("reason", reason)
        self._record(
            self.MailFailed, act, mail_number=mail_number, attempt=mail.attempts + 1, reason=reason
        )

    def record_mail_bounced(self, mail_number: int, reason: str, act: Act) -> None:
        mail = self.mail(mail_number)
        if mail.status != "sent":
            raise AppointmentStateConflict(f"mail {mail_number} is {mail.status}, not sent")
        if not re.fullmatch(r"[245]\.\d{1,3}\.\d{1,3}", reason):
            raise InvalidValue("reason", "must be a delivery status code like 5.1.1")
        self._record(self.MailBounced, act, mail_number=mail_number, reason=reason)

    def request_confirmation_mail(self, act: Act) -> int:
        """Send the confirmation mail again; the code in it stays the same."""
        self.check_held()
        if self.resends >= MAX_RESENDS:
            raise AppointmentStateConflict(
                f"the confirmation mail was sent again {MAX_RESENDS} times already; "
                "confirm at the counter or ask the office"
            )
        number = len(self.mails) + 1
        self._record(self.ConfirmationMailRequested, act, mail_number=number)
        return number

    def correct_email(self, email: str, act: Act) -> int:
        """Correct the address of a held booking; the confirmation mail goes to the new
        one (same code). Returns the number of that mail."""
        self.check_held()
        if act.at >= self.held_until:
            raise AppointmentStateConflict("the hold has lapsed; the address cannot be changed")
        require_email("email", email)
        if email == self.person.email:
            raise InvalidValue("email", "is the address the booking already has")
        if self.email_corrections >= MAX_EMAIL_CORRECTIONS:
            raise AppointmentStateConflict(
                f"the address was corrected {MAX_EMAIL_CORRECTIONS} times already; "
                "confirm at the counter or ask the office"
            )
        number = len(self.mails) + 1
        self._record(self.EmailCorrected, act, mail_number=number, email=email)
        return number

    def hold_extension(self, extension: timedelta, now: datetime) -> datetime:
        """Until when the hold would run if extended now by ``extension``: by that much,
        but never past :data:`HOLD_EXTENSION_MARGIN` before the start. Refused once
        extended, after the hold lapsed, and where no time can be gained."""
        self.check_held()
        if self.hold_extended:
            raise AppointmentStateConflict("the hold was extended once already")
        if now >= self.held_until:
            raise AppointmentStateConflict("the hold has lapsed; it cannot be extended")
        if extension <= timedelta(0):
            raise InvalidValue("extension", "must be a positive time")
        latest = self.starts_at - HOLD_EXTENSION_MARGIN
        until = min(self.held_until + extension, latest)
        if until <= self.held_until:
            raise AppointmentStateConflict(
                "the appointment begins too soon to hold it longer; confirm it now"
            )
        return until

    def extend_hold(self, extension: timedelta, act: Act) -> None:
        """Hold the booking longer, once (see :meth:`hold_extension`); the reminder moves
        with it, as long before the new end as before the old one."""
        until = self.hold_extension(extension, act.at)
        lead = self.held_until - self.reminder_at
        self._record(
            self.HoldExtended,
            act,
            previous_held_until=self.held_until,
            held_until=until,
            reminder_at=max(until - lead, act.at),
        )

    def confirm(self, *, via: ConfirmedVia, act: Act) -> None:
        if self.status == "confirmed":
            return
        self.check_held()
        if via == "mail_code" and act.at >= self.held_until:
            raise AppointmentStateConflict("the hold has lapsed; the booking cannot be confirmed")
        self._record(self.Confirmed, act, via=via)

    def remind(self, act: Act) -> int | None:
        """Queue the reminder, once, when it is due; ``None`` when not (yet), or when the
        person's data was erased (no address to write to)."""
        if self.status != "held" or act.at < self.reminder_at or self.person_erased:
            return None
        if any(mail.kind == "reminder" for mail in self.mails):
            return None
        return self._queue_mail("reminder", act)

    def lapse(self, act: Act) -> bool:
        """End an unconfirmed hold whose time is up (the caller frees the slot)."""
        if self.status != "held" or act.at < self.held_until:
            return False
        self._record(self.Lapsed, act, reason="not_confirmed_in_time", held_until=self.held_until)
        if not self.person_erased:
            self._queue_mail("lapse_notice", act)
        return True

    def cancel(self, *, cancelled_by: CancelledBy, reason: str | None, act: Act) -> None:
        if self.status not in HOLDING_A_SEAT or self.status == "checked_in":
            raise AppointmentStateConflict(f"the appointment is {self.status}")
        if cancelled_by == "person" and act.at >= self.starts_at:
            # Once begun it was kept or missed: a cancellation now would turn a no-show
            # into a cancelled booking. The office may still correct it.
            raise AppointmentStateConflict("the appointment has begun; it cannot be cancelled")
        if reason is not None:
            require_text("reason", reason, max_length=1000, line_breaks=True)
        if self.person_erased:
            # The seat must still free; the person is not told (the address is gone).
            if reason is not None:
                raise BookingErased(
                    "the booking's personal data was erased: a reason cannot be recorded "
                    "on it any more; cancel it without one"
                )
            self._record(self.CancelledAfterErasure, act, cancelled_by=cancelled_by)
            return
        self._record(self.Cancelled, act, cancelled_by=cancelled_by, reason=reason)
        if cancelled_by == "office" and act.at < self.starts_at:
            # The person booked and relies on it; the office's reason is its own and is
            # not sent. A correction after the appointment began tells nobody anything.
            self._queue_mail("cancellation_notice", act)

    def retype(
        self, *, appointment_type: AppointmentType, legal_basis: str | None,
        reason: str | None, act: Act,
    ) -> None:  # fmt: skip
        self.check_not_ended()
        if legal_basis is not None:
            require_code("legal_basis", legal_basis)
            if appointment_type.legal_bases and legal_basis not in appointment_type.legal_bases:
                msg = f"is not a legal basis of appointment type {appointment_type.code}"
                raise InvalidValue("legal_basis", msg)
        if reason is not None:
            require_text("reason", reason, max_length=1000, line_breaks=True)
        if appointment_type.code == self.appointment_type and legal_basis == self.legal_basis:
            raise AppointmentStateConflict("the appointment already has this type and basis")
        self._record(
            self.Retyped,
            act,
            previous_type=self.appointment_type,
            appointment_type=appointment_type.code,
            topic=appointment_type.topic,
            procedure_kind=appointment_type.procedure_kind,
            legal_basis=legal_basis,
            reason=reason,
        )

    def link_to_case_file(self, case_id: UUID, act: Act) -> None:
        self.check_not_ended()
        if self.case_id == str(case_id):
            return
        self._record(self.LinkedToCaseFile, act, case_id=str(case_id))

    def check_in(self, act: Act) -> None:
        """The person is at the counter; a held booking is confirmed by their presence.
        Not before the appointment's day (earlier on the day is fine: people come early)."""
        self.check_its_day(act.at)
        if self.status == "held":
            self.confirm(via="counter", act=act)
        if self.status != "confirmed":
            raise AppointmentStateConflict(f"the appointment is {self.status}")
        self._record(self.CheckedIn, act)

    def record_attended(self, act: Act) -> None:
        if self.status != "checked_in":
            raise AppointmentStateConflict(
                f"the appointment is {self.status}; check the person in first"
            )
        self.check_its_day(act.at)
        self._record(self.Attended, act, **self._report_fields())

    def record_no_show(self, act: Act) -> None:
        if self.status not in ("held", "confirmed"):
            raise AppointmentStateConflict(f"the appointment is {self.status}")
        if act.at < self.starts_at:
            raise AppointmentStateConflict("the appointment has not begun yet")
        self._record(self.NoShow, act, **self._report_fields())

    def _report_fields(self) -> dict[str, Any]:
        return {
            "office_id": self.office_id,
            "service_point_id": self.service_point_id,
            "appointment_type": self.appointment_type,
            "procedure_kind": self.procedure_kind,
            "legal_basis": self.legal_basis,
            "case_id": self.case_id,
            "person_key": self.person_key,
        }

    # ------------------------------------------------------------------ checks

    def check_held(self) -> None:
        if self.status != "held":
            raise AppointmentStateConflict(f"the appointment is {self.status}, not held")

    def check_its_day(self, now: datetime) -> None:
        """Refused before the appointment's day at its service point: ``starts_at`` is
        in the service point's local time, and ``now`` is read with the same offset."""
        if now.astimezone(self.starts_at.tzinfo).date() < self.starts_at.date():
            raise AppointmentStateConflict(
                f"the appointment has not begun yet: it is on {self.starts_at.date():%Y-%m-%d}"
            )

    def check_not_ended(self) -> None:
        if self.status in ENDED:
            raise AppointmentStateConflict(f"the appointment is {self.status}")

    def mail(self, number: int) -> Mail:
        if 1 <= number <= len(self.mails):
            return self.mails[number - 1]
        raise MailNotFound(f"mail {number} does not exist for this appointment")

    def _mail_to_send(self, number: int) -> Mail:
        mail = self.mail(number)
        if mail.status not in ("queued", "failed"):
            raise AppointmentStateConflict(f"mail {number} is {mail.status}")
        return mail

    @property
    def person_erased(self) -> bool:
        """The person's data was erased (their key destroyed): it reads redacted."""
        return is_redacted(self.person.email)

    @property
    def mails_to_send(self) -> list[Mail]:
        """Queued, or failed and still to be tried again; while the booking is held (a
        confirmation or reminder after confirming, cancelling or lapsing is pointless),
        and of several confirmation mails only the newest. None once the person's data
        was erased: the address is gone with it."""
        if self.person_erased:
            return []
        last_confirmation = max(
            (mail.number for mail in self.mails if mail.kind == "confirmation"), default=0
        )
        return [
            mail
            for mail in self.mails
            if (mail.status == "queued" or mail.attempts < MAX_MAIL_ATTEMPTS)
            and mail.status in ("queued", "failed")
            and (mail.kind in NOTICES or self.status == "held")
            and (mail.kind != "confirmation" or mail.number == last_confirmation)
        ]

    @property
    def holds_seat(self) -> bool:
        return self.status in HOLDING_A_SEAT


_BOOKED_STATE_FIELDS: Final = (
    "office_id",
    "service_point_id",
    "slot_id",
    "starts_at",
    "ends_at",
    "appointment_type",
    "topic",
    "procedure_kind",
    "legal_basis",
    "holds",
    "holds_legal_basis",
    "wants",
    "case_id",
    "person_key",
    "reference_sha256",
    "origin",
    "waitlist_entry_id",
    "held_until",
    "reminder_at",
)


# ------------------------------------------------------------------- indexes


class BookingReference(Aggregate):
    """Claims the hash of one booking reference for one appointment or waitlist entry."""

    def __init__(self) -> None:
        self.holder_id: str = ""
        self.holder_kind: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Claimed(Event, Aggregate.Created):
        holder_id: str
        holder_kind: str
        """``appointment`` or ``waitlist_entry``."""

        def apply(self, claim: BookingReference) -> None:
            claim.holder_id = self.holder_id
            claim.holder_kind = self.holder_kind

    @staticmethod
    def id_for(reference_sha256: str) -> UUID:
        return uuid5(_NAMESPACE, f"booking-reference/{reference_sha256}")

    @classmethod
    def claim(
        cls, *, reference_sha256: str, holder_id: UUID, holder_kind: str, act: Act
    ) -> BookingReference:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(reference_sha256),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            holder_id=str(holder_id),
            holder_kind=holder_kind,
        )


class PersonBookings(Aggregate):
    """The open bookings of one person in one office: the limit per person.

    Its id comes from the keyed hash of the person's identity, never from the identity
    itself; it is saved with every booking and every end of one, so the limit holds
    under concurrency like a slot's capacity does.
    """

    def __init__(self) -> None:
        self.office_id: str = ""
        self.open: list[str] = []

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Started(Event, Aggregate.Created):
        office_id: str

        def apply(self, bookings: PersonBookings) -> None:
            bookings.office_id = self.office_id

    class Counted(Event):
        appointment_id: str

        def apply(self, bookings: PersonBookings) -> None:
            bookings.open.append(self.appointment_id)

    class Released(Event):
        appointment_id: str

        def apply(self, bookings: PersonBookings) -> None:
            bookings.open.remove(self.appointment_id)

    @staticmethod
    def id_for(office_id: str, person_key: str) -> UUID:
        return uuid5(_NAMESPACE, f"person-bookings/{office_id}/{person_key}")

    @classmethod
    def start(cls, *, office_id: str, person_key: str, act: Act) -> PersonBookings:
        return cls._create(
            cls.Started,
            id=cls.id_for(office_id, person_key),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
        )

    def count(self, appointment_id: UUID, *, limit: int, act: Act) -> None:
        if len(self.open) >= limit:
            raise BookingLimitReached(
                f"one person may hold {limit} open bookings at this office; "
                "cancel one or wait until it has taken place"
            )
        self.trigger_event(
            self.Counted,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            appointment_id=str(appointment_id),
        )

    def release(self, appointment_id: UUID, act: Act) -> None:
        if str(appointment_id) in self.open:
            self.trigger_event(
                self.Released,
                by=act.by,
                at=act.at,
                timestamp=act.recorded_at,
                appointment_id=str(appointment_id),
            )


# ------------------------------------------------------------------- waitlist


class Waitlist(Aggregate):
    """Who waits for an appointment type at a service point, in order; ids only."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.service_point_id: str = ""
        self.appointment_type: str = ""
        self.waiting: list[str] = []
        self.offers: dict[str, str] = {}
        """Entry id to the appointment offered to it, while the offer is open."""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Started(Event, Aggregate.Created):
        office_id: str
        service_point_id: str
        appointment_type: str

        def apply(self, waitlist: Waitlist) -> None:
            waitlist.office_id = self.office_id
            waitlist.service_point_id = self.service_point_id
            waitlist.appointment_type = self.appointment_type

    class Joined(Event):
        entry_id: str

        def apply(self, waitlist: Waitlist) -> None:
            waitlist.waiting.append(self.entry_id)

    class Offered(Event):
        """A freed seat is held for the first in line, awaiting their confirmation."""

        entry_id: str
        appointment_id: str
        slot_id: str

        def apply(self, waitlist: Waitlist) -> None:
            waitlist.waiting.remove(self.entry_id)
            waitlist.offers[self.entry_id] = self.appointment_id

    class Left(Event):
        entry_id: str
        reason: str

        def apply(self, waitlist: Waitlist) -> None:
            if self.entry_id in waitlist.waiting:
                waitlist.waiting.remove(self.entry_id)
            waitlist.offers.pop(self.entry_id, None)

    @staticmethod
    def id_for(office_id: str, service_point_code: str, type_code: str) -> UUID:
        return uuid5(_NAMESPACE, f"waitlist/{office_id}/{service_point_code}/{type_code}")

    @classmethod
    def start(
        cls, *, office_id: str, service_point_code: str, service_point_id: UUID,
        appointment_type: str, act: Act,
    ) -> Waitlist:  # fmt: skip
        return cls._create(
            cls.Started,
            id=cls.id_for(office_id, service_point_code, appointment_type),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            service_point_id=str(service_point_id),
            appointment_type=appointment_type,
        )

    def _record(self, event_class: type[Waitlist.Event], act: Act, **fields: Any) -> None:
        self.trigger_event(event_class, by=act.by, at=act.at, timestamp=act.recorded_at, **fields)

    def join(self, entry_id: UUID, act: Act) -> int:
        self._record(self.Joined, act, entry_id=str(entry_id))
        return len(self.waiting)

    def offer(self, *, appointment_id: UUID, slot: UUID, act: Act) -> str:
        """Offer to the first in line; returns that entry's id."""
        if not self.waiting:
            raise AppointmentStateConflict("nobody is waiting")
        entry_id = self.waiting[0]
        self._record(
            self.Offered,
            act,
            entry_id=entry_id,
            appointment_id=str(appointment_id),
            slot_id=str(slot),
        )
        return entry_id

    def leave(self, entry_id: UUID, reason: WaitlistLeaveReason, act: Act) -> None:
        key = str(entry_id)
        if key in self.waiting or key in self.offers:
            self._record(self.Left, act, entry_id=key, reason=reason)

    def position_of(self, entry_id: UUID) -> int | None:
        key = str(entry_id)
        return self.waiting.index(key) + 1 if key in self.waiting else None


class WaitlistEntry(Aggregate):
    """One person waiting: what they need and how to reach them."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.waitlist_id: str = ""
        self.service_point_id: str = ""
        self.appointment_type: str = ""
        self.situation: Situation = Situation("none", None, "")
        self.person_key: str = ""
        self.person: Person = Person("", "", date.min, "")
        self.case_id: str | None = None
        self.offers: list[str] = []
        self.left_reason: str | None = None
        self.language: str = "de"

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Joined(Event, Aggregate.Created):
        """Version 2 on: ``language``, the language of the offer mails; version 1 events
        lack it and read as German, the only language mails had then."""

        class_version = 2

        office_id: str
        waitlist_id: str
        service_point_id: str
        appointment_type: str
        holds: str
        holds_legal_basis: str | None
        wants: str
        case_id: str | None
        person_key: str
        reference_sha256: str
        surname: Personal[str]
        given_names: Personal[str]
        date_of_birth: Personal[date]
        email: Personal[str]
        phone: Personal[str | None]
        language: str = "de"

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Entries made before the language was recorded: their mails were German."""
            state["language"] = "de"

        def apply(self, entry: WaitlistEntry) -> None:
            entry.language = self.language
            entry.office_id = self.office_id
            entry.waitlist_id = self.waitlist_id
            entry.service_point_id = self.service_point_id
            entry.appointment_type = self.appointment_type
            entry.situation = Situation(
                self.holds,  # type: ignore[arg-type]
                self.holds_legal_basis,
                self.wants,
            )
            entry.case_id = self.case_id
            entry.person_key = self.person_key
            entry.person = Person(
                self.surname, self.given_names, self.date_of_birth, self.email, self.phone
            )

    class Offered(Event):
        appointment_id: str

        def apply(self, entry: WaitlistEntry) -> None:
            entry.offers.append(self.appointment_id)

    class Left(Event):
        reason: str

        def apply(self, entry: WaitlistEntry) -> None:
            entry.left_reason = self.reason

    @classmethod
    def join(
        cls, *, entry_id: UUID, waitlist: Waitlist, appointment_type: AppointmentType,
        situation: Situation, person: Person, person_key: str, reference_sha256: str,
        case_id: UUID | None, act: Act, language: str = "de",
    ) -> WaitlistEntry:  # fmt: skip
        situation.check()
        person.check(today=act.at.date())
        if not appointment_type.fits(situation):
            raise AppointmentTypeDoesNotFit("appointment_type", "does not fit the situation")
        return cls._create(
            cls.Joined,
            id=entry_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=waitlist.office_id,
            waitlist_id=str(waitlist.id),
            service_point_id=waitlist.service_point_id,
            appointment_type=appointment_type.code,
            holds=situation.holds,
            holds_legal_basis=situation.holds_legal_basis,
            wants=situation.wants,
            case_id=None if case_id is None else str(case_id),
            person_key=person_key,
            reference_sha256=reference_sha256,
            surname=person.surname,
            given_names=person.given_names,
            date_of_birth=person.date_of_birth,
            email=person.email,
            phone=person.phone,
            language=language,
        )

    def record_offer(self, appointment_id: UUID, act: Act) -> None:
        self.trigger_event(
            self.Offered,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            appointment_id=str(appointment_id),
        )

    def leave(self, reason: WaitlistLeaveReason, act: Act) -> None:
        if self.left_reason is not None:
            return
        self.trigger_event(
            self.Left, by=act.by, at=act.at, timestamp=act.recorded_at, reason=reason
        )

    @property
    def current_offer(self) -> str | None:
        return self.offers[-1] if self.offers else None


class TickCursor(Aggregate):
    """How far the time-driven steps have read the log: below this position no hold
    and no freed seat waits for them any more. Written only by the tick."""

    def __init__(self) -> None:
        self.position: int = 0

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Started(Event, Aggregate.Created):
        def apply(self, cursor: TickCursor) -> None:
            cursor.position = 0

    class Advanced(Event):
        position: int

        def apply(self, cursor: TickCursor) -> None:
            cursor.position = self.position

    ID: Final = uuid5(_NAMESPACE, "tick-cursor")

    @classmethod
    def start(cls, act: Act) -> TickCursor:
        return cls._create(cls.Started, id=cls.ID, by=act.by, at=act.at, timestamp=act.recorded_at)

    def advance(self, position: int, act: Act) -> None:
        if position > self.position:
            self.trigger_event(
                self.Advanced, by=act.by, at=act.at, timestamp=act.recorded_at, position=position
            )


class AvailabilityObservation(Aggregate):
    """How booked out one appointment type of a service point was on one day: how many
    waited, and the next free slot as a person booking that morning saw it.

    Recorded once per service point, type and day by the tick (the id is derived from
    them, so a second tick, or a second host, cannot record the day twice): the "booked
    out for N weeks" figure over time is the series of these events, exact and
    replayable, not a recomputation from today's calendar.
    """

    def __init__(self) -> None:
        self.day: date = date.min

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Observed(Event, Aggregate.Created):
        office_id: str
        service_point_id: str
        service_point_code: str
        appointment_type: str
        day: date
        """The service point's local date the figures are of."""
        waiting: int
        """People on the type's waitlist (not yet offered a seat)."""
        next_free_slot: datetime | None
        """The first slot with a seat bookable at ``at``; ``None``: none within the
        booking horizon."""
        booked_out_days: int | None
        """``next_free_slot``'s local date minus ``day``."""
        horizon_days: int
        """The booking horizon then: ``None`` above means booked out beyond it."""

        def apply(self, observation: AvailabilityObservation) -> None:
            observation.day = self.day

    @staticmethod
    def id_for(office_id: str, service_point_code: str, type_code: str, day: date) -> UUID:
        return uuid5(
            _NAMESPACE,
            f"availability/{office_id}/{service_point_code}/{type_code}/{day.isoformat()}",
        )

    @classmethod
    def observe(
        cls, *, point: ServicePoint, type_code: str, day: date, waiting: int,
        next_free: datetime | None, act: Act,
    ) -> AvailabilityObservation:  # fmt: skip
        point.appointment_type(type_code)
        if waiting < 0:
            raise InvalidValue("waiting", "must not be negative")
        local_free = None if next_free is None else point.local(next_free)
        return cls._create(
            cls.Observed,
            id=cls.id_for(point.office_id, point.code, type_code, day),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=point.office_id,
            service_point_id=str(point.id),
            service_point_code=point.code,
            appointment_type=type_code,
            day=day,
            waiting=waiting,
            next_free_slot=local_free,
            booked_out_days=None if local_free is None else (local_free.date() - day).days,
            horizon_days=point.rules.booking_horizon_days,
        )


def next_free_slot(
    point: ServicePoint,
    now: datetime,
    seats_held: Callable[[datetime], int],
    holidays: HolidayCalendar = NO_HOLIDAYS,
) -> datetime | None:
    """The first slot with a seat bookable now (released, in the future, not closed, not
    on a public holiday), within the booking horizon; ``seats_held`` says how many seats
    a start has taken."""
    today = point.local(now).date()
    for offset in range(point.rules.booking_horizon_days + 1):
        for start in point.slot_starts(today + timedelta(days=offset), holidays):
            if start > now and point.capacity_at(start, now) - seats_held(start) > 0:
                return start
    return None


def observation_day(point: ServicePoint, now: datetime) -> date | None:
    """The day whose availability is due to be observed now: the service point's local
    date, once that morning's same-day seats are released (before that the figure would
    miss them); ``None`` earlier in the day."""
    local_now = point.local(now)
    if local_now.time() < point.rules.same_day_release:
        return None
    return local_now.date()


class ServicePointDirectory(Aggregate):
    """The codes of an office's service points, so that they can be listed."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.codes: list[str] = []

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Started(Event, Aggregate.Created):
        office_id: str

        def apply(self, directory: ServicePointDirectory) -> None:
            directory.office_id = self.office_id

    class Listed(Event):
        code: str

        def apply(self, directory: ServicePointDirectory) -> None:
            directory.codes.append(self.code)

    @staticmethod
    def id_for(office_id: str) -> UUID:
        return uuid5(_NAMESPACE, f"service-points/{office_id}")

    @classmethod
    def start(cls, office_id: str, act: Act) -> ServicePointDirectory:
        return cls._create(
            cls.Started,
            id=cls.id_for(office_id),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
        )

    def list_code(self, code: str, act: Act) -> None:
        if code not in self.codes:
            self.trigger_event(
                self.Listed, by=act.by, at=act.at, timestamp=act.recorded_at, code=code
            )


class SpentChallenge(Aggregate):
    """A proof-of-work challenge that has been used: each buys one booking."""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Spent(Event, Aggregate.Created):
        pass

    @staticmethod
    def id_for(challenge: str) -> UUID:
        return uuid5(_NAMESPACE, f"challenge/{challenge}")

    @classmethod
    def spend(cls, challenge: str, act: Act) -> SpentChallenge:
        return cls._create(
            cls.Spent,
            id=cls.id_for(challenge),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
        )


# ---------------------------------------------------- proposal from a case file

EXPIRY_WINDOW_DAYS: Final = 56
"""Documents expiring within eight weeks (the portals' booking lead) call for a booking."""


@dataclass(frozen=True)
class Proposal:
    situation: Situation
    why: str
    """Which document of the file suggests it, in words without personal data."""
    expires_on: date | None = None


def propose_from_case(case: CaseFile, *, today: date) -> list[Proposal]:
    """What a person with this case file most likely needs an appointment for.

    Most urgent first: an arrived eAT card to collect, then the documents expiring
    soonest (a Fiktionsbescheinigung, a title, a Duldung or Gestattung).
    """
    proposals: list[tuple[date, Proposal]] = []
    horizon = today + timedelta(days=EXPIRY_WINDOW_DAYS)
    for document in case.residence_documents:
        if document.is_ended:
            continue
        if document.card_status == "arrived":
            proposals.append(
                (
                    date.min,
                    Proposal(
                        Situation("eat", document.legal_basis, "eat_pickup"),
                        f"the eAT card of residence document {document.number} has arrived",
                    ),
                )
            )
        if document.valid_until <= horizon:
            if document.kind == "eat":
                wants, holds = "extend_residence_permit", "eat"
            else:
                wants, holds = "extend_gestattung_duldung", document.kind
            proposals.append(
                (
                    document.valid_until,
                    Proposal(
                        Situation(holds, document.legal_basis, wants),  # type: ignore[arg-type]
                        f"residence document {document.number} ({document.kind}) expires "
                        f"on {document.valid_until.isoformat()}",
                        document.valid_until,
                    ),
                )
            )
    for certificate in case.fiction_certificates:
        if certificate.is_ended or certificate.valid_until > horizon:
            continue
        proposals.append(
            (
                certificate.valid_until,
                Proposal(
                    Situation(
                        "fiction_certificate",
                        "aufenthg-" + certificate.kind.replace("_", "-"),
                        "fiction_certificate",
                    ),
                    f"Fiktionsbescheinigung {certificate.number} expires on "
                    f"{certificate.valid_until.isoformat()}",
                    certificate.valid_until,
                ),
            )
        )
    proposals.sort(key=lambda item: item[0])
    return [proposal for _, proposal in proposals]


DOCUMENTS_HELD: Final = get_args(DocumentHeld)
