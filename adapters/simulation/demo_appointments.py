"""The demo office's appointment desk, ready for the public booking pages.

Two service points, defined through the service's commands like everything in the demo:

* the Bürgerbüro (``buergerbuero``) with types for several documents held and legal
  bases (eAT pickup, extending a § 16b study permit, a § 81 Fiktionsbescheinigung,
  Duldung), open on weekdays, so that the guided booking finds free slots from the day
  the demo is loaded on;
* the family-reunion desk (``familiennachzug``), one first-application type with few
  seats, every slot within its booking horizon taken and confirmed by fictitious people:
  booked out, so the waitlist can be shown. (The horizon rolls: days released after the
  demo was loaded are free again.)

The fictitious bookings' mails go nowhere: the service's mailer is swapped for the
set-up, so the demo's mailbox holds only what a visitor books.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import date, timedelta
from datetime import time as clock_time
from typing import Final

from adapters.simulation.fictitious_people import NAMES
from domain.appointments import (
    AppointmentType,
    CalendarRules,
    OpeningHours,
    Person,
    Situation,
)
from service import AkteService
from service_appointments import MAX_SLOT_DAYS
from service_ports import OutgoingMail

MAIN_POINT: Final = "buergerbuero"
FAMILY_POINT: Final = "familiennachzug"
BOOKED_OUT_TYPE: Final = "familiennachzug-erstantrag"
SET_UP_BY: Final = "tl-01"
_ZONE: Final = "Europe/Berlin"

MAIN_TYPES: Final = (
    AppointmentType(
        code="eat-abholen",
        label_de="Elektronischen Aufenthaltstitel (eAT) abholen",
        topic="eat_pickup",
        procedure_kind="document_handover",
        legal_bases=(),
        for_documents=("eat",),
        duration_minutes=20,
    ),
    AppointmentType(
        code="studium-verlaengern",
        label_de="Aufenthaltserlaubnis zum Studium verlängern (§ 16b AufenthG)",
        topic="extend_residence_permit",
        procedure_kind="extend_title",
        legal_bases=("aufenthg-16b",),
        for_documents=("eat", "fiction_certificate"),
        duration_minutes=20,
    ),
    AppointmentType(
        code="fiktionsbescheinigung",
        label_de="Fiktionsbescheinigung (§ 81 AufenthG), wenn der Titel abläuft",
        topic="fiction_certificate",
        procedure_kind="fiction_certificate",
        legal_bases=(),
        for_documents=("eat", "visa", "fiction_certificate"),
        duration_minutes=20,
    ),
    AppointmentType(
        code="duldung",
        label_de="Duldung verlängern (§ 60a AufenthG)",
        topic="extend_gestattung_duldung",
        procedure_kind="extend_tolerance",
        legal_bases=("aufenthg-60a",),
        for_documents=("duldung",),
        duration_minutes=20,
    ),
)
FAMILY_TYPES: Final = (
    AppointmentType(
        code=BOOKED_OUT_TYPE,
        label_de="Familiennachzug: Erstantrag (§§ 30, 32 AufenthG)",
        topic="family_reunion",
        procedure_kind="family_reunion",
        legal_bases=(),
        for_documents=("none", "visa"),
        duration_minutes=30,
    ),
)
MAIN_RULES: Final = CalendarRules(
    slot_minutes=20,
    counters=3,
    same_day_counters=0,
    same_day_release=clock_time(7, 0),
    booking_horizon_days=28,
    timezone=_ZONE,
    opening_hours=tuple(
        OpeningHours(weekday, clock_time(8, 0), clock_time(18, 0)) for weekday in range(1, 6)
    ),
    hold_hours=72,
    reminder_hours=24,
)
FAMILY_RULES: Final = CalendarRules(
    slot_minutes=30,
    counters=1,
    same_day_counters=0,
    same_day_release=clock_time(7, 0),
    booking_horizon_days=7,
    timezone=_ZONE,
    opening_hours=(
        OpeningHours(2, clock_time(9, 0), clock_time(10, 0)),
        OpeningHours(4, clock_time(9, 0), clock_time(10, 0)),
    ),
    hold_hours=72,
    reminder_hours=24,
)
FAMILY_SITUATION: Final = Situation("visa", None, "family_reunion")
"""What the fictitious people who booked the family-reunion desk out hold and want."""


@dataclass(frozen=True)
class DemoAppointments:
    """What :func:`set_up_demo_appointments` wrote."""

    service_points: tuple[str, ...]
    booked_out_type: str
    bookings: int
    """Fictitious bookings that fill the family-reunion desk."""


class _Discarded:
    """The fictitious people's mails: read by nobody."""

    def send(self, mail: OutgoingMail) -> None:
        return None


def set_up_demo_appointments(
    service: AkteService, *, office_id: str, seed: int = 2024
) -> DemoAppointments:
    """Define the demo's service points and book the family-reunion desk out."""
    appointments = service.appointments
    appointments.define_service_point(
        office_id=office_id,
        code=MAIN_POINT,
        name="Bürgerbüro Ausländerbehörde",
        rules=MAIN_RULES,
        types=MAIN_TYPES,
        by=SET_UP_BY,
    )
    appointments.define_service_point(
        office_id=office_id,
        code=FAMILY_POINT,
        name="Servicestelle Familiennachzug",
        rules=FAMILY_RULES,
        types=FAMILY_TYPES,
        by=SET_UP_BY,
    )
    setup = appointments.appointment_setup
    appointments.configure_appointments(replace(setup, mailer=_Discarded()))
    try:
        bookings = _book_out(service, office_id, random.Random(f"{seed}/appointments"))
    finally:
        appointments.configure_appointments(setup)
    return DemoAppointments((MAIN_POINT, FAMILY_POINT), BOOKED_OUT_TYPE, bookings)


def _book_out(service: AkteService, office_id: str, rng: random.Random) -> int:
    """Take and confirm every free seat of the family-reunion desk within its horizon."""
    appointments = service.appointments
    point = appointments.get_service_point(office_id, FAMILY_POINT)
    now = service.clock()
    today = point.local(now).date()
    days = min(MAX_SLOT_DAYS, FAMILY_RULES.booking_horizon_days + 1)
    booked = 0
    for day in appointments.availability(point, from_day=today, days=days, now=now):
        for starts_at, free in day.slots:
            for _seat in range(free):
                recorded = appointments.book_appointment(
                    office_id=office_id,
                    service_point_code=FAMILY_POINT,
                    appointment_type=BOOKED_OUT_TYPE,
                    starts_at=starts_at,
                    situation=FAMILY_SITUATION,
                    person=_someone(rng, booked),
                    proof=None,
                    origin="office",
                    by=SET_UP_BY,
                )
                assert recorded.reference is not None  # a booking always has one
                appointments.confirm_booking(
                    recorded.reference, appointments.confirmation_code(recorded.appointment_id)
                )
                booked += 1
    return booked


def _someone(rng: random.Random, number: int) -> Person:
    """A fictitious person of its own for each booking (the limit per person)."""
    nationality = rng.choice(("SYR", "TUR", "AFG", "IND"))
    given_names, surnames = NAMES[nationality]
    return Person(
        surname=rng.choice(surnames),
        given_names=rng.choice(given_names),
        # Distinct birth dates: no two bookings count against one person's limit.
        date_of_birth=date(1970, 1, 1) + timedelta(days=97 * number + rng.randint(0, 90)),
        email=f"demo-familie-{number}@example.org",
    )


__all__ = ["DemoAppointments", "set_up_demo_appointments"]
