"""The primary dies under a write load and its synchronous standby is promoted: Akte
follows it without a restart, and every answer it gave is the truth.

Two PostgreSQL clusters of the test's own (``tests/support/postgres_standby.py``: a
primary and a synchronous streaming standby made with ``pg_basebackup``; the suite's
server at 5432 is left alone). A live Akte (uvicorn, read models followed in the
process) is configured with both, in libpq's multi-host form
(``AKTE_POSTGRES_HOST=127.0.0.1,127.0.0.1``, ``AKTE_POSTGRES_PORT=<standby>,<primary>``,
hence ``target_session_attrs=read-write``; the standby is named first, so Akte must pass
it over while it is one). Six clients open case files, each write with
an ``Idempotency-Key``, and retry a write whose outcome they do not know with the same key
until it is acknowledged (``tests/support/write_load.py``, as in
``tests/system/test_store_outage.py``). Meanwhile
the primary is killed with SIGKILL (its postmaster and every backend: a lost machine),
and the standby is promoted.

Asserted: every acknowledged write is in the new primary's log exactly once, and nothing
is in it that was not acknowledged (the case files in the log are exactly those of the
answers; a retry with the same key gets the same case file); every unknown outcome was
resolved by its retry; ``/readyz`` answered 503 while there was no primary and 200 after
the promotion; ``/healthz`` answered 200 while there was no primary (the promotion waits
until a probe sent after the kill has been answered) and every probe got its 200; writes
resumed in the same process (no restart); the read models caught
up with the new primary's log. The figures (kill to ``/readyz`` 503, promotion to
``/readyz`` 200 and to the first acknowledged write) are printed and, when
``AKTE_FAILOVER_FIGURES`` names a file, written there as JSON (``bin/bench-failover``);
nothing is asserted about them.

Needs root (the clusters are made with the server's own tools). Marker ``long``:
``bin/test-long -k failover``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Final

import pytest

from adapters.bootstrap import build_app, build_read_models, build_service
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from tests.conftest import bearer
from tests.support.live_server import ServedApp
from tests.support.postgres_cluster import cluster_tools_problem
from tests.support.postgres_standby import kill_primary, primary_with_standby, promote
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
    start_watchers,
    tally,
    wait_for_healthz_answer,
    write_client,
)

pytestmark = pytest.mark.long

DEAD_SECONDS: Final = 2.0
"""How long there is no primary before the standby is promoted (a watchdog's delay)."""


def test_primary_killed_standby_promoted_under_load_every_answer_is_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = cluster_tools_problem()
    assert problem is None, problem
    with primary_with_standby("akte_failover", synchronous=True, databases=("akte",)) as (
        primary,
        standby,
    ):
        # As an operator configures it. The standby comes first: the order must not
        # matter, a standby (read-only) is passed over until it is promoted.
        monkeypatch.setenv("AKTE_POSTGRES_HOST", f"{standby.host},{primary.host}")
        monkeypatch.setenv("AKTE_POSTGRES_PORT", f"{standby.port},{primary.port}")
        settings = Settings(store="postgres", data_dir=tmp_path / "data", postgres_dbname="akte")
        assert settings.postgres_failover
        service = build_service(settings)
        read_models = build_read_models(settings, service, follow=True)
        served = ServedApp(build_app(settings, service, read_models=read_models), service)
        served.start()
        headers = bearer(settings, "sb-01", Role.CASEWORKER, OFFICE)
        seen = Observations()
        stop_clients = threading.Event()
        stop_watch = threading.Event()
        watchers: list[threading.Thread] = []
        clients = [
            threading.Thread(
                target=write_client, args=(served.base_url, headers, seen, stop_clients)
            )
            for _ in range(CLIENTS)
        ]
        figures: dict[str, Any] = {"clients": CLIENTS, "dead_seconds": DEAD_SECONDS}
        try:
            first_answer(served.base_url)
            watchers += start_watchers(served.base_url, seen, stop_watch)
            for thread in clients:
                thread.start()
            time.sleep(3)
            written_before = service.recorder.max_notification_id() or 0
            seen.phases.append((time.monotonic(), "primary killed"))
            kill_primary(primary)
            killed_at = time.monotonic()
            not_ready_at = first_readyz(seen, 503, killed_at, within=30)
            time.sleep(DEAD_SECONDS)
            # No promotion before /healthz has answered a probe sent after the kill: it
            # must answer without a primary (asserted by order, not by speed).
            wait_for_healthz_answer(seen, after=killed_at)
            seen.phases.append((time.monotonic(), "promote issued"))
            promote(standby)
            promoted_at = time.monotonic()  # accepts writes once promote() returns
            seen.phases.append((promoted_at, "promoted"))
            ready_at = first_readyz(seen, 200, promoted_at, within=60)
            first_write = None
            deadline = time.monotonic() + 60
            while first_write is None and time.monotonic() < deadline:
                time.sleep(0.05)
                first_write = acknowledged_after(seen, promoted_at)
            assert first_write is not None, "no write acknowledged within 60 s of the promotion"
            # Writes go on against the new primary for a while.
            time.sleep(3)
            figures |= {
                "events_before_the_kill": written_before,
                "seconds_kill_to_readyz_503": round(not_ready_at - killed_at, 3),
                "seconds_promotion_to_readyz_200": round(ready_at - promoted_at, 3),
                "seconds_promotion_to_first_acknowledged_write": round(
                    first_write - promoted_at, 3
                ),
                "seconds_kill_to_first_acknowledged_write": round(first_write - killed_at, 3),
            }
        finally:
            stop_clients.set()
            join_started(clients, GIVE_UP_AFTER + 10)
            stop_watch.set()
            join_started(watchers, PROBE_TIMEOUT + 15)

        try:
            assert seen.unexpected == []
            # Every write was acknowledged in the end (by its first answer or a retry).
            assert [w.answers for w in seen.writes if w.acknowledged_at is None] == []
            with standby.connect("akte") as connection:
                opened = [
                    str(row[0])
                    for row in connection.execute(
                        "SELECT originator_id FROM akte_events WHERE originator_version = 1 "
                        "AND topic = 'domain.case_file:CaseFile.Opened'"
                    )
                ]
                keyed = {
                    int(str(row[0]))
                    for row in connection.execute("SELECT position FROM akte_idempotency_keys")
                }
                head = connection.execute("SELECT max(notification_id) FROM akte_events")
                new_head = int(str((head.fetchone() or (0,))[0] or 0))
            by_location = {w.location.rsplit("/", 1)[-1] for w in seen.writes if w.location}
            by_position = [w.position for w in seen.writes if w.location is None]
            assert len(by_location) + len(by_position) == len(seen.writes)
            assert set(by_position) <= keyed
            # Acknowledged before the kill, during or after the promotion: on the new
            # primary, once each; and it holds one case file per write, nothing more.
            assert by_location <= set(opened)
            assert len(opened) == len(set(opened)) == len(seen.writes)
            before = [w for w in seen.writes if w.acknowledged_at and w.acknowledged_at < killed_at]
            after = [
                w for w in seen.writes if w.acknowledged_at and w.acknowledged_at > promoted_at
            ]
            assert before, "no write was acknowledged by the old primary"
            assert after, "no write was acknowledged by the new primary"
            unknown = [w for w in seen.writes if len(w.answers) > 1]
            assert unknown, "the failover answered no write with 503 or broke none: no fault seen"
            # The same process writes to the new primary: its log grew past the old head.
            assert (service.recorder.max_notification_id() or 0) == new_head > written_before
            # The read models followed the log onto the new primary.
            assert read_models.wait_until(new_head, 60)
            figures |= {
                "writes": len(seen.writes),
                "writes_retried": len(unknown),
                "acknowledged_by_position_only": len(by_position),
                "answers_before_acknowledgement": tally(unknown),
                "healthz_max_seconds": round(max(seen.healthz_seconds), 3),
                "write_answer_max_seconds": round(max(seen.write_seconds), 3),
                "load_average": Path("/proc/loadavg").read_text().split()[:3],
            }
            print(json.dumps(figures, indent=2))
            output = os.environ.get("AKTE_FAILOVER_FIGURES")
            if output:
                Path(output).parent.mkdir(parents=True, exist_ok=True)
                Path(output).write_text(json.dumps(figures, indent=2) + "\n")
            # Every probe got its 200 within the client's generous timeout.
            assert healthz_failures(seen) == []
        finally:
            served.stop()
            read_models.close()
            service.close()
