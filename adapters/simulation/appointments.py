"""The appointment desk of the simulated office.

Two service points are defined through the service at the start. Procedures are opened
at the counter (channel "appointment"), Fiktionsbescheinigungen issued and extended,
residence documents extended, eATs moved to a new passport and eAT cards handed over at
a booked appointment, and there are bookings without a case file
(questions, declarations); the office books (no proof-of-work), the person confirms with
the mail's code, is checked in and served, or does not come (some 8-12 %). Attendance
lands on the case file. Appointment commands have no ``at``: they run inside
:func:`service.business_time`.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, timedelta
from datetime import time as clock_time
from typing import Final
from uuid import UUID

from adapters.reference.catalogue import load_catalogue
from adapters.simulation.calendar import utc
from adapters.simulation.fictitious_people import NAMES, weighted
from adapters.simulation.office import (
    NATIONS,
    PersonOnFile,
    ServicePointSlots,
    SimulatedOffice,
    Story,
)
from adapters.simulation.plans import (
    MAIN_POINT,
    MAIN_TOPICS,
    PICKUP_POINT,
    AppointmentPlan,
    ProcedurePlan,
)
from adapters.simulation.profile import SimulationError
from domain.appointments import (
    MAX_COUNTERS,
    AppointmentType,
    BookingLimitReached,
    CalendarRules,
    DocumentHeld,
    OpeningHours,
    Person,
    Situation,
    SlotTaken,
)
from service_appointment_mails import AppointmentRecorded
from service_common import business_time

# What people without a case file come for, and what known people book and miss.
_WALK_IN_TOPICS: Final = (
    ("general_question", 60),
    ("naturalisation_inquiry", 20),
    ("commitment_declaration", 12),
    ("change_of_address", 8),
)
_KNOWN_TOPICS: Final = (
    ("extend_residence_permit", 50),
    ("change_of_address", 20),
    ("general_question", 15),
    ("lost_document", 10),
    ("employer_change", 5),
)
_WALK_IN_HOLDS: Final[tuple[tuple[DocumentHeld, int], ...]] = (
    ("none", 30),
    ("visa", 25),
    ("eat", 45),
)


def _type_code(topic: str) -> str:
    """An appointment type's code from its contact topic."""
    return topic.replace("_", "-")


@dataclass(slots=True)
class Booking:
    appointment_id: UUID
    version: int
    reference: str
    starts: int
    person_key: str
    case: PersonOnFile | None


