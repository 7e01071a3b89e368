"""Choosing read models: by name, and into groups that separate processes rebuild."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from projections.errors import UnknownProjection
from projections.projection import Projection


def select_projections(
    available: Sequence[Projection], names: Iterable[str] | None
) -> list[Projection]:
    """The named projections (all: ``None`` or empty) in the order of ``available``."""
    wanted = set(names or ())
    if not wanted:
        return list(available)
    unknown = wanted - {projection.name for projection in available}
    if unknown:
        raise UnknownProjection(unknown)
    return [projection for projection in available if projection.name in wanted]


def partition_projections(projections: Sequence[Projection], jobs: int) -> list[list[Projection]]:
    """Split projections into at most ``jobs`` groups to be built by separate processes.

    Projections that handle a common event class stay in one group, so each group reads
    and decodes its events once (every group reads the few ``Opened``, transfer and
    closure events, and those whose read models see taken-over parts the parts).
    Groups are balanced by the number of event classes they handle.
    """
    families: list[list[Projection]] = []
    for projection in projections:
        classes = set(projection.handlers)
        related = [f for f in families if any(classes & set(other.handlers) for other in f)]
        families = [f for f in families if f not in related]
        families.append([other for family in related for other in family] + [projection])
    groups: list[list[Projection]] = [[] for _ in range(max(1, min(jobs, len(families))))]
    weights = [0] * len(groups)
    for family in sorted(families, key=lambda f: -sum(len(p.handlers) for p in f)):
        lightest = weights.index(min(weights))
        groups[lightest] += family
        weights[lightest] += sum(len(p.handlers) for p in family)
    order = {projection.name: index for index, projection in enumerate(projections)}
    return [sorted(group, key=lambda p: order[p.name]) for group in groups if group]
