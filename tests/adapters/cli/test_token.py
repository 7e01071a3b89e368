"""Local tokens on the command line: ``akte token``, the key file, and refusing production."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path
from typing import Any

import jwt
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.cli.main import main
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Only what the test sets: no AKTE_* from the caller, no .env file in the directory."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AKTE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _token(capsys: pytest.CaptureFixture[str], *arguments: str) -> str:
    # --create-key: these tests start without a server that would have made the key.
    assert main(["token", *arguments, "--create-key"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1, "only the token goes to stdout, for $(akte token ...)"
    assert err.startswith("akte: token for ")
    return out.strip()


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _failure(capsys: pytest.CaptureFixture[str], *arguments: str) -> str:
    assert main(list(arguments)) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("akte: ")
    assert "Traceback" not in err
    return lines[0]


def test_a_demo_users_token_carries_its_roles_and_office(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    caseworker = _claims(_token(capsys, "sb-01"))
    team_lead = _claims(_token(capsys, "tl-01", "--minutes", "5"))
    elsewhere = _claims(_token(capsys, "sb-91"))

    assert (caseworker["sub"], caseworker["roles"], caseworker["office"]) == (
        "sb-01",
        ["caseworker"],
        "abh-musterstadt",
    )
    assert team_lead["roles"] == ["team_lead"]
    assert team_lead["exp"] - team_lead["iat"] == 5 * 60
    assert elsewhere["office"] == "abh-nachbarstadt"


def test_other_users_need_a_role(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert "--role" in _failure(capsys, "token", "sb-05")

    claims = _claims(
        _token(capsys, "sb-05", "--role", "caseworker", "--role", "auditor", "--office", "abh-x")
    )
    assert (claims["roles"], claims["office"]) == (["auditor", "caseworker"], "abh-x")
    assert "--office" in _failure(capsys, "token", "sb-05", "--role", "auditor", "--office", "X Y")


def test_the_served_api_accepts_a_printed_token(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    caseworker = _token(capsys, "sb-01")
    head_of_office = _token(capsys, "ho-01")
    settings = Settings()
    service = build_service(settings)
    try:
        with TestClient(build_app(settings, service)) as client:
            as_caseworker = client.get(
                "/cases/by-reference/AZ-1", headers={"Authorization": f"Bearer {caseworker}"}
            )
            as_head = client.get(
                "/cases/by-reference/AZ-1", headers={"Authorization": f"Bearer {head_of_office}"}
            )
    finally:
        service.close()

    assert as_caseworker.status_code == 404  # authenticated, allowed, and no such file
    assert as_head.status_code == 403


def test_the_key_is_created_once_readable_by_its_owner_only(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _token(capsys, "sb-01")
    key_file = data_dir / "local-issuer.pem"
    second = _token(capsys, "sb-02")

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert jwt.get_unverified_header(first)["kid"] == jwt.get_unverified_header(second)["kid"]


def test_a_key_readable_by_others_is_refused(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _token(capsys, "sb-01")
    (data_dir / "local-issuer.pem").chmod(0o644)

    assert "chmod 600" in _failure(capsys, "token", "sb-01")


def test_processes_creating_the_key_at_once_agree_on_one(tmp_path: Path) -> None:
    key_file = tmp_path / "issuer" / "local-issuer.pem"
    key_ids: list[str] = []

    def create() -> None:
        key_ids.append(LocalIssuer.load_or_create(key_file).key_id)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(key_ids)) == 1
    assert [path.name for path in key_file.parent.iterdir()] == ["local-issuer.pem"]


def test_no_local_tokens_outside_local_development(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_AUTH_MODE", "oidc")
    assert "identity provider" in _failure(capsys, "token", "sb-01")

    monkeypatch.setenv("AKTE_AUTH_MODE", "local")
    monkeypatch.setenv("AKTE_DEPLOYMENT", "production")
    assert "production" in _failure(capsys, "token", "sb-01")
    assert not (data_dir / "local-issuer.pem").exists()


def test_serve_refuses_to_start_in_production_with_local_tokens(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DEPLOYMENT", "production")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("it started"))

    line = _failure(capsys, "serve", "--demo", "--cases", "2")

    assert line.startswith("akte: refusing to start")
    assert "AKTE_AUTH_MODE=local" in line
    assert not (data_dir / "akte.sqlite3").exists()


def test_serve_refuses_to_start_with_incomplete_oidc_settings(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_AUTH_MODE", "oidc")
    monkeypatch.setenv("AKTE_OIDC_ISSUER", "https://id.example/realms/abh")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("it started"))

    line = _failure(capsys, "serve")

    assert "AKTE_OIDC_AUDIENCE" in line
    assert "AKTE_OIDC_JWKS_URL" in line


def test_serve_tells_how_to_get_a_token(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(app: FastAPI, **options: Any) -> None:
        pass

    monkeypatch.setattr(uvicorn, "run", run)

    assert main(["serve", "--demo", "--cases", "1"]) == 0

    out = capsys.readouterr().out
    assert "akte token USER" in out
    for user in ("sb-01", "sb-02", "tl-01", "au-01", "ho-01", "sb-91"):
        assert user in out
    assert "Authorization: Bearer $(akte token sb-01)" in out
