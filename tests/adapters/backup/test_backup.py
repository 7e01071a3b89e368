"""Backup, restore and drill over both stores: a small office with documents goes into a
backup and comes back whole; non-empty targets and corrupted backups are refused; a
backup taken while commands are written holds every command acknowledged before it."""

from __future__ import annotations

import hashlib
import io
import threading
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from adapters.backup.drill import run_drill
from adapters.backup.manifest import BackupCorrupted, read_manifest
from adapters.backup.restore import restore_backup
from adapters.backup.take import take_backup
from adapters.bootstrap import open_service, open_views_store
from adapters.cli.main import main
from adapters.settings import Settings
from adapters.simulation.demo_office import load_demo_office
from adapters.store.hash_chain import verify_chains
from adapters.views.runner import ApplicationEventLog
from domain.intake import ContactDetails
from projections.engine import ProjectionEngine
from projections.read_models import READ_MODELS
from service import AkteService
from service_intake import IncomingDocument
from tests.conftest import POSTGRES

OFFICE = "abh-musterstadt"


def document(number: int) -> IncomingDocument:
    data = f"%PDF-1.4 Antrag {number}".encode()
    return IncomingDocument(
        content=io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        media_type="application/pdf",
        page_count=1,
        name="antrag.pdf",
    )


def submit(service: AkteService, number: int) -> uuid.UUID:
    recorded = service.intake.submit_contact_form(
        office_id=OFFICE,
        topic="extend_residence_permit",
        message="Bitte verlängern.",
        contact=ContactDetails(
            surname="Yılmaz",
            given_names="Ayşe",
            email="ayse@example.org",
            date_of_birth=date(1991, 7, 14),
            file_number=f"2019-AB{number:02d}",
        ),
        files=[document(number)],
    )
    return recorded.submission_id


def fill(settings: Settings) -> None:
    """A handful of case files, contact form submissions with a document each, and the
    read models followed up to the head."""
    with open_service(settings) as service:
        load_demo_office(service, cases=4, seed=7, office_id=OFFICE)
        for number in range(3):
            submit(service, number)
        views = open_views_store(settings)
        writer = views.writer()
        try:
            ProjectionEngine(ApplicationEventLog(service), writer, READ_MODELS).catch_up()
        finally:
            writer.close()
            views.close()


