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

    def __init__(self, names: Iterable[str], doing: str = "follows") -> None:
        super().__init__(f"another worker {doing} {', '.join(sorted(names))}")
        self.names = sorted(names)


class ReadModelNewer(ProjectionError):
    """A newer version of these read models serves (a rebuild by a newer release switched
    to it): this process's older code leaves their tables alone."""

    def __init__(self, names: Iterable[str]) -> None:
        super().__init__(
            f"a newer version of {', '.join(sorted(names))} serves; left to the newer release"
        )
        self.names = sorted(names)


class InconsistentLog(ProjectionError):
    """The log holds an event the projection cannot place (e.g. for an unopened file)."""


class ViewsRowRefused(ProjectionError):
    """The views store refused a row (a value it cannot hold, a violated constraint): the
    same batch would fail again, so retrying does not help; the batch was rolled back."""


class ReadModelFailed(InconsistentLog):
    """A read model failed on an event: its handler raised, the event did not fit (an
    :class:`InconsistentLog` of that read model), or the views store refused its rows.
    ``position`` is the event's notification id when known (None: somewhere in the batch
    after the read model's position). ``reason`` names the error's type (and a
    driver's SQLSTATE), never a message that could quote stored values."""

    def __init__(self, name: str, position: int | None, reason: str) -> None:
        where = f"at event {position}" if position is not None else "in a batch"
        super().__init__(f"read model {name} failed {where}: {reason}")
        self.name = name
        self.position = position
        self.reason = reason
