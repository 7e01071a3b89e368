"""The projection engine: batches, positions, rebuilds, status and its errors."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import OperationalError

from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from adapters.views.store import PostgresViewsStore, SqliteViewsStore
from projections.engine import Progress, ProjectionEngine
from projections.errors import (
    EventLogUnavailable,
    InconsistentLog,
    UnknownProjection,
    ViewNotBuilt,
    ViewsStoreUnavailable,
)
from projections.projection import Projection, Table
from projections.selection import partition_projections
from projections.status import projection_status
from projections.storage import StoredNotification, ViewsStore
from projections.worklists import WORKLISTS, open_procedures_by_assignee, unassigned_procedures
from projections.worklists.unassigned_procedures import unassigned_procedures as unassigned_query
from runtime.garbage_collection import collection_paused
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import (
    TOPIC,
    CaseDriver,
    catch_up,
    dump,
    engine_for,
    rebuilt_dump,
    stored_positions,
    views_for,
)

TODAY = date(2024, 3, 4)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def busy_history(service: AkteService, clock: FakeClock, cases: int = 3) -> list[CaseDriver]:
    drivers = []
    for n in range(cases):
        case = CaseDriver.open(service)
        for k in range(3):
            clock.advance(seconds=10)
            number = case("receive_procedure", channel="mail", topic=TOPIC)
            case("add_note", text="Rückruf")
            if k % 2 == n % 2:
                case("assign_procedure", procedure_number=number, assignee=f"sb-0{k + 1}")
        drivers.append(case)
    return drivers


def test_claims_and_events_no_projection_handles_still_advance_the_position(
    service: AkteService, views: ViewsStore
) -> None:
    case = CaseDriver.open(service)  # CaseFile.Opened and CaseReference.Claimed
    case("add_note", text="nichts für die Listen")
    assert catch_up(service, views) == 3
    head = service.recorder.max_notification_id()
    assert stored_positions(views) == {p.name: head for p in WORKLISTS}
    assert catch_up(service, views) == 0
    rows = dump(service, views)
    assert rows["unreviewed_uploads"] == []
    assert [row[:3] for row in rows["unreviewed_uploads_cases"]] == [
        (case.id, "abh-musterstadt", case.reference)
    ]


def test_batches_of_any_size_give_the_same_rows(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    busy_history(service, clock)
    expected = rebuilt_dump(service, views)
    for batch_size in (1, 2, 7):
        with engine_for(service, views, batch_size=batch_size) as engine:
            engine.reset()
            seen: list[Progress] = []
            engine.catch_up(progress=seen.append)
            assert engine.dump() == expected
        assert all(p.done <= p.total for p in seen)
        assert seen[-1].done == seen[-1].total == service.recorder.max_notification_id()
        assert seen[-1].events_per_second > 0


def test_one_projection_rebuilds_alone_and_the_others_keep_their_place(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    busy_history(service, clock)
    catch_up(service, views)
    before = dump(service, views)
    with engine_for(service, views) as engine:
        engine.reset(["unassigned_procedures"])
        positions = engine.positions()
        assert positions["unassigned_procedures"] == 0
        assert positions["unreviewed_uploads"] == service.recorder.max_notification_id()
        with pytest.raises(UnknownProjection):
            engine.reset(["no_such_list"])
    assert dump(service, views)["unassigned_procedures"] == []
    catch_up(service, views)
    assert dump(service, views) == before


def test_a_new_version_of_a_read_model_is_rebuilt_from_scratch(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    busy_history(service, clock)
    old = open_procedures_by_assignee.PROJECTION
    catch_up(service, views, [old])
    before = dump(service, views, [old])
    newer = dataclasses.replace(old, version=old.version + 1)
    with engine_for(service, views, [newer]) as engine:
        assert engine.positions() == {old.name: 0}
        assert engine.dump()[old.name] == []
        engine.catch_up()
        assert engine.dump() == before


def test_two_engines_without_locks_never_apply_a_batch_twice(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    busy_history(service, clock)
    expected = rebuilt_dump(service, views)
    projection = unassigned_procedures.PROJECTION
    with engine_for(service, views, [projection]) as first:
        first.reset()
        with engine_for(service, views, [projection], batch_size=4) as second:
            assert first.positions() == second.positions()  # both read position 0
            assert second.process_batch().read == 4
            # The first engine's batch starts from a position that has moved on.
            stale = first.process_batch()
            assert stale.conflict
            assert first.positions() == second.positions()
            while second.process_batch().advanced or first.process_batch().advanced:
                pass
        assert first.dump()["unassigned_procedures"] == expected["unassigned_procedures"]


def test_status_reports_position_head_and_lag(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    log = ApplicationEventLog(service)
    status = projection_status(log, views, WORKLISTS)
    assert [(s.position, s.head, s.built) for s in status] == [(0, 0, False)] * len(WORKLISTS)

    case = CaseDriver.open(service)  # recorded at 09:00:00 (Opened, Claimed: 1, 2)
    clock.advance(seconds=30)
    case("receive_procedure", channel="mail", topic=TOPIC)  # 09:00:30 (3)
    clock.advance(seconds=90)
    case("add_note", text="später")  # 09:02:00 (4)
    with engine_for(service, views) as engine:
        engine.catch_up(until=3)
    status = projection_status(log, views, WORKLISTS)
    assert {(s.position, s.head, s.lag_events, s.built) for s in status} == {(3, 4, 1, True)}
    assert {s.lag_seconds for s in status} == {90.0}
    assert all(s.updated_at is not None for s in status)

    catch_up(service, views)
    status = projection_status(log, views, WORKLISTS)
    assert {(s.position, s.lag_events, s.lag_seconds) for s in status} == {(4, 0, 0.0)}

    with engine_for(service, views) as engine:
        engine.reset()
    status = projection_status(log, views, WORKLISTS)
    assert {(s.position, s.lag_events, s.lag_seconds) for s in status} == {(0, 4, 120.0)}


class _LogWithoutOpened:
    """A log that lost the Opened events (as a broken import would)."""

    def __init__(self, log: ApplicationEventLog) -> None:
        self._log = log

    def read(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        topics: Sequence[str] = (),
    ) -> Sequence[StoredNotification]:
        found = self._log.read(after, limit, until=until, topics=topics)
        return [n for n in found if not n.topic.endswith("CaseFile.Opened")]

    def head(self) -> int:
        return self._log.head()

    def event_class(self, topic: str) -> type[Any]:
        return self._log.event_class(topic)

    def topic_of(self, event_class: type[Any]) -> str:
        return self._log.topic_of(event_class)

    def decode(self, notification: StoredNotification) -> Any:
        return self._log.decode(notification)


def test_an_event_of_a_file_never_opened_is_an_error_not_skipped(
    service: AkteService, views: ViewsStore
) -> None:
    case = CaseDriver.open(service)
    case("receive_procedure", channel="mail", topic=TOPIC)
    writer = views.writer()
    try:
        engine = ProjectionEngine(
            _LogWithoutOpened(ApplicationEventLog(service)), writer, WORKLISTS
        )
        with pytest.raises(InconsistentLog, match="Opened event it has not seen") as raised:
            engine.catch_up()
        assert case.id not in str(raised.value)
        assert engine.positions() == {p.name: 0 for p in WORKLISTS}  # rolled back
    finally:
        writer.close()


def test_library_errors_become_projection_errors(
    service: AkteService, views: ViewsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    CaseDriver.open(service)
    log = ApplicationEventLog(service)

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("connection refused\nDETAIL: Key (surname)=(Beispiel)")

    monkeypatch.setattr(service.recorder, "select_notifications", failing)
    monkeypatch.setattr(service.recorder, "max_notification_id", failing)
    with pytest.raises(EventLogUnavailable) as raised:
        log.read(0, 10)
    assert "Beispiel" not in str(raised.value)
    with pytest.raises(EventLogUnavailable):
        log.head()
    monkeypatch.undo()

    [notification] = log.read(0, 1)
    broken = dataclasses.replace(notification, state=b'{"surname": "Beispiel", ')  # type: ignore[type-var]
    with pytest.raises(InconsistentLog) as undecodable:
        log.decode(broken)
    assert "Beispiel" not in str(undecodable.value)
    with pytest.raises(InconsistentLog):
        log.event_class("domain.case_file:CaseFile.Vanished")


def test_a_worklist_not_built_yet_says_so(views: ViewsStore) -> None:
    with pytest.raises(ViewNotBuilt):
        unassigned_query(views, today=TODAY)


def test_an_unreachable_views_store_says_where_not_what(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    store = SqliteViewsStore(blocked / "views.sqlite3")
    with pytest.raises(ViewsStoreUnavailable, match="unavailable"):
        store.writer()
    postgres = PostgresViewsStore(
        host="127.0.0.1", port=1, dbname="nowhere", user="nobody", password="secret-pw"
    )
    with pytest.raises(ViewsStoreUnavailable) as raised:
        postgres.writer()
    assert "secret-pw" not in str(raised.value)


def test_tables_are_checked_when_a_read_model_is_defined() -> None:
    @dataclasses.dataclass
    class NoOffice:
        case_id: str
        reference: str

    @dataclasses.dataclass
    class Row:
        case_id: str
        office_id: str
        reference: str
        amount: float

    @dataclasses.dataclass
    class Good:
        case_id: str
        office_id: str
        reference: str
        number: int
        seen_at: datetime | None

    with pytest.raises(TypeError, match="case_id, office_id and reference"):
        Table("x_rows", NoOffice)
    with pytest.raises(TypeError, match="no column type"):
        Table("x_rows", Row)
    with pytest.raises(TypeError, match="no field"):
        Table("x_rows", Good, key=("missing",))
    table = Table("x_rows", Good, key=("number",))
    assert [(c.name, c.type, c.nullable) for c in table.schema.columns][3:] == [
        ("number", "integer", False),
        ("seen_at", "timestamp", True),
    ]
    assert table.schema.primary_key == ("case_id", "number")
    with pytest.raises(ValueError, match="named after its projection"):
        Projection(name="other", tables=(table,), handlers={})
    row = Good("c", "o", "r", 1, datetime(2024, 1, 1, tzinfo=UTC))
    assert table.values(row) == ("c", "o", "r", 1, datetime(2024, 1, 1, tzinfo=UTC))
    assert table.key_of(row) == (1,)


def test_read_models_that_share_events_are_rebuilt_in_the_same_process() -> None:
    def names(groups: list[list[Projection]]) -> list[set[str]]:
        return [{p.name for p in group} for group in groups]

    procedures = {"open_procedures_by_assignee", "unassigned_procedures"}
    procedures.add("overdue_document_requests")
    documents = {"expiring_documents", "eat_cards_awaiting_handover"}
    assert names(partition_projections(WORKLISTS, 1)) == [{p.name for p in WORKLISTS}]
    # The deadlines worklist follows procedures (document requests, entry consents) and
    # documents (a Fiktionsbescheinigung's end) alike: it ties both groups into one.
    tied = procedures | documents | {"deadlines"}
    two = names(partition_projections(WORKLISTS, 2))
    assert len(two) == 2
    assert any(tied <= group for group in two)
    many = names(partition_projections(WORKLISTS, 10))
    assert {frozenset(group) for group in many} == {
        frozenset({"unreviewed_uploads"}),
        frozenset({"declarations_awaiting_handover"}),
        frozenset({"untriaged_submissions"}),
        frozenset({"notice_triage"}),
        frozenset(tied),
    }


def test_what_survives_a_collection_is_frozen_until_the_catch_up_ends(
    service: AkteService, views: ViewsStore, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full collection walks every object of the process: frozen, the remembered rows
    (and whatever else the process holds) are not walked again by the next ones. Nothing
    stays frozen once the catch-up is over, so cycles among them are collected again."""
    from projections import engine as engine_module

    busy_history(service, clock, cases=4)
    # Collect after every batch: the batches are small here.
    monkeypatch.setattr(engine_module, "COLLECT_AFTER_ALLOCATIONS", -1)
    frozen_after_batches: list[int] = []
    with engine_for(service, views, batch_size=5) as engine:
        engine.catch_up(progress=lambda _: frozen_after_batches.append(gc.get_freeze_count()))

    assert len(frozen_after_batches) > 2
    assert all(count > 0 for count in frozen_after_batches)
    assert gc.get_freeze_count() == 0


def test_a_writers_pause_that_ends_during_a_catch_up_leaves_collection_off(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """The API on SQLite runs the projection runner as a thread beside requests whose
    key-store transactions pause collection too. It is one pause for the process: a
    transaction that ends during a catch-up does not turn collection on inside it."""
    busy_history(service, clock, cases=4)
    collecting_after_batches: list[bool] = []
    with ExitStack() as request:
        request.enter_context(collection_paused())

        def batch_done(_: Progress) -> None:
            request.close()  # the request's transaction ends after the first batch
            collecting_after_batches.append(gc.isenabled())

        with engine_for(service, views, batch_size=5) as engine:
            engine.catch_up(progress=batch_done)

    assert len(collecting_after_batches) > 2
    assert not any(collecting_after_batches)
    assert gc.isenabled()
