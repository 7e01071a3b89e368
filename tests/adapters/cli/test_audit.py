"""``akte audit verify`` (adapters/cli/audit.py): where the links are recomputed.

On PostgreSQL the server checks the links first; ``--in-python`` recomputes every link
in the command's own process, for an auditor who trusts none of the server's code. Both
give the same verdict over the same log.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.cli.main import main
from adapters.cli.support import EXIT_EMPTY
from adapters.settings import Settings
from service import AkteService
from tests.adapters.reports.test_audit_export import cli_env
from tests.adapters.store.test_hash_chain import RawDb, at, raw, write_log

__all__ = ["cli_env", "raw"]  # the fixtures, imported for these tests


def verify_json(capsys: pytest.CaptureFixture[str], *options: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()
    code = main(["audit", "verify", "--json", *options])
    return code, json.loads(capsys.readouterr().out)


def test_in_python_recomputes_every_link_here_with_the_same_verdict(
    service: AkteService,
    raw: RawDb,
    cli_env: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = write_log(service)

    default_code, by_default = verify_json(capsys)
    python_code, in_python = verify_json(capsys, "--in-python")

    assert default_code == python_code == 0
    assert by_default["checked_on_server"] is (cli_env.store == "postgres")
    assert in_python["checked_on_server"] is False
    for field in ("ok", "events", "chain_entries", "head"):
        assert in_python[field] == by_default[field]

    target = at(log, log[0].case_id, 2)
    state = bytearray(raw.state(target.notification_id))
    state[3] ^= 0x01
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), target.notification_id])

    broken_code, broken = verify_json(capsys, "--in-python")
    assert broken_code == 4
    assert broken["checked_on_server"] is False
    assert broken["first_break"]["notification_id"] == target.notification_id  # type: ignore[index]


def test_verify_of_a_data_directory_without_a_store_is_refused_not_created(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "no-such-data"))

    assert main(["audit", "verify"]) == EXIT_EMPTY

    err = capsys.readouterr().err
    assert "holds no events" in err
    assert "AKTE_DATA_DIR" in err
    assert not (environment / "no-such-data").exists()
