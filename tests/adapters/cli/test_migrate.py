"""``akte migrate`` and a start refused for a store newer than the code."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import uvicorn

from adapters.bootstrap import build_service, settings_from_environment
from adapters.cli.main import main
from adapters.cli.support import EXIT_OK, EXIT_SCHEMA
from adapters.store.migrations import VERSIONS_TABLE
from tests.support.store_versions import record_a_newer_keys_schema


@pytest.fixture
def data_dir(environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    build_service(settings_from_environment()).close()
    return environment / "data"


def _key_versions(data_dir: Path) -> list[int]:
    with sqlite3.connect(data_dir / "akte-keys.sqlite3") as conn:
        return [row[0] for row in conn.execute(f"SELECT version FROM {VERSIONS_TABLE} ORDER BY 1")]


def test_migrate_lists_then_applies_the_pending_steps(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(data_dir / "akte-keys.sqlite3") as conn:
        conn.execute(f"DROP TABLE {VERSIONS_TABLE}")
        conn.execute("DROP INDEX data_keys_master_key_id")

    assert main(["migrate", "--dry-run"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "keys (SQLite file" in out
    assert "would record version 1: recognised" in out
    assert "would record version 2: index of the data keys by master key" in out
    with sqlite3.connect(data_dir / "akte-keys.sqlite3") as conn:
        assert not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE name = ?", (VERSIONS_TABLE,)
        ).fetchall()

    assert main(["migrate"]) == EXIT_OK
    assert "recorded version 2: index of the data keys by master key" in capsys.readouterr().out
    assert _key_versions(data_dir) == [1, 2]

    assert main(["migrate"]) == EXIT_OK
    assert "nothing to do" in capsys.readouterr().out


def test_a_store_newer_than_the_code_refuses_serve_and_migrate(
    data_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    record_a_newer_keys_schema(data_dir / "akte-keys.sqlite3")
    served: list[object] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.append(args))

    assert main(["serve"]) == EXIT_SCHEMA
    err = capsys.readouterr().err
    assert "the keys store (SQLite file" in err
    assert "schema version 7, newer than this release of Akte" in err
    assert served == []

    assert main(["migrate", "--dry-run"]) == EXIT_SCHEMA
    assert "schema version 7" in capsys.readouterr().err
    assert _key_versions(data_dir) == [2, 7]
