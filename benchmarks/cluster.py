"""Akte as separate processes on one machine: API servers and projection workers.

Shared by the multi-process test (``tests/system/test_scale_out.py``), the load test
(``benchmarks/loadtest.py``) and the benchmark suite (``benchmarks/suite.py``). Each
process is ``akte serve`` or ``akte projections run`` exactly as deployed, started with
the ``AKTE_*`` settings of a :class:`~adapters.settings.Settings`; its output goes to a
file (never a pipe nobody reads), and every wait has a timeout.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Final

import httpx2 as httpx

from adapters.bootstrap import open_views_store
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from projections.errors import ProjectionError
from projections.positions import read_positions
from projections.read_models import READ_MODELS

ROOT: Final = Path(__file__).resolve().parents[1]
AKTE: Final = "import sys; from adapters.cli.main import main; sys.exit(main())"
"""``akte`` itself, run by this interpreter (no dependence on the entry point's PATH)."""
START_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 15.0


class ProcessFailed(RuntimeError):
    """A child process did not start or ended early; the message quotes its last line."""


def settings_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child process that builds exactly ``settings`` (no passwords
    are set: the test and benchmark server trusts loopback)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKTE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["AKTE_STORE"] = settings.store
    env["AKTE_DATA_DIR"] = str(settings.data_dir)
    env["AKTE_SNAPSHOT_INTERVAL"] = str(settings.snapshot_interval)
    env["AKTE_DEFAULT_OFFICE_ID"] = settings.default_office_id
    env["AKTE_JSON_LOGS"] = "false"
    env["AKTE_LOG_LEVEL"] = "WARNING"
    if settings.store == "postgres":
        env["AKTE_POSTGRES_HOST"] = settings.postgres_host
        env["AKTE_POSTGRES_PORT"] = str(settings.postgres_port)
        env["AKTE_POSTGRES_USER"] = settings.postgres_user
        env["AKTE_POSTGRES_DBNAME"] = settings.postgres_dbname
        env["AKTE_POSTGRES_SCHEMA"] = settings.postgres_schema
        env["AKTE_POSTGRES_POOL_SIZE"] = str(settings.postgres_pool_size)
        env["AKTE_POSTGRES_MAX_OVERFLOW"] = str(settings.postgres_max_overflow)
    env |= {f"AKTE_{name.upper()}": value for name, value in extra.items()}
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no output)"
    return lines[-1][:300] if lines else "(no output)"


@dataclass
class ChildProcess:
    """One ``akte ...`` child; its stdout and stderr go to ``log``."""

    args: Sequence[str]
    env: Mapping[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-c", AKTE, *self.args],
                cwd=ROOT,
                env=dict(self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in a terminal reaches the parent only
            )

    @property
    def pid(self) -> int:
        assert self.popen is not None, "not started"
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check_alive(self) -> None:
        if not self.alive():
            code = self.popen.returncode if self.popen is not None else None
            raise ProcessFailed(f"{self.args[0]} ended (exit {code}): {_last_line(self.log)}")

    def peak_rss_mib(self) -> float:
        """The process's peak resident memory so far (Linux ``VmHWM``), MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as when the machine loses the process."""
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=STOP_TIMEOUT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=timeout)
        return self.popen.returncode


class ApiProcess(ChildProcess):
    """``akte serve`` on 127.0.0.1 and a free port."""

    def __init__(self, settings: Settings, log: Path, **extra: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            ["serve", "--host", "127.0.0.1", "--port", str(self.port)],
            settings_env(settings, **extra),
            log,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until ``/healthz`` answers (the app is built and uvicorn listens)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, trust_env=False, timeout=2) as client:
            while True:
                self.check_alive()
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ProcessFailed(f"akte serve not up within {timeout:.0f} s")
                time.sleep(0.1)


class WorkerProcess(ChildProcess):
    """``akte projections run [NAME ...]``."""

    def __init__(
        self,
        settings: Settings,
        log: Path,
        names: Sequence[str] = (),
        *,
        poll_interval: float | None = None,
    ) -> None:
        poll = [] if poll_interval is None else ["--poll-interval", str(poll_interval)]
        super().__init__(["projections", "run", *poll, *names], settings_env(settings), log)

    def wait_following(self, timeout: float = START_TIMEOUT) -> None:
        """Until the worker says it follows the log (it has opened its stores)."""
        deadline = time.monotonic() + timeout
        while "following" not in self.log.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise ProcessFailed(f"the worker did not start within {timeout:.0f} s")
            time.sleep(0.05)


def wait_views_built(settings: Settings, timeout: float = START_TIMEOUT) -> None:
    """Until every read model has a position (a worker or server has built it), so that
    lists answer rather than 503."""
    deadline = time.monotonic() + timeout
    views = open_views_store(settings)
    try:
        while True:
            try:
                with views.reader() as session:
                    if len(read_positions(session)) >= len(READ_MODELS):
                        return
            except ProjectionError:
                pass  # not built yet
            if time.monotonic() > deadline:
                raise ProcessFailed(f"the read models were not built within {timeout:.0f} s")
            time.sleep(0.1)
    finally:
        views.close()


def stop_all(processes: Sequence[ChildProcess]) -> None:
    """Stop every child, whatever happens to any one of them (for ``finally``)."""
    for process in processes:
        if process.alive() and process.popen is not None:
            process.popen.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.stop()
        except (OSError, subprocess.SubprocessError):
            if process.popen is not None and process.popen.poll() is None:
                process.popen.kill()


def token_issuer(settings: Settings) -> LocalIssuer:
    """The local issuer whose key the API processes of ``settings`` trust."""
    return LocalIssuer.load_or_create(settings.local_issuer_key_file)


def issue_token(
    issuer: LocalIssuer, user_id: str, roles: Sequence[Role], office_id: str, minutes: int = 120
) -> str:
    return issuer.issue(
        user_id=user_id, roles=roles, office_id=office_id, lifetime=timedelta(minutes=minutes)
    )
