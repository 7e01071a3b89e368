"""Helpers shared by the projection tests (no tests here).

:class:`CaseDriver` runs commands on one case file through the service, keeping its
version; :func:`expected_rows` is an oracle that derives every worklist's rows from the
case files' current state (``service.get_case``), independently of the projections.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from adapters.bootstrap import open_views_store
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.case_file import CaseFile, MasterData
from domain.deadlines import (
    DEEMED_ENTRY_CONSENT,
    DOCUMENT_REQUEST_DUE,
    ENTRY_CONSENT_VALIDITY,
    FICTION_CERTIFICATE_END,
    legal_day,
)
from projections.engine import ProjectionEngine
from projections.positions import read_positions
from projections.projection import Projection
from projections.storage import ViewsStore
from projections.worklists import (
    WORKLISTS,
    deadlines,
    eat_cards_awaiting_handover,
    expiring_documents,
    open_procedures_by_assignee,
    overdue_document_requests,
    unassigned_procedures,
    unreviewed_uploads,
)
from service import AkteService
from service_common import Recorded

OFFICE: Final = "abh-musterstadt"
OTHER_OFFICE: Final = "abh-anderswo"
MASTER_DATA: Final = MasterData(
    surname="Beispiel",
    given_names="Amal",
    date_of_birth=date(1991, 2, 3),
    nationality="SYR",
    passport_number="N12345678",
)
TOPIC: Final = "extend_residence_permit"
EAT_BASIS: Final = "aufenthg-16b"

Rows = dict[str, list[tuple[Any, ...]]]


class CaseDriver:
    """One case file: ``case("assign_procedure", procedure_number=1, assignee="sb-02")``
    runs the service command with the current expected version."""

    def __init__(self, service: AkteService, recorded: Recorded[Any], by: str) -> None:
        self.service = service
        self.case_id: UUID = recorded.case_id
        self.version = recorded.version
        self.position = recorded.position
        self.by = by
        self.reference = str(recorded.result)

    @classmethod
    def open(
        cls,
        service: AkteService,
        *,
        office_id: str = OFFICE,
        by: str = "sb-01",
        at: datetime | None = None,
        master_data: MasterData = MASTER_DATA,
    ) -> CaseDriver:
        """Open the file at business time ``at`` (else now): nothing on it can be earlier."""
        return cls(
            service,
            service.open_case(office_id=office_id, master_data=master_data, by=by, at=at),
            by,
        )

    def __call__(self, command: str, **fields: Any) -> Any:
        method: Callable[..., Recorded[Any]] = getattr(self.service, command)
        fields.setdefault("by", self.by)
        recorded = method(self.case_id, expected_version=self.version, **fields)
        self.version = recorded.version
        self.position = recorded.position
        return recorded.result

    @property
    def id(self) -> str:
        return str(self.case_id)


@contextmanager
def views_for(settings: Settings) -> Iterator[ViewsStore]:
    views = open_views_store(settings)
    try:
        yield views
    finally:
        views.close()


@contextmanager
def engine_for(
    service: AkteService,
    views: ViewsStore,
    projections: Sequence[Projection] = WORKLISTS,
    *,
    batch_size: int = 5000,
) -> Iterator[ProjectionEngine]:
    writer = views.writer()
    try:
        yield ProjectionEngine(
            ApplicationEventLog(service), writer, projections, batch_size=batch_size
        )
    finally:
        writer.close()


def catch_up(
    service: AkteService, views: ViewsStore, projections: Sequence[Projection] = WORKLISTS
) -> int:
    with engine_for(service, views, projections) as engine:
        return engine.catch_up()


def dump(
    service: AkteService, views: ViewsStore, projections: Sequence[Projection] = WORKLISTS
) -> Rows:
    with engine_for(service, views, projections) as engine:
        return engine.dump()


def rebuilt_dump(
    service: AkteService, views: ViewsStore, projections: Sequence[Projection] = WORKLISTS
) -> Rows:
    with engine_for(service, views, projections) as engine:
        engine.rebuild()
        return engine.dump()


def stored_positions(views: ViewsStore) -> dict[str, int]:
    with views.reader() as session:
        return {p.name: p.position for p in read_positions(session)}


# ------------------------------------------------------------------------ oracle

# Columns the case file's state does not keep (dates of assignment, card order and
# arrival; a residence document's procedure): the oracle compares all the others.
_NOT_IN_CASE_STATE: Final = {
    open_procedures_by_assignee.NAME: {"assigned_on"},
    eat_cards_awaiting_handover.NAME: {"ordered_on", "arrived_on", "procedure_number"},
    expiring_documents.NAME: {"procedure_number"},
}


def comparable_columns(projection: Projection) -> dict[str, list[int]]:
    """Per table of the projection, the indexes of the columns the oracle knows."""
    columns: dict[str, list[int]] = {}
    for table in projection.all_tables:
        skipped = _NOT_IN_CASE_STATE.get(table.name, set())
        columns[table.name] = [
            index for index, name in enumerate(table.schema.column_names) if name not in skipped
        ]
    return columns


def comparable(rows: Rows, projections: Sequence[Projection] = WORKLISTS) -> dict[str, set[Any]]:
    result: dict[str, set[Any]] = {}
    for projection in projections:
        for table, indexes in comparable_columns(projection).items():
            result[table] = {tuple(row[i] for i in indexes) for row in rows.get(table, [])}
    return result


def _earliest(dates: Sequence[date]) -> date | None:
    return min(dates) if dates else None


def _day(moment: datetime) -> date:
    """The worklists' days are the German legal day of the moment, not its UTC date."""
    return legal_day(moment)


