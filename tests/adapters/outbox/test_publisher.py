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

import nats
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
    subject_covers,
)
from adapters.settings import Settings
from adapters.store.notification_reader import RawNotification, notification_reader
from adapters.views.runner import ApplicationEventLog
from domain.acts import Act
from domain.case_file import CaseFile
from service import AkteService
from tests.adapters.outbox.stories import (
    NOW,
    OFFICE,
    OTHER_OFFICE,
    PUBLISHED_PER_STORY,
    person_values,
    story,
)
from tests.support.outbox import (
    Broker,
    BrokerProxy,
    RawMessage,
    free_port,
    own_stream,
    stored_messages,
)


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


# ------------------------------------------------------------------ offices


def _two_office_story(service: AkteService, tag: str, files: int = 3) -> dict[str, str]:
    """Files opened in both offices of one store, alternating; case id -> office."""
    cases = [story(n, tag, OTHER_OFFICE if n % 2 else OFFICE) for n in range(2 * files)]
    for case in cases:
        service.save(case)
    return {str(case.id): case.office_id for case in cases}


def _assert_under_their_offices(
    broker: Broker, offices: dict[str, str], messages: list[RawMessage]
) -> None:
    for message in messages:
        envelope = orjson.loads(message.data)
        office = offices[envelope["subject"]]
        assert message.subject == f"{broker.prefix}.{office}.case-file.{envelope['subject']}"
        assert envelope["source"] == f"akte/{office}"


def test_each_event_goes_out_under_the_office_of_its_aggregate(
    service: AkteService, broker: Broker
) -> None:
    """One store of two offices: a file opened in the second office goes out under its
    subjects and source, also the events after Opened (which name no office), and the
    first office's under its own, all in log order; a transfer stays the sending
    office's event."""
    offices = _two_office_story(service, uuid.uuid4().hex[:8])
    assert set(offices.values()) == {OFFICE, OTHER_OFFICE}

    publisher = publisher_for(service, broker, batch_size=4)  # default office: OFFICE
    assert publish_pending(publisher) == len(offices) * PUBLISHED_PER_STORY
    assert publisher.offices.lookups == 0, "every file's Opened was read in this run"

    messages = stored_messages(broker)
    assert [m.message_id for m in messages] == expected_ids(service)
    _assert_under_their_offices(broker, offices, messages)
    other = [m for m in messages if m.subject.startswith(f"{broker.prefix}.{OTHER_OFFICE}.")]
    assert len(other) == len(offices) // 2 * PUBLISHED_PER_STORY
    transfers = [orjson.loads(m.data) for m in other if b"TransferredToOffice" in m.data]
    assert {t["data"]["to_office_id"] for t in transfers} == {OFFICE}
    assert {t["source"] for t in transfers} == {f"akte/{OTHER_OFFICE}"}


def test_an_aggregate_created_before_the_starting_position_still_gets_its_office(
    service: AkteService, broker: Broker
) -> None:
    """The Opened events lie before the position the publisher starts from (or are not
    on the allow-list): the office is read from the store, once per file."""
    tag = uuid.uuid4().hex[:8]
    act = Act(by="sb-01", at=NOW, recorded_at=NOW)
    cases = [story(n, tag, OTHER_OFFICE if n % 2 else OFFICE) for n in range(4)]
    service.save(*cases)
    offices = {str(case.id): case.office_id for case in cases}
    positions = MemoryPositions()
    positions.position = service.recorder.max_notification_id() or 0

    def returned(case: CaseFile, n: int) -> CaseFile:
        case.return_hand_over(
            to_office_id=case.transferred_to or "",
            answer_message_id=f"answer-{tag}-{n}",
            return_message_id=f"return-{tag}-{n}",
            reason="schema-verletzt",
            hints="",
            act=act,
        )
        return case

    service.save(*[returned(case, n) for n, case in enumerate(cases)])
    # A second event of each file, in later rounds: its office is not looked up again.
    for case in cases:
        moved_to = OTHER_OFFICE if case.office_id == OFFICE else OFFICE
        case.transfer_to_office(to_office_id=moved_to, reason=None, act=act)
    service.save(*cases)

    publisher = publisher_for(service, broker, positions, batch_size=3)
    assert publish_pending(publisher) == 2 * len(cases)
    assert publisher.offices.lookups == len(cases)
    messages = stored_messages(broker)
    _assert_under_their_offices(broker, offices, messages)
    kinds = [orjson.loads(m.data)["type"].rsplit(".", 1)[1] for m in messages]
    assert kinds == ["HandOverReturned"] * len(cases) + ["TransferredToOffice"] * len(cases)

    # Opened not on the allow-list: looked up from the store, from the start of the log.
    looked_up = publisher_for(
        service,
        broker,
        MemoryPositions(),
        selection=Selection.parse("CaseFile.ProcedureReceived"),
        office_cache_size=1,
    )
    assert publish_pending(looked_up) == len(cases)
    assert looked_up.offices.lookups == len(cases)
    assert len(looked_up.offices) == 1, "the cache keeps its bound"


