"""``akte inbox show`` and ``akte inbox resolve`` (adapters/cli/inbox.py): a caseworker
reads a notice in triage (the read is logged) and records it on the right file, or
dismisses it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.settings import Settings
from domain.case_file import MasterData
from domain.read_access import ReadAccess
from tests.service.test_notices import notice

PERSON = MasterData("Haddad", "Omar", date(1985, 1, 2), "SYR", "N87654321", "Weg 2")


@pytest.fixture
def sqlite_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    return settings


def test_a_caseworker_reads_and_resolves_a_notice_from_the_command_line(
    sqlite_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    service = build_service(sqlite_settings)
    try:
        case_id = service.open_case(
            office_id="abh-musterstadt", master_data=PERSON, by="sb-01"
        ).case_id
        uncertain = service.notices.receive_notice(notice(person=PERSON, given_names="Omer"))
        unknown = service.notices.receive_notice(notice(person=replace(PERSON, surname="X")))
    finally:
        service.close()
    assert main(["inbox", "show", str(uncertain.subject_id), "--by", "sb-01"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["person"]["given_names"] == "Omer"
    assert shown["reasons"] == ["given-names-differ"]
    assert shown["candidate_case_ids"] == [str(case_id)]
    assert (
        main(
            ["inbox", "resolve", str(uncertain.subject_id), "--case", str(case_id), "--by", "sb-01"]
        )
        == 0
    )
    assert main(["inbox", "resolve", str(unknown.subject_id), "--dismiss", "--by", "sb-01"]) == 0
    # Twice is refused: the notice has left triage.
    assert main(["inbox", "resolve", str(unknown.subject_id), "--dismiss", "--by", "sb-01"]) == 1
    service = build_service(sqlite_settings)
    try:
        assert service.get_case(case_id).master_data.address == "Neue Straße 5, 12345 Musterstadt"
        assert service.notices.get_notice(unknown.subject_id).resolution == "dismissed"
        reads = service.recorder.select_notifications(
            start=1, limit=100, topics=[get_topic(ReadAccess.Recorded)]
        )
        assert len(reads) == 1
    finally:
        service.close()
