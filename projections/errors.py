"""Errors of the projection engine and the views store (all are :class:`ProjectionError`)."""

from __future__ import annotations

from collections.abc import Iterable


class ProjectionError(Exception):
    """Base of every error the projection engine and the views store raise."""


class EventLogUnavailable(ProjectionError):
    """The event store could not be read; nothing was written to the views."""


class ViewsStoreUnavailable(ProjectionError):
    """The views store failed or could not be reached; the batch was rolled back."""


class ViewNotBuilt(ProjectionError):
    """A read model's tables do not exist yet: no runner has prepared them."""


class UnknownProjection(ProjectionError):
    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(f"no read model named {', '.join(sorted(names))}")


class ProjectionBusy(ProjectionError):
    """Another worker follows these read models (it holds their locks)."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(f"another worker follows {', '.join(sorted(names))}")
        self.names = sorted(names)


class InconsistentLog(ProjectionError):
    """The log holds an event the projection cannot place (e.g. for an unopened file)."""
