"""A read model that fails on an event stops alone, says so, and resumes from that event.

A read model made to fail on purpose (``fragile``: its handler raises on one assignee,
or writes a row the views store refuses) runs beside every read model Akte keeps. The
runner stops it at the event before the failing one and goes on with the others; the
failure is logged (read model, position, the error's type, no data), recorded in the
views store (``/readyz`` names it, ``akte_read_model_failed`` is 1). Once the cause is
fixed, a new runner processes that very event (nothing skipped) and the record goes.
``akte projections rebuild`` ends with one line and exit code 1, not a traceback. On
SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app
from adapters.cli.projections import add_projection_commands, format_status_table
from adapters.cli.support import EXIT_FAILED
from adapters.settings import Settings
from adapters.views.read_models import ReadModelLag, ReadModels
from adapters.views.runner import ApplicationEventLog, ProjectionRunner
from domain.case_file import CaseFile
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.read_models import READ_MODELS
from projections.status import projection_status
from projections.storage import ViewsStore
from service import AkteService
from tests.support.projections import TOPIC, CaseDriver, dump, stored_positions, views_for
from tests.system.test_projections_crash import child_env

BREAKING: Final = "sb-breaks"
SECRET: Final = "Beispiel"
"""Stands for personal data in the error's message: it must appear in no log line."""
WAIT: Final = 60.0
"""Upper bound for the runner to get somewhere (a bound, not a measured time)."""

Mode = Literal["raises", "refuses"]


@dataclass
class FragileAssignment:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    assignee: str


