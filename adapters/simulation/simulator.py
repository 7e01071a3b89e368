"""The office-year simulator: a realistic year (or several) of an office, with ground truth.

Everything is written through the service's commands, never as rows, and the simulator
counts what it did in its own bookkeeping, figure by figure, so that the yearly report
can be checked against it exactly.

How a year comes about:

* **Targets.** The profile (``reference/office-2024.json``: the published balance of a
  mid-sized city) gives the year's counts; each is scaled, ``round(count * scale)`` and
  at least 1 where the count is positive, and grows by ``growth`` per further year. The
  counted event of every target figure (a decision, an issued document, a handover ...)
  is planned on a day of its year, so the figures hit their targets exactly; what leads
  up to it or follows it may lie in another year.
* **Time.** Business time lies on working days (Monday to Friday without the national
  public holidays, Easter-based ones computed) in office hours, Europe/Berlin. Months
  weigh differently: more before the summer travel season (May-July), and for students
  around the winter semester (September/October). Procedures take from the same day to
  about eleven months; those decided in January were often received in November or
  December, and some received in December of the last year are decided the January
  after (when that lies in the past), so procedures span the turn of the year.
* **People.** A case file is opened before the person's first procedure: new arrivals on
  the day they apply, long-term residents with an ``Opened`` one to ten years earlier.
  Residents come back: a pool of known people gets most of the year's procedures.
* **What happens** (the realistic-year facts of ``../shared/DESIGN.md``): procedures by
  contact topic, most of them digital; each received, assigned, sometimes documents
  requested, decided (granted, refused, withdrawn) and closed. Residence documents are
  issued on granted procedures (eATs ordered, arrived 4-6 weeks later, handed over;
  Duldungen; Aufenthaltsgestattungen), new titles split about 45 % family, 30 %
  employment, 25 % education. About one Fiktionsbescheinigung per four documents, issued
  while a procedure is pending, extended before it runs out (two extensions per carrier
  sheet, then a new sheet) and ended by the decision. Integration-course entitlements
  and obligations on first titles; entry procedures with consent given or refused;
  civil-registry and naturalisation inquiries received and answered; commitment
  declarations submitted online, their fee paid through the payment commands (now and
  then a failed first attempt, rarely a payment twice and a refund), ability to pay
  checked, signed and handed over. Appointments at two service points (defined through
  the service at the start): procedures opened at the counter (channel "appointment"),
  Fiktionsbescheinigungen issued and eAT cards handed over at a booked appointment, and
  bookings without a case file (questions, declarations); the office books (no
  proof-of-work), the person confirms with the mail's code, is checked in and served,
  or does not come (some 8-12 %). Attendance lands on the case file. Appointment
  commands have no ``at``: they run inside :func:`service.business_time`. Their mails go
  to an in-memory mailbox for the run, never to a mail server (the people are fictitious).

Commands run in business-time order across all case files (a heap of stories, each a
generator that yields when its next step is due), so the log reads like a real office's
and each file's own commands are in order; only the back-dated ``Opened`` of a resident
is written when the person first turns up. The same seed, profile and scale give the
same business-time history and the same ground truth; ids are random. Names are
fictitious (:mod:`adapters.simulation.fictitious_people`) and never logged.
"""

from __future__ import annotations

import bisect
import heapq
import json
import logging
import math
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal, TypeVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from adapters.payment.provider import CreatedPayment, PaymentOrder
from adapters.simulation.demo_office import PORTAL
from adapters.simulation.fictitious_people import (
    NAMES,
    STREETS,
    add_months,
    eat_card_number,
    paper_number,
    passport_number,
    until,
    weighted,
)
from appointments_service import AppointmentRecorded, AppointmentsNotConfigured, OutgoingMail
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
from domain.case_file import MasterData
from domain.commitment_declaration import Guarantor, InvitedPerson
from domain.values import (
    COMMITMENT_DECLARATION_FEE_CENTS,
    DIGITAL_CHANNELS,
    MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET,
    Channel,
    ClosureReason,
    DecisionOutcome,
    FictionKind,
    InquiryKind,
    PaymentMethod,
    ResidenceDocumentKind,
    VisitPurpose,
)
from service import AkteService, DeclarationRecorded, Recorded, business_time

T = TypeVar("T")

logger = logging.getLogger("akte.simulator")

BERLIN: Final = ZoneInfo("Europe/Berlin")
DEFAULT_OFFICE_ID: Final = "abh-simulation"
PAYMENT_PLATFORM: Final = "simulated-epay"

TARGET_FIGURES: Final = (
    "appointments_served",
    "residence_documents_issued",
    "fiction_certificates_issued",
    "procedures_processed",
    "entry_procedures",
    "integration_course_entitlements",
    "integration_course_obligations",
    "commitment_declarations",
    "civil_registry_inquiries",
    "naturalisation_inquiries",
)
"""The profile's figures the simulator reproduces exactly (after scaling)."""

RESIDENCE_DOCUMENT_KINDS: Final[tuple[ResidenceDocumentKind, ...]] = (
    "eat",
    "duldung",
    "aufenthaltsgestattung",
)
CHANNELS: Final[tuple[Channel, ...]] = ("appointment", "contact_form", "mail", "online_application")
OUTCOMES: Final[tuple[DecisionOutcome, ...]] = ("granted", "refused", "withdrawn")


class SimulationError(Exception):
    """The simulation cannot run as asked (a year in the future, a bad profile)."""


# ------------------------------------------------------------------------ profile


@dataclass(frozen=True)
class OfficeProfile:
    """An office's published yearly balance: the counts a simulated year aims at."""

    year: int
    figures: Mapping[str, int]
    """The target figures (:data:`TARGET_FIGURES`) of the profile's year."""
    staff: int = 26
    source: str = ""


def profile_from_json(data: Mapping[str, Any]) -> OfficeProfile:
    """The profile from its JSON form (``reference/office-2024.json``)."""
    missing = [name for name in TARGET_FIGURES if name not in data]
    if missing:
        raise SimulationError(f"the profile lacks the figures {', '.join(missing)}")
    figures: dict[str, int] = {}
    for name in TARGET_FIGURES:
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SimulationError(f"the profile's {name} must be a whole number >= 0")
        figures[name] = value
    fee = data.get("commitment_declaration_fee_eur", COMMITMENT_DECLARATION_FEE_CENTS // 100)
    if fee * 100 != COMMITMENT_DECLARATION_FEE_CENTS:
        # The fee is the law's (§ 47 (1) Nr. 12 AufenthV), assessed by the domain.
        raise SimulationError(
            f"the profile's commitment declaration fee ({fee} EUR) is not the "
            f"{COMMITMENT_DECLARATION_FEE_CENTS // 100} EUR the law sets"
        )
    year = data.get("year")
    if not isinstance(year, int):
        raise SimulationError("the profile must name its year")
    staff = data.get("staff", 26)
    return OfficeProfile(
        year=year,
        figures=figures,
        staff=staff if isinstance(staff, int) and staff >= 2 else 26,
        source=str(data.get("source", "")),
    )


def load_profile(path: Path | None = None) -> OfficeProfile:
    """The profile at ``path``; without one, the 2024 balance shipped with Akte."""
    if path is None:
        text = (
            resources.files("adapters")
            .joinpath("reference", "office-2024.json")
            .read_text(encoding="utf-8")
        )
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SimulationError(f"cannot read the profile {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise SimulationError("the profile is not JSON") from None
    if not isinstance(data, dict):
        raise SimulationError("the profile must be a JSON object")
    return profile_from_json(data)


def scaled(count: int, scale: float) -> int:
    """``round(count * scale)``, but at least 1 where ``count`` is positive."""
    if count <= 0:
        return 0
    return max(1, round(count * scale))


def _type_code(topic: str) -> str:
    """An appointment type's code from its contact topic."""
    return topic.replace("_", "-")


def targets_for(
    profile: OfficeProfile, *, scale: float, years_after_first: int = 0, growth: float = 0.0
) -> dict[str, int]:
    """The target figures of a simulated year, ``years_after_first`` after the first."""
    factor = scale * (1.0 + growth) ** years_after_first
    return {name: scaled(profile.figures[name], factor) for name in TARGET_FIGURES}


# ----------------------------------------------------------------------- calendar


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm, Meeus 1991)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def national_holidays(year: int) -> frozenset[date]:
    """Germany's nationwide public holidays of ``year`` (state holidays left out)."""
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1),  # Neujahr
        easter - timedelta(days=2),  # Karfreitag
        easter + timedelta(days=1),  # Ostermontag
        date(year, 5, 1),  # Tag der Arbeit
        easter + timedelta(days=39),  # Christi Himmelfahrt
        easter + timedelta(days=50),  # Pfingstmontag
        date(year, 10, 3),  # Tag der Deutschen Einheit
        date(year, 12, 25),
        date(year, 12, 26),
    }
    if year == 2017:
        days.add(date(2017, 10, 31))  # Reformationstag, nationwide once (500 years)
    return frozenset(days)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in national_holidays(day.year)


OFFICE_OPENS: Final = 7 * 60 + 45
OFFICE_LAST_START: Final = 15 * 60 + 45
"""Fresh business times lie between 07:45 and 15:45 Berlin time; the steps that follow
on the same day come minutes later, and a file opened for a newcomer minutes before."""

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


class _Calendar:
    """The working days of a span of years, with their Berlin UTC offsets."""

    def __init__(self, first_year: int, last_year: int) -> None:
        self.days: list[date] = []
        day = date(first_year, 1, 1)
        end = date(last_year, 12, 31)
        while day <= end:
            if is_working_day(day):
                self.days.append(day)
            day += timedelta(days=1)
        self.ordinals = [day.toordinal() for day in self.days]
        # Daylight saving changes at night, so the offset at noon holds all office day.
        self._day_starts = [
            (day.toordinal() - _EPOCH_ORDINAL) * 86400
            - int(_offset(datetime(day.year, day.month, day.day, 12, tzinfo=BERLIN)))
            for day in self.days
        ]
        self._year_starts = {
            year: int(datetime(year, 1, 1, tzinfo=BERLIN).timestamp())
            for year in range(first_year, last_year + 2)
        }
        self._year_numbers = sorted(self._year_starts)
        self._year_start_times = [self._year_starts[year] for year in self._year_numbers]

    def first_on_or_after(self, day: date) -> int:
        return bisect.bisect_left(self.ordinals, day.toordinal())

    def last_on_or_before(self, day: date) -> int:
        return bisect.bisect_right(self.ordinals, day.toordinal()) - 1

    def span(self, year: int) -> tuple[int, int]:
        """Indices of the first and last working day of ``year``."""
        return (
            self.first_on_or_after(date(year, 1, 1)),
            self.last_on_or_before(date(year, 12, 31)),
        )

    def moment(self, day: int, minute: int) -> int:
        """Epoch seconds of ``minute`` after Berlin midnight on working day ``day``."""
        return self._day_starts[day] + minute * 60

    def year_start(self, year: int) -> int:
        """Epoch seconds of 1 January 00:00 Berlin time."""
        return self._year_starts[year]

    def year_of(self, ts: int) -> int:
        """The Berlin calendar year of a moment."""
        position = bisect.bisect_right(self._year_start_times, ts) - 1
        return self._year_numbers[max(position, 0)]


