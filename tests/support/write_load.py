"""A write load against a live Akte whose store fails, and what its clients saw.

Used by the system tests that take the store away under load
(``tests/system/test_store_outage.py``, ``tests/system/test_failover.py``):
:func:`write_client` threads open case files, each write with an ``Idempotency-Key``,
retrying a write whose outcome they do not know (a 503, a broken connection, a timeout)
with the same key until it is acknowledged; :func:`start_watchers` asks ``/healthz`` and
``/readyz`` throughout (a thread each). Everything they see goes into
:class:`Observations`, which the tests check afterwards.

``/healthz`` must answer without the store: :func:`wait_for_healthz_answer` waits (with
a generous bound, never a timing assertion: the machine is shared) until a probe sent
while the store is down has been answered, so a ``/healthz`` that waited for the store
fails the test; :func:`healthz_failures` lists the probes that got no 200 at all. How
long the probes took is a figure for the benchmarks (``healthz_max_seconds``), not
asserted.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Final

import httpx2 as httpx
import pytest

from tests.http.auth.route_table import PERSON

CLIENTS: Final = 6
"""Writing clients (threads), each one write at a time."""
OFFICE: Final = "abh-musterstadt"
CLIENT_TIMEOUT: Final = float(os.environ.get("AKTE_OUTAGE_CLIENT_TIMEOUT", "5"))
"""How long a client waits for an answer before it counts the outcome as unknown."""
GIVE_UP_AFTER: Final = 60.0
"""A write not acknowledged this long after it began fails the test (a bound)."""
PROBE_TIMEOUT: Final = 30.0
"""How long a ``/healthz`` or ``/readyz`` probe may wait for its answer: generous (the
machine is shared and busy); a probe that gets none counts as a failure."""
SLOW_ANSWER_SECONDS: Final = 2.0
"""Write answers slower than this are listed in the figures (not asserted)."""


@dataclass
class Write:
    """One write (a case file opened) and every answer it got until acknowledged."""

    key: str
    began: float
    answers: list[str] = field(default_factory=list)
    location: str | None = None
    position: int | None = None
    """Acknowledged by a retry whose first answer was lost: the event's position."""
    acknowledged_at: float | None = None


@dataclass(frozen=True)
class Probe:
    """One ``/healthz`` request: when sent, when its answer came, what it was (the
    status code, or the transport error's type when there was no answer)."""

    sent: float
    answered: float
    outcome: str

    @property
    def seconds(self) -> float:
        return self.answered - self.sent


