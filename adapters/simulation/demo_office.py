"""A demo office: a few hundred fictitious case files with varied histories.

Everything is written through the service's commands, never as rows, so the demo obeys
the same rules as real use and doubles as a broad smoke test of the domain. Business
times (``at``) lie on weekdays of the last 18 months, office hours in UTC, each case's
history moving forward in time; the service's clock gives the recorded time. A story
that would need a day after yesterday simply stops there, which leaves the recent cases
half-way through, as in a real office.

The same seed gives the same office: each case draws from its own ``random.Random``
seeded from the office seed and the case's position, and its times are counted in
business days back from the moment of loading, so two loads at the same clock time are
identical (case ids aside), and loads at different times differ only by that shift.
Names are drawn from short lists, file numbers start with ``DEMO-``; no real person.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVar
from uuid import UUID

from adapters.simulation.fictitious_people import NAMES as _NAMES
from adapters.simulation.fictitious_people import STREETS as _STREETS
from adapters.simulation.fictitious_people import add_months as _add_months
from adapters.simulation.fictitious_people import eat_card_number as _eat_card_number
from adapters.simulation.fictitious_people import paper_number as _paper_number
from adapters.simulation.fictitious_people import passport_number as _passport_number
from adapters.simulation.fictitious_people import until as _until
from adapters.simulation.fictitious_people import weighted as _weighted
from domain.case_file import MasterData
from domain.values import (
    MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET,
    Channel,
    ClosureReason,
    CounterpartKind,
    DecisionOutcome,
    Direction,
    DocumentSource,
    FictionKind,
    InquiryKind,
    ResidenceDocumentEndReason,
    ResidenceDocumentKind,
)
from service import AkteService, Recorded

T = TypeVar("T")

DEFAULT_OFFICE_ID: Final = "abh-musterstadt"
WINDOW_BUSINESS_DAYS: Final = 390
"""About 18 months of weekdays, ending the day before the store's clock says now."""
_OPENING_SPAN: Final = 0.82
"""Cases open over the first 82% of the window, so even the newest have some history."""

CASEWORKERS: Final = tuple(f"sb-{n:02d}" for n in range(1, 9))
TEAM_LEAD: Final = "tl-01"
PORTAL: Final = "portal"
"""Digital channels arrive through the online service, not through a person."""
OTHER_OFFICES: Final = ("abh-beispielstadt", "abh-landkreis-muster", "abh-neustadt-am-see")

