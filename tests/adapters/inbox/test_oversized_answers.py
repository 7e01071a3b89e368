"""Answers larger than the broker takes (adapters/inbox/consumer.py, messages.py): a
return that would be too large with the rejected message goes without it
(``nachrichtAusgelassen``) and the sending office handles it as any return; a file
larger than the broker takes is refused (``hinderungsgrund``) and stays with its office;
an answer the broker refuses all the same terminates its message once, counted, never
redelivered."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import nats
import pytest
from prometheus_client import CollectorRegistry

from adapters.bootstrap import build_service
from adapters.inbox.consumer import ANSWER_HEADROOM, InboxConfig, InboxConsumer
from adapters.inbox.file_transfers import (
    TransferHandled,
    handle_transfer_message,
    request_message,
    transfer_subject,
)
from adapters.inbox.messages import return_to_sender, without_message
from adapters.inbox.schemas import problems
from adapters.monitoring.metrics import InboxMetrics
from adapters.settings import Settings
from service import AkteService
from service_file_transfers import OutgoingRequest, RequestedPerson
from tests.conftest import FakeClock
from tests.support.file_transfers import OFFICE_A, OFFICE_B, PERSON, PREFIX, ask_for
from tests.support.file_transfers import file_with_history as history
from tests.support.outbox import Broker, own_stream, stored_messages

RETURN = "Administration.ReturnToSender"


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


@pytest.fixture
def offices(tmp_path: Path) -> Iterator[tuple[AkteService, AkteService]]:
    office_a = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "office-a", default_office_id=OFFICE_A)
    )
    office_b = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "office-b", default_office_id=OFFICE_B)
    )
    try:
        yield office_a, office_b
    finally:
        office_a.close()
        office_b.close()


def _config(broker: Broker, office: str) -> InboxConfig:
    return InboxConfig(
        office=office,
        url=broker.url,
        stream=broker.stream,
        subject_prefix=broker.prefix,
        fetch_timeout=0.5,
    )


def _lost_request(broker: Broker, office_b: AkteService) -> bytes:
    """B's request for A's file, which B's store then lost (restored from an older
    backup): B cannot take the file A sends and returns it."""
    lost = OutgoingRequest(
        request_id=uuid4(),
        office_id=OFFICE_B,
        from_office_id=OFFICE_A,
        person=RequestedPerson(PERSON.surname, PERSON.given_names, PERSON.date_of_birth),
        moved_in_on=date(2024, 3, 1),
        position=0,
    )
    return request_message(lost, subject_prefix=broker.prefix, created=office_b.clock()).payload()


async def _send(broker: Broker, payload: bytes, *, max_msg_size: int | None = None) -> None:
    """The request into A's inbox; the stream is made here (``max_msg_size``: the
    largest message it stores)."""
    subject = transfer_subject(broker.prefix, OFFICE_A)
    await _send_to(broker, subject, payload, -1 if max_msg_size is None else max_msg_size)


async def _send_to(broker: Broker, subject: str, payload: bytes, max_msg_size: int) -> None:
    """``payload`` to ``subject`` through the inbox stream, made here with a limit."""
    client = await nats.connect(broker.url)
    try:
        stream = client.jetstream()
        await stream.add_stream(
            name=broker.stream,
            subjects=[f"{broker.prefix}.inbox.>"],
            retention="workqueue",
            max_msg_size=max_msg_size,
        )
        await stream.publish(subject, payload)
    finally:
        await client.close()


async def _limit_stream(broker: Broker, max_msg_size: int) -> None:
    """The inbox stream stores no message larger than ``max_msg_size`` from now on."""
    client = await nats.connect(broker.url)
    try:
        stream = client.jetstream()
        config = (await stream.stream_info(broker.stream)).config
        config.max_msg_size = max_msg_size
        await stream.update_stream(config)
    finally:
        await client.close()


def _run(
    service: AkteService,
    config: InboxConfig,
    *,
    metrics: InboxMetrics | None = None,
    max_payload: int | None = None,
) -> InboxConsumer:
    consumer = InboxConsumer(
        service.notices,
        config,
        transfers=service.file_transfers,
        metrics=metrics,
        max_payload=max_payload,
    )
    asyncio.run(consumer.run(until_idle=True))
    return consumer


async def _outstanding(config: InboxConfig) -> tuple[int, int]:
    """The durable consumer's (pending, unacknowledged) messages, once they settled."""
    client = await nats.connect(config.url)
    try:
        stream = client.jetstream()
        deadline = time.monotonic() + 5
        while True:
            info = await stream.consumer_info(config.stream, config.durable)
            figures = (info.num_pending or 0, info.num_ack_pending or 0)
            if figures == (0, 0) or time.monotonic() > deadline:
                return figures
            await asyncio.sleep(0.05)
    finally:
        await client.close()