@dataclass
class Fragile:
    """A read model of assignments that fails on ``breaks`` until it is fixed (None)."""

    mode: Mode
    breaks: str | None = BREAKING
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.table = Table("fragile_assignments", FragileAssignment, key=("procedure_number",))
        self.projection = Projection(
            name="fragile",
            tables=(self.table,),
            handlers=handlers(on(CaseFile.ProcedureAssigned, self._assigned)),
        )

    def _assigned(self, case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
        assignee: str | None = event.assignee
        if event.assignee == self.breaks:
            if self.mode == "raises":
                msg = f"cannot place the assignment of {SECRET}"
                raise OverflowError(msg)
            assignee = None  # a NOT NULL column: the views store refuses the row
        self.seen.append(event.assignee)
        case.put(
            self.table,
            FragileAssignment(
                case.case_id,
                case.office_id,
                case.reference,
                event.procedure_number,
                assignee,  # type: ignore[arg-type]
            ),
        )


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


@dataclass(frozen=True)
class History:
    failing: int
    """The position of the event the fragile read model fails on."""
    head: int


def _history(service: AkteService) -> History:
    case = CaseDriver.open(service)
    case("receive_procedure", channel="mail", topic=TOPIC)
    case("assign_procedure", procedure_number=1, assignee="sb-01")
    case("receive_procedure", channel="mail", topic=TOPIC)
    case("assign_procedure", procedure_number=2, assignee=BREAKING)
    failing = case.position
    case("assign_procedure", procedure_number=1, assignee="sb-03")
    case("add_note", text="after the failing event")
    return History(failing=failing, head=case.position)


def _runner(service: AkteService, views: ViewsStore, fragile: Fragile) -> ProjectionRunner:
    return ProjectionRunner(
        ApplicationEventLog(service),
        views,
        (*READ_MODELS, fragile.projection),
        poll_interval=0.05,
        batch_size=50,
    )


def _until(condition: object, what: str) -> None:
    """Wait (bounded) for ``condition()`` to hold."""
    deadline = time.monotonic() + WAIT
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"not within {WAIT} s: {what}"
        time.sleep(0.02)


OTHERS: Final = [model.name for model in READ_MODELS]


@pytest.mark.parametrize("mode", ["raises", "refuses"])
def test_a_failing_read_model_stops_alone_is_reported_and_resumes_from_its_event_once_fixed(
    service: AkteService,
    views: ViewsStore,
    mode: Mode,
    caplog: pytest.LogCaptureFixture,
) -> None:
    history = _history(service)
    fragile = Fragile(mode)
    runner = _runner(service, views, fragile)
    caplog.set_level(logging.INFO, logger="akte.projections")
    runner.start()
    try:
        # The others reach the head; the fragile one stops at the event before its failure.
        assert runner.wait_until(history.head, WAIT, names=OTHERS)
        _until(lambda: "fragile" in runner.failures, "the failure is found")
        failure = runner.failures["fragile"]
        assert failure.position == history.failing
        if mode == "raises":
            assert failure.reason == "OverflowError"
        else:
            assert "refused a row" in failure.reason
        positions = stored_positions(views)
        assert {name: positions[name] for name in OTHERS} == dict.fromkeys(OTHERS, history.head)
        assert positions["fragile"] == history.failing - 1  # everything before it

        # Reported: the log, /readyz's check, the metric, the status.
        stopped = [r for r in caplog.records if r.levelno == logging.ERROR and "stopped" in r.msg]
        assert len(stopped) == 1
        line = stopped[0].getMessage()
        assert "fragile" in line
        assert f"event {history.failing}" in line
        assert SECRET not in caplog.text
        models = ReadModels(service, views, (*READ_MODELS, fragile.projection), runner)
        problem = models.lag_problem()
        assert problem is not None
        assert f"read model fragile stopped at event {history.failing}" in problem
        failed = {
            sample.labels["read_model"]: sample.value
            for family in ReadModelLag(models).collect()
            if family.name == "akte_read_model_failed"
            for sample in family.samples
        }
        assert failed == {**dict.fromkeys(OTHERS, 0), "fragile": 1}
        status = {
            s.name: s
            for s in projection_status(
                ApplicationEventLog(service), views, (*READ_MODELS, fragile.projection)
            )
        }
        failure_status = status["fragile"].failure
        assert failure_status is not None
        assert failure_status.position == history.failing
        table = format_status_table(list(status.values()))
        assert f"fragile (STOPPED at event {history.failing}: " in table
        assert all(status[name].failure is None for name in OTHERS)
        # The others go on with new events.
        case = CaseDriver.open(service)
        assert runner.wait_until(case.position, WAIT, names=OTHERS)
    finally:
        assert runner.stop()

    # Fixed (as a code fix and a restart would): it resumes from the failing event.
    fragile.breaks = None
    fragile.seen.clear()
    head = ApplicationEventLog(service).head()
    runner = _runner(service, views, fragile)
    runner.start()
    try:
        _until(lambda: stored_positions(views)["fragile"] >= head, "the fixed one catches up")
        assert runner.wait_until(head, WAIT)
        assert fragile.seen[0] == BREAKING  # the failing event first: nothing skipped
        assert runner.failures == {}
        rows = dump(service, views, [fragile.projection])["fragile_assignments"]
        assert sorted(row[3:] for row in rows) == [(1, "sb-03"), (2, BREAKING)]
        statuses = projection_status(
            ApplicationEventLog(service), views, (*READ_MODELS, fragile.projection)
        )
        assert [s.name for s in statuses if s.failure is not None] == []
        models = ReadModels(service, views, (*READ_MODELS, fragile.projection), runner)
        assert models.lag_problem() is None
    finally:
        assert runner.stop()


def test_readyz_names_the_stopped_read_model_and_metrics_count_it(
    service: AkteService, views: ViewsStore, settings: Settings
) -> None:
    history = _history(service)
    fragile = Fragile("raises")
    runner = _runner(service, views, fragile)
    runner.start()
    models = ReadModels(service, views, (*READ_MODELS, fragile.projection), runner)
    try:
        assert runner.wait_until(history.head, WAIT, names=OTHERS)
        _until(lambda: "fragile" in runner.failures, "the failure is found")
        # Waiting for every read model does not hang on the stopped one.
        assert models.wait_until(history.head, WAIT)
        with TestClient(build_app(settings, service, read_models=models)) as client:
            ready = client.get("/readyz")
            metrics = client.get("/metrics")
        assert ready.status_code == 503
        assert f"read model fragile stopped at event {history.failing}" in ready.json()["detail"]
        assert 'akte_read_model_failed{read_model="fragile"} 1.0' in metrics.text
        assert 'akte_read_model_failed{read_model="workload"} 0.0' in metrics.text
    finally:
        runner.stop()


def test_rebuild_with_a_failing_read_model_ends_with_one_line_and_exit_code_one(
    service: AkteService,
    views: ViewsStore,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    history = _history(service)
    fragile = Fragile("raises")
    monkeypatch.chdir(tmp_path)
    for name, value in child_env(settings).items():
        if name.startswith("AKTE_"):
            monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser(prog="akte")
    add_projection_commands(
        parser.add_subparsers(dest="command", required=True), (*READ_MODELS, fragile.projection)
    )
    args = parser.parse_args(["projections", "rebuild", "fragile", "--batch-size", "3"])

    code = args.run(args)

    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert f"read model fragile failed at event {history.failing}: OverflowError" in err
    assert "Traceback" not in err
    assert SECRET not in err
