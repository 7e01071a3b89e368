"""One case file of the demo office, written through the service's commands.

A :class:`DemoCase` moves forward in business time on the weekdays of the demo window
(office hours in UTC) and gives each command at the next business time; a step after
yesterday raises :class:`OutOfTime`, which ends the case's history there. The stories of
:mod:`adapters.simulation.demo_office` are told with its vocabulary of commands.
"""

from __future__ import annotations

import bisect
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, TypeVar
from uuid import UUID

from adapters.simulation.demo_documents import demo_document
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
from service import AkteService
from service_common import Recorded

T = TypeVar("T")

TEAM_LEAD: Final = "tl-01"
PORTAL: Final = "portal"
"""Digital channels arrive through the online service, not through a person."""
OTHER_OFFICES: Final = ("abh-beispielstadt", "abh-landkreis-muster", "abh-neustadt-am-see")

DAY_STARTS: Final = 7 * 60 + 15
DAY_ENDS: Final = 15 * 60 + 45
"""Office hours 08:15-16:45 Berlin winter time, written in UTC to stay unambiguous."""


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
_DOCUMENT_TITLES: Final = {
    "application_form": "Antragsformular",
    "passport_copy": "Reisepass (Kopie)",
    "biometric_photo": "Biometrisches Lichtbild",
    "enrolment_certificate": "Immatrikulationsbescheinigung",
    "proof_of_funds": "Finanzierungsnachweis",
    "health_insurance": "Nachweis der Krankenversicherung",
    "rental_contract": "Mietvertrag",
    "employment_contract": "Arbeitsvertrag",
    "degree_certificate": "Abschlusszeugnis",
    "marriage_certificate": "Heiratsurkunde",
    "birth_certificate": "Geburtsurkunde",
    "language_certificate": "Sprachzertifikat",
    "salary_statements": "Gehaltsabrechnungen",
    "pension_record": "Rentenversicherungsverlauf",
    "bamf_decision": "Bescheid des BAMF",
    "court_decision": "Gerichtsentscheidung",
    "power_of_attorney": "Vollmacht",
    "transcript_of_records": "Leistungsnachweis (Transcript of Records)",
}

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
REFUSALS: Final = (
    "Lebensunterhalt nicht gesichert (§ 5 Abs. 1 Nr. 1 AufenthG).",
    "Passpflicht nicht erfüllt (§ 3 AufenthG).",
    "Ausreichender Wohnraum nicht nachgewiesen (§ 29 Abs. 1 Nr. 2 AufenthG).",
    "Zweck des Aufenthalts nicht mehr erreichbar.",
    "Erforderliche Unterlagen trotz Aufforderung nicht vorgelegt.",
)
AUTHORITIES: Final = {
    "bamf": "Bundesamt für Migration und Flüchtlinge",
    "ba": "Bundesagentur für Arbeit",
    "registry": "Standesamt Musterstadt",
    "naturalisation": "Einbürgerungsbehörde Musterstadt",
    "embassy": "Deutsche Botschaft (Visastelle)",
    "jobcentre": "Jobcenter Musterstadt",
}


# ----------------------------------------------------------------- calendar


class OutOfTime(Exception):
    """The story's next step would lie after yesterday: the case's history ends here."""


class DemoCalendar:
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
class DemoOfficeState:
    """What the demo's case files share while it loads: the service, the window's
    calendar, and counts of what was written."""

    service: AkteService
    calendar: DemoCalendar
    office_id: str
    counts: Counter[str] = field(default_factory=Counter)
    events: int = 0


class DemoCase:
    """Writes one case file's history through the service, moving forward in time."""

    def __init__(
        self, office: DemoOfficeState, rng: random.Random, *, index: int, day: int, caseworker: str
    ) -> None:
        self.office = office
        self.service = office.service
        self.rng = rng
        self.index = index
        self.day = day
        self.minute = rng.randint(DAY_STARTS, DAY_STARTS + 150)
        self.caseworker = caseworker
        self.case_id: UUID | None = None
        self.version = 0
        self.nationality = ""
        self.open_procedures: set[int] = set()
        self.current_documents: dict[int, ResidenceDocumentKind] = {}
        self.open_fictions: dict[int, int | None] = {}
        """Current Fiktionsbescheinigungen and the procedure each was issued for."""
        self.status = "active"

    # -- time

    def _step(self, after: tuple[int, int]) -> datetime:
        days = self.rng.randint(*after)
        if days == 0:
            self.minute += self.rng.randint(2, 30)
            if self.minute > DAY_ENDS:
                days = 1
        if days > 0:
            self.day += days
            self.minute = self.rng.randint(DAY_STARTS, DAY_ENDS - 90)
        if self.day >= len(self.office.calendar):
            raise OutOfTime
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
            raise OutOfTime
        if day > self.day:
            self.day = day
            self.minute = self.rng.randint(DAY_STARTS, DAY_STARTS + 240)

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
        # A command may record more than one event (a decision ends the fiction too).
        self.office.events += recorded.version - self.version
        self.version = recorded.version
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
        # Drawn as before, though every demo document is now a small generated PDF: the
        # same seed keeps telling the same stories.
        _ = _weighted(rng, _MEDIA_TYPES) if pages == 1 else None
        rng.getrandbits(256)
        rng.randint(60_000, 420_000)
        title = _DOCUMENT_TITLES.get(kind, kind.replace("_", " ").capitalize())
        document = demo_document(
            title, f"Demo-Dokument, fiktive Person ({self.nationality})", kind=kind, pages=pages
        )
        intake = self.service.intake

        def attach_document(
            case_id: UUID, *, expected_version: int, by: str, at: datetime
        ) -> Recorded[int]:
            return intake.upload_document(
                case_id,
                expected_version=expected_version,
                by=by,
                at=at,
                document=document,
                source=source,
            )

        return self.do(attach_document, after=after, by=by)

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
            reason = self.pick(REFUSALS)
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
        # The decision ends the fiction of the procedure's certificates (§ 81 AufenthG).
        for certificate, procedure in list(self.open_fictions.items()):
            if procedure == number:
                del self.open_fictions[certificate]
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
        previous_title_valid_until: date | None = None,
    ) -> tuple[int, date, str]:
        """``previous_title_valid_until``: for § 81 (4), the title the application was
        received under (a timely application)."""
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
            order_basis="timely_application" if kind == "81_4" else None,
            previous_title_valid_until=previous_title_valid_until,
        )
        self.open_fictions[number] = procedure
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
        """End a certificate that no decision has ended yet."""
        if number not in self.open_fictions:
            return
        self.do(
            self.service.end_fiction_certificate,
            certificate_number=number,
            end_reason="withdrawal" if withdrawn else "decision",
        )
        del self.open_fictions[number]

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
        self.letter("received", "authority", AUTHORITIES[authority], subject, after=(5, 40))
        number = self.do(self.service.receive_inquiry, kind=kind)
        self.office.counts[f"inquiry {kind}"] += 1
        if answer:
            self.do(self.service.answer_inquiry, after=(1, 8), inquiry_number=number)
            self.letter("sent", "authority", AUTHORITIES[authority], "Auskunft erteilt.")

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
            AUTHORITIES[counterpart],
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
