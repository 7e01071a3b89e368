"""Long case files' histories written ahead, in the API process, as the files grow.

A whole history is fast once its entries are kept (:mod:`adapters.reports.kept_histories`):
a request then writes only the events after them. What was left slow is the one request
that finds nothing kept anywhere (about 45 ms for 5,000 events here): the first after a
file grew long. :class:`HistoryKeeper` observes the service's writes
(:class:`service_ports.WriteObserver`) and, each time a long case file reaches another
multiple of :data:`~adapters.reports.kept_histories.SHELF_STEP` events, writes both views
of its history in a thread of its own and keeps them in memory and on the store's shelf,
as a request would. A request then finds at most ``SHELF_STEP`` events after what is kept.

Writes of other processes (``akte inbox run``, ticks, imports) are not observed here; the
next such multiple written through the API keeps the file, and ``akte histories keep``
keeps every long file at once (after a deployment, or at night).

The thread does one file at a time, and at most :data:`MAX_WAITING` files wait: a burst
beyond that is left to the next multiple or request. A failure is logged by its type only
(no personal data in the log) and the keeper goes on.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Final
from uuid import UUID

from adapters.reports import case_history
from adapters.reports.case_history import DecodeBatch
from adapters.reports.kept_histories import SHELF_STEP, KeptHistories, KeptShelf
from domain.case_file import CaseFile
from service import AkteService
from service_common import CaseNotFound

logger = logging.getLogger("akte.history_keeper")

MAX_WAITING: Final = 1000
"""Files waiting to be written ahead; more are left to a later multiple or a request."""


class HistoryKeeper:
    """Writes long case files' histories ahead as they grow (see the module)."""

    def __init__(
        self,
        service: AkteService,
        kept: KeptHistories,
        shelf: KeptShelf,
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
        self.kept_files = 0
        """Files written ahead so far (for tests and the curious)."""

    def start(self) -> None:
        self._thread.start()
        self._service.observe_writes(self)

    def stop(self) -> None:
        """Stop observing, let the file in hand finish, and end the thread; files still
        waiting are left (the next multiple or request keeps them)."""
        self._service.stop_observing_writes(self)
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

    def saved(self, events: Sequence[object]) -> None:
        for event in events:
            if (
                isinstance(event, CaseFile.Event)
                and event.originator_version >= self._kept.min_entries
                and event.originator_version % SHELF_STEP == 0
            ):
                self._queue(event.originator_id)

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
