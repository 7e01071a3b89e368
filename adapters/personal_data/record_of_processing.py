"""The record of processing activities (Art. 30 GDPR) and the deletion concept, from the code.

Which personal data Akte keeps is not written down twice: the event classes of
``domain/`` mark every personal field (``Personal[...]``, :mod:`domain.personal`), and
this module reads those marks. What the code cannot know (the purpose, the legal basis,
the recipients of each processing activity) is declared here, one entry per aggregate
that holds personal data, beside the category of every personal field. A test fails
when a new personal field or aggregate has no entry, so the record cannot fall behind
the code. The deletion concept comes from the retention rules
(``adapters/reference/retention-rules.json``) that ``akte retention run`` applies.

``akte privacy record [--format json|html]`` prints it; the docs build renders it as a
page (reference/record-of-processing.md). The texts are German: the record is kept for
the office's data protection officer and the supervisory authority.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from eventsourcing.domain import Aggregate

import domain
from adapters.personal_data.retention import load_rules
from adapters.reports.templates import render
from domain.personal import personal_fields
from projections.worklists.retention_due import RetentionRule

CATEGORIES: Final = {
    "Identifikationsdaten (Name, Geburtsdatum)": (
        "surname",
        "given_names",
        "date_of_birth",
        "guarantor_surname",
        "guarantor_given_names",
        "guarantor_date_of_birth",
        "invited_surname",
        "invited_given_names",
        "invited_date_of_birth",
        "new_surname",
        "new_given_names",
    ),
    "Staatsangehörigkeit": (
        "nationality",
        "guarantor_nationality",
        "invited_nationality",
        "new_nationality",
    ),
    "Anschrift": ("address", "guarantor_address", "new_address"),
    "Kontaktdaten (E-Mail, Telefon)": ("email", "phone"),
    "Ausweis-, Dokumenten- und Aktennummern": (
        "passport_number",
        "document_number",
        "carrier_sheet_number",
        "new_card_number",
        "new_carrier_sheet_number",
        "guarantor_id_document_number",
        "invited_passport_number",
        "file_number",
    ),
    "Wirtschaftliche Verhältnisse (Einkommen, Vermögen)": (
        "assets_cents",
        "monthly_net_income_cents",
    ),
    "Namen Dritter (Korrespondenzpartner)": ("counterpart_name",),
    "Freitexte (Anliegen, Vermerke, Begründungen, Antworten)": (
        "message",
        "reply",
        "note",
        "text",
        "reason",
        "what",
        "subject",
        "hardship_reason",
        "purpose",
        "hints",
    ),
    "Dateinamen hochgeladener Unterlagen": ("file_names",),
    "Von der bisherigen Ausländerbehörde übernommene Einträge (alle Kategorien oben)": (
        "personal",
    ),
}
"""Every personal field name of the domain's events, by category of data (Art. 30 (1) c)."""


@dataclass(frozen=True)
class Activity:
    """What the code cannot say about a processing activity: why, on what ground, to whom."""

    name: str
    purpose: str
    legal_basis: str
    data_subjects: str
    recipients: str
    retention: str
    """How the data is erased when its time is up; the rules themselves are listed in the
    deletion concept (``retention_rules`` names those that apply)."""
    retention_rules: tuple[str, ...] = ()


