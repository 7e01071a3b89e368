"""Follow the event log: keep read models up to date, in a thread or a worker process.

:class:`ProjectionRunner` runs a loop that processes batches while there are new events
and otherwise waits: on SQLite it polls (the library's SQLite recorder cannot be
subscribed to), on PostgreSQL a listener thread LISTENs on the events channel and wakes
the loop on every NOTIFY the recorder sends, and the loop still polls every
``poll_interval`` seconds in case a notification is lost (a LISTEN connection can die
silently, eventsourcing issue 305). Errors are logged (reason only, never data), the
loop backs off and carries on; a broken views connection is replaced.

A read model that fails on an event (its handler raises, the views store refuses its
rows) stops alone: the runner processes each of its read models on its own to find
which fails, and at which event (one event per transaction from its position if the
error did not say), keeps that one at the event before, and goes on with the others.
It logs the read model, the event's position and the error's type (never a message
that could quote data) and records the failure in the views store
(:func:`projections.status.record_failure`: ``/readyz`` then names the read model,
``akte_read_model_failed`` is 1). Nothing is skipped: after a fix, a restart (or the
retry every ``failed_retry_interval`` seconds) processes that event first, and the
record goes once it has been processed.

Only one worker follows a projection at a time: the runner takes each projection's lock
(PostgreSQL advisory lock, SQLite lock file) and leaves those another worker holds
alone, trying again every ``lock_retry_interval`` seconds (so a standby takes over when
the active worker stops or dies). Even without locks, the engine's compare-and-set on
positions would keep two writers from applying a batch twice.

:meth:`ProjectionRunner.wait_until` gives read-your-writes: after a command returned
``Recorded.position``, wait until the read models have processed it.
:func:`wait_for_position` does the same from a process that runs no runner (the
projections are followed by ``akte projections run`` elsewhere).

:func:`rebuild_in_processes` rebuilds read models in several processes at once, one per
group of read models that handle the same events (``akte projections rebuild --jobs``).

:class:`ProjectionProcess` runs the runner of ``akte serve`` in a child process of its own
on PostgreSQL: the API's interpreter then spends its one core (the GIL) on requests
alone, and the runner works on another. The child stops with the server, also when the
server is killed (it watches the pipe the server holds open).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import multiprocessing
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Final
from uuid import UUID

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import EventSourcingError
from eventsourcing.persistence import Mapper
from eventsourcing.utils import TopicError, get_topic, resolve_topic
from pydantic import SecretStr

from adapters.logging_setup import configure_logging
from adapters.settings import Settings
from adapters.store.notification_reader import (
    EventDecoder,
    UndecodableNotification,
    ids_are_uuids,
    notification_reader,
)
from adapters.views.store import PostgresListener, PostgresViewsStore
from projections.engine import DEFAULT_BATCH_SIZE, Progress, ProjectionEngine
from projections.errors import (
    EventLogUnavailable,
    InconsistentLog,
    ProjectionBusy,
    ProjectionError,
    ReadModelFailed,
    ReadModelNewer,
)
from projections.generations import rebuild_beside, rebuild_lock_name, rebuild_locks
from projections.positions import read_positions
from projections.projection import Projection
from projections.read_models import READ_MODELS
from projections.selection import partition_projections, select_projections
from projections.status import ReadModelFailure, clear_failures, read_failures, record_failure
from projections.storage import StoredNotification, ViewsStore, ViewsWriter
from service import AkteService

logger = logging.getLogger("akte.projections")

DEFAULT_RUNNER_BATCH_SIZE: Final = 2000
"""Smaller than a rebuild's batches: a live runner commits sooner, so waiters wait less."""
SQLITE_POLL_INTERVAL: Final = 0.2
POSTGRES_POLL_INTERVAL: Final = 1.5
"""The fallback when NOTIFY is lost; normally a notification wakes the runner first."""
LISTEN_TIMEOUT: Final = 0.5
"""How long the listener blocks at a time (it checks for stop in between)."""
LISTEN_CHECK_INTERVAL: Final = 15.0
"""Prove an idle LISTEN connection alive by a query this often."""
LOCK_RETRY_INTERVAL: Final = 5.0
FAILED_RETRY_INTERVAL: Final = 300.0
"""How often a read model stopped on a failing event is tried again (a restart tries at
once): in case what failed was passing, e.g. a constraint another fix has lifted."""
BACKOFF_MIN: Final = 0.2
BACKOFF_MAX: Final = 5.0
WAIT_POLL_INTERVAL: Final = 0.02
CHILD_STOP_TIMEOUT: Final = 10.0
"""How long a projection child may take to finish its batch and close before it is killed."""
CHILD_RESTART_BACKOFF_MAX: Final = 30.0
CHILD_STABLE_SECONDS: Final = 30.0
"""A restarted child counts as running again (backoff reset, ready) after this long."""

_MAX_REASON_LENGTH: Final = 200


def _reason(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0][:_MAX_REASON_LENGTH] if lines else type(error).__name__


# --------------------------------------------------------------------- the log


def _without_personal_data(mapper: Mapper[Any]) -> Mapper[Any]:
    """The library's own mapper with the application's transcoder, cipher and compressor,
    but not the per-person sealing (``adapters/personal_data/mapper.py``): read models hold no
    personal data, so their events keep it sealed (the blob stays one opaque attribute,
    and the personal fields are absent). Unsealing costs about a third of the rebuild
    rate, and a read model that cannot see personal data cannot leak it."""
    if type(mapper) is Mapper:
        return mapper
    return Mapper(transcoder=mapper.transcoder, cipher=mapper.cipher, compressor=mapper.compressor)


