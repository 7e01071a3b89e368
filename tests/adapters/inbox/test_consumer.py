"""The inbox consumer against the machine's real NATS server with JetStream
(adapters/inbox/consumer.py, adapters/cli/inbox.py): notices and an application
published to the office's inbox subjects, some twice and one invalid, are recorded once
each; the receipt and the return to the sender arrive on the subjects their senders
named; a message whose handling was interrupted before its acknowledgement is delivered
again and changes nothing twice."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from typing import Any, cast

import nats
import pytest

from adapters.cli.main import main
from adapters.inbox import consumer as consumer_module
from adapters.inbox.consumer import (
    DEFECT_RETRY_DELAY_SECONDS,
    MAX_DEFECT_RETRY_DELAY_SECONDS,
    MAX_RETRY_DELAY_SECONDS,
    RETRY_DELAY_SECONDS,
    InboxConfig,
    InboxConsumer,
    deliveries_of,
    ensure_stream,
    retry_delay,
    stream_sequence,
)
from adapters.inbox.schemas import problems
from adapters.settings import Settings
from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import CaseFile, MasterData
from service import AkteService
from service_common import StoreUnavailable
from tests.support.deliveries import Delivery
from tests.support.inbox import OFFICE, application, encoded, move, notice
from tests.support.outbox import Broker, own_stream

PERSON = MasterData("Haddad", "Omar", date(1985, 1, 2), "SYR", "N87654321", "Weg 2")


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def config_for(broker: Broker) -> InboxConfig:
    return InboxConfig(
        office=OFFICE,
        url=broker.url,
        stream=broker.stream,
        subject_prefix=broker.prefix,
        fetch_timeout=0.5,
    )


async def publish_and_consume(
    service: AkteService, config: InboxConfig, messages: list[tuple[str, bytes]], replies: list[str]
) -> tuple[InboxConsumer, dict[str, list[dict[str, Any]]], int]:
    client = await nats.connect(servers=[config.url])
    received: dict[str, list[dict[str, Any]]] = {subject: [] for subject in replies}
    try:
        for subject in replies:

            async def collect(msg: Any, subject: str = subject) -> None:
                received[subject].append(json.loads(msg.data))

            await client.subscribe(subject, cb=collect)
        stream = client.jetstream()
        await ensure_stream(stream, config)
        for channel, data in messages:
            await stream.publish(f"{config.subject_prefix}.inbox.{OFFICE}.{channel}", data)
        consumer = InboxConsumer(service.notices, config)
        await consumer.run(until_idle=True)
        await client.flush()
        await asyncio.sleep(0.2)  # the answers' callbacks
        # A work queue: what was acknowledged (personal data) is gone from the broker.
        remaining = (await stream.stream_info(config.stream)).state.messages
    finally:
        await client.close()
    return consumer, received, remaining


def test_messages_through_the_broker_are_recorded_once_and_answered(
    service: AkteService, broker: Broker
) -> None:
    case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    portal_replies = f"{broker.prefix}-portal.antworten"
    registry_replies = f"{broker.prefix}-meldebehoerde.antworten"
    moved = encoded(move(PERSON, reply_to=registry_replies))
    died = encoded(notice("MBABH.Tod", PERSON, reply_to=registry_replies))
    invalid = move(PERSON, reply_to=registry_replies)
    invalid["person"]["geburtsdatum"] = "02.01.1985"
    applied = encoded(application(PERSON, reply_to=portal_replies, attachment=make_pdf(1)))
    messages = [
        ("meldebehoerde", moved),
        ("meldebehoerde", died),
        ("meldebehoerde", moved),
        ("meldebehoerde", encoded(invalid)),
        ("portal", applied),
        ("portal", applied),
    ]
    consumer, received, remaining = asyncio.run(
        publish_and_consume(
            service, config_for(broker), messages, [portal_replies, registry_replies]
        )
    )
    assert remaining == 0
    stats = consumer.stats
    assert (stats.handled, stats.recorded, stats.applications, stats.duplicates) == (6, 2, 1, 2)
    assert stats.returned == 1
    case = service.get_case(case_id)
    recorded = [
        event.notice_kind
        for event in service.case_events(case_id)
        if isinstance(event, CaseFile.RegistrationNoticeRecorded)
    ]
    assert sorted(recorded) == ["aenderung_hauptwohnung", "tod"]
    assert case.master_data.address == "Neue Straße 5, 12345 Musterstadt"
    [procedure] = case.procedures
    assert procedure.channel == "online_application"
    [returned] = received[registry_replies]
    assert problems(returned, "Administration.ReturnToSender") == []
    assert returned["rueckweisung"]["grund"] == "schema-verletzt"
    receipts = received[portal_replies]
    assert [r["bereitsEingegangen"] for r in receipts] == [False, True]
    for receipt in receipts:
        assert problems(receipt, "Portal.Eingangsbestaetigung") == []
        assert receipt["ergebnis"] == "vorgang-angelegt"


def test_an_unacknowledged_message_is_delivered_again_and_applied_once(
    service: AkteService, broker: Broker
) -> None:
    case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    config = InboxConfig(
        office=OFFICE,
        url=broker.url,
        stream=broker.stream,
        subject_prefix=broker.prefix,
        fetch_timeout=0.5,
        ack_wait=1.0,
    )

    async def crash_then_restart() -> InboxConsumer:
        client = await nats.connect(servers=[config.url])
        try:
            stream = client.jetstream()
            await ensure_stream(stream, config)
            await stream.publish(
                f"{config.subject_prefix}.inbox.{OFFICE}.meldebehoerde", encoded(move(PERSON))
            )
            from nats.js.api import AckPolicy, ConsumerConfig

            subscription = await stream.pull_subscribe(
                config.office_subjects,
                durable=config.durable,
                stream=config.stream,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, ack_wait=config.ack_wait),
            )
            [msg] = await subscription.fetch(1, timeout=2)
            # The command is recorded, then the worker dies before its acknowledgement.
            from adapters.inbox.messages import handle_message

            handle_message(msg.data, notices=service.notices, office_id=OFFICE, now=service.clock())
            await subscription.unsubscribe()
        finally:
            await client.close()
        # The broker delivers it again once its acknowledgement is overdue (ack_wait).
        consumer = InboxConsumer(service.notices, config)
        running = asyncio.create_task(consumer.run())
        for _ in range(600):  # a bound for a stuck broker, not a timing assertion
            if consumer.stats.handled:
                break
            await asyncio.sleep(0.05)
        consumer.request_stop()
        await running
        return consumer

    consumer = asyncio.run(crash_then_restart())
    assert (consumer.stats.handled, consumer.stats.duplicates) == (1, 1)
    recorded = [
        event
        for event in service.case_events(case_id)
        if isinstance(event, CaseFile.RegistrationNoticeRecorded)
    ]
    assert len(recorded) == 1


def test_inbox_status_shows_the_consumer(
    settings: Settings,
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if settings.store != "sqlite":
        pytest.skip("the command reads the broker, not the store: SQLite is enough")
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("AKTE_OUTBOX_URL", broker.url)
    monkeypatch.setenv("AKTE_OUTBOX_SUBJECT_PREFIX", broker.prefix)
    assert main(["inbox", "run", "--until-idle", "--stream", broker.stream]) == 0
    assert main(["inbox", "status", "--json", "--stream", broker.stream]) == 0
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["consumer"] == f"akte-inbox-{OFFICE}"
    assert record["waiting"] == 0


# ------------------------------------------------------- messages handed back


def test_a_message_handed_back_waits_longer_each_time_up_to_a_bound() -> None:
    # Store away: 2 s, doubling, at most a minute.
    assert [
        retry_delay(n, RETRY_DELAY_SECONDS, MAX_RETRY_DELAY_SECONDS) for n in (1, 2, 3, 6, 7, 10**6)
    ] == [2.0, 4.0, 8.0, 60.0, 60.0, 60.0]
    # A defect: a minute, doubling, at most an hour; kept for the operator, never dropped.
    assert [
        retry_delay(n, DEFECT_RETRY_DELAY_SECONDS, MAX_DEFECT_RETRY_DELAY_SECONDS)
        for n in (1, 2, 6, 7, 10**6)
    ] == [60.0, 120.0, 1920.0, 3600.0, 3600.0]


def _failing_with(monkeypatch: pytest.MonkeyPatch, failures: list[Exception]) -> None:
    def failing(*_args: Any, **_kwargs: Any) -> Any:
        raise failures.pop(0)

    monkeypatch.setattr(consumer_module, "handle_message", failing)


def test_while_the_store_is_away_a_message_waits_by_the_brokers_delivery_count(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_with(monkeypatch, [StoreUnavailable("the store is away")] * 3)
    consumer = InboxConsumer(service.notices, InboxConfig(office=OFFICE))
    deliveries = [Delivery(b"{}", num_delivered=n) for n in (1, 4, 20)]
    for delivery in deliveries:
        assert asyncio.run(consumer.process(cast(Any, delivery))) is None
        assert not delivery.acked
        assert not delivery.terminated
    assert [delivery.naked[0] for delivery in deliveries] == [2.0, 16.0, 60.0]


def test_a_defect_waits_by_the_defects_of_that_message_not_by_its_deliveries(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Delivered 30 times while the store was away, then the store is back and the
    # handling fails by a defect: a minute, not the hour the 31st delivery would say.
    _failing_with(monkeypatch, [RuntimeError("a defect")] * 4)
    consumer = InboxConsumer(service.notices, InboxConfig(office=OFFICE))
    delays = []
    for delivered in (31, 32, 33):
        delivery = Delivery(b"{}", num_delivered=delivered, sequence=7)
        assert asyncio.run(consumer.process(cast(Any, delivery))) is None
        assert not delivery.terminated
        delays.extend(delivery.naked)
    other = Delivery(b"{}", num_delivered=40, sequence=8)
    asyncio.run(consumer.process(cast(Any, other)))

    assert delays == [60.0, 120.0, 240.0]  # doubling with each defect of message 7
    assert other.naked == [60.0]  # another message counts its own


def test_a_message_handled_at_last_is_forgotten_by_the_defect_count(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    consumer = InboxConsumer(service.notices, InboxConfig(office=OFFICE))
    data = encoded(move(PERSON))
    _failing_with(monkeypatch, [RuntimeError("a defect")])
    asyncio.run(consumer.process(cast(Any, Delivery(data, sequence=3))))
    assert consumer._defects == {3: 1}
    monkeypatch.undo()  # the defect is mended
    handled = Delivery(data, num_delivered=2, sequence=3)
    asyncio.run(consumer.process(cast(Any, handled)))

    assert handled.acked
    assert consumer._defects == {}


def test_the_broker_counts_the_deliveries_the_consumer_reads(broker: Broker) -> None:
    async def deliveries() -> list[tuple[int, int | None]]:
        client = await nats.connect(servers=[broker.url])
        try:
            stream = client.jetstream()
            await ensure_stream(stream, config_for(broker))
            subject = f"{broker.prefix}.inbox.{OFFICE}.meldebehoerde"
            await stream.publish(subject, b"{}")
            pull = await stream.pull_subscribe(subject, durable="delivery-count-test")
            counted = []
            for _ in range(3):
                [msg] = await pull.fetch(1, timeout=5)
                counted.append((deliveries_of(msg), stream_sequence(msg)))
                await msg.nak()
            return counted
        finally:
            await client.close()

    counted = asyncio.run(deliveries())
    assert [delivered for delivered, _ in counted] == [1, 2, 3]
    # The place in the stream stays: the consumer counts a message's defects by it.
    [sequence] = {sequence for _, sequence in counted}
    assert sequence is not None
