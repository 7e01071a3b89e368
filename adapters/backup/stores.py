"""What backup, restore and drill share about the stores: names, connections, copies.

SQLite files are copied with SQLite's online backup API (one step: one read transaction,
so the copy is the database as of one moment, while writers go on in WAL mode).
PostgreSQL tables are Akte's (``akte_*``) in the settings' schema.
"""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import sql

from adapters.settings import Settings
from adapters.views.store import SQLITE_FILE_NAME, TABLE_PREFIX

TABLE_NAME_PREFIX: Final = "akte_"
"""Every table Akte makes in PostgreSQL starts so (the library's are named after the
application, ``Akte``; the others follow)."""
EVENTS_TABLE: Final = "akte_events"
CHAIN_TABLE: Final = "akte_event_chain"
KEYS_TABLE: Final = "akte_data_keys"
TOMBSTONES_TABLE: Final = "akte_data_key_tombstones"
DOCUMENTS_TABLE: Final = "akte_documents"
VIEW_TABLE_PREFIX: Final = TABLE_PREFIX
POSITIONS_TABLE: Final = TABLE_PREFIX + "projection_positions"
INCOMING_DIR: Final = "incoming"
"""Writes in progress in a document directory: not documents (yet), never copied."""

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: a long step's advance, for a progress line."""


def no_progress(step: str, done: int, total: int) -> None:
    """The default: nobody watches."""


def views_file(settings: Settings) -> Path:
    return settings.data_dir / SQLITE_FILE_NAME


def schema_of(settings: Settings) -> str:
    return settings.postgres_schema or "public"


def connect(settings: Settings, **options: Any) -> psycopg.Connection[Any]:
    """A connection of its own to the settings' PostgreSQL database."""
    return psycopg.connect(
        **settings.postgres_connection_args,  # every listed server; with several, the primary
        dbname=settings.postgres_dbname,
        user=settings.postgres_user,
        password=settings.postgres_password.get_secret_value(),
        connect_timeout=5,
        application_name="akte-backup",
        **options,
    )


def table(schema: str, name: str) -> sql.Composable:
    return sql.Identifier(schema, name)


def akte_tables(conn: psycopg.Connection[Any], schema: str) -> list[str]:
    """Akte's tables in ``schema``, by name."""
    rows = conn.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
        "AND table_type = 'BASE TABLE' AND starts_with(table_name, %s) ORDER BY table_name",
        (schema, TABLE_NAME_PREFIX),
    ).fetchall()
    return [str(row[0]) for row in rows]


def columns_of(conn: psycopg.Connection[Any], schema: str, name: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
        "AND table_name = %s ORDER BY ordinal_position",
        (schema, name),
    ).fetchall()
    return [str(row[0]) for row in rows]


def count_rows(conn: psycopg.Connection[Any], schema: str, name: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table(schema, name))).fetchone()
    return int(row[0]) if row else 0


def copy_sqlite(source: Path, target: Path, *, standalone: bool) -> None:
    """``source`` as of one moment into ``target`` (SQLite's online backup API);
    ``standalone``: a copy in a file of its own, without a write-ahead log beside it
    (a backup), else a live store's file keeps the mode Akte gives it (a restore)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(str(source), timeout=30)) as src,
        closing(sqlite3.connect(str(target), timeout=30)) as dst,
    ):
        # pages=-1: the whole database in one step, inside one read transaction.
        src.backup(dst, pages=-1)
        if standalone:
            dst.execute("PRAGMA journal_mode = DELETE")


@contextmanager
def sqlite_reading(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(str(path), timeout=30)) as conn:
        yield conn


def sqlite_count(conn: sqlite3.Connection, name: str) -> int:
    """Rows of ``name``; 0 when there is no such table."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()
    return int(row[0])


def copy_tree(
    source: Path,
    target: Path,
    *,
    step: str,
    progress: Progress,
    skip_top: frozenset[str] = frozenset(),
) -> tuple[int, int]:
    """Copy the files below ``source`` byte for byte; returns (files, bytes).

    A file that disappears while the copy runs (the orphan sweep took it) is left out.
    """
    if not source.is_dir():
        return 0, 0
    paths = [
        path
        for path in sorted(source.rglob("*"))
        if path.is_file()
        and not path.is_symlink()
        and path.relative_to(source).parts[0] not in skip_top
    ]
    copied = size = 0
    for done, path in enumerate(paths, start=1):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            shutil.copyfile(path, destination)
        except FileNotFoundError:
            continue
        destination.chmod(0o600)
        copied += 1
        size += destination.stat().st_size
        progress(step, done, len(paths))
    return copied, size


def has_files(root: Path, *, skip_top: frozenset[str] = frozenset()) -> bool:
    if not root.is_dir():
        return False
    return any(
        path.is_file() and path.relative_to(root).parts[0] not in skip_top
        for path in root.rglob("*")
    )
