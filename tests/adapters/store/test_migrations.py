"""Schema versions and migrations (adapters/store/migrations.py, with the bootstrap's
set-up lock): on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.bootstrap import (
    build_service,
    document_store_for,
    migrate_stores,
    open_service,
    open_views_store,
)
from adapters.settings import Settings
from adapters.store.migrations import (
    EVENTS,
    KEYS,
    VERSIONS_TABLE,
    Component,
    Database,
    MigrationNeeded,
    SqliteDatabase,
    Step,
    StoreNewerThanCode,
    upgrade,
)
from adapters.views.runner import ApplicationEventLog
from projections.engine import ProjectionEngine
from projections.read_models import READ_MODELS
from tests.conftest import POSTGRES

SQLITE_FILES = {"events": "akte.sqlite3", "keys": "akte-keys.sqlite3", "views": "views.sqlite3"}


def _pg(settings: Settings) -> psycopg.Connection[tuple[Any, ...]]:
    conn = psycopg.connect(autocommit=True, **POSTGRES)
    conn.execute(f'SET search_path TO "{settings.postgres_schema}"')
    return conn


def versions(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    """Every recorded row, per component: (version, applied_at, release, note)."""
    rows: list[tuple[Any, ...]] = []
    if settings.store == "sqlite":
        for name in SQLITE_FILES.values():
            with sqlite3.connect(settings.data_dir / name) as conn:
                if conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = ?", (VERSIONS_TABLE,)
                ).fetchall():
                    rows += conn.execute(f"SELECT * FROM {VERSIONS_TABLE}").fetchall()
    else:
        with _pg(settings) as conn:
            if conn.execute("SELECT to_regclass(%s)", (VERSIONS_TABLE,)).fetchone() != (None,):
                rows = conn.execute(f"SELECT * FROM {VERSIONS_TABLE}").fetchall()
    found: dict[str, list[tuple[Any, ...]]] = {}
    for component, *rest in sorted(rows, key=lambda row: (row[0], row[1])):
        found.setdefault(component, []).append(tuple(rest))
    return found


def version_numbers(settings: Settings) -> dict[str, list[int]]:
    return {name: [row[0] for row in rows] for name, rows in versions(settings).items()}


def key_index_plan(settings: Settings) -> str:
    """How the store counts the data keys per master key."""
    if settings.store == "sqlite":
        with sqlite3.connect(settings.key_store_file) as conn:
            plan = conn.execute(
                "EXPLAIN QUERY PLAN SELECT master_key_id, count(*) FROM data_keys "
                "GROUP BY master_key_id"
            ).fetchall()
        return " ".join(str(row[-1]) for row in plan)
    with _pg(settings) as conn:
        # An index-only scan is what the planner picks with the index and few rows cached;
        # the index's existence is what the step guarantees.
        found = conn.execute(
            "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s",
            (settings.postgres_schema, "akte_data_keys"),
        ).fetchall()
        return " ".join(row[0] for row in found)


def store_of_this_release(settings: Settings) -> None:
    """Events, keys, documents and the read models' tables, as a running office has them
    (the document store makes its tables on first use)."""
    documents = document_store_for(settings)
    try:
        list(documents.entries())
    finally:
        documents.close()
    with open_service(settings) as service:
        views = open_views_store(settings)
        writer = views.writer()
        try:
            ProjectionEngine(ApplicationEventLog(service), writer, READ_MODELS).catch_up()
        finally:
            writer.close()
            views.close()


def as_before_versions(settings: Settings) -> None:
    """Turn a store of this release into one of the release before versions existed:
    the same tables, no versions table, no index of the keys' step 2, no table of the
    events' step 2."""
    if settings.store == "sqlite":
        for name in SQLITE_FILES.values():
            with sqlite3.connect(settings.data_dir / name) as conn:
                conn.execute(f"DROP TABLE IF EXISTS {VERSIONS_TABLE}")
                conn.execute("DROP INDEX IF EXISTS data_keys_master_key_id")
                conn.execute("DROP TABLE IF EXISTS stored_kept_histories")
        return
    with _pg(settings) as conn:
        conn.execute(f"DROP TABLE {VERSIONS_TABLE}")
        conn.execute("DROP INDEX akte_data_keys_master_key_id")
        conn.execute("DROP TABLE akte_kept_histories")


def latest(settings: Settings) -> dict[str, list[int]]:
    expected = {"events": [2], "keys": [2], "views": [1]}
    if settings.store == "postgres":
        expected["documents"] = [1]
    return expected


def test_a_new_store_is_stamped_at_the_latest_versions(settings: Settings) -> None:
    build_service(settings).close()

    assert version_numbers(settings) == latest(settings)
    assert {rows[-1][3] for rows in versions(settings).values()} == {"created"}
    assert "master_key_id" in key_index_plan(settings)
    assert migrate_stores(settings) == []


