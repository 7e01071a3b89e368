"""The inbox consumer: a durable JetStream consumer of this office's messages in.

Stream ``AKTE_INBOX`` (created if missing) holds the subjects ``{prefix}.inbox.>``; this
office's durable pull consumer ``akte-inbox-{office}`` filters
``{prefix}.inbox.{office}.>`` (``.meldebehoerde`` for notices, ``.portal`` for
applications; the handling does not depend on the subject but on the message type).

One delivery (:meth:`InboxConsumer.process`): :func:`adapters.inbox.messages.handle_message`
records what the message causes (one transaction, once per message id), then the answer
is published (a receipt to the portal, a return to the sender) and only then the message
is acknowledged. A crash before the acknowledgement redelivers it: the service finds the
message's claim and changes nothing, and the answer is sent again (at least once). When
the event store is away the message is not acknowledged but handed back (``nak``) with
a delay, to be tried again.

**Metrics** (:class:`adapters.monitoring.metrics.InboxMetrics`, optional): every delivery
and its outcome, and the durable consumer's pending and unacknowledged messages, asked
of the broker when the consumer subscribes and then at most every
``InboxConfig.backlog_interval`` seconds between fetches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Final

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy

from adapters.inbox.file_transfers import (
    TransferHandled,
    handle_transfer_message,
    transfer_message_type,
)
from adapters.inbox.messages import (
    Answer,
    AttachmentFetcher,
    Handled,
    handle_message,
    without_message,
)
from adapters.monitoring.metrics import InboxMetrics
from service_common import StoreUnavailable
from service_file_transfers import FileTransfers
from service_notices import Notices

logger = logging.getLogger("akte.inbox")

DEFAULT_STREAM: Final = "AKTE_INBOX"
RETRY_DELAY_SECONDS: Final = 2.0
"""The first wait before a message is tried again while the event store is away."""
MAX_RETRY_DELAY_SECONDS: Final = 60.0
DEFECT_RETRY_DELAY_SECONDS: Final = 60.0
"""The first wait before a message that failed by a defect is tried again."""
MAX_DEFECT_RETRY_DELAY_SECONDS: Final = 3600.0
"""Such a message is kept for the operator, not dropped; after some hours it comes back
once an hour, so that it does not fill the log and the broker's redeliveries."""
BROKER_ERRORS: Final = (nats.errors.Error, OSError, asyncio.TimeoutError)
ANSWER_HEADROOM: Final = 4096
"""Bytes of the broker's ``max_payload`` an answer leaves for headers."""
_DEFAULT_MAX_PAYLOAD: Final = 1024 * 1024
_DEFECTS_KEPT: Final = 10_000
"""Messages whose defects a worker counts; the oldest is forgotten (it starts again at the
first delay), as after a restart."""
_MESSAGE_TOO_LARGE: Final = 10054
"""JetStream's error code: the message is larger than the stream's ``max_msg_size``."""


class _TooLarge(Exception):
    """The broker does not take the answer: larger than its ``max_payload`` or the
    stream's ``max_msg_size``."""


def retry_delay(deliveries: int, first: float, longest: float) -> float:
    """Seconds before a message handed back after its ``deliveries``-th delivery comes
    again: ``first``, doubling with every delivery, at most ``longest``."""
    doublings = min(max(deliveries, 1) - 1, 32)
    return float(min(first * 2**doublings, longest))


def _store_away_delay(msg: Msg) -> float:
    return retry_delay(deliveries_of(msg), RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS)


def stream_sequence(msg: Msg) -> int | None:
    """The message's place in the stream, the same on every delivery (None where the
    broker does not say: not a JetStream message)."""
    try:
        return int(msg.metadata.sequence.stream)
    except nats.errors.NotJSMessageError:
        return None


def deliveries_of(msg: Msg) -> int:
    """How often the broker has delivered the message, this time included (1 where it
    does not say: not a JetStream message)."""
    try:
        return int(msg.metadata.num_delivered)
    except nats.errors.NotJSMessageError:
        return 1


def _too_large(error: BaseException) -> bool:
    if isinstance(error, nats.errors.MaxPayloadError):
        return True
    return isinstance(error, nats.js.errors.APIError) and error.err_code == _MESSAGE_TOO_LARGE


@dataclass(frozen=True)
class InboxConfig:
    office: str
    url: str = "nats://127.0.0.1:4222"
    stream: str = DEFAULT_STREAM
    subject_prefix: str = "akte"
    batch_size: int = 50
    fetch_timeout: float = 1.0
    ack_wait: float = 30.0
    backlog_interval: float = 5.0
    """Seconds between two looks at the consumer's pending messages (for the metrics)."""

    @property
    def subjects(self) -> str:
        """The stream's subjects: every office's inbox."""
        return f"{self.subject_prefix}.inbox.>"

    @property
    def office_subjects(self) -> str:
        return f"{self.subject_prefix}.inbox.{self.office}.>"

    @property
    def durable(self) -> str:
        return f"akte-inbox-{self.office}"

    @property
    def returned_subject(self) -> str:
        """Where returns go when the sender named no reply subject."""
        return f"{self.subject_prefix}.returned.{self.office}"


