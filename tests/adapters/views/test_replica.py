"""Which server answers a read when a replica is configured (no replica needed here).

Two SQLite views stores stand for the primary's and the replica's read model tables, each
holding a row that names it, and a stand-in for the replica's event table says what the
replica has replayed. Replication itself is shown in
``tests/system/test_read_replica.py``.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar
from uuid import UUID, uuid4

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import ValidationError

from adapters.bootstrap import build_service, replica_reads
from adapters.monitoring.metrics import ReplicaFigures
from adapters.settings import Settings
from adapters.views.replica import (
    PROBE_MAX_AGE,
    RawCaseEvent,
    ReplicaConnection,
    ReplicaEvents,
    ReplicaReads,
    ReplicaState,
    ReplicaUnavailable,
    RoutedViewsStore,
    read_views_from_replica,
)
from adapters.views.store import SqliteViewsStore
from projections.errors import ViewsStoreUnavailable
from projections.positions import POSITIONS_SCHEMA, POSITIONS_TABLE
from projections.read_models import READ_MODELS
from projections.storage import Column, Dialect, TableSchema, ViewsSession, ViewsStore, ViewsWriter
from service import AkteService
from service_common import CaseNotFound
from tests.conftest import FakeClock, make_settings
from tests.http.routes.test_worklists import PERSON

T = TypeVar("T")

MARKER = TableSchema("server_marker", (Column("server", "text", nullable=False),), ("server",))
PROJECTION = READ_MODELS[0]
WAIT = 0.05
"""The replica's bounded wait for a position, short: the tests wait it out."""
NOWHERE = ReplicaConnection(
    host="127.0.0.1",
    port=1,
    dbname="akte",
    user="akte",
    password="",
    schema="public",
    events_table="stored_events",
    connect_timeout=2,
    pool_timeout=1.0,
    statement_timeout=0,
)
"""Never connected to: the replica's events are a stand-in."""


class StandInEvents(ReplicaEvents):
    """The replica's event table as the test sets it: its position, whether it answers."""

    def __init__(self) -> None:
        super().__init__(NOWHERE)
        self.down = False
        self.in_recovery = True
        self.position = 0
        self.lag = 0.0
        self.replayed_all_received = False
        self.receiving = True
        self.cases: dict[UUID, list[RawCaseEvent]] = {}

    def _answer(self) -> None:
        if self.down:
            msg = "the replica did not answer: OperationalError"
            raise ReplicaUnavailable(msg)

    def state(self) -> ReplicaState:
        self._answer()
        return ReplicaState(
            in_recovery=self.in_recovery,
            position=self.position,
            replay_age_seconds=self.lag,
            replayed_all_received=self.replayed_all_received,
            receiving=self.receiving,
        )

    def has_position(self, position: int) -> bool:
        self._answer()
        return self.position >= position

    def events(self, case_id: UUID, after_version: int, limit: int) -> list[RawCaseEvent]:
        self._answer()
        return [row for row in self.cases.get(case_id, []) if row[0] > after_version][:limit]

    def head_version(self, case_id: UUID) -> int | None:
        self._answer()
        rows = self.cases.get(case_id)
        return rows[-1][0] if rows else None


class UnreadableViews:
    """A replica's views store whose connections fail (the replica went away)."""

    dialect: Dialect = "sqlite"
    where = "nowhere"

    def writer(self) -> ViewsWriter:
        raise ViewsStoreUnavailable("the views store failed: gone")

    def reader(self) -> AbstractContextManager[ViewsSession]:
        raise ViewsStoreUnavailable("the views store failed: gone")

    def close(self) -> None:
        pass


def marked(path: Path, server: str) -> SqliteViewsStore:
    store = SqliteViewsStore(path)
    writer = store.writer()
    try:
        with writer.transaction():
            writer.create_table(MARKER)
            writer.insert_rows(MARKER.name, ["server"], [(server,)])
            writer.create_table(POSITIONS_SCHEMA)
    finally:
        writer.close()
    return store


def set_position(store: SqliteViewsStore, position: int) -> None:
    """The read model's position as the replica has replayed it."""
    writer = store.writer()
    try:
        with writer.transaction():
            table = writer.table(POSITIONS_TABLE)
            writer.execute(f"DELETE FROM {table}")
            writer.execute(
                f"INSERT INTO {table} (name, position, version, event_recorded_at, updated_at) "
                "VALUES (?, ?, ?, NULL, ?)",
                (PROJECTION.name, position, PROJECTION.version, datetime.now(UTC).isoformat()),
            )
    finally:
        writer.close()


@dataclass
class Setup:
    primary: SqliteViewsStore
    events: StandInEvents
    replica: ReplicaReads
    routed: RoutedViewsStore


