"""Versioned schemas of Akte's own tables, and the numbered steps between the versions.

Every store keeps a table ``akte_schema_versions`` (``component``, ``version``,
``applied_at``, ``release``, ``note``; one row per version reached, so it is also the
history of the upgrades): the events store (the library's events, the hash chain, the
idempotency keys), the key store, the views store (read-model tables, positions) and the
PostgreSQL document store. On SQLite each of these is a file of its own with its own
table; on PostgreSQL they share the schema and its one table, a row per component.

A component's version is the highest row. Without a row, a component whose tables exist
was written by the release before versions existed: it is **version 1** (today's layout,
recorded as "recognised"). Without rows and without tables the store is new: the code
creates the latest layout, so it is stamped with the latest version at once.

A **step** brings a component from version ``n - 1`` to ``n``: a function, idempotent
(``IF NOT EXISTS``; it also copes with tables that do not exist yet), run in one
transaction together with the row that records it. ``additive`` steps (a new table or
index, nothing removed or rewritten) run on every start; the others only through ``akte
migrate``, after a backup. A store at a version this code does not know is refused
(:class:`StoreNewerThanCode`): the code would misread it.

The caller serialises: :func:`adapters.bootstrap.migrate_stores` and
:func:`adapters.bootstrap.build_service` hold the set-up lock (a ``flock`` beside the
SQLite file, an advisory lock on the PostgreSQL schema) around everything here, so
concurrent starts apply each step once.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from adapters.store.kept_history_shelf import create_statement, shelf_table

VERSIONS_TABLE: Final = "akte_schema_versions"
Dialect = Literal["sqlite", "postgres"]


# ------------------------------------------------------------------ databases


class SqliteDatabase:
    """One SQLite file of the store."""

    dialect: Final[Dialect] = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"SQLite file {path}"
        self._connection: sqlite3.Connection | None = None

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        return self._connection

    def table(self, name: str) -> str:
        return '"' + name + '"'

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._connect().execute(statement, params).fetchall()

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self._connect().execute(statement, params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        connection = self._connect()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")

    def table_exists(self, name: str) -> bool:
        if not self.exists:
            return False
        return bool(
            self.fetch("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
        )

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class PostgresDatabase:
    """The store's PostgreSQL schema, over a connection in autocommit mode (the caller's)."""

    dialect: Final[Dialect] = "postgres"

    def __init__(self, connection: psycopg.Connection[Any], schema: str, where: str) -> None:
        self.connection = connection
        self.schema = schema
        self.where = where
        self.exists = True

    def table(self, name: str) -> str:
        return (
            sql.SQL("{}.{}")
            .format(sql.Identifier(self.schema), sql.Identifier(name))
            .as_string(self.connection)
        )

    def fetch(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return list(self.connection.execute(statement.encode(), params).fetchall())

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        self.connection.execute(statement.encode(), params)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self.connection.transaction():
            yield

    def table_exists(self, name: str) -> bool:
        return bool(
            self.fetch(
                "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = %s AND tablename = %s",
                (self.schema, name),
            )
        )

    def close(self) -> None:
        pass  # the caller's connection


Database = SqliteDatabase | PostgresDatabase


# ---------------------------------------------------------- components, steps


@dataclass(frozen=True)
class Step:
    version: int
    description: str
    apply: Callable[[Database], None]
    additive: bool = True


@dataclass(frozen=True)
class Component:
    """A store's set of Akte tables with one version between them."""

    name: str
    marker: Callable[[Dialect], str]
    """The table whose presence says the component's tables were created (version 1)."""
    steps: tuple[Step, ...] = field(default=())

    @property
    def latest(self) -> int:
        return max((step.version for step in self.steps), default=1)


def _key_index_by_master_key(db: Database) -> None:
    """Counting the data keys per master key (``akte keys status``, ``akte keys rotate``)
    reads the index alone instead of every wrapped key; the key store's create code makes
    it too (new stores)."""
    table = "data_keys" if db.dialect == "sqlite" else "akte_data_keys"
    if not db.table_exists(table):
        return
    db.execute(
        f"CREATE INDEX IF NOT EXISTS {table}_master_key_id ON {db.table(table)} (master_key_id)"
    )


def _kept_histories_beside_snapshots(db: Database) -> None:
    """Long case files' histories kept sealed beside the snapshots
    (:mod:`adapters.store.kept_history_shelf`); the service's start makes the table too
    (new stores)."""
    snapshots = "stored_snapshots" if db.dialect == "sqlite" else "akte_snapshots"
    if not db.table_exists(snapshots):
        return
    db.execute(create_statement(db.dialect, db.table(shelf_table(snapshots))))


EVENTS: Final = Component(
    "events",
    lambda dialect: "stored_events" if dialect == "sqlite" else "akte_events",
    (
        Step(
            2,
            "long case files' histories kept beside the snapshots",
            _kept_histories_beside_snapshots,
        ),
    ),
)
KEYS: Final = Component(
    "keys",
    lambda dialect: "data_keys" if dialect == "sqlite" else "akte_data_keys",
    (Step(2, "index of the data keys by master key", _key_index_by_master_key),),
)
VIEWS: Final = Component("views", lambda dialect: "akte_view_projection_positions")
DOCUMENTS: Final = Component("documents", lambda dialect: "akte_documents")
COMPONENTS: Final = (EVENTS, KEYS, VIEWS, DOCUMENTS)
"""Every component and its steps, in the order they are migrated."""