def test_a_return_too_large_with_the_message_goes_without_it() -> None:
    raw = json.dumps({"nachrichtenkopf": {"nachrichtUUID": "n-1"}, "x": "y" * 3000}).encode()
    answer = return_to_sender(
        raw,
        office_id=OFFICE_A,
        reason="schema-verletzt",
        hints="/x: too long",
        message={
            "nachrichtenkopf": {"nachrichtUUID": "n-1", "nachrichtentyp": "ABH.Aktenuebersendung"},
            "bezug": {"nachrichtUUID": "r-1"},
        },
        created=datetime(2024, 3, 4, 9, 0, tzinfo=UTC),
    )
    smaller = without_message(answer)
    assert smaller is not None
    returned = smaller.body["rueckweisung"]["abgewieseneNachricht"]
    assert returned == {
        "nachrichtUUID": "n-1",
        "nachrichtentyp": "ABH.Aktenuebersendung",
        "bezug": {"nachrichtUUID": "r-1"},
        "nachrichtAusgelassen": True,
    }
    assert len(smaller.payload()) < 1000 < len(answer.payload())
    assert without_message(smaller) is None  # nothing left to leave out
    # Exactly one of the message and the note that it was left out.
    both = {**returned, "nachricht": base64.b64encode(raw).decode()}
    for broken in (both, {"nachrichtUUID": "n-1"}):
        body = {
            **smaller.body,
            "rueckweisung": {**smaller.body["rueckweisung"], "abgewieseneNachricht": broken},
        }
        assert problems(body, RETURN)


@pytest.mark.parametrize("limited_by", ["connection", "stream"])
def test_a_file_too_large_to_come_back_whole_is_returned_without_it_and_reopened(
    broker: Broker, offices: tuple[AkteService, AkteService], limited_by: str
) -> None:
    office_a, office_b = offices
    moved = history(office_a, OFFICE_A)
    asyncio.run(_send(broker, _lost_request(broker, office_b)))
    assert _run(office_a, _config(broker, OFFICE_A)).stats.transfers == 1
    assert office_a.get_case(moved.case_id).status == "transferred"
    [file] = stored_messages(broker)
    # B's broker takes the file but not the file returned whole (4/3 of it, base64).
    limit = len(file.data) + ANSWER_HEADROOM
    if limited_by == "stream":
        asyncio.run(_limit_stream(broker, len(file.data) + 500))
    at_b = _run(
        office_b,
        _config(broker, OFFICE_B),
        max_payload=limit if limited_by == "connection" else None,
    )
    assert (at_b.stats.returned, at_b.stats.unsendable, at_b.stats.retried) == (1, 0, 0)
    [stored] = stored_messages(broker)
    assert stored.subject == transfer_subject(broker.prefix, OFFICE_A)
    assert len(stored.data) <= limit - ANSWER_HEADROOM
    body = json.loads(stored.data)
    assert problems(body, RETURN) == []
    returned = body["rueckweisung"]["abgewieseneNachricht"]
    assert returned["nachrichtAusgelassen"] is True
    assert "nachricht" not in returned
    assert returned["nachrichtentyp"] == "ABH.Aktenuebersendung"
    assert returned["nachrichtUUID"] == json.loads(file.data)["nachrichtenkopf"]["nachrichtUUID"]
    # A handles the return without the file as one with it: its file is active again.
    assert _run(office_a, _config(broker, OFFICE_A)).stats.transfers == 1
    case = office_a.get_case(moved.case_id)
    assert (case.status, case.transferred_to) == ("active", None)


