"""A case file's history for people: what each event means, in German, and what changed.

Pure functions over the events and states of :mod:`domain.case_file`, for the auditors'
history (``GET /cases/{id}/history``, ``akte history``) and the difference between two
points in time. Descriptions are built from the events' non-personal fields only (kinds,
numbers, codes, dates of validity), so they can be shown to anyone who may see the
history; the personal fields (``Personal[...]``) are handed out separately and only
when the caller may see them (:func:`history_entry`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any, Final

from domain.case_file import CaseFile
from domain.erasure import ERASURE_GROUNDS
from domain.personal import personal_fields

E = CaseFile.Event

ENVELOPE_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by", "at"}
)
"""The library's fields and who/when: shown on their own, not among an entry's data."""

_RESIDENCE_DOCUMENT: Final = {
    "eat": "elektronischer Aufenthaltstitel (eAT, § 78 AufenthG)",
    "duldung": "Duldung (§ 60a AufenthG)",
    "aufenthaltsgestattung": "Aufenthaltsgestattung (§ 55 AsylG)",
}
_FICTION: Final = {
    "81_3_1": "§ 81 Abs. 3 S. 1 AufenthG",
    "81_3_2": "§ 81 Abs. 3 S. 2 AufenthG",
    "81_4": "§ 81 Abs. 4 AufenthG",
}
_CHANNEL: Final = {
    "contact_form": "Kontaktformular",
    "appointment": "Termin",
    "mail": "Post",
    "online_application": "Online-Antrag",
}
_OUTCOME: Final = {"granted": "stattgegeben", "refused": "abgelehnt", "withdrawn": "zurückgenommen"}
_RESIDENCE_END: Final = {
    "expired": "abgelaufen (§ 51 AufenthG)",
    "revoked": "widerrufen (§ 52 AufenthG)",
    "replaced": "ersetzt",
    "departed": "Ausreise",
}
_FICTION_END: Final = {"decision": "Entscheidung über den Antrag", "withdrawal": "Rücknahme"}
_INQUIRY: Final = {"civil_registry": "Standesamt", "naturalisation": "Einbürgerung"}
_COUNTERPART: Final = {"authority": "Behörde", "court": "Gericht", "lawyer": "Rechtsanwalt"}
_NOTICE: Final = {
    "anmeldung": "Anmeldung",
    "abmeldung": "Abmeldung",
    "aenderung_hauptwohnung": "Änderung der Hauptwohnung",
    "namensaenderung": "Namensänderung",
    "aenderung_staatsangehoerigkeit": "Änderung der Staatsangehörigkeit",
    "tod": "Tod",
}
_CLOSURE: Final = {"naturalised": "Einbürgerung", "died": "Tod", "left": "Fortzug ins Ausland"}
_SOURCE: Final = {
    "contact_form": "Kontaktformular",
    "scan": "Scan",
    "mail": "Post",
    "caseworker": "Sachbearbeitung",
}


@lru_cache(maxsize=4096)
def _d(value: date) -> str:
    """German date format, as on the office's forms."""
    # Remembered: a long file names the same dates (due dates, validity) many times over,
    # and strftime is slow next to a dict lookup.
    return value.strftime("%d.%m.%Y")


def _basis(legal_basis: str | None) -> str:
    return f", Rechtsgrundlage {legal_basis}" if legal_basis else ""


def _label(vocabulary: Mapping[str, str], code: str) -> str:
    # A code recorded under a later vocabulary still gets a description.
    return vocabulary.get(code, code)


def _opened(e: CaseFile.Opened) -> str:
    return f"Akte {e.reference} angelegt (Ausländerbehörde {e.office_id})"


def _master_data_corrected(e: CaseFile.MasterDataCorrected) -> str:
    # The names of the corrected fields are facts; their values are personal data.
    names = {
        "surname": "Familienname",
        "given_names": "Vornamen",
        "date_of_birth": "Geburtsdatum",
        "nationality": "Staatsangehörigkeit",
        "passport_number": "Passnummer",
        "address": "Anschrift",
    }
    changed = [label for name, label in names.items() if getattr(e, name) is not None]
    return f"Stammdaten berichtigt: {', '.join(changed) or 'keine Angabe'}"


