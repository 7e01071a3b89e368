"""Bounded waits at the HTTP door (adapters/http/store_gate.py, the operations routes).

While every store request hangs, the routes that need no store still answer; while the
store probe fails, writes are answered 503 with ``Retry-After`` at once and nothing is
recorded, ``/readyz`` says not ready, and both recover as soon as the probe passes.
Served by uvicorn (real concurrency, the real worker threads). The real database going
away under load: tests/system/test_store_outage.py (``bin/test-long``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from adapters.bootstrap import build_app, build_service
from adapters.bounded import BoundedCall
from adapters.http.auth.identity import Role
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