ACTIVITIES: Final = {
    "CaseFile": Activity(
        name="Führung der Ausländerakte",
        purpose=(
            "Aufgaben nach dem Aufenthaltsgesetz: Verfahren über Aufenthaltstitel, "
            "Fiktionsbescheinigungen, Zustimmungen zur Visumerteilung, Integrationskurs, "
            "Auskünfte an andere Behörden, Schriftverkehr"
        ),
        legal_basis=(
            "Art. 6 Abs. 1 lit. c und e DSGVO i. V. m. § 86 AufenthG; besondere Kategorien: "
            "Art. 9 Abs. 2 lit. g DSGVO i. V. m. § 86 Satz 2 AufenthG"
        ),
        data_subjects="Ausländerinnen und Ausländer, deren Akte die Behörde führt",
        recipients=(
            "Ausländerzentralregister (BAMF, §§ 6 ff. AZRG); Auslandsvertretungen "
            "(§ 31 AufenthV); Bundesagentur für Arbeit (§ 39 AufenthG); die zuständig "
            "werdende Ausländerbehörde bei Umzug; Standesämter und Einbürgerungsbehörden "
            "auf Anfrage"
        ),
        retention=(
            "Löschung der Akte nach den Aufbewahrungsfristen des § 68 AufenthV "
            "(Krypto-Löschung: der Schlüssel der Person wird vernichtet, die Dokumente "
            "der Person werden unlesbar)"
        ),
        retention_rules=(
            "moved-away-10y",
            "left-germany-10y",
            "died-5y",
            "naturalised-10y",
            "entry-consent-only-2y",
        ),
    ),
    "CommitmentDeclaration": Activity(
        name="Verpflichtungserklärungen (§ 68 AufenthG)",
        purpose=(
            "Entgegennahme, Bonitätsprüfung und Aushändigung von Verpflichtungserklärungen "
            "für Besuche aus dem Ausland, Erhebung der Gebühr"
        ),
        legal_basis="Art. 6 Abs. 1 lit. e DSGVO i. V. m. §§ 68, 86 AufenthG; § 47 AufenthV",
        data_subjects="Verpflichtungsgeberinnen und -geber; eingeladene Personen",
        recipients=(
            "Auslandsvertretung der eingeladenen Person (Visumverfahren); "
            "Zahlungsdienstleister (nur Betrag und Zahlungsreferenz)"
        ),
        retention=(
            "die Angaben zur eingeladenen Person (eigener Schlüssel) mit deren Akte, wenn "
            "verknüpft; die Angaben zur Verpflichtungsgeberin oder zum "
            "Verpflichtungsgeber bleiben, solange die Haftung läuft (§ 68 Abs. 1 Satz 4 "
            "AufenthG): eine eigene Frist dafür und für nicht verknüpfte Erklärungen ist "
            "nicht umgesetzt und von der oder dem Datenschutzbeauftragten festzulegen"
        ),
    ),
    "ContactSubmission": Activity(
        name="Kontaktformular und Online-Eingänge",
        purpose="Entgegennahme von Anliegen und Unterlagen, Zuordnung zur Akte, Antwort",
        legal_basis="Art. 6 Abs. 1 lit. e DSGVO i. V. m. § 3a VwVfG, § 86 AufenthG",
        data_subjects="Personen, die das Kontaktformular nutzen",
        recipients="keine außerhalb der Behörde",
        retention=(
            "mit der Akte, der der Eingang zugeordnet wurde; ein nicht zugeordneter "
            "Eingang: Frist nicht umgesetzt, von der oder dem Datenschutzbeauftragten "
            "festzulegen"
        ),
    ),
    "Appointment": Activity(
        name="Terminvergabe",
        purpose="Buchung, Bestätigung, Erinnerung und Wahrnehmung von Terminen",
        legal_basis="Art. 6 Abs. 1 lit. e DSGVO i. V. m. § 86 AufenthG",
        data_subjects="Personen, die einen Termin buchen oder für die er gebucht wird",
        recipients="E-Mail-Versand über den Mailserver der Behörde",
        retention=(
            "mit der Akte, wenn der Termin mit ihr verknüpft, mit ihrer Nummer gebucht, "
            "auf ihr wahrgenommen, einem Wartelisteneintrag derselben Person angeboten "
            "oder online mit dem Personenschlüssel derselben Person gebucht wurde; sonst "
            "Frist nicht umgesetzt, von der oder dem Datenschutzbeauftragten festzulegen"
        ),
    ),
    "RegistrationNotice": Activity(
        name="Mitteilungen der Meldebehörden in Klärung (§ 72 AufenthV)",
        purpose=(
            "Zuordnung von Mitteilungen der Meldebehörden, die keiner Akte sicher "
            "zugeordnet werden konnten, zur richtigen Akte"
        ),
        legal_basis="Art. 6 Abs. 1 lit. c und e DSGVO i. V. m. § 90a AufenthG, § 72 AufenthV",
        data_subjects="Personen, über die eine Meldebehörde eine Mitteilung schickt",
        recipients="keine außerhalb der Behörde",
        retention=(
            "mit der Akte, der die Mitteilung zugeordnet wurde, und mit jeder Akte, die "
            "sie in der Klärung als mögliche Zuordnung nennt (solange sie keiner anderen "
            "Akte zugeordnet wurde); eine sonst nicht zugeordnete oder verworfene "
            "Mitteilung: Frist nicht umgesetzt, von der oder dem "
            "Datenschutzbeauftragten festzulegen"
        ),
    ),
    "WaitlistEntry": Activity(
        name="Warteliste für Termine",
        purpose="Angebot frei gewordener Termine in der Reihenfolge der Anmeldung",
        legal_basis="Art. 6 Abs. 1 lit. e DSGVO i. V. m. § 86 AufenthG",
        data_subjects="Personen auf der Warteliste",
        recipients="E-Mail-Versand über den Mailserver der Behörde",
        retention=(
            "mit der Akte, wenn verknüpft oder mit dem Personenschlüssel derselben "
            "Person in derselben Behörde; sonst Frist nicht umgesetzt, von der oder dem "
            "Datenschutzbeauftragten festzulegen"
        ),
    ),
}
"""One entry per aggregate whose events hold personal data (a test checks the coverage)."""


@dataclass(frozen=True)
class EventEntry:
    event: str
    fields: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True)
class ActivityEntry:
    aggregate: str
    module: str
    activity: Activity
    categories: tuple[str, ...]
    events: tuple[EventEntry, ...]


