"""Restore a backup into an empty store, then destroy again the keys of erased persons.

The target must hold nothing yet (no events, keys, tombstones, documents, read models
past their start): a restore never merges. The manifest's checksums are checked first,
then the store kinds and master keys, then the copies go in; on PostgreSQL Akte creates
its tables in the target schema as it does on first start, and the rows are copied in
(so a backup can be restored into another schema, e.g. a drill's scratch schema).

**Erasures.** A backup taken between an erasure's event and the destruction of its keys
(on PostgreSQL both are in one snapshot), or of a store where an erasure was interrupted,
holds keys of persons the log records as erased. The restore completes those erasures
(:func:`reapply_erasures`). Erasures made *after* the backup are not in its log: they are in
the **erasure journal** (:mod:`adapters.personal_data.erasure_journal`), which the restore
reads (the target's ``AKTE_ERASURE_JOURNAL_PATH`` and any journal named with
``--erasure-journal``) and applies: the keys of every owner it lists are destroyed again,
so the person's events, snapshots and documents read as erased (:func:`apply_journal`).
The entries read from other journals are appended to the target's, so that it stays
complete for the next restore.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, cast
from uuid import UUID

from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic
from psycopg import sql

from adapters.backup.manifest import (
    DOCUMENTS_DIR,
    EVENTS_FILE,
    KEYS_FILE,
    TABLES_DIR,
    VIEWS_FILE,
    BackupError,
    Manifest,
    TargetNotEmpty,
    read_manifest,
    verify_files,
)
from adapters.backup.stores import (
    DOCUMENTS_TABLE,
    EVENTS_TABLE,
    INCOMING_DIR,
    KEYS_TABLE,
    POSITIONS_TABLE,
    TOMBSTONES_TABLE,
    VIEW_TABLE_PREFIX,
    Progress,
    akte_tables,
    connect,
    copy_sqlite,
    copy_tree,
    count_rows,
    has_files,
    no_progress,
    schema_of,
    sqlite_count,
    sqlite_reading,
    table,
    views_file,
)
from adapters.bootstrap import (
    build_service,
    document_store_for,
    master_keys_for,
    open_service,
    open_views_store,
)
from adapters.personal_data.erasure_journal import (
    FileErasureJournal,
    JournalError,
    read_journal,
)
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.case_file import CaseFile
from projections.engine import ProjectionEngine
from projections.read_models import READ_MODELS
from service import AkteService
from service_data_protection import JournalEntry

_SCAN_PAGE: Final = 1000
_COPY_CHUNK: Final = 1 << 20


@dataclass(frozen=True)
class RestoreReport:
    head: int
    events: int
    erased_with_keys: list[str]
    """Case files the log records as erased whose keys the backup still held."""
    keys_destroyed: int
    """Keys destroyed again for them."""
    journal_erasures: list[str] = field(default_factory=list)
    """Case files of the erasure journal whose keys the backup still held."""
    journal_keys_destroyed: int = 0
    """Keys destroyed again for them."""
    journal_entries: int = 0
    """Erasures the journals list (all applied)."""


def restore_backup(
    settings: Settings,
    source: Path,
    *,
    progress: Progress = no_progress,
    checked: Manifest | None = None,
    journals: Sequence[Path] = (),
) -> RestoreReport:
    """Restore the backup in ``source`` into the empty store of ``settings``.

    ``checked``: the manifest, its files already verified (the drill verifies first).
    ``journals``: erasure journals to apply besides the target's own
    (``settings.erasure_journal_file``).
    Raises :class:`BackupCorrupted`, :class:`TargetNotEmpty` or :class:`BackupError`
    (also for a journal that cannot be read: checked before anything is restored).
    """
    entries = journal_entries(settings, journals)
    manifest = checked
    if manifest is None:
        manifest = read_manifest(source)
        verify_files(source, manifest, lambda done, total: progress("checksums", done, total))
    _check_compatible(settings, manifest)
    check_empty(settings)
    if manifest.store == "sqlite":
        _restore_sqlite(settings, source, manifest, progress)
    else:
        _restore_postgres(settings, source, manifest, progress)
    if manifest.document_store == "directory":
        copy_tree(
            source / DOCUMENTS_DIR,
            settings.documents_directory,
            step="documents",
            progress=progress,
        )
    with open_service(settings) as service:
        # The log's own erasures first (a finding of the backup), then the journal's.
        erased = erased_with_keys(service)
        destroyed = reapply_erasures(service, erased)
        journal_erased, journal_destroyed = apply_journal(service, entries)
        head = service.recorder.max_notification_id() or 0
    FileErasureJournal(settings.erasure_journal_file).append_missing(entries)
    return RestoreReport(
        head=head,
        events=manifest.counts.get("events", 0),
        erased_with_keys=[str(case_id) for case_id in erased],
        keys_destroyed=destroyed,
        journal_erasures=journal_erased,
        journal_keys_destroyed=journal_destroyed,
        journal_entries=len(entries),
    )


def journal_entries(settings: Settings, journals: Sequence[Path] = ()) -> list[JournalEntry]:
    """The erasures of the target's journal and of ``journals``, each once, oldest first."""
    seen: set[tuple[str, object]] = set()
    entries: list[JournalEntry] = []
    paths = [settings.erasure_journal_file, *journals]
    for path in dict.fromkeys(p.resolve() for p in paths):
        try:
            found = read_journal(path)
        except JournalError as error:
            raise BackupError(str(error)) from None
        for entry in found:
            if (entry.case_id, entry.erased_at) not in seen:
                seen.add((entry.case_id, entry.erased_at))
                entries.append(entry)
    entries.sort(key=lambda entry: entry.erased_at)
    return entries