_DAY_STARTS: Final = 7 * 60 + 15
_DAY_ENDS: Final = 15 * 60 + 45
"""Office hours 08:15-16:45 Berlin winter time, written in UTC to stay unambiguous."""


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`load_demo_office` wrote; ``existing_events`` > 0 means it wrote nothing."""

    cases: int
    events: int
    case_ids: tuple[UUID, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    existing_events: int = 0

    @property
    def skipped(self) -> bool:
        return self.existing_events > 0


# --------------------------------------------------------------- vocabulary

_CHANNELS: Final[tuple[tuple[Channel, int], ...]] = (
    ("contact_form", 44),
    ("online_application", 34),
    ("appointment", 14),
    ("mail", 8),
)
_SOURCE_FOR_CHANNEL: Final[dict[Channel, DocumentSource]] = {
    "contact_form": "contact_form",
    "online_application": "contact_form",
    "appointment": "scan",
    "mail": "mail",
}
_DOCUMENT_SHAPES: Final[dict[str, tuple[int, int]]] = {
    # kind: (typical pages low, high)
    "application_form": (2, 6),
    "passport_copy": (1, 3),
    "biometric_photo": (1, 1),
    "enrolment_certificate": (1, 2),
    "proof_of_funds": (1, 4),
    "health_insurance": (1, 2),
    "rental_contract": (3, 12),
    "employment_contract": (3, 10),
    "degree_certificate": (1, 4),
    "marriage_certificate": (1, 3),
    "birth_certificate": (1, 2),
    "language_certificate": (1, 2),
    "salary_statements": (3, 6),
    "pension_record": (4, 12),
    "bamf_decision": (6, 30),
    "court_decision": (4, 20),
    "power_of_attorney": (1, 2),
    "transcript_of_records": (1, 5),
}
_MEDIA_TYPES: Final = (("application/pdf", 82), ("image/jpeg", 12), ("image/png", 6))

_NOTES: Final = (
    "Vorsprache am Schalter; Unterlagen vollständig.",
    "Sachstandsanfrage telefonisch beantwortet.",
    "Biometrische Daten erfasst, Unterschrift geleistet.",
    "Wiedervorlage in vier Wochen.",
    "Dolmetscher für den nächsten Termin erforderlich.",
    "Rückruf erbeten; Nachricht hinterlassen.",
    "Termin wegen Krankheit abgesagt, neuer Termin vergeben.",
    "Unterlagen per Kontaktformular nachgereicht.",
    "Gebühr bezahlt.",
    "Hinweis auf Mitwirkungspflichten (§ 82 AufenthG) erteilt.",
)
_REFUSALS: Final = (
    "Lebensunterhalt nicht gesichert (§ 5 Abs. 1 Nr. 1 AufenthG).",
    "Passpflicht nicht erfüllt (§ 3 AufenthG).",
    "Ausreichender Wohnraum nicht nachgewiesen (§ 29 Abs. 1 Nr. 2 AufenthG).",
    "Zweck des Aufenthalts nicht mehr erreichbar.",
    "Erforderliche Unterlagen trotz Aufforderung nicht vorgelegt.",
)
_AUTHORITIES: Final = {
    "bamf": "Bundesamt für Migration und Flüchtlinge",
    "ba": "Bundesagentur für Arbeit",
    "registry": "Standesamt Musterstadt",
    "naturalisation": "Einbürgerungsbehörde Musterstadt",
    "embassy": "Deutsche Botschaft (Visastelle)",
    "jobcentre": "Jobcenter Musterstadt",
}
_COURTS: Final = ("Verwaltungsgericht Musterstadt", "Oberverwaltungsgericht Beispielland")
_LAWYERS: Final = (
    "Kanzlei Beispiel & Partner",
    "Rechtsanwälte Muster und Kollegen",
    "Kanzlei am Probepark",
)

# Who comes to the office for what, roughly: (nationality, weight).
_STUDENT_NATIONS: Final = (
    *(("IND", 30), ("CHN", 18), ("IRN", 9), ("TUR", 9), ("NGA", 9)),
    *(("USA", 5), ("BRA", 5), ("SYR", 4), ("UKR", 4)),
)
_FAMILY_NATIONS: Final = (
    *(("TUR", 22), ("SYR", 18), ("AFG", 12), ("IND", 12), ("NGA", 8)),
    *(("XXA", 5), ("UKR", 6), ("IRN", 6), ("BRA", 4)),
)
_SKILLED_NATIONS: Final = (
    *(("IND", 34), ("TUR", 14), ("BRA", 10), ("CHN", 10), ("IRN", 8)),
    *(("USA", 8), ("NGA", 8), ("UKR", 4)),
)
_TOLERATED_NATIONS: Final = (("AFG", 26), ("NGA", 18), ("IRN", 12), ("TUR", 12), ("XXA", 10))
_ASYLUM_NATIONS: Final = (("SYR", 30), ("AFG", 26), ("TUR", 14), ("IRN", 10), ("XXA", 8))
_VISA_FREE_NATIONS: Final = (("USA", 3), ("BRA", 1))
_RESIDENT_NATIONS: Final = (
    *(("TUR", 26), ("IND", 14), ("SYR", 14), ("CHN", 8), ("NGA", 8)),
    *(("USA", 6), ("BRA", 6), ("UKR", 6)),
)


# ----------------------------------------------------------------- calendar


class _OutOfTime(Exception):
    """The story's next step would lie after yesterday: the case's history ends here."""


class _Calendar:
    """The weekdays of the demo window, oldest first, ending the day before ``now``."""

    def __init__(self, now: datetime, business_days: int) -> None:
        days: list[date] = []
        day = now.astimezone(UTC).date() - timedelta(days=1)
        while len(days) < business_days:
            if day.weekday() < 5:
                days.append(day)
            day -= timedelta(days=1)
        self.days = days[::-1]

    def __len__(self) -> int:
        return len(self.days)

    def moment(self, day: int, minute: int) -> datetime:
        return datetime.combine(self.days[day], time(minute // 60, minute % 60), tzinfo=UTC)

    def first_day_on_or_after(self, target: date) -> int:
        return bisect.bisect_left(self.days, target)


# --------------------------------------------------------------- one case


@dataclass
class _Office:
    service: AkteService
    calendar: _Calendar
    office_id: str
    counts: Counter[str] = field(default_factory=Counter)
    events: int = 0


class _Case:
    """Writes one case file's history through the service, moving forward in time."""

    def __init__(
        self, office: _Office, rng: random.Random, *, index: int, day: int, caseworker: str
    ) -> None:
        self.office = office
        self.service = office.service
        self.rng = rng
        self.index = index
        self.day = day
        self.minute = rng.randint(_DAY_STARTS, _DAY_STARTS + 150)
        self.caseworker = caseworker
        self.case_id: UUID | None = None
        self.version = 0
        self.nationality = ""
        self.open_procedures: set[int] = set()
        self.current_documents: dict[int, ResidenceDocumentKind] = {}
        self.open_fictions: set[int] = set()
        self.status = "active"

    # -- time

    def _step(self, after: tuple[int, int]) -> datetime:
        days = self.rng.randint(*after)
        if days == 0:
            self.minute += self.rng.randint(2, 30)
            if self.minute > _DAY_ENDS:
                days = 1
        if days > 0:
            self.day += days
            self.minute = self.rng.randint(_DAY_STARTS, _DAY_ENDS - 90)
        if self.day >= len(self.office.calendar):
            raise _OutOfTime
        return self.office.calendar.moment(self.day, self.minute)

    @property
    def today(self) -> date:
        return self.office.calendar.days[min(self.day, len(self.office.calendar) - 1)]

    def within(self, target: date) -> bool:
        """Whether ``target`` lies inside the window, so a story may wait for it."""
        return target <= self.office.calendar.days[-1]

    def wait_until(self, target: date) -> None:
        """Move on to the first business day on or after ``target`` (never back)."""
        day = self.office.calendar.first_day_on_or_after(target)
        if day >= len(self.office.calendar):
            raise _OutOfTime
        if day > self.day:
            self.day = day
            self.minute = self.rng.randint(_DAY_STARTS, _DAY_STARTS + 240)

    def chance(self, probability: float) -> bool:
        return self.rng.random() < probability

    def pick(self, options: Sequence[T]) -> T:
        return self.rng.choice(options)

    # -- commands

    def do(
        self,
        command: Callable[..., Recorded[T]],
        *,
        after: tuple[int, int] = (0, 0),
        at: datetime | None = None,
        by: str | None = None,
        **fields: Any,
    ) -> T:
        """Run one service command on this case at ``at`` or at the next business time."""
        if self.case_id is None:
            raise RuntimeError("open the case file first")
        if at is None:
            at = self._step(after)
        recorded = command(
            self.case_id,
            expected_version=self.version,
            by=by or self.caseworker,
            at=at,
            **fields,
        )
        self.version = recorded.version
        self.office.events += 1
        self.office.counts[command.__name__] += 1
        return recorded.result

    def open(self, nations: Sequence[tuple[str, int]], ages: tuple[int, int]) -> None:
        rng = self.rng
        at = self._step((0, 0))
        nationality = _weighted(rng, nations)
        given_names, surnames = _NAMES[nationality]
        born = _add_months(at.date(), -12 * rng.randint(*ages)) - timedelta(
            days=rng.randint(1, 364)
        )
        address = (
            f"{rng.choice(_STREETS)} {rng.randint(1, 120)}, 99999 Musterstadt"
            if rng.random() < 0.9
            else None
        )
        master_data = MasterData(
            surname=rng.choice(surnames),
            given_names=" ".join(rng.sample(given_names, 2 if rng.random() < 0.2 else 1)),
            date_of_birth=born,
            nationality=nationality,
            passport_number=_passport_number(rng, nationality),
            address=address,
        )
        recorded = self.service.open_case(
            office_id=self.office.office_id,
            master_data=master_data,
            by=self.caseworker,
            reference=f"DEMO-{at.year}-{self.index + 1:05d}",
            at=at,
        )
        self.case_id = recorded.case_id
        self.version = recorded.version
        self.nationality = nationality
        self.office.events += 2  # the case file and the claim on its file number
        self.office.counts["open_case"] += 1

    def channel(self) -> Channel:
        return _weighted(self.rng, _CHANNELS)

    def receive(
        self,
        topic: str,
        legal_basis: str | None = None,
        *,
        channel: Channel | None = None,
        after: tuple[int, int] = (0, 0),
        attach: Sequence[str] = (),
    ) -> int:
        """A procedure arrives, with the documents that came with it."""
        channel = channel or self.channel()
        digital = channel in ("contact_form", "online_application")
        number = self.do(
            self.service.receive_procedure,
            after=after,
            by=PORTAL if digital else None,
            channel=channel,
            topic=topic,
            legal_basis=legal_basis,
        )
        self.office.counts[f"channel {channel}"] += 1
        self.open_procedures.add(number)
        for kind in attach:
            self.attach(kind, source=_SOURCE_FOR_CHANNEL[channel], by=PORTAL if digital else None)
        return number

    def attach(
        self,
        kind: str,
        *,
        source: DocumentSource = "scan",
        after: tuple[int, int] = (0, 0),
        by: str | None = None,
    ) -> int:
        rng = self.rng
        low, high = _DOCUMENT_SHAPES[kind]
        pages = rng.randint(low, high)
        media_type = _weighted(rng, _MEDIA_TYPES) if pages == 1 else "application/pdf"
        return self.do(
            self.service.attach_document,
            after=after,
            by=by,
            kind=kind,
            sha256=f"{rng.getrandbits(256):064x}",
            size_bytes=pages * rng.randint(60_000, 420_000),
            media_type=media_type,
            page_count=pages,
            source=source,
        )

    def assign(self, number: int, *, after: tuple[int, int] = (1, 4)) -> None:
        self.do(
            self.service.assign_procedure,
            after=after,
            by=TEAM_LEAD,
            procedure_number=number,
            assignee=self.caseworker,
        )

    def request_documents(
        self, number: int, what: list[str], *, after: tuple[int, int] = (1, 6)
    ) -> None:
        at = self._step(after)
        self.do(
            self.service.request_documents,
            at=at,
            procedure_number=number,
            what=what,
            due_on=at.date() + timedelta(days=self.rng.choice((14, 21, 28))),
        )

    def decide(
        self,
        number: int,
        outcome: DecisionOutcome,
        legal_basis: str | None = None,
        *,
        reason: str | None = None,
        after: tuple[int, int] = (2, 10),
    ) -> None:
        if outcome == "refused" and reason is None:
            reason = self.pick(_REFUSALS)
        self.do(
            self.service.decide_procedure,
            after=after,
            # Refusals are signed by the team lead (four-eyes principle).
            by=TEAM_LEAD if outcome == "refused" else None,
            procedure_number=number,
            outcome=outcome,
            legal_basis=legal_basis,
            reason=reason,
        )
        self.open_procedures.discard(number)
        self.office.counts[f"decided {outcome}"] += 1

    def close_procedure(self, number: int, *, after: tuple[int, int] = (0, 3)) -> None:
        self.do(self.service.close_procedure, after=after, procedure_number=number)

    def issue(
        self,
        kind: ResidenceDocumentKind,
        legal_basis: str,
        months: int,
        *,
        procedure: int | None = None,
        after: tuple[int, int] = (0, 0),
    ) -> tuple[int, date]:
        """Issue a residence document from today; returns its number and last valid day."""
        prefix = {"duldung": "D", "aufenthaltsgestattung": "G"}
        at = self._step(after)
        valid_until = _until(at.date(), months)
        number = self.do(
            self.service.issue_residence_document,
            at=at,
            kind=kind,
            legal_basis=legal_basis,
            valid_from=at.date(),
            valid_until=valid_until,
            document_number=(
                _eat_card_number(self.rng)
                if kind == "eat"
                else _paper_number(self.rng, prefix[kind])
            ),
            procedure_number=procedure,
        )
        self.current_documents[number] = kind
        self.office.counts[f"issued {kind}"] += 1
        return number, valid_until

    def extend(
        self,
        number: int,
        valid_until: date,
        *,
        reason: str | None = None,
        after: tuple[int, int] = (0, 0),
    ) -> date:
        self.do(
            self.service.extend_residence_document,
            after=after,
            residence_document_number=number,
            valid_until=valid_until,
            reason=reason,
        )
        return valid_until

    def end_document(
        self,
        number: int,
        end_reason: ResidenceDocumentEndReason,
        *,
        reason: str | None = None,
        after: tuple[int, int] = (0, 0),
    ) -> None:
        self.do(
            self.service.end_residence_document,
            after=after,
            residence_document_number=number,
            end_reason=end_reason,
            reason=reason,
        )
        del self.current_documents[number]

    def eat_card(self, number: int) -> None:
        """Biometrics taken, card ordered from the Bundesdruckerei, arrived, handed over."""
        self.do(self.service.order_eat_card, after=(0, 0), residence_document_number=number)
        self.do(
            self.service.record_eat_card_arrived, after=(15, 30), residence_document_number=number
        )
        if self.chance(0.2):
            pickup = self.receive("eat_pickup", channel="contact_form", after=(0, 3))
            self.decide(pickup, "granted", after=(0, 2))
            self.close_procedure(pickup)
        self.do(self.service.hand_over_eat_card, after=(1, 12), residence_document_number=number)

    def new_passport_and_transfer(self, eat: int) -> None:
        """The person got a new passport: new number on file, the title moves to a new card."""
        topic = "lost_document" if self.chance(0.3) else "transfer_eat_new_passport"
        number = self.receive(topic, after=(10, 60), attach=("passport_copy",))
        self.assign(number)
        self.do(
            self.service.correct_master_data,
            after=(1, 5),
            corrections={"passport_number": _passport_number(self.rng, self.nationality)},
            reason="Neuer Pass vorgelegt.",
        )
        self.do(
            self.service.transfer_eat_to_new_passport,
            residence_document_number=eat,
            new_card_number=_eat_card_number(self.rng),
        )
        self.decide(number, "granted", after=(0, 0))
        self.do(self.service.record_eat_card_arrived, after=(15, 30), residence_document_number=eat)
        self.do(self.service.hand_over_eat_card, after=(1, 10), residence_document_number=eat)
        self.close_procedure(number)

    def fiction(
        self,
        kind: FictionKind,
        months: int,
        *,
        procedure: int | None,
        after: tuple[int, int] = (0, 0),
    ) -> tuple[int, date, str]:
        at = self._step(after)
        valid_from = at.date()
        valid_until = _until(valid_from, months)
        sheet = _paper_number(self.rng, "F")
        number = self.do(
            self.service.issue_fiction_certificate,
            at=at,
            kind=kind,
            valid_from=valid_from,
            valid_until=valid_until,
            carrier_sheet_number=sheet,
            procedure_number=procedure,
        )
        self.open_fictions.add(number)
        self.office.counts[f"fiction {kind}"] += 1
        return number, valid_until, sheet

    def extend_fiction(
        self, number: int, valid_until: date, extensions_on_sheet: int, months: int
    ) -> tuple[date, int]:
        """Extend shortly before expiry; a full carrier sheet is replaced by a new one."""
        self.wait_until(valid_until - timedelta(days=self.rng.randint(2, 12)))
        new_sheet = None
        if extensions_on_sheet >= MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET:
            new_sheet = _paper_number(self.rng, "F")
            extensions_on_sheet = 0
            self.office.counts["fiction new carrier sheet"] += 1
        new_until = _add_months(valid_until, months)
        self.do(
            self.service.extend_fiction_certificate,
            certificate_number=number,
            valid_until=new_until,
            new_carrier_sheet_number=new_sheet,
        )
        return new_until, extensions_on_sheet + 1

    def end_fiction(self, number: int, *, withdrawn: bool = False) -> None:
        self.do(
            self.service.end_fiction_certificate,
            certificate_number=number,
            end_reason="withdrawal" if withdrawn else "decision",
        )
        self.open_fictions.discard(number)

    def letter(
        self,
        direction: Direction,
        counterpart_kind: CounterpartKind,
        counterpart: str,
        subject: str,
        *,
        attachments: Sequence[int] = (),
        after: tuple[int, int] = (0, 5),
    ) -> None:
        self.do(
            self.service.record_correspondence,
            after=after,
            direction=direction,
            counterpart_kind=counterpart_kind,
            counterpart_name=counterpart,
            subject=subject,
            attachment_numbers=list(attachments),
        )

    def note(self, *, after: tuple[int, int] = (0, 3)) -> None:
        self.do(self.service.add_note, after=after, text=self.pick(_NOTES))

    def inquiry(self, kind: InquiryKind, *, answer: bool = True) -> None:
        authority = "registry" if kind == "civil_registry" else "naturalisation"
        subject = (
            "Anfrage zur Anmeldung der Eheschließung"
            if kind == "civil_registry"
            else "Anfrage zum aufenthaltsrechtlichen Status (Einbürgerungsverfahren)"
        )
        self.letter("received", "authority", _AUTHORITIES[authority], subject, after=(5, 40))
        number = self.do(self.service.receive_inquiry, kind=kind)
        self.office.counts[f"inquiry {kind}"] += 1
        if answer:
            self.do(self.service.answer_inquiry, after=(1, 8), inquiry_number=number)
            self.letter("sent", "authority", _AUTHORITIES[authority], "Auskunft erteilt.")

    def integration_course(self, *, obligation: bool) -> None:
        self.do(self.service.issue_integration_course_entitlement, after=(0, 1))
        if obligation:
            self.do(self.service.impose_integration_course_obligation, after=(0, 0))

    def entry_consent(self, legal_basis: str, *, refuse: bool) -> bool:
        """A pre-approval for a visa; returns whether consent was given."""
        number = self.do(self.service.request_entry_consent, legal_basis=legal_basis)
        counterpart = "ba" if legal_basis == "aufenthg-81a" else "embassy"
        self.letter(
            "sent",
            "authority",
            _AUTHORITIES[counterpart],
            "Beteiligung im Visumverfahren",
            after=(0, 2),
        )
        if refuse:
            self.do(
                self.service.refuse_entry_consent,
                after=(5, 20),
                by=TEAM_LEAD,
                entry_procedure_number=number,
                reason="Voraussetzungen der Beschäftigung nicht nachgewiesen.",
            )
            self.office.counts["entry consent refused"] += 1
            return False
        at = self._step((3, 15))
        self.do(
            self.service.give_entry_consent,
            at=at,
            entry_procedure_number=number,
            valid_until=at.date() + timedelta(days=self.rng.choice((90, 120, 180))),
        )
        self.office.counts["entry consent given"] += 1
        return True

    def wrap_up(self) -> None:
        """Withdraw what is still open, so the file can be closed or transferred."""
        for number in sorted(self.open_procedures):
            self.decide(number, "withdrawn", after=(0, 2))
            self.close_procedure(number)
        for number in sorted(self.open_fictions):
            self.end_fiction(number, withdrawn=True)

    def transfer(self) -> None:
        number = self.receive("change_of_address", channel="contact_form", after=(5, 40))
        self.assign(number)
        self.decide(number, "granted", after=(0, 3))
        self.close_procedure(number)
        self.wrap_up()
        target = self.pick(OTHER_OFFICES)
        self.letter("sent", "authority", "Ausländerbehörde (neuer Wohnort)", "Aktenübersendung")
        self.do(
            self.service.transfer_to_office,
            after=(0, 1),
            to_office_id=target,
            reason="Umzug in den Zuständigkeitsbereich einer anderen Behörde.",
        )
        self.status = "transferred"
        self.office.counts["transferred"] += 1

    def close(self, closure_reason: ClosureReason) -> None:
        self.wrap_up()
        if closure_reason == "left":
            for number in sorted(self.current_documents):
                self.end_document(number, "departed", after=(0, 1))
        self.do(self.service.close_case, after=(0, 2), closure_reason=closure_reason)
        self.status = "closed"
        self.office.counts[f"closed {closure_reason}"] += 1


