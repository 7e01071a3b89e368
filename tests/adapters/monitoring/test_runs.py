"""The runs of ``akte audit verify``, ``akte deadlines tick`` and ``akte appointments tick``
reach ``/metrics``, on SQLite and PostgreSQL.

The commands run as an operator runs them (settings from the environment), in this
process; a server built afterwards over the same stores exports what they recorded.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, open_views_store
from adapters.cli import deadlines
from adapters.cli.main import main
from adapters.cli.projections import EXIT_UNAVAILABLE
from adapters.monitoring.runs import (
    APPOINTMENTS_TICK,
    AUDIT_VERIFY,
    DEADLINES_TICK,
    record_run,
    task_runs,
)
from adapters.settings import Settings
from projections.errors import ViewsStoreUnavailable
from projections.storage import ViewsStore
from service import AkteService
from service_common import StoreUnavailable
from service_deadlines import Deadlines, DeadlineTickReport
from tests.adapters.cli.test_deadlines import REQUESTED_AT, THE_DAY_AFTER
from tests.adapters.monitoring.test_metrics import Samples, scrape, value
from tests.adapters.reports.test_audit_export import cli_env
from tests.adapters.store.test_hash_chain import RawDb, at, raw, write_log
from tests.support.projections import CaseDriver

__all__ = ["cli_env", "raw"]  # the fixtures, imported for these tests

TASKS = (AUDIT_VERIFY, DEADLINES_TICK, APPOINTMENTS_TICK)


def metrics_of(settings: Settings, service: AkteService) -> Samples:
    """A scrape of a server built now over the same stores (it reads, runs no runner)."""
    app = build_app(settings, service)
    try:
        with TestClient(app) as client:
            return scrape(client)
    finally:
        app.state.read_models.close()


def test_before_any_run_every_task_is_exported_as_never_run(
    service: AkteService, settings: Settings
) -> None:
    samples = metrics_of(settings, service)

    for task in TASKS:
        assert value(samples, "akte_task_last_run_timestamp_seconds", task=task) == 0
        assert value(samples, "akte_task_last_success_timestamp_seconds", task=task) == 0
        assert value(samples, "akte_task_runs_total", task=task, result="ok") == 0
        assert ("akte_task_last_run_ok", (("task", task),)) not in samples


def test_audit_verify_records_its_result_and_a_broken_chain_keeps_the_last_good_one(
    service: AkteService,
    raw: RawDb,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = write_log(service)
    before = time.time()

    assert main(["audit", "verify"]) == 0
    verified = metrics_of(cli_env, service)
    target = at(log, log[0].case_id, 2)
    state = bytearray(raw.state(target.notification_id))
    state[3] ^= 0x01
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), target.notification_id])
    assert main(["audit", "verify"]) == 4
    broken = metrics_of(cli_env, service)

    events = service.recorder.max_notification_id()
    good = value(verified, "akte_task_last_success_timestamp_seconds", task=AUDIT_VERIFY)
    assert before <= good <= time.time()
    assert value(verified, "akte_task_last_run_ok", task=AUDIT_VERIFY) == 1
    assert value(verified, "akte_task_last_run_steps", task=AUDIT_VERIFY) == events
    assert value(verified, "akte_task_last_run_duration_seconds", task=AUDIT_VERIFY) >= 0
    assert value(broken, "akte_task_last_run_ok", task=AUDIT_VERIFY) == 0
    assert value(broken, "akte_task_last_success_timestamp_seconds", task=AUDIT_VERIFY) == good
    assert value(broken, "akte_task_last_run_timestamp_seconds", task=AUDIT_VERIFY) >= good
    assert value(broken, "akte_task_runs_total", task=AUDIT_VERIFY, result="ok") == 1
    assert value(broken, "akte_task_runs_total", task=AUDIT_VERIFY, result="failed") == 1
    # The other tasks did not run.
    assert value(broken, "akte_task_last_run_timestamp_seconds", task=DEADLINES_TICK) == 0
    assert "not recorded" not in capsys.readouterr().err


def test_the_ticks_record_their_runs_and_steps(
    service: AkteService, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert service.clock() == REQUESTED_AT
    case = CaseDriver.open(service)
    case("request_entry_consent")
    before = time.time()

    assert main(["deadlines", "tick", "--now", THE_DAY_AFTER]) == 0  # one consent deemed
    assert main(["appointments", "tick"]) == 0
    assert main(["appointments", "tick"]) == 0
    samples = metrics_of(cli_env, service)

    for task, runs, steps in ((DEADLINES_TICK, 1, 1), (APPOINTMENTS_TICK, 2, 0)):
        assert before <= value(samples, "akte_task_last_success_timestamp_seconds", task=task)
        assert value(samples, "akte_task_last_run_ok", task=task) == 1
        assert value(samples, "akte_task_last_run_steps", task=task) == steps
        assert value(samples, "akte_task_runs_total", task=task, result="ok") == runs
        assert value(samples, "akte_task_runs_total", task=task, result="failed") == 0
    assert "not recorded" not in capsys.readouterr().err


def test_a_failed_run_counts_as_failed_and_keeps_the_last_success(settings: Settings) -> None:
    views = open_views_store(settings)
    start = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    try:
        record_run(views, DEADLINES_TICK, started_at=start, finished_at=start, result="ok", steps=3)
        later = start + timedelta(hours=1)
        record_run(
            views,
            DEADLINES_TICK,
            started_at=later,
            finished_at=later + timedelta(seconds=2),
            result="failed",
            steps=0,
        )
        (run,) = task_runs(views).values()
    finally:
        views.close()

    assert (run.task, run.last_result, run.last_steps) == (DEADLINES_TICK, "failed", 0)
    assert run.last_success_at == start
    assert (run.last_started_at, run.last_finished_at) == (later, later + timedelta(seconds=2))
    assert (run.runs_ok, run.runs_failed) == (1, 1)


def test_a_views_store_that_cannot_be_written_leaves_the_commands_exit_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))

    def unavailable(_settings: Settings) -> ViewsStore:
        raise ViewsStoreUnavailable("the views store (SQLite) failed: disk I/O error")

    monkeypatch.setattr(deadlines, "open_views_store", unavailable)

    assert main(["deadlines", "tick"]) == 0

    # The command's own line. (Not the whole of stderr: a logging handler that an earlier
    # test in the same worker left on its closed capture stream reports "--- Logging
    # error ---" here; that belongs to the earlier test, not to this command.)
    lines = capsys.readouterr().err.splitlines()
    assert (
        "akte: the run was not recorded for monitoring: "
        "the views store (SQLite) failed: disk I/O error"
    ) in lines
    assert [line for line in lines if line.startswith("akte:")] == [
        "akte: the run was not recorded for monitoring: "
        "the views store (SQLite) failed: disk I/O error"
    ]


def test_a_tick_that_loses_its_store_is_recorded_as_failed(
    service: AkteService, cli_env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    def store_gone(_self: Deadlines) -> DeadlineTickReport:
        raise StoreUnavailable("the event store is unavailable")

    monkeypatch.setattr(Deadlines, "run_deadline_tick", store_gone)

    assert main(["deadlines", "tick"]) == EXIT_UNAVAILABLE
    samples = metrics_of(cli_env, service)

    assert value(samples, "akte_task_last_run_ok", task=DEADLINES_TICK) == 0
    assert value(samples, "akte_task_last_run_timestamp_seconds", task=DEADLINES_TICK) > 0
    assert value(samples, "akte_task_last_success_timestamp_seconds", task=DEADLINES_TICK) == 0
    assert value(samples, "akte_task_runs_total", task=DEADLINES_TICK, result="failed") == 1
