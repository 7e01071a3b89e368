"""Rebuilds watched from the views writer: the rows a rebuild leaves, the rows it inserts
and the rows it reads back, per table (no tests here)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from adapters.views.runner import ApplicationEventLog
from projections.engine import DEFAULT_CACHED_ROWS, ProjectionEngine
from projections.projection import Projection
from projections.storage import ViewsStore, ViewsWriter
from service import AkteService
from tests.support.projections import TOPIC, CaseDriver

if TYPE_CHECKING:
    from tests.conftest import FakeClock

NOTES: Final = 24
_FROM: Final = re.compile(r"\bFROM\s+(\S+)", re.IGNORECASE)


class WatchedWriter:
    """The views writer, counting the rows inserted into each table (by its name) and
    read from each (by its name in SQL)."""

    def __init__(self, writer: ViewsWriter) -> None:
        self._writer = writer
        self.inserted: Counter[str] = Counter()
        self.read: Counter[str] = Counter()

    def insert_rows(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        self.inserted[table] += len(rows)
        self._writer.insert_rows(table, columns, rows)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        rows = self._writer.fetch(sql, params)
        found = _FROM.search(sql)
        if found is not None:
            self.read[found.group(1)] += len(rows)
        return rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


@dataclass(frozen=True)
class WatchedRebuild:
    rows: dict[str, list[tuple[Any, ...]]]
    """Every table's rows afterwards (``ProjectionEngine.dump``)."""
    inserted: Counter[str]
    read: Counter[str]
    """Rows read back from each of the projections' tables, by table name."""


def watched_rebuild(
    service: AkteService,
    views: ViewsStore,
    projections: Sequence[Projection],
    *,
    batch_size: int,
    cached_rows: int = DEFAULT_CACHED_ROWS,
) -> WatchedRebuild:
    writer = views.writer()
    try:
        watched = WatchedWriter(writer)
        engine = ProjectionEngine(
            ApplicationEventLog(service),
            watched,
            projections,
            batch_size=batch_size,
            cached_rows=cached_rows,
        )
        engine.rebuild()
        read = Counter(
            {
                table.name: watched.read[writer.table(table.name)]
                for projection in projections
                for table in projection.all_tables
            }
        )
        return WatchedRebuild(engine.dump(), watched.inserted.copy(), read)
    finally:
        writer.close()


def long_file(service: AkteService, clock: FakeClock, notes: int = NOTES) -> CaseDriver:
    """One case file with a long history: every note is one more audit row."""
    case = CaseDriver.open(service)
    case("receive_procedure", channel="mail", topic=TOPIC)
    for n in range(notes):
        clock.advance(seconds=30)
        case("add_note", text=f"Vermerk {n}")
    return case
