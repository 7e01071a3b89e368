"""The outbox publisher: follows the event log and publishes the chosen events to NATS
JetStream, at least once, in log order.

One round (:meth:`OutboxPublisher.publish_round`): read the position
(:mod:`adapters.outbox.position`) and the log's head, read up to ``batch_size`` events of
the chosen kinds after the position (sealed, as read models read them: never decrypted),
publish them in log order without waiting in between (the connection keeps their
order), then wait for the broker's acknowledgements in that same order, and move the
position to the last event of the unbroken run of acknowledged ones. A failure stops
the round there: the next round starts after the last acknowledged event, so nothing is
skipped, and what the broker stored but could not acknowledge is published again under
the same ``Nats-Msg-Id``, which JetStream drops as a duplicate within its window
(``duplicate_window``, 2 minutes by default); beyond it a consumer de-duplicates by the
CloudEvents ``id``. A crash (even SIGKILL) between the acknowledgement and the position's
update is the same case.

Order: each message is stored before the next one's is sent on the same connection, so
a case file's events reach the stream in log order. Only when the broker refuses one
message in a batch and accepts a later one (a full stream, say) could the later be
stored before the earlier's retry; ``batch_size=1`` rules even that out, at the cost of
a round trip per event. Consumers can check with the ``akteversion`` attribute.

:meth:`OutboxPublisher.run` repeats rounds until :meth:`request_stop`; when the broker
(or the event store) is away it retries with a doubling wait (``backoff_min`` to
``backoff_max``), and gives up after ``max_retries`` failures in a row if that is set.
The last failure's reason is kept beside the position, so ``akte outbox status`` shows
it from another process.

Offices: each event goes out under the office its aggregate belongs to (its subject
``<prefix>.<office>.…`` and its ``source`` ``akte/<office>``), found by
:class:`adapters.outbox.offices.AggregateOffices` from the aggregate's created event; a
store of one office's shard (``OutboxConfig.shard``) publishes every event under that
office without looking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import nats
import nats.errors
import nats.js.errors
import psycopg
from eventsourcing.persistence import PersistenceError
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck

from adapters.outbox.cloudevents import (
    DEFAULT_SUBJECT_PREFIX,
    MESSAGE_ID_HEADER,
    OutboxMessage,
    Selection,
    subject_token,
    to_message,
)
from adapters.outbox.offices import DEFAULT_OFFICE_CACHE_SIZE, AggregateOffices
from adapters.outbox.position import OutboxPositions
from projections.errors import EventLogUnavailable

logger = logging.getLogger("akte.outbox")

DEFAULT_URL: Final = "nats://127.0.0.1:4222"
DEFAULT_STREAM: Final = "AKTE_EVENTS"
DEFAULT_BATCH_SIZE: Final = 500
DUPLICATE_WINDOW_SECONDS: Final = 120.0
_MAX_REASON_LENGTH: Final = 200

BROKER_ERRORS: Final = (nats.errors.Error, OSError, asyncio.TimeoutError)
"""What a broker that is away, slow or refusing raises (the client's errors, sockets)."""
STORE_ERRORS: Final = (EventLogUnavailable, PersistenceError, psycopg.Error, sqlite3.Error)
"""What an event store that is away raises: retried like the broker."""


class EventSource(Protocol):
    """What the publisher reads: :class:`adapters.views.runner.ApplicationEventLog`."""

    def head(self) -> int: ...

    def read_events(
        self, after: int, limit: int, *, until: int | None = None, topics: Sequence[str] = ()
    ) -> Sequence[tuple[int, Any, str]]: ...

    def case_history(self, case_id: str, before_version: int) -> Sequence[Any]:
        """An aggregate's events before ``before_version`` (any aggregate, by its id):
        the created event of one whose office is not known yet."""
        ...


class BrokerUnavailable(Exception):
    """The broker failed ``max_retries`` times in a row; the message names the reason."""


@dataclass(frozen=True)
class OutboxConfig:
    office: str
    """The default office: of aggregates that belong to no office, and with ``shard``
    of every event."""
    selection: Selection
    url: str = DEFAULT_URL
    stream: str = DEFAULT_STREAM
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX
    batch_size: int = DEFAULT_BATCH_SIZE
    ack_timeout: float = 10.0
    connect_timeout: float = 2.0
    poll_interval: float = 0.5
    backoff_min: float = 0.2
    backoff_max: float = 10.0
    max_retries: int | None = None
    duplicate_window: float = DUPLICATE_WINDOW_SECONDS
    shard: bool = False
    """The store is ``office``'s shard (offices as shards, ``AKTE_SHARD_OFFICE``): every
    event is published under ``office``. Otherwise (a store of one or several offices)
    each event under the office its aggregate belongs to."""
    office_cache_size: int = DEFAULT_OFFICE_CACHE_SIZE
    """Aggregates whose office the publisher keeps in memory."""

    def __post_init__(self) -> None:
        subject_token(self.office, "the office id")
        for part in self.subject_prefix.split("."):
            subject_token(part, "the subject prefix")
        subject_token(self.stream, "the stream name")

    @property
    def subjects(self) -> str:
        """The subjects of the default office's messages, for the stream it creates."""
        return self.subjects_of(self.office)

    def subjects_of(self, office: str) -> str:
        """The subjects of one office's messages. Never ``<prefix>.*.>``: the inbox stream
        holds ``<prefix>.inbox.>`` on the same broker, and JetStream refuses streams
        whose subjects overlap."""
        return f"{self.subject_prefix}.{office}.>"


@dataclass
class OutboxStats:
    published: int = 0
    duplicates: int = 0
    """Messages the broker had already stored (republished after a crash or a failure)."""
    rounds: int = 0
    failures: int = 0
    last_error: str | None = None
    position: int = 0


def _reason(error: BaseException) -> str:
    """The broker's and the network's messages say what went wrong; a store's may quote
    stored values (personal data), so of those only the type is kept."""
    if not isinstance(error, nats.errors.Error | OSError | TimeoutError):
        return type(error).__name__
    text = str(error).strip().splitlines()
    reason = text[0] if text else ""
    name = type(error).__name__
    return f"{name}: {reason}"[:_MAX_REASON_LENGTH] if reason else name


class BrokerAway(nats.errors.Error):
    """No connection to the broker could be made; the message says why."""


class OutboxPublisher:
    """Publishes ``log``'s chosen events to the stream and keeps the position."""

    def __init__(self, log: EventSource, positions: OutboxPositions, config: OutboxConfig) -> None:
        self._log = log
        self._positions = positions
        self.config = config
        self.stats = OutboxStats()
        self._client: Client | None = None
        self._stream: JetStreamContext | None = None
        self._stop = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client_error: str | None = None
        self._awaiting: list[asyncio.Future[PubAck]] = []
        self.offices = AggregateOffices(log, default=config.office, size=config.office_cache_size)
        self._stream_subjects: list[str] = []
        """The stream's subjects as last read or set (:meth:`_cover`)."""

    # ------------------------------------------------------------------ lifecycle

    def request_stop(self) -> None:
        """Stop after the round in progress (safe from a signal handler or a thread)."""
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._stop.set)
        else:
            self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def close(self) -> None:
        client, self._client, self._stream = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(*BROKER_ERRORS):
                await client.close()

    async def _connected(self) -> JetStreamContext:
        if self._stream is not None and self._client is not None and self._client.is_connected:
            return self._stream
        await self.close()
        config = self.config
        # The publisher retries itself (with backoff, recording the reason): the client
        # gives up after one attempt rather than reconnecting behind its back (its
        # max_reconnect_attempts=0 would mean "for ever").
        self._client_error = None
        try:
            client = await nats.connect(
                servers=[config.url],
                connect_timeout=config.connect_timeout,
                allow_reconnect=False,
                max_reconnect_attempts=1,
                reconnect_time_wait=0,
                error_cb=self._client_failed,
                disconnected_cb=self._connection_lost,
                closed_cb=self._connection_lost,
                name="akte-outbox",
            )
        except nats.errors.NoServersError:
            # Its own message says only that: the socket's error says why.
            cause = self._client_error
            raise BrokerAway(f"no connection to {_where(config.url)}: {cause}") from None
        self._client = client
        stream = client.jetstream(timeout=config.ack_timeout)
        await self._ensure_stream(stream)
        self._stream = stream
        logger.info("outbox connected to %s, stream %s", _where(config.url), config.stream)
        return stream

    async def _client_failed(self, error: Exception) -> None:
        self._client_error = _reason(error)

    async def _connection_lost(self) -> None:
        """The acknowledgements still awaited will never come (the client does not fail
        them itself): fail them now, so a broker that went away shows as an error at once
        rather than after ``ack_timeout``."""
        for future in self._awaiting:
            if not future.done():
                future.set_exception(nats.errors.ConnectionClosedError())

    async def _ensure_stream(self, stream: JetStreamContext) -> None:
        """Create the stream if it is missing (for the default office's subjects); an
        existing one is used as it is. Other offices' subjects are added as their events
        come (:meth:`_cover`)."""
        config = self.config
        try:
            info = await stream.stream_info(config.stream)
        except nats.js.errors.NotFoundError:
            await stream.add_stream(
                name=config.stream,
                subjects=[config.subjects],
                duplicate_window=config.duplicate_window,
            )
            logger.info("outbox created stream %s for %s", config.stream, config.subjects)
            self._stream_subjects = [config.subjects]
            return
        self._stream_subjects = list(info.config.subjects or ())

    async def _cover(self, stream: JetStreamContext, offices: Iterable[str]) -> None:
        """Add to the stream the subjects of the offices it does not store yet (a stream
        made for one office, or by another shard's publisher): otherwise each publish of
        their events would fail on the expected stream, for ever."""
        wanted = [self.config.subjects_of(office) for office in sorted(set(offices))]
        if all(self._covered(subject) for subject in wanted):
            return
        info = await stream.stream_info(self.config.stream)
        self._stream_subjects = list(info.config.subjects or ())
        missing = [subject for subject in wanted if not self._covered(subject)]
        if not missing:
            return
        info.config.subjects = [*self._stream_subjects, *missing]
        await stream.update_stream(info.config)
        self._stream_subjects = list(info.config.subjects)
        logger.warning(
            "outbox added %s to the subjects of stream %s", ", ".join(missing), self.config.stream
        )

    def _covered(self, subject: str) -> bool:
        return any(subject_covers(kept, subject) for kept in self._stream_subjects)

    # ------------------------------------------------------------------ publishing

    def position(self) -> int:
        return self._positions.state(self.config.stream).position

    async def publish_round(self) -> int:
        """Publish the next batch; the number of events acknowledged. Raises the
        broker's or the store's failure after recording what was acknowledged."""
        config = self.config
        position = self.position()
        head = self._log.head()
        if head <= position:
            return 0
        rows = self._log.read_events(
            position, config.batch_size, until=head, topics=config.selection.topics
        )
        if not rows:
            # Nothing of the chosen kinds up to the head: skip past it, so the lag shows 0.
            self._advance(head)
            return 0
        # Offices before the broker: a created event looked up in the store fails (and
        # is retried) like the read above, with nothing sent.
        offices = [self._office_of(event, aggregate_id) for _, event, aggregate_id in rows]
        messages = [
            to_message(event, aggregate_id, office=office, prefix=config.subject_prefix)
            for (_, event, aggregate_id), office in zip(rows, offices, strict=True)
        ]
        stream = await self._connected()
        await self._cover(stream, offices)
        acknowledged, failure = await self._publish_in_order(stream, messages)
        if acknowledged:
            last = rows[acknowledged - 1][0]
            if acknowledged == len(rows) and len(rows) < config.batch_size:
                last = head  # the rest up to the head is of other kinds
            self._advance(last)
        self.stats.rounds += 1
        self.stats.published += acknowledged
        if failure is not None:
            raise failure
        return acknowledged

    def _office_of(self, event: Any, aggregate_id: str) -> str:
        """The office ``event`` is published under (see :mod:`adapters.outbox.offices`)."""
        if self.config.shard:
            return self.config.office
        return self.offices.office_of(event, aggregate_id)

    async def _publish_in_order(
        self, stream: JetStreamContext, messages: Sequence[OutboxMessage]
    ) -> tuple[int, BaseException | None]:
        """Send all, then wait for each acknowledgement in order; the length of the
        unbroken run of acknowledged messages, and the failure that ended it."""
        config = self.config
        pending: list[asyncio.Future[PubAck]] = []
        self._awaiting = pending
        failure: BaseException | None = None
        try:
            for message in messages:
                pending.append(
                    await stream.publish_async(
                        message.subject,
                        message.payload,
                        headers={MESSAGE_ID_HEADER: message.message_id},
                        stream=config.stream,
                    )
                )
        except BROKER_ERRORS as error:
            failure = error
        acknowledged = 0
        for future in pending:
            if failure is not None:
                if not future.done():
                    future.cancel()
                elif not future.cancelled():
                    future.exception()  # failed with the connection: seen, not logged
                continue
            try:
                ack = await asyncio.wait_for(future, config.ack_timeout)
            except BROKER_ERRORS as error:
                failure = error
                continue
            if ack.duplicate:
                self.stats.duplicates += 1
            acknowledged += 1
        self._awaiting = []
        return acknowledged, failure

    def _advance(self, position: int) -> None:
        self._positions.advance(self.config.stream, position)
        self.stats.position = position

    async def publish_pending(self) -> int:
        """Publish until the position reaches the head as it is now; the events published.
        Failures are raised, not retried (for tests and one-off runs)."""
        total = 0
        while True:
            done = await self.publish_round()
            total += done
            if self.position() >= self._log.head():
                return total

    async def run(self) -> None:
        """Follow the log until :meth:`request_stop`; retry while the broker is away."""
        self._loop = asyncio.get_running_loop()
        self._positions.create_table()
        config = self.config
        backoff = config.backoff_min
        failures = 0
        try:
            while not self._stop.is_set():
                try:
                    done = await self.publish_round()
                except (*BROKER_ERRORS, *STORE_ERRORS) as error:
                    failures += 1
                    reason = _reason(error)
                    self.stats.failures += 1
                    self.stats.last_error = reason
                    logger.warning(
                        "outbox failed (attempt %d), retrying in %.1f s: %s",
                        failures,
                        backoff,
                        reason,
                    )
                    with contextlib.suppress(Exception):
                        self._positions.record_error(config.stream, reason)
                    await self.close()
                    if config.max_retries is not None and failures > config.max_retries:
                        msg = f"gave up after {failures} failed attempts: {reason}"
                        raise BrokerUnavailable(msg) from None
                    await self._wait(backoff)
                    backoff = min(backoff * 2, config.backoff_max)
                    continue
                if failures:
                    logger.info("outbox publishing again after %d failed attempts", failures)
                failures = 0
                backoff = config.backoff_min
                if done == 0:
                    await self._wait(config.poll_interval)
        finally:
            await self.close()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def subject_covers(wider: str, narrower: str) -> bool:
    """Whether every subject ``narrower`` matches is matched by ``wider`` too (NATS
    subject filters: ``*`` one token, ``>`` one or more at the end)."""
    outer, inner = wider.split("."), narrower.split(".")
    for index, token in enumerate(outer):
        if token == ">":
            return len(inner) > index
        if index >= len(inner) or inner[index] == ">":
            return False
        if token not in ("*", inner[index]):
            return False
    return len(inner) == len(outer)


def _where(url: str) -> str:
    """The broker's address without credentials (``nats://user:pass@host``)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rpartition('@')[2]}" if rest else url


__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_STREAM",
    "DEFAULT_URL",
    "BrokerUnavailable",
    "EventSource",
    "OutboxConfig",
    "OutboxPublisher",
    "OutboxStats",
    "subject_covers",
]