class ApplicationEventLog:
    """The library's notification log as the engine's :class:`EventLog` (and
    :class:`~projections.storage.DecodingEventLog`: :meth:`read_events` reads and decodes in
    bulk, see :mod:`adapters.store.notification_reader`).

    Library and driver errors become :class:`EventLogUnavailable` (the store failed) or
    :class:`InconsistentLog` (an event that cannot be decoded or whose class is gone).
    """

    def __init__(self, application: Application[Any]) -> None:
        self._recorder = application.recorder
        self._mapper = _without_personal_data(application.mapper)
        self._reader = notification_reader(self._recorder)
        self._decoder = EventDecoder(self._mapper, uuid_ids=ids_are_uuids(self._recorder))

    @property
    def channel(self) -> str | None:
        """The PostgreSQL NOTIFY channel of the events table (None on SQLite)."""
        channel = getattr(self._recorder, "channel_name", None)
        return channel if isinstance(channel, str) else None

    def read(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        topics: Sequence[str] = (),
    ) -> Sequence[StoredNotification]:
        try:
            return self._recorder.select_notifications(
                start=after + 1, limit=limit, stop=until, topics=list(topics)
            )
        except (EventSourcingError, psycopg.Error, sqlite3.Error, OSError) as error:
            msg = f"the event store could not be read: {_reason(error)}"
            raise EventLogUnavailable(msg) from None

    def head(self) -> int:
        try:
            return self._recorder.max_notification_id() or 0
        except (EventSourcingError, psycopg.Error, sqlite3.Error, OSError) as error:
            msg = f"the event store could not be read: {_reason(error)}"
            raise EventLogUnavailable(msg) from None

    def event_class(self, topic: str) -> type[Any]:
        try:
            resolved = resolve_topic(topic)
        except TopicError:
            raise InconsistentLog(f"the log holds events of an unknown class {topic}") from None
        if not isinstance(resolved, type):
            raise InconsistentLog(f"the topic {topic} does not name an event class")
        return resolved

    def topic_of(self, event_class: type[Any]) -> str:
        return get_topic(event_class)

    def decode(self, notification: StoredNotification) -> Any:
        try:
            return self._mapper.to_domain_event(notification)  # type: ignore[arg-type]
        except (EventSourcingError, ValueError, TypeError, KeyError):
            # The library's message quotes the stored state: name the notification only.
            msg = f"notification {notification.id} ({notification.topic}) cannot be decoded"
            raise InconsistentLog(msg) from None

    def case_history(self, case_id: str, before_version: int) -> Sequence[Any]:
        """One case file's events before ``before_version``, decoded (a file that came
        back from another office: :class:`~projections.storage.CaseHistoryLog`)."""
        try:
            stored = self._recorder.select_events(UUID(case_id), lte=before_version - 1)
        except (EventSourcingError, psycopg.Error, sqlite3.Error, OSError) as error:
            msg = f"the event store could not be read: {_reason(error)}"
            raise EventLogUnavailable(msg) from None
        try:
            return [self._mapper.to_domain_event(event) for event in stored]
        except (EventSourcingError, ValueError, TypeError, KeyError):
            msg = f"an event of case file {case_id} cannot be decoded"
            raise InconsistentLog(msg) from None

    def read_events(
        self,
        after: int,
        limit: int,
        *,
        until: int | None = None,
        topics: Sequence[str] = (),
    ) -> Sequence[tuple[int, Any, str]]:
        """Like :meth:`read`, decoded: notification id, event and originator id (text).

        Bulk, through the store's own driver where the store is the library's SQLite or
        PostgreSQL recorder (:mod:`adapters.store.notification_reader`)."""
        if self._reader is None:
            return [
                (notification.id, self.decode(notification), str(notification.originator_id))  # type: ignore[attr-defined]
                for notification in self.read(after, limit, until=until, topics=topics)
            ]
        try:
            rows = self._reader(after, limit, until, topics)
        except (EventSourcingError, psycopg.Error, sqlite3.Error, OSError) as error:
            msg = f"the event store could not be read: {_reason(error)}"
            raise EventLogUnavailable(msg) from None
        try:
            return self._decoder.decode(rows)
        except UndecodableNotification as error:
            raise InconsistentLog(str(error)) from None


# ------------------------------------------------------------------- the runner


class _BuildStopped(Exception):
    """A stop was asked while a new version of a read model was built beside."""


@dataclass
class _BuildResult:
    """How a build of a read model's new version beside the old one ended."""

    name: str
    switched: bool = False
    error: Exception | None = None


@dataclass
class RunnerStats:
    batches: int = 0
    notifications: int = 0
    conflicts: int = 0
    errors: int = 0
    listen_connections: int = 0
    """LISTEN connections opened (more than one: a lost connection was replaced)."""
    last_error: str | None = None
    last_error_at: datetime | None = None


