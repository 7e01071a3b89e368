"""Scratch read model "what would another validity rule have saved", and its query.

The what-if replay (``adapters/views/whatif_replay.py``) builds this read model from the event log
into a throw-away views store of its own (never the live views), then asks
:func:`whatif_result` what a :class:`~domain.whatif.ValidityPolicy` would have saved.
The read model does not depend on the policy: it keeps the papers that can be extended
and what happened to them, and the policy is applied when it is read, so one replay
could answer several policies.

Tables (one row per ...):

- ``whatif_documents``: Fiktionsbescheinigung or residence document as issued, with the
  day and reason it ended;
- ``whatif_extensions``: ``FictionCertificateExtended`` / ``ResidenceDocumentExtended``,
  with what came with it: a new carrier sheet, eAT card steps up to the next extension;
- ``whatif_visits``: ``AppointmentAttendanceRecorded`` (the counter visits).

What counts as saved (per extension in the period, by the Berlin month of the
extension): the extension (see :func:`domain.whatif.extension_saved`); the counter visit
it needed (the attended appointment of the same file on the day of the extension or up
to :data:`VISIT_LINK_DAYS` days before; where the office recorded no attendance at all
in the period, one visit per extension is assumed, and the result says so); the
caseworker actions: the extension event, a new carrier sheet, the eAT card steps
(ordered, arrived, handed over) and the recorded attendance.

No personal data: file numbers, staff ids and event names only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Literal, TypeVar

from domain.case_file import CaseFile
from domain.personal import was_given
from domain.whatif import (
    COMMON_ASSUMPTIONS,
    FICTION_CERTIFICATE,
    RESIDENCE_DOCUMENT,
    DocumentFamily,
    IssuedDocument,
    ValidityPolicy,
    extension_saved,
)
from projections.figures.statistics import OFFICE_TIME_ZONE
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsSession

R = TypeVar("R")

NAME: Final = "whatif"
VISIT_LINK_DAYS: Final = 3
"""An attended appointment up to this many days before an extension was the visit for it."""
ATTENDED: Final = "attended"

VisitBasis = Literal["appointment", "assumed", "none"]


@dataclass
class DocumentRow:
    case_id: str
    office_id: str
    reference: str
    family: str
    number: int
    kind: str
    legal_basis: str
    valid_from: date
    valid_until: date
    issued_at: datetime
    ended_at: datetime | None
    end_reason: str


@dataclass
class ExtensionRow:
    case_id: str
    office_id: str
    reference: str
    version: int
    family: str
    number: int
    at: datetime
    actor: str
    event: str
    previous_valid_until: date
    valid_until: date
    new_sheet: int
    card_steps: int


@dataclass
class VisitRow:
    case_id: str
    office_id: str
    reference: str
    version: int
    at: datetime
    actor: str
    appointment_id: str
    appointment_type: str
    outcome: str


DOCUMENTS: Final = Table(f"{NAME}_documents", DocumentRow, key=("family", "number"))
EXTENSIONS: Final = Table(
    f"{NAME}_extensions", ExtensionRow, key=("version",), indexes=(("office_id", "at"),)
)
VISITS: Final = Table(f"{NAME}_visits", VisitRow, key=("version",), indexes=(("office_id", "at"),))


# ------------------------------------------------------------------ handlers


def _fiction_issued(case: CaseRows, event: CaseFile.FictionCertificateIssued) -> None:
    case.put(
        DOCUMENTS,
        DocumentRow(
            case.case_id,
            case.office_id,
            case.reference,
            FICTION_CERTIFICATE,
            event.certificate_number,
            event.kind,
            "",
            event.valid_from,
            event.valid_until,
            event.at,
            None,
            "",
        ),
    )


def _residence_issued(case: CaseRows, event: CaseFile.ResidenceDocumentIssued) -> None:
    case.put(
        DOCUMENTS,
        DocumentRow(
            case.case_id,
            case.office_id,
            case.reference,
            RESIDENCE_DOCUMENT,
            event.residence_document_number,
            event.kind,
            event.legal_basis,
            event.valid_from,
            event.valid_until,
            event.at,
            None,
            "",
        ),
    )


def _extension(
    case: CaseRows,
    event: CaseFile.FictionCertificateExtended | CaseFile.ResidenceDocumentExtended,
    family: str,
    number: int,
    *,
    new_sheet: bool,
) -> None:
    case.put(
        EXTENSIONS,
        ExtensionRow(
            case.case_id,
            case.office_id,
            case.reference,
            event.originator_version,
            family,
            number,
            event.at,
            event.by,
            type(event).__name__,
            event.previous_valid_until,
            event.valid_until,
            int(new_sheet),
            0,
        ),
    )


def _fiction_extended(case: CaseRows, event: CaseFile.FictionCertificateExtended) -> None:
    _extension(
        case,
        event,
        FICTION_CERTIFICATE,
        event.certificate_number,
        new_sheet=was_given(event, "new_carrier_sheet_number"),
    )


def _residence_extended(case: CaseRows, event: CaseFile.ResidenceDocumentExtended) -> None:
    _extension(case, event, RESIDENCE_DOCUMENT, event.residence_document_number, new_sheet=False)


def _ended(family: str, number: int, case: CaseRows, at: datetime, reason: str) -> None:
    row = case.get(DOCUMENTS, family, number)
    if row is not None and row.ended_at is None:
        row.ended_at = at
        row.end_reason = reason
        case.put(DOCUMENTS, row)


def _fiction_ended(case: CaseRows, event: CaseFile.FictionCertificateEnded) -> None:
    _ended(FICTION_CERTIFICATE, event.certificate_number, case, event.at, event.end_reason)


def _residence_ended(case: CaseRows, event: CaseFile.ResidenceDocumentEnded) -> None:
    _ended(RESIDENCE_DOCUMENT, event.residence_document_number, case, event.at, event.end_reason)


def _card_step(
    case: CaseRows,
    event: CaseFile.EatCardOrdered | CaseFile.EatCardArrived | CaseFile.EatCardHandedOver,
) -> None:
    """A card step after an extension of the document came with that extension."""
    latest: ExtensionRow | None = None
    for row in case.rows(EXTENSIONS):
        if (
            row.family == RESIDENCE_DOCUMENT
            and row.number == event.residence_document_number
            and (latest is None or row.version > latest.version)
        ):
            latest = row
    if latest is not None:
        latest.card_steps += 1
        case.put(EXTENSIONS, latest)


def _attendance(case: CaseRows, event: CaseFile.AppointmentAttendanceRecorded) -> None:
    case.put(
        VISITS,
        VisitRow(
            case.case_id,
            case.office_id,
            case.reference,
            event.originator_version,
            event.at,
            event.by,
            event.appointment_id,
            event.appointment_type,
            event.outcome,
        ),
    )


PROJECTION: Final = Projection(
    name=NAME,
    tables=(DOCUMENTS, EXTENSIONS, VISITS),
    handlers=handlers(
        on(CaseFile.FictionCertificateIssued, _fiction_issued),
        on(CaseFile.FictionCertificateExtended, _fiction_extended),
        on(CaseFile.FictionCertificateEnded, _fiction_ended),
        on(CaseFile.ResidenceDocumentIssued, _residence_issued),
        on(CaseFile.ResidenceDocumentExtended, _residence_extended),
        on(CaseFile.ResidenceDocumentEnded, _residence_ended),
        on(CaseFile.EatCardOrdered, _card_step),
        on(CaseFile.EatCardArrived, _card_step),
        on(CaseFile.EatCardHandedOver, _card_step),
        on(CaseFile.AppointmentAttendanceRecorded, _attendance),
    ),
    # What happened stays a fact, whatever became of the file later.
    active_cases_only=False,
)


# ---------------------------------------------------------------------- result


@dataclass(frozen=True)
class SavedExtension:
    """One extension that would not have been needed: the drill-down of the figures."""

    case_id: str
    reference: str
    event: str
    version: int
    at: datetime
    actor: str
    document: str
    """``fiction_certificate`` or the residence document's kind (``duldung``)."""
    document_number: int
    visit: VisitBasis
    """``appointment``: the attended appointment below; ``assumed``: no attendance
    recorded in the office, one visit assumed; ``none``: attendance is recorded in the
    office, but none for this extension."""
    appointment_id: str | None
    visit_at: datetime | None
    actions: int
    """Caseworker actions that came with it (the extension itself included)."""


