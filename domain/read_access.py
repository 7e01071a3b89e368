"""The read-access log: who read which case file's personal data, when, through what.

Every read is an aggregate of its own (:class:`ReadAccess`, one ``Recorded`` event, a
random id), so recording never contends with writes to the case file, and the log is as
append-only as every other event in the store (and covered by its tamper evidence).
Reads of the access log itself are recorded the same way, with no case file.

The event holds no personal data: ids, office, the route template and the reader's
account id. Events are forever, so the fields are few and plain.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.errors import InvalidValue
from domain.values import LawfulEvent

MAX_ENDPOINT_LENGTH: Final = 200
_ENDPOINT: Final = re.compile(r"^(?:[A-Z]{3,7} /[!-~]{0,190}|CLI akte [a-z -]{1,60})$")
"""A method and a route template, e.g. ``GET /cases/{case_id}/history``, or a command
(``CLI akte history``): never a concrete path, which could carry a file number or a
query with personal data."""


class ReadAccess(Aggregate):
    """One read of a case file's personal data (or of the access log)."""

    def __init__(self) -> None:
        self.case_id: str | None = None
        self.office_id: str | None = None
        self.endpoint: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Recorded(Event, Aggregate.Created):
        """``at`` is when the read was served (business and recorded time alike)."""

        case_id: str | None
        """The case file read; ``None`` for a read of the access log or trails."""
        office_id: str | None
        """The office of the case file read (or whose log was read; ``None``: all)."""
        endpoint: str

        def apply(self, read: ReadAccess) -> None:
            read.case_id = self.case_id
            read.office_id = self.office_id
            read.endpoint = self.endpoint

    @classmethod
    def record(
        cls,
        *,
        read_id: UUID,
        case_id: UUID | None,
        office_id: str | None,
        endpoint: str,
        act: Act,
    ) -> ReadAccess:
        if not _ENDPOINT.fullmatch(endpoint):
            raise InvalidValue("endpoint", "must be a method and a route template")
        return cls._create(
            cls.Recorded,
            id=read_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            case_id=None if case_id is None else str(case_id),
            office_id=office_id,
            endpoint=endpoint,
        )
