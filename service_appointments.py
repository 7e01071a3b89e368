"""Appointments: service points, bookings, the waitlist and the tick; the context
``service.appointments``.

Every booking saves, in ONE transaction, the slot (its seat taken), the person's open
bookings (the limit), the appointment (held, its confirmation mail queued), the claim of
its reference and of the proof-of-work challenge it spent. A conflict on any of them
reloads and tries again, so a refusal always says why: the slot is full, the person is
at the limit, the challenge was used. Mails are sent after the transaction that queued
them, and what the mail server said is recorded (sent, failed with a code, later
bounced); queued and failed mails are tried again by :meth:`Appointments.run_appointment_tick`,
which also sends the reminders, lapses holds that ran out and offers freed seats to the
waitlist. Every time-driven step reads the service's clock and is idempotent.
"""

from __future__ import annotations

import contextlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.acts import Act
from domain.appointments import (
    ENDED,
    HOLDING_A_SEAT,
    NO_HOLIDAYS,
    AlreadyWaiting,
    Appointment,
    AppointmentStateConflict,
    AppointmentType,
    AvailabilityObservation,
    Booking,
    BookingLimitReached,
    BookingReference,
    CalendarRules,
    DayHasBookings,
    Origin,
    Person,
    PersonBookings,
    Proposal,
    ServicePoint,
    ServicePointDirectory,
    Situation,
    Slot,
    SpentChallenge,
    TickCursor,
    Waitlist,
    WaitlistEntry,
    WaitlistLeaveReason,
    next_free_slot,
    observation_day,
    propose_from_case,
    slot_id,
)
from domain.deadlines import HolidayCalendar, NoHolidays
from domain.errors import InvalidValue, RuleViolation
from domain.personal import is_redacted
from service_appointment_mails import (
    MAIL_USER,
    MAX_CHANGE_ATTEMPTS,
    AppointmentChanged,
    AppointmentMails,
    AppointmentRecorded,
    AppointmentSetup,
    BookingNotFound,
    ChallengeRefused,
    SlotBusy,
    hash_booking_reference,
)
from service_common import CaseNotFound, gives_back_unwritten_ids
from service_ports import Catalogue, ServiceStore

T = TypeVar("T")

TICK_USER: Final = "appointments-tick"
"""Who acts in the time-driven steps: reminders, lapses, offers from the waitlist."""
_MAX_BOOKING_ATTEMPTS: Final = 20
_REFERENCE_BYTES: Final = 16
_TICK_BATCH: Final = 500
MAX_SLOT_DAYS: Final = 14
"""Days one look at the free slots covers: each day costs a read per slot."""


class ServicePointNotFound(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"no service point {code} in this office")
        self.code = code


@dataclass(frozen=True)
class DayAvailability:
    day: date
    slots: list[tuple[datetime, int]]
    """Each start with the seats free now (0: booked out)."""


@dataclass(frozen=True)
class Offer:
    service_point: ServicePoint
    fitting: list[AppointmentType]
    days: list[DayAvailability]


@dataclass(frozen=True)
class BookingView:
    """What the person sees from their reference: no personal data."""

    status: str
    appointment: Appointment | None
    waitlist_position: int | None = None


@dataclass(frozen=True)
class ServicePointRecorded:
    """A service point as a command left it, and the log position of its last event."""

    point: ServicePoint
    position: int | None


@dataclass
class TickReport:
    reminders: int = 0
    lapses: int = 0
    mails_sent: int = 0
    mails_failed: int = 0
    offers: int = 0
    observations: int = 0
    """Availability figures recorded for the day (once per service point and type)."""
    scanned: int = 0
    cursor: int = 0


@dataclass(frozen=True)
class TypeFigures:
    appointment_type: str
    waiting: int
    next_free_slot: datetime | None
    """Slots are shared by a service point's types: the same for each of them."""
    booked_out_days: int | None


@dataclass(frozen=True)
class ProposalView:
    proposal: Proposal
    fitting: dict[str, list[AppointmentType]] = field(default_factory=dict)
    """Service point code to the types there that fit."""