def _offset(moment: datetime) -> float:
    offset = moment.utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def _local_date(ts: int) -> date:
    return datetime.fromtimestamp(ts, BERLIN).date()


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# Months weigh by how busy the office is: before the summer travel season people renew
# and apply; August and the days around Christmas are quiet.
_SEASON: Final = (0.0, 0.9, 0.95, 1.0, 1.0, 1.2, 1.3, 1.25, 0.8, 1.1, 1.15, 1.0, 0.75)
# Students: enrolments for the winter semester (September/October), fewer for summer.
_STUDENT_SEASON: Final = (0.0, 0.8, 0.8, 1.1, 1.1, 0.9, 0.9, 0.9, 1.0, 1.8, 1.9, 1.0, 0.7)


class _DayPicker:
    """Draws working days of a year by the season's weights."""

    def __init__(self, calendar: _Calendar, year: int, season: tuple[float, ...]) -> None:
        self.first, self.last = calendar.span(year)
        total = 0.0
        self._cumulative: list[float] = []
        for index in range(self.first, self.last + 1):
            total += season[calendar.days[index].month]
            self._cumulative.append(total)
        self._total = total

    def draw(self, rng: random.Random) -> int:
        position = bisect.bisect_left(self._cumulative, rng.random() * self._total)
        return self.first + min(position, len(self._cumulative) - 1)


# ------------------------------------------------------------------ the office's ways

STAFF_TEAM_LEADS: Final = 3
_QUICK_TOPICS: Final = frozenset(
    {
        "general_question",
        "change_of_address",
        "eat_pickup",
        "non_expiry_certificate",
        "naturalisation_inquiry",
        "commitment_declaration",
        "lost_document",
        "integration_course",
    }
)
# Shares of the year's procedures by contact topic (per mille), from what offices report
# of their contact forms: renewals lead, pick-ups and address changes follow.
_TOPIC_WEIGHTS: Final[tuple[tuple[str, int], ...]] = (
    ("extend_residence_permit", 220),
    ("change_of_address", 100),
    ("eat_pickup", 80),
    ("first_title_after_entry", 60),
    ("extend_gestattung_duldung", 60),
    ("transfer_eat_new_passport", 40),
    ("fiction_certificate", 40),
    ("settlement_permit", 40),
    ("family_reunion", 40),
    ("employer_change", 40),
    ("change_of_purpose", 30),
    ("temporary_protection_ukraine", 30),
    ("student_permit", 30),
    ("general_question", 30),
    ("blue_card", 20),
    ("lost_document", 20),
    ("residence_obligation_change", 20),
    ("humanitarian_title_after_bamf", 20),
    ("naturalisation_inquiry", 20),
    ("commitment_declaration", 10),
    ("child_born_in_germany", 10),
    ("job_search_after_studies", 10),
    ("non_expiry_certificate", 10),
    ("visa_extension", 10),
    ("integration_course", 10),
)
_NEW_PERSON_TOPICS: Final = frozenset(
    {
        "first_title_after_entry",
        "blue_card",
        "family_reunion",
        "child_born_in_germany",
        "temporary_protection_ukraine",
        "visa_extension",
    }
)
# "Most of them digitally": the contact form opens most procedures.
_CHANNEL_WEIGHTS: Final[tuple[tuple[Channel, int], ...]] = (
    ("contact_form", 50),
    ("online_application", 25),
    ("appointment", 15),
    ("mail", 10),
)
_TOLERATION_CHANNELS: Final[tuple[tuple[Channel, int], ...]] = (
    ("appointment", 55),
    ("contact_form", 25),
    ("mail", 20),
)
_REST_OUTCOMES: Final[tuple[tuple[DecisionOutcome, int], ...]] = (
    ("granted", 82),
    ("refused", 6),
    ("withdrawn", 12),
)
_PURPOSE_BASES: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    # purpose: (topic, legal basis) of a first title; new titles split ~45/30/25.
    "family": (
        ("family_reunion", "aufenthg-30"),
        ("family_reunion", "aufenthg-30"),
        ("family_reunion", "aufenthg-32"),
        ("family_reunion", "aufenthg-28-1"),
        ("family_reunion", "aufenthg-36"),
        ("first_title_after_entry", "aufenthg-30"),
        ("first_title_after_entry", "aufenthg-28-1"),
        ("child_born_in_germany", "aufenthg-33"),
    ),
    "employment": (
        ("first_title_after_entry", "aufenthg-18b"),
        ("first_title_after_entry", "aufenthg-18a"),
        ("first_title_after_entry", "aufenthg-19c"),
        ("first_title_after_entry", "aufenthg-20a"),
        ("first_title_after_entry", "aufenthg-21"),
        ("blue_card", "aufenthg-18g"),
        ("blue_card", "aufenthg-18g"),
    ),
    "education": (
        ("first_title_after_entry", "aufenthg-16b"),
        ("first_title_after_entry", "aufenthg-16b"),
        ("first_title_after_entry", "aufenthg-16b"),
        ("first_title_after_entry", "aufenthg-16a"),
    ),
}
_PURPOSES: Final = (("family", 45), ("employment", 30), ("education", 25))
_EDUCATION_BASES: Final = frozenset(
    {"aufenthg-16a", "aufenthg-16b", "aufenthg-16d", "aufenthg-16f", "aufenthg-17"}
)
# eATs issued, by the kind of procedure that issues them.
_EAT_KINDS: Final = (
    ("new", 38),
    ("humanitarian", 6),
    ("ukraine", 6),
    ("extension", 30),
    ("change", 8),
    ("settlement", 12),
)
_EAT_PLANS: Final[dict[str, tuple[tuple[str, str], ...]]] = {
    "humanitarian": (
        ("humanitarian_title_after_bamf", "aufenthg-25-2-1"),
        ("humanitarian_title_after_bamf", "aufenthg-25-2-1"),
        ("humanitarian_title_after_bamf", "aufenthg-25-2-2"),
        ("humanitarian_title_after_bamf", "aufenthg-25-1"),
    ),
    "ukraine": (("temporary_protection_ukraine", "aufenthg-24"),),
    "extension": (
        ("extend_residence_permit", "aufenthg-18b"),
        ("extend_residence_permit", "aufenthg-30"),
        ("extend_residence_permit", "aufenthg-28-1"),
        ("extend_residence_permit", "aufenthg-25-2-1"),
        ("extend_residence_permit", "aufenthg-18g"),
        ("extend_residence_permit", "aufenthg-32"),
        ("student_permit", "aufenthg-16b"),
        ("student_permit", "aufenthg-16b"),
    ),
    "change": (
        ("change_of_purpose", "aufenthg-18b"),
        ("change_of_purpose", "aufenthg-18a"),
        ("change_of_purpose", "aufenthg-20"),
        ("job_search_after_studies", "aufenthg-20"),
    ),
    "settlement": (
        ("settlement_permit", "aufenthg-9"),
        ("settlement_permit", "aufenthg-9"),
        ("settlement_permit", "aufenthg-9a"),
        ("settlement_permit", "aufenthg-18c-2"),
        ("settlement_permit", "aufenthg-26-3"),
        ("settlement_permit", "aufenthg-28-2"),
    ),
}
_FIRST_TITLE_KINDS: Final = frozenset({"new", "humanitarian", "ukraine"})
_EAT_MONTHS: Final[dict[str, tuple[int, ...]]] = {
    "new": (12, 24, 24, 36),
    "humanitarian": (12, 36, 36),
    "ukraine": (12, 24),
    "extension": (12, 24, 24, 36),
    "change": (18, 24, 36),
    "settlement": (120,),
}
_DOCUMENT_SHARES: Final = (("eat", 78), ("duldung", 13), ("aufenthaltsgestattung", 9))
_DULDUNG_BASES: Final = (("aufenthg-60a", 80), ("aufenthg-60c", 12), ("aufenthg-60d", 8))
_FICTION_TOPICS: Final[dict[str, tuple[tuple[FictionKind, int], ...]]] = {
    "extend_residence_permit": (("81_4", 1),),
    "student_permit": (("81_4", 1),),
    "settlement_permit": (("81_4", 1),),
    "change_of_purpose": (("81_4", 1),),
    "job_search_after_studies": (("81_4", 1),),
    "fiction_certificate": (("81_4", 1),),
    "visa_extension": (("81_4", 1),),
    "temporary_protection_ukraine": (("81_3_1", 1),),
    "first_title_after_entry": (("81_3_1", 55), ("81_4", 40), ("81_3_2", 5)),
    "blue_card": (("81_4", 1),),
    "family_reunion": (("81_3_1", 50), ("81_4", 45), ("81_3_2", 5)),
}
_REFUSAL_REASONS: Final = (
    "Lebensunterhalt nicht gesichert (§ 5 Abs. 1 Nr. 1 AufenthG).",
    "Angeforderte Unterlagen nicht fristgerecht vorgelegt.",
    "Voraussetzungen der Rechtsgrundlage nicht erfüllt.",
    "Passpflicht nicht erfüllt (§ 3 AufenthG).",
)
_DOCUMENT_REQUESTS: Final = (
    ["Aktueller Einkommensnachweis", "Mietvertrag"],
    ["Nachweis der Krankenversicherung"],
    ["Immatrikulationsbescheinigung", "Finanzierungsnachweis"],
    ["Arbeitsvertrag", "Erklärung zum Beschäftigungsverhältnis"],
    ["Meldebescheinigung"],
)
_NATIONS: Final = (
    *(("TUR", 22), ("SYR", 16), ("UKR", 12), ("IND", 14), ("AFG", 9), ("IRN", 5)),
    *(("NGA", 5), ("CHN", 6), ("BRA", 4), ("USA", 4), ("XXA", 3)),
)
_OTHER_OFFICES: Final = ("abh-nachbarstadt", "abh-landkreis-simulation", "abh-kreisstadt")
_VISIT_PURPOSES: Final[tuple[tuple[VisitPurpose, int], ...]] = (
    ("family_visit", 60),
    ("private_visit", 18),
    ("tourism", 10),
    ("business", 7),
    ("medical_treatment", 2),
    ("training", 2),
    ("other", 1),
)
_PAYMENT_METHODS: Final[tuple[tuple[PaymentMethod, int], ...]] = (
    ("paypal", 35),
    ("giropay", 20),
    ("visa", 20),
    ("mastercard", 15),
    ("paydirect", 10),
)


