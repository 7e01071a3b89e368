"""Importing scanned legacy files: failures reported without personal data, resuming after
an interruption (in the middle of a folder, or a process killed) without duplicates, and
2,000 legacy files imported with an interruption ending exactly as without one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import astuple
from datetime import timedelta
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.documents.encryption import EncryptedDocumentStore
from adapters.documents.scan_import import MANIFEST_NAME, FolderOutcome, ImportReport, import_scans
from adapters.documents.store import DocumentStore
from adapters.documents.sweep import sweep_orphans
from adapters.settings import Settings
from adapters.simulation.legacy_scans import (
    LegacyFolder,
    file_number_for,
    make_jpeg,
    make_pdf,
    person_for,
    write_legacy_batch,
)
from domain.case_file import CaseFile, MasterData
from service import AkteService
from tests.conftest import FakeClock

OFFICE: Final = "abh-musterstadt"
ROOT: Final = Path(__file__).resolve().parents[3]


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C raises, from where the test chooses."""


def run_import(service: AkteService, batch: Path, **kwargs: Any) -> ImportReport:
    return import_scans(service, batch, office_id=OFFICE, **kwargs)


def filed_state(service: AkteService, folders: Iterable[LegacyFolder]) -> dict[str, Any]:
    """Each legacy file's case file as the import left it, without ids and times."""
    state = {}
    for folder in folders:
        case = service.get_case(service.find_case_by_reference(OFFICE, folder.file_number))
        state[folder.file_number] = (
            case.version,
            astuple(case.master_data),
            [
                (d.number, d.kind, d.sha256, d.size_bytes, d.media_type, d.page_count, d.source)
                for d in case.documents
            ],
        )
    return state


def concrete_documents(service: AkteService) -> DocumentStore:
    """The backend under the service's (encrypting) document store."""
    documents = service.intake.documents
    assert isinstance(documents, EncryptedDocumentStore)
    return documents.backend


def stored_hashes(store: DocumentStore) -> set[str]:
    return {entry.sha256 for entry in store.entries()}


def interrupt_on_write(store: DocumentStore, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """Make the ``nth`` stored file raise Ctrl-C after it is stored: mid-folder, before
    its folder's events are saved."""
    original = store.put_at
    calls = 0

    def put_then_interrupt(address: str, chunks: Iterable[bytes]) -> int:
        nonlocal calls
        stored = original(address, chunks)
        calls += 1
        if calls == nth:
            raise Interrupted
        return stored

    monkeypatch.setattr(store, "put_at", put_then_interrupt)


def mid_folder_write(folders: list[LegacyFolder], after: int) -> tuple[int, int]:
    """The write of the second file of the first folder with two or more files from
    position ``after`` on, and that folder's position."""
    written = sum(folder.documents for folder in folders[:after])
    for position in range(after, len(folders)):
        if folders[position].documents >= 2:
            return written + 2, position
        written += folders[position].documents
    raise AssertionError("no folder with two documents")


# ------------------------------------------------------------------ failures


def write_manifest(folder: Path, manifest: Any) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest, ensure_ascii=False)
    (folder / MANIFEST_NAME).write_text(text)


