"""Subject access (Art. 15 DSGVO): everything Akte holds about one person, decrypted.

For a case file: its current state, its whole history with the personal fields (each
event described in German), the records linked to it (commitment declarations, contact
form submissions, appointments) and the office's waitlist entries of the same person,
each with its state and events, the read-access log entries about the file (who read it
when, through which route), and its erasure status. As a
JSON document and as a readable HTML page (German headings, printable).

The export itself is personal data: the HTTP route is logged in the read-access log like
every read of the file, and the CLI writes where the operator says.
"""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from domain.case_file import CaseFile
from domain.history import ENVELOPE_FIELDS, case_state, history_entry
from domain.personal import is_redacted
from projections import read_access_log
from projections.engine import ProjectionError, ViewsStore
from service import AkteService

FORMAT_VERSION: Final = 1
_READS_PAGE: Final = 500


@dataclass(frozen=True)
class SubjectAccess:
    """The export, as plain data (``document``) ready for JSON."""

    case_id: UUID
    document: dict[str, Any]


def plain(value: Any) -> Any:
    """Dates, times, ids and dataclasses as JSON values."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(item) for item in value]
    return value


def _aggregate_state(aggregate: Any) -> dict[str, Any]:
    state = {"id": str(aggregate.id), "version": aggregate.version}
    for name, value in vars(aggregate).items():
        if not name.startswith("_"):
            state[name] = plain(value)
    return state


def _events(events: Iterable[Any]) -> list[dict[str, Any]]:
    return [
        {
            "version": event.originator_version,
            "kind": type(event).__name__,
            "by": getattr(event, "by", None),
            "at": plain(getattr(event, "at", None)),
            "recorded_at": plain(event.timestamp),
            "data": {
                name: plain(value)
                for name, value in vars(event).items()
                if name not in ENVELOPE_FIELDS
            },
        }
        for event in events
    ]


def subject_access(
    service: AkteService,
    views: ViewsStore | None,
    case_id: UUID,
    *,
    requested_by: str,
) -> SubjectAccess:
    """Everything about the person of ``case_id`` (raises ``CaseNotFound``)."""
    case: CaseFile = service.get_case(case_id)
    events = service.case_events(case_id)
    linked = service.linked_records(case_id)
    declarations = []
    for declaration_id in linked.declarations:
        declaration = service.get_declaration(UUID(declaration_id))
        declarations.append(
            {
                "state": _aggregate_state(declaration),
                "events": _events(service.declaration_events(UUID(declaration_id))),
            }
        )
    submissions = []
    for submission_id in linked.submissions:
        submission = service.get_submission(UUID(submission_id))
        submissions.append(
            {
                "state": _aggregate_state(submission),
                "events": _events(service.submission_events(UUID(submission_id))),
            }
        )
    appointments = []
    for appointment_id in linked.appointments:
        try:
            appointment: Any = service.repository.get(UUID(appointment_id))
        except Exception:  # an appointment of another store or one that was never saved
            continue
        appointments.append(
            {
                "state": _aggregate_state(appointment),
                "events": _events(service.events.get(UUID(appointment_id))),
            }
        )
    waitlist_entries = []
    for entry_id in linked.waitlist_entries:
        entry: Any = service.repository.get(UUID(entry_id))
        waitlist_entries.append(
            {
                "state": _aggregate_state(entry),
                "events": _events(service.events.get(UUID(entry_id))),
            }
        )
    reads: list[dict[str, Any]] = []
    reads_complete = views is not None
    if views is not None:
        try:
            cursor: str | None = None
            while True:
                page = read_access_log.reads(
                    views, case_id=str(case_id), limit=_READS_PAGE, cursor=cursor
                )
                reads += [
                    {"by": row.by, "at": row.at.isoformat(), "endpoint": row.endpoint}
                    for row in page.items
                ]
                cursor = page.next_cursor
                if cursor is None:
                    break
        except ProjectionError:
            # The read model is not built yet: say so rather than fail the export.
            reads_complete = False
    history = [history_entry(event, with_personal_data=True) for event in events]
    erased_at = case.personal_data_erased_at
    document: dict[str, Any] = {
        "format": f"akte-subject-access/{FORMAT_VERSION}",
        "legal_basis": "Art. 15 DSGVO",
        "generated_at": service.clock().isoformat(),
        "requested_by": requested_by,
        "case_id": str(case_id),
        "office_id": case.office_id,
        "reference": case.reference,
        "personal_data_erased_at": plain(erased_at),
        "note": (
            "Die personenbezogenen Daten dieser Akte wurden gelöscht; gespeichert sind nur "
            "noch nicht personenbezogene Angaben (Art der Vorgänge, Zeitpunkte, Rechtsgrundlagen)."
            if erased_at is not None
            else None
        ),
        "case_file": plain(case_state(case)),
        "history": [
            {
                "version": entry.version,
                "kind": entry.kind,
                "description": entry.description,
                "by": entry.by,
                "at": entry.at.isoformat(),
                "recorded_at": entry.recorded_at.isoformat(),
                "data": plain(entry.data),
            }
            for entry in history
        ],
        "commitment_declarations": declarations,
        "contact_submissions": submissions,
        "appointments": appointments,
        "waitlist_entries": waitlist_entries,
        "read_access_log": reads,
        "read_access_log_complete": reads_complete,
    }
    return SubjectAccess(case_id, document)


def as_json(export: SubjectAccess) -> str:
    return json.dumps(export.document, ensure_ascii=False, indent=2) + "\n"


_MASTER_LABELS: Final = {
    "surname": "Familienname",
    "given_names": "Vornamen",
    "date_of_birth": "Geburtsdatum",
    "nationality": "Staatsangehörigkeit",
    "passport_number": "Passnummer",
    "address": "Anschrift",
}


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, str) and is_redacted(value):
        return "<em>[gelöscht]</em>"
    if value == "0001-01-01":
        return "<em>[gelöscht]</em>"
    if isinstance(value, dict | list):
        return html.escape(json.dumps(value, ensure_ascii=False))
    return html.escape(str(value))


def _table(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(label)}</th><td>{_cell(value)}</td></tr>" for label, value in rows
    )
    return f"<table>{body}</table>"


def _record_section(title: str, records: list[dict[str, Any]]) -> str:
    if not records:
        return f"<h2>{html.escape(title)}</h2><p>Keine.</p>"
    parts = [f"<h2>{html.escape(title)}</h2>"]
    for record in records:
        state = record["state"]
        parts.append(f"<h3>{html.escape(str(state.get('id')))}</h3>")
        parts.append(_table((name, value) for name, value in state.items() if name != "id"))
        parts.append("<ol>")
        for event in record["events"]:
            parts.append(
                f"<li>{html.escape(event['kind'])}, {html.escape(str(event['at']))}, "
                f"{html.escape(str(event['by']))}: {_cell(event['data'])}</li>"
            )
        parts.append("</ol>")
    return "".join(parts)


def as_html(export: SubjectAccess) -> str:
    """A readable, printable document (German)."""
    doc = export.document
    case = doc["case_file"]
    master = case.get("master_data", {})
    parts = [
        "<!doctype html><html lang='de'><head><meta charset='utf-8'>",
        f"<title>Auskunft nach Art. 15 DSGVO – Akte {html.escape(doc['reference'])}</title>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #999;"
        "padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eee}"
        "em{color:#a00}</style></head><body>",
        "<h1>Auskunft über gespeicherte personenbezogene Daten (Art. 15 DSGVO)</h1>",
        _table(
            [
                ("Aktenzeichen", doc["reference"]),
                ("Ausländerbehörde", doc["office_id"]),
                ("Erstellt am", doc["generated_at"]),
                ("Erstellt von", doc["requested_by"]),
                ("Daten gelöscht am", doc["personal_data_erased_at"]),
            ]
        ),
    ]
    if doc["note"]:
        parts.append(f"<p><strong>{html.escape(doc['note'])}</strong></p>")
    parts.append("<h2>Stammdaten</h2>")
    parts.append(_table((_MASTER_LABELS.get(k, k), v) for k, v in master.items()))
    parts.append("<h2>Akte (aktueller Stand)</h2>")
    parts.append(
        _table(
            (name, value)
            for name, value in case.items()
            if name not in ("master_data", "personal_data_erased_at")
        )
    )
    parts.append("<h2>Verlauf</h2><ol>")
    for entry in doc["history"]:
        parts.append(
            f"<li><strong>{html.escape(entry['description'])}</strong><br>"
            f"{html.escape(entry['at'])}, {html.escape(entry['by'])}"
            f"{_table(entry['data'].items()) if entry['data'] else ''}</li>"
        )
    parts.append("</ol>")
    parts.append(_record_section("Verpflichtungserklärungen", doc["commitment_declarations"]))
    parts.append(_record_section("Kontaktformular-Einsendungen", doc["contact_submissions"]))
    parts.append(_record_section("Termine", doc["appointments"]))
    parts.append(_record_section("Wartelisteneinträge", doc["waitlist_entries"]))
    parts.append("<h2>Wer hat die Akte gelesen (Zugriffsprotokoll)</h2>")
    if doc["read_access_log"]:
        parts.append(
            "<table><tr><th>Wer</th><th>Wann</th><th>Über</th></tr>"
            + "".join(
                f"<tr><td>{html.escape(r['by'])}</td><td>{html.escape(r['at'])}</td>"
                f"<td>{html.escape(r['endpoint'])}</td></tr>"
                for r in doc["read_access_log"]
            )
            + "</table>"
        )
    else:
        parts.append("<p>Keine Lesezugriffe verzeichnet.</p>")
    parts.append("</body></html>\n")
    return "".join(parts)
