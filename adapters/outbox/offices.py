"""The office each published event belongs to: the office of its aggregate.

A store without shards holds the events of several offices (the demo's
``abh-musterstadt`` and ``abh-nachbarstadt``); a message's subject
(``akte.<office>.…``) and its CloudEvents ``source`` (``akte/<office>``) name the office
whose aggregate the event belongs to, not the office the process is configured with.

**Where the office comes from.** Every aggregate of ``domain/`` that belongs to an
office names it in its created event (its first, version 1): ``CaseFile.Opened``,
``Appointment.Booked``, ``CommitmentDeclaration.Submitted``,
``ContactSubmission.Submitted``, ``RegistrationNotice.PutInTriage`` and the others, all
as ``office_id``. No later event changes it: a case file transferred to another office
(``CaseFile.TransferredToOffice``) stays the sending office's file, ended there (and
active there again after a ``HandOverReturned``); the receiving office opens a file of
its own (``Opened`` with its office, then ``TakenOver``), whose events go out under that
office. So an aggregate's office is fixed at its creation, and one look at the created
event is enough for all of its events.

Aggregates whose created event names no office (the claims of references and receipts,
the tick and deadline cursors, a ``ReadAccess`` of all offices) go out under the
configured default office.

**The cache.** :class:`AggregateOffices` keeps aggregate id → office for the most recently
used ``size`` aggregates. A created event the publisher reads fills it; for an aggregate
whose created event it did not read (of a kind it does not publish, or before its
starting position) the created event is read from the store once, sealed (as read models
read it: the office is not personal data).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

from adapters.outbox.cloudevents import subject_token

DEFAULT_OFFICE_CACHE_SIZE: Final = 100_000
"""Aggregates whose office is kept (a few MB); more are looked up again when they recur."""
OFFICE_FIELD: Final = "office_id"


class AggregateHistory(Protocol):
    """Reads an aggregate's first events:
    :meth:`adapters.views.runner.ApplicationEventLog.case_history` (named for case files,
    it reads any aggregate's events by id)."""

    def case_history(self, case_id: str, before_version: int) -> Sequence[Any]: ...


def office_in(event: Any) -> str | None:
    """The office a created event names (``office_id``); ``None``: it names none."""
    state: Mapping[str, Any] = vars(event)
    office = state.get(OFFICE_FIELD)
    return office if isinstance(office, str) and office else None


def is_created(event: Any) -> bool:
    """Whether ``event`` is its aggregate's first (the created event, version 1)."""
    version: object = vars(event).get("originator_version")
    return version == 1


class AggregateOffices:
    """Aggregate id → the office it belongs to, a bounded cache (least recently used
    first out) filled from the created events seen and, for the others, from the store."""

    def __init__(
        self, history: AggregateHistory, *, default: str, size: int = DEFAULT_OFFICE_CACHE_SIZE
    ) -> None:
        if size < 1:
            msg = "the office cache needs room for at least one aggregate"
            raise ValueError(msg)
        self._history = history
        self._default = default
        self._size = size
        self._offices: OrderedDict[str, str | None] = OrderedDict()
        self.lookups = 0
        """Created events read from the store (aggregates not seen created, or evicted)."""

    @property
    def default(self) -> str:
        return self._default

    def __len__(self) -> int:
        return len(self._offices)

    def office_of(self, event: Any, aggregate_id: str) -> str:
        """The office of ``event``'s aggregate ``aggregate_id``: the one its created event
        names, else the default office."""
        offices = self._offices
        if aggregate_id in offices:
            offices.move_to_end(aggregate_id)
            office = offices[aggregate_id]
        else:
            office = office_in(event) if is_created(event) else self._look_up(aggregate_id)
            offices[aggregate_id] = office
            if len(offices) > self._size:
                offices.popitem(last=False)
        if office is None:
            return self._default
        return subject_token(office, f"the office id of aggregate {aggregate_id}")

    def _look_up(self, aggregate_id: str) -> str | None:
        """The office the aggregate's created event names, read from the store."""
        self.lookups += 1
        first = self._history.case_history(aggregate_id, 2)
        return office_in(first[0]) if first else None


__all__ = [
    "DEFAULT_OFFICE_CACHE_SIZE",
    "AggregateHistory",
    "AggregateOffices",
    "is_created",
    "office_in",
]
