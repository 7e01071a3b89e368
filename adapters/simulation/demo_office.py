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

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Final
from uuid import UUID

from adapters.simulation.demo_appointments import DemoAppointments, set_up_demo_appointments
from adapters.simulation.demo_case_file import (
    AUTHORITIES,
    DAY_ENDS,
    DAY_STARTS,
    PORTAL,
    REFUSALS,
    DemoCalendar,
    DemoCase,
    DemoOfficeState,
    OutOfTime,
)
from adapters.simulation.demo_documents import submit_demo_contact_forms
from adapters.simulation.fictitious_people import STREETS as _STREETS
from adapters.simulation.fictitious_people import add_months as _add_months
from adapters.simulation.fictitious_people import weighted as _weighted
from domain.values import DecisionOutcome
from service import AkteService

DEFAULT_OFFICE_ID: Final = "abh-musterstadt"
WINDOW_BUSINESS_DAYS: Final = 390
"""About 18 months of weekdays, ending the day before the store's clock says now."""
_OPENING_SPAN: Final = 0.82
"""Cases open over the first 82% of the window, so even the newest have some history."""

CASEWORKERS: Final = tuple(f"sb-{n:02d}" for n in range(1, 9))


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`load_demo_office` wrote; ``existing_events`` > 0 means it wrote nothing."""

    cases: int
    events: int
    case_ids: tuple[UUID, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    existing_events: int = 0
    appointments: DemoAppointments | None = None
    """The service points set up for the booking pages (None: appointments are off)."""
    contact_submissions: int = 0
    """Contact form submissions waiting in the inbox, each with a PDF."""

    @property
    def skipped(self) -> bool:
        return self.existing_events > 0


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


def _student(c: DemoCase) -> None:
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
        fiction, _fiction_until, _sheet = c.fiction(
            "81_4", 3, procedure=renewal, after=(0, 3), previous_title_valid_until=until
        )
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


def _family(c: DemoCase) -> None:
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
        c.decide(number, "refused", reason=REFUSALS[2])
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
            fiction, _fiction_until, _sheet = c.fiction(
                "81_4", 3, procedure=renewal, previous_title_valid_until=until
            )
        c.decide(renewal, "granted", basis)
        c.extend(eat, _add_months(until, 24))
        if fiction is not None:
            c.end_fiction(fiction)
        c.close_procedure(renewal)


def _skilled(c: DemoCase) -> None:
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
        c.letter("sent", "authority", AUTHORITIES["ba"], "Zustimmung zur Beschäftigung")
        c.letter("received", "authority", AUTHORITIES["ba"], "Zustimmung erteilt", after=(3, 12))
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


def _tolerated(c: DemoCase) -> None:
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


def _asylum(c: DemoCase) -> None:
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
        AUTHORITIES["bamf"],
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


def _ukraine(c: DemoCase) -> None:
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


def _fiction_chain(c: DemoCase) -> None:
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


def _resident(c: DemoCase) -> None:
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
        c.decide(number, "refused", reason=REFUSALS[0])
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
                AUTHORITIES["naturalisation"],
                "Mitteilung über die Aushändigung der Einbürgerungsurkunde",
                after=(30, 150),
            )
            c.close("naturalised")


_CHANGE_OUTCOMES: Final[tuple[tuple[DecisionOutcome, int], ...]] = (
    ("granted", 7),
    ("refused", 2),
    ("withdrawn", 1),
)


def _job_seeker(c: DemoCase) -> None:
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
    c.letter("sent", "authority", AUTHORITIES["ba"], "Zustimmung zur Beschäftigung")
    outcome = _weighted(c.rng, _CHANGE_OUTCOMES)
    c.decide(change, outcome, "aufenthg-18b" if outcome == "granted" else None)
    if outcome == "granted":
        new_eat, _until = c.issue("eat", "aufenthg-18b", 36, procedure=change)
        c.end_document(eat, "replaced")
        c.eat_card(new_eat)
    c.close_procedure(change)


def _walk_in(c: DemoCase) -> None:
    """Someone who only asked questions or needed a paper: a thin file."""
    c.open(_RESIDENT_NATIONS, (18, 70))
    topic = c.pick(("general_question", "commitment_declaration", "non_expiry_certificate"))
    number = c.receive(topic, channel="contact_form")
    c.assign(number)
    c.decide(number, c.pick(("granted", "withdrawn")), after=(1, 8))
    c.close_procedure(number)
    if c.chance(0.4):
        c.note()


_Story = Callable[[DemoCase], None]
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


def _ending(c: DemoCase, ending: str) -> None:
    if ending == "transferred":
        c.transfer()
    elif ending == "left":
        c.close("left")
    elif ending == "died":
        c.close("died")


def _backlog(c: DemoCase, state: str) -> None:
    """Something arrived in the last three weeks and is still on a desk."""
    last = len(c.office.calendar) - 1
    day = last - c.rng.randint(2, 14)
    if day <= c.day:
        return
    c.day, c.minute = day, c.rng.randint(DAY_STARTS, DAY_ENDS - 90)
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

    Besides the case files (whose documents are small PDFs), a few contact form
    submissions wait in the inbox, and the appointment desk is set up for the booking
    pages (:mod:`adapters.simulation.demo_appointments`) when appointments are on.

    ``progress(done, total)`` is called after each case file.
    """
    existing = service.recorder.max_notification_id() or 0
    if existing > 0:
        return DemoSummary(cases=0, events=0, existing_events=existing)
    office = DemoOfficeState(
        service, DemoCalendar(service.clock(), WINDOW_BUSINESS_DAYS), office_id
    )
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
        case = DemoCase(
            office, rng, index=index, day=day, caseworker=CASEWORKERS[index % len(CASEWORKERS)]
        )
        try:
            story(case)
            if case.status == "active":
                _ending(case, ending)
        except OutOfTime:
            pass
        if case.status == "active" and wants_backlog:
            try:
                _backlog(case, _BACKLOG_STATES[backlog_turn % len(_BACKLOG_STATES)])
                backlog_turn += 1
            except OutOfTime:
                pass
        if case.case_id is not None:
            case_ids.append(case.case_id)
        if progress is not None:
            progress(index + 1, cases)
    before_extras = service.recorder.max_notification_id() or 0
    submissions = submit_demo_contact_forms(service, office_id=office_id)
    appointments = None
    if service.appointments.configured:
        appointments = set_up_demo_appointments(service, office_id=office_id, seed=seed)
    extras = (service.recorder.max_notification_id() or 0) - before_extras
    return DemoSummary(
        cases=len(case_ids),
        events=office.events + extras,
        case_ids=tuple(case_ids),
        counts=dict(sorted(office.counts.items())),
        appointments=appointments,
        contact_submissions=submissions,
    )


__all__ = ["DemoSummary", "load_demo_office"]