class Appointments(AppointmentMails):
    """Appointment commands and queries; ``service.appointments``."""

    def __init__(
        self,
        store: ServiceStore,
        catalogue: Catalogue,
        setup: AppointmentSetup | None,
        *,
        holidays: HolidayCalendar | None = None,
    ) -> None:
        """``holidays``: the office's public holidays, on which nothing is offered or
        booked (None: none, for tests that do not care)."""
        super().__init__(store, catalogue, setup)
        self.holidays: HolidayCalendar = holidays or NoHolidays()
        self._known_points: tuple[UUID, ...] = ()
        """Service points seen in the log so far (this process), and up to where."""
        self._points_scanned_until = 0
        self._observed: frozenset[UUID] = frozenset()
        """Observations this process knows are recorded: not looked up again."""

    # ---------------------------------------------------------------- calendar

    def define_service_point(
        self,
        *,
        office_id: str,
        code: str,
        name: str,
        rules: CalendarRules,
        types: Sequence[AppointmentType],
        by: str,
        at: datetime | None = None,
    ) -> ServicePointRecorded:
        """Define a service point, or change its calendar and types (unlisted types are
        withdrawn; bookings already made stay)."""
        act = self._store.act(by, at)
        catalogue = self._catalogue
        for index, appointment_type in enumerate(types):
            catalogue.check_topic(f"types.{index}.topic", appointment_type.topic)
            for basis in appointment_type.legal_bases:
                catalogue.check_legal_basis(f"types.{index}.legal_bases", basis)
        for _attempt in range(MAX_CHANGE_ATTEMPTS):
            point = self._get(ServicePoint.id_for(office_id, code), ServicePoint)
            if point is None:
                point = ServicePoint.define(
                    office_id=office_id, code=code, name=name, rules=rules, act=act
                )
            else:
                point.reconfigure(name=name, rules=rules, act=act)
            listed = {t.code for t in types}
            for stale in sorted(set(point.types) - listed):
                point.withdraw_type(stale, act)
            for appointment_type in types:
                point.offer_type(appointment_type, act)
            directory = self._get(ServicePointDirectory.id_for(office_id), ServicePointDirectory)
            if directory is None:
                directory = ServicePointDirectory.start(office_id, act)
            directory.list_code(code, act)
            try:
                position = self._save(point, directory)
            except IntegrityError:
                continue
            return ServicePointRecorded(point, position)
        raise SlotBusy("the service point is being changed by someone else; try again")

    def close_service_point_day(
        self, *, office_id: str, code: str, day: date, reason: str, by: str
    ) -> ServicePointRecorded:
        """Close a day (today or later); refused (:class:`DayHasBookings`) while bookings
        (held, confirmed, checked in, offers from the waitlist) hold seats on it: the
        office cancels them first, one by one (each cancellation mails the person).

        Every slot of the day is closed in the same transaction as the day: a booking
        that takes a seat between the check and the write makes one of the two conflict,
        and the next round sees the booking (refused) or the closure (the booking is)."""
        for _attempt in range(_MAX_BOOKING_ATTEMPTS):
            act = self._store.act(by, None)
            point = self.get_service_point(office_id, code)
            slots: list[Slot] = []
            if day not in point.closed_days:
                slots = [self._slot(point, start, act) for start in point.slot_starts(day)]
                booked = self._seat_holders(slots)
                if booked:
                    raise DayHasBookings(
                        f"{len(booked)} booking(s) on {day:%Y-%m-%d} still hold a seat; "
                        "cancel each first (POST /appointments/{id}/cancellation, listed by "
                        f"GET /appointments/day?on={day:%Y-%m-%d}) and tell the people, "
                        "then close the day"
                    )
            point.close_day(day, reason, act)
            if not point.pending_events:
                return ServicePointRecorded(point, None)
            for slot in slots:
                slot.close(act)
            try:
                position = self._save(point, *slots)
            except IntegrityError:
                continue  # a booking or another change came first: look again
            return ServicePointRecorded(point, position)
        raise SlotBusy("the service point is being changed by someone else; try again")

    def reopen_service_point_day(
        self, *, office_id: str, code: str, day: date, by: str
    ) -> ServicePointRecorded:
        """Open a closed day again (a day not closed stays open: nothing recorded), with
        its slots of today's calendar; one the closure closed under an earlier calendar
        opens with its next booking (:meth:`_open_slot`)."""
        act = self._store.act(by, None)
        point = self.get_service_point(office_id, code)
        point.reopen_day(day, act)
        if not point.pending_events:
            return ServicePointRecorded(point, None)  # not closed: no slot to read
        slots = []
        for start in point.slot_starts(day):
            slot = self._get(slot_id(point.office_id, point.code, start), Slot)
            if slot is not None and slot.closed:
                slot.reopen(act)
                slots.append(slot)
        return self._save_point(point, *slots)

    def _save_point(self, point: ServicePoint, *slots: Slot) -> ServicePointRecorded:
        if not point.pending_events:
            return ServicePointRecorded(point, None)
        try:
            position = self._save(point, *slots)
        except IntegrityError:
            raise SlotBusy("the service point changed meanwhile; try again") from None
        return ServicePointRecorded(point, position)

    def _seat_holders(self, slots: list[Slot]) -> list[Appointment]:
        """The appointments holding a seat in the slots (a public holiday's too: the
        office may book one)."""
        found = []
        for slot in slots:
            for holder in slot.holders:
                appointment = self.get_appointment(UUID(holder))
                if appointment.status in HOLDING_A_SEAT:
                    found.append(appointment)
        return found

    def _on_a_closed_day(self, appointment: Appointment) -> bool:
        point = self._get(UUID(appointment.service_point_id), ServicePoint)
        if point is None:
            return False
        return point.local(appointment.starts_at).date() in point.closed_days

    def get_service_point(self, office_id: str, code: str) -> ServicePoint:
        point = self._get(ServicePoint.id_for(office_id, code), ServicePoint)
        if point is None:
            raise ServicePointNotFound(code)
        return point

    def service_points(self, office_id: str) -> list[ServicePoint]:
        directory = self._get(ServicePointDirectory.id_for(office_id), ServicePointDirectory)
        codes = directory.codes if directory is not None else []
        return [self.get_service_point(office_id, code) for code in codes]

    def availability(
        self, point: ServicePoint, *, from_day: date, days: int, now: datetime
    ) -> list[DayAvailability]:
        """Free seats per slot, as bookable now (released, in the future)."""
        if not 1 <= days <= MAX_SLOT_DAYS:
            raise InvalidValue("days", f"must lie between 1 and {MAX_SLOT_DAYS}")
        today = point.local(now).date()
        last = today + timedelta(days=point.rules.booking_horizon_days)
        result = []
        for offset in range(days):
            day = max(from_day, today) + timedelta(days=offset)
            if day > last:
                break
            slots = []
            for start in point.slot_starts(day, self.holidays):
                if start <= now:
                    continue
                slot = self._get(slot_id(point.office_id, point.code, start), Slot)
                held = slot.seats_held if slot is not None else 0
                slots.append((start, max(0, point.capacity_at(start, now) - held)))
            result.append(DayAvailability(day, slots))
        return result

    def appointment_offer(
        self,
        *,
        office_id: str,
        code: str,
        situation: Situation,
        from_day: date | None = None,
        days: int = 7,
    ) -> Offer:
        """The appointment types that fit, and the free slots (empty if none fits)."""
        situation.check()
        point = self.get_service_point(office_id, code)
        now = self._store.clock()
        fitting = point.fitting_types(situation)
        start = from_day or point.local(now).date()
        free = self.availability(point, from_day=start, days=days, now=now) if fitting else []
        return Offer(point, fitting, free)

    # ---------------------------------------------------------------- booking

    @gives_back_unwritten_ids
    def book_appointment(
        self,
        *,
        office_id: str,
        service_point_code: str,
        appointment_type: str,
        starts_at: datetime,
        situation: Situation,
        person: Person,
        proof: tuple[str, str] | None,
        origin: Origin = "online",
        case_id: UUID | None = None,
        language: str = "de",
        by: str,
    ) -> AppointmentRecorded:
        """Book one seat, held until confirmed; the confirmation mail goes out at once.

        ``proof`` is the solved challenge ``(challenge, nonce)``; only the office's own
        bookings (``origin="office"``) come without. ``language``: the person's, for
        their mails (German, else English).

        Under an idempotency key, the booking and its reference are recorded with the key
        (sealed with the client's key): the retry of a request whose answer was lost gets
        them back and books nothing again. Its mails, if the first attempt ended before
        sending them, go out with the tick (:meth:`run_appointment_tick`).
        """
        replayed = self._replayed_booking(by)
        if replayed is not None:
            return replayed
        setup = self.appointment_setup
        if proof is None and origin != "office":
            raise ChallengeRefused("a booking needs a solved challenge")
        situation.check()
        if situation.holds_legal_basis is not None:
            self._catalogue.check_legal_basis("holds_legal_basis", situation.holds_legal_basis)
        key = self.person_key(person)
        appointment_id = self._store.new_personal_id()
        reference = secrets.token_urlsafe(_REFERENCE_BYTES)
        reference_sha256 = hash_booking_reference(reference)
        for _attempt in range(_MAX_BOOKING_ATTEMPTS):
            act = self._store.act(by, None)
            spent = self._check_proof(*proof) if proof is not None else None
            if spent is not None and self._get(spent.id, SpentChallenge) is not None:
                raise ChallengeRefused("this challenge has been used; ask for a new one")
            # The slot is read before the service point: see _open_slot.
            found = self._get(slot_id(office_id, service_point_code, starts_at), Slot)
            point = self.get_service_point(office_id, service_point_code)
            if case_id is not None:
                self._check_case_in_office(case_id, office_id)
            chosen = point.check_fits(appointment_type, situation)
            # In the service point's local time: the day at the counter is its date.
            starts_at = point.local(starts_at)
            # Online, nothing is booked on a public holiday; the office books what its
            # own calendar holds (a day it opens as an exception, by the counter).
            closed_on = NO_HOLIDAYS if origin == "office" else self.holidays
            point.check_bookable(starts_at, act.at, closed_on)
            slot = self._open_slot(found, point, starts_at, act)
            slot.take(appointment_id, capacity=point.capacity_at(starts_at, act.at), act=act)
            bookings = self._person_bookings(office_id, key, act)
            bookings.count(appointment_id, limit=setup.bookings_per_person, act=act)
            held_until, reminder_at = point.hold_times(act.at, starts_at)
            appointment = Appointment.book(
                appointment_id=appointment_id,
                booking=Booking(
                    office_id=office_id,
                    service_point_id=point.id,
                    slot_id=slot.id,
                    starts_at=starts_at,
                    appointment_type=chosen,
                    situation=situation,
                    person=person,
                    person_key=key,
                    held_until=held_until,
                    reminder_at=reminder_at,
                    origin=origin,
                    case_id=case_id,
                    reference_sha256=reference_sha256,
                    language=language,
                ),
                act=act,
            )
            claim = BookingReference.claim(
                reference_sha256=reference_sha256,
                holder_id=appointment_id,
                holder_kind="appointment",
                act=act,
            )
            extra = [spent] if spent is not None else []
            self._store.writes.note(appointment_id, appointment.version, reference)
            try:
                position = self._save(slot, bookings, appointment, claim, *extra)
            except IntegrityError:
                # Someone else took a seat, counted a booking or spent the challenge
                # meanwhile: look again, and the next round says which.
                continue
            run = self._send_mails(appointment_id)
            return AppointmentRecorded(
                appointment_id,
                run.version or appointment.version,
                run.position or position,
                reference,
            )
        raise SlotBusy("the slot is in high demand; nothing was booked, try again")

    def _replayed_booking(self, by: str) -> AppointmentRecorded | None:
        """The booking (or waitlist entry) and reference recorded by this request's first
        attempt, whose answer was lost; None: book."""
        replayed = self._store.writes.replayed(by)
        if replayed is None:
            return None
        return AppointmentRecorded(
            replayed.case_id, replayed.version, replayed.position, str(replayed.result)
        )

    def _open_slot(
        self, found: Slot | None, point: ServicePoint, starts_at: datetime, act: Act
    ) -> Slot:
        """The slot to take a seat in, on a day the service point (read after the slot)
        says is open. A slot still marked closed then was closed under an earlier
        calendar (a reopening reopens the day's slots of today's calendar): it opens
        again with the booking. Had a closure been written between the two reads, the
        point would say so; one written after them conflicts with the booking's write."""
        if found is None:
            return self._new_slot(point, starts_at, act)
        if found.closed:
            found.reopen(act)
        return found

    def _slot(self, point: ServicePoint, starts_at: datetime, act: Act) -> Slot:
        existing = self._get(slot_id(point.office_id, point.code, starts_at), Slot)
        if existing is not None:
            return existing
        return self._new_slot(point, starts_at, act)

    def _new_slot(self, point: ServicePoint, starts_at: datetime, act: Act) -> Slot:
        return Slot.open(
            office_id=point.office_id,
            service_point_code=point.code,
            service_point_id=point.id,
            starts_at=starts_at,
            act=act,
        )

    def _person_bookings(self, office_id: str, key: str, act: Act) -> PersonBookings:
        existing = self._get(PersonBookings.id_for(office_id, key), PersonBookings)
        if existing is not None:
            return existing
        return PersonBookings.start(office_id=office_id, person_key=key, act=act)

    @gives_back_unwritten_ids
    def join_waitlist(
        self,
        *,
        office_id: str,
        service_point_code: str,
        appointment_type: str,
        situation: Situation,
        person: Person,
        proof: tuple[str, str],
        by: str,
        language: str = "de",
    ) -> AppointmentRecorded:
        """Wait for a freed seat of this type; returns the entry's id and reference.
        ``language``: of the offer mails (German, else English). A retry under the
        idempotency key of a request whose answer was lost gets the same entry back."""
        replayed = self._replayed_booking(by)
        if replayed is not None:
            return replayed
        situation.check()
        key = self.person_key(person)
        entry_id = self._store.new_personal_id()
        reference = secrets.token_urlsafe(_REFERENCE_BYTES)
        reference_sha256 = hash_booking_reference(reference)
        for _attempt in range(_MAX_BOOKING_ATTEMPTS):
            act = self._store.act(by, None)
            spent = self._check_proof(*proof)
            if self._get(spent.id, SpentChallenge) is not None:
                raise ChallengeRefused("this challenge has been used; ask for a new one")
            point = self.get_service_point(office_id, service_point_code)
            chosen = point.check_fits(appointment_type, situation)
            self._check_may_wait(
                office_id, key, Waitlist.id_for(office_id, point.code, chosen.code)
            )
            waitlist = self._get(
                Waitlist.id_for(office_id, point.code, chosen.code), Waitlist
            ) or Waitlist.start(
                office_id=office_id,
                service_point_code=point.code,
                service_point_id=point.id,
                appointment_type=chosen.code,
                act=act,
            )
            entry = WaitlistEntry.join(
                entry_id=entry_id,
                waitlist=waitlist,
                appointment_type=chosen,
                situation=situation,
                person=person,
                person_key=key,
                reference_sha256=reference_sha256,
                case_id=None,
                act=act,
                language=language,
            )
            waitlist.join(entry_id, act)
            claim = BookingReference.claim(
                reference_sha256=reference_sha256,
                holder_id=entry_id,
                holder_kind="waitlist_entry",
                act=act,
            )
            self._store.writes.note(entry_id, entry.version, reference)
            try:
                position = self._save(waitlist, entry, claim, spent)
            except IntegrityError:
                continue
            return AppointmentRecorded(entry_id, entry.version, position, reference)
        raise SlotBusy("the waitlist is in high demand; nothing was recorded, try again")

    # --------------------------------------------------- the person's reference

    def _holder_of(self, reference: str) -> BookingReference:
        if not 16 <= len(reference) <= 64:
            raise BookingNotFound
        claim = self._get(
            BookingReference.id_for(hash_booking_reference(reference)), BookingReference
        )
        if claim is None:
            raise BookingNotFound
        return claim

    def booking_status(self, reference: str) -> BookingView:
        claim = self._holder_of(reference)
        if claim.holder_kind == "appointment":
            appointment = self.get_appointment(UUID(claim.holder_id))
            return BookingView(appointment.status, appointment)
        entry = self._get(UUID(claim.holder_id), WaitlistEntry)
        if entry is None:
            raise BookingNotFound
        if entry.current_offer is not None:
            offered = self.get_appointment(UUID(entry.current_offer))
            if offered.status != "lapsed" or entry.left_reason is not None:
                return BookingView(offered.status, offered)
        if entry.left_reason is not None:
            return BookingView("left_waitlist", None)
        waitlist = self._get(UUID(entry.waitlist_id), Waitlist)
        position = waitlist.position_of(entry.id) if waitlist is not None else None
        return BookingView("waiting", None, position)

    def _appointment_of(self, reference: str) -> UUID:
        view = self.booking_status(reference)
        if view.appointment is None:
            raise AppointmentStateConflict(f"the booking is {view.status}: no appointment yet")
        return view.appointment.id

    def confirm_booking(self, reference: str, code: str) -> AppointmentRecorded:
        """Confirm with the code of the confirmation mail (within the hold)."""
        appointment_id = self._appointment_of(reference)
        canonical = code.strip().upper().replace("-", "").replace(" ", "")
        if not hmac.compare_digest(canonical, self.confirmation_code(appointment_id)):
            raise InvalidValue("code", "is not the code of this booking's confirmation mail")
        return self._change_appointment(
            appointment_id, None, "public", lambda a, act: a.confirm(via="mail_code", act=act)
        )

    def resend_confirmation(self, reference: str) -> AppointmentRecorded:
        appointment_id = self._appointment_of(reference)
        recorded = self._change_appointment(
            appointment_id, None, "public", lambda a, act: a.request_confirmation_mail(act)
        )
        run = self._send_mails(appointment_id)
        return AppointmentRecorded(
            appointment_id, run.version or recorded.version, run.position or recorded.position
        )

    def correct_booking_email(self, reference: str, email: str) -> AppointmentRecorded:
        """Correct the address of a held booking; the confirmation mail goes to it."""
        appointment_id = self._appointment_of(reference)
        recorded = self._change_appointment(
            appointment_id, None, "public", lambda a, act: a.correct_email(email, act)
        )
        run = self._send_mails(appointment_id)
        return AppointmentRecorded(
            appointment_id, run.version or recorded.version, run.position or recorded.position
        )

    def extend_booking_hold(self, reference: str) -> AppointmentRecorded:
        """Hold the booking longer, once (:meth:`Appointment.extend_hold`)."""
        appointment_id = self._appointment_of(reference)
        extension = self.hold_extension_of(self.get_appointment(appointment_id))
        return self._change_appointment(
            appointment_id, None, "public", lambda a, act: a.extend_hold(extension, act)
        )

    def cancel_booking(self, reference: str) -> AppointmentRecorded:
        """The person cancels; from the waitlist, they leave it."""
        claim = self._holder_of(reference)
        if claim.holder_kind == "waitlist_entry":
            view = self.booking_status(reference)
            if view.appointment is None or view.appointment.status not in ("held", "confirmed"):
                return self._leave_waitlist(UUID(claim.holder_id))
        appointment_id = self._appointment_of(reference)
        return self.cancel_appointment(
            appointment_id, expected_version=None, by="public", cancelled_by="person", reason=None
        )

    def _leave_waitlist(self, entry_id: UUID) -> AppointmentRecorded:
        for _attempt in range(MAX_CHANGE_ATTEMPTS):
            act = self._store.act("public", None)
            entry = self._get(entry_id, WaitlistEntry)
            if entry is None:
                raise BookingNotFound
            waitlist = self._get(UUID(entry.waitlist_id), Waitlist)
            entry.leave("left", act)
            if waitlist is not None:
                waitlist.leave(entry_id, "left", act)
            try:
                position = self._save(entry, waitlist)
            except IntegrityError:
                continue
            return AppointmentRecorded(entry_id, entry.version, position)
        raise SlotBusy("the waitlist changed meanwhile; try again")

    # ---------------------------------------------------------------- office

    def appointment_events(self, appointment_id: UUID) -> list[Appointment.Event]:
        self.get_appointment(appointment_id)
        return self._store.events_of(
            appointment_id, Appointment.Event, BookingNotFound(appointment_id)
        )

    def appointments_of_day(self, *, office_id: str, code: str, day: date) -> list[Appointment]:
        """Today's list at the counter: every appointment of the day that holds a seat or
        has ended there, in time order."""
        point = self.get_service_point(office_id, code)
        found: list[Appointment] = []
        for start in point.slot_starts(day):
            slot = self._get(slot_id(office_id, point.code, start), Slot)
            if slot is None:
                continue
            found.extend(self.get_appointment(UUID(holder)) for holder in slot.holders)
        return found

    def cancel_appointment(
        self,
        appointment_id: UUID,
        *,
        expected_version: int | None,
        by: str,
        cancelled_by: str = "office",
        reason: str | None,
    ) -> AppointmentRecorded:
        recorded = self._end_appointment(
            appointment_id,
            expected_version,
            by,
            lambda a, act: a.cancel(
                cancelled_by="person" if cancelled_by == "person" else "office",
                reason=reason,
                act=act,
            ),
            frees_seat=True,
        )
        offered = self.offer_freed_seat(self.get_appointment(appointment_id).slot_id)
        if offered is None or recorded.position is None:
            return recorded
        # The offer to the waitlist belongs to the cancellation: its position covers both.
        return replace(recorded, position=max(recorded.position, offered))

    def check_in_appointment(
        self, appointment_id: UUID, *, expected_version: int, by: str
    ) -> AppointmentRecorded:
        return self._change_appointment(
            appointment_id, expected_version, by, lambda a, act: a.check_in(act)
        )

    def record_attended(
        self, appointment_id: UUID, *, expected_version: int, by: str
    ) -> AppointmentRecorded:
        return self._end_appointment(
            appointment_id,
            expected_version,
            by,
            lambda a, act: a.record_attended(act),
            frees_seat=False,
            attendance="attended",
        )

    def record_no_show(
        self, appointment_id: UUID, *, expected_version: int, by: str
    ) -> AppointmentRecorded:
        return self._end_appointment(
            appointment_id,
            expected_version,
            by,
            lambda a, act: a.record_no_show(act),
            frees_seat=False,
            attendance="no_show",
        )

    def retype_appointment(
        self,
        appointment_id: UUID,
        *,
        expected_version: int,
        by: str,
        appointment_type: str,
        legal_basis: str | None,
        reason: str | None,
    ) -> AppointmentRecorded:
        appointment = self.get_appointment(appointment_id)
        point = self._get(UUID(appointment.service_point_id), ServicePoint)
        if point is None:
            raise BookingNotFound(appointment_id)
        chosen = point.appointment_type(appointment_type)
        self._catalogue.check_legal_basis("legal_basis", legal_basis)
        return self._change_appointment(
            appointment_id,
            expected_version,
            by,
            lambda a, act: a.retype(
                appointment_type=chosen, legal_basis=legal_basis, reason=reason, act=act
            ),
        )

    def link_appointment_to_case(
        self, appointment_id: UUID, *, expected_version: int, by: str, case_id: UUID
    ) -> AppointmentRecorded:
        appointment = self.get_appointment(appointment_id)
        self._check_case_in_office(case_id, appointment.office_id)
        return self._change_appointment(
            appointment_id, expected_version, by, lambda a, act: a.link_to_case_file(case_id, act)
        )

    def record_mail_bounce(
        self, appointment_id: UUID, *, mail_number: int, reason: str, by: str = MAIL_USER
    ) -> AppointmentRecorded:
        """A delivery status notification came back for this mail."""
        return self._change_appointment(
            appointment_id,
            None,
            by,
            lambda a, act: a.record_mail_bounced(mail_number, reason, act),
        )

    def propose_appointment(self, case_id: UUID, *, office_id: str) -> list[ProposalView]:
        """For a known case file: what it needs an appointment for, and the fitting types
        at each of the office's service points."""
        case = self._store.get_case(case_id)
        today = self._store.clock().date()
        points = self.service_points(office_id)
        return [
            ProposalView(
                proposal,
                {
                    point.code: point.fitting_types(proposal.situation)
                    for point in points
                    if point.fitting_types(proposal.situation)
                },
            )
            for proposal in propose_from_case(case, today=today)
        ]

    # ------------------------------------------------------------- changing

    def _end_appointment(
        self,
        appointment_id: UUID,
        expected_version: int | None,
        by: str,
        command: Callable[[Appointment, Act], object],
        *,
        frees_seat: bool,
        attendance: str | None = None,
    ) -> AppointmentRecorded:
        """End an appointment and, in the same transaction, release the person's booking,
        free the seat (cancelled, lapsed) and record attendance on the case file."""
        for _attempt in range(MAX_CHANGE_ATTEMPTS):
            act = self._store.act(by, None)
            appointment = self.get_appointment(appointment_id)
            if expected_version is not None and appointment.version != expected_version:
                raise AppointmentChanged(appointment_id, expected_version, appointment.version)
            command(appointment, act)
            if not appointment.pending_events or appointment.status not in ENDED:
                # Not due (a lapse before its time): nothing to end.
                return AppointmentRecorded(appointment_id, appointment.version, None)
            changed = self._ending_companions(appointment, act, frees_seat=frees_seat)
            case_lock: AbstractContextManager[Any] = _no_lock()
            if attendance is not None and appointment.case_id is not None:
                case_lock = self._case_lock(UUID(appointment.case_id))
            with case_lock:
                if attendance is not None and appointment.case_id is not None:
                    case = self._store.get_case(UUID(appointment.case_id))
                    case.record_appointment_attendance(
                        appointment_id=appointment_id,
                        outcome=attendance,
                        service_point_id=UUID(appointment.service_point_id),
                        appointment_type=appointment.appointment_type,
                        procedure_kind=appointment.procedure_kind,
                        legal_basis=appointment.legal_basis,
                        act=act,
                    )
                    changed.append(case)
                try:
                    position = self._save(appointment, *changed)
                except IntegrityError:
                    if expected_version is not None:
                        actual = self.get_appointment(appointment_id).version
                        if actual != expected_version:
                            raise AppointmentChanged(
                                appointment_id, expected_version, actual
                            ) from None
                    continue
            run = self._send_mails(appointment_id)
            return AppointmentRecorded(
                appointment_id, run.version or appointment.version, run.position or position
            )
        raise SlotBusy("the appointment changed meanwhile; try again")

    def _ending_companions(
        self, appointment: Appointment, act: Act, *, frees_seat: bool
    ) -> list[Any]:
        changed: list[Any] = []
        bookings = self._get(
            PersonBookings.id_for(appointment.office_id, appointment.person_key), PersonBookings
        )
        if bookings is not None:
            bookings.release(appointment.id, act)
            changed.append(bookings)
        if frees_seat:
            slot = self._get(UUID(appointment.slot_id), Slot)
            if slot is not None:
                slot.free(appointment.id, reason=appointment.end_reason or "ended", act=act)
                changed.append(slot)
        if appointment.waitlist_entry_id is not None and appointment.status == "lapsed":
            entry = self._get(UUID(appointment.waitlist_entry_id), WaitlistEntry)
            if entry is not None:
                entry.leave("offer_lapsed", act)
                changed.append(entry)
                waitlist = self._get(UUID(entry.waitlist_id), Waitlist)
                if waitlist is not None:
                    waitlist.leave(entry.id, "offer_lapsed", act)
                    changed.append(waitlist)
        return changed

    def _case_lock(self, case_id: UUID) -> AbstractContextManager[Any]:
        """The case file's command lock, its cached copy dropped: the attendance event
        is saved beside the appointment's, outside the cache's own path."""
        lock = self._store.case_lock(case_id)
        self._store.uncache_case(case_id)
        return lock

    def _check_case_in_office(self, case_id: UUID, office_id: str) -> None:
        try:
            office = self._store.get_case(case_id).office_id
        except CaseNotFound:
            office = None
        if office != office_id:
            raise InvalidValue("case_id", "no case file with this id in the appointment's office")

    # ------------------------------------------------------------------ tick

    def run_appointment_tick(self, *, by: str = TICK_USER) -> TickReport:
        """The time-driven steps, as of the service's clock; idempotent.

        Reads the log from the cursor: each booking's hold (reminder due, lapsed, mails
        to retry), each failed mail (to retry) and each freed seat (to offer to the
        waitlist). The cursor moves up to
        the first booking that still needs the tick, so nothing is skipped however long
        a hold lasts, and a crash between steps only means they run again.
        """
        report = TickReport()
        cursor = self._get(TickCursor.ID, TickCursor) or TickCursor.start(self._store.act(by, None))
        # A failed mail is read too: a notice to a booking the cursor has passed (an
        # office cancellation of a confirmed booking) is tried again from there.
        booking_topics = {get_topic(Appointment.Booked), get_topic(Appointment.MailFailed)}
        topics = [*sorted(booking_topics), get_topic(Slot.Freed)]
        position = cursor.position
        first_pending: int | None = None
        last_seen = position
        while True:
            with self._store.store_errors():
                batch = self._store.recorder.select_notifications(
                    start=last_seen + 1, limit=_TICK_BATCH, topics=topics
                )
            if not batch:
                break
            for notification in batch:
                report.scanned += 1
                last_seen = notification.id
                originator = UUID(str(notification.originator_id))
                if notification.topic in booking_topics:
                    pending = self._tick_appointment(originator, report, by)
                else:
                    pending = self._tick_freed_seat(originator, report)
                if pending and first_pending is None:
                    first_pending = notification.id
            if len(batch) < _TICK_BATCH:
                break
        new_position = last_seen if first_pending is None else first_pending - 1
        cursor.advance(new_position, self._store.act(by, None))
        if cursor.pending_events:
            # Another tick moved it meanwhile: the next one reads from there.
            with contextlib.suppress(IntegrityError):
                self._save(cursor)
        report.cursor = max(new_position, position)
        report.observations = self.observe_availability(by=by)
        return report

    def _tick_appointment(self, appointment_id: UUID, report: TickReport, by: str) -> bool:
        """One booking's time-driven steps; True while it still needs the tick."""
        appointment = self.get_appointment(appointment_id)
        now = self._store.clock()
        if appointment.status == "held" and now >= appointment.held_until:
            try:
                self._end_appointment(
                    appointment_id,
                    None,
                    by,
                    lambda a, act: a.lapse(act),
                    frees_seat=True,
                )
            except AppointmentStateConflict:
                pass
            else:
                report.lapses += 1
                self.offer_freed_seat(appointment.slot_id)
        elif (
            appointment.status == "held"
            and (now >= appointment.reminder_at or appointment.mails_to_send)
            and self._on_a_closed_day(appointment)
        ):
            # Defensive (a day is closed only without bookings; closures before that
            # rule): no reminder nor confirmation mail for a slot on a closed day. The
            # hold still lapses when its time is up. Asked only when something would be
            # sent: the service point is not loaded for every held booking of every tick.
            return True
        elif appointment.status == "held" and now >= appointment.reminder_at:
            before = len(appointment.mails)
            recorded = self._change_appointment(
                appointment_id, None, by, lambda a, act: a.remind(act)
            )
            if recorded.position is not None and before < len(
                self.get_appointment(appointment_id).mails
            ):
                report.reminders += 1
        run = self._send_mails(appointment_id)
        report.mails_sent += run.sent
        report.mails_failed += run.failed
        current = self.get_appointment(appointment_id)
        return current.status == "held" or bool(current.mails_to_send)

    def _tick_freed_seat(self, slot: UUID, report: TickReport) -> bool:
        if self.offer_freed_seat(str(slot)) is not None:
            report.offers += 1
        return False

    @gives_back_unwritten_ids
    def offer_freed_seat(self, slot_key: str) -> int | None:
        """Offer a free seat of this slot to the first person waiting for a type of its
        service point (the longest waiting across types). The log position of the offer's
        last event if one was offered, else None."""
        slot = self._get(UUID(slot_key), Slot)
        if slot is None:
            return None
        point = self._get(UUID(slot.service_point_id), ServicePoint)
        if point is None:
            return None
        attempts = 0
        while attempts < MAX_CHANGE_ATTEMPTS:
            attempts += 1
            act = self._store.act(TICK_USER, None)
            slot = self._get(UUID(slot_key), Slot)
            if slot is None or slot.closed:
                return None
            try:
                point.check_bookable(slot.starts_at, act.at, self.holidays)
            except RuleViolation:
                return None
            if slot.seats_held >= point.capacity_at(slot.starts_at, act.at):
                return None
            first = self._first_waiting(point)
            if first is None:
                return None
            waitlist, entry = first
            bookings = self._person_bookings(point.office_id, entry.person_key, act)
            gone: WaitlistLeaveReason | None = None
            if is_redacted(entry.person.email):
                # The person's data was erased: nobody to offer the seat to or to write.
                gone = "erased"
            elif len(bookings.open) >= self.appointment_setup.bookings_per_person:
                # Booked as many appointments elsewhere as one person may hold since
                # joining.
                gone = "booked_elsewhere"
            if gone is not None:
                # Taken off the list, and the seat goes to the next in line.
                entry.leave(gone, act)
                waitlist.leave(entry.id, gone, act)
                try:
                    self._save(waitlist, entry)
                except IntegrityError:
                    continue  # changed meanwhile: look again (an attempt)
                attempts -= 1  # one fewer waiting: not an attempt lost to a race
                continue
            appointment_id = self._store.new_personal_id()
            slot.take(appointment_id, capacity=point.capacity_at(slot.starts_at, act.at), act=act)
            chosen = point.types.get(entry.appointment_type)
            if chosen is None:
                return None
            # Below the limit (checked above): the offer counts as an open booking.
            bookings.count(appointment_id, limit=len(bookings.open) + 1, act=act)
            held_until, reminder_at = point.hold_times(act.at, slot.starts_at)
            appointment = Appointment.book(
                appointment_id=appointment_id,
                booking=Booking(
                    office_id=point.office_id,
                    service_point_id=point.id,
                    slot_id=slot.id,
                    starts_at=point.local(slot.starts_at),
                    appointment_type=chosen,
                    situation=entry.situation,
                    person=entry.person,
                    person_key=entry.person_key,
                    held_until=held_until,
                    reminder_at=reminder_at,
                    origin="waitlist",
                    case_id=None if entry.case_id is None else UUID(entry.case_id),
                    waitlist_entry_id=entry.id,
                    language=entry.language,
                ),
                act=act,
            )
            waitlist.offer(appointment_id=appointment_id, slot=slot.id, act=act)
            entry.record_offer(appointment_id, act)
            try:
                position = self._save(slot, bookings, appointment, waitlist, entry)
            except IntegrityError:
                continue
            run = self._send_mails(appointment_id)
            return run.position or position
        return None

    def _check_may_wait(self, office_id: str, person_key: str, waitlist_id: UUID) -> None:
        """A person waits once per list, and their open bookings and places on the
        office's lists together stay within the limit per person: else the waitlist would
        hand them more seats than they may book."""
        waiting = self._waiting_entries(office_id, person_key)
        if any(entry.waitlist_id == str(waitlist_id) for entry in waiting):
            raise AlreadyWaiting("this person is on this waitlist already")
        bookings = self._get(PersonBookings.id_for(office_id, person_key), PersonBookings)
        held = 0 if bookings is None else len(bookings.open)
        limit = self.appointment_setup.bookings_per_person
        if held + len(waiting) >= limit:
            raise BookingLimitReached(
                f"one person may hold {limit} open bookings and places on waitlists at "
                "this office; cancel one or wait until it has taken place"
            )

    def _waiting_entries(self, office_id: str, person_key: str) -> list[WaitlistEntry]:
        """The person's entries still waiting on the office's lists (an offered seat is a
        booking, counted as such)."""
        found: list[WaitlistEntry] = []
        for point in self.service_points(office_id):
            for code in sorted(point.types):
                waitlist = self._get(Waitlist.id_for(office_id, point.code, code), Waitlist)
                if waitlist is None:
                    continue
                for entry_id in waitlist.waiting:
                    entry = self._get(UUID(entry_id), WaitlistEntry)
                    if entry is not None and entry.person_key == person_key:
                        found.append(entry)
        return found

    def _first_waiting(self, point: ServicePoint) -> tuple[Waitlist, WaitlistEntry] | None:
        best: tuple[Waitlist, WaitlistEntry] | None = None
        for code in sorted(point.types):
            waitlist = self._get(Waitlist.id_for(point.office_id, point.code, code), Waitlist)
            if waitlist is None or not waitlist.waiting:
                continue
            entry = self._get(UUID(waitlist.waiting[0]), WaitlistEntry)
            if entry is None:
                continue
            if best is None or entry.created_on < best[1].created_on:
                best = (waitlist, entry)
        return best

    def waitlist_length(self, *, office_id: str, code: str, appointment_type: str) -> int:
        waitlist = self._get(Waitlist.id_for(office_id, code, appointment_type), Waitlist)
        return len(waitlist.waiting) if waitlist is not None else 0

    def booking_figures(self, *, office_id: str, code: str) -> list[TypeFigures]:
        """Per type: how many wait, and the next free slot (the "booked out for N weeks"
        figure; ``None``: nothing free within the booking horizon)."""
        point = self.get_service_point(office_id, code)
        now = self._store.clock()
        today = point.local(now).date()
        next_free = next_free_slot(point, now, self._seats_held(point), self.holidays)
        return [
            TypeFigures(
                appointment_type=type_code,
                waiting=self.waitlist_length(
                    office_id=office_id, code=code, appointment_type=type_code
                ),
                next_free_slot=next_free,
                booked_out_days=(point.local(next_free).date() - today).days
                if next_free is not None
                else None,
            )
            for type_code in sorted(point.types)
        ]

    def _seats_held(self, point: ServicePoint) -> Callable[[datetime], int]:
        def held(start: datetime) -> int:
            slot = self._get(slot_id(point.office_id, point.code, start), Slot)
            return slot.seats_held if slot is not None else 0

        return held

    # ------------------------------------------------------- figures over time

    """Observations this process knows are recorded: not looked up again."""

    def _all_service_points(self) -> tuple[UUID, ...]:
        """Every office's service points: read from the log once, then only what is new."""
        topic = get_topic(ServicePoint.Defined)
        while True:
            with self._store.store_errors():
                batch = self._store.recorder.select_notifications(
                    start=self._points_scanned_until + 1, limit=_TICK_BATCH, topics=[topic]
                )
            if not batch:
                break
            self._known_points = (
                *self._known_points,
                *(UUID(str(n.originator_id)) for n in batch),
            )
            self._points_scanned_until = batch[-1].id
            if len(batch) < _TICK_BATCH:
                break
        return self._known_points

    def observe_availability(self, *, by: str = TICK_USER) -> int:
        """Record today's figures of every service point and type not yet recorded:
        waitlist length and next free slot (once that morning's same-day seats are
        released). Idempotent: the observation's id is its point, type and day."""
        recorded = 0
        for point_id in self._all_service_points():
            point = self._get(point_id, ServicePoint)
            if point is None:
                continue
            act = self._store.act(by, None)
            day = observation_day(point, act.at)
            if day is None:
                continue
            next_free: list[datetime | None] = []
            for type_code in sorted(point.types):
                observation_id = AvailabilityObservation.id_for(
                    point.office_id, point.code, type_code, day
                )
                if observation_id in self._observed:
                    continue
                if self._get(observation_id, AvailabilityObservation) is not None:
                    self._observed |= {observation_id}
                    continue
                if not next_free:
                    next_free.append(
                        next_free_slot(point, act.at, self._seats_held(point), self.holidays)
                    )
                observation = AvailabilityObservation.observe(
                    point=point,
                    type_code=type_code,
                    day=day,
                    waiting=self.waitlist_length(
                        office_id=point.office_id, code=point.code, appointment_type=type_code
                    ),
                    next_free=next_free[0],
                    act=act,
                )
                try:
                    self._save(observation)
                except IntegrityError:
                    pass  # another tick recorded it first: the same day, once
                else:
                    recorded += 1
                self._observed |= {observation_id}
        return recorded


class _NoLock:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _no_lock() -> AbstractContextManager[Any]:
    return _NoLock()
