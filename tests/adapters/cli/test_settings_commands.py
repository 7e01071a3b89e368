"""The command line's guard rails: ``akte config check``, ``--version``, one meaning per
exit code, absolute paths in the server's log, no silent new signing key or empty
report, and ``akte erase`` confirmed."""

from __future__ import annotations

import ast
import builtins
import importlib.metadata
import importlib.util
import io
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from adapters.cli import support
from adapters.cli.main import main

ROOT = Path(__file__).resolve().parents[3]


def test_config_check_prints_the_settings_with_secrets_masked(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", "var")
    monkeypatch.setenv("AKTE_POSTGRES_PASSWORD", "hunter2-hunter2")

    assert main(["config", "check"]) == 0

    out, err = capsys.readouterr()
    assert f"AKTE_DATA_DIR={environment / 'var'}" in out.splitlines()
    assert "AKTE_POSTGRES_PASSWORD=********" in out.splitlines()
    assert "AKTE_MASTER_KEYS=(unset)" in out.splitlines()
    assert "hunter2" not in out + err
    assert "the settings are usable" in err


def test_config_check_lists_every_problem_and_exits_2(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DEPLOYMENT", "production")
    monkeypatch.setenv("AKTE_AUTH_MOD", "oidc")
    monkeypatch.setenv("AKTE_PAYMENT_SHARED_SECRET", "too-short")
    monkeypatch.setenv("AKTE_APPOINTMENT_SECRET", "too-short")

    assert main(["config", "check"]) == support.EXIT_USAGE

    err = capsys.readouterr().err
    assert "did you mean AKTE_AUTH_MODE?" in err
    assert "AKTE_AUTH_MODE=local" in err  # production refuses local tokens
    assert "AKTE_PAYMENT_SHARED_SECRET" in err
    assert "AKTE_APPOINTMENT_SECRET" in err
    assert "AKTE_MASTER_KEYS" in err
    # online booking is on (a secret is set): its mails' links need the public address
    assert "AKTE_PUBLIC_BASE_URL" in err
    assert "6 problem(s) with the settings" in err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])

    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"akte {importlib.metadata.version('akte')}"


