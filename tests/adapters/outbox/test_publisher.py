"""The outbox publisher against the machine's real NATS server with JetStream
(adapters/outbox/publisher.py, adapters/outbox/position.py, adapters/cli/outbox.py).

Each test has a stream and subject prefix of its own, deleted afterwards
(:mod:`tests.support.outbox`). The publisher reads sealed events, so personal data
could only leak through a field the mapping forgot: the messages' raw bytes are searched
for the person's values, also for events written without encryption.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.outbox.cloudevents import Selection
from adapters.outbox.position import OutboxPositions, OutboxState, outbox_positions
from adapters.outbox.publisher import (
    BrokerAway,
    BrokerUnavailable,
    OutboxConfig,
    OutboxPublisher,
)
from adapters.settings import Settings
from adapters.store.notification_reader import RawNotification, notification_reader
from adapters.views.runner import ApplicationEventLog
from service import AkteService
from tests.adapters.outbox.stories import OFFICE, PUBLISHED_PER_STORY, person_values, story
from tests.support.outbox import Broker, BrokerProxy, free_port, own_stream, stored_messages


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def config_for(broker: Broker, **options: object) -> OutboxConfig:
    defaults: dict[str, object] = {
        "office": OFFICE,
        "selection": Selection.parse(None),
        "url": broker.url,
        "stream": broker.stream,
        "subject_prefix": broker.prefix,
    }
    return OutboxConfig(**(defaults | options))  # type: ignore[arg-type]


def publisher_for(
    service: AkteService,
    broker: Broker,
    positions: OutboxPositions | None = None,
    **options: object,
) -> OutboxPublisher:
    if positions is None:
        positions = outbox_positions(service.recorder)
        positions.create_table()
    return OutboxPublisher(ApplicationEventLog(service), positions, config_for(broker, **options))


def publish_pending(publisher: OutboxPublisher) -> int:
    async def run() -> int:
        try:
            return await publisher.publish_pending()
        finally:
            await publisher.close()

    return asyncio.run(run())


def expected_ids(service: AkteService) -> list[str]:
    """The ids of the default allow-list's events, in log order."""
    log = ApplicationEventLog(service)
    rows = log.read_events(0, 1_000_000, topics=Selection.parse(None).topics)
    return [f"{aggregate_id}:{event.originator_version}" for _, event, aggregate_id in rows]


class MemoryPositions:
    """A position that can be set back, to publish the same events again."""

    def __init__(self) -> None:
        self.position = 0

    def create_table(self) -> None:
        pass

    def state(self, name: str) -> OutboxState:
        return OutboxState(name, self.position)

    def advance(self, name: str, position: int) -> None:
        self.position = max(self.position, position)

    def record_error(self, name: str, reason: str) -> None:
        pass


def test_events_are_published_once_each_in_log_order_with_stable_ids(
    service: AkteService, broker: Broker
) -> None:
    tag = uuid.uuid4().hex[:8]
    cases = [story(n, tag) for n in range(6)]
    service.save(*cases)
    head = service.recorder.max_notification_id()

    publisher = publisher_for(service, broker, batch_size=4)
    assert publish_pending(publisher) == 6 * PUBLISHED_PER_STORY

    messages = stored_messages(broker)
    assert [m.message_id for m in messages] == expected_ids(service)
    assert len({m.message_id for m in messages}) == 6 * PUBLISHED_PER_STORY
    assert publisher.position() == head
    for message in messages:
        envelope = orjson.loads(message.data)
        assert envelope["id"] == message.message_id
        aggregate_id, version = message.message_id.split(":")
        assert message.subject == f"{broker.prefix}.{OFFICE}.case-file.{aggregate_id}"
        assert envelope["subject"] == aggregate_id
        assert envelope["akteversion"] == int(version)
        assert envelope["source"] == f"akte/{OFFICE}"
    first = orjson.loads(messages[0].data)
    assert first["type"] == "de.akte.CaseFile.Opened"
    assert first["data"] == {
        "at": "2024-05-06T10:00:00+00:00",
        "office_id": OFFICE,
        "reference": "2024-O000000",
    }

    # Nothing new: nothing published.
    assert publish_pending(publisher) == 0
    # The same events again from the start (a lost position): the same ids, and
    # JetStream stores none of them a second time.
    again = publisher_for(service, broker, MemoryPositions(), batch_size=7)
    assert publish_pending(again) == 6 * PUBLISHED_PER_STORY
    assert again.stats.duplicates == 6 * PUBLISHED_PER_STORY
    assert [m.message_id for m in stored_messages(broker)] == expected_ids(service)


@pytest.mark.parametrize("encryption", [True, False])
def test_personal_fields_never_appear_in_a_published_message(
    tmp_path: Path, broker: Broker, encryption: bool
) -> None:
    settings = Settings(
        store="sqlite", data_dir=tmp_path / "data", personal_data_encryption=encryption
    )
    service = build_service(settings)
    try:
        tag = uuid.uuid4().hex[:10]
        service.save(*[story(n, tag) for n in range(3)])
        stored = b"".join(bytes(row[4]) for row in _raw_states(service))
        # Without encryption the store holds the values in the clear: the outbox must
        # leave them out by name.
        assert (f"Nachname{tag}".encode() in stored) is not encryption

        publisher = publisher_for(
            service, broker, selection=Selection.parse("CaseFile.Opened,CaseFile.NoteAdded,"
            "CaseFile.ProcedureDecided,CaseFile.TransferredToOffice")
        )  # fmt: skip
        assert publish_pending(publisher) == 3 * 4
    finally:
        service.close()
    messages = stored_messages(broker)
    assert len(messages) == 3 * 4
    for message in messages:
        raw = message.subject.encode() + message.raw_headers + message.data
        for value in person_values(tag):
            assert value not in raw
    notes = [orjson.loads(m.data) for m in messages if b"NoteAdded" in m.data]
    assert [note["data"] for note in notes] == [
        {"at": "2024-05-06T10:00:00+00:00", "note_number": 1}
    ] * 3


