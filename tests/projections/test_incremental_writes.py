"""A batch writes only the rows its events changed, not the histories of their case files.

Rewriting every row of a touched file made a rebuild grow with the square of the log
(issue 25): a file's rows grow with its history, and a file in progress is touched by
most batches. Counted here without any timing: the rows a rebuild inserts, whatever the
batch size, and what a handler changes through ``get``, ``rows`` and ``remove``. Also:
the tables a rebuild builds beside the ones in service have the same primary keys and
indexes as those, from the first batch on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.case_file import CaseFile
from projections.audit import audit_actions
from projections.errors import InconsistentLog
from projections.generations import build_table_name, read_generations, rebuild_beside
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.read_models import READ_MODELS
from projections.storage import ViewsSession, ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import TOPIC, CaseDriver, views_for
from tests.support.rebuilds import NOTES, long_file, watched_rebuild


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def rebuilt(
    service: AkteService,
    views: ViewsStore,
    projections: Sequence[Projection],
    batch_size: int,
) -> tuple[dict[str, list[tuple[Any, ...]]], Counter[str]]:
    watched = watched_rebuild(service, views, projections, batch_size=batch_size)
    return watched.rows, watched.inserted


def test_each_row_of_a_growing_history_is_inserted_once_however_small_the_batches(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    long_file(service, clock)
    projection = audit_actions.PROJECTION
    table = audit_actions.TABLE.name
    in_one, inserted_once = rebuilt(service, views, [projection], batch_size=100_000)
    rows = len(in_one[table])
    assert rows >= NOTES + 2
    assert inserted_once[table] == rows

    # A batch per event: the file is touched by every batch. Rewriting its whole history
    # each time would insert 1 + 2 + ... + rows of them.
    one_by_one, inserted = rebuilt(service, views, [projection], batch_size=1)
    assert one_by_one == in_one
    assert inserted[table] == rows


def test_every_read_model_written_in_batches_of_one_equals_one_batch(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """Changed rows of keyed tables (counters per week, spans, facts) are deleted by key and
    inserted again, removed ones deleted, on both stores."""
    for n in range(3):
        case = CaseDriver.open(service)
        for k in range(3):
            clock.advance(days=3)
            number = case("receive_procedure", channel="mail", topic=TOPIC)
            case("assign_procedure", procedure_number=number, assignee=f"sb-0{k + 1}")
            clock.advance(days=8)
            case("assign_procedure", procedure_number=number, assignee="sb-09")
            case("add_note", text="Rückruf")
            if k != n:
                case("decide_procedure", procedure_number=number, outcome="granted")
    in_one, _ = rebuilt(service, views, READ_MODELS, batch_size=100_000)
    one_by_one, _ = rebuilt(service, views, READ_MODELS, batch_size=1)
    assert one_by_one == in_one


@dataclass
class Tally:
    case_id: str
    office_id: str
    reference: str
    kind: str
    count: int


TALLY = Table("tally_rows", Tally, key=("kind",))


def _received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    for kind in ("got", "listed", "gone"):
        case.put(TALLY, Tally(case.case_id, case.office_id, case.reference, kind, 0))


def _note(case: CaseRows, event: CaseFile.NoteAdded) -> None:
    # Changed in place, never put back: what a handler got or listed is written all the
    # same. Every other note one way, the others the other way (a batch of one note then
    # uses only one of them).
    if event.originator_version % 2:
        for each in case.rows(TALLY):
            if each.kind == "listed":
                each.count += 1
        return
    row = case.get(TALLY, "got")
    if row is not None:
        row.count += 1


def _assigned(case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
    case.remove(TALLY, "gone")


TALLY_PROJECTION = Projection(
    name="tally",
    tables=(TALLY,),
    handlers=handlers(
        on(CaseFile.ProcedureReceived, _received),
        on(CaseFile.NoteAdded, _note),
        on(CaseFile.ProcedureAssigned, _assigned),
    ),
)


def test_rows_a_handler_got_and_changed_in_place_are_written(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    case = long_file(service, clock)
    case("assign_procedure", procedure_number=1, assignee="sb-02")
    expected = [(case.id, "got", NOTES // 2), (case.id, "listed", NOTES // 2)]
    for batch_size in (1, 3, 100_000):
        rows, _ = rebuilt(service, views, [TALLY_PROJECTION], batch_size=batch_size)
        assert [(row[0], row[3], row[4]) for row in rows[TALLY.name]] == expected


def _indexes(session: ViewsSession, settings: Settings, table: str) -> set[tuple[str, ...]]:
    """The column lists of a table's primary key and indexes."""
    if settings.store == "sqlite":
        name = table.split(".")[-1].strip('"')
        found = set()
        for row in session.fetch(f"PRAGMA index_list('{name}')"):
            columns = session.fetch(f"PRAGMA index_info('{row[1]}')")
            found.add(tuple(str(column[2]) for column in sorted(columns)))
        return found
    rows = session.fetch(
        "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = %s::regclass GROUP BY i.indexrelid",
        (table,),
    )
    return {tuple(row[0]) for row in rows}


def test_the_tables_built_beside_have_the_keys_and_indexes_of_those_in_service(
    service: AkteService, views: ViewsStore, clock: FakeClock, settings: Settings
) -> None:
    """A build deletes and reads by key from the first batch on: without the primary key
    and indexes of the tables in service, each batch would scan the whole build."""
    long_file(service, clock)
    projection = audit_actions.PROJECTION
    writer = views.writer()
    seen: dict[str, tuple[set[tuple[str, ...]], set[tuple[str, ...]]]] = {}

    def compare() -> None:
        generation = read_generations(writer)[projection.name].building
        assert generation is not None
        for schema in projection.schemas:
            beside = writer.table(build_table_name(schema.name, generation))
            seen[schema.name] = (
                _indexes(writer, settings, beside),
                _indexes(writer, settings, writer.table(schema.name)),
            )

    try:
        log = ApplicationEventLog(service)
        rebuild_beside(log, writer, [projection])  # a generation in service
        rebuild_beside(log, writer, [projection], batch_size=2, before_switch=compare)
    finally:
        writer.close()
    assert set(seen) == {schema.name for schema in projection.schemas}
    for schema in projection.schemas:
        beside, serving = seen[schema.name]
        assert beside == serving == {schema.primary_key, *schema.indexes}


def _renamed(case: CaseRows, event: CaseFile.NoteAdded) -> None:
    row = case.get(TALLY, "got")
    if row is not None:
        row.kind = "renamed"  # the key field, changed in place


RENAMING = Projection(
    name="tally",
    tables=(TALLY,),
    handlers=handlers(on(CaseFile.ProcedureReceived, _received), on(CaseFile.NoteAdded, _renamed)),
)


def test_a_handler_that_changes_a_key_in_place_is_refused(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    # Rows are written back by the key they were filed under: a key changed in place
    # would leave the old row behind and insert the new one again in every later batch.
    long_file(service, clock)
    with pytest.raises(InconsistentLog, match="changed the key of a row in place"):
        rebuilt(service, views, [RENAMING], batch_size=3)


@dataclass
class MaybeKeyed:
    case_id: str
    office_id: str
    reference: str
    slot: int | None


def test_a_key_column_that_may_be_none_is_refused() -> None:
    # A NULL never equals itself in SQL: a row with one in its key could not be found
    # again to be written back (SQLite would keep duplicates).
    with pytest.raises(TypeError, match=r"MaybeKeyed\.slot is in the key"):
        Table("maybe_keyed", MaybeKeyed, key=("slot",))