@dataclass(frozen=True)
class WhatIfMonth:
    month: str
    """``YYYY-MM`` (Berlin)."""
    extensions: int
    """Extensions of papers the policy applies to, as they really happened."""
    extensions_saved: int
    visits_saved: int
    actions_saved: int


@dataclass(frozen=True)
class WhatIfResult:
    policy: str
    label: str
    parameters: dict[str, str]
    office_id: str
    period_from: date
    period_until: date
    position: int
    """The last notification of the log the replay read."""
    extensions: int
    extensions_saved: int
    visits_saved: int
    actions_saved: int
    visits_basis: Literal["appointments", "assumed"]
    months: tuple[WhatIfMonth, ...]
    saved: tuple[SavedExtension, ...]
    assumptions: tuple[str, ...]
    definitions: dict[str, str] = field(default_factory=dict)


DEFINITIONS: Final = {
    "extensions": "Verlängerungen (FictionCertificateExtended, ResidenceDocumentExtended) der "
    "Papiere, für die die Regel gilt, im Zeitraum, im Monat der Verlängerung (Ortszeit Berlin).",
    "extensions_saved": "Davon Verlängerungen, die unter der Regel nicht nötig gewesen wären.",
    "visits_saved": "Vorsprachen (wahrgenommene Termine), die für diese Verlängerungen nötig "
    "waren.",
    "actions_saved": "Arbeitsschritte der Sachbearbeitung, die mit diesen Verlängerungen "
    "wegfallen: die Verlängerung selbst, ein neues Trägerblatt, Kartenschritte des eAT "
    "(bestellt, eingetroffen, ausgehändigt) und die erfasste Vorsprache.",
}


