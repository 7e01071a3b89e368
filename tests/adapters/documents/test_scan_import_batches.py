"""The scan import written in groups stores the scans of a group together, before the
group's events: few transactions of the document store (PostgreSQL) or one round of
fsyncs (directory), nothing of a failing legacy file, nothing of a refused group."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
from psycopg import sql

from adapters.bootstrap import build_service
from adapters.documents import scan_import
from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.inspection import inspect_path
from adapters.documents.postgres import DOCUMENTS_TABLE, PostgresBatch, PostgresDocumentStore
from adapters.documents.scan_import import import_scans
from adapters.documents.store import DocumentStore
from adapters.documents.sweep import sweep_orphans
from adapters.settings import Settings
from adapters.simulation.legacy_scans import LegacyFolder, person_for, write_legacy_batch
from domain.case_file import MasterData
from service import AkteService
from service_common import ReferenceNotFound
from service_intake import IncomingDocument
from service_unit_of_work import GroupConflict
from tests.conftest import POSTGRES, FakeClock, make_settings
from tests.support.documents import backend_of

OFFICE: Final = "abh-musterstadt"
GROUPED: Final = "abh-gruppe"


class Interrupted(KeyboardInterrupt):
    """What Ctrl-C raises, from where the test chooses."""


def stored(service: AkteService) -> set[str]:
    return {entry.sha256 for entry in backend_of(service.intake.documents).entries()}


def imported(service: AkteService, folders: Iterable[LegacyFolder]) -> list[str]:
    """The file numbers that have a case file."""
    found = []
    for folder in folders:
        try:
            service.find_case_by_reference(OFFICE, folder.file_number)
        except ReferenceNotFound:
            continue
        found.append(folder.file_number)
    return found


def verify_documents(
    service: AkteService, folders: Iterable[LegacyFolder], office: str = OFFICE
) -> int:
    """Every document the case files reference reads back as recorded; how many."""
    count = 0
    for folder in folders:
        case_id = service.find_case_by_reference(office, folder.file_number)
        for document in service.get_case(case_id).documents:
            service.intake.documents.verify(
                document.sha256, owner=case_id, size_bytes=document.size_bytes
            )
            count += 1
    return count


def documents_of(
    service: AkteService, folders: Iterable[LegacyFolder], office: str
) -> list[list[tuple[Any, ...]]]:
    return [
        [
            (d.number, d.kind, d.sha256, d.size_bytes, d.page_count, d.source)
            for d in service.get_case(
                service.find_case_by_reference(office, folder.file_number)
            ).documents
        ]
        for folder in folders
    ]


def assert_same_documents(service: AkteService, folders: list[LegacyFolder]) -> None:
    """The office imported grouped holds the documents of the one imported one by one:
    each reads back as recorded, and each office's copies are its own (keyed per owner)."""
    documents = verify_documents(service, folders)
    assert verify_documents(service, folders, GROUPED) == documents
    assert len(stored(service)) == 2 * documents
    assert documents_of(service, folders, GROUPED) == documents_of(service, folders, OFFICE)


def master_data_of(folder: LegacyFolder, clock: FakeClock) -> MasterData:
    person = person_for(int(folder.file_number[-6:]))
    return MasterData(
        person["surname"],
        person["given_names"],
        clock.now.date(),
        person["nationality"],
        person["passport_number"],
    )


def import_refused_for_a_conflict(
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    batch: Path,
    taken: LegacyFolder,
    after: LegacyFolder,
) -> None:
    """Import ``batch`` grouped while another writer opens ``taken``'s case file once
    ``after`` is filed (``taken`` still pending in the group): the group is refused with
    :class:`GroupConflict`."""
    other = build_service(settings, clock=clock)

    def another_writer_claims_a_file_number(outcome: Any) -> None:
        if outcome.label == after.file_number:
            other.open_case(
                office_id=OFFICE,
                reference=taken.file_number,
                master_data=master_data_of(taken, clock),
                by="another-writer",
            )

    try:
        with pytest.raises(GroupConflict):
            import_scans(
                service,
                batch,
                office_id=OFFICE,
                group_events=5000,
                after_folder=another_writer_claims_a_file_number,
            )
    finally:
        other.close()


def folder_of(batch: Path, folder: LegacyFolder) -> Path:
    """The directory of ``folder`` in the batch (its manifest names its file number)."""
    return next(
        path
        for path in sorted(batch.iterdir())
        if path.is_dir() and folder.file_number in (path / "manifest.json").read_text()
    )


