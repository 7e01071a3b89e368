"""What a batch reads back of the rows already stored, and what the engine remembers.

A rebuild that read back every touched file's rows grew faster than the log (issue 25):
at 4.7 million events it spent 59 % of its time re-reading files it had let go. Two
things keep those reads down, counted here without any timing:

- the stored rows of an append-only table (an audit trail: one row per event) are never
  read back, and the handlers may not look at them;
- the files a batch touched are remembered up to a budget of rows, not of files: a file
  with more rows than its read model's share is read again, many small ones are not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.settings import Settings
from domain.case_file import CaseFile
from projections.audit import audit_actions
from projections.errors import ReadModelFailed
from projections.figures import workload
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import views_for
from tests.support.rebuilds import NOTES, long_file, watched_rebuild


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def rebuilt(
    service: AkteService,
    views: ViewsStore,
    projections: Sequence[Projection],
    *,
    batch_size: int,
    cached_rows: int,
) -> tuple[dict[str, list[tuple[Any, ...]]], Counter[str]]:
    """The rows a rebuild leaves, and the rows it read back while building them."""
    watched = watched_rebuild(
        service, views, projections, batch_size=batch_size, cached_rows=cached_rows
    )
    return watched.rows, watched.read


# ------------------------------------------------------------- append-only tables


@pytest.mark.parametrize(
    ("projection", "table"),
    [
        (audit_actions.PROJECTION, audit_actions.TABLE),
        (workload.PROJECTION, workload.WEEKS),
    ],
    ids=["audit_actions", "workload"],
)
def test_a_rebuild_never_reads_back_a_trail_of_steps(
    service: AkteService,
    views: ViewsStore,
    clock: FakeClock,
    projection: Projection,
    table: Table[Any],
) -> None:
    """The audit trail (a row per event) and the workload's steps (a row per step counted
    for a caseworker)."""
    long_file(service, clock)
    whole, _ = rebuilt(service, views, [projection], batch_size=100_000, cached_rows=0)
    assert len(whole[table.name]) >= NOTES

    # A batch per event and nothing remembered: every batch touches the file again, and
    # reading its trail back would read 1 + 2 + ... rows of it.
    one_by_one, read = rebuilt(service, views, [projection], batch_size=1, cached_rows=0)
    assert one_by_one == whole
    assert read[table.name] == 0
    # The file's record is still read back: its office and number are on every row.
    assert read[projection.registry.name] > 0


@dataclass
class Entry:
    case_id: str
    office_id: str
    reference: str
    version: int


ENTRIES = Table("entries_rows", Entry, key=("version",), append_only=True)


def test_an_append_only_table_refuses_what_would_need_its_stored_rows() -> None:
    case = CaseRows("a-file", (ENTRIES,))
    case.put(ENTRIES, Entry("a-file", "o", "r", 1))
    for look in (
        lambda: case.get(ENTRIES, 1),
        lambda: case.rows(ENTRIES),
        lambda: case.remove(ENTRIES, 1),
        case.clear,
    ):
        with pytest.raises(TypeError, match="append-only"):
            look()


def test_a_read_model_of_active_files_only_cannot_have_an_append_only_table() -> None:
    with pytest.raises(ValueError, match="append-only"):
        Projection(name="entries", tables=(ENTRIES,), handlers=handlers())


ONE_PER_FILE = Table("twice_rows", Entry, key=("version",), append_only=True)


def _same_key_again(case: CaseRows, event: CaseFile.NoteAdded) -> None:
    case.put(ONE_PER_FILE, Entry(case.case_id, case.office_id, case.reference, 0))


TWICE = Projection(
    name="twice",
    tables=(ONE_PER_FILE,),
    handlers=handlers(on(CaseFile.NoteAdded, _same_key_again)),
    active_cases_only=False,
)


@pytest.mark.parametrize("batch_size", [1, 100_000])
def test_a_key_put_twice_into_an_append_only_table_fails_the_read_model(
    service: AkteService, views: ViewsStore, clock: FakeClock, batch_size: int
) -> None:
    """In one batch the table refuses it, across batches the primary key: either way
    the read model stops rather than keep one of the two rows by chance."""
    long_file(service, clock, notes=2)
    with pytest.raises(ReadModelFailed):
        rebuilt(service, views, [TWICE], batch_size=batch_size, cached_rows=1_000_000)


# ------------------------------------------------------------- remembered rows


@dataclass
class Note:
    case_id: str
    office_id: str
    reference: str
    version: int
    count: int


def noted(name: str) -> Projection:
    table = Table(f"{name}_rows", Note, key=("version",))
    return Projection(
        name=name,
        tables=(table,),
        handlers=handlers(on(CaseFile.NoteAdded, lambda case, event: _note(table, case, event))),
    )


def _note(table: Table[Note], case: CaseRows, event: CaseFile.NoteAdded) -> None:
    earlier = case.get(table, event.originator_version - 1)
    count = 1 if earlier is None else earlier.count + 1
    case.put(
        table, Note(case.case_id, case.office_id, case.reference, event.originator_version, count)
    )


def small_files(service: AkteService, clock: FakeClock, files: int) -> None:
    for _ in range(files):
        long_file(service, clock, notes=2)


def test_many_small_files_within_the_budget_are_never_read_back(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    small_files(service, clock, files=6)
    projection = noted("noted")
    whole, _ = rebuilt(service, views, [projection], batch_size=100_000, cached_rows=0)
    # Six files of a record and two rows each: 18 rows, and a budget of 20.
    one_by_one, read = rebuilt(service, views, [projection], batch_size=1, cached_rows=20)
    assert one_by_one == whole
    assert read["noted_rows"] == 0


def test_a_file_with_more_rows_than_the_budget_is_read_back(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """Bounded by rows, not by files: one long file is not kept whole in memory."""
    long_file(service, clock, notes=12)
    projection = noted("noted")
    whole, _ = rebuilt(service, views, [projection], batch_size=100_000, cached_rows=0)
    one_by_one, read = rebuilt(service, views, [projection], batch_size=1, cached_rows=8)
    assert one_by_one == whole
    # Kept while it had at most 7 rows and its record; read back for each later note.
    assert read["noted_rows"] == sum(range(8, 12))
    _, remembered = rebuilt(service, views, [projection], batch_size=1, cached_rows=13)
    assert remembered["noted_rows"] == 0


def test_the_budget_is_shared_among_the_read_models_of_an_engine(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    long_file(service, clock, notes=12)
    two = [noted("first"), noted("second")]
    # 13 rows each (a record and 12 notes): 26 is enough for both. With 22, each keeps
    # the file until its 11th note and reads those 11 rows back for the 12th.
    _, enough = rebuilt(service, views, two, batch_size=1, cached_rows=26)
    assert enough["first_rows"] == enough["second_rows"] == 0
    _, short = rebuilt(service, views, two, batch_size=1, cached_rows=22)
    assert short["first_rows"] == short["second_rows"] == 11