@pytest.fixture
def target(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """A second, empty store of the same kind: another data directory (and schema)."""
    update: dict[str, object] = {"data_dir": tmp_path / "target"}
    schema = None
    if settings.store == "postgres":
        schema = f"akte_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(autocommit=True, **POSTGRES) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        update["postgres_schema"] = schema
    try:
        yield settings.model_copy(update=update)
    finally:
        if schema is not None:
            with psycopg.connect(autocommit=True, **POSTGRES) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def backup(settings: Settings, dest: Path, *, with_views: bool = False) -> None:
    with open_service(settings) as service:
        take_backup(settings, dest, service=service, with_views=with_views)


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_a_backup_restores_whole_and_its_drill_passes(
    settings: Settings, target: Settings, tmp_path: Path
) -> None:
    fill(settings)
    dest = tmp_path / "backup"
    backup(settings, dest, with_views=True)
    manifest = read_manifest(dest)
    assert manifest.head > 0
    assert manifest.counts["events"] == manifest.head
    assert OFFICE in manifest.offices
    assert manifest.with_views

    report = run_drill(settings, dest, scratch_root=tmp_path)
    assert report.ok, report.checks
    assert {check.name for check in report.checks} >= {
        "audit verify",
        "keys",
        "documents",
        "views",
    }
    with open_service(settings) as source:
        stored = len(source.intake.referenced_documents())
    assert stored >= 3
    documents = next(c.detail for c in report.checks if c.name == "documents")
    assert documents.startswith(f"{stored} documents match")

    restored = restore_backup(target, dest)
    assert restored.head == manifest.head
    with open_service(settings) as source, open_service(target) as copy:
        assert verify_chains(copy.recorder).head == verify_chains(source.recorder).head  # type: ignore[arg-type]
        references = copy.intake.referenced_documents()
        assert len(references) == stored
        for reference in references:
            assert copy.intake.documents.read_bytes(
                reference.sha256, owner=reference.owner
            ) == source.intake.documents.read_bytes(reference.sha256, owner=reference.owner)


def use_in_environment(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI reads its settings from the environment: point it at ``settings``."""
    monkeypatch.setenv("AKTE_STORE", settings.store)
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    if settings.store == "postgres":
        monkeypatch.setenv("AKTE_POSTGRES_HOST", settings.postgres_host)
        monkeypatch.setenv("AKTE_POSTGRES_PORT", str(settings.postgres_port))
        monkeypatch.setenv("AKTE_POSTGRES_USER", settings.postgres_user)
        monkeypatch.setenv("AKTE_POSTGRES_DBNAME", settings.postgres_dbname)
        monkeypatch.setenv("AKTE_POSTGRES_SCHEMA", settings.postgres_schema)


def test_the_commands_back_up_drill_and_refuse_a_store_that_is_not_empty(
    settings: Settings,
    target: Settings,
    tmp_path: Path,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill(settings)
    dest = tmp_path / "backup"
    use_in_environment(settings, monkeypatch)
    assert main(["backup", str(dest)]) == 0
    head = read_manifest(dest).head
    assert f"up to {head}" in capsys.readouterr().out

    assert main(["backup", "drill", str(dest), "--scratch-dir", str(tmp_path)]) == 0
    assert "OK: the backup restores" in capsys.readouterr().out

    # Into the store it came from: not empty, refused, nothing changed.
    assert main(["restore", str(dest)]) == 1
    assert "the target store is not empty" in capsys.readouterr().err
    with open_service(settings) as service:
        assert service.recorder.max_notification_id() == head

    use_in_environment(target, monkeypatch)
    assert main(["restore", str(dest)]) == 0
    assert f"up to {head}" in capsys.readouterr().out
    assert main(["audit", "verify", "--anchor", read_manifest(dest).head_anchor or ""]) == 0
    # A second restore finds the first one's data.
    assert main(["restore", str(dest)]) == 1


def test_a_corrupted_backup_is_found_by_its_checksums_before_anything_is_restored(
    settings: Settings,
    target: Settings,
    tmp_path: Path,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill(settings)
    dest = tmp_path / "backup"
    backup(settings, dest)
    manifest = read_manifest(dest)
    events = next(name for name in manifest.files if "events" in name)
    with (dest / events).open("r+b") as file:
        file.seek(-100, 2)
        byte = file.read(1)
        file.seek(-100, 2)
        file.write(bytes([byte[0] ^ 0xFF]))

    with pytest.raises(BackupCorrupted, match=events):
        restore_backup(target, dest)
    use_in_environment(target, monkeypatch)
    assert main(["restore", str(dest)]) == 4
    assert "differs from its checksum" in capsys.readouterr().err
    assert main(["restore", "--drill", str(dest), "--scratch-dir", str(tmp_path)]) == 4
    with open_service(target) as service:
        assert (service.recorder.max_notification_id() or 0) == 0


def test_keys_of_an_erased_person_in_a_backup_are_a_finding_and_destroyed_on_restore(
    settings: Settings, target: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with open_service(settings) as service:
        summary = load_demo_office(service, cases=2, seed=3, office_id=OFFICE)
        submission = submit(service, 1)
        case_id = summary.case_ids[0]
        # The erasure's event is recorded, the process dies before the keys are destroyed
        # (on PostgreSQL a backup can also fall between the two).
        keys = service.data_protection.keys
        with monkeypatch.context() as patched:
            patched.setattr(keys, "destroy", lambda owners, erased_at: [])
            service.data_protection.erase_personal_data(
                case_id,
                expected_version=service.case_head_version(case_id),
                by="sb-01",
                legal_ground="aufenthg-91",
                approved_by="sgl-01",
            )
        assert keys.has_key(str(case_id))
    dest = tmp_path / "backup"
    backup(settings, dest)

    report = run_drill(settings, dest, scratch_root=tmp_path)
    assert report.ok, report.checks
    assert any(str(case_id) in finding for finding in report.findings)

    restored = restore_backup(target, dest)
    assert restored.erased_with_keys == [str(case_id)]
    assert restored.keys_destroyed >= 1
    with open_service(target) as copy:
        assert not copy.data_protection.keys.has_key(str(case_id))
        assert copy.data_protection.keys.has_key(str(submission))
        assert copy.get_case(case_id).is_erased


def test_a_backup_taken_while_commands_are_written_holds_every_command_acknowledged_before(
    settings: Settings, target: Settings, tmp_path: Path
) -> None:
    acknowledged: list[tuple[uuid.UUID, int]] = []
    started = threading.Event()
    stop = threading.Event()
    failures: list[BaseException] = []

    def write(service: AkteService) -> None:
        number = 0
        try:
            while not stop.is_set():
                submission = submit(service, number % 90)
                position = service.recorder.max_notification_id() or 0
                acknowledged.append((submission, position))
                number += 1
                if number == 5:
                    started.set()
        except BaseException as error:
            failures.append(error)
            started.set()

    dest = tmp_path / "backup"
    with open_service(settings) as service:
        writer = threading.Thread(target=write, args=(service,))
        writer.start()
        try:
            assert started.wait(60)
            before = list(acknowledged)
            with open_service(settings) as backing_up:
                take_backup(settings, dest, service=backing_up)
        finally:
            stop.set()
            writer.join(60)
    assert not failures
    head = read_manifest(dest).head
    assert len(before) >= 5

    restored = restore_backup(target, dest)
    assert restored.head == head
    with open_service(target) as copy:
        assert verify_chains(copy.recorder).ok  # type: ignore[arg-type]
        present = {reference.owner for reference in copy.intake.referenced_documents()}
        for submission, _ in before:
            assert submission in present
        assert {s for s, position in acknowledged if position <= head} <= present
    report = run_drill(settings, dest, scratch_root=tmp_path)
    assert report.ok, report.checks