def _local_day(at: datetime) -> date:
    return at.astimezone(OFFICE_TIME_ZONE).date()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time(), OFFICE_TIME_ZONE)


def _month_keys(period_from: date, period_until: date) -> list[str]:
    keys = []
    year, month = period_from.year, period_from.month
    while (year, month) <= (period_until.year, period_until.month):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return keys


def _fetch(session: ViewsSession, table: Table[R], where: str, params: Sequence[Any]) -> list[R]:
    columns = table.schema.column_names
    decoders = [session.decoder(column.type) for column in table.schema.columns]
    rows = session.fetch(
        f"SELECT {', '.join(columns)} FROM {session.table(table.name)} WHERE {where}", params
    )
    return [
        table.row(
            [v if f is None or v is None else f(v) for v, f in zip(raw, decoders, strict=True)]
        )
        for raw in rows
    ]


def whatif_result(
    session: ViewsSession,
    policy: ValidityPolicy,
    *,
    office_id: str,
    period_from: date,
    period_until: date,
    position: int,
) -> WhatIfResult:
    """What ``policy`` would have saved in ``office_id`` from ``period_from`` to
    ``period_until`` (Berlin days, both included), read from the scratch read model."""
    p = session.param
    encode = session.encoder("timestamp") or (lambda value: value)
    # Extensions are chosen by their Berlin day: read a day either side, then filter.
    lower = encode(_midnight(period_from - timedelta(days=1)))
    upper = encode(_midnight(period_until + timedelta(days=2)))
    extensions: list[ExtensionRow] = [
        row
        for row in _fetch(
            session,
            EXTENSIONS,
            f"office_id = {p} AND at >= {p} AND at < {p}",
            [office_id, lower, upper],
        )
        if period_from <= _local_day(row.at) <= period_until
    ]
    case_ids = sorted({row.case_id for row in extensions})
    documents: dict[tuple[str, str, int], DocumentRow] = {}
    visits_by_case: dict[str, list[VisitRow]] = defaultdict(list)
    for row in _by_cases(session, DOCUMENTS, case_ids):
        documents[row.case_id, row.family, row.number] = row
    for attended in _by_cases(session, VISITS, case_ids):
        if attended.outcome == ATTENDED:
            visits_by_case[attended.case_id].append(attended)
    visit_lower = encode(_midnight(period_from - timedelta(days=VISIT_LINK_DAYS + 1)))
    recorded = session.fetch(
        f"SELECT COUNT(*) FROM {session.table(VISITS.name)} "
        f"WHERE office_id = {p} AND at >= {p} AND at < {p}",
        (office_id, visit_lower, upper),
    )
    appointments_recorded = bool(recorded and recorded[0][0])
    extensions.sort(key=lambda row: (row.at, row.reference, row.version))
    months = {key: [0, 0, 0, 0] for key in _month_keys(period_from, period_until)}
    used: set[tuple[str, int]] = set()
    saved: list[SavedExtension] = []
    for extension in extensions:
        document = documents.get((extension.case_id, extension.family, extension.number))
        if document is None:
            continue  # issued before the log began: nothing is known of it
        issued = IssuedDocument(
            family=_family(document.family),
            kind=document.kind,
            legal_basis=document.legal_basis,
            valid_from=document.valid_from,
            valid_until=document.valid_until,
        )
        if not policy.applies_to(issued):
            continue
        month = months[_local_day(extension.at).strftime("%Y-%m")]
        month[0] += 1
        # Visits are linked for every extension, saved or not: a visit serves one only.
        visit = _linked_visit(extension, visits_by_case.get(extension.case_id, []), used)
        ended_on = None if document.ended_at is None else _local_day(document.ended_at)
        if not extension_saved(
            policy, issued, extended_to=extension.valid_until, ended_on=ended_on
        ):
            continue
        basis: VisitBasis
        if visit is not None:
            basis = "appointment"
        elif appointments_recorded:
            basis = "none"
        else:
            basis = "assumed"
        actions = 1 + extension.new_sheet + extension.card_steps + (visit is not None)
        month[1] += 1
        month[2] += 0 if basis == "none" else 1
        month[3] += actions
        saved.append(
            SavedExtension(
                case_id=extension.case_id,
                reference=extension.reference,
                event=extension.event,
                version=extension.version,
                at=extension.at,
                actor=extension.actor,
                document=(
                    FICTION_CERTIFICATE if document.family == FICTION_CERTIFICATE else document.kind
                ),
                document_number=extension.number,
                visit=basis,
                appointment_id=None if visit is None else visit.appointment_id,
                visit_at=None if visit is None else visit.at,
                actions=actions,
            )
        )
    month_figures = tuple(WhatIfMonth(key, *values) for key, values in months.items())
    assumptions = [*policy.assumptions(), *COMMON_ASSUMPTIONS]
    if appointments_recorded:
        assumptions.append(
            "Vorsprachen: je Verlängerung der wahrgenommene Termin derselben Akte am Tag der "
            f"Verlängerung oder bis zu {VISIT_LINK_DAYS} Tage davor (erfasst als "
            "AppointmentAttendanceRecorded); ohne solchen Termin zählt keine Vorsprache."
        )
    else:
        assumptions.append(
            "Im Zeitraum sind keine Termine erfasst: je Verlängerung wird eine Vorsprache "
            "angenommen (nicht gezählt, sondern angenommen)."
        )
    assumptions.append(
        "Gezählt werden Verlängerungen im Zeitraum; woher ein Papier kam und wann es "
        "endete, wird dem ganzen Ereignisprotokoll entnommen. Verlängerungen von Papieren, "
        "deren Ausstellung vor Beginn des Protokolls liegt, bleiben unberücksichtigt."
    )
    return WhatIfResult(
        policy=policy.key,
        label=policy.label,
        parameters=policy.parameters(),
        office_id=office_id,
        period_from=period_from,
        period_until=period_until,
        position=position,
        extensions=sum(m.extensions for m in month_figures),
        extensions_saved=sum(m.extensions_saved for m in month_figures),
        visits_saved=sum(m.visits_saved for m in month_figures),
        actions_saved=sum(m.actions_saved for m in month_figures),
        visits_basis="appointments" if appointments_recorded else "assumed",
        months=month_figures,
        saved=tuple(saved),
        assumptions=tuple(assumptions),
        definitions=dict(DEFINITIONS),
    )