def legacy_file(
    folder: Path,
    number: int,
    files: dict[str, bytes] | None = None,
    documents: list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> None:
    chosen = files if files is not None else {"Pass_Yılmaz.pdf": make_pdf(2, marker=str(number))}
    folder.mkdir(parents=True)
    for name, data in chosen.items():
        (folder / name).write_bytes(data)
    listed = documents if documents is not None else [{"file": name, "pages": 2} for name in chosen]
    write_manifest(
        folder,
        {"file_number": file_number_for(number), "person": person_for(number), "documents": listed}
        | overrides,
    )


def test_failures_are_reported_by_file_number_and_name_no_person(
    service: AkteService, tmp_path: Path
) -> None:
    batch = tmp_path / "batch"
    legacy_file(batch / "01 Yılmaz, Ayşe", 1)
    write_manifest(batch / "02 Kowalski", "{not json")
    (batch / "03 Nguyen").mkdir()
    write_manifest(batch / "04", {"file_number": "lower case", "person": {}, "documents": []})
    legacy_file(batch / "05", 5, person={"surname": "Petrov"})
    legacy_file(batch / "06", 6, documents=[{"file": "../../etc/passwd", "pages": 1}])
    legacy_file(batch / "07", 7, documents=[{"file": "fehlt.pdf", "pages": 1}])
    legacy_file(batch / "08", 8, files={"Foto.pdf": make_jpeg("a photo")})
    legacy_file(batch / "09", 9, files={"kaputt.pdf": make_pdf(2)[:-300]})
    legacy_file(batch / "10", 10, files={"a.pdf": make_pdf(3, marker="10")})
    legacy_file(batch / "11", 11, person=person_for(11) | {"nationality": "türkisch"})
    legacy_file(batch / "12", 12)
    before = stored_hashes(concrete_documents(service))

    report = run_import(service, batch)

    assert (report.folders, report.imported, len(report.failures)) == (12, 2, 10)
    failures = {(f.label, f.reason) for f in report.failures}
    assert failures == {
        ("folder #2", "malformed-manifest"),
        ("folder #3", "malformed-manifest"),
        ("folder #4", "malformed-manifest"),
        (file_number_for(5), "malformed-manifest"),
        (file_number_for(6), "malformed-manifest"),
        (file_number_for(7), "missing-file"),
        (file_number_for(8), "unreadable-pdf"),
        (file_number_for(9), "unreadable-pdf"),
        (file_number_for(10), "page-count-mismatch"),
        (file_number_for(11), "malformed-manifest"),
    }
    details = {f.label: f.detail for f in report.failures}
    assert details[file_number_for(10)] == (
        "document 1 of the manifest: the manifest says 2 pages, the PDF has 3"
    )
    assert details[file_number_for(7)] == "document 1 of the manifest: the file is missing"
    assert details[file_number_for(5)] == "person.given_names: is missing or not a string"
    text = json.dumps(report.as_json(), ensure_ascii=False)
    for personal in ("Yılmaz", "Ayşe", "Kowalski", "Nguyen", "Petrov", "türkisch", "Foto", "fehlt"):
        assert personal not in text
    for number in (7, 8, 9, 10, 11):  # nothing of a failed folder was stored or recorded
        with pytest.raises(Exception, match="file number"):
            service.find_case_by_reference(OFFICE, file_number_for(number))
    assert len(stored_hashes(concrete_documents(service)) - before) == 2


def test_a_closed_case_file_refuses_its_scans(service: AkteService, tmp_path: Path) -> None:
    opened = service.open_case(
        office_id=OFFICE,
        reference=file_number_for(3),
        master_data=MasterData("Silva", "João", FakeClock().now.date(), "BRA", "P00000003"),
        by="setup",
    )
    service.close_case(opened.case_id, expected_version=1, by="setup", closure_reason="died")
    legacy_file(tmp_path / "batch" / "a", 3)

    report = run_import(service, tmp_path / "batch")

    [failure] = report.failures
    assert (failure.label, failure.reason, failure.detail) == (
        file_number_for(3),
        "refused",
        "the case file is closed",
    )
    assert stored_hashes(concrete_documents(service)) == set()


def test_scans_join_an_existing_case_file_and_duplicates_are_filed_once(
    service: AkteService, tmp_path: Path
) -> None:
    opened = service.open_case(
        office_id=OFFICE,
        reference=file_number_for(4),
        master_data=MasterData("Silva", "João", FakeClock().now.date(), "BRA", "P00000004"),
        by="setup",
    )
    same = make_pdf(1, marker="the same scan twice")
    legacy_file(
        tmp_path / "batch" / "a",
        4,
        files={"a.pdf": same, "b.pdf": same, "c.pdf": make_pdf(1, marker="other")},
        documents=[{"file": name, "pages": 1} for name in ("a.pdf", "b.pdf", "c.pdf")],
    )

    report = run_import(service, tmp_path / "batch")

    assert (report.imported, report.cases_opened, report.documents) == (1, 0, 2)
    case = service.get_case(opened.case_id)
    assert [(d.number, d.source, d.kind) for d in case.documents] == [
        (1, "scan", "legacy-file-scan"),
        (2, "scan", "legacy-file-scan"),
    ]
    assert case.master_data.surname == "Silva"  # the case file's, not the manifest's


# ------------------------------------------------------------------- resuming


def test_an_import_interrupted_mid_folder_resumes_without_duplicates(
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 60, seed=3)
    interrupt_on_write(concrete_documents(service), monkeypatch, mid_folder_write(folders, 30)[0])

    with pytest.raises(Interrupted):
        run_import(service, tmp_path / "batch")
    monkeypatch.undo()
    done_before = service.recorder.max_notification_id()

    # A new process: nothing carried over but the stores.
    resumed = build_service(settings, clock=clock)
    try:
        report = run_import(resumed, tmp_path / "batch")
        again = run_import(resumed, tmp_path / "batch")

        assert report.imported == 60 - report.already_imported
        assert 30 <= report.already_imported < 60
        assert again.imported == 0
        assert again.already_imported == 60
        state = filed_state(resumed, folders)
    finally:
        resumed.close()
    for folder in folders:
        version, master_data, documents = state[folder.file_number]
        assert version == 1 + folder.documents  # opened, then one event per scan: no twice
        assert master_data[0] == person_for(int(folder.file_number[-6:]))["surname"]
        assert [d[5] for d in documents] == [
            json.loads((folder.path / MANIFEST_NAME).read_text())["documents"][i]["pages"]
            for i in range(folder.documents)
        ]
        assert {d[6] for d in documents} == {"scan"}
    assert done_before is not None


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_two_thousand_legacy_files_interrupted_and_resumed_equal_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 2000, seed=11)
    clock = FakeClock()

    uninterrupted = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "one-run"), clock=clock
    )
    try:
        straight = run_import(uninterrupted, tmp_path / "batch")
        expected = filed_state(uninterrupted, folders)
        # Addresses are keyed per owner (the stores' keys differ): compare the numbers.
        expected_documents = len(stored_hashes(concrete_documents(uninterrupted)))
    finally:
        uninterrupted.close()

    settings = Settings(store="sqlite", data_dir=tmp_path / "interrupted")
    first = build_service(settings, clock=clock)
    # Half way, in the middle of a folder: its first files stored, its events not saved.
    write, half_done = mid_folder_write(folders, 1000)
    interrupt_on_write(concrete_documents(first), monkeypatch, write)
    seen: list[FolderOutcome] = []
    try:
        with pytest.raises(Interrupted):
            run_import(first, tmp_path / "batch", after_folder=seen.append)
    finally:
        first.close()
    assert len(seen) == half_done
    second = build_service(settings, clock=clock)
    try:
        resumed = run_import(second, tmp_path / "batch")
        head = second.recorder.max_notification_id()
        again = run_import(second, tmp_path / "batch")
        assert filed_state(second, folders) == expected
        # The interrupted folder's files were stored for a case file never saved (its
        # id is not reused): orphans under that owner's address, for the sweep.
        sweep_orphans(
            second.intake.documents, second.intake.referenced_addresses, older_than=timedelta(0)
        )
        assert len(stored_hashes(concrete_documents(second))) == expected_documents
        assert second.recorder.max_notification_id() == head
    finally:
        second.close()

    assert (straight.imported, straight.failures) == (2000, [])
    assert (resumed.already_imported, resumed.imported) == (half_done, 2000 - half_done)
    assert (again.already_imported, again.imported, again.documents) == (2000, 0, 0)
    assert straight.documents == sum(folder.documents for folder in folders)
    assert straight.documents == expected_documents


