"""Where each projection has got to in the log: the positions table.

One row per projection: its position (the last notification applied), the version of
the read model that wrote its rows, and the recorded time of the event at the position
(for the lag in seconds). The engine advances the positions in the transaction of each
batch, compare-and-set (:meth:`PositionsSql.lock` first).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from projections.storage import Column, TableSchema, ViewsSession, ViewsWriter

POSITIONS_TABLE: Final = "projection_positions"
GENERATIONS_TABLE: Final = "read_model_generations"
"""Per read model, the generation whose tables serve under its names, and the one being
built (:mod:`projections.generations`)."""


@dataclass(frozen=True)
class StoredPosition:
    name: str
    position: int
    version: int
    event_recorded_at: datetime | None
    updated_at: datetime


class PositionsSql:
    def __init__(self, session: ViewsWriter) -> None:
        self.session = session
        p = session.param
        table = session.table(POSITIONS_TABLE)
        self.table = table
        self.generations = session.table(GENERATIONS_TABLE)
        self.encode_time = session.encoder("timestamp") or (lambda value: value)
        self.update = (
            f"UPDATE {table} SET position = {p}, event_recorded_at = {p}, updated_at = {p} WHERE "
        )
        self.delete = f"DELETE FROM {table} WHERE name = {p}"
        self.insert = (
            f"INSERT INTO {table} (name, position, version, event_recorded_at, updated_at) "
            f"VALUES ({p}, 0, {p}, NULL, {p})"
        )

    def create(self) -> None:
        self.session.create_table(POSITIONS_SCHEMA)
        self.session.create_table(GENERATIONS_SCHEMA)

    def lock(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """The positions of the named projections and the generations serving, locked
        until the transaction ends (in the order of their names, as every engine takes
        them). A switch to a rebuilt generation changes the generation even where the
        position stays: what an engine remembers of the rows is then not valid."""
        condition, param = self.session.case_in("name", names)
        rows = self.session.fetch(
            f"SELECT name, position, (SELECT serving FROM {self.generations} AS g "
            f"WHERE g.name = {self.table}.name) FROM {self.table} WHERE {condition} "
            f"ORDER BY name{self.session.lock_row_suffix}",
            (param,),
        )
        return {str(name): (int(position), int(serving or 0)) for name, position, serving in rows}

    def advance(
        self,
        names: Sequence[str],
        position: int,
        event_recorded_at: datetime | None,
        now: datetime,
    ) -> None:
        recorded = None if event_recorded_at is None else self.encode_time(event_recorded_at)
        condition, param = self.session.case_in("name", names)
        self.session.execute(
            self.update + condition, (position, recorded, self.encode_time(now), param)
        )

    def replace(
        self,
        name: str,
        position: int,
        version: int,
        event_recorded_at: datetime | None,
        now: datetime,
    ) -> None:
        """Set a projection's row (position and version) whatever it held: a switch to a
        rebuilt generation (:mod:`projections.generations`)."""
        recorded = None if event_recorded_at is None else self.encode_time(event_recorded_at)
        self.session.execute(self.delete, (name,))
        p = self.session.param
        self.session.execute(
            f"INSERT INTO {self.table} (name, position, version, event_recorded_at, updated_at) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})",
            (name, position, version, recorded, self.encode_time(now)),
        )

    def reset(self, name: str, version: int, now: datetime) -> None:
        self.session.execute(self.delete, (name,))
        self.session.execute(self.insert, (name, version, self.encode_time(now)))


POSITIONS_SCHEMA: Final = TableSchema(
    POSITIONS_TABLE,
    (
        Column("name", "text", nullable=False),
        Column("position", "integer", nullable=False),
        Column("version", "integer", nullable=False),
        Column("event_recorded_at", "timestamp", nullable=True),
        Column("updated_at", "timestamp", nullable=False),
    ),
    ("name",),
)


GENERATIONS_SCHEMA: Final = TableSchema(
    GENERATIONS_TABLE,
    (
        Column("name", "text", nullable=False),
        Column("serving", "integer", nullable=False),
        Column("building", "integer", nullable=True),
    ),
    ("name",),
)


@dataclass(frozen=True)
class Generation:
    name: str
    serving: int
    """The generation whose tables carry the read model's names (0: the first ever built)."""
    building: int | None
    """A generation being built, or left behind by a build that did not finish."""


def read_generations(session: ViewsSession) -> dict[str, Generation]:
    """The registry of generations, by read model (empty: none was ever rebuilt beside)."""
    if not session.table_exists(GENERATIONS_TABLE):
        return {}
    rows = session.fetch(f"SELECT name, serving, building FROM {session.table(GENERATIONS_TABLE)}")
    return {
        str(name): Generation(str(name), int(serving), None if building is None else int(building))
        for name, serving, building in rows
    }


def read_positions(session: ViewsSession) -> list[StoredPosition]:
    """The positions table (empty when no projection has been prepared yet)."""
    if not session.table_exists(POSITIONS_TABLE):
        return []
    decode_time = session.decoder("timestamp") or (lambda value: value)
    rows = session.fetch(
        f"SELECT name, position, version, event_recorded_at, updated_at "
        f"FROM {session.table(POSITIONS_TABLE)} ORDER BY name"
    )
    return [
        StoredPosition(
            name=str(name),
            position=int(position),
            version=int(version),
            event_recorded_at=None if recorded is None else decode_time(recorded),
            updated_at=decode_time(updated),
        )
        for name, position, version, recorded, updated in rows
    ]