def apply_journal(service: AkteService, entries: Sequence[JournalEntry]) -> tuple[list[str], int]:
    """Destroy again the keys the journal's erasures destroyed; returns the case files
    that still had keys and how many keys were destroyed."""
    erased: list[str] = []
    destroyed = 0
    for entry in entries:
        again = service.data_protection.reapply(entry)
        if again:
            destroyed += len(again)
            if entry.case_id not in erased:
                erased.append(entry.case_id)
    return erased, destroyed


def _check_compatible(settings: Settings, manifest: Manifest) -> None:
    office = settings.shard_applied_for
    if office is not None and office not in manifest.offices:
        # Another office's case files in this office's shard would be served, counted
        # and reported as this office's: the shard holds one office's files only.
        msg = (
            f"the backup holds office(s) {', '.join(manifest.offices)}, the target is the "
            f"shard of office {office} (--office or AKTE_SHARD_OFFICE): restore a backup "
            "into the shard of the office it was taken from"
        )
        raise BackupError(msg)
    if manifest.store != settings.store:
        msg = (
            f"the backup is of a {manifest.store} store, the settings name a "
            f"{settings.store} store (AKTE_STORE)"
        )
        raise BackupError(msg)
    documents = "postgres" if settings.documents_in_postgres else "directory"
    if manifest.document_store != documents:
        msg = (
            f"the backup's documents were in a {manifest.document_store} store, the "
            f"settings name a {documents} store (AKTE_DOCUMENT_STORE)"
        )
        raise BackupError(msg)
    configured = set(master_keys_for(settings).keys)
    missing = sorted(set(manifest.settings.get("master_key_ids", [])) - configured)
    if missing:
        msg = (
            f"the backup's data keys are wrapped with master key(s) {', '.join(missing)}, "
            "which AKTE_MASTER_KEYS does not name: without them no key opens"
        )
        raise BackupError(msg)


# ------------------------------------------------------------ empty target


def check_empty(settings: Settings) -> None:
    """Raise :class:`TargetNotEmpty` naming what the target already holds."""
    held: list[str] = []
    if settings.store == "sqlite":
        for path, tables in (
            (settings.sqlite_path, ("stored_events",)),
            (settings.key_store_file, ("data_keys", "data_key_tombstones")),
        ):
            if path.is_file():
                with sqlite_reading(path) as conn:
                    held += [name for name in tables if sqlite_count(conn, name)]
        if views_file(settings).is_file():
            with sqlite_reading(views_file(settings)) as conn:
                if _positions_past_start(conn.execute, POSITIONS_TABLE):
                    held.append("read models")
    else:
        schema = schema_of(settings)
        with connect(settings) as conn:
            present = set(akte_tables(conn, schema))
            held += [
                name
                for name in (EVENTS_TABLE, KEYS_TABLE, TOMBSTONES_TABLE, DOCUMENTS_TABLE)
                if name in present and count_rows(conn, schema, name)
            ]
            if (
                POSITIONS_TABLE in present
                and conn.execute(
                    sql.SQL("SELECT 1 FROM {} WHERE position > 0 LIMIT 1").format(
                        table(schema, POSITIONS_TABLE)
                    )
                ).fetchone()
            ):
                held.append("read models")
    if not settings.documents_in_postgres and has_files(
        settings.documents_directory, skip_top=frozenset({INCOMING_DIR})
    ):
        held.append("documents")
    if held:
        msg = (
            f"the target store is not empty (it holds {', '.join(held)}); a backup is "
            "restored only into an empty store: point the settings at a new data directory "
            "or schema"
        )
        raise TargetNotEmpty(msg)


def _positions_past_start(execute: Any, name: str) -> bool:
    exists = execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    if exists is None:
        return False
    return execute(f'SELECT 1 FROM "{name}" WHERE position > 0 LIMIT 1').fetchone() is not None


# ------------------------------------------------------------------ SQLite


def _restore_sqlite(
    settings: Settings, source: Path, manifest: Manifest, progress: Progress
) -> None:
    files = [(EVENTS_FILE, settings.sqlite_path), (KEYS_FILE, settings.key_store_file)]
    if manifest.with_views:
        files.append((VIEWS_FILE, views_file(settings)))
    present = [(name, target) for name, target in files if (source / name).is_file()]
    for done, (name, target) in enumerate(present, start=1):
        copy_sqlite(source / name, target, standalone=False)
        target.chmod(0o600)
        progress("databases", done, len(present))