class ProjectionRunner:
    """Keeps ``projections`` up to date from ``log``, in a daemon thread or blocking."""

    def __init__(
        self,
        log: ApplicationEventLog,
        views: ViewsStore,
        projections: Sequence[Projection],
        *,
        batch_size: int = DEFAULT_RUNNER_BATCH_SIZE,
        poll_interval: float | None = None,
        listen: bool = True,
        lock_retry_interval: float = LOCK_RETRY_INTERVAL,
        on_commit: Callable[[int], None] | None = None,
        failed_retry_interval: float = FAILED_RETRY_INTERVAL,
    ) -> None:
        """``poll_interval``: seconds between polls when idle (default: 0.2 on SQLite,
        1.5 on PostgreSQL, where NOTIFY normally wakes the runner much sooner).
        ``listen=False`` turns LISTEN off (polling only). ``on_commit(position)`` is
        called in the runner's thread after each committed batch with the lowest
        position of the projections it follows."""
        self._log = log
        self._views = views
        self.projections = tuple(projections)
        self._batch_size = batch_size
        is_postgres = isinstance(views, PostgresViewsStore)
        self._poll_interval = (
            poll_interval
            if poll_interval is not None
            else (POSTGRES_POLL_INTERVAL if is_postgres else SQLITE_POLL_INTERVAL)
        )
        self._channel = log.channel if listen and is_postgres else None
        self._lock_retry_interval = lock_retry_interval
        self._on_commit = on_commit
        self._failed_retry_interval = failed_retry_interval
        self._failed: dict[str, ReadModelFailure] = {}
        self._recorded: dict[str, int | None] = {}
        """Failures recorded in the views store (by a run before, or this one), by name:
        their rows go once the read model has processed the event."""
        self.stats = RunnerStats()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._condition = threading.Condition()
        self._positions: dict[str, int] = {}
        self._held: frozenset[str] = frozenset()
        self._outdated: set[str] = set()
        """Read models a newer release serves: never followed again by this runner."""
        self._waiting: set[str] = set()
        """Held read models stored by an older version whose new version is being built
        (in a thread of its own) or cannot be built now (another rebuild of it runs): not
        followed until their switch, tried again later, never reset."""
        self._builds: dict[str, threading.Thread] = {}
        self._built: queue.Queue[_BuildResult] = queue.Queue()
        self._next_build: dict[str, float] = {}
        """When a build that could not run (another rebuild held it, an error) may be
        tried again, by read model (monotonic seconds)."""
        self._threads: list[threading.Thread] = []
        self.listening = False
        """True while a LISTEN connection is established (PostgreSQL)."""

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Follow the log in a daemon thread (and a listener thread on PostgreSQL)."""
        if self._threads:
            msg = "the runner is already started"
            raise RuntimeError(msg)
        self._stopping.clear()
        self._threads = [threading.Thread(target=self._loop, name="akte-projections", daemon=True)]
        if self._channel is not None:
            self._threads.append(
                threading.Thread(target=self._listen, name="akte-projections-listen", daemon=True)
            )
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Ask the loop to end after the batch in progress (safe in a signal handler)."""
        self._stopping.set()
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop after the batch in progress; True when every thread has ended in time."""
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(deadline - time.monotonic(), 0))
        stopped = not any(thread.is_alive() for thread in self._threads)
        if stopped:
            self._threads = []
        return stopped

    def run(self) -> None:
        """Follow the log in the calling thread until :meth:`stop` (worker processes).

        A stop asked before this call (a SIGTERM between installing the handler and
        calling ``run``) is kept: the loop ends at once instead of following for ever."""
        listener: threading.Thread | None = None
        if self._channel is not None:
            listener = threading.Thread(
                target=self._listen, name="akte-projections-listen", daemon=True
            )
            listener.start()
        try:
            self._loop()
        finally:
            self._stopping.set()
            if listener is not None:
                listener.join(LISTEN_TIMEOUT * 4)

    def wake(self) -> None:
        """Look for new events now instead of at the next poll."""
        self._wake.set()

    # ---------------------------------------------------------------- waiting

    @property
    def failures(self) -> dict[str, ReadModelFailure]:
        """The read models this runner has stopped on a failing event, by name."""
        with self._condition:
            return dict(self._failed)

    @property
    def held(self) -> frozenset[str]:
        """The projections this runner follows now (it holds their locks)."""
        return self._held

    def positions(self) -> dict[str, int]:
        """Positions of the projections this runner has written (or loaded) so far."""
        with self._condition:
            return dict(self._positions)

    def wait_until(self, position: int, timeout: float, names: Iterable[str] | None = None) -> bool:
        """True once all (or the named) projections have processed ``position``; False
        after ``timeout`` seconds. Projections another worker follows are looked up in
        the views store."""
        targets = [p.name for p in select_projections(self.projections, names)]
        deadline = time.monotonic() + timeout
        self.wake()
        while True:
            with self._condition:
                # A stopped read model will not get there: waiting for it would make every
                # wait time out (it is reported by /readyz instead).
                targets = [name for name in targets if name not in self._failed]
                mine = [name for name in targets if name in self._held]
                pending = [n for n in mine if self._positions.get(n, 0) < position]
                others = [name for name in targets if name not in self._held]
                if not pending and not others:
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if pending:
                    self._condition.wait(min(remaining, WAIT_POLL_INTERVAL * 5))
                    continue
            # Only projections followed elsewhere are left: ask the views store.
            if _stored_positions_reach(self._views, others, position):
                return True
            time.sleep(min(WAIT_POLL_INTERVAL, max(deadline - time.monotonic(), 0)))

    # -------------------------------------------------------------- internals

    def _loop(self) -> None:
        writer: ViewsWriter | None = None
        engine: ProjectionEngine | None = None
        held: set[str] = set()
        next_lock_attempt = 0.0
        next_failed_retry = 0.0
        next_waiting_retry = 0.0
        backoff = BACKOFF_MIN
        try:
            while not self._stopping.is_set():
                try:
                    if writer is None:
                        writer = self._views.writer()
                        held = set()
                        engine = None
                        next_lock_attempt = 0.0  # a new connection holds no lock yet
                    wanted = len(self.projections) - len(self._outdated)
                    if len(held) < wanted and time.monotonic() >= next_lock_attempt:
                        next_lock_attempt = time.monotonic() + self._lock_retry_interval
                        gained = {
                            p.name
                            for p in self.projections
                            if p.name not in held and p.name not in self._outdated
                        }
                        gained = {name for name in gained if writer.try_lock(name)}
                        if gained:
                            held |= gained
                            engine = self._engine(writer, held)
                            self._load_recorded_failures(gained)
                            self._publish(held, engine)
                    if self._failed and time.monotonic() >= next_failed_retry:
                        next_failed_retry = time.monotonic() + self._failed_retry_interval
                        if self._retry_failed(writer):
                            engine = self._engine(writer, held)
                            self._publish(held, engine)
                    finished = self._collect_builds(writer, held)
                    if finished or (
                        self._waiting
                        and not self._building()
                        and time.monotonic() >= next_waiting_retry
                    ):
                        next_waiting_retry = time.monotonic() + self._lock_retry_interval
                        engine = self._engine(writer, held)
                        self._publish(held, engine)
                    if engine is None:
                        # Another worker follows every projection (or all have failed).
                        self._stopping.wait(self._lock_retry_interval)
                        continue
                    try:
                        result = engine.process_batch()
                    except ReadModelNewer as newer:
                        self._leave(writer, held, newer)
                        engine = self._engine(writer, held)
                        self._publish(held, engine)
                        continue
                    except InconsistentLog as failed:
                        # A read model cannot process an event: find which, stop it alone.
                        self._record_error(failed)
                        self._isolate(writer, held)
                        next_failed_retry = time.monotonic() + self._failed_retry_interval
                        engine = self._engine(writer, held)
                        self._publish(held, engine)
                        continue
                    backoff = BACKOFF_MIN
                    if result.conflict:
                        self.stats.conflicts += 1
                        continue
                    if result.advanced:
                        self.stats.batches += 1
                        self.stats.notifications += result.advanced
                        if self._recorded:
                            self._clear_passed(writer, engine.positions())
                        self._publish(held, engine)
                        if self._on_commit is not None:
                            self._on_commit(result.position)
                    if result.read < self._batch_size:
                        self._wake.wait(self._poll_interval)
                        self._wake.clear()
                except Exception as error:
                    # Keep following whatever failed: a runner that died silently would
                    # leave every read model stale and every wait_until timing out.
                    self._record_error(error)
                    if not isinstance(error, EventLogUnavailable) and writer is not None:
                        _close_writer_quietly(writer)  # releases the locks; taken again
                        writer = None
                        self._publish(set(), None)
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            self._stopping.set()  # ends the builds between two batches
            for thread in list(self._builds.values()):
                thread.join()
            if writer is not None:
                writer.close()
            self._publish(set(), None)

    def _engine(self, writer: ViewsWriter, held: set[str]) -> ProjectionEngine | None:
        """An engine for the held read models that have not failed and are not waiting
        for their new version (None: there are none)."""
        while True:
            try:
                self._waiting = self._rebuild_older(
                    writer,
                    [p for p in self.projections if p.name in held and p.name not in self._failed],
                )
            except ReadModelNewer as newer:
                self._leave(writer, held, newer)
                continue
            following = [
                p
                for p in self.projections
                if p.name in held and p.name not in self._failed and p.name not in self._waiting
            ]
            if not following:
                return None
            engine = ProjectionEngine(self._log, writer, following, batch_size=self._batch_size)
            try:
                engine.prepare()
            except ReadModelNewer as newer:
                self._leave(writer, held, newer)
                continue
            return engine

    def _rebuild_older(self, writer: ViewsWriter, candidates: Sequence[Projection]) -> set[str]:
        """Read models stored by an older version of their code (this release changed
        them): build the new version beside the old one, which serves until the switch
        (:mod:`projections.generations`), instead of emptying it and starting over.

        Returns those that must wait: their new version is being built, each in a thread
        of its own with its own connection (this loop goes on following the others), or
        another rebuild of them runs (an ``akte projections rebuild`` beside). They are not
        followed until their switch; resetting them would empty what readers use."""
        with self._views.reader() as session:
            stored = {p.name: p.version for p in read_positions(session)}
        older = [p for p in candidates if p.name in stored and stored[p.name] < p.version]
        for projection in older:
            self._start_build(projection)
        return {p.name for p in older}

    def _building(self) -> bool:
        return any(thread.is_alive() for thread in self._builds.values())

    def _start_build(self, projection: Projection) -> None:
        running = self._builds.get(projection.name)
        if (running is not None and running.is_alive()) or self._stopping.is_set():
            return
        if time.monotonic() < self._next_build.get(projection.name, 0.0):
            return
        thread = threading.Thread(
            target=self._build_beside,
            args=(projection,),
            name=f"akte-projections-build-{projection.name}",
            daemon=True,
        )
        self._builds[projection.name] = thread
        thread.start()

    def _build_beside(self, projection: Projection) -> None:
        """In a build thread: build the new version of ``projection`` beside the one in
        service and switch, with a connection of its own; the loop takes the result
        (:meth:`_collect_builds`)."""
        result = _BuildResult(projection.name)
        try:
            writer = self._views.writer()
        except Exception as error:
            result.error = error
            self._built.put(result)
            self._wake.set()
            return
        lock = rebuild_lock_name(projection.name)
        try:
            if not writer.try_lock(lock):
                logger.warning(
                    "read model %s: another rebuild of it runs; the version in service is "
                    "kept and this process tries again later",
                    projection.name,
                )
                return
            try:
                logger.warning(
                    "read model %s is stored by an older version: rebuilding it beside the "
                    "one in service",
                    projection.name,
                )
                rebuild_beside(
                    self._log,
                    writer,
                    [projection],
                    batch_size=self._batch_size,
                    progress=self._interrupt_on_stop,
                )
                result.switched = True
            finally:
                writer.unlock(lock)
        except _BuildStopped:
            pass
        except Exception as error:
            result.error = error
        finally:
            _close_writer_quietly(writer)
            self._built.put(result)
            self._wake.set()

    def _collect_builds(self, writer: ViewsWriter, held: set[str]) -> bool:
        """Take the results of finished builds (in the loop, with its writer): a build
        that failed on an event stops its read model alone, as any failure; a newer
        version serving is left; other errors are counted and the build is tried again
        later. True when a build finished (the loop makes a new engine)."""
        finished = False
        while True:
            try:
                result = self._built.get_nowait()
            except queue.Empty:
                return finished
            finished = True
            error = result.error
            if isinstance(error, ReadModelNewer):
                self._leave(writer, held, error)
            elif isinstance(error, InconsistentLog):
                position = error.position if isinstance(error, ReadModelFailed) else None
                reason = error.reason if isinstance(error, ReadModelFailed) else str(error)
                self._stop_read_model(writer, result.name, position, reason)
            elif error is not None:
                self._record_error(error)
            elif result.switched and result.name in self._failed:
                self._recovered([result.name], writer)
            if not result.switched:
                self._next_build[result.name] = time.monotonic() + self._lock_retry_interval

    def _interrupt_on_stop(self, _progress: Progress) -> None:
        """Called between the batches of a build: a stop asked ends it there (the version
        in service stays; the next start builds again)."""
        if self._stopping.is_set():
            raise _BuildStopped

    def _leave(self, writer: ViewsWriter, held: set[str], newer: ReadModelNewer) -> None:
        """Stop following read models a newer release has rebuilt and switched to: their
        rows are not this code's to change, and their locks go to the newer workers."""
        for name in newer.names:
            if name in held:
                writer.unlock(name)
                held.discard(name)
            if name not in self._outdated:
                self._outdated.add(name)
                logger.warning(
                    "read model %s: a newer version serves; this process leaves it to the "
                    "newer release's workers",
                    name,
                )

    def _load_recorded_failures(self, names: set[str]) -> None:
        with self._views.reader() as session:
            recorded = read_failures(session)
        for name, failure in recorded.items():
            if name in names:
                self._recorded[name] = failure.position

    def _isolate(self, writer: ViewsWriter, held: set[str]) -> None:
        """Process each held read model on its own up to the head: those that fail stop
        (recorded, logged), the others have caught up. Errors other than a read model's
        failure (the store went away) propagate: the loop backs off as for any batch."""
        target = self._log.head()
        for projection in self.projections:
            if projection.name not in held or projection.name in self._failed:
                continue
            alone = ProjectionEngine(self._log, writer, [projection], batch_size=self._batch_size)
            try:
                alone.catch_up(until=target)
            except InconsistentLog as error:
                position = error.position if isinstance(error, ReadModelFailed) else None
                reason = error.reason if isinstance(error, ReadModelFailed) else str(error)
                if position is None:
                    narrowed = self._narrow(writer, projection, target)
                    if narrowed is None:
                        continue  # processed on its own after all: not stopped
                    position, reason = narrowed
                if position is not None:
                    # Keep what comes before the failing event: the list is as up to date
                    # as it can be, and the fixed read model starts with that event.
                    alone.catch_up(until=position - 1)
                self._stop_read_model(writer, projection.name, position, reason)

    def _narrow(
        self, writer: ViewsWriter, projection: Projection, target: int
    ) -> tuple[int | None, str] | None:
        """Process ``projection`` one event per transaction until it fails: the event
        it fails on and why (None: it did not fail this time)."""
        alone = ProjectionEngine(self._log, writer, [projection], batch_size=1)
        try:
            alone.catch_up(until=target)
        except ReadModelFailed as failed:
            return failed.position, failed.reason
        except InconsistentLog as error:
            return None, str(error)
        return None

    def _stop_read_model(
        self, writer: ViewsWriter, name: str, position: int | None, reason: str
    ) -> None:
        failure = ReadModelFailure(name, position, reason, datetime.now(tz=UTC))
        first = name not in self._failed
        with self._condition:
            self._failed[name] = failure
        record_failure(writer, failure)
        self._recorded[name] = position
        where = f"event {position}" if position is not None else "an event it could not name"
        if first:
            logger.error(
                "read model %s stopped at %s: %s; the other read models go on; once the "
                "cause is fixed, a restart resumes it from this event",
                name,
                where,
                reason,
            )
        else:
            logger.warning("read model %s still fails at %s: %s", name, where, reason)

    def _retry_failed(self, writer: ViewsWriter) -> bool:
        """Try the stopped read models again, each on its own; True when one got past
        its event (it rejoins the others)."""
        target = self._log.head()
        recovered = []
        with self._views.reader() as session:
            stored = {p.name: p.version for p in read_positions(session)}
        for projection in self.projections:
            failure = self._failed.get(projection.name)
            if failure is None:
                continue
            if stored.get(projection.name, projection.version) < projection.version:
                # Its new version failed to build: build it again beside the old one (a
                # plain catch-up would reset the tables readers use); once switched, the
                # loop takes it back (_collect_builds).
                self._start_build(projection)
                continue
            alone = ProjectionEngine(self._log, writer, [projection], batch_size=self._batch_size)
            try:
                alone.catch_up(until=target)
            except InconsistentLog as error:
                position = error.position if isinstance(error, ReadModelFailed) else None
                reason = error.reason if isinstance(error, ReadModelFailed) else str(error)
                self._stop_read_model(writer, projection.name, position or failure.position, reason)
                continue
            recovered.append(projection.name)
        if not recovered:
            return False
        self._recovered(recovered, writer)
        return True

    def _recovered(self, recovered: list[str], writer: ViewsWriter) -> None:
        with self._condition:
            for name in recovered:
                del self._failed[name]
        clear_failures(writer, recovered)
        for name in recovered:
            self._recorded.pop(name, None)
            logger.warning("read model %s got past its failing event and goes on", name)

    def _clear_passed(self, writer: ViewsWriter, positions: dict[str, int]) -> None:
        """Forget recorded failures of read models that have processed their event."""
        passed = [
            name
            for name, position in self._recorded.items()
            if name in positions and name not in self._failed and positions[name] >= (position or 1)
        ]
        if passed:
            clear_failures(writer, passed)
            for name in passed:
                del self._recorded[name]
                logger.warning("read model %s processed its failing event and goes on", name)

    def _publish(self, held: set[str], engine: ProjectionEngine | None) -> None:
        with self._condition:
            self._held = frozenset(held)
            if engine is not None:
                self._positions.update(engine.positions())
            self._condition.notify_all()

    def _record_error(self, error: Exception) -> None:
        self.stats.errors += 1
        self.stats.last_error_at = datetime.now(tz=UTC)
        if isinstance(error, ProjectionError):
            # Our own messages name stores, projections and ids, never data.
            self.stats.last_error = str(error)
            logger.warning("projection runner: %s (retrying)", error)
        else:
            # A bug: its message may quote values, so only the type goes to the log.
            self.stats.last_error = f"unexpected {type(error).__name__}"
            logger.error("projection runner: unexpected %s (retrying)", type(error).__name__)

    def _listen(self) -> None:
        assert self._channel is not None
        assert isinstance(self._views, PostgresViewsStore)
        listener: PostgresListener | None = None
        backoff = BACKOFF_MIN
        last_sign_of_life = time.monotonic()
        try:
            while not self._stopping.is_set():
                try:
                    if listener is None:
                        listener = self._views.listener(self._channel)
                        self.stats.listen_connections += 1
                        self.listening = True
                        last_sign_of_life = time.monotonic()
                        # Events may have arrived while nobody listened.
                        self._wake.set()
                    if listener.wait(LISTEN_TIMEOUT):
                        self._wake.set()
                        last_sign_of_life = time.monotonic()
                    elif time.monotonic() - last_sign_of_life > LISTEN_CHECK_INTERVAL:
                        listener.check()
                        last_sign_of_life = time.monotonic()
                    backoff = BACKOFF_MIN
                except ProjectionError as error:
                    logger.warning("projection listener: %s (polling until reconnected)", error)
                    self.listening = False
                    if listener is not None:
                        _close_quietly(listener)
                        listener = None
                    self._stopping.wait(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            self.listening = False
            if listener is not None:
                _close_quietly(listener)


def _close_writer_quietly(writer: ViewsWriter) -> None:
    # It is being thrown away because it failed: a failing close says nothing new.
    with contextlib.suppress(ProjectionError, psycopg.Error, sqlite3.Error, OSError):
        writer.close()


def _close_quietly(listener: PostgresListener) -> None:
    with contextlib.suppress(ProjectionError, psycopg.Error):
        listener.close()


def _stored_positions_reach(views: ViewsStore, names: Sequence[str], position: int) -> bool:
    """True once the named read models have processed ``position`` (a read model stopped
    on a failing event is not waited for: it would not get there)."""
    with views.reader() as session:
        stored = {p.name: p.position for p in read_positions(session)}
        failed = read_failures(session)
    return all(stored.get(name, 0) >= position for name in names if name not in failed)


def wait_for_position(
    views: ViewsStore,
    projections: Sequence[Projection],
    position: int,
    timeout: float,
    names: Iterable[str] | None = None,
) -> bool:
    """Like :meth:`ProjectionRunner.wait_until`, for a process that runs no runner: polls
    the positions table until the (named) projections have processed ``position``."""
    targets = [p.name for p in select_projections(projections, names)]
    deadline = time.monotonic() + timeout
    while True:
        if _stored_positions_reach(views, targets, position):
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(WAIT_POLL_INTERVAL, remaining))


