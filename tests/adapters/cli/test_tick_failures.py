"""``akte deadlines tick`` and ``akte appointments tick`` when the store cannot be
opened: one line and the exit code, never a traceback, and the failed run noted for
monitoring where the views store can be reached."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.bootstrap import build_service, open_views_store, settings_from_environment
from adapters.cli.main import main
from adapters.cli.support import EXIT_SCHEMA, EXIT_UNAVAILABLE
from adapters.monitoring import runs
from tests.support.store_versions import record_a_newer_keys_schema

TICKS = [
    pytest.param(["deadlines", "tick"], runs.DEADLINES_TICK, id="deadlines"),
    pytest.param(["appointments", "tick"], runs.APPOINTMENTS_TICK, id="appointments"),
]


@pytest.mark.parametrize(("command", "task"), TICKS)
def test_an_unreachable_postgresql_ends_the_tick_with_one_line(
    command: list[str],
    task: str,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_STORE", "postgres")
    monkeypatch.setenv("AKTE_POSTGRES_HOST", "127.0.0.1")
    monkeypatch.setenv("AKTE_POSTGRES_PORT", "1")  # nobody listens there

    assert main(command) == EXIT_UNAVAILABLE

    err = capsys.readouterr().err
    assert "akte: the event store is unavailable: connection failed" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("command", "task"), TICKS)
def test_a_store_newer_than_the_code_ends_the_tick_and_is_noted_as_failed(
    command: list[str],
    task: str,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    monkeypatch.setenv("AKTE_SMTP_PORT", "9")
    settings = settings_from_environment()
    build_service(settings).close()
    record_a_newer_keys_schema(settings.key_store_file)

    assert main(command) == EXIT_SCHEMA

    err = capsys.readouterr().err
    assert "schema version 7, newer than this release of Akte" in err
    assert "Traceback" not in err
    views = open_views_store(settings)
    try:
        noted = runs.task_runs(views)[task]
    finally:
        views.close()
    assert (noted.last_result, noted.runs_failed, noted.runs_ok) == ("failed", 1, 0)