def _document_attached(e: CaseFile.DocumentAttached) -> str:
    pages = "Seite" if e.page_count == 1 else "Seiten"
    return (
        f"Dokument {e.document_number} zur Akte genommen ({e.kind}, {e.page_count} {pages}, "
        f"Quelle: {_label(_SOURCE, e.source)})"
    )


def _procedure_received(e: CaseFile.ProcedureReceived) -> str:
    return (
        f"Vorgang {e.procedure_number} eingegangen ({e.topic}, über "
        f"{_label(_CHANNEL, e.channel)}{_basis(e.legal_basis)})"
    )


def _procedure_decided(e: CaseFile.ProcedureDecided) -> str:
    return (
        f"Vorgang {e.procedure_number} entschieden: {_label(_OUTCOME, e.outcome)}"
        f"{_basis(e.legal_basis)}"
    )


def _residence_document_issued(e: CaseFile.ResidenceDocumentIssued) -> str:
    procedure = f", Vorgang {e.procedure_number}" if e.procedure_number is not None else ""
    return (
        f"Aufenthaltsdokument {e.residence_document_number} ausgestellt: "
        f"{_label(_RESIDENCE_DOCUMENT, e.kind)}, Rechtsgrundlage {e.legal_basis}, "
        f"gültig {_d(e.valid_from)} bis {_d(e.valid_until)}{procedure}"
    )


def _residence_document_extended(e: CaseFile.ResidenceDocumentExtended) -> str:
    return (
        f"Aufenthaltsdokument {e.residence_document_number} verlängert bis "
        f"{_d(e.valid_until)} (bisher bis {_d(e.previous_valid_until)})"
    )


def _fiction_issued(e: CaseFile.FictionCertificateIssued) -> str:
    procedure = f", Vorgang {e.procedure_number}" if e.procedure_number is not None else ""
    basis = ""
    if e.order_basis == "timely_application" and e.previous_title_valid_until is not None:
        basis = (
            ", Antrag vor Ablauf des bisherigen Titels (gültig bis "
            f"{_d(e.previous_title_valid_until)})"
        )
    elif e.order_basis == "hardship_order":
        basis = ", Anordnung zur Vermeidung einer unbilligen Härte (§ 81 Abs. 4 S. 3 AufenthG)"
    return (
        f"Fiktionsbescheinigung {e.certificate_number} ausgestellt "
        f"({_label(_FICTION, e.kind)}), gültig {_d(e.valid_from)} bis {_d(e.valid_until)}"
        f"{procedure}{basis}"
    )


def _fiction_extended(e: CaseFile.FictionCertificateExtended) -> str:
    sheet = ", auf neuem Trägervordruck" if e.new_carrier_sheet_number is not None else ""
    return (
        f"Fiktionsbescheinigung {e.certificate_number} verlängert bis {_d(e.valid_until)} "
        f"(bisher bis {_d(e.previous_valid_until)}){sheet}"
    )


def _correspondence(e: CaseFile.CorrespondenceRecorded) -> str:
    direction = "eingegangen von" if e.direction == "received" else "gesendet an"
    attachments = (
        f", Anlagen: Dokument {', '.join(str(n) for n in e.attachment_numbers)}"
        if e.attachment_numbers
        else ""
    )
    return (
        f"Schriftverkehr {e.correspondence_number} {direction} "
        f"{_label(_COUNTERPART, e.counterpart_kind)}{attachments}"
    )


def _personal_data_erased(e: CaseFile.PersonalDataErased) -> str:
    rule = f", Regel {e.rule_id}" if e.rule_id else ""
    linked = f", mit {len(e.linked_ids)} verknüpften Vorgängen" if e.linked_ids else ""
    return (
        f"Personenbezogene Daten gelöscht (Schlüssel vernichtet): "
        f"{_label(ERASURE_GROUNDS, e.legal_ground)}{rule}{linked}; freigegeben von "
        f"{e.approved_by}"
    )


