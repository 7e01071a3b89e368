"""The scan import checks the next legacy files (manifest, hashes, page counts) in a
thread while it files the one before them, and files them in order with the same
outcomes as one after the other; what a check raises stops the import at its folder."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Final

import pytest

from adapters.documents import scan_import
from adapters.documents.scan_import import CHECKED_AHEAD, CheckedFolder, import_scans
from adapters.simulation.legacy_scans import write_legacy_batch
from service import AkteService
from tests.adapters.documents.test_scan_import_batches import imported

OFFICE: Final = "abh-musterstadt"
WAIT_SECONDS: Final = 60.0
"""How long a test waits for the check thread before it fails (a bound, not a timing)."""


@pytest.mark.parametrize("group_events", [1, 5000], ids=["one at a time", "grouped"])
def test_the_next_folders_are_checked_in_a_thread_while_one_is_filed(
    service: AkteService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, group_events: int
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 6, seed=31, payload_bytes_per_page=64)
    checking_threads: set[str] = set()
    checked: dict[int, threading.Event] = {n: threading.Event() for n in range(1, 7)}
    seen_ahead: list[bool] = []
    original_check, original_import = scan_import.check_folder, scan_import.import_folder

    def check(folder: Path, *, ordinal: int) -> CheckedFolder:
        checking_threads.add(threading.current_thread().name)
        try:
            return original_check(folder, ordinal=ordinal)
        finally:
            checked[ordinal].set()

    def file(*args: Any, **kwargs: Any) -> Any:
        ordinal = kwargs["ordinal"]
        later = [n for n in range(ordinal + 1, ordinal + 1 + CHECKED_AHEAD) if n in checked]
        # While this folder is filed, the next ones get checked: filing waits for them
        # here, which it could not if they were only checked after it.
        seen_ahead.append(all(checked[n].wait(WAIT_SECONDS) for n in later))
        return original_import(*args, **kwargs)

    monkeypatch.setattr(scan_import, "check_folder", check)
    monkeypatch.setattr(scan_import, "import_folder", file)
    report = import_scans(service, tmp_path / "batch", office_id=OFFICE, group_events=group_events)

    assert seen_ahead == [True] * 6
    assert checking_threads
    assert all(name.startswith("akte-scan-check") for name in checking_threads)
    assert report.imported == 6
    assert not report.failures
    assert imported(service, folders) == [folder.file_number for folder in folders]


def test_what_a_check_raises_stops_the_import_at_its_folder(
    service: AkteService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 6, seed=32, payload_bytes_per_page=64)
    original_check = scan_import.check_folder

    def check(folder: Path, *, ordinal: int) -> CheckedFolder:
        if ordinal == 4:
            raise OSError("the batch's disk went away")
        return original_check(folder, ordinal=ordinal)

    monkeypatch.setattr(scan_import, "check_folder", check)
    with pytest.raises(OSError, match="disk went away"):
        import_scans(service, tmp_path / "batch", office_id=OFFICE, group_events=5000)
    monkeypatch.undo()

    # The folders before it are filed; none after it.
    assert imported(service, folders) == [folder.file_number for folder in folders[:3]]
    report = import_scans(service, tmp_path / "batch", office_id=OFFICE)
    assert report.imported == 3
    assert report.already_imported == 3
