"""The table that keeps sealed histories beside the snapshots, on SQLite and PostgreSQL:
one row per file and view, replaced only by more entries, dropped only as the version it
was found with, deleted for every view at once; a store that cannot answer is no error."""

from __future__ import annotations

from uuid import uuid4

from adapters.store.kept_history_shelf import (
    KeptHistoryShelf,
    long_streams,
    shelf_of,
    shelf_table,
)
from service import AkteService
from tests.support.case_files import case_with_notes

WRITER = "this release"


def _shelf(service: AkteService) -> KeptHistoryShelf:
    shelf = shelf_of(service)
    assert shelf is not None
    return shelf


def test_the_table_lies_beside_the_snapshots() -> None:
    assert shelf_table("akte_snapshots") == "akte_kept_histories"  # PostgreSQL, backed up
    assert shelf_table("stored_snapshots") == "stored_kept_histories"  # SQLite events file


def test_a_row_is_replaced_only_by_more_entries(service: AkteService) -> None:
    shelf, case_id = _shelf(service), uuid4()
    assert shelf.load(case_id, "personal", WRITER) is None
    assert shelf.save(case_id, "personal", WRITER, 1200, b"first")
    assert shelf.load(case_id, "personal", WRITER) == (1200, b"first")
    assert shelf.save(case_id, "personal", WRITER, 1200, b"same length") is False
    assert shelf.save(case_id, "personal", WRITER, 1100, b"shorter") is False
    assert shelf.load(case_id, "personal", WRITER) == (1200, b"first")
    assert shelf.save(case_id, "personal", WRITER, 1300, b"longer")
    assert shelf.load(case_id, "personal", WRITER) == (1300, b"longer")
    assert shelf.load(case_id, "withheld", WRITER) is None  # per view
    assert shelf.load(uuid4(), "personal", WRITER) is None  # per file


def test_another_writers_row_is_not_taken_and_is_replaced(service: AkteService) -> None:
    shelf, case_id = _shelf(service), uuid4()
    assert shelf.save(case_id, "personal", "the release before", 1300, b"old code")
    assert shelf.load(case_id, "personal", WRITER) is None  # its entries may differ
    # Replaced by this release's, even with fewer entries: the one in service keeps its own.
    assert shelf.save(case_id, "personal", WRITER, 1200, b"new code")
    assert shelf.load(case_id, "personal", WRITER) == (1200, b"new code")
    assert shelf.load(case_id, "personal", "the release before") is None


def test_a_row_is_discarded_only_as_the_version_it_was_found_with(service: AkteService) -> None:
    shelf, case_id = _shelf(service), uuid4()
    shelf.save(case_id, "personal", WRITER, 1300, b"longer")
    shelf.discard(case_id, "personal", WRITER, 1200)  # another process put more there since
    assert shelf.load(case_id, "personal", WRITER) == (1300, b"longer")
    shelf.discard(case_id, "personal", "another release", 1300)  # not the one found
    assert shelf.load(case_id, "personal", WRITER) == (1300, b"longer")
    shelf.discard(case_id, "personal", WRITER, 1300)
    assert shelf.load(case_id, "personal", WRITER) is None


def test_what_is_kept_is_counted_without_reading_it(service: AkteService) -> None:
    shelf, case_id, other = _shelf(service), uuid4(), uuid4()
    shelf.save(case_id, "personal", WRITER, 1200, b"a")
    shelf.save(other, "withheld", "another release", 1000, b"b")
    assert shelf.kept_version(case_id, "personal", WRITER) == 1200
    assert shelf.kept_version(case_id, "withheld", WRITER) is None
    assert shelf.kept_version(other, "withheld", WRITER) is None  # another release's
    assert sorted(shelf.files()) == sorted([case_id, other])


def test_deleting_a_file_deletes_every_view_and_nothing_else(service: AkteService) -> None:
    shelf, case_id, other = _shelf(service), uuid4(), uuid4()
    shelf.save(case_id, "personal", WRITER, 1000, b"a")
    shelf.save(case_id, "withheld", WRITER, 1000, b"b")
    shelf.save(other, "personal", WRITER, 1000, b"c")
    assert shelf.delete(case_id) == 2
    assert shelf.load(case_id, "personal", WRITER) is None
    assert shelf.load(case_id, "withheld", WRITER) is None
    assert shelf.load(other, "personal", WRITER) == (1000, b"c")


class _Recorder:
    """A recorder of a store whose kept histories' table was never made."""

    def __init__(self, service: AkteService) -> None:
        snapshots = service.snapshots
        assert snapshots is not None
        self.datastore = snapshots.recorder.datastore  # type: ignore[attr-defined]
        self.events_table_name = "never_made_snapshots"


def test_a_store_that_cannot_answer_is_nothing_kept_and_no_error(service: AkteService) -> None:
    shelf, case_id = KeptHistoryShelf(_Recorder(service)), uuid4()  # type: ignore[arg-type]
    assert shelf.load(case_id, "personal", WRITER) is None
    assert shelf.save(case_id, "personal", WRITER, 1000, b"a") is None  # not "refused"
    shelf.discard(case_id, "personal", WRITER, 1000)


def test_long_streams_are_those_with_enough_events_longest_first(service: AkteService) -> None:
    lengths = dict(case_with_notes(service, "abh-test", notes) for notes in (0, 3, 5))
    longest = sorted(lengths, key=lengths.__getitem__, reverse=True)
    assert long_streams(service.recorder, 4) == longest[:2]
    assert long_streams(service.recorder, 6) == longest[:1]
    assert long_streams(service.recorder, 100) == []