def lock_projections(writer: ViewsWriter, names: Iterable[str], wait: float) -> None:
    """Take the locks of the named projections, waiting up to ``wait`` seconds for those
    another worker holds (a killed worker's lock goes once its connection is gone)."""
    deadline = time.monotonic() + wait
    pending = list(names)
    while True:
        pending = [name for name in pending if not writer.try_lock(name)]
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    if pending:
        raise ProjectionBusy(pending)


# ------------------------------------------------------------- parallel rebuild


def rebuild_in_processes(
    settings: Settings,
    projections: Sequence[Projection],
    *,
    build_service: Callable[[Settings], AkteService],
    open_views_store: Callable[[Settings], ViewsStore],
    jobs: int,
    batch_size: int = DEFAULT_BATCH_SIZE,
    lock_wait: float = 10.0,
    progress: Callable[[Progress], None] | None = None,
) -> int:
    """Rebuild the projections in up to ``jobs`` processes, one per group of projections
    that share event classes (:func:`partition_projections`): each process reads and
    decodes only its groups' events, so they share the work, not repeat it.

    The projections must be among :data:`projections.read_models.READ_MODELS` (processes
    find them by name); each opens the service with ``build_service`` and the views with
    ``open_views_store`` (:mod:`adapters.bootstrap`'s: module-level functions, as they are
    pickled).
    Returns the notifications processed (the log up to its head). ``progress`` gets the
    slowest process's progress. Raises :class:`ProjectionBusy` when another worker holds
    a projection, :class:`ProjectionError` when a process failed.
    """
    known = {projection.name for projection in READ_MODELS}
    if any(projection.name not in known for projection in projections):
        msg = "only Akte's own read models can be rebuilt in several processes"
        raise ValueError(msg)
    groups = partition_projections(projections, jobs)
    context = multiprocessing.get_context("spawn")
    messages: multiprocessing.Queue[tuple[Any, ...]] = context.Queue()
    # Opening the store (re)creates the library's tables and functions: one at a time,
    # or PostgreSQL reports "tuple concurrently updated".
    opening = context.Lock()
    workers = [
        context.Process(
            target=_rebuild_group,
            args=(
                settings,
                build_service,
                open_views_store,
                [p.name for p in group],
                batch_size,
                lock_wait,
                messages,
                index,
                opening,
            ),
            name=f"akte-rebuild-{index}",
        )
        for index, group in enumerate(groups)
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    done: dict[int, int] = {}
    progressed: dict[int, Progress] = {}
    failures: list[ProjectionError] = []
    reported: set[int] = set()
    try:
        while len(reported) < len(workers):
            try:
                message = messages.get(timeout=0.5)
            except queue.Empty:
                for index, worker in enumerate(workers):
                    if worker.exitcode is not None and index not in reported:
                        # Give a message sent just before the end a last chance.
                        with contextlib.suppress(queue.Empty):
                            messages_left = messages.get(timeout=0.5)
                            _take(messages_left, done, progressed, failures, reported)
                        if index not in reported:
                            reported.add(index)
                            failures.append(
                                ProjectionError(
                                    f"a rebuild process ended with code {worker.exitcode}"
                                )
                            )
                continue
            _take(message, done, progressed, failures, reported)
            if (
                message[0] == "progress"
                and progress is not None
                and len(progressed) == len(workers)
            ):
                slowest = min(progressed.values(), key=lambda p: p.done / max(p.total, 1))
                progress(dataclasses.replace(slowest, seconds=time.perf_counter() - started))
    except BaseException:
        for worker in workers:
            worker.terminate()
        raise
    finally:
        for worker in workers:
            worker.join()
    if failures:
        busy = [f for f in failures if isinstance(f, ProjectionBusy)]
        failed = [f for f in failures if isinstance(f, ReadModelFailed)]
        raise busy[0] if busy else failed[0] if failed else failures[0]
    return min(done.values())


def _take(
    message: tuple[Any, ...],
    done: dict[int, int],
    progressed: dict[int, Progress],
    failures: list[ProjectionError],
    reported: set[int],
) -> None:
    kind, index = message[0], message[1]
    if kind == "progress":
        progressed[index] = message[2]
        return
    reported.add(index)
    if kind == "done":
        done[index] = message[2]
    elif kind == "busy":
        failures.append(ProjectionBusy(message[2], doing="rebuilds"))
    elif kind == "failed":
        failures.append(ReadModelFailed(*message[2]))
    else:
        failures.append(ProjectionError(message[2]))


def _rebuild_group(
    settings: Settings,
    build_service: Callable[[Settings], AkteService],
    open_views_store: Callable[[Settings], ViewsStore],
    names: list[str],
    batch_size: int,
    lock_wait: float,
    messages: multiprocessing.Queue[tuple[Any, ...]],
    index: int,
    opening: Any,
) -> None:
    """One process of :func:`rebuild_in_processes` (runs in a spawned process)."""
    with contextlib.ExitStack() as resources:
        try:
            with opening:
                service = build_service(settings)
            resources.callback(service.close)
            views = open_views_store(settings)
            resources.callback(views.close)
            writer = views.writer()
            resources.callback(writer.close)
            with rebuild_locks(writer, names, lock_wait):
                done = rebuild_beside(
                    ApplicationEventLog(service),
                    writer,
                    select_projections(READ_MODELS, names),
                    batch_size=batch_size,
                    progress=lambda p: messages.put(("progress", index, p)),
                )
            messages.put(("done", index, done))
        except ProjectionBusy as busy:
            messages.put(("busy", index, busy.names))
        except ReadModelFailed as failed:
            messages.put(("failed", index, (failed.name, failed.position, failed.reason)))
        except ProjectionError as error:
            messages.put(("error", index, str(error)))
        except Exception as error:
            # Its message may quote values: the type is all a user message gets.
            messages.put(("error", index, f"a rebuild process failed: {type(error).__name__}"))


__all__ = [
    "ApplicationEventLog",
    "ProjectionRunner",
    "RunnerStats",
    "lock_projections",
    "rebuild_in_processes",
    "wait_for_position",
]


# ------------------------------------------------- the runner of a server, as a child


_PACKAGE_ROOT: Final = Path(__file__).resolve().parents[2]
# The child's composition root: the service built as everywhere else.
_CHILD_ENTRY: Final = (
    "from adapters.bootstrap import build_service, open_views_store; "
    "from adapters.views.runner import run_projection_child; "
    "run_projection_child(build_service, open_views_store)"
)


def _settings_message(settings: Settings) -> bytes:
    """The settings as one line of JSON, secrets included: it goes down a pipe, never
    onto a command line (which ``ps`` shows) or into the environment."""
    values = settings.model_dump(mode="json")
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            # Dumped masked ("**********") otherwise: the master keys too.
            values[name] = value.get_secret_value()
    message = {"settings": values, "shard_applied": settings.shard_applied}
    return json.dumps(message).encode() + b"\n"


def _settings_from(line: bytes) -> Settings:
    message = json.loads(line)
    settings = Settings(**message["settings"])
    if message["shard_applied"]:
        settings.mark_shard_applied()
    return settings


class ProjectionProcess:
    """The projection runner of a server in a child process, restarted if it dies.

    The child reads the settings from its stdin, follows the log like ``akte projections
    run`` (the same locks, so a separate worker and the child never both follow a read
    model) and stops when its stdin reaches its end: when :meth:`stop` closes it, or when
    the kernel does because the server died. The server reads the read models from the
    views store (:func:`wait_for_position` gives read-your-writes).
    """

    def __init__(self, settings: Settings, *, supervise_interval: float = 1.0) -> None:
        self._settings = settings
        self._supervise_interval = supervise_interval
        self._popen: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._supervisor: threading.Thread | None = None
        self._spawned_at = 0.0
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        popen = self._popen
        return popen.pid if popen is not None else None

    def alive(self) -> bool:
        popen = self._popen
        return popen is not None and popen.poll() is None

    def start(self) -> None:
        with self._lock:
            if self._supervisor is not None:
                msg = "the projection process is already started"
                raise RuntimeError(msg)
            self._stopping.clear()
            self._spawn()
            self._supervisor = threading.Thread(
                target=self._supervise, name="akte-projection-process", daemon=True
            )
            self._supervisor.start()

    def stop(self, timeout: float = CHILD_STOP_TIMEOUT) -> int | None:
        """Ask the child to stop (end of its stdin), kill it after ``timeout``; its exit code."""
        self._stopping.set()
        with self._lock:
            supervisor, self._supervisor = self._supervisor, None
            popen = self._popen
            if popen is not None:
                _end_of_input(popen.stdin)
        if supervisor is not None:
            supervisor.join(timeout)
        if popen is None:
            return None
        try:
            return popen.wait(timeout)
        except subprocess.TimeoutExpired:
            logger.warning("projection process did not stop within %.0f s; killed", timeout)
            popen.kill()
            return popen.wait(timeout)

    def problem(self) -> str | None:
        """For ``/readyz``: ``None`` while the child runs (after a restart: once it has
        stayed up for ``CHILD_STABLE_SECONDS``, so a child that keeps failing, e.g. while
        the database is down, does not look ready between its attempts)."""
        if not self.alive():
            return "projection process not running"
        if self.restarts and time.monotonic() - self._spawned_at < CHILD_STABLE_SECONDS:
            return "projection process restarted, not yet running steadily"
        return None

    def _spawn(self) -> None:
        env = dict(os.environ)
        # The child imports this package from wherever the server found it.
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        )
        popen = subprocess.Popen(
            [sys.executable, "-c", _CHILD_ENTRY], stdin=subprocess.PIPE, env=env
        )
        assert popen.stdin is not None
        try:
            popen.stdin.write(_settings_message(self._settings))
            popen.stdin.flush()
        except OSError:
            pass  # it died at once; the supervisor notices and starts another
        self._popen = popen
        self._spawned_at = time.monotonic()

    def _supervise(self) -> None:
        backoff = BACKOFF_MIN
        while not self._stopping.wait(self._supervise_interval):
            popen = self._popen
            if popen is None or popen.poll() is None:
                # Only a child that stayed up resets the backoff: one that fails after
                # its imports (the database down) must not be restarted every second.
                if time.monotonic() - self._spawned_at >= CHILD_STABLE_SECONDS:
                    backoff = BACKOFF_MIN
                continue
            logger.warning(
                "projection process ended (exit %s); starting another in %.1f s",
                popen.returncode,
                backoff,
            )
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, CHILD_RESTART_BACKOFF_MAX)
            with self._lock:
                if self._stopping.is_set():
                    return
                _end_of_input(popen.stdin)
                self._spawn()
                self.restarts += 1