def _asked_for(broker: Broker, office_b: AkteService) -> tuple[OutgoingRequest, bytes]:
    """B's request for A's file, recorded by B, and its message."""
    outgoing = office_b.file_transfers.request_file(
        office_id=OFFICE_B,
        from_office_id=OFFICE_A,
        person=RequestedPerson(PERSON.surname, PERSON.given_names, PERSON.date_of_birth),
        moved_in_on=date(2024, 3, 1),
        by="sb-neu",
    )
    message = request_message(outgoing, subject_prefix=broker.prefix, created=office_b.clock())
    return outgoing, message.payload()


@pytest.mark.parametrize("limited_by", ["stream", "connection"])
def test_a_file_larger_than_the_broker_takes_is_refused_and_stays_with_its_office(
    broker: Broker, offices: tuple[AkteService, AkteService], limited_by: str
) -> None:
    office_a, office_b = offices
    moved = history(office_a, OFFICE_A)
    before = office_a.get_case(moved.case_id).version
    outgoing, request = _asked_for(broker, office_b)
    # The request and a refusal fit; A's file (documents and history) does not.
    limit = len(request) + 1000
    stream_limit = limit if limited_by == "stream" else None
    asyncio.run(_send(broker, request, max_msg_size=stream_limit))
    config = _config(broker, OFFICE_A)
    registry = CollectorRegistry()
    at_a = _run(
        office_a,
        config,
        metrics=InboxMetrics(registry),
        max_payload=limit + ANSWER_HEADROOM if limited_by == "connection" else None,
    )
    stats = at_a.stats
    assert (stats.too_large, stats.unsendable, stats.transfers, stats.handled) == (1, 0, 0, 1)

    def counted(outcome: str) -> float | None:
        return registry.get_sample_value("akte_inbox_messages_total", {"outcome": outcome})

    assert (counted("too_large"), counted("unsendable"), counted("applied")) == (1, 0, 0)
    # A's file was never ended: it stays active and unchanged, and takes commands.
    case = office_a.get_case(moved.case_id)
    assert (case.status, case.transferred_to, case.version) == ("active", None, before)
    # B learns at once: a refusal, no file, in B's inbox; the request is acknowledged.
    [refusal] = stored_messages(broker)
    assert refusal.subject == transfer_subject(broker.prefix, OFFICE_B)
    body = json.loads(refusal.data)
    assert body["nachrichtenkopf"]["nachrichtentyp"] == "ABH.AktenanforderungAbgelehnt"
    assert body["grund"] == "hinderungsgrund"
    assert "akte" not in body
    assert asyncio.run(_outstanding(config)) == (0, 0)
    at_b = _run(office_b, _config(broker, OFFICE_B))
    assert (at_b.stats.transfers, at_b.stats.returned) == (1, 0)
    asked = office_b.file_transfers.get_request(outgoing.request_id)
    assert (asked.status, asked.reason) == ("refused", "hinderungsgrund")
    # The same request delivered again gets the same refusal and records nothing.
    asyncio.run(_send(broker, request, max_msg_size=stream_limit))
    again = _run(
        office_a,
        config,
        max_payload=limit + ANSWER_HEADROOM if limited_by == "connection" else None,
    )
    assert (again.stats.duplicates, again.stats.too_large) == (1, 0)
    [repeated] = stored_messages(broker)
    repeated_body = json.loads(repeated.data)
    assert repeated_body["grund"] == "hinderungsgrund"
    head = repeated_body["nachrichtenkopf"]
    assert head["nachrichtUUID"] == body["nachrichtenkopf"]["nachrichtUUID"]
    assert office_a.get_case(moved.case_id).version == before