# ------------------------------------------------------------------ stories


def _student(c: _Case) -> None:
    c.open(_STUDENT_NATIONS, (19, 30))
    docs = ("application_form", "passport_copy", "enrolment_certificate", "proof_of_funds")
    first = c.receive(
        c.pick(("student_permit", "first_title_after_entry")),
        "aufenthg-16b",
        attach=(*docs, "health_insurance"),
    )
    c.assign(first)
    if c.chance(0.35):
        c.request_documents(first, ["Finanzierungsnachweis (Sperrkonto)"])
        c.attach("proof_of_funds", source="contact_form", after=(3, 12), by=PORTAL)
    if c.chance(0.07):
        c.decide(first, "refused")
        c.letter("received", "lawyer", c.pick(_LAWYERS), "Bestellung und Akteneinsicht")
        return
    c.decide(first, "granted", "aufenthg-16b")
    eat, until = c.issue("eat", "aufenthg-16b", c.pick((12, 12, 24)), procedure=first)
    c.eat_card(eat)
    c.close_procedure(first)
    if c.chance(0.25):
        c.note(after=(5, 40))
    if c.chance(0.12):
        c.new_passport_and_transfer(eat)
    # Extension a few weeks before expiry; a late application gets a Fiktionsbescheinigung.
    applies_on = until - timedelta(days=c.rng.randint(20, 70))
    if not c.within(applies_on):
        return
    c.wait_until(applies_on)
    renewal = c.receive(
        c.pick(("extend_residence_permit", "student_permit")),
        "aufenthg-16b",
        attach=("application_form", "enrolment_certificate", "transcript_of_records"),
    )
    c.assign(renewal)
    fiction = None
    if c.chance(0.4):
        fiction, _fiction_until, _sheet = c.fiction("81_4", 3, procedure=renewal, after=(0, 3))
    if c.chance(0.5):
        c.request_documents(renewal, ["Studienverlaufsbescheinigung", "Finanzierungsnachweis"])
        c.attach("transcript_of_records", source="contact_form", after=(2, 14), by=PORTAL)
    if c.chance(0.25):
        # Studies finished: a title for the job search after graduation replaces the old one.
        c.decide(renewal, "granted", "aufenthg-20")
        job_search, _until = c.issue("eat", "aufenthg-20", 18, procedure=renewal)
        c.end_document(eat, "replaced")
        if fiction is not None:
            c.end_fiction(fiction)
        c.eat_card(job_search)
    else:
        c.decide(renewal, "granted", "aufenthg-16b")
        c.extend(eat, _add_months(until, 24), reason="Studium dauert an.")
        if fiction is not None:
            c.end_fiction(fiction)
    c.close_procedure(renewal)


