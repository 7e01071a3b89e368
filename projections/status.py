"""How far behind the log each read model is: position, head and lag (read-only); and
which read models have stopped on an event they cannot process.

A read model that fails on an event (its handler raises, or the views store refuses its
rows) stops alone at the event before it: the runner records the failure in the table
``read_model_failures`` (name, the event's position, the error's type, when), so that
every process sees it (``/readyz``, ``/metrics``, ``akte projections status``), also when
the runner works in another process. The row goes once the read model has processed
that event (after a fix and a restart, or a later retry).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from projections.positions import read_positions
from projections.projection import Projection
from projections.storage import Column, EventLog, TableSchema, ViewsSession, ViewsStore, ViewsWriter

FAILURES_TABLE: Final = "read_model_failures"
FAILURES_SCHEMA: Final = TableSchema(
    FAILURES_TABLE,
    (
        Column("name", "text", nullable=False),
        Column("position", "integer", nullable=True),
        Column("reason", "text", nullable=False),
        Column("failed_at", "timestamp", nullable=False),
    ),
    ("name",),
)


@dataclass(frozen=True)
class ReadModelFailure:
    """A read model stopped on an event: where (``None``: not narrowed down), why, since."""

    name: str
    position: int | None
    reason: str
    """The error's type (and SQLSTATE), never its message: that may quote stored values."""
    failed_at: datetime


def record_failure(writer: ViewsWriter, failure: ReadModelFailure) -> None:
    """Record (or replace) the failure of a read model, in a transaction of its own."""
    encode_time = writer.encoder("timestamp") or (lambda value: value)
    p = writer.param
    table = writer.table(FAILURES_TABLE)
    with writer.transaction():
        writer.lock_schema()
        writer.create_table(FAILURES_SCHEMA)
        writer.execute(f"DELETE FROM {table} WHERE name = {p}", (failure.name,))
        writer.execute(
            f"INSERT INTO {table} (name, position, reason, failed_at) VALUES ({p}, {p}, {p}, {p})",
            (failure.name, failure.position, failure.reason, encode_time(failure.failed_at)),
        )


def clear_failures(writer: ViewsWriter, names: Sequence[str]) -> None:
    """Forget the failures of the named read models (they got past their event)."""
    if not names or not writer.table_exists(FAILURES_TABLE):
        return
    condition, param = writer.case_in("name", names)
    with writer.transaction():
        writer.execute(f"DELETE FROM {writer.table(FAILURES_TABLE)} WHERE {condition}", (param,))


def read_failures(session: ViewsSession) -> dict[str, ReadModelFailure]:
    """The recorded failures by read model name (empty when none was ever recorded)."""
    if not session.table_exists(FAILURES_TABLE):
        return {}
    decode_time = session.decoder("timestamp") or (lambda value: value)
    rows = session.fetch(
        f"SELECT name, position, reason, failed_at FROM {session.table(FAILURES_TABLE)}"
    )
    return {
        str(name): ReadModelFailure(
            name=str(name),
            position=None if position is None else int(position),
            reason=str(reason),
            failed_at=decode_time(failed_at),
        )
        for name, position, reason, failed_at in rows
    }


@dataclass(frozen=True)
class ProjectionStatus:
    name: str
    position: int
    head: int
    lag_events: int
    """Notifications after the position (ids may have gaps: an upper bound)."""
    lag_seconds: float
    """Recorded time of the head event minus that of the last processed event (0 when
    caught up); from the first event when nothing is processed yet."""
    updated_at: datetime | None
    built: bool
    """False: not prepared yet, or prepared by another version of this read model."""
    failure: ReadModelFailure | None = None
    """Set while the read model is stopped on an event it failed to process."""


def projection_status(
    log: EventLog, views: ViewsStore, projections: Sequence[Projection]
) -> list[ProjectionStatus]:
    """Position, head and lag of each projection (read-only; needs no lock)."""
    with views.reader() as session:
        stored = {p.name: p for p in read_positions(session)}
        failures = read_failures(session)
    head = log.head()
    head_time = _recorded_at(log, head) if head else None
    first_time: datetime | None = None
    statuses = []
    for projection in projections:
        found = stored.get(projection.name)
        built = found is not None and found.version == projection.version
        position = found.position if found is not None and built else 0
        lag_seconds = 0.0
        if position < head and head_time is not None:
            since = found.event_recorded_at if found is not None and position > 0 else None
            if since is None:
                if first_time is None:
                    first_time = _recorded_at(log, 0)
                since = first_time
            if since is not None:
                lag_seconds = max((head_time - since).total_seconds(), 0.0)
        statuses.append(
            ProjectionStatus(
                name=projection.name,
                position=position,
                head=head,
                lag_events=max(head - position, 0),
                lag_seconds=lag_seconds,
                updated_at=found.updated_at if found is not None else None,
                built=built,
                failure=failures.get(projection.name),
            )
        )
    return statuses


def _recorded_at(log: EventLog, after_or_at: int) -> datetime | None:
    """Recorded time of the notification ``after_or_at`` (or the first one after it)."""
    found = log.read(max(after_or_at - 1, 0), 1)
    if not found:
        return None
    recorded = getattr(log.decode(found[0]), "timestamp", None)
    return recorded if isinstance(recorded, datetime) else None
