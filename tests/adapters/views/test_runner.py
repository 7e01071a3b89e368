"""The runner: follows the log in a thread, read-your-writes, NOTIFY, polling, locks."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import psycopg
import pytest

from adapters.bootstrap import build_service
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog, ProjectionRunner, wait_for_position
from adapters.views.store import PostgresViewsStore
from projections.engine import ProjectionEngine
from projections.errors import ViewsStoreUnavailable
from projections.storage import ViewsStore
from projections.worklists import WORKLISTS
from projections.worklists.open_procedures_by_assignee import open_procedures_by_assignee
from service import AkteService
from tests.conftest import POSTGRES, FakeClock
from tests.support.projections import TOPIC, CaseDriver, dump, rebuilt_dump, views_for

TODAY = date(2024, 3, 4)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


@pytest.fixture
def start_runner(
    service: AkteService, views: ViewsStore
) -> Iterator[Callable[..., ProjectionRunner]]:
    started: list[ProjectionRunner] = []

    def start(**options: Any) -> ProjectionRunner:
        runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, **options)
        runner.start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        assert runner.stop(timeout=10), "the runner stops cleanly"


def eventually(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def assign(case: CaseDriver, assignee: str = "sb-02") -> int:
    number: int = case("receive_procedure", channel="mail", topic=TOPIC)
    case("assign_procedure", procedure_number=number, assignee=assignee)
    return case.position


def test_a_runner_thread_follows_commands_and_wait_until_gives_read_your_writes(
    service: AkteService, views: ViewsStore, start_runner: Callable[..., ProjectionRunner]
) -> None:
    # A long poll interval: only wait_until's nudge can make the runner look at once.
    runner = start_runner(poll_interval=30.0, listen=False)
    assert eventually(lambda: runner.held == {p.name for p in WORKLISTS})
    case = CaseDriver.open(service)
    for _ in range(3):
        position = assign(case)
        started = time.monotonic()
        assert runner.wait_until(position, timeout=5)
        assert time.monotonic() - started < 2.0
        mine = open_procedures_by_assignee(views, assignee="sb-02", today=TODAY).items
        assert mine[-1].procedure_number == len(mine)
    assert runner.wait_until(position, timeout=1, names=["open_procedures_by_assignee"])
    assert not runner.wait_until(position + 1000, timeout=0.2)
    assert runner.stats.batches >= 3
    assert runner.stats.errors == 0
    assert dump(service, views) == rebuilt_dump(service, views)


@pytest.mark.postgres
def test_a_notification_wakes_the_runner_long_before_its_poll(
    postgres_schema: str, clock: FakeClock
) -> None:
    settings = _postgres_settings(postgres_schema)
    with _service(settings, clock) as service, views_for(settings) as views:
        poll = 10.0
        runner = ProjectionRunner(
            ApplicationEventLog(service), views, WORKLISTS, poll_interval=poll
        )
        runner.start()
        try:
            assert eventually(lambda: runner.listening and len(runner.held) == len(WORKLISTS))
            case = CaseDriver.open(service)
            assert wait_for_position(views, WORKLISTS, case.position, timeout=5)
            waits = []
            for _ in range(5):
                position = assign(case)
                started = time.monotonic()
                # Polls the positions table only: it does not nudge the runner.
                assert wait_for_position(views, WORKLISTS, position, timeout=poll / 2)
                waits.append(time.monotonic() - started)
            assert statistics.median(waits) < 0.5, waits
            assert max(waits) < poll / 4, waits
        finally:
            assert runner.stop()


@pytest.mark.postgres
def test_polling_carries_on_when_listen_is_broken(
    postgres_schema: str, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _postgres_settings(postgres_schema)

    def broken(self: PostgresViewsStore, channel: str) -> Any:
        raise ViewsStoreUnavailable("the views store (PostgreSQL) failed: LISTEN refused")

    monkeypatch.setattr(PostgresViewsStore, "listener", broken)
    with _service(settings, clock) as service, views_for(settings) as views:
        runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, poll_interval=0.3)
        runner.start()
        try:
            case = CaseDriver.open(service)
            position = assign(case)
            started = time.monotonic()
            assert wait_for_position(views, WORKLISTS, position, timeout=5)
            assert time.monotonic() - started < 2.0
            assert not runner.listening
        finally:
            assert runner.stop()


@pytest.mark.postgres
def test_a_dropped_listen_connection_is_replaced(postgres_schema: str, clock: FakeClock) -> None:
    settings = _postgres_settings(postgres_schema)
    with _service(settings, clock) as service, views_for(settings) as views:
        runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, poll_interval=10)
        runner.start()
        try:
            assert eventually(lambda: runner.listening)
            with psycopg.connect(autocommit=True, **POSTGRES) as admin:
                killed = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s",
                    (f"akte-listen {postgres_schema}"[:63],),
                ).fetchall()
            assert killed == [(True,)]
            assert eventually(lambda: runner.stats.listen_connections >= 2, timeout=10)
            assert eventually(lambda: runner.listening, timeout=10)
            case = CaseDriver.open(service)
            position = assign(case)
            started = time.monotonic()
            assert wait_for_position(views, WORKLISTS, position, timeout=5)
            assert time.monotonic() - started < 2.0  # woken by NOTIFY again, not the poll
        finally:
            assert runner.stop()


def test_two_runners_never_both_follow_a_read_model(
    service: AkteService, views: ViewsStore, start_runner: Callable[..., ProjectionRunner]
) -> None:
    first = start_runner(poll_interval=0.05, listen=False)
    assert eventually(lambda: len(first.held) == len(WORKLISTS))
    second = start_runner(poll_interval=0.05, listen=False, lock_retry_interval=0.2)
    case = CaseDriver.open(service)
    for _ in range(3):
        position = assign(case)
        assert second.wait_until(position, timeout=5)  # read from the views store
        assert first.wait_until(position, timeout=5)
    time.sleep(0.5)  # several lock attempts of the second runner
    assert second.held == frozenset()
    assert second.stats.batches == 0
    assert first.stats.batches >= 1

    assert first.stop()
    assert eventually(lambda: len(second.held) == len(WORKLISTS))
    position = assign(case, assignee="sb-05")
    assert second.wait_until(position, timeout=5)
    assert second.stats.batches >= 1
    assert open_procedures_by_assignee(views, assignee="sb-05", today=TODAY).items
    assert dump(service, views) == rebuilt_dump(service, views)


def test_the_runner_recovers_from_a_failing_views_store(
    service: AkteService,
    views: ViewsStore,
    start_runner: Callable[..., ProjectionRunner],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ProjectionEngine.process_batch
    failures = [ViewsStoreUnavailable("the views store (test) failed: connection lost")]

    def flaky(self: ProjectionEngine, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return original(self, **kwargs)

    monkeypatch.setattr(ProjectionEngine, "process_batch", flaky)
    runner = start_runner(poll_interval=0.05, listen=False)
    case = CaseDriver.open(service)
    position = assign(case)
    assert runner.wait_until(position, timeout=10)
    assert runner.stats.errors == 1
    assert runner.stats.last_error is not None
    assert "connection lost" in runner.stats.last_error


# ---------------------------------------------------------------- helpers


def _postgres_settings(schema: str) -> Settings:
    return Settings(
        store="postgres",
        postgres_host=POSTGRES["host"],
        postgres_port=POSTGRES["port"],
        postgres_user=POSTGRES["user"],
        postgres_dbname=POSTGRES["dbname"],
        postgres_schema=schema,
    )


@contextmanager
def _service(settings: Settings, clock: FakeClock) -> Iterator[AkteService]:
    service = build_service(settings, clock=clock)
    try:
        yield service
    finally:
        service.close()


def test_a_stop_asked_before_run_ends_it_at_once(service: AkteService, views: ViewsStore) -> None:
    # A worker installs its SIGTERM handler before it calls run(): a signal in between
    # must not be forgotten (it was, and the worker followed the log for ever).
    runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, poll_interval=0.1)
    runner.request_stop()
    worker = threading.Thread(target=runner.run, daemon=True)
    worker.start()
    worker.join(timeout=120)
    assert not worker.is_alive(), "run() ignored the stop asked before it"