def test_with_a_shard_office_every_event_goes_out_under_it(
    service: AkteService, broker: Broker
) -> None:
    """Offices as shards: the store is the configured office's, nothing is looked up."""
    _two_office_story(service, uuid.uuid4().hex[:8], files=1)
    publisher = publisher_for(service, broker, shard=True)
    assert publish_pending(publisher) == 2 * PUBLISHED_PER_STORY
    assert publisher.offices.lookups == 0
    assert len(publisher.offices) == 0
    for message in stored_messages(broker):
        assert message.subject.startswith(f"{broker.prefix}.{OFFICE}.case-file.")
        assert orjson.loads(message.data)["source"] == f"akte/{OFFICE}"
    assert asyncio.run(_stream_subjects(broker)) == [f"{broker.prefix}.{OFFICE}.>"]


def test_a_stream_made_for_one_office_gets_each_offices_subjects_as_they_come(
    service: AkteService, broker: Broker
) -> None:
    """A stream created for one office (``<prefix>.<office>.>``) would refuse the other
    office's messages: that office's subjects are added, and nothing else is changed."""
    asyncio.run(_add_stream(broker, [f"{broker.prefix}.{OFFICE}.>", "elsewhere.>"]))
    offices = _two_office_story(service, uuid.uuid4().hex[:8], files=1)
    publisher = publisher_for(service, broker)
    assert publish_pending(publisher) == 2 * PUBLISHED_PER_STORY
    _assert_under_their_offices(broker, offices, stored_messages(broker))
    assert asyncio.run(_stream_subjects(broker)) == [
        f"{broker.prefix}.{OFFICE}.>",
        "elsewhere.>",
        f"{broker.prefix}.{OTHER_OFFICE}.>",
    ]
    # Covered now: used as it is.
    again = publisher_for(service, broker, MemoryPositions())
    assert publish_pending(again) == 2 * PUBLISHED_PER_STORY
    assert again.stats.duplicates == 2 * PUBLISHED_PER_STORY


def test_the_inbox_stream_on_the_same_prefix_does_not_stand_in_the_way(
    service: AkteService, broker: Broker
) -> None:
    """The inbox stream holds ``<prefix>.inbox.>`` on the same broker: the outbox's
    subjects name each office, never ``<prefix>.*.>``, which JetStream would refuse as
    overlapping (and which would take in every office's inbox)."""
    inbox_stream = f"{broker.stream}-inbox"
    asyncio.run(_add_stream(broker, [f"{broker.prefix}.inbox.>"], name=inbox_stream))
    try:
        offices = _two_office_story(service, uuid.uuid4().hex[:8], files=1)
        publisher = publisher_for(service, broker)
        assert publish_pending(publisher) == 2 * PUBLISHED_PER_STORY
        _assert_under_their_offices(broker, offices, stored_messages(broker))
        assert sorted(asyncio.run(_stream_subjects(broker))) == sorted(
            [f"{broker.prefix}.{OFFICE}.>", f"{broker.prefix}.{OTHER_OFFICE}.>"]
        )
    finally:
        asyncio.run(_delete_stream(broker, inbox_stream))


def test_shards_publishers_may_share_one_stream(service: AkteService, broker: Broker) -> None:
    """The other shard's publisher made the stream: this one adds its office's subjects."""
    asyncio.run(_add_stream(broker, [f"{broker.prefix}.{OTHER_OFFICE}.>"]))
    service.save(story(1, uuid.uuid4().hex[:8]))
    publisher = publisher_for(service, broker, shard=True)
    assert publish_pending(publisher) == PUBLISHED_PER_STORY
    assert asyncio.run(_stream_subjects(broker)) == [
        f"{broker.prefix}.{OTHER_OFFICE}.>",
        f"{broker.prefix}.{OFFICE}.>",
    ]


async def _add_stream(broker: Broker, subjects: list[str], *, name: str | None = None) -> None:
    client = await nats.connect(broker.url)
    try:
        await client.jetstream().add_stream(name=name or broker.stream, subjects=subjects)
    finally:
        await client.close()


async def _delete_stream(broker: Broker, name: str) -> None:
    client = await nats.connect(broker.url)
    try:
        await client.jetstream().delete_stream(name)
    finally:
        await client.close()


async def _stream_subjects(broker: Broker) -> list[str]:
    client = await nats.connect(broker.url)
    try:
        info = await client.jetstream().stream_info(broker.stream)
        return list(info.config.subjects or [])
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("wider", "narrower", "covers"),
    [
        ("akte.*.>", "akte.abh-a.>", True),
        ("akte.>", "akte.*.>", True),
        ("akte.*.>", "akte.*.>", True),
        ("akte.abh-a.>", "akte.*.>", False),
        ("akte.abh-a.>", "akte.abh-b.>", False),
        ("akte.*.>", "akte.>", False),
        ("akte.*", "akte.*.>", False),
        ("other.*.>", "akte.*.>", False),
    ],
)
def test_subject_covers(wider: str, narrower: str, covers: bool) -> None:
    assert subject_covers(wider, narrower) is covers