def _cli_environment(tmp_path: Path) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AKTE_")}
    return environment | {
        "AKTE_STORE": "sqlite",
        "AKTE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
    }


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_a_killed_import_process_is_resumed_by_running_it_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 400, seed=5)
    environment = _cli_environment(tmp_path)
    importer = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli", "import-scans", str(tmp_path / "batch")],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert importer.stderr is not None
    try:
        for line in _lines(importer.stderr):
            if line.startswith("imported 120/400"):
                importer.send_signal(signal.SIGKILL)
                break
        importer.wait(timeout=60)
    finally:
        if importer.poll() is None:
            importer.kill()
    assert importer.returncode == -signal.SIGKILL

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    assert main(["import-scans", str(tmp_path / "batch")]) == 0
    resumed = capsys.readouterr().out
    assert main(["import-scans", str(tmp_path / "batch")]) == 0
    again = capsys.readouterr().out

    assert "400 legacy files:" in resumed
    assert "400 legacy files: 0 imported (0 case files opened), 400 already imported" in again
    service = build_service(Settings(store="sqlite", data_dir=tmp_path / "data"))
    try:
        for folder, (version, _, documents) in zip(
            folders, filed_state(service, folders).values(), strict=True
        ):
            assert version == 1 + folder.documents
            assert len({d[2] for d in documents}) == folder.documents
    finally:
        service.close()


