"""``akte outbox run`` killed with SIGKILL after some acknowledgements loses nothing.

A child process publishes one event at a time (``--batch-size 1``: many positions to be
killed between); the parent kills it once the recorded position shows some events
acknowledged, and before it is done. A restarted ``akte outbox run`` publishes the rest
and stops cleanly on SIGTERM. Every chosen event is then in the stream, and a consumer
that de-duplicates by the CloudEvents id sees each exactly once, each case file's events
in order. On SQLite and on PostgreSQL, against the machine's NATS server.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from adapters.outbox.cloudevents import Selection
from adapters.outbox.position import OutboxPositions, outbox_positions
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from service import AkteService
from tests.adapters.outbox.stories import PUBLISHED_PER_STORY, story
from tests.support.outbox import Broker, own_stream, stored_messages
from tests.system.test_projections_crash import ROOT, child_env

STORIES = 300


@pytest.fixture
def broker() -> Iterator[Broker]:
    with own_stream() as own:
        yield own


def start_outbox(settings: Settings, broker: Broker, log: Path) -> subprocess.Popen[bytes]:
    env = child_env(settings) | {
        "AKTE_OUTBOX_URL": broker.url,
        "AKTE_OUTBOX_STREAM": broker.stream,
        "AKTE_OUTBOX_SUBJECT_PREFIX": broker.prefix,
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "outbox", "run", "--batch-size", "1",
             "--poll-interval", "0.05"],
            cwd=ROOT, env=env, stdout=output, stderr=output,
        )  # fmt: skip


def wait_for(positions: OutboxPositions, stream: str, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while (position := positions.state(stream).position) < at_least:
        assert time.monotonic() < deadline, f"the outbox did not reach {at_least} in time"
        time.sleep(0.005)
    return position


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_an_outbox_killed_after_some_acknowledgements_publishes_each_event_once(
    service: AkteService, settings: Settings, broker: Broker, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    for start in range(0, STORIES, 50):
        service.save(*[story(n, tag) for n in range(start, start + 50)])
    head = service.recorder.max_notification_id() or 0
    rows = ApplicationEventLog(service).read_events(0, 100_000, topics=Selection.parse(None).topics)
    expected = [f"{aggregate_id}:{event.originator_version}" for _, event, aggregate_id in rows]
    assert len(expected) == STORIES * PUBLISHED_PER_STORY
    positions = outbox_positions(service.recorder)
    positions.create_table()
    log = tmp_path / "outbox.log"

    child = start_outbox(settings, broker, log)
    try:
        wait_for(positions, broker.stream, rows[50][0])
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    killed_at = positions.state(broker.stream).position
    assert 0 < killed_at < head, "killed in the middle, not before or after"
    assert len(stored_messages(broker)) < len(expected)

    restarted = start_outbox(settings, broker, log)
    try:
        wait_for(positions, broker.stream, head)
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0, log.read_text()
    finally:
        if restarted.poll() is None:
            restarted.kill()
            restarted.wait()
    assert "stopped at position" in log.read_text()

    messages = stored_messages(broker)
    ids = [message.message_id for message in messages]
    # What a consumer that de-duplicates by id sees: every event exactly once ...
    seen = list(dict.fromkeys(ids))
    assert sorted(seen) == sorted(expected)
    # ... and each case file's events in order (JetStream also dropped any repeat that
    # came within its duplicate window, so here the stream holds each once).
    assert len(ids) == len(expected)
    versions: dict[str, list[int]] = {}
    for message in messages:
        envelope = orjson.loads(message.data)
        versions.setdefault(envelope["subject"], []).append(envelope["akteversion"])
    assert all(found == sorted(found) for found in versions.values())
    assert seen == expected, "the stream holds them in log order"
