"""Who acts, when, and when it was recorded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from domain.errors import BusinessTimeInFuture, InvalidValue
from domain.values import require_aware, require_printable

_MAX_USER_ID_LENGTH = 100

FUTURE_TOLERANCE: Final = timedelta(minutes=2)
"""How far a business time may lie after the service's clock (``recorded_at``): the
clocks of caseworkers' machines, scanners and the payment platform run a little apart;
a time further ahead has not happened yet and is refused."""


@dataclass(frozen=True)
class Act:
    """The circumstances of one action on a case file.

    ``by`` is the acting user's id (a pseudonymous account id, never a name); ``at`` is
    the business time, when the action happened at the office (a caseworker may record
    yesterday's handover today); ``recorded_at`` is when the system recorded it. Both
    times are passed in: the domain never reads a clock.
    """

    by: str
    at: datetime
    recorded_at: datetime

    def __post_init__(self) -> None:
        if not self.by or len(self.by) > _MAX_USER_ID_LENGTH:
            raise InvalidValue("by", f"must be a user id of 1 to {_MAX_USER_ID_LENGTH} characters")
        require_printable("by", self.by)
        require_aware("at", self.at)
        require_aware("recorded_at", self.recorded_at)
        if self.at > self.recorded_at + FUTURE_TOLERANCE:
            raise BusinessTimeInFuture("at")
        if self.at > self.recorded_at:
            # Within the tolerance: the time the client meant is "now" on a clock that
            # runs ahead; taken as the recorded time, so business times never lie after
            # the recording and a following "now" never precedes this one.
            object.__setattr__(self, "at", self.recorded_at)
