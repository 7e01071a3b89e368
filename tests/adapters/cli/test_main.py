"""The ``akte`` command line: demo loading, case output, and one-line failures."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.cli.main import main
from adapters.cli.progress import DemoLoadProgress, ProgressDisplay


@pytest.fixture
def sqlite_store(environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = environment / "data"
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(data_dir))
    return data_dir


def _suggested_case_id(output: str) -> str:
    match = re.search(r"akte case show ([0-9a-f-]{36})", output)
    assert match, output
    return match.group(1)


def _assert_one_line_failure(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("akte: ")
    assert "Traceback" not in err
    return lines[0]


def test_demo_loads_an_office_and_prints_a_summary(
    sqlite_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--cases", "5"]) == 0

    out, err = capsys.readouterr()
    assert "Demo office abh-musterstadt: 5 case files" in out
    assert re.search(r"procedures\s+\d+", out)
    assert "loaded 5/5 cases" in err
    assert (sqlite_store / "akte.sqlite3").is_file()


def test_demo_leaves_a_store_with_events_alone(
    sqlite_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--cases", "2"]) == 0
    capsys.readouterr()

    assert main(["demo", "--cases", "2"]) == 0

    out, err = capsys.readouterr()
    assert out == ""
    assert "no demo office loaded" in _assert_one_line_failure(err)


def test_case_show_and_events_print_json(
    sqlite_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--cases", "3"]) == 0
    case_id = _suggested_case_id(capsys.readouterr().out)

    assert main(["case", "show", case_id]) == 0
    state = json.loads(capsys.readouterr().out)
    assert state["id"] == case_id
    assert state["reference"].startswith("DEMO-")
    assert state["master_data"]["nationality"]

    assert main(["case", "show", state["reference"], "--version", "1"]) == 0
    first_version = json.loads(capsys.readouterr().out)
    assert (first_version["id"], first_version["version"]) == (case_id, 1)

    assert main(["case", "events", case_id, "--limit", "2"]) == 0
    events: list[dict[str, Any]] = [
        json.loads(line) for line in capsys.readouterr().out.splitlines()
    ]
    assert [event["version"] for event in events] == [1, 2]
    assert events[0]["type"] == "Opened"
    assert {"by", "at", "recorded_at"} <= set(events[1])


def test_an_unknown_case_file_is_one_line_and_exit_code_1(
    sqlite_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["case", "show", str(uuid4())]) == 1
    assert "does not exist" in _assert_one_line_failure(capsys.readouterr().err)

    assert main(["case", "events", "NO-SUCH-FILE"]) == 1
    assert "file number" in _assert_one_line_failure(capsys.readouterr().err)


def test_an_unreachable_postgres_is_one_line_and_exit_code_3(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_STORE", "postgres")
    monkeypatch.setenv("AKTE_POSTGRES_HOST", "127.0.0.1")
    monkeypatch.setenv("AKTE_POSTGRES_PORT", "1")

    assert main(["demo", "--cases", "5"]) == 3

    out, err = capsys.readouterr()
    assert out == ""
    line = _assert_one_line_failure(err)
    assert line.startswith("akte: the event store (PostgreSQL at 127.0.0.1:1")


def test_an_unusable_data_dir_is_one_line_and_exit_code_3(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    in_the_way = environment / "not-a-directory"
    in_the_way.write_text("")
    monkeypatch.setenv("AKTE_DATA_DIR", str(in_the_way))

    assert main(["case", "show", str(uuid4())]) == 3

    assert "SQLite" in _assert_one_line_failure(capsys.readouterr().err)


def test_an_invalid_setting_is_named_without_its_value(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_POSTGRES_PORT", "secret-ish")

    assert main(["demo"]) == 2

    line = _assert_one_line_failure(capsys.readouterr().err)
    assert "AKTE_POSTGRES_PORT" in line
    assert "secret-ish" not in line


def test_serve_loads_the_demo_once_and_runs_the_api(
    sqlite_store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    served: list[dict[str, Any]] = []

    def run(app: FastAPI, **options: Any) -> None:
        with TestClient(app) as client:
            assert client.get("/docs").status_code == 200
        served.append(options)

    monkeypatch.setattr(uvicorn, "run", run)

    assert main(["serve", "--demo", "--cases", "2", "--port", "8123"]) == 0
    out, err = capsys.readouterr()
    assert "http://127.0.0.1:8123/docs" in out
    assert "2 case files" in out

    assert main(["serve", "--demo", "--host", "0.0.0.0", "--port", "8124"]) == 0
    out, err = capsys.readouterr()
    assert "no demo office loaded" in err
    assert "http://127.0.0.1:8124/docs" in out

    # Uvicorn's own logging stays off: it would log raw paths holding ids.
    quiet = {"log_config": None, "access_log": False}
    assert served == [
        {"host": "127.0.0.1", "port": 8123, **quiet},
        {"host": "0.0.0.0", "port": 8124, **quiet},
    ]


def test_progress_rewrites_one_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "200")  # wide enough for the line: no wrapping
    terminal = Terminal()
    progress = DemoLoadProgress(ProgressDisplay(terminal), lambda: 42)

    progress(1, 2)
    progress(2, 2)

    written = terminal.getvalue()
    first = written.index("loaded 1/2 cases, 42 events")
    # Drawn over itself: back to the start of the line and cleared before each drawing.
    assert "\r\x1b[2K" in written[:first]
    assert written.index("\r\x1b[2K", first) < written.index("loaded 2/2 cases")
    assert written.count("\n") == 1
    assert written.endswith("\n\x1b[?25h")  # the finished line ends, the cursor is back


def test_usage_errors_exit_with_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--cases", "0"])

    assert exit_info.value.code == 2
    assert "--cases" in capsys.readouterr().err