def _taken_over(e: CaseFile.TakenOver) -> str:
    return (
        f"Akte {e.from_reference} von Ausländerbehörde {e.from_office_id} übernommen "
        f"(Umzug, § 67 AufenthV; dort abgegeben am {_d(e.sent_at.date())}, {e.parts} Einträge)"
    )


def _part_taken_over(e: CaseFile.PartTakenOver) -> str:
    # The original's own description, from its non-personal fields, with where it came from.
    original = describe(e.source_event(e.originator_id))
    return (
        f"übernommen von Ausländerbehörde {e.from_office_id} am {_d(e.at.date())} "
        f"(dort Eintrag {e.source_version} vom {_d(e.source_at.date())}): {original}"
    )


_DESCRIBE: Final[Mapping[type[Any], Callable[[Any], str]]] = {
    CaseFile.TakenOver: _taken_over,
    CaseFile.PartTakenOver: _part_taken_over,
    CaseFile.Opened: _opened,
    CaseFile.MasterDataCorrected: _master_data_corrected,
    CaseFile.DocumentAttached: _document_attached,
    CaseFile.DocumentReviewed: lambda e: f"Dokument {e.document_number} gesichtet",
    CaseFile.ProcedureReceived: _procedure_received,
    CaseFile.ProcedureAssigned: lambda e: (
        f"Vorgang {e.procedure_number} zugewiesen an {e.assignee}"
    ),
    CaseFile.DocumentsRequested: lambda e: (
        f"Unterlagen zu Vorgang {e.procedure_number} angefordert "
        f"({len(e.what)} Positionen), Frist bis {_d(e.due_on)}"
    ),
    CaseFile.ProcedureDecided: _procedure_decided,
    CaseFile.ProcedureClosed: lambda e: f"Vorgang {e.procedure_number} abgeschlossen",
    CaseFile.ResidenceDocumentIssued: _residence_document_issued,
    CaseFile.ResidenceDocumentExtended: _residence_document_extended,
    CaseFile.EatCardOrdered: lambda e: (
        f"eAT-Karte zu Aufenthaltsdokument {e.residence_document_number} bei der "
        "Bundesdruckerei bestellt (Biometrie erfasst)"
    ),
    CaseFile.EatCardArrived: lambda e: (
        f"eAT-Karte zu Aufenthaltsdokument {e.residence_document_number} eingetroffen"
    ),
    CaseFile.EatCardHandedOver: lambda e: (
        f"eAT-Karte zu Aufenthaltsdokument {e.residence_document_number} ausgehändigt"
    ),
    CaseFile.EatTransferredToNewPassport: lambda e: (
        f"Aufenthaltsdokument {e.residence_document_number} auf neuen Pass übertragen "
        "(Übertrag, neue Karte bestellt)"
    ),
    CaseFile.ResidenceDocumentEnded: lambda e: (
        f"Aufenthaltsdokument {e.residence_document_number} beendet: "
        f"{_label(_RESIDENCE_END, e.end_reason)}"
    ),
    CaseFile.FictionCertificateIssued: _fiction_issued,
    CaseFile.FictionCertificateExtended: _fiction_extended,
    CaseFile.FictionCertificateEnded: lambda e: (
        f"Fiktionsbescheinigung {e.certificate_number} beendet: "
        f"{_label(_FICTION_END, e.end_reason)}"
    ),
    CaseFile.IntegrationCourseEntitlementIssued: lambda e: (
        f"Berechtigung zum Integrationskurs erteilt (§ 44 AufenthG){_basis(e.legal_basis)}"
    ),
    CaseFile.IntegrationCourseObligationImposed: lambda e: (
        f"Verpflichtung zum Integrationskurs auferlegt (§ 44a AufenthG){_basis(e.legal_basis)}"
    ),
    CaseFile.EntryProcedureRequested: lambda e: (
        f"Vorabzustimmung {e.entry_procedure_number} beantragt (§ 31 AufenthV)"
        f"{_basis(e.legal_basis)}"
    ),
    CaseFile.EntryConsentGiven: lambda e: (
        f"Vorabzustimmung {e.entry_procedure_number} erteilt, gültig bis {_d(e.valid_until)}"
    ),
    CaseFile.EntryConsentRefused: lambda e: f"Vorabzustimmung {e.entry_procedure_number} versagt",
    CaseFile.EntryConsentDeemedGiven: lambda e: (
        f"Zustimmung {e.entry_procedure_number} gilt als erteilt (Schweigefrist, {e.source}), "
        f"Frist abgelaufen am {_d(e.period_ended_on)}"
    ),
    CaseFile.InquiryReceived: lambda e: (
        f"Anfrage {e.inquiry_number} eingegangen ({_label(_INQUIRY, e.kind)})"
    ),
    CaseFile.InquiryAnswered: lambda e: f"Anfrage {e.inquiry_number} beantwortet",
    CaseFile.CorrespondenceRecorded: _correspondence,
    CaseFile.NoteAdded: lambda e: f"Vermerk {e.note_number} angelegt",
    CaseFile.TransferredToOffice: lambda e: (
        f"Akte an Ausländerbehörde {e.to_office_id} abgegeben (Umzug, § 67 AufenthV)"
    ),
    CaseFile.HandOverReturned: lambda e: (
        f"Abgabe an Ausländerbehörde {e.to_office_id} zurückgekommen ({e.reason}): "
        "die Akte ist wieder aktiv"
    ),
    CaseFile.Closed: lambda e: f"Akte geschlossen: {_label(_CLOSURE, e.closure_reason)}",
    CaseFile.PersonalDataErased: _personal_data_erased,
    CaseFile.AppointmentAttendanceRecorded: lambda e: (
        f"Termin ({e.appointment_type}{_basis(e.legal_basis)}) "
        + ("wahrgenommen" if e.outcome == "attended" else "nicht wahrgenommen")
    ),
    CaseFile.RegistrationNoticeRecorded: lambda e: (
        f"Mitteilung der Meldebehörde {e.sender} (§ 72 AufenthV): "
        f"{_label(_NOTICE, e.notice_kind)}, wirksam am {_d(e.effective_on)}"
    ),
}


