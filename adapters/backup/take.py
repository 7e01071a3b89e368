"""Take a backup of a running store: events, keys, documents, settings; views if asked.

**The order is the point.** Akte makes a data key before the first event that needs it,
and stores a document before the event that references it. So the event log is copied
first, as of one moment (its head goes into the manifest), and the keys and the documents
after it: every key and every document an event of the copy needs was there before that
event, and so is in the later copies. The later copies may hold more (keys and documents
of events after the head): harmless, the orphan sweep and unused keys protect nothing.
Copied the other way round, an event written in between would lack its key in the backup
and be unreadable for ever. Read models (``--with-views``) are copied *before* the log, so
they never run ahead of it; after a restore they catch up from their positions.

- SQLite: views, events, keys, each with SQLite's online backup API (one read transaction
  per file), then the document directory.
- PostgreSQL: one ``REPEATABLE READ`` read-only transaction copies every Akte table of the
  schema (events, chain, keys, documents in PostgreSQL, views if asked) with ``COPY``, so
  they are consistent among themselves; a document directory is copied after it.

An erasure between the copy of the log and that of the keys leaves its key destroyed in
the backup while the log does not record the erasure yet: the person's data is unreadable
in the backup, which is what the erasure wanted.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import psycopg
from eventsourcing.utils import get_topic
from psycopg import IsolationLevel, sql

from adapters.backup.manifest import (
    DOCUMENTS_DIR,
    EVENTS_FILE,
    KEYS_FILE,
    SETTINGS_DIR,
    TABLES_DIR,
    VIEWS_FILE,
    BackupError,
    Manifest,
    TableCopy,
    akte_version,
    write_manifest,
)
from adapters.backup.stores import (
    CHAIN_TABLE,
    DOCUMENTS_TABLE,
    EVENTS_TABLE,
    INCOMING_DIR,
    KEYS_TABLE,
    TOMBSTONES_TABLE,
    VIEW_TABLE_PREFIX,
    Progress,
    akte_tables,
    columns_of,
    connect,
    copy_sqlite,
    copy_tree,
    count_rows,
    no_progress,
    schema_of,
    sqlite_count,
    sqlite_reading,
    table,
    views_file,
)
from adapters.settings import Settings
from domain.case_file import CaseFile
from service import AkteService

_SCAN_PAGE = 1000


def take_backup(
    settings: Settings,
    dest: Path,
    *,
    service: AkteService,
    with_views: bool = False,
    progress: Progress = no_progress,
    now: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
) -> Manifest:
    """Back up the store of ``settings`` (served by ``service``) into the new or empty
    directory ``dest``; returns the manifest written there last."""
    _prepare_destination(dest)
    if settings.documents_in_postgres and settings.store == "sqlite":
        msg = "backup of SQLite events with documents in PostgreSQL is not supported"
        raise BackupError(msg)
    manifest = Manifest(
        store=settings.store,
        document_store="postgres" if settings.documents_in_postgres else "directory",
        head=0,
        head_anchor=None,
        counts={},
        offices=[],
        settings={},
        with_views=with_views,
        akte_version=akte_version(),
        created_at=now().isoformat(),
    )
    if settings.store == "sqlite":
        _sqlite_stores(settings, dest, manifest, progress)
    else:
        _postgres_snapshot(settings, dest, manifest, progress)
    if not settings.documents_in_postgres:
        manifest.order.append("documents")
        files, size = copy_tree(
            settings.documents_directory,
            dest / DOCUMENTS_DIR,
            step="documents",
            progress=progress,
            skip_top=frozenset({INCOMING_DIR}),
        )
        manifest.counts["document_files"] = files
        manifest.counts["document_bytes"] = size
    manifest.settings = _office_settings(settings, dest, manifest)
    manifest.offices = _offices(service, settings, manifest.head)
    progress("checksums", 0, 1)
    write_manifest(dest, manifest)
    progress("checksums", 1, 1)
    return manifest


def _prepare_destination(dest: Path) -> None:
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        msg = f"{dest} exists and is not an empty directory; a backup goes into a new one"
        raise BackupError(msg)
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    # The backup holds personal data (sealed) and the keys that open it.
    dest.chmod(0o700)


# ------------------------------------------------------------------- SQLite


def _sqlite_stores(settings: Settings, dest: Path, manifest: Manifest, progress: Progress) -> None:
    steps = (["views"] if manifest.with_views else []) + ["events", "keys"]
    manifest.order.extend(steps)
    total = len(steps)
    done = 0
    if manifest.with_views:
        source = views_file(settings)
        if source.is_file():
            copy_sqlite(source, dest / VIEWS_FILE, standalone=True)
        else:
            manifest.with_views = False
        done += 1
        progress("databases", done, total)
    if not settings.sqlite_path.is_file():
        msg = f"no event store at {settings.sqlite_path}"
        raise BackupError(msg)
    copy_sqlite(settings.sqlite_path, dest / EVENTS_FILE, standalone=True)
    done += 1
    progress("databases", done, total)
    with sqlite_reading(dest / EVENTS_FILE) as events:
        manifest.counts["events"] = sqlite_count(events, "stored_events")
        row = events.execute(
            "SELECT notification_id, log_hash FROM event_chain "
            "ORDER BY notification_id DESC LIMIT 1"
        ).fetchone()
    _set_head(manifest, row)
    if settings.key_store_file.is_file():
        copy_sqlite(settings.key_store_file, dest / KEYS_FILE, standalone=True)
        with sqlite_reading(dest / KEYS_FILE) as keys:
            manifest.counts["keys"] = sqlite_count(keys, "data_keys")
            manifest.counts["tombstones"] = sqlite_count(keys, "data_key_tombstones")
            manifest.settings["master_key_ids"] = _master_key_ids(
                keys.execute("SELECT DISTINCT master_key_id FROM data_keys").fetchall()
            )
    done += 1
    progress("databases", done, total)


def _set_head(manifest: Manifest, row: Any) -> None:
    if row is None:
        manifest.head, manifest.head_anchor = 0, None
        return
    head, log_hash = int(row[0]), bytes(row[1])
    manifest.head = head
    manifest.head_anchor = f"{head}:{log_hash.hex()}"


def _master_key_ids(rows: list[Any]) -> list[str]:
    return sorted(str(row[0]) for row in rows)


# --------------------------------------------------------------- PostgreSQL


def _postgres_snapshot(
    settings: Settings, dest: Path, manifest: Manifest, progress: Progress
) -> None:
    schema = schema_of(settings)
    manifest.schema = schema
    manifest.order.append("tables (one snapshot: events, keys, documents, views)")
    (dest / TABLES_DIR).mkdir(mode=0o700)
    with connect(settings) as conn:
        conn.isolation_level = IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        with conn.transaction():
            # The snapshot is taken by the first statement and holds for every COPY.
            names = [
                name
                for name in akte_tables(conn, schema)
                if manifest.with_views or not name.startswith(VIEW_TABLE_PREFIX)
            ]
            if EVENTS_TABLE not in names:
                msg = f"schema {schema} holds no event table"
                raise BackupError(msg)
            for done, name in enumerate(names, start=1):
                columns = columns_of(conn, schema, name)
                rows = count_rows(conn, schema, name)
                _copy_out(conn, schema, name, columns, dest / TABLES_DIR / f"{name}.copy")
                manifest.tables.append(TableCopy(name=name, columns=columns, rows=rows))
                progress("tables", done, len(names))
            rows_of = {copy.name: copy.rows for copy in manifest.tables}
            manifest.counts["events"] = rows_of[EVENTS_TABLE]
            manifest.counts["keys"] = rows_of.get(KEYS_TABLE, 0)
            manifest.counts["tombstones"] = rows_of.get(TOMBSTONES_TABLE, 0)
            if DOCUMENTS_TABLE in rows_of:
                manifest.counts["documents"] = rows_of[DOCUMENTS_TABLE]
            row = conn.execute(
                sql.SQL(
                    "SELECT notification_id, log_hash FROM {} ORDER BY notification_id DESC LIMIT 1"
                ).format(table(schema, CHAIN_TABLE))
            ).fetchone()
            _set_head(manifest, row)
            if KEYS_TABLE in rows_of:
                manifest.settings["master_key_ids"] = _master_key_ids(
                    conn.execute(
                        sql.SQL("SELECT DISTINCT master_key_id FROM {}").format(
                            table(schema, KEYS_TABLE)
                        )
                    ).fetchall()
                )
    manifest.with_views = manifest.with_views and any(
        copy.name.startswith(VIEW_TABLE_PREFIX) for copy in manifest.tables
    )


def _copy_out(
    conn: psycopg.Connection[Any], schema: str, name: str, columns: list[str], target: Path
) -> None:
    statement = sql.SQL("COPY {} ({}) TO STDOUT (FORMAT binary)").format(
        table(schema, name), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out, conn.cursor().copy(statement) as copy:
        for data in copy:
            out.write(data)


# ------------------------------------------------------------- the office


def _office_settings(settings: Settings, dest: Path, manifest: Manifest) -> dict[str, Any]:
    """The settings a restore must match or reproduce (no secrets: master keys by id
    only), and the files the settings name, copied beside the stores."""
    kept: dict[str, Any] = dict(manifest.settings)
    for name in (
        "default_office_id",
        "office_name",
        "office_address",
        "office_time_zone",
        "transcoder",
        "personal_data_encryption",
        "snapshot_interval",
        "shard_by_office",
        "offices",
        "shard_office",
        "report_recorded_since",
        "postgres_schema",
    ):
        kept[name] = getattr(settings, name)
    files: dict[str, str] = {}
    for name in ("staff_file", "retention_rules_path"):
        path: Path | None = getattr(settings, name)
        if path is not None and path.is_file():
            (dest / SETTINGS_DIR).mkdir(exist_ok=True, mode=0o700)
            copy = dest / SETTINGS_DIR / f"{name}{path.suffix}"
            shutil.copyfile(path, copy)
            files[name] = copy.relative_to(dest).as_posix()
    kept["files"] = files
    return kept


def _offices(service: AkteService, settings: Settings, head: int) -> list[str]:
    """The offices whose case files the backed-up log holds (and the default office)."""
    offices = {settings.default_office_id}
    topic = get_topic(CaseFile.Opened)
    position = 0
    while position < head:
        try:
            notifications = service.recorder.select_notifications(
                start=position,
                limit=_SCAN_PAGE,
                stop=head,
                topics=[topic],
                inclusive_of_start=False,
            )
        except (psycopg.Error, sqlite3.Error) as error:
            msg = f"the event store failed while listing offices: {type(error).__name__}"
            raise BackupError(msg) from None
        for notification in notifications:
            event = cast(CaseFile.Opened, service.mapper.to_domain_event(notification))
            offices.add(str(event.office_id))
        if len(notifications) < _SCAN_PAGE:
            break
        position = notifications[-1].id
    return sorted(offices)