# -------------------------------------------------------------- PostgreSQL


def _restore_postgres(
    settings: Settings, source: Path, manifest: Manifest, progress: Progress
) -> None:
    schema = schema_of(settings)
    # Akte makes its tables as on first start: events, chain, keys, idempotency keys...
    build_service(settings).close()
    if manifest.document_store == "postgres":
        documents = document_store_for(settings)
        try:
            next(iter(documents.entries()), None)  # makes the document tables
        finally:
            documents.close()
    if manifest.with_views:
        _prepare_views(settings)
    with connect(settings) as conn, conn.transaction():
        present = set(akte_tables(conn, schema))
        copies = [copy for copy in manifest.tables if copy.name in present]
        missing = [
            copy.name
            for copy in manifest.tables
            if copy.name not in present and not copy.name.startswith(VIEW_TABLE_PREFIX)
        ]
        if missing:
            msg = (
                f"this Akte makes no table(s) {', '.join(missing)}: restore with the "
                "backup's Akte version"
            )
            raise BackupError(msg)
        # What setting up made (the chain's seal row, the views' start positions) gives
        # way to the backup's rows.
        for copy in copies:
            conn.execute(sql.SQL("TRUNCATE {}").format(table(schema, copy.name)))
        for done, copy in enumerate(copies, start=1):
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary)").format(
                table(schema, copy.name),
                sql.SQL(", ").join(sql.Identifier(column) for column in copy.columns),
            )
            with (
                (source / TABLES_DIR / f"{copy.name}.copy").open("rb") as data,
                conn.cursor().copy(statement) as into,
            ):
                while chunk := data.read(_COPY_CHUNK):
                    into.write(chunk)
            progress("tables", done, len(copies))
        _advance_sequences(conn, schema, [copy.name for copy in copies])


def _prepare_views(settings: Settings) -> None:
    """The read models' tables, made by the engine as on first start."""
    with open_service(settings) as service:
        views = open_views_store(settings)
        writer = views.writer()
        try:
            ProjectionEngine(ApplicationEventLog(service), writer, READ_MODELS).prepare()
        finally:
            writer.close()
            views.close()


def _advance_sequences(conn: Any, schema: str, names: list[str]) -> None:
    """Serial columns continue after the restored rows (the log's notification ids)."""
    rows = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = %s AND column_default LIKE 'nextval(%%'",
        (schema,),
    ).fetchall()
    for name, column in rows:
        if name not in names:
            continue
        conn.execute(
            sql.SQL(
                "SELECT setval(pg_get_serial_sequence(%s, %s), "
                "coalesce(max({column}), 1), max({column}) IS NOT NULL) FROM {table}"
            ).format(column=sql.Identifier(column), table=table(schema, name)),
            (f'"{schema}"."{name}"', column),
        )


# ---------------------------------------------------------------- erasures


def _scan(service: AkteService, topic: str) -> Iterator[tuple[Notification, Any]]:
    position = 0
    while True:
        notifications = service.recorder.select_notifications(
            start=position, limit=_SCAN_PAGE, topics=[topic], inclusive_of_start=False
        )
        for notification in notifications:
            yield notification, service.mapper.to_domain_event(notification)
        if len(notifications) < _SCAN_PAGE:
            return
        position = notifications[-1].id


def erased_with_keys(service: AkteService) -> list[UUID]:
    """Case files the log records as erased for which a key of the file or of a record
    erased with it is still in the key store (a finding: the data is readable again)."""
    keys = service.data_protection.keys
    found: list[UUID] = []
    for notification, event in _scan(service, get_topic(CaseFile.PersonalDataErased)):
        erasure = cast(CaseFile.PersonalDataErased, event)
        case_id = UUID(str(notification.originator_id))
        owners = [str(case_id), *erasure.linked_ids]
        if any(keys.has_key(owner) for owner in owners) and case_id not in found:
            found.append(case_id)
    return found


def reapply_erasures(service: AkteService, case_ids: list[UUID]) -> int:
    """Complete the erasures of ``case_ids`` (destroy the keys again); returns the keys
    destroyed. Completing an erasure records no event (it is recorded already)."""
    destroyed = 0
    for case_id in case_ids:
        case = service.get_case(case_id)
        linked = service.data_protection.linked_records(case_id)
        erased = [
            event
            for event in service.case_events(case_id)
            if isinstance(event, CaseFile.PersonalDataErased)
        ]
        owners = [str(case_id), *linked.same_person, *linked.visitor_parts]
        owners += [owner for event in erased for owner in event.linked_ids if owner not in owners]
        erased_at = case.personal_data_erased_at or service.clock()
        again = service.data_protection.reapply(JournalEntry(erased_at, str(case_id), owners))
        destroyed += len(again)
    return destroyed