class AppointmentDesk(SimulatedOffice):
    """The simulated office with its appointment desk: service points, bookings, visits."""

    def _define_service_points(self, ts: int) -> None:
        """The two service points and their appointment types, sized for the busiest year."""
        busiest = max(target["appointments_served"] for target in self.targets.values())
        # Bookings a day, the no-shows included. Days are far from even: the first working
        # days after the holidays take what December left, and seasons peak; counters
        # sized for eight times the mean day never run out (three did, at scale 0.1).
        per_day = 8 * busiest * 1.15 / 250
        catalogue = load_catalogue()
        layouts = (
            (MAIN_POINT, "Bürgerbüro Ausländerbehörde", 20, (7, 40), (15, 40), MAIN_TOPICS, 0.8),
            (
                PICKUP_POINT,
                "Ausgabe elektronischer Aufenthaltstitel",
                10,
                (8, 0),
                (15, 0),
                ("eat_pickup",),
                0.3,
            ),
        )
        for code, name, minutes, (oh, om), (ch, cm), topics, share in layouts:
            first, last = oh * 60 + om, ch * 60 + cm
            starts = tuple(range(first, last - minutes + 1, minutes))
            counters = min(MAX_COUNTERS, max(3, 1 + math.ceil(per_day * share / len(starts))))
            rules = CalendarRules(
                slot_minutes=minutes,
                counters=counters,
                same_day_counters=1,
                same_day_release=clock_time(7, 0),
                booking_horizon_days=42,
                timezone="Europe/Berlin",
                opening_hours=tuple(
                    OpeningHours(weekday, clock_time(oh, om), clock_time(ch, cm))
                    for weekday in range(1, 6)
                ),
                hold_hours=72,
                reminder_hours=24,
            )
            types = [
                AppointmentType(
                    code=_type_code(topic),
                    label_de=catalogue.contact_topics[topic].label_de,
                    topic=topic,
                    procedure_kind=catalogue.procedure_kind_of(topic),
                    legal_bases=(),
                    for_documents=("eat",) if topic == "eat_pickup" else (),
                    duration_minutes=minutes,
                )
                for topic in topics
            ]
            self.service.appointments.define_service_point(
                office_id=self.office_id,
                code=code,
                name=name,
                rules=rules,
                types=types,
                by=self.team_leads[0],
                at=utc(ts),
            )
            self._counted("define_service_point", 1 + len(types) + (code == MAIN_POINT) * 2)
            self.points[code] = ServicePointSlots(code, starts, counters - 1)
            ts += 60

    def _free_slot(self, rng: random.Random, point: ServicePointSlots, day: int, after: int) -> int:
        """A slot start on ``day`` with a seat free, some of the day's slots tried."""
        count = len(point.starts)
        first = rng.randrange(count)
        for step in range(count):
            ts = self.calendar.moment(day, point.starts[(first + step) % count])
            if ts > after and self.seats[(point.code, ts)] < point.seats:
                return ts
        raise SimulationError(
            f"no free seat at {point.code} on {self.calendar.days[day]}: the calendar is "
            "sized too small for the profile"
        )

    def _who(self, rng: random.Random, person: PersonOnFile | None) -> Person:
        """Who books: the file's person, or someone without a file (fictitious)."""
        if person is not None:
            return Person(
                surname=person.surname,
                given_names=person.given_names,
                date_of_birth=person.born,
                email=f"p{person.case_id.hex[:16]}@example.org",
            )
        nationality = weighted(rng, NATIONS)
        given_names, surnames = NAMES[nationality]
        return Person(
            surname=rng.choice(surnames),
            given_names=rng.choice(given_names),
            date_of_birth=date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            email=f"t{rng.getrandbits(48):012x}@example.org",
        )

    @staticmethod
    def _holds(plan: ProcedurePlan) -> DocumentHeld:
        """What the person of a procedure holds when booking its appointment."""
        if plan.new_person:
            return "none" if plan.topic == "child_born_in_germany" else "visa"
        if plan.topic == "extend_gestattung_duldung":
            return (
                "aufenthaltsgestattung" if plan.document == "aufenthaltsgestattung" else "duldung"
            )
        return "eat"

    def _book(
        self,
        rng: random.Random,
        t: int,
        *,
        point: str,
        topic: str,
        holds: DocumentHeld,
        person: PersonOnFile | None,
        day: int,
        by: str,
        serves: bool = True,
    ) -> Booking | None:
        """The office books a slot on working day ``day`` on the person's behalf.

        None where the person holds as many open bookings as the office allows: the
        visit then goes without one, and someone without a file takes a seat that day,
        so the year's appointments still come out exact.
        """
        where = self.points[point]
        who = self._who(rng, person)
        while True:
            starts = self._free_slot(rng, where, day, t)
            try:
                with business_time(utc(t)):
                    recorded = self.service.appointments.book_appointment(
                        office_id=self.office_id,
                        service_point_code=point,
                        appointment_type=_type_code(topic),
                        starts_at=utc(starts),
                        situation=Situation(holds, None, topic),
                        person=who,
                        proof=None,
                        origin="office",
                        case_id=None if person is None else person.case_id,
                        by=by,
                    )
            except SlotTaken:
                # Taken in an earlier run into the same store (``--append``): look on.
                self.seats[(point, starts)] = where.seats
                continue
            except BookingLimitReached:
                if not serves:
                    return None
                stand_in = AppointmentPlan(rng.getrandbits(64), day, self._day_of(t), True)
                stand_in.start = t + 60
                self._push(stand_in.start, stand_in)
                return None
            break
        self.seats[(point, starts)] += 1
        new_slot = self.seats[(point, starts)] == 1
        # The appointment's events, the slot's seat, the person's count and the reference.
        self._counted("book_appointment", recorded.version + 3 + new_slot)
        assert recorded.reference is not None
        key = self.service.appointments.person_key(who)
        return Booking(
            recorded.appointment_id, recorded.version, recorded.reference, starts, key, person
        )

    def _booked(
        self, booking: Booking, kind: str, recorded: AppointmentRecorded, extra: int = 0
    ) -> None:
        self._counted(kind, recorded.version - booking.version + extra)
        booking.version = recorded.version

    def _confirm(self, booking: Booking, t: int) -> None:
        """The person types in the code of the confirmation mail."""
        code = self.service.appointments.confirmation_code(booking.appointment_id)
        with business_time(utc(t)):
            recorded = self.service.appointments.confirm_booking(booking.reference, code)
        self._booked(booking, "confirm_booking", recorded)

    def _arrival(self, rng: random.Random, booking: Booking, after: int) -> int:
        """When the person checks in: some minutes before the slot."""
        return max(booking.starts - 60 * rng.randint(0, 10), after + 60)

    def _check_in(self, booking: Booking, t: int, by: str) -> None:
        with business_time(utc(t)):
            recorded = self.service.appointments.check_in_appointment(
                booking.appointment_id, expected_version=booking.version, by=by
            )
        self._booked(booking, "check_in_appointment", recorded)

    def _link(self, booking: Booking, person: PersonOnFile, t: int, by: str) -> None:
        """A newcomer's file, opened at the counter, gets the appointment."""
        with business_time(utc(t)):
            recorded = self.service.appointments.link_appointment_to_case(
                booking.appointment_id,
                expected_version=booking.version,
                by=by,
                case_id=person.case_id,
            )
        self._booked(booking, "link_appointment_to_case", recorded)
        booking.case = person

    def _attended(self, booking: Booking, t: int, by: str) -> None:
        with business_time(utc(t)):
            recorded = self.service.appointments.record_attended(
                booking.appointment_id, expected_version=booking.version, by=by
            )
        self._ended(booking, "record_attended", recorded)
        tally = self.tallies[self.calendar.year_of(t)]
        tally.appointments_served += 1
        if booking.case is not None:
            self._customer(t, f"c:{booking.case.case_id}", booking.case)
        else:
            self._customer(t, f"p:{booking.person_key}")

    def _no_show(self, booking: Booking, t: int, by: str) -> None:
        with business_time(utc(t)):
            recorded = self.service.appointments.record_no_show(
                booking.appointment_id, expected_version=booking.version, by=by
            )
        self._ended(booking, "record_no_show", recorded)
        self.tallies[self.calendar.year_of(t)].no_shows += 1

    def _ended(self, booking: Booking, kind: str, recorded: AppointmentRecorded) -> None:
        # The person's open bookings are released; a linked file records the attendance.
        self._booked(booking, kind, recorded, extra=1 + (booking.case is not None))
        if booking.case is not None:
            booking.case.version += 1

    def _appointment_story(self, plan: AppointmentPlan) -> Story:
        """Booked, confirmed, then served at the counter or not turned up."""
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person: PersonOnFile | None = None
        holds: DocumentHeld
        if not plan.attends and rng.random() < 0.5:
            person = self._pooled_person(rng, t, new_share=0.1)
        if person is not None:
            person.active += 1
            topic, holds = weighted(rng, _KNOWN_TOPICS), "eat"
        else:
            topic, holds = weighted(rng, _WALK_IN_TOPICS), weighted(rng, _WALK_IN_HOLDS)
        try:
            booking = self._book(
                rng,
                t,
                point=MAIN_POINT,
                topic=topic,
                holds=holds,
                person=person,
                day=plan.day,
                by=worker,
                serves=plan.attends,
            )
            if booking is None:
                return
            t = self._soon(rng, t)
            yield t
            self._confirm(booking, t)
            if plan.attends:
                t = self._arrival(rng, booking, t)
                yield t
                self._check_in(booking, t, worker)
                t = max(booking.starts, t) + 60 * rng.randint(5, 25)
                yield t
                self._attended(booking, t, worker)
            else:
                t = booking.starts + 60 * rng.randint(15, 30)
                yield t
                self._no_show(booking, t, worker)
        finally:
            if person is not None:
                person.active -= 1
