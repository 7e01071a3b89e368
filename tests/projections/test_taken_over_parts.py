"""Read models of a case file taken over from another office (``CaseFile.PartTakenOver``),
on SQLite and PostgreSQL: the caseworkers' lists at the new office ("B") show what the
person brought along, as if it had happened on B's file; B's figures do not count the
previous office's ("A") work; a rebuild, from scratch or beside, gives the same rows."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.case_file import CaseFile, taken_over_kind
from domain.errors import InvalidValue
from projections import engine as engine_module
from projections.errors import ReadModelFailed
from projections.figures import statistics, workload
from projections.figures.yearly_report import yearly_report
from projections.generations import rebuild_beside, rebuild_locks
from projections.projection import Projection, handlers, on
from projections.storage import ViewsStore
from projections.worklists import WORKLISTS, retention_due
from projections.worklists.expiring_documents import expiring_documents
from service import AkteService
from tests.conftest import FakeClock, another_deployment
from tests.support.file_transfers import (
    OFFICE_A,
    OFFICE_B,
    PERSON,
    ask_for,
    deliver,
    file_with_history,
)
from tests.support.projections import (
    CaseDriver,
    catch_up,
    comparable,
    dump,
    engine_for,
    expected_rows,
    rebuilt_dump,
    views_for,
)

TODAY = date(2024, 3, 4)  # the FakeClock's first day
FIGURES: tuple[Projection, ...] = (statistics.PROJECTION, workload.PROJECTION)


@dataclass(frozen=True)
class Office:
    service: AkteService
    views: ViewsStore


@pytest.fixture
def office_b(settings: Settings, tmp_path: Path, clock: FakeClock) -> Iterator[Office]:
    """The new office: a deployment of its own, with its own read models."""
    with another_deployment(settings, tmp_path, "office-b") as settings_b:
        service = build_service(settings_b, clock=clock)
        try:
            with views_for(settings_b) as views:
                yield Office(service, views)
        finally:
            service.close()


def moved_to_b(service: AkteService, office_b: Office) -> UUID:
    """A's file with a decided procedure, an eAT, a document and a note, taken over by B."""
    return taken_over(service, office_b, file_with_history(service).reference)


def taken_over(service: AkteService, office_b: Office, reference: str) -> UUID:
    """A's file ``reference``, requested and taken over by B: B's new case id."""
    _, message = ask_for(office_b.service, file_number=reference)
    at_a = deliver(message, service, OFFICE_A)
    assert at_a.answer is not None
    at_b = deliver(at_a.answer, office_b.service, OFFICE_B)
    assert at_b.outcome == "taken_over"
    assert at_b.case_id is not None
    return at_b.case_id


def rebuilt_beside(office: Office, projections: tuple[Projection, ...]) -> dict[str, Any]:
    writer = office.views.writer()
    try:
        with rebuild_locks(writer, [p.name for p in projections], 10.0):
            rebuild_beside(ApplicationEventLog(office.service), writer, projections)
    finally:
        writer.close()
    return dump(office.service, office.views, projections)


def test_b_worklists_list_what_the_taken_over_file_holds(
    service: AkteService, office_b: Office
) -> None:
    case_id = moved_to_b(service, office_b)
    catch_up(office_b.service, office_b.views)

    page = expiring_documents(office_b.views, today=TODAY, within_days=800, office_id=OFFICE_B)
    new = office_b.service.get_case(case_id)
    assert [(i.case_id, i.reference, i.kind, i.valid_until) for i in page.items] == [
        (str(case_id), new.reference, "eat", date(2026, 3, 3))
    ]
    # Every worklist of B holds what B's file holds, as the file's state says.
    incremental = dump(office_b.service, office_b.views)
    assert comparable(incremental) == expected_rows([new])
    # The same from scratch, and built beside the serving generation.
    assert rebuilt_dump(office_b.service, office_b.views) == incremental
    assert rebuilt_beside(office_b, WORKLISTS) == incremental


def test_a_file_of_entry_procedures_only_falls_due_at_b_when_its_consent_lapses(
    service: AkteService, office_b: Office
) -> None:
    """Data protection at B: the retention clock of what A's file held runs on at B."""
    at_a = CaseDriver.open(service, office_id=OFFICE_A, master_data=PERSON)
    entry = at_a("request_entry_consent")
    at_a("give_entry_consent", entry_procedure_number=entry, valid_until=date(2024, 9, 1))
    case_id = taken_over(service, office_b, at_a.reference)
    catch_up(office_b.service, office_b.views, (retention_due.PROJECTION,))

    columns = [field.name for field in fields(retention_due.RetentionRow)]
    rows = [
        dict(zip(columns, row, strict=True))
        for row in dump(office_b.service, office_b.views, (retention_due.PROJECTION,))[
            retention_due.TABLE.name
        ]
    ]
    assert [(row["case_id"], row["consent_lapsed_on"]) for row in rows] == [
        (str(case_id), date(2024, 9, 1))
    ]