def transactions_that_wrote(settings: Settings) -> int:
    """How many transactions wrote the document rows: each row's ``stored_at`` is its
    transaction's ``now()``, the time the transaction started."""
    with psycopg.connect(**POSTGRES) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(DISTINCT stored_at) FROM {}").format(
                sql.Identifier(settings.postgres_schema, DOCUMENTS_TABLE)
            )
        ).fetchone()
    assert row is not None
    return int(row[0])


# --------------------------------------------------------- transactions, fsyncs


@pytest.mark.postgres
def test_on_postgresql_a_group_stores_its_scans_in_one_transaction(
    clock: FakeClock, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    settings = make_settings("postgres", tmp_path, request)
    folders = write_legacy_batch(tmp_path / "batch", 20, seed=21, payload_bytes_per_page=64)
    service = build_service(settings, clock=clock)
    try:
        assert isinstance(backend_of(service.intake.documents), PostgresDocumentStore)
        one_by_one = import_scans(service, tmp_path / "batch", office_id=OFFICE, group_events=1)
        one_each = transactions_that_wrote(settings)
        grouped = import_scans(service, tmp_path / "batch", office_id=GROUPED)
        assert_same_documents(service, folders)
    finally:
        service.close()

    assert grouped.documents == one_by_one.documents == sum(f.documents for f in folders) > 20
    # One transaction per scan one by one; grouped, one for all of them.
    assert one_each == one_by_one.documents
    assert transactions_that_wrote(settings) == one_each + 1


@pytest.mark.postgres
def test_a_group_commits_its_scans_every_so_many_legacy_files(
    clock: FakeClock,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each legacy file is a savepoint on PostgreSQL: a transaction holding more than 64
    # overflows the server's subtransaction cache, so a batch commits after so many.
    monkeypatch.setattr(PostgresBatch, "max_units", 5)
    settings = make_settings("postgres", tmp_path, request)
    folders = write_legacy_batch(tmp_path / "batch", 12, seed=23, payload_bytes_per_page=64)
    service = build_service(settings, clock=clock)
    try:
        imported = import_scans(service, tmp_path / "batch", office_id=GROUPED)
        assert verify_documents(service, folders, GROUPED) == imported.documents
    finally:
        service.close()

    # After the 5th and the 10th legacy file, and the last two with the group's events.
    assert transactions_that_wrote(settings) == 3


def test_in_a_directory_a_group_fsyncs_each_directory_once(
    clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = build_service(Settings(store="sqlite", data_dir=tmp_path / "data"), clock=clock)
    backend = backend_of(service.intake.documents)
    assert isinstance(backend, DirectoryDocumentStore)
    folders = write_legacy_batch(tmp_path / "batch", 60, seed=22, payload_bytes_per_page=64)
    synced: list[Path] = []
    original = os.fsync

    def counting(descriptor: int) -> None:
        if stat.S_ISDIR(os.fstat(descriptor).st_mode):
            synced.append(Path(os.readlink(f"/proc/self/fd/{descriptor}")))
        original(descriptor)

    def objects() -> set[Path]:
        return set(backend.root.glob("objects/*/*"))

    objects_seen: list[int] = []
    try:
        import_scans(service, tmp_path / "batch", office_id=OFFICE, group_events=1)
        before = objects()
        monkeypatch.setattr(os, "fsync", counting)
        report = import_scans(
            service,
            tmp_path / "batch",
            office_id=GROUPED,
            after_folder=lambda _: objects_seen.append(len(objects() - before)),
        )
        monkeypatch.undo()
        shards = {path.parent for path in objects() - before}
        assert_same_documents(service, folders)
    finally:
        service.close()

    # Nothing under objects/ until the group is written; then each shard directory the
    # group wrote into is fsynced once (it was once per document).
    assert report.documents > len(shards)
    assert set(objects_seen) == {0}
    assert sorted(path for path in synced if path.parent.name == "objects") == sorted(shards)
    assert not list(backend.root.glob("incoming/*"))


# ----------------------------------------------------------------- failures


def interrupt_on_write(store: DocumentStore, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    """The ``nth`` stored scan raises Ctrl-C once it is written: mid-folder."""
    original = store.put_at
    calls = 0

    def put_then_interrupt(address: str, chunks: Iterable[bytes]) -> int:
        nonlocal calls
        size = original(address, chunks)
        calls += 1
        if calls == nth:
            raise Interrupted
        return size

    monkeypatch.setattr(store, "put_at", put_then_interrupt)


def test_a_legacy_file_interrupted_while_its_scans_are_stored_leaves_none_of_them(
    service: AkteService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 16, seed=23, payload_bytes_per_page=64)
    victim = next(i for i, folder in enumerate(folders) if i >= 8 and folder.documents >= 2)
    second_scan = sum(folder.documents for folder in folders[:victim]) + 2
    interrupt_on_write(backend_of(service.intake.documents), monkeypatch, second_scan)

    with pytest.raises(Interrupted):
        import_scans(service, tmp_path / "batch", office_id=OFFICE, group_events=5000)
    monkeypatch.undo()

    # The legacy files before it are written, events and scans; of it, nothing at all
    # (one scan at a time, its first scan stayed behind as an orphan).
    assert imported(service, folders) == [folder.file_number for folder in folders[:victim]]
    assert len(stored(service)) == sum(folder.documents for folder in folders[:victim])
    assert verify_documents(service, folders[:victim]) == len(stored(service))
    backend = backend_of(service.intake.documents)
    if isinstance(backend, DirectoryDocumentStore):
        assert not list(backend.root.glob("incoming/*"))
    resumed = import_scans(service, tmp_path / "batch", office_id=OFFICE)
    assert (resumed.already_imported, resumed.imported) == (victim, 16 - victim)
    assert verify_documents(service, folders) == len(stored(service))


def test_the_scans_of_a_group_refused_for_a_conflict_are_left_to_the_sweep(
    service: AkteService, settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 12, seed=24, payload_bytes_per_page=64)
    taken = folders[4]
    # Folder 5 is pending in the group when folder 7 is filed.
    import_refused_for_a_conflict(service, settings, clock, tmp_path / "batch", taken, folders[6])

    # No event of the refused group stays. Its scans are orphans for the sweep, never
    # deleted at once: the same address may hold a document that events reference.
    assert imported(service, folders) == [taken.file_number]
    assert stored(service)
    sweep_orphans(
        service.intake.documents, service.intake.referenced_addresses, older_than=timedelta(0)
    )
    assert stored(service) == set()
    resumed = import_scans(service, tmp_path / "batch", office_id=OFFICE)
    assert (resumed.imported, resumed.failures) == (12, [])
    assert verify_documents(service, folders) == len(stored(service))


def test_a_refused_group_keeps_a_document_a_caseworker_uploaded_with_the_same_bytes(
    service: AkteService, settings: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 12, seed=25, payload_bytes_per_page=64)
    first, taken = folders[0], folders[4]
    case_id = service.open_case(
        office_id=OFFICE,
        reference=first.file_number,
        master_data=master_data_of(first, clock),
        by="staff",
    ).case_id
    scan = sorted(folder_of(tmp_path / "batch", first).glob("*.pdf"))[0]
    inspection = inspect_path(scan)
    service.intake.upload_document(
        case_id,
        expected_version=service.get_case(case_id).version,
        by="staff",
        document=IncomingDocument(
            content=scan,
            sha256=inspection.sha256,
            size_bytes=inspection.size_bytes,
            media_type=inspection.media_type,
            page_count=inspection.page_count,
            kind="sonstiges",
        ),
        source="caseworker",
    )
    import_refused_for_a_conflict(service, settings, clock, tmp_path / "batch", taken, folders[6])

    # The group wrote the same bytes for the same file again before it was refused;
    # the caseworker's upload, recorded before the import, still reads back.
    service.intake.documents.verify(
        inspection.sha256, owner=case_id, size_bytes=inspection.size_bytes
    )


def test_a_legacy_file_interrupted_after_its_command_was_saved_keeps_its_scans(
    service: AkteService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = write_legacy_batch(tmp_path / "batch", 6, seed=26, payload_bytes_per_page=64)
    victim = folders[3].file_number
    original = scan_import.import_folder

    def import_then_interrupt(*args: Any, **kwargs: Any) -> Any:
        outcome = original(*args, **kwargs)
        if outcome.label == victim:
            raise Interrupted  # Ctrl-C landing just after the folder's save
        return outcome

    monkeypatch.setattr(scan_import, "import_folder", import_then_interrupt)
    with pytest.raises(Interrupted):
        import_scans(service, tmp_path / "batch", office_id=OFFICE, group_events=5000)
    monkeypatch.undo()

    # The group wrote the folder's events when the block ended: its scans stayed too.
    assert victim in imported(service, folders)
    assert verify_documents(service, folders[:4]) == len(stored(service)) > 0
