"""What the application's contexts share: errors, results, business time and ids.

:mod:`service` (the entry point) and its contexts (``service_*.py``) import this module;
it imports only the domain and the standard library, so no context needs the entry point.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Generic, ParamSpec, TypeGuard, TypeVar
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Recording

from domain.acts import Act
from domain.errors import RuleViolation

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

MAX_VERSION: Final = 2**62
"""Beyond any real aggregate, and inside the stores' 64-bit integer columns."""
MAX_GENERATED_REFERENCE_ATTEMPTS: Final = 5
PUBLIC_APPLICANT: Final = "public"
"""Who acts on a commitment declaration or a contact form through the public routes
without a token."""


class ServiceError(Exception):
    """Base of the errors the service raises besides domain errors."""


class CaseNotFound(ServiceError):
    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"case file {case_id} does not exist")
        self.case_id = case_id


class ConcurrentModification(ServiceError):
    """The case file changed since the version the caller based its command on."""

    def __init__(self, case_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            f"case file {case_id} is at version {actual}, the command expected version {expected}"
        )
        self.case_id = case_id
        self.expected = expected
        self.actual = actual


class ReferenceNotFound(ServiceError):
    def __init__(self) -> None:
        super().__init__("no case file with this file number in this office")


class DuplicateReference(RuleViolation):
    code = "duplicate-reference"


class StoreUnavailable(ServiceError):
    """The event store could not be reached or failed; nothing was recorded."""


@dataclass(frozen=True)
class Recorded(Generic[T]):
    """What a command recorded: the case file, its new version and the command's result."""

    case_id: UUID
    version: int
    result: T
    position: int
    """Notification id of the last event written: read models that have processed this
    position reflect the command (read-your-writes)."""


def system_clock() -> datetime:
    return datetime.now(tz=UTC)


_BUSINESS_TIME: ContextVar[datetime | None] = ContextVar("akte_business_time", default=None)


@contextmanager
def business_time(at: datetime) -> Iterator[None]:
    """Commands without an ``at`` of their own (the appointment commands: they happen
    "now") take ``at`` as their business time inside this block; the recorded time stays
    the clock's. For entering what happened earlier, like the office-year simulator."""
    token = _BUSINESS_TIME.set(at)
    try:
        yield
    finally:
        _BUSINESS_TIME.reset(token)


def act_now(by: str, at: datetime | None, recorded_at: datetime) -> Act:
    """Who acts, at the business time ``at`` (else the one of :func:`business_time`, else
    when it is recorded)."""
    if at is None:
        at = _BUSINESS_TIME.get()
    return Act(by=by, at=at if at is not None else recorded_at, recorded_at=recorded_at)


def last_position(recordings: list[Recording[UUID]]) -> int:
    return max(recording.notification.id for recording in recordings)


def generated_reference(case_id: UUID, act: Act) -> str:
    """A file number from the year and the (random) case id: never personal data."""
    return f"{act.at.year}-{case_id.hex[:10].upper()}"


# ------------------------------------------------- ids of new aggregates with keys

GiveBack = Callable[[list[UUID]], None]
"""Puts ids whose aggregate was never written back into the reserve of keys."""

_command_scope = threading.local()
"""Per thread, the ids handed out in the running command and who gives each back (see
:func:`gives_back_unwritten_ids`)."""


def note_handed_out(owner_id: UUID, give_back: GiveBack) -> None:
    """Called by whoever hands out an id made ahead, inside a marked command."""
    handed_out: list[tuple[UUID, GiveBack]] | None = getattr(_command_scope, "ids", None)
    if handed_out is not None:
        handed_out.append((owner_id, give_back))


def gives_back_unwritten_ids(command: Callable[P, R]) -> Callable[P, R]:
    """Marks a service command that takes ids from ``new_personal_id``: when it ends, by
    returning or refusing, the ids whose aggregate no event was written for go back into
    the reserve of keys made ahead (an anonymous client sending refused bookings would
    otherwise leave a stored key per request). Nested commands share the outer scope."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if getattr(_command_scope, "ids", None) is not None:
            return command(*args, **kwargs)
        handed_out: list[tuple[UUID, GiveBack]] = []
        _command_scope.ids = handed_out
        try:
            return command(*args, **kwargs)
        finally:
            _command_scope.ids = None
            givers: list[GiveBack] = []
            for _owner_id, give_back in handed_out:
                if give_back not in givers:
                    givers.append(give_back)
            for give_back in givers:
                give_back([owner_id for owner_id, giver in handed_out if giver == give_back])

    return run


_EVENT_CLASSES: dict[type, bool] = {}


def is_domain_event(obj: object) -> TypeGuard[DomainEventProtocol[Any]]:
    """``isinstance(obj, DomainEventProtocol)``, answered once per class: a check against a
    runtime-checkable protocol walks the protocol's members on every call (typing, Python
    3.11), and a save checks each object it is given. In a bulk simulation those checks
    were 8 % of the time. Instances of one class all have the protocol's members or none
    (they are the classes' properties and dataclass fields)."""
    kind = type(obj)
    known = _EVENT_CLASSES.get(kind)
    if known is None:
        known = _EVENT_CLASSES[kind] = isinstance(obj, DomainEventProtocol)
    return known
