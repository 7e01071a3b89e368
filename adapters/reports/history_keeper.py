"""Long case files' histories written ahead, in the API process, as the files grow.

A whole history is fast once its entries are kept (:mod:`adapters.reports.kept_histories`):
a request then writes only the events after them. What was left slow is the one request
that finds nothing kept anywhere (about 45 ms for 5,000 events here): the first after a
file grew long. :class:`HistoryKeeper` observes the service's writes
(:class:`service_ports.WriteObserver`) and, each time a long case file reaches another
multiple of :data:`~adapters.reports.kept_histories.SHELF_STEP` events, writes both views
of its history in a thread of its own and keeps them in memory and on the store's shelf,
as a request would. A request then finds at most ``SHELF_STEP`` events after what is kept.

Writes of other processes (``akte inbox run``, ticks, imports) and a group's writes are
not observed; :meth:`HistoryKeeper.follow_log` finds them in the log instead: every few
seconds it asks the store which aggregates reached such a multiple since it last looked
(one short range of the log's primary key) and keeps those that are case files. It
starts at the log's head: files already long when the process started are left to
``akte histories keep`` (after a deployment, or at night).

The thread does one file at a time, and at most :data:`MAX_WAITING` files wait: a burst
beyond that is left to the next multiple or request. A failure is logged by its type only
(no personal data in the log) and the keeper goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Final, Protocol
from uuid import UUID

from adapters.reports import case_history
from adapters.reports.case_history import DecodeBatch
from adapters.reports.kept_histories import SHELF_STEP, KeptHistories, KeptShelf, view_name
from domain.case_file import CaseFile
from service import AkteService
from service_common import CaseNotFound

logger = logging.getLogger("akte.history_keeper")

MAX_WAITING: Final = 1000
"""Files waiting to be written ahead; more are left to a later multiple or a request."""
FOLLOW_SECONDS: Final = 5.0
"""How often the keeper looks in the log for files that other processes grew long."""


class KeeperShelf(KeptShelf, Protocol):
    """The shelf, and how far it keeps a file without reading it."""

    def kept_version(self, case_id: UUID, view: str, writer: str) -> int | None:
        """How many entries ``writer`` kept for the file in this view (None: none);
        raises if the store cannot answer."""
        ...


class LogSteps(Protocol):
    """The log as the keeper follows it
    (:class:`adapters.store.kept_history_shelf.StepsInLog`)."""

    def head(self) -> int:
        """The log's last position; raises if the store cannot answer."""
        ...

    def reached(self, after: int, until: int, step: int, min_events: int) -> list[tuple[UUID, int]]:
        """The aggregates, with the version, that reached a multiple of ``step`` (at least
        ``min_events``) between the two positions, ``after`` excluded."""
        ...


