"""Worklists, reports and histories read from a PostgreSQL streaming replica.

A primary and a streaming standby of the test's own (``pg_createcluster`` and
``pg_basebackup``, :mod:`tests.support.postgres_standby`); Akte writes to the primary and
has ``AKTE_POSTGRES_REPLICA_HOST`` point at the standby. With the standby's replay paused
(``pg_wal_replay_pause()``), a read without a position is answered by the standby and
misses the writes made since (it is stale: so the standby answered it), while the same
read with the write's ``min_position`` is answered by the primary and shows them
(read-your-writes). ``/readyz`` and ``/metrics`` show the lag; once replay resumes, a
read with a position is answered by the standby; with the standby stopped, every read is
answered by the primary and ``/readyz`` stays ready.

Needs root (the clusters are made with the server's own tools). Marker ``long``:
``bin/test-long -k read_replica``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, TypeVar
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from adapters.bootstrap import build_app, build_read_models, build_service
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from service import AkteService
from tests.conftest import FakeClock, bearer
from tests.http.routes.test_reports import decided_procedures
from tests.http.routes.test_worklists import received_procedure
from tests.support.postgres_cluster import Cluster, cluster_tools_problem
from tests.support.postgres_standby import primary_with_standby, wait_for_replay

pytestmark = pytest.mark.long

YEAR: Final = 2024
BOUND: Final = 30.0
"""A generous bound for what the test waits for (no timing is asserted)."""

T = TypeVar("T")


@dataclass
class Deployment:
    primary: Cluster
    standby: Cluster
    settings: Settings
    service: AkteService
    read_models: ReadModels
    client: TestClient


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    problem = cluster_tools_problem()
    assert problem is None, problem
    data = Path(tmp_path_factory.mktemp("replica"))
    with primary_with_standby("akte_replica", synchronous=False, databases=("akte",)) as (
        primary,
        standby,
    ):
        settings = Settings(
            store="postgres",
            data_dir=data,
            postgres_host=primary.host,
            postgres_port=primary.port,
            postgres_user=primary.user,
            postgres_dbname="akte",
            postgres_replica_host=standby.host,
            postgres_replica_port=standby.port,
            postgres_pool_size=2,
            snapshot_interval=0,
        )
        # The report is of a past year: business times must not lie in the future.
        service = build_service(settings, clock=FakeClock(datetime(YEAR + 1, 1, 15, 9, tzinfo=UTC)))
        read_models = build_read_models(settings, service, follow=True)
        try:
            with TestClient(build_app(settings, service, read_models=read_models)) as client:
                yield Deployment(primary, standby, settings, service, read_models, client)
        finally:
            read_models.close()
            service.close()


def eventually(what: str, probe: Callable[[], T | None]) -> T:
    deadline = time.monotonic() + BOUND
    while True:
        found = probe()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"not within {BOUND} s: {what}"
        time.sleep(0.1)


def replayed(d: Deployment) -> None:
    """The primary's read models have the log's head, and the standby all of it."""
    head = d.service.recorder.max_notification_id() or 0
    assert d.read_models.wait_until(head, BOUND)
    wait_for_replay(d.primary, d.standby)


def metrics(d: Deployment) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = d.client.get("/metrics")
    assert answer.status_code == 200, answer.text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def reads(d: Deployment, server: str) -> float:
    return metrics(d)[("akte_replica_reads_total", (("server", server),))]


def replica_note(d: Deployment) -> str:
    answer = d.client.get("/readyz")
    assert answer.status_code == 200, answer.text
    note: str = answer.json()["checks"]["replica"]
    return note


def events_behind(note: str) -> int | None:
    found = re.search(r"(\d+) events behind", note)
    return None if found is None else int(found.group(1))


def when(value: T, condition: Callable[[T], bool]) -> T | None:
    return value if condition(value) else None


def lagging_note(note: str) -> bool:
    return (events_behind(note) or 0) > 0


def lagging_metrics(found: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> bool:
    return found.get(("akte_replica_lag_events", ()), 0) > 0


@dataclass
class Reads:
    """What a caseworker, an auditor and the head of office see."""

    my_procedures: list[dict[str, Any]]
    history_versions: list[int]
    processed: int


def read_all(d: Deployment, case_id: UUID, position: int | None) -> Reads:
    asked = {} if position is None else {"min_position": position}
    mine = d.client.get(
        "/worklists/my-open-procedures",
        params=asked,
        headers=bearer(d.settings, "sb-02", Role.CASEWORKER),
    )
    assert mine.status_code == 200, mine.text
    history = d.client.get(
        f"/cases/{case_id}/history",
        params=asked,
        headers=bearer(d.settings, "au-01", Role.AUDITOR),
    )
    assert history.status_code == 200, history.text
    report = d.client.get(
        f"/reports/yearly/{YEAR}",
        params=asked,
        headers=bearer(d.settings, "ho-01", Role.HEAD_OF_OFFICE),
    )
    assert report.status_code == 200, report.text
    figures = {figure["key"]: figure for figure in report.json()["figures"]}
    return Reads(
        my_procedures=mine.json()["items"],
        history_versions=[entry["version"] for entry in history.json()["entries"]],
        processed=figures["procedures_processed"]["value"],
    )


def test_reads_come_from_the_replica_and_a_reader_sees_their_own_write(
    deployment: Deployment,
) -> None:
    d = deployment
    office = d.settings.default_office_id
    decided_procedures(d.service, office, 1)
    case_id, version = received_procedure(d.service, office)
    replayed(d)
    before = read_all(d, case_id, None)
    assert before.my_procedures == []
    assert before.processed == 1
    assert before.history_versions == [1, 2]

    with d.standby.connect("akte") as standby:
        standby.execute("SELECT pg_wal_replay_pause()")
    assigned = d.client.post(
        f"/cases/{case_id}/procedures/1/assignment",
        json={"assignee": "sb-02"},
        headers=bearer(d.settings, "tl-01", Role.TEAM_LEAD) | {"If-Match": f'"{version}"'},
    )
    assert assigned.status_code == 200, assigned.text
    decided_procedures(d.service, office, 1)
    position = d.service.recorder.max_notification_id() or 0
    assert position > int(assigned.headers["X-Akte-Position"])
    assert d.read_models.wait_until(position, BOUND)  # the primary's lists have it all

    # Without a position, the paused standby answers: none of the new writes.
    assert read_all(d, case_id, None) == before
    # With the write's position, the primary answers (the standby does not get there).
    fresh = read_all(d, case_id, position)
    assert [item["case_id"] for item in fresh.my_procedures] == [str(case_id)]
    assert fresh.history_versions == [1, 2, 3]
    assert fresh.processed == 2
    mine_only = d.client.get(
        "/worklists/my-open-procedures",
        params={"min_position": assigned.headers["X-Akte-Position"]},
        headers=bearer(d.settings, "sb-02", Role.CASEWORKER),
    )
    assert [item["case_id"] for item in mine_only.json()["items"]] == [str(case_id)]

    # The lag, in /readyz (still ready) and in /metrics.
    note = eventually("the lag in /readyz", lambda: when(replica_note(d), lagging_note))
    assert "standby" in note
    lag = eventually("the lag in /metrics", lambda: when(metrics(d), lagging_metrics))
    assert lag[("akte_replica_up", ())] == 1
    assert lag[("akte_replica_replay_lag_seconds", ())] >= 0
    assert lag[("akte_replica_reads_total", (("server", "replica"),))] >= 6
    assert lag[("akte_replica_reads_total", (("server", "primary"),))] >= 3

    # Replay resumes: the standby catches up, and now answers reads with the position.
    with d.standby.connect("akte") as standby:
        standby.execute("SELECT pg_wal_replay_resume()")
    replayed(d)
    eventually("no lag in /readyz", lambda: True if events_behind(replica_note(d)) == 0 else None)
    from_replica, from_primary = reads(d, "replica"), reads(d, "primary")
    assert read_all(d, case_id, position) == fresh
    assert (reads(d, "replica"), reads(d, "primary")) == (from_replica + 3, from_primary)


def test_with_the_replica_stopped_the_primary_answers_and_the_service_stays_ready(
    deployment: Deployment,
) -> None:
    d = deployment
    office = d.settings.default_office_id
    case_id, _ = received_procedure(d.service, office)
    replayed(d)
    expected = read_all(d, case_id, None)
    from_primary = reads(d, "primary")

    d.standby.stop()
    written = decided_procedures(d.service, office, 1)
    assert d.read_models.wait_until(written, BOUND)

    for position in (None, written):
        now = read_all(d, case_id, position)
        assert now.processed == expected.processed + 1
        assert now.history_versions == expected.history_versions
        assert now.my_procedures == expected.my_procedures
    assert reads(d, "primary") >= from_primary + 6
    note = eventually(
        "the replica named unreachable in /readyz",
        lambda: when(replica_note(d), lambda n: "unreachable" in n),
    )
    assert "primary" in note
    assert metrics(d)[("akte_replica_up", ())] == 0
