"""Bounded waits at the HTTP door (adapters/http/store_gate.py, the operations routes).

While every store request hangs, the routes that need no store still answer; while the
store probe fails, writes are answered 503 with ``Retry-After`` at once and nothing is
recorded, ``/readyz`` says not ready, and both recover as soon as the probe passes.
Served by uvicorn (real concurrency, the real worker threads). The real database going
away under load: tests/system/test_store_outage.py (``bin/test-long``).
"""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import pytest
from starlette.types import Message

from adapters.bootstrap import build_app, build_service
from adapters.bounded import BoundedCall
from adapters.http.auth.identity import Role
from adapters.http.store_gate import _Slot
from adapters.settings import Settings
from tests.conftest import bearer
from tests.http.auth.route_table import PERSON
from tests.support.live_server import ServedApp

OFFICE = "abh-musterstadt"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data", store_request_slots=4)
    service = build_service(settings)
    app = build_app(settings, service)
    app.state.test_settings = settings
    served = ServedApp(app, service)
    served.start()
    try:
        yield served
    finally:
        served.stop()
        service.close()


def _headers(served: ServedApp) -> dict[str, str]:
    settings: Settings = served.app.state.test_settings
    return bearer(settings, "sb-01", Role.CASEWORKER, OFFICE)


def test_routes_without_the_store_answer_while_every_store_request_hangs(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()
    arrived = threading.Semaphore(0)
    original = served.service.get_case

    def hanging(*args: Any, **kwargs: Any) -> Any:
        arrived.release()
        released.wait(30)
        return original(*args, **kwargs)

    monkeypatch.setattr(served.service, "get_case", hanging)
    headers = _headers(served)
    # More store requests than the server has worker threads (40): with the gate, at
    # most 4 work at once (the settings' slots), the others wait without a thread.
    hanging_requests = 45
    with (
        ThreadPoolExecutor(hanging_requests) as pool,
        httpx.Client(base_url=served.base_url, trust_env=False, timeout=30) as hung,
    ):
        futures = [
            pool.submit(hung.get, f"/cases/{uuid.uuid4()}", headers=headers)
            for _ in range(hanging_requests)
        ]
        for _ in range(4):
            assert arrived.acquire(timeout=10), "the store requests did not start"
        try:
            answers = {
                path: served.http.get(path).status_code
                for path in ("/healthz", "/catalogue", "/metrics", "/readyz", "/static/akte.css")
            }
            assert not released.is_set()
            # Answered while every store slot hangs, not after.
            assert answers["/healthz"] == 200
            assert answers["/catalogue"] == 200
            assert answers["/metrics"] == 200
            assert answers["/static/akte.css"] == 200
            assert answers["/readyz"] in (200, 503)  # answered at all; its checks are bounded
        finally:
            released.set()
        statuses = [future.result().status_code for future in futures]
    assert set(statuses) <= {404, 503}


def _store_down(health: BoundedCall[None], monkeypatch: pytest.MonkeyPatch) -> None:
    def refused() -> None:
        raise ConnectionRefusedError

    monkeypatch.setattr(health, "_function", refused)
    monkeypatch.setattr(health, "_last", None)


def test_while_the_store_is_away_writes_fail_fast_with_retry_after_and_readyz_says_so(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = _headers(served)
    assert served.http.get("/readyz").status_code == 200
    health: BoundedCall[None] = served.app.state.store_health
    recorded = served.events_recorded()

    _store_down(health, monkeypatch)
    refused = served.http.post(
        "/cases", json=PERSON, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    not_ready = served.http.get("/readyz")

    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "2"
    assert refused.json()["type"].endswith("/store-unavailable")
    assert "nothing was recorded" in refused.json()["detail"]
    assert served.events_recorded() == recorded
    assert not_ready.status_code == 503
    assert not_ready.json()["checks"]["store"] == "store unreachable"
    assert served.http.get("/healthz").status_code == 200

    monkeypatch.undo()
    health._last = None  # the probe as it was: the store is back
    assert served.http.get("/readyz").status_code == 200
    created = served.http.post(
        "/cases", json=PERSON, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert created.status_code == 201
    assert served.events_recorded() > recorded


def test_a_slow_probe_holds_no_request_back(
    served: ServedApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only a refused probe closes the gate: a slow store is bounded by its own deadlines."""
    health: BoundedCall[None] = served.app.state.store_health
    release = threading.Event()
    monkeypatch.setattr(health, "_function", lambda: release.wait(30))
    monkeypatch.setattr(health, "_last", None)
    try:
        created = served.http.post("/cases", json=PERSON, headers=_headers(served))
        ready = served.http.get("/readyz")
    finally:
        release.set()
    assert created.status_code == 201
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"] == "store not answering"


def test_clients_trickling_their_bodies_hold_no_store_slot(served: ServedApp) -> None:
    """A slot counts a request's work, not its wait for the client: 40 clients sending
    their bodies slowly (ten times the 4 slots) leave the store routes answering."""
    headers = _headers(served)
    body = json.dumps(PERSON).encode()
    host, port = served.base_url.removeprefix("http://").split(":")
    head = (
        f"POST /cases HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: {headers['Authorization']}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    trickling: list[socket.socket] = []
    try:
        for _ in range(40):
            client = socket.create_connection((host, int(port)), timeout=10)
            trickling.append(client)
            client.sendall(head + body[:5])
        # Every one of them has been taken in by the server (its body is being read).
        assert served.http.get("/healthz").status_code == 200

        answered = served.http.get(f"/cases/{uuid.uuid4()}", headers=headers)

        assert answered.status_code == 404, answered.text
        # The slow clients are served too once their bodies are complete.
        first = trickling[0]
        first.sendall(body[5:])
        assert first.recv(65536).startswith(b"HTTP/1.1 201 ")
    finally:
        for client in trickling:
            client.close()


def test_a_request_holds_one_slot_at_most_and_gives_it_back() -> None:
    """Two tasks of one request (a streamed answer and its disconnect listener) taking
    the slot at once hold one between them; every slot is free again at the end."""

    async def scenario() -> tuple[int, int]:
        slots = anyio.Semaphore(3)
        slot = _Slot(slots)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(slot.take)
            tasks.start_soon(slot.take)
        during = slots.value
        slot.give_back()
        slot.give_back()
        return during, slots.value

    assert anyio.run(scenario) == (2, 3)


def test_once_the_body_is_read_a_disconnect_listener_leaves_the_slot_to_the_work() -> None:
    """A streamed answer (a document download) listens for the client's disconnect beside
    the task that sends it: that wait is no wait for the body, so the slot stays with the
    work; and after a disconnect no slot is taken again for nothing."""

    async def _disconnect() -> Message:
        return {"type": "http.disconnect"}

    async def scenario() -> tuple[int, int, int, int]:
        slots = anyio.Semaphore(1)
        slot = _Slot(slots)
        disconnected = anyio.Event()
        messages: list[Message] = [
            {"type": "http.request", "body": b"a", "more_body": True},
            {"type": "http.request", "body": b"b", "more_body": False},
        ]

        async def client() -> Message:
            if messages:
                return messages.pop(0)
            await disconnected.wait()
            return {"type": "http.disconnect"}

        receive = slot.receiving(client)

        async def listen() -> None:
            await receive()

        await slot.take()
        await receive()
        await receive()  # the body is complete: the work goes on with the slot
        after_body = slots.value
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(listen)  # the disconnect listener
            await anyio.wait_all_tasks_blocked()
            while_listening = slots.value
            disconnected.set()
        slot.give_back()

        # A client gone while its body is read: no slot is taken again.
        other = _Slot(slots)
        await other.take()
        gone = other.receiving(_disconnect)
        await gone()
        return after_body, while_listening, slots.value, int(other.held)

    assert anyio.run(scenario) == (0, 0, 1, 0)