def expected_rows(
    cases: Sequence[CaseFile], projections: Sequence[Projection] = WORKLISTS
) -> dict[str, set[Any]]:
    """What each worklist table must hold (comparable columns only) for these case files."""
    tables: dict[str, set[Any]] = {}
    for projection in projections:
        for table in projection.all_tables:
            tables[table.name] = set()
    for case in cases:
        key = (str(case.id), case.office_id, case.reference)
        for projection in projections:
            # Read models of declarations or submissions register no case files.
            if CaseFile.Opened in projection.openers:
                tables[projection.registry.name].add((*key, case.status))
        if case.status != "active":
            continue
        for p in case.procedures:
            if not p.is_open:
                continue
            dues = [r.due_on for r in p.document_requests]
            common = (*key, p.number, p.topic, p.channel, p.legal_basis)
            tables[open_procedures_by_assignee.NAME].add(
                (*common, p.status, p.assignee, p.received_at, _day(p.received_at),
                 _earliest(dues), len(dues))
            )  # fmt: skip
            if p.assignee is None:
                tables[unassigned_procedures.NAME].add(
                    (*common, p.status, p.received_at, _day(p.received_at), _earliest(dues),
                     len(dues))
                )  # fmt: skip
            tables[overdue_document_requests.NAME].add(
                (*common, p.assignee, p.received_at, _day(p.received_at), _earliest(dues),
                 max(dues) if dues else None, len(dues),
                 _day(p.document_requests[-1].requested_at) if dues else None)
            )  # fmt: skip
        for r in case.residence_documents:
            if r.is_ended:
                continue
            tables[expiring_documents.NAME].add(
                (*key, "residence_document", r.number, r.kind, None, r.legal_basis,
                 r.valid_from, r.valid_until, r.extensions, _day(r.issued_at))
            )  # fmt: skip
            if r.kind == "eat":
                tables[eat_cards_awaiting_handover.NAME].add(
                    (*key, r.number, r.legal_basis, r.valid_until, r.card_status,
                     r.transfers_to_new_passport)
                )  # fmt: skip
        for f in case.fiction_certificates:
            if f.is_ended:
                continue
            tables[expiring_documents.NAME].add(
                (*key, "fiction_certificate", f.number, "fiction_certificate", f.kind, None,
                 f.valid_from, f.valid_until, f.extensions, _day(f.issued_at))
            )  # fmt: skip
        for d in case.documents:
            if d.source == "contact_form" and d.reviewed_at is None:
                tables[unreviewed_uploads.NAME].add(
                    (*key, d.number, d.kind, d.media_type, d.page_count, d.attached_at,
                     _day(d.attached_at))
                )  # fmt: skip
        _expected_deadlines(case, key, tables.setdefault(deadlines.NAME, set()))
    names = {table.name for projection in projections for table in projection.all_tables}
    return {name: rows for name, rows in tables.items() if name in names}


def _expected_deadlines(case: CaseFile, key: tuple[str, str, str], rows: set[Any]) -> None:
    """The deadlines worklist's rows of an active case file, from its state."""
    for e in case.entry_procedures:
        if e.status == "requested" and DEEMED_ENTRY_CONSENT.applies(e.legal_basis):
            start = legal_day(e.requested_at)
            rows.add((*key, DEEMED_ENTRY_CONSENT.code, e.number, 0, e.legal_basis, start,
                      DEEMED_ENTRY_CONSENT.earliest_end(start)))  # fmt: skip
        elif e.status == "consent_given" and not e.deemed:
            assert e.decided_at is not None
            assert e.consent_valid_until is not None
            basis = e.legal_basis if DEEMED_ENTRY_CONSENT.applies(e.legal_basis) else None
            rows.add((*key, ENTRY_CONSENT_VALIDITY.code, e.number, 0, basis,
                      legal_day(e.decided_at), e.consent_valid_until))  # fmt: skip
    for p in case.procedures:
        if p.is_open:
            for item, r in enumerate(p.document_requests, start=1):
                rows.add((*key, DOCUMENT_REQUEST_DUE.code, p.number, item, None,
                          legal_day(r.requested_at), r.due_on))  # fmt: skip
    for f in case.fiction_certificates:
        if not f.is_ended:
            rows.add((*key, FICTION_CERTIFICATE_END.code, f.number, 0, f.kind,
                      legal_day(f.issued_at), f.valid_until))  # fmt: skip