def _family(c: _Case) -> None:
    basis, ages, topic = c.pick(
        (
            ("aufenthg-30", (21, 45), "family_reunion"),
            ("aufenthg-30", (21, 45), "family_reunion"),
            ("aufenthg-32", (3, 16), "family_reunion"),
            ("aufenthg-28-1", (22, 50), "family_reunion"),
            ("aufenthg-33", (0, 1), "child_born_in_germany"),
        )
    )
    c.open(_FAMILY_NATIONS, ages)
    if topic == "family_reunion" and c.chance(0.45):
        if not c.entry_consent("aufenthv-31", refuse=c.chance(0.1)):
            return
        c.wait_until(c.today + timedelta(days=c.rng.randint(30, 100)))
    spouse = basis in ("aufenthg-30", "aufenthg-28-1")
    certificate = "marriage_certificate" if spouse else "birth_certificate"
    number = c.receive(
        topic, basis, attach=("application_form", "passport_copy", certificate), after=(0, 3)
    )
    c.assign(number)
    if c.chance(0.55):
        c.request_documents(
            number, ["Nachweis ausreichenden Wohnraums", "Meldebescheinigung"], after=(1, 8)
        )
        c.attach("rental_contract", source=c.pick(("contact_form", "mail")), after=(4, 18))
    if c.chance(0.1):
        c.decide(number, "refused", reason=_REFUSALS[2])
        c.letter("received", "court", _COURTS[0], "Klage gegen Ablehnungsbescheid", after=(10, 25))
        c.letter("sent", "court", _COURTS[0], "Übersendung der Verwaltungsvorgänge", after=(3, 10))
        return
    c.decide(number, "granted", basis)
    eat, until = c.issue("eat", basis, c.pick((12, 24, 36)), procedure=number)
    c.eat_card(eat)
    c.close_procedure(number)
    if spouse:
        c.integration_course(obligation=c.chance(0.6))
    if c.chance(0.15):
        c.inquiry("civil_registry")
    applies_on = until - timedelta(days=c.rng.randint(20, 60))
    if c.within(applies_on):
        c.wait_until(applies_on)
        renewal = c.receive("extend_residence_permit", basis, attach=("application_form",))
        c.assign(renewal)
        fiction = None
        if c.chance(0.35):
            fiction, _fiction_until, _sheet = c.fiction("81_4", 3, procedure=renewal)
        c.decide(renewal, "granted", basis)
        c.extend(eat, _add_months(until, 24))
        if fiction is not None:
            c.end_fiction(fiction)
        c.close_procedure(renewal)


