"""A NATS server of the test's own (the machine's ``nats-server`` binary, JetStream on, a
free port, a store directory in the test's temporary folder), which the test can stop and
start again on the same port and store, as a broker outage does. The machine's shared
server (tests/support/outbox.py) is never stopped."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

import pytest

from tests.support.outbox import free_port, nats_problem

BINARY: Final = "nats-server"
START_TIMEOUT_SECONDS: Final = 20.0


class OwnNatsServer:
    """One ``nats-server -js`` on 127.0.0.1 that :meth:`stop` and :meth:`start` control."""

    def __init__(self, store_dir: Path, log: Path) -> None:
        self.port = free_port()
        self.store_dir = store_dir
        self.log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which(BINARY)
        if binary is None:
            pytest.fail(f"{BINARY} is not installed: the broker outage test needs its own")
        self.store_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as output:
            self._process = subprocess.Popen(
                [binary, "-a", "127.0.0.1", "-p", str(self.port), "-js",
                 "-sd", str(self.store_dir)],
                stdout=output, stderr=output,
            )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while (problem := nats_problem(self.url)) is not None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"the test's NATS server did not start: {problem}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); its JetStream store stays."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None


@contextmanager
def own_nats_server(folder: Path) -> Iterator[OwnNatsServer]:
    """A started server with its store under ``folder``; stopped afterwards, also on failure."""
    server = OwnNatsServer(folder / "jetstream", folder / "nats-server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
