"""The outbox tests' broker: the machine's NATS server with JetStream, a stream of its own
per test (unique name and subject prefix, deleted afterwards), and a reader of what the
stream holds, byte for byte.

Without a reachable NATS server with JetStream the tests are skipped, saying so; under
``CI=true`` that is a failure instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

import nats
import nats.js.errors
import pytest

NATS_URL: Final = os.environ.get("AKTE_TEST_NATS_URL", "nats://127.0.0.1:4222")


def nats_problem(url: str = NATS_URL) -> str | None:
    """Why the tests cannot use the server at ``url`` (``None``: they can)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 4222
    try:
        with socket.create_connection((host, port), timeout=3) as connection:
            greeting = connection.recv(4096)
    except OSError as error:
        return f"NATS at {host}:{port} unreachable: {error}"
    if b'"jetstream":true' not in greeting:
        return f"NATS at {host}:{port} runs without JetStream (start it with -js)"
    return None


def require_nats() -> str:
    """The server's URL, or skip (fail under ``CI=true``) saying why there is none."""
    problem = nats_problem()
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but the outbox tests cannot run: {problem}")
        pytest.skip(problem)
    return NATS_URL


@dataclass(frozen=True)
class Broker:
    url: str
    stream: str
    prefix: str


@dataclass(frozen=True)
class RawMessage:
    subject: str
    message_id: str
    data: bytes
    raw_headers: bytes


@contextmanager
def own_stream() -> Iterator[Broker]:
    """A stream name and subject prefix no other test uses; the stream is deleted after."""
    url = require_nats()
    tag = uuid.uuid4().hex[:12]
    broker = Broker(url=url, stream=f"AKTE_TEST_{tag}", prefix=f"aktetest{tag}")
    try:
        yield broker
    finally:
        asyncio.run(_delete_stream(broker))


async def _delete_stream(broker: Broker) -> None:
    client = await nats.connect(broker.url)
    try:
        # NotFoundError: the test never created it.
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(broker.stream)
    finally:
        await client.close()


def stored_messages(broker: Broker) -> list[RawMessage]:
    """Every message of the stream, in the stream's order (empty: no stream)."""
    return asyncio.run(_stored_messages(broker))


async def _stored_messages(broker: Broker) -> list[RawMessage]:
    client = await nats.connect(broker.url)
    try:
        stream = client.jetstream()
        try:
            info = await stream.stream_info(broker.stream)
        except nats.js.errors.NotFoundError:
            return []
        messages = []
        for sequence in range(info.state.first_seq, info.state.last_seq + 1):
            stored = await stream.get_msg(broker.stream, sequence)
            headers = stored.headers or {}
            messages.append(
                RawMessage(
                    subject=stored.subject or "",
                    message_id=headers.get("Nats-Msg-Id", ""),
                    data=stored.data or b"",
                    raw_headers=repr(sorted(headers.items())).encode(),
                )
            )
        return messages
    finally:
        await client.close()


def free_port() -> int:
    """A port nothing listens on now (the broker that is away)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class BrokerProxy:
    """Forwards a local port to the broker, once :meth:`start` is awaited: before that,
    the port refuses connections, as a broker that is down does."""

    def __init__(self, port: int, target: str) -> None:
        parts = urlsplit(target)
        self.port = port
        self._target = (parts.hostname or "127.0.0.1", parts.port or 4222)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._forward, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while chunk := await source.read(65536):
                    sink.write(chunk)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
