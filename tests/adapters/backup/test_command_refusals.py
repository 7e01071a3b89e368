"""``akte backup``, ``akte restore`` and their drill refuse what they cannot do with one
line and the exit code, never a traceback: a manifest that is not JSON, a drill without
its backup, ``--scratch-dir`` without a drill, a data directory that holds no store."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.backup.manifest import MANIFEST_NAME
from adapters.cli.main import main
from adapters.cli.support import EXIT_BROKEN, EXIT_EMPTY, EXIT_USAGE


@pytest.fixture
def data_dir(environment: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The SQLite store's directory the commands read from the environment (not made)."""
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    return environment / "data"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"{not json", id="invalid-json"),
        pytest.param(b'{"format": 1, "store": "\xff\xfe"}', id="not-utf-8"),
    ],
)
@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["restore"], id="restore"),
        pytest.param(["backup", "drill"], id="drill"),
        pytest.param(["restore", "--drill"], id="restore-drill"),
    ],
)
def test_an_unreadable_manifest_is_a_corrupted_backup(
    command: list[str],
    content: bytes,
    data_dir: Path,
    environment: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = environment / "backup"
    source.mkdir()
    (source / MANIFEST_NAME).write_bytes(content)

    assert main([*command, str(source)]) == EXIT_BROKEN

    err = capsys.readouterr().err
    assert f"{MANIFEST_NAME} is not" in err
    assert "the backup is corrupted" in err
    assert "Traceback" not in err
    assert not (data_dir / "akte.sqlite3").exists()


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(["drill"], id="no-source"),
        pytest.param(["drill", "one", "two"], id="two-sources"),
    ],
)
def test_a_drill_needs_exactly_one_backup(
    arguments: list[str],
    data_dir: Path,
    environment: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["backup", *arguments]) == EXIT_USAGE

    assert "akte backup drill SRC" in capsys.readouterr().err
    # No backup was taken into a directory named after the sub-command.
    assert not (environment / "drill").exists()
    assert not data_dir.exists()


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["backup", "dest"], id="backup"),
        pytest.param(["restore", "dest"], id="restore"),
    ],
)
def test_scratch_dir_without_a_drill_is_refused(
    command: list[str],
    data_dir: Path,
    environment: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([*command, "--scratch-dir", str(environment / "scratch")]) == EXIT_USAGE

    assert "--scratch-dir belongs to a drill" in capsys.readouterr().err
    assert not (environment / "dest").exists()
    assert not data_dir.exists()


def test_a_backup_of_a_data_directory_without_a_store_is_refused_not_created(
    data_dir: Path, environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backup", str(environment / "backup")]) == EXIT_EMPTY

    err = capsys.readouterr().err
    assert "holds no events" in err
    assert "AKTE_DATA_DIR" in err
    assert not data_dir.exists()
    assert not (environment / "backup").exists()