def described_event_classes() -> frozenset[type[Any]]:
    """The event classes that have a German description."""
    return frozenset(_DESCRIBE)


def describe(event: E) -> str:
    """What the event means, in German, from its non-personal fields only."""
    return _facts(type(event)).describe(event)


def event_kinds() -> list[str]:
    """The names of the case file's event classes, as history entries name them."""
    return sorted(cls.__name__ for cls in _DESCRIBE)


# ------------------------------------------------------------------ entries


@dataclass(frozen=True)
class HistoryEntry:
    """One event of a case file's history, as people read it."""

    version: int
    kind: str
    description: str
    by: str
    at: datetime
    """Business time: when it happened at the office."""
    recorded_at: datetime
    """When the system recorded it (the event's ``timestamp``)."""
    legal_basis: str | None
    reason: str | None
    """The free-text reason, where the event has one and the reader may see it."""
    data: dict[str, Any]
    """The event's other fields; personal ones only for readers who may see them."""
    withheld: list[str]
    """The personal fields left out for this reader (their names only)."""


@dataclass(frozen=True)
class _EventClassFacts:
    """What every event of one class shares, worked out once per class."""

    kind: str
    describe: Callable[[Any], str]
    personal: tuple[str, ...]
    """Its personal fields, sorted (the order ``withheld`` lists them in)."""


_FACTS: dict[type[E], _EventClassFacts] = {}


def _facts(cls: type[E]) -> _EventClassFacts:
    facts = _FACTS.get(cls)
    if facts is None:
        describe_event = _DESCRIBE.get(cls)
        if describe_event is None:
            name = cls.__name__

            def describe_event(_: Any) -> str:
                # An event class added without a description: still a readable line.
                return f"Ereignis {name}"

        facts = _FACTS[cls] = _EventClassFacts(
            kind=cls.__name__,
            describe=describe_event,
            personal=tuple(sorted(personal_fields(cls))),
        )
    return facts