# Appointments: the citizens' office of the foreigners' authority serves procedures and
# questions; cards are handed out at a counter of their own, in short slots.
MAIN_POINT: Final = "buergerbuero"
PICKUP_POINT: Final = "ausgabe"
_MAIN_TOPICS: Final = (
    "extend_residence_permit",
    "first_title_after_entry",
    "extend_gestattung_duldung",
    "settlement_permit",
    "family_reunion",
    "blue_card",
    "change_of_address",
    "transfer_eat_new_passport",
    "employer_change",
    "change_of_purpose",
    "student_permit",
    "lost_document",
    "temporary_protection_ukraine",
    "humanitarian_title_after_bamf",
    "fiction_certificate",
    "general_question",
    "naturalisation_inquiry",
    "commitment_declaration",
)
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
# Shares of the appointments served: procedures received at the counter, certificates
# issued and cards handed over at an appointment; the rest come without a case file.
_RECEIPT_SHARE: Final = 0.45
_FICTION_VISIT_SHARE: Final = 0.10
_PICKUP_SHARE: Final = 0.25
_NO_SHOW_SHARES: Final = (0.08, 0.12)
_MAX_LEAD: Final = 15
"""Working days a booking is made ahead, at most (the calendar releases six weeks)."""


# ------------------------------------------------------------------------- plans


@dataclass(slots=True)
class _ProcedurePlan:
    seed: int
    topic: str
    channel: Channel
    basis: str | None
    """Legal basis given at receipt."""
    decision_basis: str | None
    outcome: DecisionOutcome
    receive_day: int
    decide_day: int
    new_person: bool
    start: int = 0
    document: ResidenceDocumentKind | None = None
    document_basis: str = ""
    document_months: int = 12
    fiction: FictionKind | None = None
    fiction_day: int = 0
    entitlement: bool = False
    obligation: bool = False
    first_title: bool = False
    visit_lead: int = 0
    """Received at a booked appointment, booked this many working days before; 0: not."""
    fiction_visit: bool = False
    """The certificate is issued at an appointment booked when the procedure came in."""
    pickup_day: int = 0
    """The eAT card is handed over at an appointment on this day; 0: without one."""


@dataclass(slots=True)
class _EntryPlan:
    seed: int
    request_day: int
    start: int = 0


@dataclass(slots=True)
class _DeclarationPlan:
    seed: int
    submit_day: int
    check_day: int
    handover_day: int | None
    """None: never handed over (ability not shown, or withdrawn)."""
    start: int = 0


@dataclass(slots=True)
class _InquiryPlan:
    seed: int
    kind: InquiryKind
    receive_day: int
    answer_day: int
    start: int = 0


_Standalone = Literal["eat", "fiction", "entitlement", "obligation"]


@dataclass(slots=True)
class _StandalonePlan:
    """A counted event without a procedure to hang it on (only at tiny scales)."""

    seed: int
    what: _Standalone
    day: int
    start: int = 0


@dataclass(slots=True)
class _AppointmentPlan:
    """A booking that hangs on no procedure: a question at the counter, or a no-show."""

    seed: int
    day: int
    book_day: int
    attends: bool
    start: int = 0


_Story = Generator[int, None, None]
"""A story yields the business time of its next step and runs that step when resumed."""

_Plan = (
    _ProcedurePlan
    | _EntryPlan
    | _DeclarationPlan
    | _InquiryPlan
    | _StandalonePlan
    | _AppointmentPlan
)


@dataclass(frozen=True)
class _ServicePointsDue:
    """Time to define the service points, before the first booking."""


@dataclass(frozen=True)
class _YearMark:
    """Reached the start of ``year``: time to plan the year after."""

    year: int


# ---------------------------------------------------------------------- the tally


@dataclass
class _YearTally:
    documents: Counter[str] = field(default_factory=Counter)
    fictions_issued: int = 0
    fictions_extended: int = 0
    received: Counter[str] = field(default_factory=Counter)
    processed_channels: Counter[str] = field(default_factory=Counter)
    processed_outcomes: Counter[str] = field(default_factory=Counter)
    processed_bases: Counter[str] = field(default_factory=Counter)
    days: Counter[int] = field(default_factory=Counter)
    entry_procedures: int = 0
    entitlements: int = 0
    obligations: int = 0
    declarations: int = 0
    fees_cents: int = 0
    inquiries: Counter[str] = field(default_factory=Counter)
    appointments_served: int = 0
    no_shows: int = 0
    customers: set[str] = field(default_factory=set)
    """Distinct persons served, by the report's identities: ``c:<case file id>``,
    ``p:<person key>`` (served without a case file), ``d:<declaration id>``."""


