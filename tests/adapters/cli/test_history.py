"""``akte history CASE --on DATE``: the events a case file consisted of on a business date."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main as akte
from adapters.settings import Settings
from domain.case_file import MasterData
from tests.conftest import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")


def test_the_history_on_a_business_date_holds_the_back_dated_event(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    clock.now = datetime(2025, 7, 1, 9, tzinfo=BERLIN)
    service = build_service(settings, clock=clock)
    try:
        opened = service.open_case(
            office_id=settings.default_office_id,
            master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
            by="sb-01",
        )
        clock.now = datetime(2025, 7, 4, 9, tzinfo=BERLIN)
        received = service.receive_procedure(  # today, entered first
            opened.case_id,
            expected_version=1,
            by="sb-01",
            channel="mail",
            topic="extend_residence_permit",
        )
        service.add_note(  # on 2 July, entered afterwards
            opened.case_id,
            expected_version=received.version,
            by="sb-01",
            text="Rückruf",
            at=datetime(2025, 7, 2, 16, tzinfo=BERLIN),
        )
    finally:
        service.close()
    out = tmp_path / "history.json"

    code = akte(
        [
            "history",
            str(opened.case_id),
            "--on",
            "2025-07-02",
            "--format",
            "json",
            "--out",
            str(out),
        ]
    )

    assert code == 0
    entries = json.loads(out.read_text(encoding="utf-8"))["entries"]
    assert [(e["version"], e["kind"]) for e in entries] == [(1, "Opened"), (3, "NoteAdded")]
    both = [
        "history",
        str(opened.case_id),
        "--on",
        "2025-07-02",
        "--until",
        "2025-07-02T00:00+02:00",
    ]
    assert akte(both) == 2
