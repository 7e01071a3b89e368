"""The broker stopped for 10 s while commands are written and ``akte outbox run`` runs:
nothing is lost, and the lag recovers.

The test starts a NATS server of its own (tests/support/nats_server.py; the machine's
shared one is never stopped), lets the publisher catch up with a first batch of case
files, and keeps opening case files through the service from a second thread. Then it
stops the server for 10 s: ``akte outbox status`` shows the broker's error and a lag that
grows; the server is started again on the same port and store; the publisher (which
retries with a growing wait) publishes everything written before, during and after the
outage, and the status shows no error and no lag. Every chosen event is then in the
stream; a consumer that de-duplicates by the CloudEvents id applies each exactly once,
each case file's events in order. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any, Final

import orjson
import pytest

from adapters.cli.main import main
from adapters.outbox.cloudevents import Selection
from adapters.outbox.position import OutboxPositions, outbox_positions
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.case_file import MasterData
from service import AkteService
from tests.adapters.outbox.stories import PUBLISHED_PER_STORY, story
from tests.support.nats_server import OwnNatsServer, own_nats_server
from tests.support.outbox import Broker, stored_messages
from tests.system.test_projections_crash import ROOT, child_env

pytestmark = pytest.mark.long

STORIES: Final = 100
OUTAGE_SECONDS: Final = 10.0
WRITE_INTERVAL_SECONDS: Final = 0.02
PERSON: Final = MasterData("Ausfall", "Bro", date(1980, 1, 1), "SYR", "P0000001")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[OwnNatsServer]:
    with own_nats_server(tmp_path / "nats") as own:
        yield own


def env_for(settings: Settings, broker: Broker) -> dict[str, str]:
    return child_env(settings) | {
        "AKTE_OUTBOX_URL": broker.url,
        "AKTE_OUTBOX_STREAM": broker.stream,
        "AKTE_OUTBOX_SUBJECT_PREFIX": broker.prefix,
    }


def start_outbox(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "outbox", "run", "--batch-size", "50",
             "--poll-interval", "0.05"],
            cwd=ROOT, env=env, stdout=output, stderr=output,
        )  # fmt: skip


def outbox_status(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``akte outbox status --json`` in this process (the environment names the store
    and the broker): a status every half second, which a new process per look under a
    loaded machine would not give."""
    capsys.readouterr()
    assert main(["outbox", "status", "--json"]) == 0
    status: dict[str, Any] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    return status


def wait_for(positions: OutboxPositions, stream: str, at_least: int, timeout: float) -> None:
    """A bound for a stuck publisher, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while positions.state(stream).position < at_least:
        assert time.monotonic() < deadline, f"the outbox did not reach {at_least} in time"
        time.sleep(0.05)


class Writer(threading.Thread):
    """Opens case files through the service until stopped: commands during the outage."""

    def __init__(self, service: AkteService) -> None:
        super().__init__(daemon=True)
        self._service = service
        self._stop_event = threading.Event()
        self.opened = 0
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            while not self._stop_event.wait(WRITE_INTERVAL_SECONDS):
                self._service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01")
                self.opened += 1
        except BaseException as error:  # reported by the test, not lost in the thread
            self.failure = error

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=30)


def test_a_broker_stopped_for_ten_seconds_loses_nothing_and_the_lag_recovers(
    service: AkteService,
    settings: Settings,
    server: OwnNatsServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tag = uuid.uuid4().hex[:8]
    broker = Broker(url=server.url, stream=f"AKTE_OUTAGE_{tag}", prefix=f"akteoutage{tag}")
    env = env_for(settings, broker)
    for name, value in env.items():
        if name.startswith("AKTE_"):
            monkeypatch.setenv(name, value)
    for start in range(0, STORIES, 50):
        service.save(*[story(n, tag) for n in range(start, start + 50)])
    first_head = service.recorder.max_notification_id() or 0
    positions = outbox_positions(service.recorder)
    positions.create_table()
    log = tmp_path / "outbox.log"
    child = start_outbox(env, log)
    writer = Writer(service)
    try:
        wait_for(positions, broker.stream, first_head, timeout=120)
        writer.start()
        time.sleep(1.0)  # some commands published while the broker is up

        server.stop()
        stopped_at = time.monotonic()
        during: list[dict[str, Any]] = []
        while time.monotonic() - stopped_at < OUTAGE_SECONDS:
            during.append(outbox_status(capsys))
            time.sleep(0.5)
        opened_during_outage = writer.opened
        server.start()

        time.sleep(1.0)  # and some after it
        writer.stop()
        assert writer.failure is None, repr(writer.failure)
        head = service.recorder.max_notification_id() or 0
        wait_for(positions, broker.stream, head, timeout=120)
        after = outbox_status(capsys)
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=60) == 0, log.read_text()
    finally:
        writer.stop()
        if child.poll() is None:
            child.kill()
            child.wait()

    # During the outage the status named the broker's failure, and the lag grew.
    errors = [status["last_error"] for status in during if status["last_error"]]
    assert errors, f"no error shown during the outage: {during}"
    lags = [status["lag_notifications"] for status in during]
    assert max(lags) > 0
    assert opened_during_outage > 0
    # Afterwards: no error, no lag.
    assert after["last_error"] is None
    assert after["lag_notifications"] == 0
    assert after["position"] == head

    rows = ApplicationEventLog(service).read_events(
        0, 1_000_000, until=head, topics=Selection.parse(None).topics
    )
    expected = [f"{aggregate_id}:{event.originator_version}" for _, event, aggregate_id in rows]
    assert len(expected) == STORIES * PUBLISHED_PER_STORY + writer.opened
    messages = stored_messages(broker)
    ids = [message.message_id for message in messages]
    # What a consumer that de-duplicates by id applies: every event exactly once ...
    applied = list(dict.fromkeys(ids))
    assert sorted(applied) == sorted(expected)
    assert applied == expected, "in log order"
    # ... each case file's events in order.
    versions: dict[str, list[int]] = {}
    for message in messages:
        envelope = orjson.loads(message.data)
        versions.setdefault(envelope["subject"], []).append(envelope["akteversion"])
    assert all(found == sorted(found) for found in versions.values())