def _lines(stream: Any) -> Iterator[str]:
    while line := stream.readline():
        yield line


# ------------------------------------------------------------------------ CLI


def test_the_cli_reports_failures_and_throughput(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _cli_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    write_legacy_batch(tmp_path / "batch", 5, seed=2)
    legacy_file(tmp_path / "batch" / "zz", 99, files={"a.pdf": make_pdf(4)})

    assert main(["import-scans", str(tmp_path / "batch"), "--report", "report.json"]) == 1

    out, err = capsys.readouterr()
    assert "6 legacy files: 5 imported (5 case files opened), 0 already imported, 1 failed" in out
    assert "files/s" in out
    assert "MB/s" in out
    assert (
        f"FAILED {file_number_for(99)}: page-count-mismatch: document 1 of the manifest: "
        "the manifest says 2 pages, the PDF has 4"
    ) in out
    assert "imported 6/6 legacy files" in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failures"] == [
        {
            "folder": file_number_for(99),
            "reason": "page-count-mismatch",
            "detail": "document 1 of the manifest: the manifest says 2 pages, the PDF has 4",
        }
    ]
    assert main(["import-scans", str(tmp_path / "nowhere")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_the_cli_sweeps_orphans_and_verifies_documents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, value in _cli_environment(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    write_legacy_batch(tmp_path / "batch", 3, seed=2)
    assert main(["import-scans", str(tmp_path / "batch")]) == 0
    documents = tmp_path / "data" / "documents" / "objects"
    referenced = sorted(path for path in documents.rglob("*") if path.is_file())
    service = build_service(Settings(store="sqlite", data_dir=tmp_path / "data"))
    try:
        service.intake.documents.put_bytes(make_pdf(1, marker="never recorded"), owner=uuid4())
    finally:
        service.close()
    capsys.readouterr()

    assert main(["documents", "sweep-orphans"]) == 0
    assert "removed 0 orphans" in capsys.readouterr().out
    assert main(["documents", "sweep-orphans", "--older-than", "0s", "--dry-run"]) == 0
    assert "would remove 1 orphans" in capsys.readouterr().out
    assert main(["documents", "sweep-orphans", "--older-than", "0s"]) == 0
    out = capsys.readouterr().out
    assert "removed 1 orphans" in out
    assert sorted(path for path in documents.rglob("*") if path.is_file()) == referenced

    assert main(["documents", "verify"]) == 0
    victim = referenced[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"!")
    assert main(["documents", "verify"]) == 1
    out = capsys.readouterr().out
    # Named by the hash its event recorded: stored objects' names are keyed per owner.
    assert out.count("CORRUPTED ") == 1
    assert "1 corrupted" in out
    with pytest.raises(SystemExit):
        main(["documents", "sweep-orphans", "--older-than", "soon"])


def test_case_file_events_of_an_import_reference_stored_documents(
    service: AkteService, tmp_path: Path
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 10, seed=4)

    run_import(service, tmp_path / "batch")

    for folder in folders:
        case_id = service.find_case_by_reference(OFFICE, folder.file_number)
        for event in service.case_events(case_id):
            if isinstance(event, CaseFile.DocumentAttached):
                assert event.by == "scan-import"
                service.intake.documents.verify(
                    event.sha256, owner=case_id, size_bytes=event.size_bytes
                )
