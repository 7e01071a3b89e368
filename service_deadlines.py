"""Deadlines: the time-driven effects of legal periods; the context ``service.deadlines``.

:meth:`Deadlines.run_deadline_tick` records, on each case file, the consent to a visa
that the office's silence gave (:data:`domain.deadlines.DEEMED_ENTRY_CONSENT`, § 31
Abs. 1 AufenthV): once the period after the request has passed without a decision. It
reads the service's clock, counts with the office's public holidays and its date in the
office's time zone, and is idempotent: a recorded consent is a decision, so a second tick
(or a second host) finds nothing to do, and a case file changed meanwhile is left to the
next tick. Deadlines that only need to be seen (due dates, validity) are listed by the
worklist :mod:`projections.worklists.deadlines`.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, date, tzinfo
from typing import Final
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.acts import Act
from domain.case_file import CaseFile
from domain.deadlines import (
    DEEMED_ENTRY_CONSENT,
    DeadlineCursor,
    HolidayCalendar,
    NoHolidays,
    has_passed,
    legal_day,
)
from domain.errors import DomainError
from service_common import ConcurrentModification
from service_ports import ServiceStore

DEADLINE_USER: Final = "deadlines-tick"
"""Who acts when a deadline's effect is recorded."""
_TICK_BATCH: Final = 500


@dataclass
class DeadlineTickReport:
    scanned: int = 0
    """Entry-procedure requests read from the log in this tick."""
    deemed_consents: int = 0
    """Consents recorded as given by silence."""
    still_running: int = 0
    """Undecided entry procedures whose period has not passed yet."""
    left_for_next_tick: int = 0
    """Case files changed by someone else meanwhile: the next tick looks again."""
    cursor: int = 0
    deemed: list[tuple[str, int]] = field(default_factory=list)
    """(case id, entry procedure number) of each consent recorded."""


class Deadlines:
    """``service.deadlines``: the deadline tick."""

    def __init__(
        self,
        store: ServiceStore,
        *,
        holidays: HolidayCalendar | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        """``holidays``: the office's public holidays (None: weekends only, for tests
        that do not care); ``zone``: the office's time zone, which says what "today" is."""
        self._store = store
        self.holidays: HolidayCalendar = holidays or NoHolidays()
        self.zone = zone

    def today(self) -> date:
        """The office's date on the service's clock."""
        return self._store.clock().astimezone(self.zone).date()

    def run_deadline_tick(self, *, by: str = DEADLINE_USER) -> DeadlineTickReport:
        """Record every deemed consent whose period has passed; idempotent.

        Reads the entry-procedure requests from the cursor; the cursor moves up to the
        first request that still waits (undecided, period running, or left because of a
        concurrent change), so none is skipped however long it waits.
        """
        report = DeadlineTickReport()
        today = self.today()
        cursor = self._store.find(DeadlineCursor.ID, DeadlineCursor) or DeadlineCursor.start(
            self._store.act(by, None)
        )
        topics = [get_topic(CaseFile.EntryProcedureRequested)]
        position = cursor.position
        first_pending: int | None = None
        last_seen = position
        looked_at: dict[UUID, bool] = {}
        while True:
            with self._store.store_errors():
                batch = self._store.recorder.select_notifications(
                    start=last_seen + 1, limit=_TICK_BATCH, topics=topics
                )
            if not batch:
                break
            for notification in batch:
                report.scanned += 1
                last_seen = notification.id
                case_id = UUID(str(notification.originator_id))
                if case_id not in looked_at:
                    looked_at[case_id] = self._tick_case(case_id, today, report, by)
                if looked_at[case_id] and first_pending is None:
                    first_pending = notification.id
            if len(batch) < _TICK_BATCH:
                break
        new_position = last_seen if first_pending is None else first_pending - 1
        cursor.advance(new_position, self._store.act(by, None))
        if cursor.pending_events:
            # Another tick moved it meanwhile: the next one reads from there.
            with contextlib.suppress(IntegrityError), self._store.store_errors():
                self._store.save(cursor)
        report.cursor = max(new_position, position)
        return report

    def _tick_case(self, case_id: UUID, today: date, report: DeadlineTickReport, by: str) -> bool:
        """One case file's deemed consents; True while one of them still waits."""
        case = self._store.get_case(case_id)
        if case.status != "active" or case.is_erased:
            return False
        pending = False
        rule = DEEMED_ENTRY_CONSENT
        for entry in case.entry_procedures:
            if entry.status != "requested" or not rule.applies(entry.legal_basis):
                continue
            last_day = rule.ends_on(legal_day(entry.requested_at), self.holidays)
            if not has_passed(last_day, today):
                report.still_running += 1
                pending = True
                continue
            number = entry.number

            def deem(c: CaseFile, act: Act, n: int = number) -> date:
                return c.deem_entry_consent_given(
                    entry_procedure_number=n, holidays=self.holidays, today=today, act=act
                )

            try:
                self._store.change_case(case_id, case.version, by, None, deem)
            except (ConcurrentModification, DomainError):
                # Decided (or changed) meanwhile: the next tick reads the file again.
                report.left_for_next_tick += 1
                return True
            case = self._store.get_case(case_id)
            report.deemed_consents += 1
            report.deemed.append((str(case_id), number))
        return pending
