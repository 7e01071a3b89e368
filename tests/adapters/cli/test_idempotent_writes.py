"""The commands that record something run under an idempotency key (adapters/cli/support.py,
``keyed_write``): run again with the same ``--idempotency-key`` they record once; an
outcome the store could not tell ends with exit code 8 and the key to run again with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from uuid import UUID

import pytest

import adapters.cli.main as cli
import adapters.cli.projections as cli_stores
from adapters.bootstrap import build_service
from adapters.cli.support import EXIT_CODES, EXIT_OUTCOME_UNKNOWN, EXIT_USAGE
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from domain.case_file import MasterData
from domain.erasure import ErasureRequest
from service import AkteService
from tests.support.lost_acknowledgements import LostAcknowledgement


@dataclass
class Office:
    settings: Settings
    case_id: UUID
    token: Path


@pytest.fixture
def office(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Office:
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_JSON_LOGS", "false")
    settings = Settings()
    service = build_service(settings)
    try:
        case_id = service.open_case(
            office_id=settings.default_office_id,
            master_data=MasterData(
                surname="Beispiel",
                given_names="Amal",
                date_of_birth=date(1990, 1, 2),
                nationality="SYR",
                passport_number="N12345678",
            ),
            by="sb-01",
        ).case_id
    finally:
        service.close()
    token = tmp_path / "dsb-01.token"
    token.write_text(
        LocalIssuer.load_or_create(settings.local_issuer_key_file).issue(
            user_id="dsb-01",
            roles=[Role.DATA_PROTECTION_OFFICER],
            office_id=settings.default_office_id,
        )
    )
    return Office(settings, case_id, token)


def erasure_requests(office: Office) -> list[ErasureRequest]:
    service = build_service(office.settings)
    try:
        return list(service.erasure_requests.requests_of(office.case_id))
    finally:
        service.close()


def request(office: Office, *extra: str) -> list[str]:
    return [
        "erase",
        "request",
        str(office.case_id),
        "--legal-ground",
        "dsgvo-17",
        "--token-file",
        str(office.token),
        *extra,
    ]


def test_run_again_with_its_key_a_write_is_recorded_once(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(request(office, "--idempotency-key", "erase-7c1f")) == 0
    first = capsys.readouterr().out

    assert cli.main(request(office, "--idempotency-key", "erase-7c1f")) == 0

    # The run again hears what the first run heard: the same request, recorded once.
    assert capsys.readouterr().out == first
    assert "erasure request 1 " in first
    assert len(erasure_requests(office)) == 1


def test_the_same_key_for_another_command_is_refused(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(request(office, "--idempotency-key", "k-1")) == 0
    capsys.readouterr()

    other = request(office, "--idempotency-key", "k-1", "--rule", "another")

    assert cli.main(other) == EXIT_USAGE
    assert "used for another command" in capsys.readouterr().err
    assert len(erasure_requests(office)) == 1


def test_an_unknown_outcome_says_so_and_names_the_key_to_run_again_with(
    office: Office, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    faults: list[LostAcknowledgement] = []

    def with_a_lost_acknowledgement(settings: Settings) -> AkteService:
        service = build_service(settings)
        if not faults:  # the first run only
            fault = LostAcknowledgement(service)
            fault.arm(then_reads_fail=True)
            faults.append(fault)
        return service

    monkeypatch.setattr(cli_stores, "build_service", with_a_lost_acknowledgement)
    assert cli.main(request(office)) == EXIT_OUTCOME_UNKNOWN
    message = capsys.readouterr().err
    found = re.search(r"--idempotency-key (\S+)", message)
    assert found is not None, message
    assert faults[0].committed == 1

    assert cli.main(request(office, "--idempotency-key", found.group(1))) == 0

    # The request the first run recorded, told now: not a second one.
    assert "erasure request 1 " in capsys.readouterr().out
    assert len(erasure_requests(office)) == 1
    assert "--idempotency-key" in EXIT_CODES[EXIT_OUTCOME_UNKNOWN]


def test_leaving_out_the_default_office_or_giving_it_is_the_same_command(
    office: Office, capsys: pytest.CaptureFixture[str]
) -> None:
    """The key's request is the values the command acts on: ``--office`` left out is the
    default office, so a rerun that names it explicitly is the same write, not another."""
    assert cli.main(request(office, "--idempotency-key", "k-office")) == 0
    capsys.readouterr()

    explicit = ["--office", office.settings.default_office_id]
    assert cli.main(request(office, "--idempotency-key", "k-office", *explicit)) == 0

    assert "used for another command" not in capsys.readouterr().err
    assert len(erasure_requests(office)) == 1