def _skilled(c: _Case) -> None:
    basis = _weighted(c.rng, (("aufenthg-18b", 4), ("aufenthg-18g", 4), ("aufenthg-18a", 2)))
    c.open(_SKILLED_NATIONS, (24, 48))
    if c.chance(0.4):
        if not c.entry_consent("aufenthg-81a", refuse=c.chance(0.12)):
            return
        c.wait_until(c.today + timedelta(days=c.rng.randint(25, 80)))
    topic = "blue_card" if basis == "aufenthg-18g" else "first_title_after_entry"
    attach = ("application_form", "passport_copy", "employment_contract", "degree_certificate")
    number = c.receive(topic, basis, channel="online_application", attach=attach, after=(0, 3))
    c.assign(number)
    if c.chance(0.4):
        c.request_documents(number, ["Anerkennung des ausländischen Hochschulabschlusses"])
        c.attach("degree_certificate", source="contact_form", after=(5, 20), by=PORTAL)
    if basis != "aufenthg-18g":
        c.letter("sent", "authority", _AUTHORITIES["ba"], "Zustimmung zur Beschäftigung")
        c.letter("received", "authority", _AUTHORITIES["ba"], "Zustimmung erteilt", after=(3, 12))
    c.decide(number, "granted", basis)
    eat, _until = c.issue("eat", basis, c.pick((24, 36, 48)), procedure=number)
    c.eat_card(eat)
    c.close_procedure(number)
    if c.chance(0.2):
        c.integration_course(obligation=False)
    if c.chance(0.3):
        change = c.receive("employer_change", attach=("employment_contract",), after=(20, 120))
        c.assign(change)
        c.decide(change, c.pick(("granted", "granted", "withdrawn")), after=(3, 15))
        c.close_procedure(change)
    if c.chance(0.15):
        c.new_passport_and_transfer(eat)
    if basis == "aufenthg-18g" and c.chance(0.35):
        settlement = c.receive(
            "settlement_permit",
            "aufenthg-18c-2",
            attach=("pension_record", "salary_statements"),
            after=(60, 200),
        )
        c.assign(settlement)
        c.request_documents(settlement, ["Sprachzertifikat B1", "Rentenversicherungsverlauf"])