def test_a_store_without_versions_is_recognised_as_version_1_and_migrated(
    settings: Settings,
) -> None:
    store_of_this_release(settings)
    as_before_versions(settings)
    assert "master_key_id" not in key_index_plan(settings)

    planned = migrate_stores(settings, dry_run=True)
    assert version_numbers(settings) == {}  # a dry run changes nothing
    changes = migrate_stores(settings)

    assert [(c.component, c.version, c.note) for c in changes] == [
        (c.component, c.version, c.note) for c in planned
    ]
    recognised = {c.component for c in changes if c.note.startswith("recognised")}
    assert recognised == set(latest(settings))
    assert [(c.component, c.version) for c in changes if c.version > 1] == [
        ("events", 2),
        ("keys", 2),
    ]
    assert version_numbers(settings) == {
        name: [1, 2] if name in ("events", "keys") else [1] for name in latest(settings)
    }
    assert "master_key_id" in key_index_plan(settings)
    assert kept_histories_table_exists(settings)


def kept_histories_table_exists(settings: Settings) -> bool:
    if settings.store == "sqlite":
        with sqlite3.connect(settings.data_dir / SQLITE_FILES["events"]) as conn:
            found = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'stored_kept_histories'"
            ).fetchall()
        return bool(found)
    with _pg(settings) as conn:
        row = conn.execute("SELECT to_regclass('akte_kept_histories')").fetchone()
    return row is not None and row[0] is not None


def test_migrating_twice_changes_nothing(settings: Settings) -> None:
    store_of_this_release(settings)
    as_before_versions(settings)
    migrate_stores(settings)
    before = versions(settings)

    assert migrate_stores(settings) == []
    build_service(settings).close()  # a start migrates too

    assert versions(settings) == before


def _stamp_newer(settings: Settings, version: int) -> None:
    if settings.store == "sqlite":
        with sqlite3.connect(settings.key_store_file) as conn:
            conn.execute(
                f"INSERT INTO {VERSIONS_TABLE} VALUES ('keys', ?, '2030-01-01', '9.9', 'x')",
                (version,),
            )
        return
    with _pg(settings) as conn:
        conn.execute(
            f"INSERT INTO {VERSIONS_TABLE} VALUES ('keys', %s, now(), '9.9', 'x')", (version,)
        )


def test_a_store_newer_than_the_code_is_refused(settings: Settings) -> None:
    build_service(settings).close()
    _stamp_newer(settings, 3)
    before = versions(settings)

    with pytest.raises(StoreNewerThanCode) as refused:
        build_service(settings)
    with pytest.raises(StoreNewerThanCode):
        migrate_stores(settings, dry_run=True)

    message = str(refused.value)
    assert "keys store" in message
    assert "schema version 3" in message
    assert "up to 2" in message
    assert versions(settings) == before


def test_concurrent_migrations_apply_each_step_once(settings: Settings) -> None:
    build_service(settings).close()
    applied: list[str] = []

    def counted(db: Database) -> None:
        applied.append(threading.current_thread().name)

    events_v3 = Component(EVENTS.name, EVENTS.marker, (*EVENTS.steps, Step(3, "counted", counted)))
    start = threading.Barrier(2)
    results: dict[str, Any] = {}

    def migrate() -> None:
        start.wait()
        try:
            results[threading.current_thread().name] = migrate_stores(
                settings, components=(events_v3,)
            )
        except Exception as error:  # reported by the assertion below
            results[threading.current_thread().name] = error

    threads = [threading.Thread(target=migrate, name=f"m{i}") for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(applied) == 1
    assert sorted(len(changes) for changes in results.values()) == [0, 1]
    assert version_numbers(settings)["events"] == [2, 3]


# ------------------------------------------------------------ steps, one store


def _things(tmp_path: Path, *steps: Step) -> tuple[SqliteDatabase, Component]:
    db = SqliteDatabase(tmp_path / "things.sqlite3")
    db.execute("CREATE TABLE things (id INTEGER PRIMARY KEY)")
    return db, Component("things", lambda dialect: "things", steps)


def _add_column(db: Database) -> None:
    db.execute("ALTER TABLE things ADD COLUMN label TEXT")


def test_a_step_that_is_not_additive_waits_for_akte_migrate(tmp_path: Path) -> None:
    db, things = _things(tmp_path, Step(2, "rewrite the things", _add_column, additive=False))

    with pytest.raises(MigrationNeeded, match="akte migrate"):
        upgrade(db, things, release="test", additive_only=True)
    assert not db.table_exists(VERSIONS_TABLE)

    changes = upgrade(db, things, release="test")
    assert [c.version for c in changes] == [1, 2]
    assert db.fetch("SELECT label FROM things") == []


def test_a_failing_step_leaves_its_version_and_tables_as_they_were(tmp_path: Path) -> None:
    def half_done(db: Database) -> None:
        _add_column(db)
        raise RuntimeError("step failed")

    db, things = _things(tmp_path, Step(2, "add a label", half_done))

    with pytest.raises(RuntimeError):
        upgrade(db, things, release="test")

    assert db.fetch(f"SELECT version FROM {VERSIONS_TABLE}") == [(1,)]
    assert [row[1] for row in db.fetch("PRAGMA table_info(things)")] == ["id"]


def test_the_key_store_step_is_additive_and_the_latest_is_two() -> None:
    assert KEYS.latest == 2
    assert all(step.additive for step in KEYS.steps)