@dataclass(frozen=True)
class RecordOfProcessing:
    activities: tuple[ActivityEntry, ...]
    deletion_concept: tuple[RetentionRule, ...]
    gaps: tuple[str, ...] = field(default=())
    """Activities without an implemented retention period: for the data protection officer."""

    def as_json(self) -> dict[str, Any]:
        return {
            "activities": [
                {
                    "aggregate": entry.aggregate,
                    "module": entry.module,
                    **asdict(entry.activity),
                    "categories": list(entry.categories),
                    "events": [asdict(event) for event in entry.events],
                }
                for entry in self.activities
            ],
            "deletion_concept": [asdict(rule) for rule in self.deletion_concept],
            "gaps": list(self.gaps),
        }


class UnrecordedPersonalData(Exception):
    """A personal field or an aggregate the record has no entry for."""


def category_of(field_name: str) -> str:
    for category, names in CATEGORIES.items():
        if field_name in names:
            return category
    msg = f"the personal field {field_name} has no category in the record of processing"
    raise UnrecordedPersonalData(msg)


def personal_events() -> Iterator[tuple[type[Aggregate], type[Aggregate.Event], frozenset[str]]]:
    """Every event class of ``domain/`` with personal fields, with its aggregate."""
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for aggregate in vars(module).values():
            if not (
                inspect.isclass(aggregate)
                and issubclass(aggregate, Aggregate)
                and aggregate.__module__ == module.__name__
            ):
                continue
            for event in vars(aggregate).values():
                if inspect.isclass(event) and issubclass(event, Aggregate.Event):
                    marked = personal_fields(event)
                    if marked:
                        yield aggregate, event, marked


def record_of_processing(rules: list[RetentionRule] | None = None) -> RecordOfProcessing:
    """The record from the code's marks, the declared activities and the retention rules;
    raises :class:`UnrecordedPersonalData` for anything personal it cannot place."""
    found: dict[type[Aggregate], list[EventEntry]] = {}
    for aggregate, event, marked in personal_events():
        names = tuple(sorted(marked))
        categories = tuple(sorted({category_of(name) for name in names}))
        found.setdefault(aggregate, []).append(EventEntry(event.__qualname__, names, categories))
    entries = []
    for aggregate, events in sorted(found.items(), key=lambda item: item[0].__name__):
        activity = ACTIVITIES.get(aggregate.__name__)
        if activity is None:
            msg = f"{aggregate.__name__} holds personal data and has no processing activity"
            raise UnrecordedPersonalData(msg)
        categories = tuple(sorted({c for event in events for c in event.categories}))
        entries.append(
            ActivityEntry(
                aggregate.__name__,
                aggregate.__module__,
                activity,
                categories,
                tuple(sorted(events, key=lambda e: e.event)),
            )
        )
    concept = tuple(rules if rules is not None else load_rules())
    known = {rule.id for rule in concept}
    for entry in entries:
        missing = set(entry.activity.retention_rules) - known
        if missing:
            msg = f"{entry.aggregate} names unknown retention rules: {sorted(missing)}"
            raise UnrecordedPersonalData(msg)
    gaps = tuple(
        f"{entry.activity.name}: {entry.activity.retention}"
        for entry in entries
        if not entry.activity.retention_rules
    )
    return RecordOfProcessing(tuple(entries), concept, gaps)


def as_html(record: RecordOfProcessing) -> str:
    return render("adapters.personal_data", "record_of_processing.html.j2", record=record)


def as_markdown(record: RecordOfProcessing) -> str:
    """The record as a documentation page."""
    lines = [
        "# Verzeichnis von Verarbeitungstätigkeiten (Art. 30 DSGVO)",
        "",
        "Generated from the code at every build of the docs "
        "(`adapters/personal_data/record_of_processing.py`): the categories of data come "
        "from the `Personal[...]` marks of the event classes, the deletion concept from "
        "the retention rules. `akte privacy record --format html` prints the same.",
        "",
    ]
    for entry in record.activities:
        activity = entry.activity
        lines += [
            f"## {activity.name}",
            "",
            f"- **Zweck:** {activity.purpose}",
            f"- **Rechtsgrundlage:** {activity.legal_basis}",
            f"- **Betroffene:** {activity.data_subjects}",
            f"- **Kategorien personenbezogener Daten:** {'; '.join(entry.categories)}",
            f"- **Empfänger:** {activity.recipients}",
            f"- **Löschung:** {activity.retention}",
            f"- **Ereignisse mit personenbezogenen Feldern** (`{entry.module}.{entry.aggregate}`):",
            "",
            "| Ereignis | Felder |",
            "|---|---|",
            *(f"| `{event.event}` | {', '.join(event.fields)} |" for event in entry.events),
            "",
        ]
    lines += [
        "## Löschkonzept",
        "",
        "| Regel | Frist | läuft ab | Rechtsgrundlage | geprüft |",
        "|---|---|---|---|---|",
        *(
            f"| {rule.label_de} | {rule.period_years} Jahre | {rule.event or rule.runs_from} "
            f"| {rule.legal_basis} | {'ja' if rule.verified else 'nein'} |"
            for rule in record.deletion_concept
        ),
        "",
    ]
    if record.gaps:
        lines += [
            "## Offene Punkte für die oder den Datenschutzbeauftragten",
            "",
            *(f"- {gap}" for gap in record.gaps),
            "",
        ]
    return "\n".join(lines)
