"""Rebuilding a read model without taking it away: a new generation of its tables is built
beside the one in service, catches up with the log, and replaces it in one transaction.

Readers always query a read model's own table names (``<table>``): whatever they see
there is the generation in service, complete. A rebuild (:func:`rebuild_beside`):

1. takes the read model's rebuild lock (not the lock of the worker that follows it: that
   worker keeps the generation in service up to date meanwhile);
2. notes in the registry (``read_model_generations``: per read model, the generation in
   service and the one being built) that generation *N* is being built, after dropping
   what an unfinished build left behind (its ``<table>__b<N>`` tables and position);
3. builds generation *N* into ``<table>__b<N>`` tables with its own position (in
   ``projection_build_positions``), batch by batch as any rebuild, and catches up to the
   head of the log;
4. switches, in one transaction: locks the read model's position in service (a worker's
   batch in progress finishes first, the next waits), applies the last few events to
   generation *N*, takes the tables in service (readers using them finish first, see
   :meth:`~projections.storage.ViewsWriter.lock_tables`), drops them, renames
   ``<table>__b<N>`` to ``<table>``, and sets the position and version in service to those
   of generation *N*. A reader's query waiting for the tables then runs on the new ones.

Interrupted at any point before the switch commits (Ctrl-C, ``kill -9``, a failed
batch), the generation in service is untouched and keeps serving; the next rebuild drops
the leftovers. After the switch, the worker that follows the read model finds its
position moved (compare-and-set) and goes on from the new one; if the new generation is
of a newer version than the worker's code, the worker leaves it alone
(:class:`~projections.errors.ReadModelNewer`): a new version of a read model deploys by
running the new release's ``akte projections rebuild`` while the old workers still run,
then restarting the workers.

Generation numbers only grow (indexes keep their ``__b<N>`` names after the rename,
and index names must be unique), so a build never meets an index of an earlier one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Final

from projections.engine import DEFAULT_BATCH_SIZE, DEFAULT_CACHED_ROWS, Progress, ProjectionEngine
from projections.errors import ProjectionBusy, ReadModelNewer
from projections.positions import (
    GENERATIONS_SCHEMA,
    GENERATIONS_TABLE,
    POSITIONS_TABLE,
    Generation,
    PositionsSql,
    StoredPosition,
    read_generations,
    read_positions,
)
from projections.projection import Projection
from projections.storage import (
    Column,
    ColumnType,
    Dialect,
    EventLog,
    TableSchema,
    ViewsWriter,
)

BUILD_POSITIONS_TABLE: Final = "projection_build_positions"
FINAL_CATCH_UP_EVENTS: Final = 2000
"""Catch up until fewer events than this are left before switching: the rest is applied
inside the switch, while the read model's worker and its readers wait."""


def build_table_name(name: str, generation: int) -> str:
    """The logical name of table ``name`` in generation ``generation`` while it is built."""
    return f"{name}__b{generation}"


def rebuild_lock_name(name: str) -> str:
    """The lock a rebuild of read model ``name`` holds (not the lock of its worker)."""
    return f"{name}.rebuild"