def _raw_states(service: AkteService) -> list[RawNotification]:
    """The stored rows as they are (state as written: sealed or in the clear)."""
    reader = notification_reader(service.recorder)
    assert reader is not None
    return list(reader(0, 10_000, None, ()))


def test_while_the_broker_is_away_the_publisher_retries_and_then_catches_up(
    service: AkteService, broker: Broker
) -> None:
    tag = uuid.uuid4().hex[:8]
    service.save(*[story(n, tag) for n in range(4)])
    head = service.recorder.max_notification_id()
    positions = outbox_positions(service.recorder)
    positions.create_table()
    # A port nothing listens on: the broker is away. Later the same port forwards to
    # the real server: it is back.
    proxy = BrokerProxy(free_port(), broker.url)
    publisher = publisher_for(
        service,
        broker,
        positions,
        url=proxy.url,
        backoff_min=0.02,
        backoff_max=0.1,
        poll_interval=0.02,
        connect_timeout=1.0,
    )

    async def scenario() -> None:
        running = asyncio.create_task(publisher.run())
        await _until(lambda: publisher.stats.failures >= 3)
        away = positions.state(broker.stream)
        assert away.position == 0
        assert away.last_error is not None
        assert away.last_error_at is not None
        assert stored_messages_async_safe(broker) == 0

        await proxy.start()
        await _until(lambda: positions.state(broker.stream).position == head)
        publisher.request_stop()
        await running
        await proxy.stop()

    asyncio.run(scenario())
    back = positions.state(broker.stream)
    assert back.last_error is None, "a success clears the last error"
    assert [m.message_id for m in stored_messages(broker)] == expected_ids(service)


def stored_messages_async_safe(broker: Broker) -> int:
    """Messages in the stream, from inside a running event loop (a thread of its own)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return len(pool.submit(stored_messages, broker).result())


async def _until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition did not come true in time"
        await asyncio.sleep(0.01)


def test_a_broker_that_stays_away_makes_the_publisher_give_up_after_its_retries(
    service: AkteService, broker: Broker
) -> None:
    service.save(story(1, uuid.uuid4().hex[:8]))
    publisher = publisher_for(
        service,
        broker,
        url=f"nats://127.0.0.1:{free_port()}",
        max_retries=2,
        backoff_min=0.01,
        backoff_max=0.01,
    )
    with pytest.raises(BrokerUnavailable, match="gave up after 3 failed attempts"):
        asyncio.run(publisher.run())
    assert publisher.stats.failures == 3
    assert publisher.position() == 0


def test_akte_outbox_status_shows_position_head_lag_and_last_error(
    environment: Path, monkeypatch: pytest.MonkeyPatch, broker: Broker,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    settings = Settings(store="sqlite", data_dir=environment / "data")
    for name, value in {
        "AKTE_DATA_DIR": str(settings.data_dir),
        "AKTE_OUTBOX_STREAM": broker.stream,
        "AKTE_OUTBOX_URL": broker.url,
        "AKTE_OUTBOX_SUBJECT_PREFIX": broker.prefix,
    }.items():
        monkeypatch.setenv(name, value)
    service = build_service(settings)
    try:
        service.save(*[story(n, "ab12") for n in range(2)])
        head = service.recorder.max_notification_id() or 0

        assert main(["outbox", "status", "--json"]) == 0
        before = json.loads(capsys.readouterr().out)
        assert (before["position"], before["head"], before["lag_notifications"]) == (0, head, head)

        publisher = publisher_for(service, broker)
        positions = outbox_positions(service.recorder)
        publish_pending(publisher)
        positions.record_error(broker.stream, "TimeoutError: no answer")
        assert main(["outbox", "status", "--json"]) == 0
        after = json.loads(capsys.readouterr().out)
    finally:
        service.close()
    assert (after["position"], after["lag_notifications"]) == (head, 0)
    assert after["last_error"] == "TimeoutError: no answer"
    assert after["events"][0] == "CaseFile.Opened"

    monkeypatch.setenv("AKTE_OUTBOX_EVENTS", "CaseFile.Opened,CaseFile.Nonsense")
    assert main(["outbox", "status"]) == 2
    assert "CaseFile.Nonsense" in capsys.readouterr().err


def test_a_second_round_continues_after_a_failed_one(service: AkteService, broker: Broker) -> None:
    """The position moves only over acknowledged events: a round that fails records
    nothing it did not get acknowledged."""
    tag = uuid.uuid4().hex[:8]
    service.save(*[story(n, tag) for n in range(2)])
    wrong = publisher_for(service, broker, url=f"nats://127.0.0.1:{free_port()}")
    with pytest.raises(BrokerAway, match="Connect call failed"):
        publish_pending(wrong)
    assert wrong.position() == 0
    right = publisher_for(service, broker)
    assert publish_pending(right) == 2 * PUBLISHED_PER_STORY
