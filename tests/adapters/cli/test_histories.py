"""``akte histories keep``: the long case files' histories written once into the store,
so that no request writes them from all their events."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main as akte
from adapters.personal_data.kept_history_keys import kept_histories
from adapters.reports.case_history import build_history_json
from adapters.reports.kept_histories import writer_fingerprint
from adapters.settings import Settings
from adapters.store.kept_history_shelf import shelf_of
from tests.conftest import FakeClock
from tests.support.case_files import case_with_notes

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    return settings


def test_the_long_files_histories_are_kept_in_the_store_in_both_views(
    store: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.now = datetime(2025, 7, 1, 9, tzinfo=BERLIN)
    service = build_service(store, clock=clock)
    try:
        long_file, version = case_with_notes(service, store.default_office_id, 11)
        short_file, _ = case_with_notes(service, store.default_office_id, 2)
    finally:
        service.close()

    assert akte(["histories", "keep", "--min-entries", "10"]) == 0
    assert "1 of 1 case files with at least 10 events" in capsys.readouterr().out

    service = build_service(store, clock=clock)
    try:
        shelf = shelf_of(service)
        assert shelf is not None
        for view in ("personal", "withheld"):
            kept = shelf.load(long_file, view, writer_fingerprint())
            assert kept is not None
            assert kept[0] == version
            assert shelf.load(short_file, view, writer_fingerprint()) is None
        # A new API process takes the whole history from the store, and it is what the
        # events say.
        in_process = kept_histories(service.mapper)
        assert in_process is not None
        in_process.min_entries = 10
        taken = in_process.take(long_file, with_personal_data=True, shelf=shelf)
        assert taken is not None
        assert taken.version == version
        assert build_history_json(
            service, long_file, with_personal_data=True, limit=10_000, kept=in_process, shelf=shelf
        ) == build_history_json(service, long_file, with_personal_data=True, limit=10_000)
    finally:
        service.close()


def test_a_store_that_is_not_there_is_refused(
    store: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert akte(["histories", "keep"]) == 6
    assert "holds no events" in capsys.readouterr().err
    assert not store.sqlite_path.exists()  # not created by asking


def test_what_is_kept_of_an_erased_file_is_removed_and_not_counted(
    store: Settings, clock: FakeClock, capsys: pytest.CaptureFixture[str]
) -> None:
    clock.now = datetime(2025, 7, 1, 9, tzinfo=BERLIN)
    service = build_service(store, clock=clock)
    try:
        kept_file, _ = case_with_notes(service, store.default_office_id, 11)
        erased_file, version = case_with_notes(service, store.default_office_id, 11)
        service.data_protection.erase_personal_data(
            erased_file,
            expected_version=version,
            by="dsb-01",
            legal_ground="dsgvo-17",
            approved_by="dsb-01",
        )
        shelf = shelf_of(service)
        assert shelf is not None
        # As an API process whose key cache still held the key would put it back.
        shelf.save(erased_file, "personal", writer_fingerprint(), 12, b"sealed with it")
    finally:
        service.close()

    assert akte(["histories", "keep", "--min-entries", "10"]) == 0
    out = capsys.readouterr().out
    assert "1 of 2 case files with at least 10 events" in out
    assert "the others: erased, or not taken by the store" in out
    assert "removed what was kept of 1 erased case files" in out

    service = build_service(store, clock=clock)
    try:
        shelf = shelf_of(service)
        assert shelf is not None
        assert shelf.files() == [kept_file]
    finally:
        service.close()
