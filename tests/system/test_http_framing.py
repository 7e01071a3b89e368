"""Request smuggling, tried against a real ``akte serve`` (uvicorn and h11) over a raw
socket: a request whose body framing is ambiguous is answered 400 and the connection is
closed, so a second request hidden in the same bytes is never answered (RFC 9112 6.1)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HIDDEN_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: akte\r\n\r\n"
START_SECONDS = 60.0
READ_SECONDS = 30.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def served_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKTE_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "AKTE_STORE": "sqlite",
        "AKTE_DATA_DIR": str(tmp_path_factory.mktemp("framing") / "data"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "adapters.cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            assert server.poll() is None, "akte serve ended before it listened"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "akte serve did not listen in time"
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _exchange(port: int, raw: bytes) -> bytes:
    """Everything the server sends back until it closes the connection (at the latest
    after uvicorn's keep-alive timeout of 5 s)."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=READ_SECONDS) as connection:
        connection.sendall(raw)
        while chunk := connection.recv(65536):
            received += chunk
    return received


def _answers(received: bytes) -> list[bytes]:
    """The status lines in ``received``, one per answer (a pipelined answer follows the
    previous body directly)."""
    return re.findall(rb"HTTP/1\.1 \d{3} [A-Za-z ]+", received)


def test_an_unambiguous_request_keeps_the_connection_for_the_next_one(served_port: int) -> None:
    # The control: what the hidden request gets when the first one is well framed.
    first = b"GET /healthz HTTP/1.1\r\nHost: akte\r\n\r\n"
    received = _exchange(served_port, first + HIDDEN_REQUEST)
    assert _answers(received) == [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 OK"]


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(
    served_port: int,
) -> None:
    smuggling = (
        b"POST /cases HTTP/1.1\r\nHost: akte\r\nContent-Type: application/json\r\n"
        b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    received = _exchange(served_port, smuggling + HIDDEN_REQUEST)

    assert _answers(received) == [b"HTTP/1.1 400 Bad Request"]
    head, _, body = received.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    assert b"connection: close" in head.lower()
    assert json.loads(body)["type"].endswith("ambiguous-framing")


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"Content-Length: 0\r\nContent-Length: 5\r\n", id="conflicting-lengths"),
        pytest.param(b"Transfer-Encoding: gzip\r\n", id="coding-other-than-chunked"),
        pytest.param(b"Transfer-Encoding: gzip, chunked\r\n", id="codings-before-chunked"),
        pytest.param(
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
            id="transfer-encoding-twice",
        ),
    ],
)
def test_other_ambiguous_framings_are_refused_and_the_connection_closed(
    served_port: int, framing: bytes
) -> None:
    # h11 refuses these itself, before the application, with a plain-text 400.
    smuggling = (
        b"POST /cases HTTP/1.1\r\nHost: akte\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n0\r\n\r\n"
    )
    received = _exchange(served_port, smuggling + HIDDEN_REQUEST)

    assert _answers(received) == [b"HTTP/1.1 400 Bad Request"]