def setup_with(
    tmp_path: Path,
    replica_views: ViewsStore | None = None,
    primary_head: int = 10,
    max_lag_seconds: float = 0.0,
    primary_position: Callable[[], int | None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    probe_max_age: float = PROBE_MAX_AGE,
) -> Setup:
    primary = marked(tmp_path / "primary.sqlite3", "primary")
    events = StandInEvents()
    replica = ReplicaReads(
        NOWHERE,
        primary_position=primary_position or (lambda: primary_head),
        projections=[PROJECTION],
        wait_seconds=WAIT,
        max_lag_seconds=max_lag_seconds,
        views=replica_views or marked(tmp_path / "replica.sqlite3", "replica"),
        events=events,
        clock=clock,
        probe_max_age=probe_max_age,
    )
    return Setup(primary, events, replica, RoutedViewsStore(primary, replica))


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    made = setup_with(tmp_path)
    try:
        yield made
    finally:
        made.routed.close()


def in_a_request(work: Callable[[], T]) -> T:
    """As a route runs: in a context of its own (the server's threads copy it)."""
    return contextvars.copy_context().run(work)


def answered_by(views: ViewsStore) -> str:
    with views.reader() as session:
        [(server,)] = session.fetch("SELECT server FROM akte_view_server_marker")
    return str(server)


def routed_read(setup: Setup, min_position: int | None) -> str:
    def request() -> str:
        read_views_from_replica(setup.replica, min_position)
        first = answered_by(setup.routed)
        assert answered_by(setup.routed) == first  # every read of the request alike
        return first

    return in_a_request(request)


def test_reads_outside_a_routed_request_go_to_the_primary(setup: Setup) -> None:
    # The projection runner, /metrics and the readiness checks read the primary.
    assert answered_by(setup.routed) == "primary"
    assert setup.replica.served_counts() == {"replica": 0, "primary": 0}


def test_a_read_without_a_position_is_answered_by_the_replica(setup: Setup) -> None:
    assert routed_read(setup, None) == "replica"
    assert setup.replica.served_counts() == {"replica": 1, "primary": 0}
    # The choice stays in its request.
    assert answered_by(setup.routed) == "primary"


def test_a_read_with_a_position_waits_for_the_replica_then_asks_the_primary(
    setup: Setup,
) -> None:
    assert isinstance(setup.replica.views, SqliteViewsStore)
    set_position(setup.replica.views, 7)
    assert routed_read(setup, 7) == "replica"
    assert routed_read(setup, 5) == "replica"
    assert routed_read(setup, 8) == "primary"  # not replayed within the wait
    assert setup.replica.served_counts() == {"replica": 2, "primary": 1}


def test_a_replica_that_does_not_answer_leaves_every_read_to_the_primary(setup: Setup) -> None:
    setup.events.down = True
    assert not setup.replica.usable()
    assert routed_read(setup, None) == "primary"
    assert setup.replica.read_events(None, lambda events: "replica" if events else "primary") == (
        "primary"
    )
    note = setup.replica.readiness_note()
    assert "unreachable" in note
    assert "primary" in note


def test_a_replica_too_far_behind_leaves_every_read_to_the_primary(tmp_path: Path) -> None:
    made = setup_with(tmp_path, max_lag_seconds=30.0)
    made.events.position = 4
    made.events.lag = 45.0
    try:
        assert routed_read(made, None) == "primary"
        assert made.replica.read_events(None, lambda e: "replica" if e else "primary") == (
            "primary"
        )
        assert made.replica.readiness_note() == (
            "standby, 6 events behind the primary, replay lag 45.000 s: reading the primary"
        )
    finally:
        made.routed.close()


def test_a_replica_within_the_lag_allowed_is_read(tmp_path: Path) -> None:
    made = setup_with(tmp_path, max_lag_seconds=30.0)
    made.events.lag = 20.0
    try:
        assert routed_read(made, None) == "replica"
    finally:
        made.routed.close()


def test_a_replica_whose_wal_receiver_is_gone_is_too_far_after_the_limit(
    tmp_path: Path,
) -> None:
    # Replication broken: nothing more is received, so all it received is replayed,
    # yet it holds fewer events than the primary, and its last replay grows old.
    made = setup_with(tmp_path, max_lag_seconds=30.0)
    made.events.position = 4
    made.events.replayed_all_received = True
    made.events.receiving = False
    made.events.lag = 45.0
    try:
        assert not made.replica.usable()
        assert routed_read(made, None) == "primary"
        assert made.replica.readiness_note().endswith("replay lag 45.000 s: reading the primary")
    finally:
        made.routed.close()


def test_a_replica_holding_all_the_primary_has_is_not_behind_however_old(
    tmp_path: Path,
) -> None:
    # An idle primary sends nothing: the last replayed transaction only grows old.
    made = setup_with(tmp_path, max_lag_seconds=30.0)
    made.events.position = 10
    made.events.replayed_all_received = True
    made.events.lag = 3600.0
    try:
        assert made.replica.usable()
        state = made.replica.state().value
        assert state is not None
        assert (state.lag_events, state.replay_lag_seconds) == (0, 0.0)
    finally:
        made.routed.close()


def test_a_primary_that_does_not_answer_leaves_the_replica_up_with_its_lag_unknown(
    tmp_path: Path,
) -> None:
    def primary_down() -> int | None:
        raise OSError("primary gone")

    made = setup_with(tmp_path, primary_position=primary_down)
    made.events.position = 4
    made.events.replayed_all_received = True
    try:
        outcome = made.replica.state()
        assert outcome.ok
        assert outcome.value is not None
        assert outcome.value.lag_events is None
        assert made.replica.usable()
        assert routed_read(made, None) == "replica"
        assert made.replica.readiness_note().startswith(
            "standby, ? (primary unknown) events behind the primary"
        )
        registry = CollectorRegistry()
        registry.register(ReplicaFigures(made.replica))
        names = {
            sample.name: sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
        }
        assert names["akte_replica_up"] == 1
        assert "akte_replica_lag_events" not in names
    finally:
        made.routed.close()


def test_the_replica_password_is_not_in_its_repr() -> None:
    connection = ReplicaConnection(**{**NOWHERE.__dict__, "password": "s3cret-pw"})
    assert "s3cret-pw" not in repr(connection)
    assert connection.password == "s3cret-pw"


def test_a_read_that_fails_on_the_replica_is_answered_by_the_primary(tmp_path: Path) -> None:
    made = setup_with(tmp_path, replica_views=UnreadableViews())
    try:
        assert made.replica.usable()  # its event table answers its probe
        assert routed_read(made, None) == "primary"
        assert made.replica.served_counts() == {"replica": 0, "primary": 1}
        assert not made.replica.usable()  # not tried again until a later probe
    finally:
        made.routed.close()


def test_a_history_is_read_from_the_replica_once_it_holds_the_write(setup: Setup) -> None:
    case_id = uuid4()
    setup.events.cases[case_id] = [(1, "topic", b"{}"), (2, "topic", b"{}")]
    setup.events.position = 4

    def read(events: ReplicaEvents | None) -> tuple[str, int | None]:
        if events is None:
            return "primary", None
        head = events.head_version(case_id)
        if head is None:
            raise CaseNotFound(case_id)
        return "replica", head

    assert setup.replica.read_events(4, read, missing=(CaseNotFound,)) == ("replica", 2)
    assert setup.replica.read_events(None, read, missing=(CaseNotFound,)) == ("replica", 2)
    assert setup.replica.read_events(5, read, missing=(CaseNotFound,)) == ("primary", None)
    # A case file opened a moment ago, not on the replica yet: the primary has it.
    case_id = uuid4()
    assert setup.replica.read_events(None, read, missing=(CaseNotFound,)) == ("primary", None)
    assert setup.replica.served_counts() == {"replica": 2, "primary": 2}


def test_a_history_read_that_fails_on_the_replica_is_answered_by_the_primary(
    setup: Setup,
) -> None:
    def read(events: ReplicaEvents | None) -> str:
        if events is None:
            return "primary"
        setup.events.down = True  # it goes away during the read
        events.head_version(uuid4())
        return "replica"

    assert setup.replica.read_events(None, read) == "primary"
    assert not setup.replica.usable()


def test_the_readiness_note_and_the_metrics_show_the_lag(setup: Setup) -> None:
    setup.events.position = 7
    setup.events.lag = 0.25
    assert setup.replica.readiness_note() == (
        "standby, 3 events behind the primary, replay lag 0.250 s"
    )
    routed_read(setup, None)

    registry = CollectorRegistry()
    registry.register(ReplicaFigures(setup.replica))
    samples = {
        (sample.name, tuple(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    assert samples[("akte_replica_up", ())] == 1
    assert samples[("akte_replica_lag_events", ())] == 3
    assert samples[("akte_replica_replay_lag_seconds", ())] == 0.25
    assert samples[("akte_replica_reads_total", (("server", "replica"),))] == 1
    assert samples[("akte_replica_reads_total", (("server", "primary"),))] == 0


def test_the_metrics_say_when_the_replica_is_down(tmp_path: Path) -> None:
    made = setup_with(tmp_path)
    made.events.down = True
    try:
        registry = CollectorRegistry()
        registry.register(ReplicaFigures(made.replica))
        names = {
            sample.name: sample.value
            for family in text_string_to_metric_families(generate_latest(registry).decode())
            for sample in family.samples
        }
        assert names["akte_replica_up"] == 0
        assert "akte_replica_lag_events" not in names
    finally:
        made.routed.close()


def test_a_promoted_replica_is_named_so(setup: Setup) -> None:
    setup.events.in_recovery = False
    setup.events.position = 10
    assert setup.replica.readiness_note().startswith("not a standby, 0 events behind")


def test_no_replica_is_used_unless_one_is_configured(
    service: AkteService, settings: Settings
) -> None:
    assert replica_reads(settings, service) is None
    # Named with SQLite: there is no replica of a file, and no replica is used.
    elsewhere = settings.model_copy(update={"postgres_replica_host": "replica.example"})
    configured = replica_reads(elsewhere, service)
    assert (configured is None) == (settings.store == "sqlite")
    if configured is not None:
        assert configured.where.startswith("PostgreSQL replica at replica.example:")
        assert configured.wait_seconds == settings.postgres_replica_wait_seconds
        configured.close()  # nothing was connected


# ------------------------------------------------ the replica's reads, against a primary


@pytest.fixture
def on_postgres(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    return make_settings("postgres", tmp_path, request)


@pytest.mark.postgres
def test_the_replica_reads_are_read_only_and_name_a_server_that_is_no_standby(
    on_postgres: Settings, clock: FakeClock
) -> None:
    # The primary itself stands in for the replica: the same tables, read-only connections.
    service = build_service(on_postgres, clock=clock)
    settings = on_postgres.model_copy(
        update={
            "postgres_replica_host": on_postgres.postgres_host,
            "postgres_replica_port": on_postgres.postgres_port,
        }
    )
    replica = replica_reads(settings, service)
    assert replica is not None
    try:
        opened = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01")
        head = service.recorder.max_notification_id() or 0

        assert replica.events.head_version(opened.case_id) == opened.version
        assert [row[0] for row in replica.events.events(opened.case_id, 0, 10)] == [1]
        assert replica.events.has_position(head)
        # Ids have gaps: a position no event has, below the head, is held too.
        assert replica.events.has_position(0)
        assert not replica.events.has_position(head + 1)
        assert replica.readiness_note() == (
            "not a standby, 0 events behind the primary, replay lag 0.000 s"
        )
        with replica.views.reader() as session:
            [(read_only,)] = session.fetch("SHOW default_transaction_read_only")
        assert read_only == "on"
        with pytest.raises(ViewsStoreUnavailable, match="read-only"), replica.views.reader() as s:
            s.fetch("CREATE TABLE akte_view_never (x integer)")
    finally:
        replica.close()
        service.close()


@pytest.mark.parametrize("port", [0, 65536])
def test_a_replica_port_out_of_range_is_refused(tmp_path: Path, port: int) -> None:
    with pytest.raises(ValidationError, match="postgres_replica_port"):
        Settings(store="postgres", data_dir=tmp_path, postgres_replica_port=port)
    assert Settings(store="postgres", data_dir=tmp_path, postgres_replica_port=65535)


def test_a_server_that_is_no_standby_and_lacks_the_primarys_events_is_not_read(
    setup: Setup,
) -> None:
    # Promoted, or split off: nothing streams to it any more, so its copy only ages.
    setup.events.in_recovery = False
    setup.events.position = 4
    assert not setup.replica.usable()
    assert routed_read(setup, None) == "primary"
    assert setup.replica.readiness_note() == (
        "not a standby, 6 events behind the primary, replay lag 0.000 s: "
        "not a standby and without the primary's last events: reading the primary"
    )


def test_a_standby_whose_office_stands_still_behind_the_primary_is_left_after_the_limit(
    tmp_path: Path,
) -> None:
    """A standby of another server (the office moved away): it replays that server's
    work, so its replay lag stays small, but this office's events never come."""
    now = [1000.0]
    made = setup_with(tmp_path, max_lag_seconds=30.0, clock=lambda: now[0])
    made.events.position = 4  # the primary is at 10
    made.events.lag = 0.2
    try:
        assert routed_read(made, None) == "replica"  # it may just be catching up
        now[0] += 29.0
        assert made.replica.usable()
        now[0] += 2.0
        assert not made.replica.usable()
        assert routed_read(made, None) == "primary"
        assert made.replica.readiness_note().endswith(
            "no event of this office replayed for 31 s: reading the primary"
        )
    finally:
        made.routed.close()


def test_a_standby_that_moves_on_is_not_taken_for_standing_still(tmp_path: Path) -> None:
    now = [1000.0]
    made = setup_with(
        tmp_path,
        max_lag_seconds=30.0,
        primary_position=lambda: 10_000,
        clock=lambda: now[0],
        probe_max_age=0.0,  # every look asks the replica again
    )
    made.events.lag = 0.2
    try:
        for step in range(1, 6):  # always behind a busy primary, but replaying
            made.events.position = step * 100
            now[0] += 20.0
            assert made.replica.usable(), step
    finally:
        made.routed.close()