def _tolerated(c: _Case) -> None:
    """Duldung: short validity, extended again and again at the office."""
    c.open(_TOLERATED_NATIONS, (18, 45))
    c.note(after=(0, 0))
    duldung, until = c.issue("duldung", "aufenthg-60a", c.pick((3, 3, 6)), after=(0, 0))
    if c.chance(0.5):
        c.letter("received", "lawyer", c.pick(_LAWYERS), "Vollmacht und Antrag auf Akteneinsicht")
    for _round in range(c.rng.randint(2, 6)):
        applies_on = until - timedelta(days=c.rng.randint(3, 15))
        if not c.within(applies_on):
            break
        c.wait_until(applies_on)
        number = c.receive("extend_gestattung_duldung", channel=c.pick(("appointment", "mail")))
        c.assign(number, after=(0, 1))
        c.decide(number, "granted", "aufenthg-60a", after=(0, 2))
        until = c.extend(
            duldung,
            _add_months(until, c.pick((3, 3, 6))),
            reason="Abschiebung weiterhin tatsächlich unmöglich.",
        )
        c.close_procedure(number)
        if c.chance(0.2):
            c.note()
        if c.chance(0.12):
            c.letter("received", "court", _COURTS[0], "Eilantrag nach § 123 VwGO", after=(1, 20))
            c.letter("sent", "court", _COURTS[0], "Stellungnahme der Behörde", after=(2, 8))
    outcome = c.rng.random()
    if outcome < 0.25:
        # Vocational training started: the Ausbildungsduldung replaces the plain Duldung.
        number = c.receive(
            "extend_gestattung_duldung", "aufenthg-60c", attach=("employment_contract",)
        )
        c.assign(number)
        c.decide(number, "granted", "aufenthg-60c")
        c.issue("duldung", "aufenthg-60c", 24, procedure=number)
        c.end_document(duldung, "replaced")
        c.close_procedure(number)
    elif outcome < 0.4:
        c.close("left")


def _asylum(c: _Case) -> None:
    """Aufenthaltsgestattung during the asylum procedure, then the BAMF decides."""
    c.open(_ASYLUM_NATIONS, (16, 50))
    gestattung, until = c.issue("aufenthaltsgestattung", "asylg-55", c.pick((3, 6)), after=(0, 0))
    for _round in range(c.rng.randint(0, 3)):
        applies_on = until - timedelta(days=c.rng.randint(3, 15))
        if not c.within(applies_on):
            break
        c.wait_until(applies_on)
        until = c.extend(gestattung, _add_months(until, c.pick((3, 6))))
    bamf = c.attach("bamf_decision", source="mail", after=(5, 60))
    c.letter(
        "received",
        "authority",
        _AUTHORITIES["bamf"],
        "Bescheid über den Asylantrag",
        attachments=[bamf],
        after=(0, 0),
    )
    if c.chance(0.68):
        basis = _weighted(
            c.rng, (("aufenthg-25-2-1", 5), ("aufenthg-25-2-2", 4), ("aufenthg-25-1", 1))
        )
        number = c.receive(
            "humanitarian_title_after_bamf", basis, attach=("application_form", "passport_copy")
        )
        c.assign(number)
        c.decide(number, "granted", basis)
        eat, _until = c.issue(
            "eat", basis, 36 if basis != "aufenthg-25-2-2" else 12, procedure=number
        )
        c.end_document(gestattung, "replaced")
        c.eat_card(eat)
        c.close_procedure(number)
        c.integration_course(obligation=True)
    else:
        c.letter("received", "court", _COURTS[0], "Klage gegen den Bescheid des Bundesamts")
        if c.chance(0.5):
            return  # the court has not decided yet; the Gestattung continues meanwhile
        c.letter("received", "court", _COURTS[0], "Urteil: Klage abgewiesen", after=(40, 120))
        c.end_document(gestattung, "expired")
        c.issue("duldung", "aufenthg-60a", 3, after=(1, 10))