class BuildWriter:
    """A writer whose logical names lead to a generation being built: the read models'
    tables to ``<table>__b<N>``, the positions table to the build positions table. An
    ordinary :class:`~projections.engine.ProjectionEngine` writing through it thus builds
    generation *N* without knowing, and never touches what is in service.

    ``joined``: transactions are the caller's (the switch applies the last events inside
    its own)."""

    def __init__(self, writer: ViewsWriter, names: Mapping[str, str]) -> None:
        self._writer = writer
        self._names = {**names, POSITIONS_TABLE: BUILD_POSITIONS_TABLE}
        self.joined = False

    def _name(self, name: str) -> str:
        return self._names.get(name, name)

    @property
    def dialect(self) -> Dialect:
        return self._writer.dialect

    @property
    def param(self) -> str:
        return self._writer.param

    @property
    def lock_row_suffix(self) -> str:
        return self._writer.lock_row_suffix

    def table(self, name: str) -> str:
        return self._writer.table(self._name(name))

    def encoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        return self._writer.encoder(column_type)

    def decoder(self, column_type: ColumnType) -> Callable[[Any], Any] | None:
        return self._writer.decoder(column_type)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._writer.fetch(sql, params)

    def table_exists(self, name: str) -> bool:
        return self._writer.table_exists(self._name(name))

    def transaction(self) -> AbstractContextManager[None]:
        return nullcontext() if self.joined else self._writer.transaction()

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self._writer.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._writer.executemany(sql, rows)

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        self._writer.insert_rows(self._name(table), columns, rows)

    def create_table(self, schema: TableSchema) -> None:
        self._writer.create_table(replace(schema, name=self._name(schema.name)))

    def drop_table(self, name: str) -> None:
        self._writer.drop_table(self._name(name))

    def rename_table(self, name: str, new_name: str) -> None:
        self._writer.rename_table(self._name(name), self._name(new_name))

    def lock_tables(self, names: Sequence[str]) -> None:
        self._writer.lock_tables([self._name(name) for name in names])

    def lock_schema(self) -> None:
        self._writer.lock_schema()

    def case_in(self, column: str, case_ids: Sequence[str]) -> tuple[str, Any]:
        return self._writer.case_in(column, case_ids)

    def keys_in(
        self, columns: Sequence[Column], keys: Sequence[Sequence[Any]]
    ) -> tuple[str, tuple[Any, ...]]:
        return self._writer.keys_in(columns, keys)

    def try_lock(self, name: str) -> bool:
        return self._writer.try_lock(name)

    def unlock(self, name: str) -> None:
        self._writer.unlock(name)

    def close(self) -> None:
        pass  # the writer is the caller's


def lock_rebuilds(writer: ViewsWriter, names: Sequence[str], wait: float) -> None:
    """Take the rebuild locks of the named read models, waiting up to ``wait`` seconds for
    those another rebuild holds. Raises :class:`ProjectionBusy`."""
    deadline = time.monotonic() + wait
    pending = list(names)
    while True:
        pending = [name for name in pending if not writer.try_lock(rebuild_lock_name(name))]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if pending:
        unlock_rebuilds(writer, [name for name in names if name not in pending])
        raise ProjectionBusy(pending, doing="rebuilds")


def unlock_rebuilds(writer: ViewsWriter, names: Sequence[str]) -> None:
    """Give the rebuild locks back now: closing the connection gives them back too, but
    the server notices a closed connection only a moment later."""
    for name in names:
        writer.unlock(rebuild_lock_name(name))


@contextmanager
def rebuild_locks(writer: ViewsWriter, names: Sequence[str], wait: float) -> Iterator[None]:
    """Hold the rebuild locks of the named read models (:func:`lock_rebuilds`) for a block."""
    lock_rebuilds(writer, names, wait)
    try:
        yield
    finally:
        unlock_rebuilds(writer, names)


def rebuild_beside(
    log: EventLog,
    writer: ViewsWriter,
    projections: Sequence[Projection],
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cached_rows: int = DEFAULT_CACHED_ROWS,
    progress: Callable[[Progress], None] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(tz=UTC),
    before_switch: Callable[[], None] | None = None,
) -> int:
    """Build a new generation of ``projections`` beside the one in service and switch to
    it (module docstring); returns the notifications processed. The caller holds the
    rebuild locks (:func:`lock_rebuilds`). ``before_switch`` runs once the new generation
    has caught up, just before the switch (tests interrupt there)."""
    chosen = list(projections)
    if not chosen:
        return 0
    generations = _start(writer, chosen)
    names = {
        schema.name: build_table_name(schema.name, generations[projection.name])
        for projection in chosen
        for schema in projection.schemas
    }
    build = BuildWriter(writer, names)
    engine = ProjectionEngine(
        log, build, chosen, batch_size=batch_size, cached_rows=cached_rows, clock=clock
    )
    done = engine.rebuild(progress=progress)
    # Close to the head before the switch: what is left is applied while readers wait.
    while log.head() - min(engine.positions().values()) > FINAL_CATCH_UP_EVENTS:
        done += engine.catch_up(progress=progress)
    if before_switch is not None:
        before_switch()
    done += _switch(writer, build, engine, chosen, generations, clock)
    if writer.dialect == "sqlite":
        # SQLite keeps planner statistics by table name: those of the built tables stayed
        # with their old names.
        ProjectionEngine(log, writer, chosen, clock=clock).refresh_planner_statistics()
    return done


