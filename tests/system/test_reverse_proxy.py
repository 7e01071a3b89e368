"""Akte behind the reference nginx configuration (``deploy/nginx/akte.conf``).

A real nginx (Debian's package) is started on a free port in front of a live Akte, with
the repository's configuration, its timeouts shortened so the test need not wait:
a client that trickles its request head or body, or idles on a kept-alive connection,
is cut off; ambiguous framing is refused and the connection closed; a burst at a public
door is limited; requests pass through to Akte. Without nginx the test is skipped,
saying so; under ``CI=true`` that is a failure (``bin/test`` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.bootstrap import build_app, build_service
from adapters.settings import Settings
from tests.support.live_server import ServedApp

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "nginx" / "akte.conf"
# Shortened for the test; the shipped values are in the file.
TIMEOUTS = {
    "client_header_timeout": "1s",
    "client_body_timeout": "1s",
    "keepalive_timeout": "1s",
}
# Generous: the test waits for nginx to act, it does not time it.
WAIT_SECONDS = 15.0


def _nginx() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    reason = (
        "nginx is not installed, so the reverse proxy is not checked: "
        "apt-get install -y nginx-light"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def site_config(upstream_port: int, listen_port: int) -> str:
    text = CONFIG.read_text(encoding="utf-8")
    text = text.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};")
    text = text.replace("listen 8080;", f"listen 127.0.0.1:{listen_port};")
    for directive, value in TIMEOUTS.items():
        text, found = re.subn(rf"{directive} \S+;", f"{directive} {value};", text)
        assert found == 1, directive
    return text


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[int]:
    binary = _nginx()
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    service = build_service(settings)
    served = ServedApp(build_app(settings, service), service)
    served.start()
    port = _free_port()
    upstream = int(served.base_url.rsplit(":", 1)[1])
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    (prefix / "akte.conf").write_text(site_config(upstream, port), encoding="utf-8")
    (prefix / "nginx.conf").write_text(
        f"daemon off;\nmaster_process off;\npid {prefix}/nginx.pid;\n"
        f"error_log {prefix}/error.log info;\n"
        "events { worker_connections 256; }\n"
        "http {\n  access_log off;\n"
        + "".join(
            f"  {kind}_temp_path {prefix}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"  include {prefix}/akte.conf;\n}}\n",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [
            binary,
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "error.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "nginx did not start listening"
                time.sleep(0.05)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=WAIT_SECONDS)
        served.stop()
        service.close()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=WAIT_SECONDS)


def _read_all(connection: socket.socket) -> bytes:
    """Everything until the server closes the connection (or the generous wait ends)."""
    received = b""
    while True:
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            pytest.fail(f"the connection was still open after {WAIT_SECONDS} s: {received[:200]!r}")
        if not chunk:
            return received
        received += chunk


def test_requests_pass_through_to_akte(proxy: int) -> None:
    with _connect(proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: akte\r\nConnection: close\r\n\r\n")
        answer = _read_all(connection)

    assert answer.startswith(b"HTTP/1.1 200")
    assert b"x-request-id" in answer.lower()  # Akte's own middleware answered


def test_a_trickled_request_head_is_cut_off(proxy: int) -> None:
    with _connect(proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: akte\r\n")  # ... and nothing more

        answer = _read_all(connection)

    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_a_trickled_body_is_cut_off(proxy: int) -> None:
    with _connect(proxy) as connection:
        connection.sendall(
            b"POST /contact-form HTTP/1.1\r\nHost: akte\r\nContent-Type: multipart/form-data; "
            b"boundary=x\r\nContent-Length: 1000\r\n\r\n--x\r\n"
        )

        answer = _read_all(connection)

    assert answer == b"" or answer.startswith((b"HTTP/1.1 408", b"HTTP/1.1 400")), answer[:200]


def test_an_idle_kept_alive_connection_is_closed(proxy: int) -> None:
    with _connect(proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: akte\r\n\r\n")

        answer = _read_all(connection)  # returns only once nginx closes the idle connection

    assert answer.startswith(b"HTTP/1.1 200")
    assert answer.count(b"HTTP/1.1 ") == 1


def test_ambiguous_framing_is_refused_and_the_connection_closed(proxy: int) -> None:
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: akte\r\n\r\n"
    body = b"0\r\n\r\n" + smuggled
    with _connect(proxy) as connection:
        connection.sendall(
            b"POST /contact-form HTTP/1.1\r\nHost: akte\r\n"
            + f"Content-Length: {len(body)}\r\n".encode()
            + b"Transfer-Encoding: chunked\r\n\r\n"
            + body
        )

        answer = _read_all(connection)

    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.count(b"HTTP/1.1 ") == 1  # the smuggled request was never answered


def test_a_burst_at_a_public_door_is_limited_by_the_proxy(proxy: int) -> None:
    statuses = []
    for _ in range(30):
        with _connect(proxy) as connection:
            connection.sendall(
                b"POST /appointments/challenges HTTP/1.1\r\nHost: akte\r\n"
                b"Content-Length: 0\r\nConnection: close\r\n\r\n"
            )
            statuses.append(int(_read_all(connection)[9:12]))

    assert 429 in statuses
    assert statuses[0] != 429
    # Other routes are not limited by the doors' zone.
    with _connect(proxy) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: akte\r\nConnection: close\r\n\r\n")
        assert _read_all(connection).startswith(b"HTTP/1.1 200")