class HistoryKeeper:
    """Writes long case files' histories ahead as they grow (see the module)."""

    def __init__(
        self,
        service: AkteService,
        kept: KeptHistories,
        shelf: KeeperShelf,
        decode_batch: DecodeBatch | None = None,
    ) -> None:
        """``decode_batch``: as for :func:`~adapters.reports.case_history.build_history_json`
        (the bootstrap passes the personal data mapper's batch decoder)."""
        self._service = service
        self._kept = kept
        self._shelf = shelf
        self._decode = decode_batch
        self._waiting: queue.Queue[UUID | None] = queue.Queue(MAX_WAITING)
        self._queued: set[UUID] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="akte-history-keeper", daemon=True)
        self._follower: threading.Thread | None = None
        self._stopping = threading.Event()
        self._looked = threading.Condition()
        self._looked_to: int | None = None
        self.kept_files = 0
        """Files written ahead so far (for tests and the curious)."""

    def start(self) -> None:
        self._thread.start()
        self._service.observe_writes(self)

    def stop(self) -> None:
        """Stop observing, let the file in hand finish, and end the thread; files still
        waiting are left (the next multiple or request keeps them)."""
        self._service.stop_observing_writes(self)
        self._stopping.set()
        if self._follower is not None:
            self._follower.join()
        with self._lock:
            self._queued.clear()
            while True:
                try:
                    self._waiting.get_nowait()
                except queue.Empty:
                    break
                self._waiting.task_done()
        self._waiting.put(None)
        self._thread.join()

    def drain(self) -> None:
        """Wait until every file waiting has been written (tests)."""
        self._waiting.join()

    def follow_log(
        self, log: LogSteps, every_seconds: float = FOLLOW_SECONDS, *, after: int | None = None
    ) -> None:
        """Also keep the files that reach a multiple of the step through other processes
        or groups, found in ``log`` every ``every_seconds`` (after :meth:`start`), from
        its head now on (``after``: from that position instead). A failure to look is
        logged by its type and tried again."""
        if after is not None:
            self._looked_to = after
        else:
            try:
                self._looked_to = log.head()
            except Exception as error:  # the store is down: from its head once it answers
                logger.error(
                    "looking in the log for long files failed with %s", type(error).__name__
                )
        self._follower = threading.Thread(
            target=self._follow,
            args=(log, every_seconds),
            name="akte-history-follower",
            daemon=True,
        )
        self._follower.start()

    @property
    def following(self) -> bool:
        """Whether it follows the log (:meth:`follow_log`)."""
        return self._follower is not None and self._follower.is_alive()

    def looked_past(self, position: int, timeout: float) -> bool:
        """Wait until the log was looked at as far as ``position`` and what it found is
        queued (tests; then :meth:`drain`); False if that took longer than ``timeout``."""
        with self._looked:
            return self._looked.wait_for(
                lambda: self._looked_to is not None and self._looked_to >= position, timeout
            )

    def _follow(self, log: LogSteps, every_seconds: float) -> None:
        while not self._stopping.wait(every_seconds):
            try:
                head = log.head()
                after = self._looked_to
                if after is not None and head > after:
                    found = log.reached(after, head, SHELF_STEP, self._kept.min_entries)
                    for case_id, version in found:
                        # Written through this process, it was kept when it was saved.
                        if not self._kept_as_far_as(case_id, version):
                            self._queue(case_id)  # not a case file: skipped when kept
            except Exception as error:
                logger.error(
                    "looking in the log for long files failed with %s", type(error).__name__
                )
                continue
            with self._looked:
                self._looked_to = head
                self._looked.notify_all()

    def saved(self, events: Sequence[object]) -> None:
        for event in events:
            if (
                isinstance(event, CaseFile.Event)
                and event.originator_version >= self._kept.min_entries
                and event.originator_version % SHELF_STEP == 0
            ):
                self._queue(event.originator_id)

    def _kept_as_far_as(self, case_id: UUID, version: int) -> bool:
        # The view _keep writes last: kept so far, both are.
        last_view = view_name(with_personal_data=False)
        kept = self._shelf.kept_version(case_id, last_view, self._kept.writer)
        return kept is not None and kept >= version

    def _queue(self, case_id: UUID) -> None:
        with self._lock:
            if case_id in self._queued:
                return
            try:
                self._waiting.put_nowait(case_id)
            except queue.Full:
                return
            self._queued.add(case_id)

    def _run(self) -> None:
        while True:
            case_id = self._waiting.get()
            try:
                if case_id is None:
                    return
                with self._lock:
                    self._queued.discard(case_id)
                self._keep(case_id)
            finally:
                self._waiting.task_done()

    def _keep(self, case_id: UUID) -> None:
        try:
            for with_personal_data in (True, False):
                case_history.build_history_json(
                    self._service,
                    case_id,
                    with_personal_data=with_personal_data,
                    limit=case_history.MAX_HISTORY_PAGE,
                    decode_batch=self._decode,
                    kept=self._kept,
                    shelf=self._shelf,
                )
        except CaseNotFound:
            return
        except Exception as error:
            logger.error("writing a history ahead failed with %s", type(error).__name__)
            return
        self.kept_files += 1
