"""The inbox worker's metrics (adapters/monitoring/metrics.py ``InboxMetrics``, counted
by adapters/inbox/consumer.py) against the machine's NATS server: messages received and
their outcomes, and the consumer's pending messages as the broker reports them, read from
the registry and from the text Prometheus scrapes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import nats
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from adapters.inbox.consumer import InboxConfig, InboxConsumer, ensure_stream
from adapters.monitoring.metrics import INBOX_OUTCOMES, InboxMetrics
from domain.case_file import MasterData
from service import AkteService
from tests.support.inbox import OFFICE, encoded, move
from tests.support.outbox import Broker, free_port, own_stream

PERSON = MasterData("Haddad", "Omar", date(1985, 1, 2), "SYR", "N87654321", "Weg 2")
ROOT = Path(__file__).resolve().parents[3]
STRANGER = MasterData("Fremd", "Niemand", date(1970, 5, 5), "XXA", "X00000000")


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    assert found is not None, name
    return found


def test_the_worker_counts_each_outcome_and_the_pending_messages(
    service: AkteService, broker: Broker
) -> None:
    service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    moved = encoded(move(PERSON))
    invalid = move(PERSON)
    invalid["person"]["geburtsdatum"] = "02.01.1985"
    messages = [moved, moved, encoded(move(STRANGER)), encoded(invalid)]
    config = InboxConfig(
        office=OFFICE,
        url=broker.url,
        stream=broker.stream,
        subject_prefix=broker.prefix,
        fetch_timeout=0.5,
        batch_size=1,
    )
    registry = CollectorRegistry()
    metrics = InboxMetrics(registry)
    seen: list[tuple[int, int]] = []
    observe = metrics.backlog

    def spy(*, pending: int, unacknowledged: int) -> None:
        seen.append((pending, unacknowledged))
        observe(pending=pending, unacknowledged=unacknowledged)

    metrics.backlog = spy  # type: ignore[method-assign]

    async def publish_and_consume() -> None:
        client = await nats.connect(servers=[config.url])
        try:
            stream = client.jetstream()
            await ensure_stream(stream, config)
            for data in messages:
                await stream.publish(f"{config.subject_prefix}.inbox.{OFFICE}.meldebehoerde", data)
        finally:
            await client.close()
        await InboxConsumer(service.notices, config, metrics=metrics).run(until_idle=True)

    asyncio.run(publish_and_consume())

    assert value(registry, "akte_inbox_messages_received_total") == 4
    counted = {
        outcome: value(registry, "akte_inbox_messages_total", outcome=outcome)
        for outcome in INBOX_OUTCOMES
    }
    assert counted == {
        "applied": 1,
        "duplicate": 1,
        "triaged": 1,
        "returned": 1,
        "retried": 0,
        "ignored": 0,
        "unsendable": 0,
        "too_large": 0,
    }
    # Seen when the consumer subscribed (all four waiting), and once it found nothing more.
    assert seen[0] == (4, 0)
    assert seen[-1] == (0, 0)
    assert value(registry, "akte_inbox_pending_messages") == 0
    scraped = generate_latest(registry).decode()
    assert 'akte_inbox_messages_total{outcome="applied"} 1.0' in scraped
    assert "akte_inbox_pending_messages 0.0" in scraped
    # Fixed words only: no names, no message ids.
    assert "Haddad" not in scraped
    assert "Fremd" not in scraped


def test_an_unknown_outcome_is_a_defect() -> None:
    with pytest.raises(ValueError, match="unknown inbox outcome"):
        InboxMetrics(CollectorRegistry()).handled("lost")


@pytest.mark.long  # a worker process of its own: some 20 s on a loaded machine
def test_the_worker_serves_its_metrics_for_prometheus(broker: Broker, tmp_path: Path) -> None:
    """``akte inbox run --metrics-port``: the figures over HTTP, from the worker's process."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKTE_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "AKTE_STORE": "sqlite",
        "AKTE_DATA_DIR": str(tmp_path / "data"),
        "AKTE_OUTBOX_URL": broker.url,
        "AKTE_OUTBOX_SUBJECT_PREFIX": broker.prefix,
    }
    command = [sys.executable, "-m", "adapters.cli", "inbox", "run", "--stream", broker.stream]
    log = tmp_path / "inbox.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [*command, "--metrics-port", str(port)], cwd=ROOT, env=env, stdout=output, stderr=output
        )
    try:
        deadline = time.monotonic() + 60  # a bound for a stuck start, not a timing assertion
        text = ""
        while "akte_inbox_pending_messages" not in text:
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    text = r.read().decode()
            except OSError:
                time.sleep(0.1)
        assert 'akte_inbox_messages_total{outcome="applied"} 0.0' in text
        assert "akte_inbox_messages_received_total 0.0" in text
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
