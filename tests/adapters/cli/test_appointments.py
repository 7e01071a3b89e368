"""``akte appointments tick --now``: the time-driven steps on a chosen clock, refused in
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
from tests.conftest import FakeClock
from tests.support.appointments import OFFICE, POINT, STUDENT, local, person, proof, set_up

BOOKED_AT = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
"""Held 48 hours, with a reminder after 24: the reminder is due on 5 March at 10:00
(Berlin), the lapse on 6 March at 10:00."""
BEFORE_THE_REMINDER = "2024-03-05T09:00:00+01:00"
AFTER_THE_REMINDER = "2024-03-05T11:00:00+01:00"
AFTER_THE_LAPSE = "2024-03-06T11:00:00+01:00"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A development store the command reads from the environment, as an operator's."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("AKTE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    # A mail server nobody listens on: the mails fail at once and the steps go on.
    monkeypatch.setenv("AKTE_SMTP_PORT", "9")
    return Settings(store="sqlite", data_dir=tmp_path / "data")


@pytest.fixture
def held(settings: Settings) -> UUID:
    """A booking held since 4 March, never confirmed."""
    service = build_service(settings, clock=FakeClock(BOOKED_AT))
    try:
        set_up(service)
        recorded = service.appointments.book_appointment(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            starts_at=local(date(2024, 3, 11), 9),
            situation=STUDENT,
            person=person(),
            proof=proof(service),
            by="public",
        )
    finally:
        service.close()
    return recorded.appointment_id


def _tick(capsys: pytest.CaptureFixture[str], *arguments: str) -> dict[str, Any]:
    assert main(["appointments", "tick", *arguments]) == 0
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    return report


def _appointment(settings: Settings, appointment_id: UUID) -> tuple[str, datetime]:
    service = build_service(settings)
    try:
        events = service.appointments.appointment_events(appointment_id)
        status = service.appointments.get_appointment(appointment_id).status
    finally:
        service.close()
    return status, events[-1].timestamp


def test_now_runs_the_steps_as_of_the_time_given(
    settings: Settings, held: UUID, capsys: pytest.CaptureFixture[str]
) -> None:
    early = _tick(capsys, "--now", BEFORE_THE_REMINDER)
    reminded = _tick(capsys, "--now", AFTER_THE_REMINDER)
    still_held = _appointment(settings, held)
    lapsed = _tick(capsys, "--now", AFTER_THE_LAPSE)

    assert (early["reminders"], early["lapses"]) == (0, 0)
    assert (reminded["reminders"], reminded["lapses"]) == (1, 0)
    assert still_held[0] == "held"
    assert lapsed["lapses"] == 1
    status, recorded_at = _appointment(settings, held)
    assert status == "lapsed"
    # Recorded on the chosen clock, not today's.
    assert recorded_at.date() == date(2024, 3, 6)


def test_now_is_refused_in_production(
    settings: Settings,
    held: UUID,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AKTE_DEPLOYMENT", "production")

    assert main(["appointments", "tick", "--now", AFTER_THE_LAPSE]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("akte: --now is refused with AKTE_DEPLOYMENT=production"), err
    assert len(err.splitlines()) == 1
    assert _appointment(settings, held)[0] == "held"


@pytest.mark.parametrize("moment", ["2024-03-06T11:00:00", "6 March", "2024-13-01T00:00Z"])
def test_now_must_be_an_iso_time_with_its_offset(
    settings: Settings, moment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["appointments", "tick", "--now", moment])

    assert exited.value.code == 2
    assert "--now: must" in capsys.readouterr().err