def _start(writer: ViewsWriter, projections: Sequence[Projection]) -> dict[str, int]:
    """Drop what unfinished builds left and register the generations to build."""
    with writer.transaction():
        writer.lock_schema()
        _refuse_older(writer, projections)
        writer.create_table(GENERATIONS_SCHEMA)
        known = read_generations(writer)
        leftovers = BuildWriter(writer, {})
        build_positions = PositionsSql(leftovers)
        build_positions.create()
        numbers: dict[str, int] = {}
        for projection in projections:
            found = known.get(projection.name)
            if found is not None and found.building is not None:
                for schema in projection.schemas:
                    writer.drop_table(build_table_name(schema.name, found.building))
            writer.execute(
                f"DELETE FROM {leftovers.table(POSITIONS_TABLE)} WHERE name = {writer.param}",
                (projection.name,),
            )
            serving = found.serving if found is not None else 0
            left = found.building if found is not None and found.building is not None else 0
            number = max(serving, left) + 1
            numbers[projection.name] = number
            _register(writer, projection.name, serving, number)
    return numbers


def _refuse_older(
    writer: ViewsWriter, projections: Sequence[Projection]
) -> dict[str, StoredPosition]:
    """The positions in service; raises :class:`ReadModelNewer` where a newer version
    serves: an older release must not replace what a newer one built."""
    stored = {p.name: p for p in read_positions(writer)}
    newer = [p.name for p in projections if p.name in stored and stored[p.name].version > p.version]
    if newer:
        raise ReadModelNewer(newer)
    return stored


def _register(writer: ViewsWriter, name: str, serving: int, building: int | None) -> None:
    table = writer.table(GENERATIONS_TABLE)
    p = writer.param
    writer.execute(f"DELETE FROM {table} WHERE name = {p}", (name,))
    writer.execute(
        f"INSERT INTO {table} (name, serving, building) VALUES ({p}, {p}, {p})",
        (name, serving, building),
    )


def _switch(
    writer: ViewsWriter,
    build: BuildWriter,
    engine: ProjectionEngine,
    projections: Sequence[Projection],
    generations: Mapping[str, int],
    clock: Callable[[], datetime],
) -> int:
    """Replace the generation in service by the built one, in one transaction."""
    names = [projection.name for projection in projections]
    with writer.transaction():
        writer.lock_schema()
        serving = PositionsSql(writer)
        serving.create()
        stored = _refuse_older(writer, projections)
        for projection in projections:
            if projection.name not in stored:
                serving.reset(projection.name, projection.version, clock())
        # The order a worker's batch takes them in: its position first, then its tables.
        serving.lock(names)
        # The last events go to the built tables, which nobody reads, before the tables in
        # service are taken: readers wait only for the drop and the rename.
        with _joined(build):
            done = engine.catch_up()
        writer.lock_tables([schema.name for p in projections for schema in p.schemas])
        built = {p.name: p for p in read_positions(build)}
        now = clock()
        for projection in projections:
            generation = generations[projection.name]
            for schema in projection.schemas:
                writer.drop_table(schema.name)
                writer.rename_table(build_table_name(schema.name, generation), schema.name)
            position = built[projection.name]
            serving.replace(
                projection.name,
                position.position,
                projection.version,
                position.event_recorded_at,
                now,
            )
            writer.execute(
                f"DELETE FROM {build.table(POSITIONS_TABLE)} WHERE name = {writer.param}",
                (projection.name,),
            )
            _register(writer, projection.name, generation, None)
    return done


@contextmanager
def _joined(build: BuildWriter) -> Iterator[None]:
    build.joined = True
    try:
        yield
    finally:
        build.joined = False


__all__ = [
    "BUILD_POSITIONS_TABLE",
    "GENERATIONS_TABLE",
    "BuildWriter",
    "Generation",
    "build_table_name",
    "lock_rebuilds",
    "read_generations",
    "rebuild_beside",
    "rebuild_lock_name",
    "rebuild_locks",
    "unlock_rebuilds",
]
