"""The framing middleware on its own, with header lists uvicorn's parser (h11) would
merge or refuse before it (another ASGI server might pass them on); the real server is
tried in ``tests/system/test_http_framing.py``."""

from __future__ import annotations

import asyncio
import json

import pytest
from starlette.types import Message, Receive, Scope, Send

from adapters.http.middleware import RequestFramingMiddleware


async def _inner_app(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 204, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def _answer(headers: list[tuple[bytes, bytes]]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "http", "method": "POST", "path": "/cases", "headers": headers}
    asyncio.run(RequestFramingMiddleware(_inner_app)(scope, receive, send))
    return sent


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(b"content-length", b"0"), (b"content-length", b"0")], id="length-twice"),
        pytest.param([(b"content-length", b"0, 0")], id="length-as-a-list"),
        pytest.param([(b"content-length", b"5"), (b"transfer-encoding", b"chunked")], id="both"),
        pytest.param([(b"transfer-encoding", b"gzip")], id="not-chunked"),
    ],
)
def test_ambiguous_framing_is_refused_with_a_problem_and_closes(
    headers: list[tuple[bytes, bytes]],
) -> None:
    start, body = _answer(headers)
    assert start["status"] == 400
    assert (b"connection", b"close") in start["headers"]
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert json.loads(body["body"])["type"].endswith("/ambiguous-framing")


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([(b"content-length", b"12")], id="one-length"),
        pytest.param([(b"transfer-encoding", b"Chunked")], id="chunked"),
        pytest.param([], id="no-body"),
    ],
)
def test_clear_framing_reaches_the_application(headers: list[tuple[bytes, bytes]]) -> None:
    start, _ = _answer(headers)
    assert start["status"] == 204
