"""A service point, people and solved challenges for the appointment tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Final
from zoneinfo import ZoneInfo

from domain.appointments import AppointmentType, CalendarRules, OpeningHours, Person, Situation
from service import AkteService
from service_appointment_mails import AppointmentRecorded, AppointmentSetup, solve_challenge
from service_ports import OutgoingMail

OFFICE: Final = "abh-musterstadt"
POINT: Final = "rathaus"
BERLIN: Final = ZoneInfo("Europe/Berlin")
SECRET: Final = b"test-appointment-secret-of-32-bytes!"
TEST_BITS: Final = 4
"""A challenge a test solves in microseconds; production asks 20 bits."""

RULES: Final = CalendarRules(
    slot_minutes=30,
    counters=2,
    same_day_counters=1,
    same_day_release=time(7, 0),
    booking_horizon_days=28,
    timezone="Europe/Berlin",
    opening_hours=tuple(OpeningHours(day, time(8, 0), time(12, 0)) for day in range(1, 6)),
    hold_hours=48,
    reminder_hours=24,
)
FICTION_TYPE: Final = AppointmentType(
    code="fiction-certificate",
    label_de="Fiktionsbescheinigung verlängern",
    topic="fiction_certificate",
    procedure_kind="fiction_certificate",
    legal_bases=("aufenthg-81-4", "aufenthg-81-3-1", "aufenthg-81-3-2"),
    for_documents=("fiction_certificate",),
    duration_minutes=20,
)
EXTEND_TYPE: Final = AppointmentType(
    code="extend-title",
    label_de="Aufenthaltstitel verlängern",
    topic="extend_residence_permit",
    procedure_kind="extend_title",
    legal_bases=("aufenthg-16b", "aufenthg-18b", "aufenthg-18g"),
    for_documents=("eat",),
    duration_minutes=30,
)
PICKUP_TYPE: Final = AppointmentType(
    code="eat-pickup",
    label_de="eAT abholen",
    topic="eat_pickup",
    procedure_kind="document_handover",
    legal_bases=(),
    for_documents=("eat",),
    duration_minutes=10,
)
TYPES: Final = (FICTION_TYPE, EXTEND_TYPE, PICKUP_TYPE)

STUDENT: Final = Situation("eat", "aufenthg-16b", "extend_residence_permit")
FICTION_HOLDER: Final = Situation("fiction_certificate", "aufenthg-81-4", "fiction_certificate")


def person(n: int = 0, *, email: str | None = None) -> Person:
    return Person(
        surname=f"Muster{n}",
        given_names="Ayşe",
        date_of_birth=date(1991, 7, 14),
        email=email or f"person{n}@example.org",
    )


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=BERLIN)


@dataclass
class RecordingMailer:
    """Stands in for the mail server where the test is not about mail."""

    sent: list[OutgoingMail] = field(default_factory=list)

    def send(self, mail: OutgoingMail) -> None:
        self.sent.append(mail)


def set_up(service: AkteService, mailer: object | None = None, **overrides: Any) -> None:
    service.appointments.configure_appointments(
        AppointmentSetup(
            secret=SECRET,
            mailer=mailer if mailer is not None else RecordingMailer(),  # type: ignore[arg-type]
            proof_of_work_bits=TEST_BITS,
            **overrides,
        )
    )
    service.appointments.define_service_point(
        office_id=OFFICE,
        code=POINT,
        name="Bürgerbüro Rathaus",
        rules=RULES,
        types=TYPES,
        by="tl-01",
    )


def proof(service: AkteService) -> tuple[str, str]:
    challenge = service.appointments.issue_challenge()
    return challenge.challenge, solve_challenge(challenge.challenge, challenge.bits)


def join_waitlist(
    service: AkteService, who: Person, type_code: str = "extend-title"
) -> AppointmentRecorded:
    """``who`` joins the waitlist of ``type_code`` at the test service point, online."""
    return service.appointments.join_waitlist(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type=type_code,
        situation=STUDENT,
        person=who,
        proof=proof(service),
        by="public",
    )
