"""Stores whose recorded schema is newer than this release: what a downgrade leaves."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from adapters.store.migrations import VERSIONS_TABLE


def record_a_newer_keys_schema(key_store_file: Path) -> None:
    """Record version 7 of the SQLite keys store, as a later release would have: every
    command that opens the store must refuse it (exit 7), never migrate or use it."""
    with sqlite3.connect(key_store_file) as conn:
        conn.execute(
            f"INSERT INTO {VERSIONS_TABLE} VALUES ('keys', 7, '2030-01-01', '9.0.0', 'later')"
        )