def nearest_rank(histogram: Mapping[int, int], percent: int) -> int | None:
    """The smallest value v such that at least ``percent`` % of the values are <= v."""
    count = sum(histogram.values())
    if count == 0:
        return None
    rank = max(1, -(-percent * count // 100))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the count")


def figures_of(tally: _YearTally, *, year: int, office_id: str, backlog: int) -> dict[str, Any]:
    processed = sum(tally.processed_outcomes.values())
    digital = sum(tally.processed_channels[channel] for channel in DIGITAL_CHANNELS)
    appointments = tally.appointments_served + tally.no_shows
    return {
        "year": year,
        "office_id": office_id,
        "appointments_served": tally.appointments_served,
        "customers": len(tally.customers),
        "no_show_rate": (round(100 * tally.no_shows / appointments, 1) if appointments else None),
        "residence_documents_issued": {
            "total": sum(tally.documents.values()),
            "by_kind": {kind: tally.documents[kind] for kind in RESIDENCE_DOCUMENT_KINDS},
        },
        "fiction_certificates_issued": tally.fictions_issued,
        "fiction_certificates_extended": tally.fictions_extended,
        "procedures_received": {
            "total": sum(tally.received.values()),
            "by_channel": {channel: tally.received[channel] for channel in CHANNELS},
        },
        "procedures_processed": {
            "total": processed,
            "digital": digital,
            "digital_share": digital / processed if processed else None,
            "by_channel": {channel: tally.processed_channels[channel] for channel in CHANNELS},
            "by_outcome": {outcome: tally.processed_outcomes[outcome] for outcome in OUTCOMES},
            "by_legal_basis": {
                basis: tally.processed_bases[basis]
                for basis in sorted(tally.processed_bases)
                if tally.processed_bases[basis]
            },
        },
        "entry_procedures": tally.entry_procedures,
        "integration_course_entitlements": tally.entitlements,
        "integration_course_obligations": tally.obligations,
        "commitment_declarations": tally.declarations,
        "commitment_fees_cents": tally.fees_cents,
        "civil_registry_inquiries": tally.inquiries["civil_registry"],
        "naturalisation_inquiries": tally.inquiries["naturalisation"],
        "backlog_at_year_end": backlog,
        "days_to_decision_median": nearest_rank(tally.days, 50),
        "days_to_decision_p90": nearest_rank(tally.days, 90),
    }


def achieved(truth: Mapping[str, Any]) -> dict[str, int]:
    """A year's ground truth as the target figures (to compare with :func:`targets_for`)."""
    return {
        "appointments_served": truth["appointments_served"],
        "residence_documents_issued": truth["residence_documents_issued"]["total"],
        "fiction_certificates_issued": truth["fiction_certificates_issued"],
        "procedures_processed": truth["procedures_processed"]["total"],
        "entry_procedures": truth["entry_procedures"],
        "integration_course_entitlements": truth["integration_course_entitlements"],
        "integration_course_obligations": truth["integration_course_obligations"],
        "commitment_declarations": truth["commitment_declarations"],
        "civil_registry_inquiries": truth["civil_registry_inquiries"],
        "naturalisation_inquiries": truth["naturalisation_inquiries"],
    }


# ----------------------------------------------------------------------- results


@dataclass(frozen=True)
class SimulationProgress:
    simulated_day: date
    share: float
    """How far through the simulated span business time has come (0..1)."""
    commands: int
    events: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class SimulationResult:
    office_id: str
    seed: int
    scale: float
    growth: float
    years: tuple[int, ...]
    targets: dict[int, dict[str, int]]
    truth: dict[int, dict[str, Any]]
    """Per simulated year, every figure as the simulator counted it."""
    commands: int
    events: int
    case_files: int
    seconds: float
    commands_by_kind: dict[str, int]

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def truth_json(self) -> dict[str, Any]:
        """The ground truth and what it aimed at; the same for the same seed and scale."""
        return {
            "office_id": self.office_id,
            "seed": self.seed,
            "scale": self.scale,
            "growth": self.growth,
            "years": {str(year): self.truth[year] for year in self.years},
            "targets": {str(year): self.targets[year] for year in self.years},
        }


# --------------------------------------------------------------------- simulator


class _SimulatedPaymentPlatform:
    """The ePayment platform, in process: payments are created and reported by the
    simulator itself (the HTTP stand-in of :mod:`adapters.payment.stand_in` would cost a
    round trip per payment and tell nothing more)."""

    name = PAYMENT_PLATFORM

    def create_payment(self, order: PaymentOrder) -> CreatedPayment:
        transaction_id = f"SIM-{uuid4().hex[:20]}"
        return CreatedPayment(transaction_id, f"https://epay.simulation.invalid/{transaction_id}")


_NOTIFY_URL: Final = "https://akte.simulation.invalid/payments/notifications"
_RETURN_URL: Final = "https://akte.simulation.invalid/verpflichtungserklaerung"


@dataclass(slots=True)
class _Person:
    case_id: UUID
    version: int
    nationality: str
    active: int = 0
    """Stories under way on the file: it may be transferred or closed only at 0."""
    pool_index: int = -1
    surname: str = ""
    given_names: str = ""
    born: date = date(1980, 1, 1)


class _SimulatedMailbox:
    """Where the simulated office's mail goes for the run: counted, never sent. The
    people are fictitious, and a mail server would cost a connection per booking."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, mail: OutgoingMail) -> None:
        self.sent += 1


@dataclass(frozen=True)
class _Point:
    code: str
    starts: tuple[int, ...]
    """Minutes after local midnight at which its slots begin, every working day."""
    seats: int
    """Seats of a slot bookable before its day (the same-day seats are held back)."""


@dataclass(slots=True)
class _Booking:
    appointment_id: UUID
    version: int
    reference: str
    starts: int
    person_key: str
    case: _Person | None


class _Simulator:
    def __init__(
        self,
        service: AkteService,
        profile: OfficeProfile,
        *,
        seed: int,
        first_year: int,
        years: int,
        scale: float,
        growth: float,
        office_id: str,
        progress: Callable[[SimulationProgress], None] | None,
        now: datetime,
    ) -> None:
        self.service = service
        self.profile = profile
        self.seed = seed
        self.first_year = first_year
        self.last_year = first_year + years - 1
        self.scale = scale
        self.growth = growth
        self.office_id = office_id
        self.progress = progress
        self.calendar = _Calendar(first_year - 11, self.last_year + 2)
        # A day's margin: the steps of a story come minutes after the time it is due.
        self.now_limit = int(now.timestamp()) - 86400
        self.platform = _SimulatedPaymentPlatform()
        team_leads = min(STAFF_TEAM_LEADS, profile.staff - 1)
        self.team_leads = tuple(f"tl-{n:02d}" for n in range(1, team_leads + 1))
        self.caseworkers = tuple(f"sb-{n:02d}" for n in range(1, profile.staff - team_leads + 1))
        self.targets = {
            year: targets_for(
                profile, scale=scale, years_after_first=year - first_year, growth=growth
            )
            for year in range(first_year, self.last_year + 2)
        }
        self.tallies = {year: _YearTally() for year in range(first_year - 1, self.last_year + 3)}
        self.received_by_year: Counter[int] = Counter()
        self.decided_pairs: Counter[tuple[int, int]] = Counter()
        self.pool: list[_Person] = []
        self.pool_cap = max(20, round(POOL_PER_SCALE * scale))
        self.arrivals: deque[_Person] = deque()
        self.heap: list[tuple[int, int, Any]] = []
        self.sequence = 0
        self.commands = 0
        self.events = 0
        self.case_files = 0
        self.commands_by_kind: Counter[str] = Counter()
        self.started = 0.0
        self.span_start = self.calendar.year_start(first_year)
        self.span_end = self.calendar.year_start(self.last_year + 1)
        self._fictions_short = 0
        self._entitlements_short = 0
        self._obligations_short = 0
        self.points: dict[str, _Point] = {}
        self.seats: Counter[tuple[str, int]] = Counter()
        """Seats taken per service point and slot start: the simulator books every one."""

    # ---------------------------------------------------------------- running

    def run(self) -> SimulationResult:
        end_of_span = self.span_end
        if end_of_span > self.now_limit:
            raise SimulationError(
                f"the year {self.last_year} has not ended yet: business time must not lie "
                "in the future"
            )
        self.started = time.monotonic()
        self._plan_year(self.first_year, tail=False)
        self._push(self.calendar.year_start(self.first_year) - 1, _YearMark(self.first_year))
        # Weeks before the first booking (bookings come at most _MAX_LEAD days ahead, and
        # certificate visits are booked up to 20 working days before the year).
        first_day = self.calendar.span(self.first_year)[0] - 2 * _MAX_LEAD - 20
        self._push(self.calendar.moment(first_day, OFFICE_OPENS), _ServicePointsDue())
        next_report = 0
        while self.heap:
            ts, _sequence, item = heapq.heappop(self.heap)
            if ts > self.now_limit:
                # Beyond now: only what follows the last simulated year (its January).
                if isinstance(item, Generator):
                    item.close()
                continue
            if isinstance(item, _YearMark):
                self._year_reached(item.year)
                continue
            if isinstance(item, _ServicePointsDue):
                self._define_service_points(ts)
                continue
            story: _Story = item if isinstance(item, Generator) else self._story(item)
            next_ts = next(story, None)
            if next_ts is not None:
                self._push(next_ts, story)
            if self.progress is not None and self.commands >= next_report:
                next_report = self.commands + 2000
                self._report(ts)
        seconds = time.monotonic() - self.started
        if self.progress is not None:
            self._report(self.span_end, seconds=seconds)
        years = tuple(range(self.first_year, self.last_year + 1))
        truth = {year: self._truth(year) for year in years}
        for year in years:
            if achieved(truth[year]) != self.targets[year]:
                # A bug in the planning, never an input problem: say which figures.
                wrong = sorted(
                    name
                    for name, value in achieved(truth[year]).items()
                    if value != self.targets[year][name]
                )
                raise SimulationError(f"{year}: missed the targets of {', '.join(wrong)}")
        return SimulationResult(
            office_id=self.office_id,
            seed=self.seed,
            scale=self.scale,
            growth=self.growth,
            years=years,
            targets={year: self.targets[year] for year in years},
            truth=truth,
            commands=self.commands,
            events=self.events,
            case_files=self.case_files,
            seconds=seconds,
            commands_by_kind=dict(sorted(self.commands_by_kind.items())),
        )

    def _report(self, ts: int, seconds: float | None = None) -> None:
        assert self.progress is not None
        span = max(self.span_end - self.span_start, 1)
        share = min(max((ts - self.span_start) / span, 0.0), 1.0)
        self.progress(
            SimulationProgress(
                simulated_day=_local_date(min(ts, self.span_end - 1)),
                share=share,
                commands=self.commands,
                events=self.events,
                seconds=seconds if seconds is not None else time.monotonic() - self.started,
            )
        )

    def _push(self, ts: int, item: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.heap, (ts, self.sequence, item))

    def _year_reached(self, year: int) -> None:
        following = year + 1
        if following <= self.last_year:
            self._plan_year(following, tail=False)
            self._push(self.calendar.year_start(following) - 1, _YearMark(following))
        elif following == self.last_year + 1:
            self._plan_year(following, tail=True)

    def _truth(self, year: int) -> dict[str, Any]:
        received = sum(count for y, count in self.received_by_year.items() if y <= year)
        decided = sum(
            count for (r, d), count in self.decided_pairs.items() if r <= year and d <= year
        )
        return figures_of(
            self.tallies[year], year=year, office_id=self.office_id, backlog=received - decided
        )

    # ---------------------------------------------------------------- planning

    def _plan_year(self, year: int, *, tail: bool) -> None:
        """Plan the stories whose counted events fall in ``year``.

        ``tail``: the year after the last simulated one; only what starts in the last
        simulated year is kept (procedures received in December and decided in January).
        """
        rng = random.Random(f"akte-simulator/{self.seed}/{year}")
        target = self.targets[year]
        calendar = self.calendar
        general = _DayPicker(calendar, year, _SEASON)
        students = _DayPicker(calendar, year, _STUDENT_SEASON)
        year_first, _year_last = calendar.span(year)
        plans: list[_Plan] = []
        procedures = self._plan_procedures(rng, target, general, students, year_first)
        plans.extend(procedures)
        plans.extend(self._plan_standalone(rng, target, procedures, general))
        for _ in range(target["entry_procedures"]):
            plans.append(_EntryPlan(rng.getrandbits(64), general.draw(rng)))
        plans.extend(self._plan_declarations(rng, target["commitment_declarations"], general))
        if not tail:
            plans.extend(self._plan_appointments(rng, target, procedures, general, year))
        inquiries: tuple[tuple[InquiryKind, str], ...] = (
            ("civil_registry", "civil_registry_inquiries"),
            ("naturalisation", "naturalisation_inquiries"),
        )
        for kind, figure in inquiries:
            for _ in range(target[figure]):
                answer_day = general.draw(rng)
                plans.append(
                    _InquiryPlan(
                        rng.getrandbits(64), kind, answer_day - rng.randint(1, 15), answer_day
                    )
                )
        last_day_before = calendar.span(year - 1)[1]
        for plan in plans:
            plan.start = self._start_of(plan, rng)
            if tail and (
                isinstance(plan, _EntryPlan | _StandalonePlan | _AppointmentPlan)
                or self._first_day(plan) > last_day_before
            ):
                continue
            self._push(plan.start, plan)

    @staticmethod
    def _first_day(plan: _Plan) -> int:
        if isinstance(plan, _ProcedurePlan):
            return plan.receive_day
        if isinstance(plan, _EntryPlan):
            return plan.request_day
        if isinstance(plan, _DeclarationPlan):
            return plan.submit_day
        if isinstance(plan, _InquiryPlan):
            return plan.receive_day
        if isinstance(plan, _AppointmentPlan):
            return plan.book_day
        return plan.day

    def _start_of(self, plan: _Plan, rng: random.Random) -> int:
        day = self._first_day(plan)
        if isinstance(plan, _ProcedurePlan) and plan.visit_lead:
            day -= plan.visit_lead  # the booking comes first
        return self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))

    def _plan_procedures(
        self,
        rng: random.Random,
        target: Mapping[str, int],
        general: _DayPicker,
        students: _DayPicker,
        year_first: int,
    ) -> list[_ProcedurePlan]:
        total = target["procedures_processed"]
        anchors = min(target["residence_documents_issued"], total)
        kinds = [weighted(rng, _DOCUMENT_SHARES) for _ in range(anchors)]
        plans: list[_ProcedurePlan] = []
        for kind in kinds:
            if kind == "eat":
                plans.append(self._eat_anchor(rng))
            elif kind == "duldung":
                basis = weighted(rng, _DULDUNG_BASES)
                plans.append(
                    self._procedure(
                        rng, "extend_gestattung_duldung", basis, "granted", document="duldung"
                    )
                )
                plans[-1].document_months = rng.choice((3, 3, 6))
            else:
                plans.append(
                    self._procedure(
                        rng,
                        "extend_gestattung_duldung",
                        "asylg-55",
                        "granted",
                        document="aufenthaltsgestattung",
                    )
                )
                plans[-1].document_months = rng.choice((3, 6))
        for _ in range(total - anchors):
            topic = weighted(rng, _TOPIC_WEIGHTS)
            plans.append(self._procedure(rng, topic, None, weighted(rng, _REST_OUTCOMES)))
        rng.shuffle(plans)
        for plan in plans:
            education = plan.basis in _EDUCATION_BASES or plan.topic == "student_permit"
            plan.decide_day = (students if education else general).draw(rng)
            plan.receive_day = plan.decide_day - self._duration(rng, plan.topic)
        self._plan_fictions(rng, plans, target["fiction_certificates_issued"], year_first)
        self._plan_integration(rng, plans, target)
        return plans

    def _eat_anchor(self, rng: random.Random) -> _ProcedurePlan:
        kind = weighted(rng, _EAT_KINDS)
        if kind == "new":
            topic, basis = rng.choice(_PURPOSE_BASES[weighted(rng, _PURPOSES)])
        else:
            topic, basis = rng.choice(_EAT_PLANS[kind])
        plan = self._procedure(rng, topic, basis, "granted", document="eat")
        plan.document_months = rng.choice(_EAT_MONTHS[kind])
        plan.first_title = kind in _FIRST_TITLE_KINDS
        return plan

    def _procedure(
        self,
        rng: random.Random,
        topic: str,
        basis: str | None,
        outcome: DecisionOutcome,
        *,
        document: ResidenceDocumentKind | None = None,
    ) -> _ProcedurePlan:
        bases = self.service.catalogue.contact_topics[topic].legal_bases
        if basis is None and bases:
            if topic == "first_title_after_entry":
                basis = rng.choice(_PURPOSE_BASES[weighted(rng, _PURPOSES)])[1]
            else:
                basis = rng.choice(bases)
        channel = weighted(
            rng,
            _TOLERATION_CHANNELS if topic == "extend_gestattung_duldung" else _CHANNEL_WEIGHTS,
        )
        # A contact form often leaves the legal basis open; the decision names it.
        given = basis if basis is None or document is not None or rng.random() < 0.75 else None
        decision_basis: str | None = None
        if outcome == "granted" and basis is not None and (given is None or rng.random() < 0.6):
            decision_basis = basis
        return _ProcedurePlan(
            seed=rng.getrandbits(64),
            topic=topic,
            channel=channel,
            basis=given,
            decision_basis=decision_basis,
            outcome=outcome,
            receive_day=0,
            decide_day=0,
            new_person=topic in _NEW_PERSON_TOPICS,
            document=document,
            document_basis=basis or "",
        )

    @staticmethod
    def _duration(rng: random.Random, topic: str) -> int:
        """Working days from receipt to decision."""
        if topic in _QUICK_TOPICS:
            return rng.randint(0, 8)
        draw = rng.random()
        if draw < 0.55:
            return rng.randint(1, 20)
        if draw < 0.88:
            return rng.randint(20, 55)
        return rng.randint(55, 150)

    def _plan_fictions(
        self, rng: random.Random, plans: list[_ProcedurePlan], count: int, year_first: int
    ) -> None:
        """Certificates issued in the plan's year while the procedure is pending."""
        eligible = [
            p for p in plans if p.topic in _FICTION_TOPICS and p.decide_day - year_first >= 2
        ]
        chosen = rng.sample(eligible, min(count, len(eligible)))
        if len(chosen) < count:
            taken = {id(p) for p in chosen}
            others = [p for p in plans if id(p) not in taken and p.decide_day - year_first >= 1]
            chosen += rng.sample(others, min(count - len(chosen), len(others)))
        for plan in chosen:
            kinds = _FICTION_TOPICS.get(plan.topic, (("81_4", 1),))
            plan.fiction = weighted(rng, kinds)
            draw = rng.random()
            if draw < 0.35:
                wanted = rng.randint(10, 60)
            elif draw < 0.8:
                wanted = rng.randint(60, 130)
            else:
                wanted = rng.randint(130, 235)
            duration = max(1, min(wanted, plan.decide_day - year_first + 3))
            plan.receive_day = plan.decide_day - duration
            day = max(plan.receive_day + rng.randint(0, 4), year_first)
            plan.fiction_day = min(day, plan.decide_day - 1)
        # Fewer procedures than certificates (tiny scales): the rest stand alone.
        self._fictions_short = count - len(chosen)

    def _plan_integration(
        self, rng: random.Random, plans: list[_ProcedurePlan], target: Mapping[str, int]
    ) -> None:
        """Entitlements (and some obligations) with the first titles of the year."""
        wanted = target["integration_course_entitlements"]
        first = [p for p in plans if p.first_title and p.topic != "child_born_in_germany"]
        chosen = rng.sample(first, min(wanted, len(first)))
        if len(chosen) < wanted:
            taken = {id(p) for p in chosen}
            others = [p for p in plans if p.outcome == "granted" and id(p) not in taken]
            chosen += rng.sample(others, min(wanted - len(chosen), len(others)))
        for plan in chosen:
            plan.entitlement = True
        self._entitlements_short = wanted - len(chosen)
        obliged = target["integration_course_obligations"]
        picked = rng.sample(chosen, min(obliged, len(chosen)))
        if len(picked) < obliged:
            taken = {id(p) for p in picked}
            others = [p for p in plans if p.outcome == "granted" and id(p) not in taken]
            picked += rng.sample(others, min(obliged - len(picked), len(others)))
        for plan in picked:
            plan.obligation = True
        self._obligations_short = obliged - len(picked)

    def _plan_standalone(
        self,
        rng: random.Random,
        target: Mapping[str, int],
        procedures: list[_ProcedurePlan],
        general: _DayPicker,
    ) -> list[_StandalonePlan]:
        plans: list[_StandalonePlan] = []
        documents = target["residence_documents_issued"] - len(procedures)
        for _ in range(max(documents, 0)):
            plans.append(_StandalonePlan(rng.getrandbits(64), "eat", general.draw(rng)))
        shortfalls: tuple[tuple[_Standalone, int], ...] = (
            ("fiction", self._fictions_short),
            ("entitlement", self._entitlements_short),
            ("obligation", self._obligations_short),
        )
        for what, count in shortfalls:
            for _ in range(count):
                plans.append(_StandalonePlan(rng.getrandbits(64), what, general.draw(rng)))
        return plans

    def _plan_declarations(
        self, rng: random.Random, count: int, general: _DayPicker
    ) -> list[_DeclarationPlan]:
        plans = []
        for _ in range(count):
            handover = general.draw(rng)
            check = handover - rng.randint(2, 10)
            plans.append(
                _DeclarationPlan(rng.getrandbits(64), check - rng.randint(1, 8), check, handover)
            )
        # Some never get signed: the ability to pay is not shown, or the visit is off.
        for _ in range(round(count * 0.04)):
            check = general.draw(rng)
            plans.append(
                _DeclarationPlan(rng.getrandbits(64), check - rng.randint(1, 8), check, None)
            )
        return plans

    def _plan_appointments(
        self,
        rng: random.Random,
        target: Mapping[str, int],
        procedures: list[_ProcedurePlan],
        general: _DayPicker,
        year: int,
    ) -> list[_AppointmentPlan]:
        """Appointments served in ``year``, exactly the target: hung on procedures where
        the visit certainly falls in the year, the rest without a case file; and the
        no-shows beside them."""
        served = target["appointments_served"]
        if served == 0:
            return []
        year_first, year_last = self.calendar.span(year)
        hooked = 0

        def pick(candidates: list[_ProcedurePlan], share: float) -> list[_ProcedurePlan]:
            nonlocal hooked
            chosen = rng.sample(candidates, min(len(candidates), round(served * share)))
            hooked += len(chosen)
            return chosen

        receipts = [
            p
            for p in procedures
            if p.channel == "appointment"
            and p.topic in _MAIN_TOPICS
            and year_first <= p.receive_day <= year_last
        ]
        for plan in pick(receipts, _RECEIPT_SHARE):
            plan.visit_lead = rng.randint(1, _MAX_LEAD)
        # Booked when the procedure comes in, for a day within the calendar's window.
        fictions = [
            p
            for p in procedures
            if p.fiction is not None and 1 <= p.fiction_day - p.receive_day <= 20
        ]
        for plan in pick(fictions, _FICTION_VISIT_SHARE):
            plan.fiction_visit = True
        # The card arrives 20-30 working days after the file is closed (at most two after
        # the decision): the pick-up comes after that and still in the year.
        pickups = [p for p in procedures if p.document == "eat" and p.decide_day + 42 <= year_last]
        for plan in pick(pickups, _PICKUP_SHARE):
            plan.pickup_day = plan.decide_day + 32 + rng.randint(1, 10)
        plans = []
        for _ in range(served - hooked):
            day = general.draw(rng)
            plans.append(
                _AppointmentPlan(rng.getrandbits(64), day, day - rng.randint(1, _MAX_LEAD), True)
            )
        share = rng.uniform(*_NO_SHOW_SHARES)
        for _ in range(round(served * share / (1 - share))):
            day = general.draw(rng)
            plans.append(
                _AppointmentPlan(rng.getrandbits(64), day, day - rng.randint(1, _MAX_LEAD), False)
            )
        return plans

    # ------------------------------------------------------------ appointments

    def _define_service_points(self, ts: int) -> None:
        """The two service points and their appointment types, sized for the busiest year."""
        busiest = max(target["appointments_served"] for target in self.targets.values())
        # Bookings a day, the no-shows included. Days are far from even: the first working
        # days after the holidays take what December left, and seasons peak; counters
        # sized for eight times the mean day never run out (three did, at scale 0.1).
        per_day = 8 * busiest * 1.15 / 250
        catalogue = self.service.catalogue
        layouts = (
            (MAIN_POINT, "Bürgerbüro Ausländerbehörde", 20, (7, 40), (15, 40), _MAIN_TOPICS, 0.8),
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
            self.service.define_service_point(
                office_id=self.office_id,
                code=code,
                name=name,
                rules=rules,
                types=types,
                by=self.team_leads[0],
                at=_utc(ts),
            )
            self._counted("define_service_point", 1 + len(types) + (code == MAIN_POINT) * 2)
            self.points[code] = _Point(code, starts, counters - 1)
            ts += 60

    def _free_slot(self, rng: random.Random, point: _Point, day: int, after: int) -> int:
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

    def _who(self, rng: random.Random, person: _Person | None) -> Person:
        """Who books: the file's person, or someone without a file (fictitious)."""
        if person is not None:
            return Person(
                surname=person.surname,
                given_names=person.given_names,
                date_of_birth=person.born,
                email=f"p{person.case_id.hex[:16]}@example.org",
            )
        nationality = weighted(rng, _NATIONS)
        given_names, surnames = NAMES[nationality]
        return Person(
            surname=rng.choice(surnames),
            given_names=rng.choice(given_names),
            date_of_birth=date(1950, 1, 1) + timedelta(days=rng.randint(0, 20000)),
            email=f"t{rng.getrandbits(48):012x}@example.org",
        )

    @staticmethod
    def _holds(plan: _ProcedurePlan) -> DocumentHeld:
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
        person: _Person | None,
        day: int,
        by: str,
        serves: bool = True,
    ) -> _Booking | None:
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
                with business_time(_utc(t)):
                    recorded = self.service.book_appointment(
                        office_id=self.office_id,
                        service_point_code=point,
                        appointment_type=_type_code(topic),
                        starts_at=_utc(starts),
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
                stand_in = _AppointmentPlan(rng.getrandbits(64), day, self._day_of(t), True)
                stand_in.start = t + 60
                self._push(stand_in.start, stand_in)
                return None
            break
        self.seats[(point, starts)] += 1
        new_slot = self.seats[(point, starts)] == 1
        # The appointment's events, the slot's seat, the person's count and the reference.
        self._counted("book_appointment", recorded.version + 3 + new_slot)
        assert recorded.reference is not None
        key = self.service.person_key(who)
        return _Booking(
            recorded.appointment_id, recorded.version, recorded.reference, starts, key, person
        )

    def _booked(
        self, booking: _Booking, kind: str, recorded: AppointmentRecorded, extra: int = 0
    ) -> None:
        self._counted(kind, recorded.version - booking.version + extra)
        booking.version = recorded.version

    def _confirm(self, booking: _Booking, t: int) -> None:
        """The person types in the code of the confirmation mail."""
        code = self.service.confirmation_code(booking.appointment_id)
        with business_time(_utc(t)):
            recorded = self.service.confirm_booking(booking.reference, code)
        self._booked(booking, "confirm_booking", recorded)

    def _arrival(self, rng: random.Random, booking: _Booking, after: int) -> int:
        """When the person checks in: some minutes before the slot."""
        return max(booking.starts - 60 * rng.randint(0, 10), after + 60)

    def _check_in(self, booking: _Booking, t: int, by: str) -> None:
        with business_time(_utc(t)):
            recorded = self.service.check_in_appointment(
                booking.appointment_id, expected_version=booking.version, by=by
            )
        self._booked(booking, "check_in_appointment", recorded)

    def _link(self, booking: _Booking, person: _Person, t: int, by: str) -> None:
        """A newcomer's file, opened at the counter, gets the appointment."""
        with business_time(_utc(t)):
            recorded = self.service.link_appointment_to_case(
                booking.appointment_id,
                expected_version=booking.version,
                by=by,
                case_id=person.case_id,
            )
        self._booked(booking, "link_appointment_to_case", recorded)
        booking.case = person

    def _attended(self, booking: _Booking, t: int, by: str) -> None:
        with business_time(_utc(t)):
            recorded = self.service.record_attended(
                booking.appointment_id, expected_version=booking.version, by=by
            )
        self._ended(booking, "record_attended", recorded)
        tally = self.tallies[self.calendar.year_of(t)]
        tally.appointments_served += 1
        if booking.case is not None:
            tally.customers.add(f"c:{booking.case.case_id}")
        else:
            tally.customers.add(f"p:{booking.person_key}")

    def _no_show(self, booking: _Booking, t: int, by: str) -> None:
        with business_time(_utc(t)):
            recorded = self.service.record_no_show(
                booking.appointment_id, expected_version=booking.version, by=by
            )
        self._ended(booking, "record_no_show", recorded)
        self.tallies[self.calendar.year_of(t)].no_shows += 1

    def _ended(self, booking: _Booking, kind: str, recorded: AppointmentRecorded) -> None:
        # The person's open bookings are released; a linked file records the attendance.
        self._booked(booking, kind, recorded, extra=1 + (booking.case is not None))
        if booking.case is not None:
            booking.case.version += 1

    def _appointment_story(self, plan: _AppointmentPlan) -> _Story:
        """Booked, confirmed, then served at the counter or not turned up."""
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person: _Person | None = None
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

    def _customer(self, ts: int, identity: str) -> None:
        """Served in the year of ``ts`` (the report's definition of customers)."""
        self.tallies[self.calendar.year_of(ts)].customers.add(identity)

    # ----------------------------------------------------------------- stories

    def _story(self, plan: _Plan) -> _Story:
        if isinstance(plan, _ProcedurePlan):
            return self._procedure_story(plan)
        if isinstance(plan, _EntryPlan):
            return self._entry_story(plan)
        if isinstance(plan, _DeclarationPlan):
            return self._declaration_story(plan)
        if isinstance(plan, _InquiryPlan):
            return self._inquiry_story(plan)
        if isinstance(plan, _AppointmentPlan):
            return self._appointment_story(plan)
        return self._standalone_story(plan)

    def _at(self, rng: random.Random, day: int, after: int) -> int:
        """A business time on working day ``day``, later than ``after``."""
        ts = self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))
        if ts <= after:
            ts = after + 60 * rng.randint(1, 4)
        return ts

    def _soon(self, rng: random.Random, after: int) -> int:
        """Minutes after ``after``: the next step at the same desk."""
        return after + 60 * rng.randint(1, 4)

    def _day_of(self, ts: int) -> int:
        return self.calendar.last_on_or_before(_local_date(ts))

    def _caseworker(self, rng: random.Random) -> str:
        return rng.choice(self.caseworkers)

    def _procedure_story(self, plan: _ProcedurePlan) -> _Story:
        rng = random.Random(plan.seed)
        service = self.service
        worker = self._caseworker(rng)
        t = plan.start
        visit: _Booking | None = None
        booked_for: _Person | None = None
        if plan.visit_lead:
            # Booked days ahead; a newcomer's file is opened at the counter.
            if not plan.new_person:
                booked_for = self._person_for(plan, rng, t)
                booked_for.active += 1
            visit = self._book(
                rng,
                t,
                point=MAIN_POINT,
                topic=plan.topic,
                holds=self._holds(plan),
                person=booked_for,
                day=plan.receive_day,
                by=worker,
            )
            if visit is None:
                t = self._at(rng, plan.receive_day, t)
            else:
                t = self._soon(rng, t)
                yield t
                self._confirm(visit, t)
                t = self._arrival(rng, visit, t)
            yield t
            if visit is not None:
                self._check_in(visit, t, worker)
                t = self._soon(rng, t)
        if booked_for is not None:
            person = booked_for
        else:
            person = self._person_for(plan, rng, t)
            person.active += 1
        try:
            digital = plan.channel in DIGITAL_CHANNELS
            number = self._case(
                person,
                service.receive_procedure,
                t,
                PORTAL if digital else worker,
                channel=plan.channel,
                topic=plan.topic,
                legal_basis=plan.basis,
            )
            received_at = t
            self.received_by_year[self.calendar.year_of(t)] += 1
            self.tallies[self.calendar.year_of(t)].received[plan.channel] += 1
            self._customer(t, f"c:{person.case_id}")
            if visit is not None:
                t = self._soon(rng, t)
                if visit.case is None:
                    self._link(visit, person, t, worker)
                self._attended(visit, t, worker)
            fiction_visit: _Booking | None = None
            if plan.fiction_visit:
                # The caseworker books the certificate's appointment there and then.
                fiction_visit = self._book(
                    rng,
                    self._soon(rng, t),
                    point=MAIN_POINT,
                    topic="fiction_certificate",
                    holds="eat" if plan.fiction == "81_4" else "visa",
                    person=person,
                    day=plan.fiction_day,
                    by=worker,
                )
                if fiction_visit is not None:
                    t = self._soon(rng, t + 60)
                    self._confirm(fiction_visit, t)
            steps: list[tuple[int, str]] = []
            span = plan.decide_day - plan.receive_day
            steps.append((plan.receive_day + rng.randint(0, min(3, span)), "assign"))
            if span >= 4 and rng.random() < 0.18:
                steps.append((rng.randint(steps[0][0], plan.decide_day - 1), "request"))
            if plan.fiction is not None:
                steps.append((plan.fiction_day, "fiction"))
            steps.sort()
            certificate = 0
            valid_until = date.min
            on_sheet = 0
            for day, step in steps:
                if step == "fiction" and fiction_visit is not None:
                    t = self._arrival(rng, fiction_visit, t)
                else:
                    t = self._at(rng, max(day, self._day_of(t)), t)
                yield t
                if step == "assign":
                    self._case(
                        person,
                        service.assign_procedure,
                        t,
                        rng.choice(self.team_leads),
                        procedure_number=number,
                        assignee=worker,
                    )
                elif step == "request":
                    self._case(
                        person,
                        service.request_documents,
                        t,
                        worker,
                        procedure_number=number,
                        what=list(rng.choice(_DOCUMENT_REQUESTS)),
                        due_on=_local_date(t) + timedelta(days=rng.choice((14, 21, 28))),
                    )
                else:
                    assert plan.fiction is not None
                    if fiction_visit is not None:
                        self._check_in(fiction_visit, t, worker)
                        t = self._soon(rng, t)
                    valid_from = _local_date(t)
                    valid_until = until(valid_from, 3 if rng.random() < 0.8 else 6)
                    certificate = self._case(
                        person,
                        service.issue_fiction_certificate,
                        t,
                        worker,
                        kind=plan.fiction,
                        valid_from=valid_from,
                        valid_until=valid_until,
                        carrier_sheet_number=paper_number(rng, "F"),
                        procedure_number=number,
                    )
                    self.tallies[self.calendar.year_of(t)].fictions_issued += 1
                    self._customer(t, f"c:{person.case_id}")
                    if fiction_visit is not None:
                        t = self._soon(rng, t)
                        self._attended(fiction_visit, t, worker)
            decide_date = self.calendar.days[plan.decide_day]
            # Extended shortly before it runs out, for as long as the procedure is pending.
            while certificate and valid_until < decide_date:
                wanted = self.calendar.last_on_or_before(
                    valid_until - timedelta(days=rng.randint(2, 10))
                )
                t = self._at(rng, min(max(wanted, self._day_of(t)), plan.decide_day), t)
                yield t
                new_sheet = None
                if on_sheet >= MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET:
                    new_sheet, on_sheet = paper_number(rng, "F"), 0
                valid_until = add_months(valid_until, 3)
                self._case(
                    person,
                    service.extend_fiction_certificate,
                    t,
                    worker,
                    certificate_number=certificate,
                    valid_until=valid_until,
                    new_carrier_sheet_number=new_sheet,
                )
                on_sheet += 1
                self.tallies[self.calendar.year_of(t)].fictions_extended += 1
                self._customer(t, f"c:{person.case_id}")
            t = self._at(rng, plan.decide_day, t)
            yield t
            refused = plan.outcome == "refused"
            self._case(
                person,
                service.decide_procedure,
                t,
                rng.choice(self.team_leads) if refused else worker,
                procedure_number=number,
                outcome=plan.outcome,
                legal_basis=plan.decision_basis,
                reason=rng.choice(_REFUSAL_REASONS) if refused else None,
            )
            self._count_decision(plan, received_at, t)
            self._customer(t, f"c:{person.case_id}")
            eat = 0
            if plan.document is not None:
                eat, t = self._issue(
                    person, rng, self._soon(rng, t), worker, plan.document, plan, number
                )
            if certificate:
                t = self._soon(rng, t)
                self._case(
                    person,
                    service.end_fiction_certificate,
                    t,
                    worker,
                    certificate_number=certificate,
                    end_reason="withdrawal" if plan.outcome == "withdrawn" else "decision",
                )
            if plan.entitlement:
                t = self._soon(rng, t)
                self._case(person, service.issue_integration_course_entitlement, t, worker)
                self.tallies[self.calendar.year_of(t)].entitlements += 1
            if plan.obligation:
                t = self._soon(rng, t)
                self._case(person, service.impose_integration_course_obligation, t, worker)
                self.tallies[self.calendar.year_of(t)].obligations += 1
            t = self._at(rng, plan.decide_day + rng.choice((0, 0, 1, 2)), t)
            yield t
            self._case(person, service.close_procedure, t, worker, procedure_number=number)
            if eat:
                yield from self._eat_card(person, rng, t, worker, eat, plan.pickup_day)
        finally:
            person.active -= 1
        yield from self._maybe_leave(person, rng, t, worker)

    def _count_decision(self, plan: _ProcedurePlan, received_at: int, decided_at: int) -> None:
        year = self.calendar.year_of(decided_at)
        tally = self.tallies[year]
        tally.processed_channels[plan.channel] += 1
        tally.processed_outcomes[plan.outcome] += 1
        tally.processed_bases[plan.decision_basis or plan.basis or ""] += 1
        tally.days[(_local_date(decided_at) - _local_date(received_at)).days] += 1
        self.decided_pairs[(self.calendar.year_of(received_at), year)] += 1

    def _issue(
        self,
        person: _Person,
        rng: random.Random,
        t: int,
        worker: str,
        kind: ResidenceDocumentKind,
        plan: _ProcedurePlan | None,
        procedure_number: int | None,
    ) -> tuple[int, int]:
        """Issue a residence document and order an eAT's card; returns the eAT's number
        (0 for other documents) and the time of the last step."""
        valid_from = _local_date(t)
        months = plan.document_months if plan is not None else 12
        if kind == "eat":
            basis = plan.document_basis if plan is not None else "aufenthg-18b"
            number_on_card = eat_card_number(rng)
        elif kind == "duldung":
            basis = plan.document_basis if plan is not None else "aufenthg-60a"
            number_on_card = paper_number(rng, "D")
        else:
            basis = "asylg-55"
            number_on_card = paper_number(rng, "G")
        number = self._case(
            person,
            self.service.issue_residence_document,
            t,
            worker,
            kind=kind,
            legal_basis=basis,
            valid_from=valid_from,
            valid_until=until(valid_from, months),
            document_number=number_on_card,
            procedure_number=procedure_number,
        )
        self.tallies[self.calendar.year_of(t)].documents[kind] += 1
        self._customer(t, f"c:{person.case_id}")
        if kind != "eat":
            return 0, t
        t = self._soon(rng, t)
        self._case(person, self.service.order_eat_card, t, worker, residence_document_number=number)
        return number, t

    def _eat_card(
        self,
        person: _Person,
        rng: random.Random,
        t: int,
        worker: str,
        number: int,
        pickup_day: int = 0,
    ) -> _Story:
        """The Bundesdruckerei takes 4-6 weeks; the card is picked up days later, on
        ``pickup_day`` at a booked appointment where one is planned."""
        person.active += 1
        try:
            t = self._at(rng, self._day_of(t) + rng.randint(20, 30), t)
            yield t
            self._case(
                person,
                self.service.record_eat_card_arrived,
                t,
                worker,
                residence_document_number=number,
            )
            pickup: _Booking | None = None
            if pickup_day:
                # The office's letter says the card is there; the person books.
                t = self._soon(rng, t)
                yield t
                pickup = self._book(
                    rng,
                    t,
                    point=PICKUP_POINT,
                    topic="eat_pickup",
                    holds="eat",
                    person=person,
                    day=pickup_day,
                    by=PORTAL,
                )
            if pickup is not None:
                t = self._soon(rng, t)
                yield t
                self._confirm(pickup, t)
                t = self._arrival(rng, pickup, t)
                yield t
                self._check_in(pickup, t, worker)
                t = self._soon(rng, t)
            else:
                day = pickup_day or self._day_of(t) + rng.randint(1, 10)
                t = self._at(rng, day, t)
                yield t
            self._case(
                person,
                self.service.hand_over_eat_card,
                t,
                worker,
                residence_document_number=number,
            )
            if pickup is not None:
                self._attended(pickup, self._soon(rng, t), worker)
        finally:
            person.active -= 1

    def _maybe_leave(self, person: _Person, rng: random.Random, t: int, worker: str) -> _Story:
        """Now and then a person moves away or leaves, when nothing is under way."""
        if person.active or person.pool_index < 0 or rng.random() >= 0.004:
            return
        self._leave_pool(person)
        t = self._at(rng, self._day_of(t) + rng.randint(5, 40), t)
        yield t
        if person.active:
            return
        if rng.random() < 0.6:
            self._case(
                person,
                self.service.transfer_to_office,
                t,
                worker,
                to_office_id=rng.choice(_OTHER_OFFICES),
                reason="Umzug in den Zuständigkeitsbereich einer anderen Behörde.",
            )
        else:
            reason: ClosureReason = weighted(rng, (("left", 6), ("naturalised", 3), ("died", 1)))
            self._case(person, self.service.close_case, t, worker, closure_reason=reason)

    def _entry_story(self, plan: _EntryPlan) -> _Story:
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person = self._open(rng, t - 60 * rng.randint(2, 9), (18, 45), pooled=False)
        person.active += 1
        try:
            family = rng.random() < 0.6
            number = self._case(
                person,
                self.service.request_entry_consent,
                t,
                worker,
                legal_basis="aufenthv-31" if family else "aufenthg-81a",
            )
            self.tallies[self.calendar.year_of(t)].entry_procedures += 1
            t = self._at(rng, plan.request_day + rng.randint(5, 25), t)
            yield t
            if rng.random() < 0.12:
                self._case(
                    person,
                    self.service.refuse_entry_consent,
                    t,
                    rng.choice(self.team_leads),
                    entry_procedure_number=number,
                    reason="Voraussetzungen für die Zustimmung nicht nachgewiesen.",
                )
                return
            self._case(
                person,
                self.service.give_entry_consent,
                t,
                worker,
                entry_procedure_number=number,
                valid_until=_local_date(t) + timedelta(days=rng.choice((90, 120, 180))),
            )
        finally:
            person.active -= 1
        # After the visa, the person comes to apply for the first title.
        self.arrivals.append(person)

    def _inquiry_story(self, plan: _InquiryPlan) -> _Story:
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person = self._pooled_person(rng, t, new_share=0.15)
        person.active += 1
        try:
            number = self._case(person, self.service.receive_inquiry, t, worker, kind=plan.kind)
            t = self._at(rng, plan.answer_day, t)
            yield t
            self._case(person, self.service.answer_inquiry, t, worker, inquiry_number=number)
            self.tallies[self.calendar.year_of(t)].inquiries[plan.kind] += 1
        finally:
            person.active -= 1

    def _standalone_story(self, plan: _StandalonePlan) -> _Story:
        rng = random.Random(plan.seed)
        worker = self._caseworker(rng)
        t = plan.start
        person = self._pooled_person(rng, t, new_share=0.5)
        person.active += 1
        try:
            if plan.what == "eat":
                eat, t = self._issue(person, rng, t, worker, "eat", None, None)
                if eat:
                    yield from self._eat_card(person, rng, t, worker, eat)
            elif plan.what == "fiction":
                valid_from = _local_date(t)
                self._case(
                    person,
                    self.service.issue_fiction_certificate,
                    t,
                    worker,
                    kind="81_4",
                    valid_from=valid_from,
                    valid_until=until(valid_from, 3),
                    carrier_sheet_number=paper_number(rng, "F"),
                )
                self.tallies[self.calendar.year_of(t)].fictions_issued += 1
                self._customer(t, f"c:{person.case_id}")
            elif plan.what == "entitlement":
                self._case(person, self.service.issue_integration_course_entitlement, t, worker)
                self.tallies[self.calendar.year_of(t)].entitlements += 1
            else:
                self._case(person, self.service.impose_integration_course_obligation, t, worker)
                self.tallies[self.calendar.year_of(t)].obligations += 1
        finally:
            person.active -= 1

    def _declaration_story(self, plan: _DeclarationPlan) -> _Story:
        """Submitted online, fee paid online, ability checked, signed in person."""
        rng = random.Random(plan.seed)
        service = self.service
        worker = self._caseworker(rng)
        t = plan.start
        submitted_on = _local_date(t)
        stay_from = submitted_on + timedelta(days=rng.randint(20, 80))
        recorded = service.submit_commitment_declaration(
            office_id=self.office_id,
            guarantor=self._guarantor(rng, submitted_on),
            invited_person=self._invited(rng, submitted_on),
            purpose=weighted(rng, _VISIT_PURPOSES),
            stay_from=stay_from,
            stay_until=stay_from + timedelta(days=rng.randint(10, 89)),
            monthly_net_income_cents=rng.randrange(180_000, 520_000, 100),
            assets_cents=rng.choice((None, None, rng.randrange(500_000, 5_000_000, 1000))),
            at=_utc(t),
        )
        declaration_id = recorded.declaration_id
        version = recorded.version
        self._counted("submit_commitment_declaration", recorded.version + 1)
        if plan.handover_day is None and rng.random() < 0.3:
            t = self._at(rng, plan.check_day, t)
            yield t
            self._declaration(
                service.withdraw_declaration,
                declaration_id,
                version,
                t,
                worker,
                reason="Besuch abgesagt.",
            )
            return
        draw = rng.random()
        # Now and then the first attempt fails; rarely both attempts end up paid.
        attempts = 1 if draw < 0.94 else 2
        late_surplus = draw >= 0.99
        transactions: list[str] = []
        fee_paid = False
        for attempt in range(attempts):
            t = self._soon(rng, t) if attempt == 0 else t + 60 * rng.randint(10, 90)
            yield t
            started = service.start_payment(
                declaration_id,
                method=weighted(rng, _PAYMENT_METHODS),
                provider=self.platform,
                notification_url=_NOTIFY_URL,
                return_url=_RETURN_URL,
                at=_utc(t),
            )
            self._counted("start_payment", started.version - version + 1)
            version = started.version
            transactions.append(started.result.payment.transaction_id)
            t = self._soon(rng, t)
            yield t
            outcome: Literal["paid", "failed"] = "paid" if attempt == attempts - 1 else "failed"
            version = self._settle(transactions[-1], outcome, t, version)
            if outcome == "paid" and not fee_paid:
                # The payment that settles the fee (FeePaid); a later one is surplus.
                fee_paid = True
                self.tallies[
                    self.calendar.year_of(t)
                ].fees_cents += COMMITMENT_DECLARATION_FEE_CENTS
        if late_surplus:
            # The declined first attempt is reported paid after all: money twice.
            t = self._soon(rng, t)
            yield t
            version = self._settle(transactions[0], "paid", t, version)
            t = self._at(rng, self._day_of(t) + 1, t)
            yield t
            version = self._declaration(
                service.refund_payment,
                declaration_id,
                version,
                t,
                worker,
                reason="Doppelt gezahlt; Erstattung der zweiten Zahlung.",
                payment_number=1,
            )
        t = self._at(rng, max(plan.check_day, self._day_of(t)), t)
        yield t
        if plan.handover_day is None or rng.random() < 0.04:
            version = self._declaration(
                service.check_ability_to_pay,
                declaration_id,
                version,
                t,
                worker,
                passed=False,
                reason="Einkommensnachweise unvollständig.",
            )
            if plan.handover_day is None:
                return
            t = self._at(rng, min(self._day_of(t) + rng.randint(1, 3), plan.handover_day), t)
            yield t
            version = self._declaration(
                service.check_ability_to_pay,
                declaration_id,
                version,
                t,
                worker,
                passed=True,
                reason="Nachweise nachgereicht.",
            )
        else:
            version = self._declaration(
                service.check_ability_to_pay, declaration_id, version, t, worker, passed=True
            )
        t = self._soon(rng, t)
        handover = self._at(rng, plan.handover_day, t)
        version = self._declaration(
            service.set_pickup_appointment,
            declaration_id,
            version,
            t,
            worker,
            appointment_at=_utc(handover),
        )
        yield handover
        self._declaration(service.hand_over_declaration, declaration_id, version, handover, worker)
        self.tallies[self.calendar.year_of(handover)].declarations += 1
        self._customer(handover, f"d:{declaration_id}")

    def _settle(
        self, transaction_id: str, outcome: Literal["paid", "failed"], t: int, version: int
    ) -> int:
        settled = self.service.settle_payment(
            provider=self.platform.name,
            transaction_id=transaction_id,
            outcome=outcome,
            amount_cents=COMMITMENT_DECLARATION_FEE_CENTS,
            currency="EUR",
            method=None,
            occurred_at=_utc(t),
        )
        self._counted("settle_payment", settled.version - version)
        return settled.version

    def _declaration(
        self,
        command: Callable[..., DeclarationRecorded[Any]],
        declaration_id: UUID,
        version: int,
        t: int,
        by: str,
        **fields: Any,
    ) -> int:
        recorded = command(declaration_id, expected_version=version, by=by, at=_utc(t), **fields)
        self._counted(command.__name__, recorded.version - version)
        return recorded.version

    def _counted(self, kind: str, events: int) -> None:
        self.commands += 1
        self.events += events
        self.commands_by_kind[kind] += 1

    # ------------------------------------------------------------------ people

    def _case(
        self,
        person: _Person,
        command: Callable[..., Recorded[T]],
        t: int,
        by: str,
        **fields: Any,
    ) -> T:
        recorded = command(
            person.case_id, expected_version=person.version, by=by, at=_utc(t), **fields
        )
        self._counted(command.__name__, recorded.version - person.version)
        person.version = recorded.version
        return recorded.result

    def _person_for(self, plan: _ProcedurePlan, rng: random.Random, t: int) -> _Person:
        if plan.new_person:
            if self.arrivals and plan.topic in ("family_reunion", "first_title_after_entry"):
                person = self.arrivals.popleft()
                self._join_pool(person, rng)
                return person
            ages = (0, 0) if plan.topic == "child_born_in_germany" else (18, 50)
            return self._open(rng, t - 60 * rng.randint(2, 9), ages, pooled=True)
        return self._pooled_person(rng, t, new_share=0.3)

    def _pooled_person(self, rng: random.Random, t: int, *, new_share: float) -> _Person:
        """Someone the office knows: mostly a returning person, else a resident whose
        file was opened years ago (the ``Opened`` lies in an earlier year)."""
        if self.pool and (len(self.pool) >= self.pool_cap or rng.random() >= new_share):
            return self.pool[rng.randrange(len(self.pool))]
        day = max(0, self._day_of(t) - rng.randint(250, 2500))
        opened = self.calendar.moment(day, rng.randint(OFFICE_OPENS, OFFICE_LAST_START))
        return self._open(rng, opened, (20, 60), pooled=True)

    def _open(self, rng: random.Random, t: int, ages: tuple[int, int], *, pooled: bool) -> _Person:
        nationality = weighted(rng, _NATIONS)
        given_names, surnames = NAMES[nationality]
        today = _local_date(t)
        if ages == (0, 0):
            born = today - timedelta(days=rng.randint(10, 120))
        else:
            born = add_months(today, -12 * rng.randint(*ages)) - timedelta(days=rng.randint(1, 364))
        master_data = MasterData(
            surname=rng.choice(surnames),
            given_names=" ".join(rng.sample(given_names, 2 if rng.random() < 0.2 else 1)),
            date_of_birth=born,
            nationality=nationality,
            passport_number=passport_number(rng, nationality),
            address=f"{rng.choice(STREETS)} {rng.randint(1, 140)}, 99999 Simulationsstadt",
        )
        recorded = self.service.open_case(
            office_id=self.office_id,
            master_data=master_data,
            by=self._caseworker(rng),
            at=_utc(t),
        )
        self._counted("open_case", recorded.version + 1)  # and the claim on its file number
        self.case_files += 1
        person = _Person(
            recorded.case_id,
            recorded.version,
            nationality,
            surname=master_data.surname,
            given_names=master_data.given_names,
            born=born,
        )
        if pooled:
            self._join_pool(person, rng)
        return person

    def _join_pool(self, person: _Person, rng: random.Random) -> None:
        if len(self.pool) >= self.pool_cap:
            # Someone the office no longer sees; their file stays as it is.
            self._leave_pool(self.pool[rng.randrange(len(self.pool))])
        person.pool_index = len(self.pool)
        self.pool.append(person)

    def _leave_pool(self, person: _Person) -> None:
        last = self.pool.pop()
        if last is not person:
            self.pool[person.pool_index] = last
            last.pool_index = person.pool_index
        person.pool_index = -1

    def _guarantor(self, rng: random.Random, today: date) -> Guarantor:
        nationality = weighted(rng, (("DEU", 55), *_NATIONS))
        given_names, surnames = NAMES["TUR" if nationality == "DEU" else nationality]
        return Guarantor(
            surname=rng.choice(surnames),
            given_names=rng.choice(given_names),
            date_of_birth=add_months(today, -12 * rng.randint(25, 70)),
            address=f"{rng.choice(STREETS)} {rng.randint(1, 140)}, 99999 Simulationsstadt",
            nationality=nationality,
            id_document_number=paper_number(rng, "L"),
        )

    def _invited(self, rng: random.Random, today: date) -> InvitedPerson:
        nationality = weighted(rng, _NATIONS)
        given_names, surnames = NAMES[nationality]
        return InvitedPerson(
            surname=rng.choice(surnames),
            given_names=rng.choice(given_names),
            date_of_birth=add_months(today, -12 * rng.randint(18, 80)),
            nationality=nationality,
            passport_number=passport_number(rng, nationality),
        )


POOL_PER_SCALE: Final = 45_000
"""Known people who come back with further procedures, at scale 1 (a city of this size
sees some 48,000 customers a year)."""
_CASE_CACHE_PER_SCALE: Final = 60_000


def suggested_case_cache(scale: float, *, years: int = 1, growth: float = 0.0) -> int:
    """A service case cache that holds the files a simulation keeps coming back to.

    The returning people and the year's newcomers: with them in memory, commands do not
    reload case files from the store (about twice as fast); a case file takes some 5 KB.
    """
    factor = scale * (1.0 + growth) ** max(years - 1, 0)
    return max(1000, round(_CASE_CACHE_PER_SCALE * factor))


def simulate(
    service: AkteService,
    profile: OfficeProfile,
    *,
    seed: int,
    year: int | None = None,
    years: int = 1,
    scale: float = 1.0,
    office_id: str = DEFAULT_OFFICE_ID,
    growth: float = 0.0,
    progress: Callable[[SimulationProgress], None] | None = None,
) -> SimulationResult:
    """Simulate ``years`` consecutive years of ``office_id`` from ``year`` (default: the
    profile's) through the service's commands; returns the ground truth per year.

    Business time must lie in the past (the service refuses anything else), so the last
    simulated year must have ended; its January after is written as far as it has
    passed. ``progress`` is called every couple of thousand commands.
    """
    if years < 1:
        raise SimulationError("simulate at least one year")
    if not 0 < scale <= 100:
        raise SimulationError("the scale must lie between 0 and 100")
    if not -0.5 < growth < 1.0:
        raise SimulationError("the growth per year must lie between -0.5 and 1")
    first_year = profile.year if year is None else year
    try:
        setup = service.appointment_setup
    except AppointmentsNotConfigured:
        raise SimulationError(
            "appointments are not configured in this service (AKTE_APPOINTMENT_SECRET)"
        ) from None
    simulator = _Simulator(
        service,
        profile,
        seed=seed,
        first_year=first_year,
        years=years,
        scale=scale,
        growth=growth,
        office_id=office_id,
        progress=progress,
        now=service.clock(),
    )
    # The run's mail goes to a mailbox in memory, whatever mail server is configured.
    service.configure_appointments(replace(setup, mailer=_SimulatedMailbox()))
    try:
        result = simulator.run()
    finally:
        service.configure_appointments(setup)
    logger.info(
        "simulated %d year(s) of office %s: %d commands, %d events in %.1f s",
        years,
        office_id,
        result.commands,
        result.events,
        result.seconds,
    )
    return result


__all__ = [
    "DEFAULT_OFFICE_ID",
    "OfficeProfile",
    "SimulationError",
    "SimulationProgress",
    "SimulationResult",
    "easter_sunday",
    "is_working_day",
    "load_profile",
    "national_holidays",
    "scaled",
    "simulate",
    "suggested_case_cache",
    "targets_for",
]
