"""Issue 21.4: a backup cannot resurrect the erased. On SQLite and PostgreSQL.

A backup is taken of a person with every kind of record (tests/support/erasure_scenario.py);
then the person is erased; then the backup is restored into an empty store. The backup's
keys would open everything again: the erasure journal (ids and times, written by the
erasure, apart from the stores) is read by the restore, which destroys those keys again.
Nothing of the person is readable in the restored store, through the service or in any
byte of it; without the journal, the same restore brings the person back (the control).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from adapters.backup.drill import run_drill
from adapters.backup.manifest import BackupError
from adapters.backup.restore import restore_backup
from adapters.backup.take import take_backup
from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.documents.encryption import DocumentErased
from adapters.personal_data.erasure_journal import FileErasureJournal, JournalError, read_journal
from adapters.settings import Settings
from domain.appointments import WaitlistEntry
from domain.personal import REDACTED_TEXT
from service import AkteService
from service_data_protection import JournalEntry
from tests.conftest import POSTGRES, FakeClock
from tests.support.erasure_scenario import (
    GUARANTOR,
    PERSON_VALUES,
    SURNAME,
    PersonRecords,
    build_person,
    erase,
)
from tests.support.erasure_search import search, store_bytes


def _empty_store(settings: Settings, directory: Path) -> Iterator[Settings]:
    update: dict[str, object] = {"data_dir": directory}
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


@pytest.fixture
def target(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """An empty store of the same kind, sharing the source's erasure journal (as
    ``AKTE_ERASURE_JOURNAL_PATH`` on storage of its own would)."""
    for store in _empty_store(settings, tmp_path / "target"):
        yield store.model_copy(update={"erasure_journal_path": settings.erasure_journal_file})


@pytest.fixture
def control(settings: Settings, tmp_path: Path) -> Iterator[Settings]:
    """An empty store of the same kind with a journal of its own (empty)."""
    yield from _empty_store(settings, tmp_path / "control")


def backed_up_then_erased(
    settings: Settings, clock: FakeClock, dest: Path
) -> tuple[PersonRecords, datetime]:
    service = build_service(settings, clock=clock)
    try:
        records = build_person(service, settings)
        take_backup(settings, dest, service=service)
        clock.advance(days=2)
        erase(service, records)
        erased_at = clock()
    finally:
        service.close()
    return records, erased_at


def readable(service: AkteService, records: PersonRecords) -> dict[str, object]:
    """What the service reads of the person in each record."""
    case = service.get_case(records.case_id)
    declaration = service.declarations.get_declaration(records.declaration_id)
    submission = service.intake.get_submission(records.submission_id)
    appointment = service.appointments.appointment_events(records.appointment_id)[0]
    entry: WaitlistEntry = service.repository.get(records.waitlist_entry_id)
    return {
        "case": case.master_data.surname,
        "submission": submission.contact.surname,
        "appointment": getattr(appointment, "surname"),  # noqa: B009
        "waitlist": entry.person.surname,
        "visitor": declaration.invited_person.surname,
        "guarantor": declaration.guarantor.surname,
    }


def document_readable(service: AkteService, records: PersonRecords) -> bool:
    reference = next(r for r in service.intake.referenced_documents() if r.owner == records.case_id)
    try:
        service.intake.documents.read_bytes(reference.sha256, owner=reference.owner)
    except DocumentErased:
        return False
    return True


def test_a_restore_from_a_backup_older_than_an_erasure_erases_again(
    settings: Settings, target: Settings, control: Settings, clock: FakeClock, tmp_path: Path
) -> None:
    dest = tmp_path / "backup"
    records, erased_at = backed_up_then_erased(settings, clock, dest)
    [entry] = read_journal(settings.erasure_journal_file)
    assert entry.case_id == str(records.case_id)
    assert entry.erased_at == erased_at
    assert search({"journal": settings.erasure_journal_file.read_bytes()}, PERSON_VALUES) == []

    # The control: the same backup, restored without the journal, brings the person back.
    unjournaled = restore_backup(control, dest)
    assert unjournaled.journal_entries == 0
    copy = build_service(control, clock=clock)
    try:
        assert set(readable(copy, records).values()) == {SURNAME, GUARANTOR.surname}
        assert document_readable(copy, records)
    finally:
        copy.close()

    restored = restore_backup(target, dest)

    assert restored.journal_entries == 1
    assert restored.journal_erasures == [str(records.case_id)]
    assert restored.journal_keys_destroyed == 5  # file, submission, booking, entry, visitor
    copy = build_service(target, clock=clock)
    try:
        assert readable(copy, records) == {
            "case": REDACTED_TEXT,
            "submission": REDACTED_TEXT,
            "appointment": REDACTED_TEXT,
            "waitlist": REDACTED_TEXT,
            "visitor": REDACTED_TEXT,
            "guarantor": GUARANTOR.surname,
        }
        assert not document_readable(copy, records)
        keys = copy.data_protection.keys
        assert not any(keys.has_key(owner) for owner in entry.owner_ids)
    finally:
        copy.close()
    assert search(store_bytes(target), PERSON_VALUES) == []


@pytest.fixture
def on_sqlite(tmp_path: Path) -> tuple[Settings, Settings]:
    """A SQLite store and an empty one beside it (what does not depend on the store)."""
    return (
        Settings(store="sqlite", data_dir=tmp_path / "data"),
        Settings(store="sqlite", data_dir=tmp_path / "control"),
    )


def test_the_drill_and_the_command_apply_the_journal_of_the_store(
    on_sqlite: tuple[Settings, Settings],
    clock: FakeClock,
    tmp_path: Path,
    environment: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings, control = on_sqlite
    dest = tmp_path / "backup"
    records, _ = backed_up_then_erased(settings, clock, dest)

    report = run_drill(settings, dest, scratch_root=tmp_path)
    assert report.ok, report.checks
    journal = next(check for check in report.checks if check.name == "erasure journal")
    assert journal.detail == "1 erasure(s) of the journal applied"

    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(control.data_dir))
    code = main(["restore", str(dest), "--erasure-journal", str(settings.erasure_journal_file)])
    assert code == 0
    out = capsys.readouterr().out
    assert f"erased again: case file {records.case_id}" in out
    assert "1 erasure(s) applied" in out
    # The restored store's own journal now lists the erasure for the next restore.
    assert [e.case_id for e in read_journal(control.erasure_journal_file)] == [str(records.case_id)]


def test_a_torn_last_line_is_skipped_and_a_damaged_journal_restores_nothing(
    tmp_path: Path, on_sqlite: tuple[Settings, Settings], clock: FakeClock
) -> None:
    settings, control = on_sqlite
    path = tmp_path / "journal.jsonl"
    journal = FileErasureJournal(path)
    at = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    journal.append(JournalEntry(at, str(uuid.uuid4()), [str(uuid.uuid4())]))
    with path.open("a") as file:
        file.write('{"erased_at": "2024-05-0')  # a crash while appending
    assert len(journal.entries()) == 1
    with path.open("a") as file:
        file.write("\n")
    with pytest.raises(JournalError, match="line 2"):
        read_journal(path)

    dest = tmp_path / "backup"
    service = build_service(settings, clock=clock)
    try:
        take_backup(settings, dest, service=service)
    finally:
        service.close()
    with pytest.raises(BackupError, match="erasure journal"):
        restore_backup(control, dest, journals=[path])
    assert not control.sqlite_path.exists()