@dataclass
class InboxStats:
    handled: int = 0
    recorded: int = 0
    triaged: int = 0
    applications: int = 0
    duplicates: int = 0
    returned: int = 0
    retried: int = 0
    unsendable: int = 0
    """Messages whose answer the broker does not take for its size: terminated."""
    too_large: int = 0
    """File requests refused (``hinderungsgrund``) because the file is larger than the
    broker takes: answered, the case file stays here."""
    transfers: int = 0
    """File requests answered, files taken over, refusals recorded, files sent that came
    back (first deliveries), except what ``too_large`` counts."""
    ignored: int = 0
    """Returns of file answers this office never sent to their sender: nothing changed."""


class InboxConsumer:
    """Fetches this office's messages in, hands them to the service, answers, acks."""

    def __init__(
        self,
        notices: Notices,
        config: InboxConfig,
        *,
        metrics: InboxMetrics | None = None,
        fetcher: AttachmentFetcher | None = None,
        transfers: FileTransfers | None = None,
        max_payload: int | None = None,
    ) -> None:
        """``max_payload``: the largest message the broker takes, in bytes (None: the
        connection's, from the server's INFO)."""
        self._notices = notices
        self._max_payload = max_payload
        self._transfers = transfers
        self.config = config
        self.metrics = metrics
        if fetcher is not None and fetcher.message_timeout >= config.ack_wait:
            # Fetching a message's attachments must end before the broker gives the
            # message up for lost and delivers it again to another worker.
            msg = "the attachments' time per message must be below the inbox's ack_wait"
            raise ValueError(msg)
        self._fetcher = fetcher
        self._backlog_seen_at: float | None = None
        self.stats = InboxStats()
        self._client: Client | None = None
        self._stream: JetStreamContext | None = None
        self._stream_limit: int | None = None
        """The inbox stream's ``max_msg_size`` when it has one, asked on connecting."""
        self._stop = asyncio.Event()
        self._defects: OrderedDict[int, int] = OrderedDict()
        """Defects seen per message (stream sequence) by this worker. The broker's
        delivery count also counts the deliveries handed back while the store was away:
        after a long outage, the first defect would wait the longest delay at once."""

    def _defect_delay(self, msg: Msg) -> float:
        sequence = stream_sequence(msg)
        if sequence is None:
            defects = deliveries_of(msg)
        else:
            defects = self._defects.pop(sequence, 0) + 1
            self._defects[sequence] = defects
            while len(self._defects) > _DEFECTS_KEPT:
                self._defects.popitem(last=False)
        return retry_delay(defects, DEFECT_RETRY_DELAY_SECONDS, MAX_DEFECT_RETRY_DELAY_SECONDS)

    def _forget(self, msg: Msg) -> None:
        sequence = stream_sequence(msg)
        if sequence is not None:
            self._defects.pop(sequence, None)

    def request_stop(self) -> None:
        self._stop.set()

    async def connect(self) -> JetStreamContext:
        if self._stream is not None and self._client is not None and self._client.is_connected:
            return self._stream
        client = await nats.connect(servers=[self.config.url], name="akte-inbox")
        stream = client.jetstream()
        limit = await ensure_stream(stream, self.config)
        self._client, self._stream, self._stream_limit = client, stream, limit
        return stream

    async def close(self) -> None:
        client, self._client, self._stream = self._client, None, None
        if client is not None and not client.is_closed:
            # Not drain(): it waits for the pull subscription's pending fetch (30 s);
            # the acknowledgements sent are flushed by close().
            with contextlib.suppress(*BROKER_ERRORS):
                await client.flush(timeout=2)
            with contextlib.suppress(*BROKER_ERRORS):
                await client.close()

    async def process(self, msg: Msg) -> Handled | TransferHandled | None:
        """Handle one delivery; None: the store was away and the message goes back, or
        its answer is too large for the broker and the message is terminated."""
        now = datetime.now().astimezone()
        if self.metrics is not None:
            self.metrics.received()
        handled: Handled | TransferHandled
        try:
            if self._transfers is not None and transfer_message_type(msg.data) is not None:
                # Case files between offices (adapters/inbox/file_transfers.py).
                handled = await asyncio.to_thread(
                    handle_transfer_message,
                    msg.data,
                    transfers=self._transfers,
                    office_id=self.config.office,
                    now=now,
                    subject_prefix=self.config.subject_prefix,
                    answer_limit=self._answer_limit(through_stream=True),
                )
            else:
                handled = await asyncio.to_thread(
                    handle_message,
                    msg.data,
                    notices=self._notices,
                    office_id=self.config.office,
                    now=now,
                    # One budget for all of this message's attachments (bytes, time).
                    fetcher=None if self._fetcher is None else self._fetcher.for_message(),
                )
        except StoreUnavailable as error:
            logger.warning("inbox: the event store is away (%s); the message goes back", error)
            self._retried()
            await msg.nak(delay=_store_away_delay(msg))
            return None
        except Exception as error:
            # A defect: the message is kept (handed back, tried again later) and the
            # worker goes on with the others; the log names the error's type only.
            logger.error("inbox: a message failed with %s; it goes back", type(error).__name__)
            self._retried()
            await msg.nak(delay=self._defect_delay(msg))
            return None
        answer = handled.answer
        if answer is not None:
            sent = self._fitting(answer, through_stream=_through_stream(handled, answer))
            try:
                if sent is None:
                    raise _TooLarge
                try:
                    stored = await self._publish(handled, sent)
                except BROKER_ERRORS as error:
                    if not _too_large(error):
                        raise
                    # Larger than the stream takes: a return goes without the message.
                    sent = without_message(sent)
                    if sent is None:
                        raise _TooLarge from error
                    try:
                        stored = await self._publish(handled, sent)
                    except BROKER_ERRORS as again:
                        if _too_large(again):
                            raise _TooLarge from again
                        raise
            except _TooLarge:
                await self._unsendable(msg, handled, answer)
                return None
            if not stored:
                self._retried()
                await msg.nak(delay=self._defect_delay(msg))
                return None
            if sent is not answer:
                handled = replace(handled, answer=sent)
        await msg.ack()
        self._forget(msg)
        self._count(handled)
        return handled

    def _answer_limit(self, *, through_stream: bool) -> int:
        """The largest answer payload the broker takes: the connection's
        ``max_payload`` with room for headers, and for an answer stored by the inbox
        stream (every office's inbox is on it; such answers go without headers) its
        ``max_msg_size`` if smaller."""
        limit = self._max_payload
        if limit is None:
            limit = getattr(self._client, "max_payload", None) or _DEFAULT_MAX_PAYLOAD
        limit -= ANSWER_HEADROOM
        if through_stream and self._stream_limit is not None:
            limit = min(limit, self._stream_limit)
        return limit

    def _fitting(self, answer: Answer, *, through_stream: bool) -> Answer | None:
        """``answer``, or a return without the message when that is too large; None:
        no form of it fits."""
        limit = self._answer_limit(through_stream=through_stream)
        if len(answer.payload()) <= limit:
            return answer
        smaller = without_message(answer)
        if smaller is None or len(smaller.payload()) > limit:
            return None
        return smaller

    async def _publish(self, handled: Handled | TransferHandled, answer: Answer) -> bool:
        """Send ``answer``; False: no stream stores it (the message goes back)."""
        if not _through_stream(handled, answer):
            assert self._client is not None
            await self._client.publish(
                answer.subject or self.config.returned_subject, answer.payload()
            )
            await self._client.flush()
            return True
        assert isinstance(handled, TransferHandled)  # only transfer messages go through it
        # Stored by the broker before the message is acknowledged: a file or a refusal to
        # another office's inbox (a crash between: the request comes again and the same
        # answer, same message id, goes out again), or a transfer message returned to its
        # author's own inbox (a file this office cannot take over goes back to the office
        # that sent it, whose file is active again only when the return arrives).
        what = "answer to" if handled.returned is None else "return of"
        assert self._stream is not None
        try:
            await self._stream.publish(answer.subject or "", answer.payload())
        except nats.js.errors.NoStreamResponseError:
            # The other office's inbox is on no stream of this broker. Sent without a
            # stream, the message (personal data; for a file, A's file already ended)
            # could be lost unseen: the message stays unacknowledged and comes back, and
            # what it caused is recorded, so the next delivery sends the same answer.
            logger.error(
                "inbox: no stream stores the %s a %s; the message goes back",
                what,
                handled.message_type,
            )
            return False
        return True

    async def _unsendable(
        self, msg: Msg, handled: Handled | TransferHandled, answer: Answer
    ) -> None:
        """The broker takes no form of the answer: delivering the message again would
        change nothing, so it is terminated (logged with types and sizes only)."""
        logger.error(
            "inbox: the answer (%s, %d bytes) to a %s is larger than the broker takes "
            "(%d bytes); the message is terminated, not delivered again",
            answer.message_type,
            len(answer.payload()),
            handled.message_type if isinstance(handled, TransferHandled) else "message",
            self._answer_limit(through_stream=_through_stream(handled, answer)),
        )
        await msg.term()
        self._forget(msg)
        self.stats.unsendable += 1
        if self.metrics is not None:
            self.metrics.handled("unsendable")

    def _retried(self) -> None:
        self.stats.retried += 1
        if self.metrics is not None:
            self.metrics.handled("retried")

    def _count(self, handled: Handled | TransferHandled) -> None:
        stats = self.stats
        stats.handled += 1
        if isinstance(handled, TransferHandled):
            self._count_transfer(handled)
            return
        outcome = handled.outcome
        if outcome is None:
            stats.returned += 1
            kind = "returned"
        elif outcome.duplicate:
            stats.duplicates += 1
            kind = "duplicate"
        elif outcome.outcome == "recorded":
            stats.recorded += 1
            kind = "applied"
        elif outcome.outcome == "triage":
            stats.triaged += 1
            kind = "triaged"
        else:
            stats.applications += 1
            kind = "applied"
        if self.metrics is not None:
            self.metrics.handled(kind)

    def _count_transfer(self, handled: TransferHandled) -> None:
        stats = self.stats
        if handled.returned is not None:
            stats.returned += 1
            kind = "returned"
        elif handled.too_large:
            stats.too_large += 1
            kind = "too_large"
        elif handled.outcome == "ignored":
            stats.ignored += 1
            kind = "ignored"
        elif handled.duplicate:
            stats.duplicates += 1
            kind = "duplicate"
        else:
            stats.transfers += 1
            kind = "applied"
        if self.metrics is not None:
            self.metrics.handled(kind)

    async def _observe_backlog(self, subscription: JetStreamContext.PullSubscription) -> None:
        """The consumer's pending and unacknowledged messages into the metrics, at most
        every ``backlog_interval`` seconds; a failure only leaves the last figures."""
        if self.metrics is None:
            return
        now = time.monotonic()
        seen = self._backlog_seen_at
        if seen is not None and now - seen < self.config.backlog_interval:
            return
        self._backlog_seen_at = now
        try:
            info = await subscription.consumer_info()
        except BROKER_ERRORS as error:
            logger.info("inbox: the consumer's backlog is unknown (%s)", type(error).__name__)
            return
        self.metrics.backlog(
            pending=info.num_pending or 0, unacknowledged=info.num_ack_pending or 0
        )

    async def run(self, *, until_idle: bool = False) -> None:
        """Fetch and process until :meth:`request_stop` (``until_idle``: until a fetch
        finds nothing, for tests and one-off runs)."""
        try:
            while not self._stop.is_set():
                try:
                    stream = await self.connect()
                    subscription = await stream.pull_subscribe(
                        self.config.office_subjects,
                        durable=self.config.durable,
                        stream=self.config.stream,
                        config=ConsumerConfig(
                            ack_policy=AckPolicy.EXPLICIT, ack_wait=self.config.ack_wait
                        ),
                    )
                    self._backlog_seen_at = None
                    while not self._stop.is_set():
                        await self._observe_backlog(subscription)
                        try:
                            messages = await subscription.fetch(
                                self.config.batch_size, timeout=self.config.fetch_timeout
                            )
                        except TimeoutError:  # the client's and asyncio's: nothing came
                            if until_idle:
                                self._backlog_seen_at = None
                                await self._observe_backlog(subscription)
                                return
                            continue
                        for msg in messages:
                            await self.process(msg)
                except BROKER_ERRORS as error:
                    logger.warning(
                        "inbox: the broker failed (%s: %s); connecting again",
                        type(error).__name__,
                        error,
                    )
                    await self.close()
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), RETRY_DELAY_SECONDS)
        finally:
            await self.close()


def _through_stream(handled: Handled | TransferHandled, answer: Answer) -> bool:
    """Whether ``answer`` goes through the inbox stream (stored by the broker before the
    message is acknowledged): a file request's answer, and a transfer message returned
    to its author's own inbox. Other answers (receipts, returns without a named inbox)
    are published plainly."""
    if not isinstance(handled, TransferHandled):
        return False
    return handled.returned is None or answer.subject is not None


async def ensure_stream(stream: JetStreamContext, config: InboxConfig) -> int | None:
    """Create the inbox stream if it is missing: a work queue, so a message (personal
    data) leaves the broker once its consumer acknowledged it. Returns the stream's
    ``max_msg_size``, None when it has none."""
    try:
        info = await stream.stream_info(config.stream)
    except nats.js.errors.NotFoundError:
        await stream.add_stream(
            name=config.stream,
            subjects=[config.subjects],
            retention=RetentionPolicy.WORK_QUEUE,
        )
        logger.info("inbox created stream %s for %s", config.stream, config.subjects)
        return None
    limit = info.config.max_msg_size
    return limit if limit is not None and limit > 0 else None


__all__ = ["DEFAULT_STREAM", "InboxConfig", "InboxConsumer", "InboxStats", "ensure_stream"]