PREVIOUS_WORK: tuple[str, ...] = (
    "procedures_received",
    "procedures_processed",
    "residence_documents_issued",
)
"""Figures of the yearly report that A's file makes at A (one each)."""


def test_b_figures_do_not_count_the_work_of_a(
    settings: Settings, service: AkteService, office_b: Office
) -> None:
    case_id = moved_to_b(service, office_b)
    with views_for(settings) as views_a:
        catch_up(service, views_a, FIGURES)
        at_a = yearly_report(views_a, OFFICE_A, 2024)
    assert [at_a.figure(key).value for key in PREVIOUS_WORK] == [1, 1, 1]

    catch_up(office_b.service, office_b.views, FIGURES)
    rows = dump(office_b.service, office_b.views, FIGURES)
    # B's statistics: B opened a file; A's procedure, decision and eAT are not B's.
    counted = {(row[0], row[3]) for row in rows[statistics.FACTS.name]}
    assert counted == {(str(case_id), "case_files_opened")}
    # B records all its work in Akte since 2024: what it did not do reads 0.
    at_b = yearly_report(office_b.views, OFFICE_B, 2024, recorded_since=2024)
    assert [at_b.figure(key).value for key in PREVIOUS_WORK] == [0, 0, 0]
    # B's workload: its inbox opened the file and took it over, two steps; none by A's
    # staff, and not one per part.
    actions: dict[str, int] = {}
    for row in rows[workload.WEEKS.name]:
        actions[row[7]] = actions.get(row[7], 0) + row[8]
    assert actions == {"inbox": 2}
    # The same after a rebuild, from scratch and beside.
    assert rebuilt_dump(office_b.service, office_b.views, FIGURES) == rows
    assert rebuilt_beside(office_b, FIGURES) == rows


def test_parts_that_change_no_state_are_not_handed_on(
    service: AkteService, office_b: Office
) -> None:
    """A's opening is history only: B's file keeps B's office and file number, and a
    read model that sees parts gets B's opening alone."""
    seen: list[tuple[str, str]] = []

    def opened(case: Any, event: CaseFile.Opened) -> None:
        seen.append((event.office_id, event.reference))

    probe = Projection(
        name="opened_probe",
        tables=(),
        handlers=handlers(on(CaseFile.Opened, opened)),
        sees_taken_over_parts=True,
    )
    case_id = moved_to_b(service, office_b)
    catch_up(office_b.service, office_b.views, (probe,))
    assert seen == [(OFFICE_B, office_b.service.get_case(case_id).reference)]


def test_a_read_model_sees_parts_as_their_events_or_handles_them_itself() -> None:
    with pytest.raises(ValueError, match="no handler of its own"):
        Projection(
            name="parts_twice",
            tables=(),
            handlers=handlers(on(CaseFile.PartTakenOver, lambda case, event: None)),
            sees_taken_over_parts=True,
        )


def test_a_part_that_cannot_be_read_stops_only_the_read_models_that_see_parts(
    service: AkteService, office_b: Office
) -> None:
    """A part whose source event cannot be rebuilt stops the worklists, which see parts
    as their events, naming its position; the figures, which do not, go on."""
    case_id = moved_to_b(service, office_b)

    def kind_of(name: str) -> type[CaseFile.Event]:
        if name == "ResidenceDocumentIssued":  # as if this code no longer knew the kind
            raise InvalidValue("source_kind", "is not an event of a case file")
        return taken_over_kind(name)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine_module, "taken_over_kind", kind_of)
        with (
            engine_for(office_b.service, office_b.views, WORKLISTS) as engine,
            pytest.raises(ReadModelFailed) as failed,
        ):
            engine.catch_up()
        catch_up(office_b.service, office_b.views, FIGURES)
    assert failed.value.name in {p.name for p in WORKLISTS}
    assert failed.value.position is not None
    assert "ResidenceDocumentIssued" in failed.value.reason or "cannot be read" in str(failed.value)
    rows = dump(office_b.service, office_b.views, FIGURES)
    assert {(row[0], row[3]) for row in rows[statistics.FACTS.name]} == {
        (str(case_id), "case_files_opened")
    }
