"""Appointments set up for the route table of ``tests/http/auth/route_table.py``.

Every booking goes to a slot of its own and a person of its own, so that neither the
capacity nor the limit per person refuses a route the table expects to succeed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from uuid import UUID

from domain.appointments import AppointmentType, CalendarRules, OpeningHours, Person, Situation
from domain.case_file import MasterData
from service import AkteService
from service_appointment_mails import solve_challenge

OFFICE: Final = "abh-musterstadt"
NEIGHBOUR: Final = "abh-nachbarstadt"
POINT: Final = "rathaus"
SETUP_USER: Final = "setup"
FIRST_DAY: Final = date(2024, 3, 11)
"""A Monday a week after the service fixture's clock: within the booking horizon."""
_RULES: Final = CalendarRules(
    slot_minutes=30,
    counters=50,
    same_day_counters=0,
    same_day_release=time(7),
    booking_horizon_days=28,
    timezone="UTC",
    opening_hours=tuple(OpeningHours(day, time(8), time(12)) for day in range(1, 6)),
    hold_hours=48,
    reminder_hours=24,
)
_TYPES: Final = (
    AppointmentType(
        "extend-title",
        "Aufenthaltstitel verlängern",
        "extend_residence_permit",
        "extend_title",
        ("aufenthg-16b",),
        ("eat",),
        30,
    ),
    AppointmentType(
        "eat-pickup", "eAT abholen", "eat_pickup", "document_handover", (), ("eat",), 10
    ),
)
SITUATION: Final = Situation("eat", "aufenthg-16b", "extend_residence_permit")
SERVICE_POINT_BODY: Final[dict[str, Any]] = {
    "code": "nord",
    "name": "Außenstelle Nord",
    "opening_hours": ["2 08:00-12:00"],
    "types": [
        {
            "code": "eat-pickup",
            "label_de": "eAT abholen",
            "topic": "eat_pickup",
            "procedure_kind": "document_handover",
            "duration_minutes": 10,
        }
    ],
}
_counter = itertools.count()


@dataclass(frozen=True)
class OpenedAppointment:
    id: UUID
    version: int
    reference: str
    """The booking's secret reference."""
    code: str
    """The code of its confirmation mail."""
    proof: tuple[str, str]
    """A solved challenge, unspent, for a route that books."""
    starts_at: datetime
    number: int
    case_id: UUID | None = None


AppointmentStep = Callable[[AkteService, OpenedAppointment], OpenedAppointment]


def _calendar(service: AkteService) -> None:
    # Challenges a test solves at once; the deployment's default asks 20 bits.
    service.appointments.configure_appointments(
        replace(service.appointments.appointment_setup, proof_of_work_bits=4)
    )
    service.appointments.define_service_point(
        office_id=OFFICE, code=POINT, name="Rathaus", rules=_RULES, types=_TYPES, by=SETUP_USER
    )


def _proof(service: AkteService) -> tuple[str, str]:
    challenge = service.appointments.issue_challenge()
    return challenge.challenge, solve_challenge(challenge.challenge, challenge.bits)


def _person(number: int) -> Person:
    return Person(f"Muster{number}", "Amal", date(1990, 1, 1), f"p{number}@example.org")


def _book(service: AkteService, number: int, starts_at: datetime) -> OpenedAppointment:
    recorded = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=starts_at,
        situation=SITUATION,
        person=_person(number),
        proof=_proof(service),
        by=SETUP_USER,
    )
    return OpenedAppointment(
        recorded.appointment_id,
        recorded.version,
        recorded.reference or "",
        service.appointments.confirmation_code(recorded.appointment_id),
        _proof(service),
        starts_at,
        number,
    )


def open_appointment(
    service: AkteService, steps: tuple[AppointmentStep, ...] = ()
) -> OpenedAppointment:
    _calendar(service)
    number = next(_counter)
    day = FIRST_DAY + timedelta(days=(number // 8) % 5)
    starts = datetime.combine(day, time(8), tzinfo=UTC) + timedelta(minutes=30 * (number % 8))
    opened = _book(service, number, starts)
    for step in steps:
        opened = step(service, opened)
    return opened


def checked_in(service: AkteService, opened: OpenedAppointment) -> OpenedAppointment:
    """Another booking, of today (the counter checks no one in before their day), checked
    in."""
    today = in_the_past(service, opened)
    recorded = service.appointments.check_in_appointment(
        today.id, expected_version=today.version, by=SETUP_USER
    )
    return replace(today, version=recorded.version)


def in_the_past(service: AkteService, opened: OpenedAppointment) -> OpenedAppointment:
    """Another booking, made a week ago for a slot that has begun by now."""
    clock: Any = service.clock
    now = clock.now
    clock.now = now - timedelta(days=7)
    try:
        past = datetime.combine(now.date(), time(8), tzinfo=UTC)
        return _book(service, opened.number + 100_000, past)
    finally:
        clock.now = now


CLOSED_DAY: Final = date(2024, 3, 20)
"""A day without bookings (they go to FIRST_DAY and the four days after it)."""


def day_closed(service: AkteService, opened: OpenedAppointment) -> OpenedAppointment:
    """The service point closed on :data:`CLOSED_DAY`, for the route that opens it again."""
    service.appointments.close_service_point_day(
        office_id=OFFICE, code=POINT, day=CLOSED_DAY, reason="Betriebsausflug", by=SETUP_USER
    )
    return opened


def with_case(service: AkteService, opened: OpenedAppointment) -> OpenedAppointment:
    case = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Beispiel", "Amal", date(1990, 1, 1), "SYR", "N1234567"),
        by=SETUP_USER,
    )
    return replace(opened, case_id=case.case_id)


def booking_body(subject: object) -> dict[str, Any]:
    opened = subject if isinstance(subject, OpenedAppointment) else None
    assert opened is not None, "the booking routes need an appointment subject"
    challenge, nonce = opened.proof
    return {
        "service_point": POINT,
        "appointment_type": "extend-title",
        "starts_at": opened.starts_at.isoformat(),
        "situation": {
            "holds": SITUATION.holds,
            "holds_legal_basis": SITUATION.holds_legal_basis,
            "wants": SITUATION.wants,
        },
        "person": {
            "surname": f"Anders{opened.number}",
            "given_names": "Amal",
            "date_of_birth": "1990-01-01",
            "email": "anders@example.org",
        },
        "proof": {"challenge": challenge, "nonce": nonce},
    }


def in_both_offices(service: AkteService, opened: OpenedAppointment) -> OpenedAppointment:
    """The same service point in the neighbouring office: a caseworker there books in it."""
    service.appointments.define_service_point(
        office_id=NEIGHBOUR, code=POINT, name="Rathaus", rules=_RULES, types=_TYPES, by=SETUP_USER
    )
    return opened


def office_booking_body(subject: object) -> dict[str, Any]:
    body = booking_body(subject)
    del body["proof"]
    return body


def waitlist_body(subject: object) -> dict[str, Any]:
    body = booking_body(subject)
    del body["starts_at"]
    return body


def confirmation_body(subject: object) -> dict[str, Any]:
    assert isinstance(subject, OpenedAppointment)
    return {"code": subject.code}


def case_link_body(subject: object) -> dict[str, Any]:
    case_id = getattr(subject, "case_id", None)
    return {"case_id": str(case_id or UUID(int=0))}