def test_a_file_exactly_as_large_as_the_broker_takes_is_sent_one_byte_more_is_not(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What A measures is what A sends: the limit found from one refusal's log line
    refuses at one byte less and sends at exactly that size."""
    clock = FakeClock()
    office_a = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "a", default_office_id=OFFICE_A), clock=clock
    )
    office_b = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "b", default_office_id=OFFICE_B), clock=clock
    )
    try:
        moved = history(office_a, OFFICE_A)
        created = datetime(2024, 3, 4, 9, 30, 0, 250_000, tzinfo=UTC)

        def delivered(limit: int) -> TransferHandled:
            _request, message = ask_for(office_b)
            return handle_transfer_message(
                message.payload(),
                transfers=office_a.file_transfers,
                office_id=OFFICE_A,
                now=created,
                subject_prefix=PREFIX,
                answer_limit=limit,
            )

        with caplog.at_level(logging.ERROR, logger="akte.inbox"):
            assert delivered(1).too_large
        found = re.search(r"\((\d+) bytes\) answering", caplog.text)
        assert found is not None
        size = int(found.group(1))
        refused = delivered(size - 1)
        assert (refused.outcome, refused.too_large) == ("refused", True)
        assert office_a.get_case(moved.case_id).status == "active"
        sent = delivered(size)
        assert (sent.outcome, sent.too_large) == ("sent", False)
        assert sent.answer is not None
        assert len(sent.answer.payload()) == size
        assert sent.answer.body["nachrichtenkopf"]["nachrichtentyp"] == "ABH.Aktenuebersendung"
        assert office_a.get_case(moved.case_id).status == "transferred"
    finally:
        office_a.close()
        office_b.close()


def test_the_stream_limit_leaves_answers_that_do_not_go_through_it(
    broker: Broker, offices: tuple[AkteService, AkteService]
) -> None:
    """The inbox stream stores small messages only: a return published plainly (to the
    ``returned`` subject: the message named no inbox) still carries the message whole."""
    office_a, _ = offices
    unknown = json.dumps(
        {"nachrichtenkopf": {"nachrichtUUID": str(uuid4()), "nachrichtentyp": "X.Unbekannt"}}
        | {"text": "x" * 1500}
    ).encode()
    limit = len(unknown) + 100  # stored; returned whole (base64, a third larger) it is not
    config = _config(broker, OFFICE_A)

    async def returned_plainly() -> list[bytes]:
        client = await nats.connect(broker.url)
        seen: list[bytes] = []
        try:

            async def collect(msg: Any) -> None:
                seen.append(msg.data)

            await client.subscribe(config.returned_subject, cb=collect)
            await client.flush()
            await _send_to(
                broker, f"{broker.prefix}.inbox.{OFFICE_A}.meldebehoerde", unknown, limit
            )
            consumer = InboxConsumer(office_a.notices, config)
            await consumer.run(until_idle=True)
            assert (consumer.stats.returned, consumer.stats.unsendable) == (1, 0)
            deadline = time.monotonic() + 5
            while not seen and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        finally:
            await client.close()
        return seen

    [returned] = asyncio.run(returned_plainly())
    assert len(returned) > limit
    body = json.loads(returned)
    assert problems(body, RETURN) == []
    kept = body["rueckweisung"]["abgewieseneNachricht"]
    assert base64.b64decode(kept["nachricht"]) == unknown
    assert "nachrichtAusgelassen" not in kept


def test_an_answer_the_stream_refuses_after_connecting_terminates_its_message_once(
    broker: Broker, offices: tuple[AkteService, AkteService]
) -> None:
    """The stream's limit lowered after A's consumer asked for it: A records the file
    as sent, the stream refuses it, and the request is terminated once, counted (the
    file stays ``transferred``: docs/guides/file-transfers.md says how to settle it)."""
    office_a, office_b = offices
    moved = history(office_a, OFFICE_A)
    request = _lost_request(broker, office_b)
    asyncio.run(_send(broker, request))
    config = _config(broker, OFFICE_A)
    registry = CollectorRegistry()
    consumer = InboxConsumer(
        office_a.notices,
        config,
        transfers=office_a.file_transfers,
        metrics=InboxMetrics(registry),
    )

    async def lowered_after_connecting() -> None:
        await consumer.connect()
        await _limit_stream(broker, len(request) + 1000)
        await consumer.run(until_idle=True)

    asyncio.run(lowered_after_connecting())
    stats = consumer.stats
    assert (stats.unsendable, stats.retried, stats.handled) == (1, 0, 0)

    def counted(outcome: str) -> float | None:
        return registry.get_sample_value("akte_inbox_messages_total", {"outcome": outcome})

    assert (counted("unsendable"), counted("retried")) == (1, 0)
    assert registry.get_sample_value("akte_inbox_messages_received_total") == 1
    assert office_a.get_case(moved.case_id).status == "transferred"
    # Terminated: the broker holds no delivery of it to come back.
    assert asyncio.run(_outstanding(config)) == (0, 0)
    again = _run(office_a, config, metrics=InboxMetrics(CollectorRegistry()))
    assert again.stats == type(again.stats)()
    assert stored_messages(broker) == []