def _end_of_input(stdin: IO[bytes] | None) -> None:
    if stdin is not None:
        with contextlib.suppress(OSError):
            stdin.close()


def run_projection_child(
    build_service: Callable[[Settings], AkteService],
    open_views_store: Callable[[Settings], ViewsStore],
) -> None:
    """The child of :class:`ProjectionProcess`: settings from the first line of stdin,
    the service and the views over them from ``build_service`` and ``open_views_store``
    (the composition root's), then follow the log until stdin ends
    (the server stopped it, or died).

    SIGINT and SIGTERM are ignored: sent to the whole process group (Ctrl-C, systemd,
    supervisors) they reach the server too, which stops the child by closing its stdin
    once its requests are drained; a child that quit first would only be restarted.
    Stdin is read with ``os.read``, never through ``sys.stdin``: a thread blocked in a
    buffered read holds the buffer's lock, and the interpreter aborts at exit on it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    line = _first_line(_STDIN)
    if not line:
        return  # the server went away before it said anything
    settings = _settings_from(line)
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    stop_requested = threading.Event()
    threading.Thread(
        target=_wait_for_end_of_input, args=(stop_requested,), name="akte-parent-watch", daemon=True
    ).start()
    try:
        service = build_service(settings)
        try:
            views = open_views_store(settings)
            try:
                runner = ProjectionRunner(ApplicationEventLog(service), views, READ_MODELS)
                # Threads, not run(): a stop requested while the stores opened is kept.
                runner.start()
                try:
                    while not stop_requested.wait(LISTEN_TIMEOUT):
                        pass
                finally:
                    runner.stop(CHILD_STOP_TIMEOUT)
            finally:
                views.close()
        finally:
            service.close()
    except Exception as error:
        # One log line through the configured logging, not a traceback on the shared
        # stderr; the supervisor starts another with backoff.
        logger.error("projection process failed: %s", _reason(error))
        sys.exit(1)


_STDIN: Final = 0


def _first_line(fd: int) -> bytes:
    read = b""
    while b"\n" not in read:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        read += chunk
    return read.split(b"\n", 1)[0]


def _wait_for_end_of_input(stop_requested: threading.Event) -> None:
    # Blocks until the server closes the pipe or dies (the kernel closes it then).
    with contextlib.suppress(OSError):
        while os.read(_STDIN, 4096):
            pass
    stop_requested.set()
