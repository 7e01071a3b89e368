"""Operations endpoints, interface limits, request ids and log lines.

The middlewares are tested mainly on a small application of the test's own, so that
these tests do not depend on how the case file routes authenticate; ``/healthz``,
``/readyz`` and ``/metrics`` (which need no authentication) on the real application, on
SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx2 as httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from pydantic import BaseModel, SecretStr
from starlette.types import Message

from adapters.bootstrap import build_app, build_service
from adapters.http.middleware import (
    UNROUTED,
    HttpMetrics,
    RequestBodyLimitMiddleware,
    add_interface_middlewares,
)
from adapters.http.routes.operations import NamedCheck
from adapters.logging_setup import configure_logging
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from tests.conftest import POSTGRES

PROBLEMS = "https://akte.example/problems/"
LIMIT = 64
PERSON = MasterData(
    surname="Beispiel",
    given_names="Amal",
    date_of_birth=date(1991, 2, 3),
    nationality="SYR",
    passport_number="N12345678",
)
THING = "thing-4711"  # stands for an id or file number in a concrete path
SECRET_TEXT = "Geheimnis Yılmaz"


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + code
    assert problem["status"] == status
    return problem


def samples(metrics_text: str, name: str) -> list[Sample]:
    return [
        sample
        for family in text_string_to_metric_families(metrics_text)
        for sample in family.samples
        if sample.name == name
    ]


def request_count(metrics_text: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in samples(metrics_text, "akte_http_requests_total")
        if labels.items() <= sample.labels.items()
    )


# ------------------------------------------------------------ a small app of our own


class NoteCreate(BaseModel):
    text: str


@dataclass
class SmallApp:
    """An application with JSON, body-less and upload routes, behind the middlewares."""

    app: FastAPI = field(default_factory=FastAPI)
    metrics: HttpMetrics = field(default_factory=lambda: HttpMetrics(CollectorRegistry()))
    reached: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        app, reached = self.app, self.reached

        @app.post("/things/{thing_id}/notes", status_code=201)
        async def add_note(
            thing_id: str, note: NoteCreate, request: Request, response: Response
        ) -> dict[str, str]:
            reached.append("notes")
            logging.getLogger("tests.small_app").info("note added")
            response.headers["ETag"] = '"3"'
            return {"request_id": request.state.request_id}

        @app.post("/things/{thing_id}/touch")
        async def touch(thing_id: str) -> dict[str, str]:
            reached.append("touch")
            return {}

        @app.post("/things/{thing_id}/scans")
        async def upload_scan(thing_id: str, request: Request) -> dict[str, int]:
            reached.append("scans")
            return {"size": len(await request.body())}

        @app.get("/things/{thing_id}/fail")
        async def fail(thing_id: str) -> None:
            raise RuntimeError(SECRET_TEXT)

        add_interface_middlewares(
            app,
            metrics=self.metrics,
            max_body_bytes=LIMIT,
            max_body_bytes_by_path={"/things/{thing_id}/scans": 10 * LIMIT},
            accepted_media_types_by_path={"/things/{thing_id}/scans": {"application/pdf"}},
        )

    def metrics_text(self) -> str:
        return generate_latest(self.metrics.registry).decode()


@pytest.fixture
def small() -> SmallApp:
    return SmallApp()


@pytest.fixture
def small_client(small: SmallApp) -> Iterator[TestClient]:
    with TestClient(small.app, raise_server_exceptions=False) as client:
        yield client


def note_body(size: int = 20) -> bytes:
    return json.dumps({"text": "x" * size}).encode()


# ----------------------------------------------------------------- body size limit


def test_a_body_declared_too_large_is_refused_before_the_route(
    small: SmallApp, small_client: TestClient
) -> None:
    response = small_client.post(
        f"/things/{THING}/notes",
        content=note_body(LIMIT),
        headers={"Content-Type": "application/json"},
    )

    problem = assert_problem(response, 413, "payload-too-large")
    assert str(LIMIT) in problem["detail"]
    assert response.headers["X-Request-ID"]
    assert small.reached == []


def test_a_chunked_body_too_large_is_refused_before_the_route(
    small: SmallApp, small_client: TestClient
) -> None:
    chunks = iter([b'{"text": "', b"x" * LIMIT, b'"}'])

    response = small_client.post(
        f"/things/{THING}/notes", content=chunks, headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "payload-too-large")
    assert small.reached == []


def test_a_body_within_the_limit_passes(small: SmallApp, small_client: TestClient) -> None:
    response = small_client.post(
        f"/things/{THING}/notes",
        content=note_body(LIMIT - 20),
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 201, response.text
    assert small.reached == ["notes"]


def test_a_path_pattern_can_have_a_larger_limit(small: SmallApp, small_client: TestClient) -> None:
    response = small_client.post(
        f"/things/{THING}/scans",
        content=b"%PDF" + b"x" * 2 * LIMIT,
        headers={"Content-Type": "application/pdf"},
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"size": 4 + 2 * LIMIT}


@dataclass
class AsgiExchange:
    """Drives an ASGI app by hand: a body in chunks, the messages it sends collected."""

    chunks: list[bytes]
    headers: list[tuple[bytes, bytes]]
    sent: list[Message] = field(default_factory=list)

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/things/{THING}/notes",
            "raw_path": f"/things/{THING}/notes".encode(),
            "root_path": "",
            "query_string": b"",
            "headers": self.headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
            "state": {},
        }

    async def receive(self) -> Message:
        if self.chunks:
            chunk = self.chunks.pop(0)
            return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        starts = [message for message in self.sent if message["type"] == "http.response.start"]
        assert len(starts) == 1
        status: int = starts[0]["status"]
        return status

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    "declared_length", [None, 10], ids=["no-content-length", "lying-content-length"]
)
def test_streamed_bytes_are_counted_across_chunks(declared_length: int | None) -> None:
    small = SmallApp()
    headers = [(b"content-type", b"application/json")]
    if declared_length is not None:
        headers.append((b"content-length", str(declared_length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    exchange = AsgiExchange([b'{"text": "', b"x" * 40, b"x" * 40, b'"}'], headers)

    asyncio.run(small.app(exchange.scope(), exchange.receive, exchange.send))

    assert exchange.status == 413
    assert json.loads(exchange.body)["type"] == PROBLEMS + "payload-too-large"
    assert small.reached == []


def test_the_limit_does_not_change_a_body_streamed_within_it() -> None:
    async def echo_length(scope: Any, receive: Any, send: Any) -> None:
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(total).encode()})

    exchange = AsgiExchange([b"a" * 30, b"b" * 30], [(b"transfer-encoding", b"chunked")])

    limited = RequestBodyLimitMiddleware(echo_length, max_body_bytes=LIMIT)
    asyncio.run(limited(exchange.scope(), exchange.receive, exchange.send))

    assert exchange.status == 200
    assert exchange.body == b"60"


def free_port() -> int:
    with closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_chunked_body_too_large_is_refused_by_a_real_server(small: SmallApp) -> None:
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(small.app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)

        def body() -> Iterator[bytes]:
            yield b'{"text": "'
            for _ in range(10):
                yield b"x" * 32
            yield b'"}'

        response = httpx.post(
            f"http://127.0.0.1:{port}/things/{THING}/notes",
            content=body(),
            headers={"Content-Type": "application/json"},
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)

    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413, "payload-too-large")
    assert small.reached == []


# ----------------------------------------------------------------------- media type


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"text": "hi"}', "text/plain"),
        (b"text=hi", "application/x-www-form-urlencoded"),
        (b'{"text": "hi"}', "application/problem+json"),
        (b'{"text": "hi"}', None),
    ],
)
def test_a_body_that_is_not_json_is_refused(
    small: SmallApp, small_client: TestClient, content: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}

    response = small_client.post(f"/things/{THING}/notes", content=content, headers=headers)

    problem = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in problem["detail"]
    assert response.headers["Accept-Post"] == "application/json"
    assert small.reached == []


def test_a_form_post_is_refused(small: SmallApp, small_client: TestClient) -> None:
    response = small_client.post(f"/things/{THING}/notes", data={"text": "hi"})

    assert_problem(response, 415, "unsupported-media-type")
    assert small.reached == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"]
)
def test_a_json_body_is_taken(small: SmallApp, small_client: TestClient, content_type: str) -> None:
    response = small_client.post(
        f"/things/{THING}/notes", content=b'{"text": "hi"}', headers={"Content-Type": content_type}
    )

    assert response.status_code == 201, response.text
    assert small.reached == ["notes"]


@pytest.mark.parametrize("headers", [{}, {"Content-Type": "text/plain", "Content-Length": "0"}])
def test_a_post_without_body_needs_no_content_type(
    small: SmallApp, small_client: TestClient, headers: dict[str, str]
) -> None:
    response = small_client.post(f"/things/{THING}/touch", headers=headers)

    assert response.status_code == 200, response.text
    assert small.reached == ["touch"]


def test_a_path_pattern_can_take_other_media_types(
    small: SmallApp, small_client: TestClient
) -> None:
    pdf = small_client.post(
        f"/things/{THING}/scans", content=b"%PDF-1.7", headers={"Content-Type": "application/pdf"}
    )
    json_there = small_client.post(f"/things/{THING}/scans", json={"text": "hi"})

    assert pdf.status_code == 200, pdf.text
    assert_problem(json_there, 415, "unsupported-media-type")
    assert json_there.headers["Accept-Post"] == "application/pdf"
    assert small.reached == ["scans"]


# ----------------------------------------------------------------------- request id


def test_a_request_id_is_generated(small_client: TestClient) -> None:
    response = small_client.post(f"/things/{THING}/notes", json={"text": "hi"})

    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32
    assert int(request_id, 16) >= 0
    assert response.json() == {"request_id": request_id}  # request.state.request_id
    other = small_client.post(f"/things/{THING}/notes", json={"text": "hi"})
    assert other.headers["X-Request-ID"] != request_id


@pytest.mark.parametrize("incoming", ["abc-123._X", "a", "7" * 64])
def test_a_sane_incoming_request_id_is_kept(small_client: TestClient, incoming: str) -> None:
    response = small_client.post(
        f"/things/{THING}/notes", json={"text": "hi"}, headers={"X-Request-ID": incoming}
    )

    assert response.headers["X-Request-ID"] == incoming
    assert response.json() == {"request_id": incoming}


@pytest.mark.parametrize(
    "incoming",
    [b"7" * 65, b"", b"abc def", b"abc\ninjected", b"abc/../x", b"id\xc3\xa4"],
    ids=["too-long", "empty", "space", "newline", "slash", "non-ascii"],
)
def test_an_odd_incoming_request_id_is_replaced(incoming: bytes) -> None:
    small = SmallApp()
    # Sent by hand: HTTP clients refuse to send some of these.
    exchange = AsgiExchange(
        [b'{"text": "hi"}'],
        [(b"content-type", b"application/json"), (b"x-request-id", incoming)],
    )

    asyncio.run(small.app(exchange.scope(), exchange.receive, exchange.send))

    start = next(m for m in exchange.sent if m["type"] == "http.response.start")
    answered = dict(start["headers"])[b"x-request-id"].decode()
    assert answered != incoming.decode("latin-1")
    assert len(answered) == 32
    assert json.loads(exchange.body) == {"request_id": answered}


def test_refusals_carry_the_request_id(small_client: TestClient) -> None:
    response = small_client.post(
        f"/things/{THING}/notes", content=b"x", headers={"X-Request-ID": "req-1"}
    )

    assert response.status_code == 415
    assert response.headers["X-Request-ID"] == "req-1"


# --------------------------------------------------------------------- metrics (small)


def test_metrics_name_route_templates_not_paths(small: SmallApp, small_client: TestClient) -> None:
    small_client.post(f"/things/{THING}/notes", json={"text": "hi"})
    small_client.post(f"/things/{THING}/notes", json={"text": "hi"})
    small_client.post(f"/things/{THING}/notes", content=b"x")
    small_client.get(f"/nowhere/{THING}")
    small_client.request("BREW", f"/things/{THING}/notes")

    text = small.metrics_text()

    assert THING not in text
    notes = "/things/{thing_id}/notes"
    assert request_count(text, method="POST", route=notes, status="201") == 2
    assert request_count(text, method="POST", route=UNROUTED, status="415") == 1
    assert request_count(text, method="GET", route=UNROUTED, status="404") == 1
    assert request_count(text, method="OTHER", route=notes, status="405") == 1
    durations = samples(text, "akte_http_request_duration_seconds_count")
    assert {"method": "POST", "route": notes} in [sample.labels for sample in durations]


def test_case_events_written_follow_the_versions_writes_report(
    small: SmallApp, small_client: TestClient
) -> None:
    # The route answers ETag "3": from If-Match "1" that is 2 events, from nothing 3.
    small_client.post(f"/things/{THING}/notes", json={"text": "hi"}, headers={"If-Match": '"1"'})
    small_client.post(f"/things/{THING}/notes", json={"text": "hi"})
    small_client.post(f"/things/{THING}/notes", content=b"x", headers={"If-Match": '"1"'})

    [written] = samples(small.metrics_text(), "akte_case_events_written_total")

    assert written.value == 5


# ------------------------------------------------------------------------- logging


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """JSON log lines into a buffer; the logging setup is restored afterwards."""
    root = logging.getLogger()
    uvicorn_loggers = [
        logging.getLogger(name) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    ]
    saved_root = (list(root.handlers), root.level)
    saved_uvicorn = [(lg, list(lg.handlers), lg.propagate, lg.disabled) for lg in uvicorn_loggers]
    buffer = io.StringIO()
    configure_logging(json_logs=True, level="INFO", stream=buffer)
    try:
        yield buffer
    finally:
        root.handlers[:] = saved_root[0]
        root.setLevel(saved_root[1])
        for lg, handlers, propagate, disabled in saved_uvicorn:
            lg.handlers[:] = handlers
            lg.propagate = propagate
            lg.disabled = disabled


def log_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_each_request_writes_one_json_access_line_without_ids_or_content(
    small_client: TestClient, log_output: io.StringIO
) -> None:
    response = small_client.post(f"/things/{THING}/notes?name=Yilmaz", json={"text": SECRET_TEXT})

    lines = log_lines(log_output)
    [access] = [line for line in lines if line["logger"] == "akte.access"]
    assert access["level"] == "INFO"
    assert access["request_id"] == response.headers["X-Request-ID"]
    assert access["method"] == "POST"
    assert access["route"] == "/things/{thing_id}/notes"
    assert access["status"] == 201
    assert isinstance(access["duration_ms"], float)
    assert access["timestamp"]
    assert access["message"].startswith("POST /things/{thing_id}/notes 201 ")
    # The test client logs the URL it requested; the server's lines must not.
    server_lines = json.dumps([line for line in lines if not line["logger"].startswith("httpx")])
    for leaked in (THING, "Yilmaz", "Geheimnis", "name="):
        assert leaked not in server_lines


def test_log_lines_inside_a_request_carry_its_id(
    small_client: TestClient, log_output: io.StringIO
) -> None:
    response = small_client.post(f"/things/{THING}/notes", json={"text": "hi"})
    logging.getLogger("tests.outside").info("after the request")

    lines = {line["message"]: line for line in log_lines(log_output)}
    assert lines["note added"]["request_id"] == response.headers["X-Request-ID"]
    assert lines["note added"]["logger"] == "tests.small_app"
    assert "request_id" not in lines["after the request"]


def test_a_failing_request_is_logged_as_500(
    small_client: TestClient, log_output: io.StringIO
) -> None:
    response = small_client.get(f"/things/{THING}/fail")

    assert response.status_code == 500
    [access] = [line for line in log_lines(log_output) if line["logger"] == "akte.access"]
    assert access["status"] == 500
    assert access["route"] == "/things/{thing_id}/fail"


def test_configuring_logging_twice_keeps_one_handler(log_output: io.StringIO) -> None:
    second = io.StringIO()
    configure_logging(json_logs=False, level="WARNING", stream=second)

    root = logging.getLogger()
    ours = [
        handler for handler in root.handlers if getattr(handler, "_akte_logging_handler", False)
    ]
    assert len(ours) == 1
    assert root.level == logging.WARNING
    logging.getLogger("tests.twice").warning("once")
    assert log_output.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert " [-] once" in second.getvalue()  # plain format, outside a request


def test_uvicorn_logs_go_through_our_handler_and_its_access_log_is_off(
    log_output: io.StringIO,
) -> None:
    logging.getLogger("uvicorn.error").info("Started server process")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET /cases/x HTTP/1.1" 200')

    [line] = log_lines(log_output)
    assert line["logger"] == "uvicorn.error"
    assert line["message"] == "Started server process"


# ------------------------------------------------------- the real app: ops endpoints


@pytest.fixture
def real_app(service: AkteService, settings: Settings) -> FastAPI:
    return build_app(settings, service)


@pytest.fixture
def client(real_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(real_app) as test_client:
        yield test_client


def break_store(settings: Settings) -> None:
    """Drops the events table under the running service."""
    if settings.store == "sqlite":
        with closing(sqlite3.connect(settings.sqlite_path)) as connection:
            connection.execute("DROP TABLE stored_events")
            connection.commit()
    else:
        with psycopg.connect(autocommit=True, **POSTGRES) as connection:
            connection.execute(f'DROP TABLE "{settings.postgres_schema}".akte_events')


def test_healthz_answers_without_the_store(client: TestClient, settings: Settings) -> None:
    break_store(settings)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_a_working_store(client: TestClient) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ready", "checks": {"store": "ok", "read_models": "ok"}}


def test_readyz_names_an_unreachable_store(client: TestClient, settings: Settings) -> None:
    break_store(settings)

    response = client.get("/readyz")

    problem = assert_problem(response, 503, "not-ready")
    # The read models' lag cannot be known without the log either.
    assert problem["checks"] == {
        "store": "store unreachable",
        "read_models": "not checked: store unreachable",
    }
    assert "store" in problem["detail"]
    for internal in ("stored_events", "akte_events", "no such table", "does not exist"):
        assert internal not in response.text


def test_readyz_names_the_failed_extra_checks(service: AkteService, settings: Settings) -> None:
    def raises() -> str | None:
        raise RuntimeError(SECRET_TEXT)

    app = build_app(
        settings,
        service,
        readiness_checks=[
            NamedCheck("projections", lambda: "12000 events behind"),
            NamedCheck("mail", raises),
            NamedCheck("clock", lambda: None),
        ],
    )

    with TestClient(app) as client:
        response = client.get("/readyz")

    problem = assert_problem(response, 503, "not-ready")
    assert problem["checks"] == {
        "store": "ok",
        "read_models": "ok",
        "projections": "12000 events behind",
        "mail": "check failed",
        "clock": "ok",
    }
    assert "projections (12000 events behind)" in problem["detail"]
    assert "Geheimnis" not in response.text


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    case_id = str(uuid.uuid4())
    client.get(f"/cases/{case_id}")
    client.get(f"/cases/{case_id}")
    client.get("/healthz")
    client.get("/openapi.json")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert case_id not in text
    assert request_count(text, method="GET", route="/cases/{case_id}") == 2
    assert request_count(text, method="GET", route="/healthz", status="200") == 1
    assert request_count(text, method="GET", route="/openapi.json", status="200") == 1
    durations = samples(text, "akte_http_request_duration_seconds_count")
    assert {"method": "GET", "route": "/cases/{case_id}"} in [s.labels for s in durations]


def test_events_in_log_count_what_any_process_wrote(client: TestClient, settings: Settings) -> None:
    def events_in_log() -> float:
        [sample] = samples(client.get("/metrics").text, "akte_events_in_log")
        return sample.value

    assert events_in_log() == 0
    other_process = build_service(settings)
    try:
        other_process.open_case(office_id="abh-test", master_data=PERSON, by="sb-01")
        highest = other_process.recorder.max_notification_id()
    finally:
        other_process.close()

    assert highest
    assert events_in_log() == highest


def test_metrics_leave_out_the_event_count_when_the_store_fails(
    client: TestClient, settings: Settings
) -> None:
    client.get("/healthz")
    break_store(settings)

    response = client.get("/metrics")

    assert response.status_code == 200
    assert samples(response.text, "akte_events_in_log") == []
    assert samples(response.text, "akte_http_requests_total")


def test_each_app_counts_its_own_requests(service: AkteService, settings: Settings) -> None:
    first, second = build_app(settings, service), build_app(settings, service)

    with TestClient(first) as first_client, TestClient(second) as second_client:
        first_client.get("/healthz")
        first_client.get("/healthz")
        second_client.get("/healthz")
        first_text = first_client.get("/metrics").text
        second_text = second_client.get("/metrics").text

    assert request_count(first_text, route="/healthz") == 2
    assert request_count(second_text, route="/healthz") == 1


def test_operations_endpoints_are_documented_without_security(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]

    for path in ("/healthz", "/readyz", "/metrics"):
        operation = paths[path]["get"]
        assert operation["tags"] == ["operations"]
        assert operation["description"]
        # Public: the empty requirement lets anonymous callers in.
        assert {} in operation["security"]
        assert "parameters" not in operation
    assert "503" in paths["/readyz"]["get"]["responses"]


def test_the_real_app_refuses_bodies_before_its_routes(
    service: AkteService, settings: Settings
) -> None:
    app = build_app(settings.model_copy(update={"max_body_bytes": LIMIT}), service)

    with TestClient(app) as client:
        not_json = client.post(
            "/cases", content=b"surname=Yilmaz", headers={"Content-Type": "text/plain"}
        )
        declared = client.post(
            "/cases", content=note_body(LIMIT), headers={"Content-Type": "application/json"}
        )
        chunked = client.post(
            "/cases", content=iter([note_body(LIMIT)]), headers={"Content-Type": "application/json"}
        )

    assert_problem(not_json, 415, "unsupported-media-type")
    assert_problem(declared, 413, "payload-too-large")
    assert_problem(chunked, 413, "payload-too-large")
    for response in (not_json, declared, chunked):
        assert response.headers["X-Request-ID"]
    assert service.recorder.max_notification_id() in (None, 0)


def test_metrics_show_each_read_models_lag(client: TestClient) -> None:
    text = client.get("/metrics").text

    families = {family.name: family for family in text_string_to_metric_families(text)}
    lag = families["akte_read_model_lag_events"]
    read_models = {sample.labels["read_model"] for sample in lag.samples}
    assert {"statistics", "unassigned_procedures"} <= read_models
    assert all(sample.value >= 0 for sample in lag.samples)
    assert "akte_read_model_lag_seconds" in families


def test_metrics_in_production_answer_only_this_machine_without_a_token(
    real_app: FastAPI,
) -> None:
    development = real_app.state.settings
    real_app.state.settings = development.model_copy(update={"deployment": "production"})
    try:
        outside = TestClient(real_app, client=("203.0.113.7", 40000)).get("/metrics")
        local = TestClient(real_app, client=("127.0.0.1", 40000)).get("/metrics")
    finally:
        real_app.state.settings = development

    assert outside.status_code == 403
    assert outside.json()["type"] == PROBLEMS + "forbidden"
    assert "AKTE_METRICS_TOKEN" in outside.json()["detail"]
    assert local.status_code == 200


def test_metrics_with_a_token_answer_whoever_sends_it(real_app: FastAPI) -> None:
    development = real_app.state.settings
    real_app.state.settings = development.model_copy(
        update={"deployment": "production", "metrics_token": SecretStr("s3cret-monitoring")}
    )
    try:
        monitor = TestClient(real_app, client=("203.0.113.8", 40000))
        without = monitor.get("/metrics")
        wrong = monitor.get("/metrics", headers={"Authorization": "Bearer guess"})
        right = monitor.get("/metrics", headers={"Authorization": "Bearer s3cret-monitoring"})
        health = monitor.get("/healthz")
    finally:
        real_app.state.settings = development

    assert (without.status_code, wrong.status_code, right.status_code) == (401, 401, 200)
    assert "akte_http_requests_total" in right.text
    assert health.status_code == 200  # the other operations routes stay open