def history_entry_fields(event: E, *, with_personal_data: bool) -> dict[str, Any]:
    """The fields of :func:`history_entry` as a plain dict, in :class:`HistoryEntry`'s
    order: what a JSON history is written from (thousands of entries, no object each)."""
    facts = _facts(type(event))
    data = dict(vars(event))
    for name in ENVELOPE_FIELDS:
        data.pop(name, None)
    withheld: list[str] = []
    if not with_personal_data:
        withheld = [name for name in facts.personal if name in data]
        for name in withheld:
            del data[name]
    reason = data.get("reason")
    return {
        "version": event.originator_version,
        "kind": facts.kind,
        "description": facts.describe(event),
        "by": event.by,
        "at": event.at,
        "recorded_at": event.timestamp,
        "legal_basis": data.get("legal_basis"),
        "reason": reason if isinstance(reason, str) else None,
        "data": data,
        "withheld": withheld,
    }


def history_entry(event: E, *, with_personal_data: bool) -> HistoryEntry:
    """The entry for one event; personal fields only ``with_personal_data``."""
    return HistoryEntry(**history_entry_fields(event, with_personal_data=with_personal_data))


@dataclass(frozen=True)
class HistoryFilter:
    """Which events a history shows; every criterion given must hold."""

    at_from: datetime | None = None
    """Business time at or after this."""
    at_until: datetime | None = None
    """Business time before this (exclusive, so that consecutive ranges do not overlap)."""
    by: str | None = None
    kinds: frozenset[str] = frozenset()
    """Event class names; empty: every kind."""

    def matches(self, event: E) -> bool:
        if self.at_from is not None and event.at < self.at_from:
            return False
        if self.at_until is not None and event.at >= self.at_until:
            return False
        if self.by is not None and event.by != self.by:
            return False
        return not self.kinds or type(event).__name__ in self.kinds


def select_events(events: Iterable[E], criteria: HistoryFilter) -> list[E]:
    return [event for event in events if criteria.matches(event)]


# ------------------------------------------------------------ state and diff


def case_state(case: CaseFile) -> dict[str, Any]:
    """The case file's state as plain data (dicts, lists, scalars), for comparisons.

    Its public attributes, version and the recorded time of its last event: what the
    file says, not how the library keeps it (pending events, caches).
    """
    state: dict[str, Any] = {"version": case.version, "modified_on": case.modified_on}
    for name, value in vars(case).items():
        if not name.startswith("_"):
            state[name] = _plain(value)
    return state


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


@dataclass(frozen=True)
class StateChange:
    """One value that differs between two states, named by a JSON Pointer (RFC 6901)."""

    path: str
    """E.g. ``/procedures/0/status`` (list positions count from 0)."""
    before: Any
    """``None`` where the value did not exist yet."""
    after: Any


def state_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[StateChange]:
    """Every leaf value that differs, in a stable order (keys as in ``after``)."""
    changes: list[StateChange] = []
    _compare("", before, after, changes)
    return changes


_ABSENT: Final = object()


def _compare(path: str, before: Any, after: Any, changes: list[StateChange]) -> None:
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        for key in [*after, *(k for k in before if k not in after)]:
            _compare(
                f"{path}/{_escape(str(key))}",
                before.get(key, _ABSENT),
                after.get(key, _ABSENT),
                changes,
            )
        return
    if _is_list(before) and _is_list(after):
        for index in range(max(len(before), len(after))):
            _compare(
                f"{path}/{index}",
                before[index] if index < len(before) else _ABSENT,
                after[index] if index < len(after) else _ABSENT,
                changes,
            )
        return
    if before is _ABSENT and isinstance(after, Mapping):
        # A new part of the file (a procedure, a document ...): each of its values.
        _compare(path, {}, after, changes)
        return
    if before is _ABSENT and _is_list(after):
        _compare(path, [], after, changes)
        return
    if before != after:
        changes.append(
            StateChange(
                path or "/",
                None if before is _ABSENT else before,
                None if after is _ABSENT else after,
            )
        )


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")