@dataclass
class Observations:
    """What the clients and the watcher saw (``time.monotonic()`` instants)."""

    writes: list[Write] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    healthz: list[Probe] = field(default_factory=list)
    write_seconds: list[float] = field(default_factory=list)
    slow_writes: list[tuple[float, float, str]] = field(default_factory=list)
    """Answers that took over ``SLOW_ANSWER_SECONDS``: when sent, how long, what came back."""
    phases: list[tuple[float, str]] = field(default_factory=list)
    readyz: list[tuple[float, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def healthz_seconds(self) -> list[float]:
        """How long each ``/healthz`` probe took (a figure, not asserted)."""
        return [probe.seconds for probe in list(self.healthz)]


def write_client(
    base_url: str, headers: dict[str, str], seen: Observations, stop: threading.Event
) -> None:
    """Open case files until ``stop``, each retried with its key until acknowledged (or
    ``GIVE_UP_AFTER`` seconds, which the tests then report as not acknowledged)."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=CLIENT_TIMEOUT) as http:
        while not stop.is_set():
            write = Write(str(uuid.uuid4()), time.monotonic())
            with seen.lock:
                seen.writes.append(write)
            while time.monotonic() - write.began < GIVE_UP_AFTER:
                sent = time.monotonic()
                try:
                    answer = http.post(
                        "/cases", json=PERSON, headers={**headers, "Idempotency-Key": write.key}
                    )
                except httpx.TransportError as error:
                    _timed(seen, sent, type(error).__name__)
                    write.answers.append(f"no answer ({type(error).__name__})")
                    time.sleep(0.2)
                    continue
                _timed(seen, sent, str(answer.status_code))
                if answer.status_code == 201:
                    write.answers.append("201")
                    write.location = answer.headers["Location"]
                    write.acknowledged_at = time.monotonic()
                    break
                body = answer.json()
                if answer.status_code == 200 and body.get("outcome") == "recorded":
                    # Recorded, its first answer lost with the connection: the truth, by
                    # version and position.
                    write.answers.append("200 recorded")
                    write.position = int(body["position"])
                    write.acknowledged_at = time.monotonic()
                    break
                kind = body.get("type", "").rsplit("/", 1)[-1]
                write.answers.append(f"{answer.status_code} {kind}")
                if answer.status_code in (503, 409) and kind in (
                    "store-unavailable",
                    "outcome-unknown",
                    "idempotency-key-in-flight",
                ):
                    time.sleep(min(float(answer.headers.get("Retry-After", "1")), 0.5))
                    continue
                with seen.lock:
                    seen.unexpected.append(f"{answer.status_code}: {answer.text[:200]}")
                break


def _timed(seen: Observations, sent: float, outcome: str) -> None:
    took = time.monotonic() - sent
    seen.write_seconds.append(took)
    if took > SLOW_ANSWER_SECONDS:
        seen.slow_writes.append((sent, took, outcome))


def since_phase(seen: Observations, at: float) -> str:
    """``at`` relative to the phase (outage step) before it, for the figures."""
    before = [(t, name) for t, name in seen.phases if t <= at]
    if not before:
        return "before the first outage"
    t, name = before[-1]
    return f"{at - t:.2f} s after {name}"


def first_answer(base_url: str) -> None:
    """Wait for the server's first ``/healthz`` answer (bounded by ``PROBE_TIMEOUT``),
    before anything is watched: the first request of a fresh server is slow on a busy
    machine, and a failure here must not look like one of the store."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=PROBE_TIMEOUT) as http:
        status = http.get("/healthz").status_code
    assert status == 200, f"/healthz answered {status} before the store was touched"


def join_started(threads: list[threading.Thread], timeout: float) -> None:
    """Join the threads that were started (a failure before they all started must not
    be hidden by ``join`` refusing an unstarted thread)."""
    for thread in threads:
        if thread.ident is not None:
            thread.join(timeout)


def watch_healthz(base_url: str, seen: Observations, stop: threading.Event) -> None:
    """Ask ``/healthz`` until ``stop``; every outcome is recorded, a probe without an
    answer too (the thread never dies on one: a dead watcher would hide the rest of the
    run). A thread of its own: a ``/healthz`` that hangs must not stop ``/readyz`` from
    being watched, so that the test names the culprit."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=PROBE_TIMEOUT) as http:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                outcome = str(http.get("/healthz").status_code)
            except httpx.TransportError as error:
                outcome = f"no answer ({type(error).__name__})"
            seen.healthz.append(Probe(sent, time.monotonic(), outcome))
            time.sleep(0.05)


def watch_readyz(base_url: str, seen: Observations, stop: threading.Event) -> None:
    """Ask ``/readyz`` until ``stop``, recording when each answer came and its status."""
    with httpx.Client(base_url=base_url, trust_env=False, timeout=PROBE_TIMEOUT) as http:
        while not stop.is_set():
            try:
                status = http.get("/readyz").status_code
            except httpx.TransportError:
                pass  # /readyz is judged by the answers it gave, when it gave them
            else:
                seen.readyz.append((time.monotonic(), status))
            time.sleep(0.05)


def start_watchers(
    base_url: str, seen: Observations, stop: threading.Event
) -> list[threading.Thread]:
    """Start :func:`watch_healthz` and :func:`watch_readyz`; the started threads."""
    watchers = [
        threading.Thread(target=watch, args=(base_url, seen, stop))
        for watch in (watch_healthz, watch_readyz)
    ]
    for watcher in watchers:
        watcher.start()
    return watchers


def healthz_failures(seen: Observations) -> list[str]:
    """The ``/healthz`` probes that got no 200 (within ``PROBE_TIMEOUT``), described."""
    return [
        f"{probe.outcome}, sent {since_phase(seen, probe.sent)}"
        for probe in list(seen.healthz)
        if probe.outcome != "200"
    ]


def wait_for_healthz_answer(seen: Observations, after: float, within: float = 60.0) -> Probe:
    """The first ``/healthz`` probe sent after ``after`` and answered 200; waits for one
    (bounded). Called while the store is down: a ``/healthz`` that waited for the store
    gives none until the store is back, and the test fails here."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for probe in list(seen.healthz):
            if probe.sent >= after and probe.outcome == "200":
                return probe
        time.sleep(0.02)
    pytest.fail(f"/healthz gave no answer within {within} s while the store was down")


def first_readyz(seen: Observations, status: int, after: float, within: float) -> float:
    """When ``/readyz`` first answered ``status`` after ``after`` (bounded wait)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        for at, answered in list(seen.readyz):
            if at >= after and answered == status:
                return at
        time.sleep(0.02)
    pytest.fail(f"/readyz did not answer {status} within {within} s")


def acknowledged_after(seen: Observations, after: float) -> float | None:
    """When the first write acknowledged after ``after`` was acknowledged (None: none yet)."""
    with seen.lock:
        writes = list(seen.writes)
    found = [
        w.acknowledged_at
        for w in writes
        if w.acknowledged_at is not None and w.acknowledged_at >= after
    ]
    return min(found) if found else None


def tally(writes: list[Write]) -> dict[str, int]:
    """How often each answer came before the acknowledging one, over ``writes``."""
    counts: dict[str, int] = {}
    for write in writes:
        for answer in write.answers[:-1]:
            counts[answer] = counts.get(answer, 0) + 1
    return counts
