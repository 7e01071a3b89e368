"""A PostgreSQL cluster of the test's own: made with Debian's ``pg_createcluster`` on a free
port (trust authentication on 127.0.0.1, the server's own tools, nothing home-made),
started, and dropped with everything in it when the test ends.

For what needs a second server (offices on several servers, replicas, failover), never the
shared server at 127.0.0.1:5432, which other tests use at the same time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

import psycopg

VERSION: Final = "15"


@dataclass(frozen=True)
class Cluster:
    name: str
    port: int
    host: str = "127.0.0.1"
    user: str = "postgres"

    def connect(self, dbname: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname=dbname, autocommit=True
        )

    def start(self) -> None:
        _run("pg_ctlcluster", VERSION, self.name, "start")

    def stop(self, mode: str = "fast") -> None:
        _run("pg_ctlcluster", VERSION, self.name, "stop", "-m", mode)


def cluster_tools_problem() -> str | None:
    """Why no cluster can be made here (None: it can)."""
    if shutil.which("pg_createcluster") is None:
        return "Debian's pg_createcluster (postgresql-common) is not installed"
    if os.geteuid() != 0:
        return "pg_createcluster needs root"
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)


@contextmanager
def temporary_cluster(
    prefix: str = "akte_test", *, databases: tuple[str, ...] = ()
) -> Iterator[Cluster]:
    """A running cluster on a free port with ``databases`` created; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    port = _free_port()
    _run("pg_createcluster", VERSION, name, "--port", str(port), "--", "--auth=trust")
    cluster = Cluster(name, port)
    try:
        cluster.start()
        with cluster.connect() as conn:
            for database in databases:
                conn.execute(f'CREATE DATABASE "{database}"')
        yield cluster
    finally:
        subprocess.run(
            ["pg_dropcluster", VERSION, name, "--stop"],
            check=False,
            capture_output=True,
            timeout=120,
        )