def _family(stored: str) -> DocumentFamily:
    return FICTION_CERTIFICATE if stored == FICTION_CERTIFICATE else RESIDENCE_DOCUMENT


def _linked_visit(
    extension: ExtensionRow, visits: list[VisitRow], used: set[tuple[str, int]]
) -> VisitRow | None:
    """The latest unused attended visit of the file within the link window."""
    day = _local_day(extension.at)
    for visit in sorted(visits, key=lambda v: (v.at, v.version), reverse=True):
        key = (visit.case_id, visit.version)
        if key in used or (visit.at > extension.at and _local_day(visit.at) != day):
            continue
        if 0 <= (day - _local_day(visit.at)).days <= VISIT_LINK_DAYS:
            used.add(key)
            return visit
    return None


_CHUNK: Final = 500


def _by_cases(session: ViewsSession, table: Table[R], case_ids: list[str]) -> list[R]:
    p = session.param
    found: list[R] = []
    for start in range(0, len(case_ids), _CHUNK):
        chunk = case_ids[start : start + _CHUNK]
        placeholders = ", ".join(p for _ in chunk)
        found.extend(_fetch(session, table, f"case_id IN ({placeholders})", list(chunk)))
    return found


__all__ = [
    "NAME",
    "PROJECTION",
    "SavedExtension",
    "WhatIfMonth",
    "WhatIfResult",
    "whatif_result",
]
