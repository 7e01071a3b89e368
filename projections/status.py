"""How far behind the log each read model is: position, head and lag (read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from projections.positions import read_positions
from projections.projection import Projection
from projections.storage import EventLog, ViewsStore


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


def projection_status(
    log: EventLog, views: ViewsStore, projections: Sequence[Projection]
) -> list[ProjectionStatus]:
    """Position, head and lag of each projection (read-only; needs no lock)."""
    with views.reader() as session:
        stored = {p.name: p for p in read_positions(session)}
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
