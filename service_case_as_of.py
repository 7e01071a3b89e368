"""A case file on a business date; the context ``service.case_as_of``.

Beside the recorded-time point in time of :meth:`service.AkteService.get_case_as_of`
("what did the system hold at 10:00 on 2 July?"), this answers the office's question
"what did the file say on 1 July?": every event whose business time lies on or before
the end of that date in the office's time zone, in log order (the rules of the replay
are in :mod:`domain.business_date`). It reads all of the file's events (a back-dated
event may have been recorded at any later time), so it costs a read of the file, as its
history does; no snapshot helps, because the state is not a prefix of the log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from uuid import UUID

from domain.business_date import CaseOnDate, business_time, end_of_day, replay_until
from domain.case_file import CaseFile
from service_common import CaseNotFound
from service_ports import ServiceStore


class CaseNotOpenedYet(Exception):
    """The case file exists, but was opened (business time) after the date asked for."""

    def __init__(self, case_id: UUID, day: date, opened: date) -> None:
        super().__init__(
            f"case file {case_id} did not exist yet on {day.isoformat()}: it was opened "
            f"(business time) on {opened.isoformat()}"
        )
        self.case_id = case_id


@dataclass(frozen=True)
class CaseDatesDiff:
    """Two states of a file on business dates, and the events that lie between them."""

    before: CaseOnDate | None
    """On the earlier date; ``None``: before the file (no earlier date, or not opened yet)."""
    after: CaseOnDate
    events: list[CaseFile.Event]
    """In log order: the events dated after the earlier date, on or before the later one."""


class CaseAsOf:
    """``service.case_as_of``: case files on business dates."""

    def __init__(self, store: ServiceStore, *, zone: tzinfo = UTC) -> None:
        """``zone``: the office's time zone, in which a business date ends."""
        self._store = store
        self.zone = zone

    def case_on(self, case_id: UUID, day: date) -> CaseOnDate:
        """The file as it stood at the end of ``day`` (business time, office's zone).

        Raises :class:`service_common.CaseNotFound` for no such file and
        :class:`CaseNotOpenedYet` for a date before its opening."""
        events = self._events(case_id)
        return self._on(case_id, events, day)

    def diff_on(self, case_id: UUID, from_day: date | None, to_day: date) -> CaseDatesDiff:
        """From the state on ``from_day`` (``None`` or before the opening: from before the
        file) to the state on ``to_day``, with one read of the file."""
        if from_day is not None and to_day < from_day:
            msg = "to_day must not be before from_day"
            raise ValueError(msg)
        events = self._events(case_id)
        after = self._on(case_id, events, to_day)
        before = None if from_day is None else replay_until(events, self.end_of(from_day))
        start = None if before is None else before.before
        between = [
            event
            for event in events
            if business_time(event) < after.before
            and (start is None or business_time(event) >= start)
        ]
        return CaseDatesDiff(before=before, after=after, events=between)

    def end_of(self, day: date) -> datetime:
        """The first instant after ``day`` in the office's zone: "on or before ``day``"
        is "before this"."""
        return end_of_day(day, self.zone)

    def _events(self, case_id: UUID) -> list[CaseFile.Event]:
        return self._store.events_of(case_id, CaseFile.Event, CaseNotFound(case_id))

    def _on(self, case_id: UUID, events: list[CaseFile.Event], day: date) -> CaseOnDate:
        state = replay_until(events, self.end_of(day))
        if state is None:
            opened = business_time(events[0]).astimezone(self.zone).date()
            raise CaseNotOpenedYet(case_id, day, opened)
        return state