def _ukraine(c: _Case) -> None:
    c.open((("UKR", 1),), (4, 70))
    number = c.receive(
        "temporary_protection_ukraine",
        "aufenthg-24",
        channel="online_application",
        attach=("application_form", "passport_copy"),
    )
    fiction, _fiction_until, _sheet = c.fiction("81_3_1", 6, procedure=number, after=(1, 10))
    c.assign(number)
    c.decide(number, "granted", "aufenthg-24", after=(10, 60))
    eat, until = c.issue("eat", "aufenthg-24", c.pick((12, 24)), procedure=number)
    c.end_fiction(fiction)
    c.eat_card(eat)
    c.close_procedure(number)
    c.integration_course(obligation=c.chance(0.3))
    if c.chance(0.3):
        c.inquiry("civil_registry")
    applies_on = until - timedelta(days=c.rng.randint(10, 50))
    if not c.within(applies_on):
        return
    c.wait_until(applies_on)
    renewal = c.receive("extend_residence_permit", "aufenthg-24", channel="online_application")
    c.assign(renewal)
    c.decide(renewal, "granted", "aufenthg-24")
    c.extend(eat, _add_months(until, 12), reason="Verlängerung des vorübergehenden Schutzes.")
    c.close_procedure(renewal)


def _fiction_chain(c: _Case) -> None:
    """A first application after visa-free entry, pending for a year: Fiktion and extensions."""
    c.open(_VISA_FREE_NATIONS, (24, 45))
    basis = "aufenthg-16f" if c.nationality == "BRA" else c.pick(("aufenthg-18b", "aufenthg-21"))
    number = c.receive(
        "first_title_after_entry",
        basis,
        channel="online_application",
        attach=("application_form", "passport_copy", "health_insurance"),
    )
    fiction, until, _sheet = c.fiction("81_3_1", 3, procedure=number, after=(2, 10))
    c.assign(number, after=(5, 25))
    c.request_documents(number, ["Nachweis der Krankenversicherung", "Finanzierungsnachweis"])
    c.attach("proof_of_funds", source="mail", after=(10, 25))
    on_sheet = 0
    for _extension in range(c.rng.randint(3, 4)):
        until, on_sheet = c.extend_fiction(fiction, until, on_sheet, 3)
        if c.chance(0.3):
            c.note()
    if c.chance(0.15):
        c.decide(number, "withdrawn")
        c.end_fiction(fiction, withdrawn=True)
        c.close_procedure(number)
        c.close("left")
        return
    c.decide(number, "granted", basis)
    eat, _until = c.issue("eat", basis, 24, procedure=number)
    c.end_fiction(fiction)
    c.eat_card(eat)
    c.close_procedure(number)


def _resident(c: _Case) -> None:
    """A long-term resident: settlement permit, inquiries, often naturalisation."""
    c.open(_RESIDENT_NATIONS, (28, 62))
    basis = _weighted(
        c.rng,
        (("aufenthg-9", 5), ("aufenthg-9a", 2), ("aufenthg-18c-2", 2), ("aufenthg-26-3", 2)),
    )
    number = c.receive(
        "settlement_permit",
        basis,
        attach=("application_form", "pension_record", "language_certificate"),
    )
    c.assign(number)
    if c.chance(0.5):
        c.request_documents(number, ["Rentenversicherungsverlauf", "Nachweis Sprachkenntnisse B1"])
        c.attach("pension_record", source="contact_form", after=(3, 15), by=PORTAL)
    if c.chance(0.1):
        c.decide(number, "refused", reason=_REFUSALS[0])
        c.close_procedure(number, after=(20, 40))
        return
    c.decide(number, "granted", basis)
    eat, _until = c.issue("eat", basis, 120, procedure=number)
    c.eat_card(eat)
    c.close_procedure(number)
    if c.chance(0.3):
        c.do(
            c.service.correct_master_data,
            after=(20, 120),
            corrections={
                "address": f"{c.pick(_STREETS)} {c.rng.randint(1, 120)}, 99999 Musterstadt"
            },
            reason="Umzug innerhalb der Stadt.",
        )
    if c.chance(0.1):
        c.new_passport_and_transfer(eat)
    if c.chance(0.7):
        c.inquiry("naturalisation")
        if c.chance(0.6):
            c.letter(
                "received",
                "authority",
                _AUTHORITIES["naturalisation"],
                "Mitteilung über die Aushändigung der Einbürgerungsurkunde",
                after=(30, 150),
            )
            c.close("naturalised")


_CHANGE_OUTCOMES: Final[tuple[tuple[DecisionOutcome, int], ...]] = (
    ("granted", 7),
    ("refused", 2),
    ("withdrawn", 1),
)