# ------------------------------------------------------------------ state


class SchemaError(Exception):
    """The store's schema does not fit this release; the message says what to do."""


class StoreNewerThanCode(SchemaError):
    pass


class MigrationNeeded(SchemaError):
    pass


@dataclass(frozen=True)
class Status:
    component: str
    where: str
    version: int | None
    """The recorded version; ``None``: nothing recorded."""
    has_tables: bool
    latest: int
    pending: tuple[Step, ...]

    @property
    def new(self) -> bool:
        return self.version is None and not self.has_tables

    @property
    def effective(self) -> int:
        """The version the store is at: unrecorded with tables is version 1."""
        if self.version is not None:
            return self.version
        return 1 if self.has_tables else self.latest


@dataclass(frozen=True)
class Change:
    component: str
    where: str
    version: int
    note: str


def _versions_table(db: Database) -> str:
    time_type = "TEXT" if db.dialect == "sqlite" else "timestamptz"
    return (
        f"CREATE TABLE IF NOT EXISTS {db.table(VERSIONS_TABLE)} ("
        "component TEXT NOT NULL, version INTEGER NOT NULL, "
        f"applied_at {time_type} NOT NULL, release TEXT NOT NULL, note TEXT NOT NULL, "
        "PRIMARY KEY (component, version))"
    )


def recorded_versions(db: Database) -> dict[str, int]:
    """Each component's highest recorded version in this store."""
    if not db.table_exists(VERSIONS_TABLE):
        return {}
    rows = db.fetch(
        f"SELECT component, MAX(version) FROM {db.table(VERSIONS_TABLE)} GROUP BY component"
    )
    return {str(name): int(version) for name, version in rows}


def status(db: Database, component: Component) -> Status:
    version = recorded_versions(db).get(component.name)
    has_tables = db.table_exists(component.marker(db.dialect))
    result = Status(component.name, db.where, version, has_tables, component.latest, ())
    pending = tuple(step for step in component.steps if step.version > result.effective)
    return Status(component.name, db.where, version, has_tables, component.latest, pending)


def refuse_newer(states: Sequence[Status], release: str) -> None:
    for state in states:
        if state.effective > state.latest:
            msg = (
                f"the {state.component} store ({state.where}) is at schema version "
                f"{state.effective}, newer than this release of Akte ({release}) knows "
                f"(up to {state.latest}): run the release that wrote it, or restore the "
                "backup taken before the upgrade"
            )
            raise StoreNewerThanCode(msg)


def _record(db: Database, component: str, version: int, release: str, note: str) -> None:
    p = "?" if db.dialect == "sqlite" else "%s"
    now = datetime.now(tz=UTC)
    db.execute(
        f"INSERT INTO {db.table(VERSIONS_TABLE)} "
        f"(component, version, applied_at, release, note) VALUES ({p}, {p}, {p}, {p}, {p})",
        (component, version, now.isoformat() if db.dialect == "sqlite" else now, release, note),
    )


def upgrade(
    db: Database,
    component: Component,
    *,
    release: str,
    dry_run: bool = False,
    additive_only: bool = False,
) -> list[Change]:
    """Bring one component of one store to the latest version; what was (or, with
    ``dry_run``, would be) done. The caller holds the set-up lock."""
    state = status(db, component)
    refuse_newer([state], release)
    if additive_only:
        blocking = [step for step in state.pending if not step.additive]
        if blocking:
            first = blocking[0]
            msg = (
                f"the {component.name} store ({db.where}) needs migration step "
                f"{first.version} ({first.description}), which does not run on start: "
                "take a backup (akte backup), then run akte migrate"
            )
            raise MigrationNeeded(msg)
    changes: list[Change] = []
    if state.version is None:
        note = "created" if state.new else "recognised (tables of the release before versions)"
        changes.append(Change(component.name, db.where, state.effective, note))
        if not dry_run:
            with db.transaction():
                db.execute(_versions_table(db))
                _record(db, component.name, state.effective, release, note)
    for step in state.pending:
        changes.append(Change(component.name, db.where, step.version, step.description))
        if not dry_run:
            with db.transaction():
                step.apply(db)
                _record(db, component.name, step.version, release, step.description)
    return changes


def upgrade_all(
    targets: Sequence[tuple[Component, Database]],
    *,
    release: str,
    dry_run: bool = False,
    additive_only: bool = False,
) -> list[Change]:
    """Every component: first refuse if any store is newer than the code (before touching
    any), then upgrade each in turn."""
    refuse_newer([status(db, component) for component, db in targets], release)
    changes: list[Change] = []
    for component, db in targets:
        changes += upgrade(
            db, component, release=release, dry_run=dry_run, additive_only=additive_only
        )
    return changes
