"""``akte deadlines tick --now``: the deadline tick on a chosen clock, refused in
production."""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.settings import Settings
from domain.case_file import CaseFile
from tests.conftest import FakeClock
from tests.support.projections import CaseDriver

REQUESTED_AT = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
"""The silence period runs to Wednesday 27 March 2024 in Berlin."""
ON_THE_LAST_DAY = "2024-03-27T23:30:00+01:00"
THE_DAY_AFTER = "2024-03-28T00:30:00+01:00"
"""Still the 27th in UTC: the office's date counts."""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A development store the command reads from the environment, as an operator's."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AKTE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    return Settings(store="sqlite", data_dir=tmp_path / "data")


@pytest.fixture
def requested(settings: Settings) -> UUID:
    service = build_service(settings, clock=FakeClock(REQUESTED_AT))
    try:
        case = CaseDriver.open(service)
        case("request_entry_consent")
    finally:
        service.close()
    return case.case_id


def _tick(capsys: pytest.CaptureFixture[str], *arguments: str) -> dict[str, Any]:
    assert main(["deadlines", "tick", *arguments]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _deemed(settings: Settings, case_id: UUID) -> list[CaseFile.EntryConsentDeemedGiven]:
    service = build_service(settings)
    try:
        return [
            event
            for event in service.case_events(case_id)
            if isinstance(event, CaseFile.EntryConsentDeemedGiven)
        ]
    finally:
        service.close()


def test_now_runs_the_tick_as_of_the_time_given(
    settings: Settings, requested: UUID, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _tick(capsys, "--now", ON_THE_LAST_DAY)["deemed_consents"] == 0
    assert _deemed(settings, requested) == []

    report = _tick(capsys, "--now", THE_DAY_AFTER)

    assert report["deemed"] == [[str(requested), 1]]
    (event,) = _deemed(settings, requested)
    assert event.period_ended_on == date(2024, 3, 27)
    # Recorded on the chosen clock, not today's.
    assert event.at.date() == date(2024, 3, 27)
    assert _tick(capsys, "--now", THE_DAY_AFTER)["deemed_consents"] == 0


def test_an_unknown_office_state_is_refused(
    settings: Settings,
    requested: UUID,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_OFFICE_STATE", "XX")

    assert main(["deadlines", "tick", "--now", THE_DAY_AFTER]) != 0

    assert "AKTE_OFFICE_STATE" in capsys.readouterr().err
    assert _deemed(settings, requested) == []


def test_now_is_refused_in_production(
    settings: Settings,
    requested: UUID,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_DEPLOYMENT", "production")

    assert main(["deadlines", "tick", "--now", THE_DAY_AFTER]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("akte: --now is refused with AKTE_DEPLOYMENT=production"), err
    assert len(err.splitlines()) == 1
    assert _deemed(settings, requested) == []


def test_now_must_be_an_iso_time_with_its_offset(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["deadlines", "tick", "--now", "2024-03-28T09:00:00"])

    assert exited.value.code == 2
    assert "--now: must" in capsys.readouterr().err
