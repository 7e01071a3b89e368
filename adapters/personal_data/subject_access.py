"""Subject access (Art. 15 DSGVO): everything Akte holds about one person, decrypted.

For a case file: its current state, its whole history with the personal fields (each
event described in German), the records linked to it (commitment declarations, contact
form submissions, appointments, registration notices recorded on it) and the office's
waitlist entries of the same person,
each with its state and events, the read-access log entries about the file (who read it
when, through which route), and its erasure status. As a
JSON document and as a readable HTML page (German headings, printable).

The export itself is personal data: the HTTP route is logged in the read-access log like
every read of the file, and the CLI writes where the operator says.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from adapters.reports.templates import render
from domain.case_file import CaseFile
from domain.history import ENVELOPE_FIELDS, case_state, history_entry
from domain.personal import is_redacted
from projections.audit import read_access_log
from projections.errors import ProjectionError
from projections.storage import ViewsStore
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
    linked = service.data_protection.linked_records(case_id)
    declarations = []
    for declaration_id in linked.declarations:
        declaration = service.declarations.get_declaration(UUID(declaration_id))
        declarations.append(
            {
                "state": _aggregate_state(declaration),
                "events": _events(service.declarations.declaration_events(UUID(declaration_id))),
            }
        )
    submissions = []
    for submission_id in linked.submissions:
        submission = service.intake.get_submission(UUID(submission_id))
        submissions.append(
            {
                "state": _aggregate_state(submission),
                "events": _events(service.intake.submission_events(UUID(submission_id))),
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
    notices = []
    for notice_id in linked.registration_notices:
        notice: Any = service.repository.get(UUID(notice_id))
        notices.append(
            {
                "state": _aggregate_state(notice),
                "events": _events(service.events.get(UUID(notice_id))),
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
        "registration_notices": notices,
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


def _shown(value: Any) -> str | None:
    """A value as the page writes it; ``None`` for a value that was erased."""
    if value is None:
        return "–"
    if isinstance(value, str) and is_redacted(value):
        return None
    if value == "0001-01-01":
        return None
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def as_html(export: SubjectAccess) -> str:
    """A readable, printable document in German (templates/subject_access.html.j2)."""
    master = export.document["case_file"].get("master_data", {})
    return render(
        "adapters.personal_data",
        "subject_access.html.j2",
        doc=export.document,
        master_data=[(_MASTER_LABELS.get(name, name), value) for name, value in master.items()],
        shown=_shown,
    )
