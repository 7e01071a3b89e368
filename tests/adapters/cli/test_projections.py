"""``akte projections rebuild|status|run``, called with parsed arguments."""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bootstrap import build_service, settings_from_environment
from adapters.cli.main import main
from adapters.cli.projections import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_USAGE,
    add_projection_commands,
)
from adapters.cli.support import EXIT_SCHEMA
from adapters.settings import Settings
from projections.generations import rebuild_lock_name
from projections.read_models import READ_MODELS
from projections.storage import ViewsStore
from service import AkteService
from tests.support.projections import TOPIC, CaseDriver, dump, stored_positions, views_for
from tests.support.store_versions import record_a_newer_keys_schema
from tests.system.test_projections_crash import ROOT, child_env

RUN_WORKER = """
import argparse, sys
from adapters.cli.projections import add_projection_commands
parser = argparse.ArgumentParser(prog="akte")
add_projection_commands(parser.add_subparsers(dest="command"))
args = parser.parse_args(sys.argv[1:])
sys.exit(args.run(args))
"""

BOUND = 120.0
"""How long the worker test waits for the worker process to catch up and to stop: a
bound for a hang, not a measure. Generous: the worker first imports the application,
which alone took 15 s on this shared two-core machine at load 13."""


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


@pytest.fixture
def akte(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> argparse.ArgumentParser:
    """The ``akte`` parser with the projection commands, configured for the test store."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name, value in child_env(settings).items():
        if name.startswith("AKTE_"):
            monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser(prog="akte")
    add_projection_commands(parser.add_subparsers(dest="command", required=True))
    return parser


def run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(list(argv))
    code: int = args.run(args)
    return code


def history(service: AkteService) -> int:
    case = CaseDriver.open(service)
    for _ in range(3):
        number = case("receive_procedure", channel="mail", topic=TOPIC)
        case("assign_procedure", procedure_number=number, assignee="sb-02")
    return case.position


def test_rebuild_builds_every_read_model_and_reports_its_rate(
    akte: argparse.ArgumentParser,
    service: AkteService,
    views: ViewsStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    head = history(service)
    assert run(akte, "projections", "rebuild", "--batch-size", "3") == EXIT_OK
    out, err = capsys.readouterr()
    assert f"rebuilt {len(READ_MODELS)} read model(s) from {head:,} events" in out
    assert "events/s" in out
    assert f"rebuilt {head:,}/{head:,} events (100%)" in err
    assert stored_positions(views) == {p.name: head for p in READ_MODELS}

    assert run(akte, "projections", "rebuild", "unreviewed_uploads") == EXIT_OK
    assert "rebuilt 1 read model(s)" in capsys.readouterr().out


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_rebuild_in_two_processes_gives_the_same_rows(
    akte: argparse.ArgumentParser,
    service: AkteService,
    views: ViewsStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    head = history(service)
    assert run(akte, "projections", "rebuild") == EXIT_OK
    alone = dump(service, views)
    assert run(akte, "projections", "rebuild", "--jobs", "2", "--batch-size", "2") == EXIT_OK
    rebuilt = capsys.readouterr().out
    assert f"rebuilt {len(READ_MODELS)} read model(s) from {head:,} events" in rebuilt
    assert stored_positions(views) == {p.name: head for p in READ_MODELS}
    assert dump(service, views) == alone

    other_worker = views.writer()
    try:
        # A worker following a read model does not stop a rebuild (it is built beside);
        # another rebuild of it does.
        assert other_worker.try_lock("unreviewed_uploads")
        assert run(akte, "projections", "rebuild", "--jobs", "2") == EXIT_OK
        assert other_worker.try_lock(rebuild_lock_name("unreviewed_uploads"))
        code = run(akte, "projections", "rebuild", "--jobs", "2", "--wait", "0.2")
        assert code == EXIT_BUSY
        assert "another worker rebuilds unreviewed_uploads" in capsys.readouterr().err
    finally:
        other_worker.close()


def test_rebuild_refuses_unknown_names_and_read_models_another_rebuild_holds(
    akte: argparse.ArgumentParser,
    service: AkteService,
    views: ViewsStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    history(service)
    assert run(akte, "projections", "rebuild", "no_such_list") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no read model named no_such_list" in err
    assert "unassigned_procedures" in err  # the known names are listed

    other_worker = views.writer()
    try:
        assert other_worker.try_lock("expiring_documents")
        assert run(akte, "projections", "rebuild", "--wait", "0.3") == EXIT_OK
        assert other_worker.try_lock(rebuild_lock_name("expiring_documents"))
        code = run(akte, "projections", "rebuild", "--wait", "0.3")
        assert code == EXIT_BUSY
        assert "another worker rebuilds expiring_documents" in capsys.readouterr().err
    finally:
        other_worker.close()
    assert run(akte, "projections", "rebuild") == EXIT_OK


def test_status_shows_position_head_and_lag(
    akte: argparse.ArgumentParser,
    service: AkteService,
    capsys: pytest.CaptureFixture[str],
) -> None:
    head = history(service)
    assert run(akte, "projections", "status") == EXIT_OK
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("read model")
    assert table[0].split()[2:] == [
        "position",
        "head",
        "lag",
        "events",
        "lag",
        "seconds",
        "updated",
    ]
    assert len(table) == 1 + len(READ_MODELS)
    assert all("(not built)" in line for line in table[1:])

    run(akte, "projections", "rebuild", "unassigned_procedures")
    capsys.readouterr()
    assert run(akte, "projections", "status", "--json") == EXIT_OK
    records = {r["name"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    assert records["unassigned_procedures"]["position"] == head
    assert records["unassigned_procedures"]["lag_events"] == 0
    assert records["unreviewed_uploads"]["built"] is False
    assert records["unreviewed_uploads"]["lag_events"] == head


def test_invalid_settings_are_named_not_quoted(
    akte: argparse.ArgumentParser,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_STORE", "s3cret-bucket")
    assert run(akte, "projections", "status") == EXIT_USAGE
    err = capsys.readouterr().err
    assert "invalid settings: AKTE_STORE" in err
    assert "s3cret" not in err


def test_run_follows_the_log_until_sigterm(
    settings: Settings, service: AkteService, views: ViewsStore
) -> None:
    worker = subprocess.Popen(
        [sys.executable, "-c", RUN_WORKER, "projections", "run", "--poll-interval", "0.05"],
        cwd=ROOT,
        env=child_env(settings),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        position = history(service)
        # Caught up means running: the worker writes positions only inside its loop,
        # which starts after its SIGTERM handler is installed; so the signal below is
        # never sent too early.
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline and worker.poll() is None:
            positions = stored_positions(views)
            if len(positions) == len(READ_MODELS) and min(positions.values()) >= position:
                break
            time.sleep(0.05)
        assert worker.poll() is None, "the worker ended before it caught up"
        assert stored_positions(views) == {p.name: position for p in READ_MODELS}
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=BOUND)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == EXIT_OK
    assert f"following {len(READ_MODELS)} read model(s)" in err
    assert f"stopped at position {position:,}" in err


@pytest.mark.parametrize("command", ["status", "rebuild", "run"])
def test_a_store_newer_than_the_code_is_a_schema_failure_not_an_unavailable_store(
    command: str,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    settings = settings_from_environment()
    build_service(settings).close()
    record_a_newer_keys_schema(settings.key_store_file)

    assert main(["projections", command]) == EXIT_SCHEMA

    err = capsys.readouterr().err
    assert "schema version 7, newer than this release of Akte" in err
    assert "unavailable" not in err
