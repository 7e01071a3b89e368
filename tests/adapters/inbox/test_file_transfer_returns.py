"""A file the new office cannot take over, returned through the inbox consumer
(adapters/inbox/consumer.py, adapters/inbox/file_transfers.py): the return goes through
the broker's stream to the sending office's inbox, which records it once and counts a
return of no file of its own as ignored, answering none of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import nats
import pytest
from prometheus_client import CollectorRegistry

from adapters.bootstrap import build_service
from adapters.inbox.consumer import InboxConfig, InboxConsumer, ensure_stream
from adapters.inbox.file_transfers import TransferHandled, request_message, transfer_subject
from adapters.monitoring.metrics import InboxMetrics
from adapters.settings import Settings
from service import AkteService
from service_file_transfers import OutgoingRequest, RequestedPerson
from tests.support.deliveries import Delivery
from tests.support.file_transfers import (
    OFFICE_A,
    OFFICE_B,
    PERSON,
    RecordingClient,
    ask_for,
    deliver,
)
from tests.support.file_transfers import file_with_history as history
from tests.support.outbox import Broker, own_stream


class _Stream:
    """A JetStream context that stores what it is given."""

    def __init__(self) -> None:
        self.published: list[tuple[str, bytes]] = []

    async def publish(self, subject: str, payload: bytes) -> None:
        self.published.append((subject, payload))


def _consumer(
    service: AkteService, office: str, metrics: InboxMetrics | None = None
) -> tuple[InboxConsumer, _Stream, RecordingClient]:
    consumer = InboxConsumer(
        service.notices,
        InboxConfig(office=office),
        transfers=service.file_transfers,
        metrics=metrics,
    )
    stream, client = _Stream(), RecordingClient()
    consumer._stream = cast(Any, stream)
    consumer._client = cast(Any, client)
    return consumer, stream, client


def _process(consumer: InboxConsumer, data: bytes) -> TransferHandled:
    delivery = Delivery(data)
    handled = asyncio.run(consumer.process(cast(Any, delivery)))
    assert delivery.acked
    assert isinstance(handled, TransferHandled)
    return handled


def _forged_file(service: AkteService) -> bytes:
    """A's file to B's request, with a fact changed on the way (the proof fails at B)."""
    history(service, OFFICE_A)
    _request, message = ask_for(service)
    at_a = deliver(message, service, OFFICE_A)
    assert at_a.answer is not None
    body = json.loads(at_a.answer.payload())
    body["akte"]["ereignisse"][1]["fakten"]["page_count"] = 3
    return json.dumps(body).encode()


def test_the_return_of_a_file_goes_through_the_stream_to_the_senders_inbox(
    service: AkteService,
) -> None:
    # One store plays both offices here: B's request and A's file live side by side.
    forged = _forged_file(service)
    at_b, stream, client = _consumer(service, OFFICE_B)
    handled = _process(at_b, forged)
    assert handled.returned == "regel-verletzt"
    # Stored by the broker (acknowledged), not published loose to B's returned subject.
    [(subject, payload)] = stream.published
    assert subject == transfer_subject("akte", OFFICE_A)
    assert client.published == []
    assert at_b.stats.returned == 1

    registry = CollectorRegistry()
    at_a, stream_a, client_a = _consumer(service, OFFICE_A, InboxMetrics(registry))
    first = _process(at_a, payload)
    assert (first.outcome, first.duplicate) == ("reopened", False)
    assert first.case_id is not None
    assert service.get_case(first.case_id).status == "active"
    again = _process(at_a, payload)
    assert (again.outcome, again.duplicate) == ("reopened", True)
    # A return of no file of ours (another office claims to return it): counted, ignored.
    body = json.loads(payload)
    body["nachrichtenkopf"]["autor"]["kennung"] = "abh-dritte"
    assert _process(at_a, json.dumps(body).encode()).outcome == "ignored"
    assert (at_a.stats.transfers, at_a.stats.duplicates, at_a.stats.ignored) == (1, 1, 1)
    assert registry.get_sample_value("akte_inbox_messages_total", {"outcome": "ignored"}) == 1
    # Nothing is answered: a return is never returned.
    assert stream_a.published == client_a.published == []


def test_an_older_file_without_a_reply_address_is_returned_as_before(
    service: AkteService,
) -> None:
    body = json.loads(_forged_file(service))
    del body["nachrichtenkopf"]["antwortAn"]
    at_b, stream, client = _consumer(service, OFFICE_B)
    assert _process(at_b, json.dumps(body).encode()).returned == "regel-verletzt"
    assert stream.published == []
    [(subject, _payload)] = client.published
    assert subject == at_b.config.returned_subject == f"akte.returned.{OFFICE_B}"


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def test_a_file_the_new_office_cannot_take_comes_back_through_the_broker(
    broker: Broker, tmp_path: Path
) -> None:
    office_a = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "office-a", default_office_id=OFFICE_A)
    )
    # B lost its request (a store restored from an older backup): it cannot take the file.
    office_b = build_service(
        Settings(store="sqlite", data_dir=tmp_path / "office-b", default_office_id=OFFICE_B)
    )
    try:
        moved = history(office_a, OFFICE_A)
        lost = OutgoingRequest(
            request_id=uuid4(),
            office_id=OFFICE_B,
            from_office_id=OFFICE_A,
            person=RequestedPerson(PERSON.surname, PERSON.given_names, PERSON.date_of_birth),
            moved_in_on=date(2024, 3, 1),
            position=0,
        )
        request = request_message(lost, subject_prefix=broker.prefix, created=office_b.clock())

        def config(office: str) -> InboxConfig:
            return InboxConfig(
                office=office,
                url=broker.url,
                stream=broker.stream,
                subject_prefix=broker.prefix,
                fetch_timeout=0.5,
            )

        async def send_request() -> None:
            client = await nats.connect(broker.url)
            try:
                stream = client.jetstream()
                await ensure_stream(stream, config(OFFICE_B))
                await stream.publish(request.subject or "", request.payload())
            finally:
                await client.close()

        async def run(service: AkteService, office: str) -> InboxConsumer:
            consumer = InboxConsumer(
                service.notices, config(office), transfers=service.file_transfers
            )
            await consumer.run(until_idle=True)
            return consumer

        asyncio.run(send_request())
        assert asyncio.run(run(office_a, OFFICE_A)).stats.transfers == 1
        assert office_a.get_case(moved.case_id).status == "transferred"
        assert asyncio.run(run(office_b, OFFICE_B)).stats.returned == 1
        assert asyncio.run(run(office_a, OFFICE_A)).stats.transfers == 1
        case = office_a.get_case(moved.case_id)
        assert (case.status, case.transferred_to) == ("active", None)
    finally:
        office_a.close()
        office_b.close()
