"""The offline export, ``akte audit`` and ``GET /audit/verify`` on SQLite and PostgreSQL.

The exported file is run in a fresh interpreter in isolated mode (``python -I``: no
site-packages, no environment, no current directory on the path) from an empty directory,
to prove that it needs nothing but itself.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app
from adapters.cli.main import main
from adapters.http.auth.identity import Role
from adapters.reports.audit_export import export_case
from adapters.settings import Settings
from adapters.store.hash_chain import ChainSource
from service import AkteService
from tests.adapters.store.test_hash_chain import RawDb, at, raw, write_log
from tests.conftest import bearer
from tests.service.test_case_files import open_case

__all__ = ["raw"]  # the fixture, imported for these tests


def run_export(script: Path) -> subprocess.CompletedProcess[str]:
    empty = script.parent / "elsewhere"
    empty.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-I", str(script), "--show"],
        cwd=empty,
        env={},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def exported(service: AkteService, case_id: UUID, tmp_path: Path) -> Path:
    source: ChainSource = service.recorder  # type: ignore[assignment]
    export = export_case(source, case_id, name="akte-case.py")
    path = tmp_path / "akte-case.py"
    path.write_text(export.script, encoding="utf-8")
    return path


def test_an_export_verifies_offline(service: AkteService, tmp_path: Path) -> None:
    log = write_log(service)
    case_id = log[0].case_id

    result = run_export(exported(service, case_id, tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: case {case_id.hex}, 5 events, versions 1..5" in result.stdout.splitlines()
    # --show prints the events as stored: kinds and facts readable, personal data (the
    # note's text) sealed with the person's key, which the export does not carry.
    assert "CaseFile.NoteAdded" in result.stdout
    assert "Vermerk 3" not in result.stdout
    assert '"_personal_"' in result.stdout


def test_a_tampered_export_fails_and_names_the_version(
    service: AkteService, tmp_path: Path
) -> None:
    log = write_log(service)
    case_id = log[0].case_id
    script = exported(service, case_id, tmp_path)
    text = script.read_text(encoding="utf-8")
    [original] = [e["state"] for e in _embedded(text)["events"] if e["version"] == 3]
    state = bytearray(base64.b64decode(original))
    state[len(state) // 2] ^= 0x20
    script.write_text(
        text.replace(original, base64.b64encode(bytes(state)).decode("ascii")), encoding="utf-8"
    )

    result = run_export(script)

    assert result.returncode == 1
    assert "BROKEN" in result.stdout
    broken = [line for line in result.stdout.splitlines() if "stream link broken" in line]
    assert broken
    assert broken[0].strip().startswith("version 3 (notification")


def test_an_export_missing_an_event_fails(service: AkteService, tmp_path: Path) -> None:
    log = write_log(service)
    case_id = log[0].case_id
    script = exported(service, case_id, tmp_path)
    text = script.read_text(encoding="utf-8")
    data = _embedded(text)
    data["events"] = [e for e in data["events"] if e["version"] != 2]
    script.write_text(text.replace(_embedded_text(text), json.dumps(data)), encoding="utf-8")

    result = run_export(script)

    assert result.returncode == 1
    assert "version 2 missing" in result.stdout


def _embedded_text(script: str) -> str:
    return script.split("r'''\n", 1)[1].split("\n'''", 1)[0]


def _embedded(script: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_embedded_text(script))
    return data


# ----------------------------------------------------------------------- akte audit


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("AKTE_STORE", settings.store)
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    if settings.store == "postgres":
        monkeypatch.setenv("AKTE_POSTGRES_HOST", settings.postgres_host)
        monkeypatch.setenv("AKTE_POSTGRES_PORT", str(settings.postgres_port))
        monkeypatch.setenv("AKTE_POSTGRES_USER", settings.postgres_user)
        monkeypatch.setenv("AKTE_POSTGRES_DBNAME", settings.postgres_dbname)
        monkeypatch.setenv("AKTE_POSTGRES_SCHEMA", settings.postgres_schema)
    return settings


def test_akte_audit_verify_and_export(
    service: AkteService,
    raw: RawDb,
    cli_env: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = write_log(service)
    case_id = log[0].case_id

    assert main(["audit", "verify"]) == 0
    printed = capsys.readouterr()
    assert f"OK: {service.recorder.max_notification_id()} events" in printed.out
    assert "events/s" in printed.out
    head = next(line for line in printed.out.splitlines() if line.startswith("head "))[5:]

    out = tmp_path / "export.py"
    assert main(["audit", "export", str(case_id), "--out", str(out)]) == 0
    assert run_export(out).returncode == 0

    target = at(log, case_id, 2)
    state = bytearray(raw.state(target.notification_id))
    state[3] ^= 0x01
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), target.notification_id])

    assert main(["audit", "verify", "--anchor", head, "--json"]) == 4
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["first_break"] == {
        "kind": "content_changed",
        "notification_id": target.notification_id,
        "stream": case_id.hex,
        "version": 2,
        "chain": "log+stream",
        "detail": report["first_break"]["detail"],
    }


def test_akte_audit_export_of_an_unknown_case(
    service: AkteService, cli_env: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    open_case(service)

    assert main(["audit", "export", "00000000-0000-4000-8000-000000000000"]) == 1
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ GET /audit/verify


def test_get_audit_verify_names_the_first_broken_link(
    service: AkteService, settings: Settings, raw: RawDb
) -> None:
    log = write_log(service)
    case_id = log[0].case_id
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    with TestClient(build_app(settings, service)) as client:
        clean = client.get("/audit/verify", headers=auditor)
        assert clean.status_code == 200, clean.text
        assert clean.json()["ok"] is True
        head = clean.json()["head"]

        target = at(log, case_id, 3)
        raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])
        broken = client.get(
            "/audit/verify", params={"anchor": head, "max_breaks": 5}, headers=auditor
        )
        malformed = client.get("/audit/verify", params={"anchor": "12:xyz"}, headers=auditor)

    assert broken.status_code == 200
    report = broken.json()
    assert report["ok"] is False
    assert report["anchors"] == [head]
    first = report["first_break"]
    assert (first["kind"], first["notification_id"], first["stream"], first["version"]) == (
        "event_missing",
        target.notification_id,
        case_id.hex,
        3,
    )
    assert malformed.status_code == 422