def _job_seeker(c: _Case) -> None:
    """Chancenkarte: one year to find work, then a title for employment, or not."""
    c.open(_SKILLED_NATIONS, (22, 40))
    number = c.receive(
        "first_title_after_entry",
        "aufenthg-20a",
        channel="online_application",
        attach=("application_form", "passport_copy", "degree_certificate", "language_certificate"),
    )
    c.assign(number)
    c.decide(number, "granted", "aufenthg-20a")
    eat, _until = c.issue("eat", "aufenthg-20a", 12, procedure=number)
    c.eat_card(eat)
    c.close_procedure(number)
    c.wait_until(c.today + timedelta(days=c.rng.randint(60, 300)))
    change = c.receive(
        "change_of_purpose", "aufenthg-18b", attach=("employment_contract", "application_form")
    )
    c.assign(change)
    c.letter("sent", "authority", _AUTHORITIES["ba"], "Zustimmung zur Beschäftigung")
    outcome = _weighted(c.rng, _CHANGE_OUTCOMES)
    c.decide(change, outcome, "aufenthg-18b" if outcome == "granted" else None)
    if outcome == "granted":
        new_eat, _until = c.issue("eat", "aufenthg-18b", 36, procedure=change)
        c.end_document(eat, "replaced")
        c.eat_card(new_eat)
    c.close_procedure(change)


def _walk_in(c: _Case) -> None:
    """Someone who only asked questions or needed a paper: a thin file."""
    c.open(_RESIDENT_NATIONS, (18, 70))
    topic = c.pick(("general_question", "commitment_declaration", "non_expiry_certificate"))
    number = c.receive(topic, channel="contact_form")
    c.assign(number)
    c.decide(number, c.pick(("granted", "withdrawn")), after=(1, 8))
    c.close_procedure(number)
    if c.chance(0.4):
        c.note()


_Story = Callable[[_Case], None]
_STORIES: Final[tuple[tuple[_Story, int], ...]] = (
    (_student, 17),
    (_family, 17),
    (_skilled, 14),
    (_tolerated, 9),
    (_asylum, 9),
    (_ukraine, 9),
    (_fiction_chain, 6),
    (_resident, 9),
    (_job_seeker, 4),
    (_walk_in, 6),
)
_SHOWCASE: Final[tuple[_Story, ...]] = (
    _fiction_chain,
    _student,
    _tolerated,
    _asylum,
    _family,
    _skilled,
    _resident,
    _ukraine,
    _job_seeker,
    _student,
    _family,
    _walk_in,
)
"""The first cases of every office show each kind, so even a tiny demo is varied."""

_SHOWCASE_ENDINGS: Final = {5: "transferred", 8: "left"}
_SHOWCASE_BACKLOG: Final = frozenset({1, 2, 3, 9})
"""With the showcase stories, these make a tiny office show closed, transferred and
open files, and procedures in every state."""

_BACKLOG_STATES: Final = ("received", "assigned", "documents_requested", "decided")
_BACKLOG_TOPICS: Final = (
    ("general_question", None),
    ("extend_residence_permit", None),
    ("change_of_address", None),
    ("integration_course", "aufenthg-44"),
    ("lost_document", None),
    ("residence_obligation_change", None),
    ("visa_extension", None),
)


def _ending(c: _Case, ending: str) -> None:
    if ending == "transferred":
        c.transfer()
    elif ending == "left":
        c.close("left")
    elif ending == "died":
        c.close("died")


def _backlog(c: _Case, state: str) -> None:
    """Something arrived in the last three weeks and is still on a desk."""
    last = len(c.office.calendar) - 1
    day = last - c.rng.randint(2, 14)
    if day <= c.day:
        return
    c.day, c.minute = day, c.rng.randint(_DAY_STARTS, _DAY_ENDS - 90)
    topic, basis = c.pick(_BACKLOG_TOPICS)
    number = c.receive(topic, basis, channel=c.pick(("contact_form", "contact_form", "mail")))
    if state == "received":
        return
    c.assign(number, after=(0, 1))
    if state == "documents_requested":
        c.request_documents(number, ["Aktuelle Meldebescheinigung"], after=(0, 1))
    elif state == "decided":
        outcome: DecisionOutcome = c.pick(("granted", "withdrawn", "refused"))
        c.decide(number, outcome, after=(0, 1))


def load_demo_office(
    service: AkteService,
    *,
    cases: int = 300,
    seed: int = 2024,
    progress: Callable[[int, int], None] | None = None,
    office_id: str = DEFAULT_OFFICE_ID,
) -> DemoSummary:
    """Fill an empty store with a demo office; a store that holds events is left alone.

    ``progress(done, total)`` is called after each case file.
    """
    existing = service.recorder.max_notification_id() or 0
    if existing > 0:
        return DemoSummary(cases=0, events=0, existing_events=existing)
    office = _Office(service, _Calendar(service.clock(), WINDOW_BUSINESS_DAYS), office_id)
    chooser = random.Random(seed)
    span = len(office.calendar) * _OPENING_SPAN
    case_ids: list[UUID] = []
    backlog_turn = 0
    for index in range(cases):
        story = _SHOWCASE[index] if index < len(_SHOWCASE) else _weighted(chooser, _STORIES)
        ending = _weighted(
            chooser, (("stays", 920), ("transferred", 40), ("left", 35), ("died", 5))
        )
        ending = _SHOWCASE_ENDINGS.get(index, ending)
        wants_backlog = chooser.random() < 0.3 or index in _SHOWCASE_BACKLOG
        # Each case draws from its own generator, so one story's length never shifts another.
        rng = random.Random(f"{seed}/{index}")
        day = min(int(index * span / cases) + rng.randint(0, 4), len(office.calendar) - 1)
        case = _Case(
            office, rng, index=index, day=day, caseworker=CASEWORKERS[index % len(CASEWORKERS)]
        )
        try:
            story(case)
            if case.status == "active":
                _ending(case, ending)
        except _OutOfTime:
            pass
        if case.status == "active" and wants_backlog:
            try:
                _backlog(case, _BACKLOG_STATES[backlog_turn % len(_BACKLOG_STATES)])
                backlog_turn += 1
            except _OutOfTime:
                pass
        if case.case_id is not None:
            case_ids.append(case.case_id)
        if progress is not None:
            progress(index + 1, cases)
    return DemoSummary(
        cases=len(case_ids),
        events=office.events,
        case_ids=tuple(case_ids),
        counts=dict(sorted(office.counts.items())),
    )


__all__ = ["DemoSummary", "load_demo_office"]
