"""PostgreSQL really stopped and started under a write load: every answer is the truth.

A PostgreSQL cluster of the test's own (``pg_createcluster``, on a port of its own; the
suite's server at 5432 is left alone) serves a live Akte (uvicorn, read models followed
in the process). Six clients open case files, each write with an ``Idempotency-Key``,
and retry a write whose outcome they do not know (a 503, a broken connection, a
timeout) with the same key until it is acknowledged (``tests/support/write_load.py``).
Meanwhile the cluster is stopped in ``fast`` mode, started, stopped in ``immediate``
mode (a crash) and started again.

Asserted: every acknowledged write is in the log exactly once, and nothing is in the
log that was not acknowledged (the case files in the log are exactly those of the 201
answers; a retry with the same key gets the same case file); every unknown outcome was
resolved by its retry; ``/readyz`` answered 503 during each outage and 200 after it;
``/healthz`` answered 200 while the store was down (the store stays down until a probe
sent during the outage has been answered: a ``/healthz`` that waited for the store fails
the test) and every probe got its 200 (no timeout, no broken connection); the read
models caught up after the outages (the runner backed off and resumed). How fast
``/healthz`` answered is a figure, not asserted (the machine is shared). The figures (outage
to 503, return to 200, first write after the return, slowest ``/healthz``) are printed
and, when ``AKTE_OUTAGE_FIGURES`` names a file, written there as JSON
(``bin/bench-store-outage`` writes ``bench-results/store_outage.json``).

Needs root (the cluster is made with the server's own tools). Marker ``long``:
``bin/test-long -k outage``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest

from adapters.bootstrap import build_app, build_read_models, build_service
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from tests.conftest import bearer
from tests.support.live_server import ServedApp
from tests.support.write_load import (
    CLIENTS,
    GIVE_UP_AFTER,
    OFFICE,
    PROBE_TIMEOUT,
    Observations,
    acknowledged_after,
    first_answer,
    first_readyz,
    healthz_failures,
    join_started,
    since_phase,
    start_watchers,
    tally,
    wait_for_healthz_answer,
    write_client,
)

pytestmark = pytest.mark.long

VERSION: Final = "15"


def _free_port() -> int:
    for port in range(5480, 5500):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.fail("no free port between 5480 and 5499 for the test's own cluster")


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}"


@dataclass
class Cluster:
    name: str
    port: int

    def start(self) -> None:
        _run("pg_ctlcluster", VERSION, self.name, "start")

    def stop(self, mode: str) -> None:
        _run("pg_ctlcluster", VERSION, self.name, "stop", "-m", mode)

    def connect(self, dbname: str = "akte") -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=dbname, autocommit=True
        )


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    for tool in ("pg_createcluster", "pg_ctlcluster", "pg_dropcluster"):
        assert shutil.which(tool), f"{tool} is missing: apt-get install -y postgresql-common"
    assert os.geteuid() == 0, "making a PostgreSQL cluster of its own needs root"
    made = Cluster(f"akte_fault_{os.getpid()}", _free_port())
    _run("pg_createcluster", VERSION, made.name, "--port", str(made.port), "--", "--auth=trust")
    try:
        made.start()
        with made.connect("postgres") as connection:
            connection.execute("CREATE DATABASE akte")
        yield made
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", VERSION, made.name], capture_output=True, check=False
        )


def test_postgres_stopped_and_started_under_load_every_answer_is_the_truth(
    cluster: Cluster, tmp_path: Path
) -> None:
    settings = Settings(
        store="postgres",
        data_dir=tmp_path / "data",
        postgres_host="127.0.0.1",
        postgres_port=cluster.port,
        postgres_dbname="akte",
    )
    service = build_service(settings)
    read_models = build_read_models(settings, service, follow=True)
    served = ServedApp(build_app(settings, service, read_models=read_models), service)
    served.start()
    headers = bearer(settings, "sb-01", Role.CASEWORKER, OFFICE)
    seen = Observations()
    stop_clients = threading.Event()
    stop_watch = threading.Event()
    watchers: list[threading.Thread] = []
    threads = [
        threading.Thread(target=write_client, args=(served.base_url, headers, seen, stop_clients))
        for _ in range(CLIENTS)
    ]
    figures: dict[str, Any] = {"clients": CLIENTS}
    try:
        first_answer(served.base_url)
        watchers += start_watchers(served.base_url, seen, stop_watch)
        for thread in threads:
            thread.start()
        time.sleep(2)
        for mode, down_seconds in (("fast", 5.0), ("immediate", 3.0)):
            seen.phases.append((time.monotonic(), f"stop -m {mode} issued"))
            cluster.stop(mode)
            stopped_at = time.monotonic()  # the server is down once the command returns
            seen.phases.append((stopped_at, f"stopped ({mode})"))
            not_ready_at = first_readyz(seen, 503, stopped_at, within=10)
            time.sleep(down_seconds)
            # The store stays down until /healthz has answered a probe sent meanwhile:
            # that it answers without the store is asserted by the order of events,
            # not by how fast (a bounded wait, generous for a busy machine).
            answered_down = wait_for_healthz_answer(seen, after=stopped_at)
            seen.phases.append((time.monotonic(), "start issued"))
            cluster.start()
            started_at = time.monotonic()  # accepting connections once it returns
            seen.phases.append((started_at, "started"))
            ready_at = first_readyz(seen, 200, started_at, within=20)
            deadline = time.monotonic() + 30
            first_write = None
            while first_write is None and time.monotonic() < deadline:
                time.sleep(0.05)
                # The writes' answers as logged so far: the first 201 after the return.
                first_write = acknowledged_after(seen, started_at)
            assert first_write is not None, "no write acknowledged within 30 s of the return"
            figures[mode] = {
                "seconds_to_readyz_503": round(not_ready_at - stopped_at, 3),
                "seconds_to_readyz_200_after_start": round(ready_at - started_at, 3),
                "seconds_to_first_write_after_start": round(first_write - started_at, 3),
                "healthz_seconds_while_down": round(answered_down.seconds, 3),
            }
            time.sleep(2)
    finally:
        stop_clients.set()
        join_started(threads, GIVE_UP_AFTER + 10)
        stop_watch.set()
        join_started(watchers, PROBE_TIMEOUT + 15)

    try:
        # Every write acknowledged, each under one case file however often it was sent.
        assert seen.unexpected == []
        not_acknowledged = [w.answers for w in seen.writes if w.acknowledged_at is None]
        assert not_acknowledged == []
        with cluster.connect() as connection:
            opened_at = {
                int(position): str(case_id)
                for position, case_id in connection.execute(
                    "SELECT notification_id, originator_id FROM akte_events "
                    "WHERE originator_version = 1 AND topic = 'domain.case_file:CaseFile.Opened'"
                )
            }
            # A write acknowledged by position only: its key was recorded with its events.
            keyed = {
                int(row[0])
                for row in connection.execute("SELECT position FROM akte_idempotency_keys")
            }
        opened = list(opened_at.values())
        by_location = {w.location.rsplit("/", 1)[-1] for w in seen.writes if w.location}
        by_position = [w.position for w in seen.writes if w.location is None]
        assert len(by_location) + len(by_position) == len(seen.writes)
        assert set(by_position) <= keyed
        # In the log once each, and nothing in the log that was answered otherwise: the
        # files named by the answers are there, and the log holds one file per write.
        assert by_location <= set(opened)
        assert len(opened) == len(set(opened)) == len(seen.writes)
        unknown = [w for w in seen.writes if len(w.answers) > 1]
        assert unknown, "the outages answered no write with 503 or broke none: no fault seen"
        # The read models got past the outages (the runner backed off and resumed).
        head = service.recorder.max_notification_id() or 0
        assert read_models.wait_until(head, 60)
        figures |= {
            "writes": len(seen.writes),
            "writes_retried": len(unknown),
            "acknowledged_by_position_only": sum(1 for w in seen.writes if w.location is None),
            "answers_before_acknowledgement": tally(unknown),
            "healthz_max_seconds": round(max(seen.healthz_seconds), 3),
            "write_answer_max_seconds": round(max(seen.write_seconds), 3),
            "write_answers_over_2_seconds": [
                f"{took:.2f} s, {outcome}, sent {since_phase(seen, sent)}"
                for sent, took, outcome in seen.slow_writes
            ],
            "healthz_answers": len(seen.healthz_seconds),
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
        }
        print(json.dumps(figures, indent=2))
        output = os.environ.get("AKTE_OUTAGE_FIGURES")
        if output:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(json.dumps(figures, indent=2) + "\n")
        # Every probe got its 200 within the client's generous timeout: /healthz never
        # blocked on the store, never failed with it.
        assert healthz_failures(seen) == []
    finally:
        served.stop()
        read_models.close()
        service.close()