def test_each_exit_code_has_one_meaning_in_every_command() -> None:
    """Every ``EXIT_<NAME>`` constant of the command-line modules agrees with the table:
    a name means one code, a code one meaning (2 is not also "store unavailable")."""
    meaning_of_name = {
        "EXIT_OK": support.EXIT_OK,
        "EXIT_FAILED": support.EXIT_FAILED,
        "EXIT_NOT_FOUND": support.EXIT_FAILED,
        "EXIT_FAILURES": support.EXIT_FAILED,
        "EXIT_PARTIAL": support.EXIT_FAILED,
        "EXIT_REFUSED": support.EXIT_FAILED,
        "EXIT_USAGE": support.EXIT_USAGE,
        "EXIT_UNAVAILABLE": support.EXIT_UNAVAILABLE,
        "EXIT_BROKEN": support.EXIT_BROKEN,
        "EXIT_BUSY": support.EXIT_BUSY,
        "EXIT_EMPTY": support.EXIT_EMPTY,
        "EXIT_SCHEMA": support.EXIT_SCHEMA,
        "EXIT_OUTCOME_UNKNOWN": support.EXIT_OUTCOME_UNKNOWN,
        "EXIT_INTERRUPTED": support.EXIT_INTERRUPTED,
    }
    found = 0
    for path in sorted((ROOT / "adapters" / "cli").glob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if not isinstance(node, ast.AnnAssign | ast.Assign):
                continue
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id.startswith("EXIT_"):
                    if not isinstance(node.value, ast.Constant):
                        continue  # taken from support by name
                    assert target.id in meaning_of_name, f"{path.name}: {target.id}"
                    assert node.value.value == meaning_of_name[target.id], (
                        f"{path.name}: {target.id} = {node.value.value!r}"
                    )
                    found += 1
    assert found > 10


def test_the_exit_code_table_is_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location(
        "docs_reference_hook", ROOT / "docs" / "hooks" / "reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, hook)  # its dataclasses look themselves up
    spec.loader.exec_module(hook)
    page: str = hook.cli_page()  # docs/reference/cli.md, generated at every docs build
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", page, flags=re.MULTILINE)}
    assert documented == set(support.EXIT_CODES)


def test_serve_logs_the_absolute_paths_it_uses(
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", "var")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.setattr(
        "adapters.cli.main.configure_logging", lambda **kwargs: None
    )  # keep pytest's capture

    with caplog.at_level(logging.INFO, logger="akte.cli"):
        assert main(["serve"]) == 0

    (line,) = [record.getMessage() for record in caplog.records if record.name == "akte.cli"]
    assert f"data_dir={environment / 'var'}" in line
    assert f"sqlite={environment / 'var' / 'akte.sqlite3'}" in line


def test_serve_lists_every_problem_with_the_settings_before_starting(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DEPLOYMENT", "production")
    monkeypatch.setenv("AKTE_AUTH_MODE", "oidc")
    monkeypatch.setenv("AKTE_OIDC_ISSUER", "https://id.example/realms/abh")
    monkeypatch.setenv("AKTE_OIDC_AUDIENCE", "akte")
    monkeypatch.setenv("AKTE_OIDC_JWKS_URL", "https://id.example/realms/abh/certs")
    monkeypatch.setenv("AKTE_MASTER_KEYS", "k1:" + "A" * 43 + "=")
    monkeypatch.setenv("AKTE_PAYMENT_SHARED_SECRET", "too-short")
    monkeypatch.setenv("AKTE_APPOINTMENT_SECRET", "too-short")
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: pytest.fail("it started"))

    assert main(["serve"]) == support.EXIT_USAGE

    err = capsys.readouterr().err
    assert "refusing to start" in err
    assert "payments: AKTE_PAYMENT_SHARED_SECRET must have at least" in err
    assert "appointments: AKTE_APPOINTMENT_SECRET must have at least" in err


def test_token_refuses_to_make_a_new_signing_key_unless_asked(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", "var")

    assert main(["token", "sb-01"]) == support.EXIT_EMPTY

    out, err = capsys.readouterr()
    assert out == ""
    assert f"no signing key at {environment / 'var' / 'local-issuer.pem'}" in err
    assert "--create-key" in err
    assert not (environment / "var" / "local-issuer.pem").exists()

    assert main(["token", "sb-01", "--create-key"]) == 0
    assert main(["token", "sb-01"]) == 0  # the key now exists


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


_ERASE = ["erase", "approve", "DEMO-2025-00001", "1", "--token-file", "no-such.token"]


def test_erase_without_a_terminal_needs_yes(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))  # a pipe, not a person

    assert main(_ERASE) == support.EXIT_USAGE

    assert "--yes" in capsys.readouterr().err
    assert not (environment / "data").exists()  # refused before any store was opened


def test_erase_on_a_terminal_asks_and_stops_unless_the_answer_is_yes(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", str(environment / "data"))
    monkeypatch.setattr("sys.stdin", _Terminal())
    questions: list[str] = []

    def answer(given: str) -> Any:
        def ask(prompt: str) -> str:
            questions.append(prompt)
            return given

        return ask

    monkeypatch.setattr(builtins, "input", answer("no"))
    assert main(_ERASE) == support.EXIT_USAGE
    assert "nothing erased" in capsys.readouterr().err
    assert "DEMO-2025-00001" in questions[0]
    assert not (environment / "data").exists()

    monkeypatch.setattr(builtins, "input", answer("yes"))
    # Confirmed: it goes on to who approves, which only an access token says.
    assert main(_ERASE) == support.EXIT_USAGE
    assert "--token-file" in capsys.readouterr().err
    assert not (environment / "data").exists()


def test_report_where_there_is_no_store_says_so_and_creates_none(
    environment: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", "var")

    assert main(["report", "2024"]) == support.EXIT_EMPTY

    out, err = capsys.readouterr()
    assert out == ""
    assert f"SQLite file {environment / 'var' / 'akte.sqlite3'}" in err
    assert not (environment / "var").exists()


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_config_check_refuses_a_single_port_out_of_range(
    port: str,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_POSTGRES_PORT", port)

    assert main(["config", "check"]) == support.EXIT_USAGE

    err = capsys.readouterr().err
    assert "AKTE_POSTGRES_PORT" in err
    assert "the settings are usable" not in err
