"""The views store's SQLite file (adapters/views/store.py): a connection opened while
another one writes the first tables of a new file waits for it instead of failing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from adapters.views.store import SqliteViewsStore


def test_a_reader_opened_while_a_new_file_is_written_waits_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "views.sqlite3"
    first = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # A new file, not in WAL mode yet, with a write under way: SQLite refuses to switch
    # it at once ("database is locked"), without waiting.
    first.execute("BEGIN IMMEDIATE")
    first.execute("CREATE TABLE made_first (x INTEGER)")
    done = threading.Timer(0.2, lambda: first.execute("COMMIT"))
    done.start()
    store = SqliteViewsStore(path)
    try:
        with store.reader() as session:
            assert session is not None
        mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        done.join()
        store.close()
        first.close()
