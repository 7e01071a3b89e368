"""A worker killed with SIGKILL in the middle of a rebuild or a catch-up loses nothing.

A child process rebuilds (or catches up) with small batches, slowed down inside each
batch's transaction so the kill most likely lands in the middle of one; the parent kills
it once it has committed a few batches. A restart then finishes the work, and every row
of every table equals a clean rebuild (and the oracle): no event lost, none counted
twice. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.settings import Settings
from adapters.simulation.case_histories import closed_case, rich_case
from domain.acts import Act
from domain.case_file import CaseFile
from domain.values import Validity
from projections.storage import ViewsStore
from projections.worklists import WORKLISTS
from service import AkteService
from tests.support.projections import (
    EAT_BASIS,
    MASTER_DATA,
    comparable,
    dump,
    engine_for,
    expected_rows,
    stored_positions,
    views_for,
)

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from adapters.bootstrap import build_service
from adapters.views.runner import ApplicationEventLog
from adapters.settings import Settings
from adapters.bootstrap import open_views_store
from projections.engine import ProjectionEngine
from projections.worklists import WORKLISTS

written = ProjectionEngine._write

def slow_write(self, *args):
    result = written(self, *args)
    time.sleep(0.003)  # inside the batch's transaction: the kill lands mid-batch
    return result

ProjectionEngine._write = slow_write
mode, batch_size = sys.argv[1], int(sys.argv[2])
settings = Settings()
service = build_service(settings)
writer = open_views_store(settings).writer()
engine = ProjectionEngine(ApplicationEventLog(service), writer, WORKLISTS, batch_size=batch_size)
engine.positions()
print("ready", flush=True)
engine.rebuild() if mode == "rebuild" else engine.catch_up()
print("done", flush=True)
"""


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def busy_case(n: int, start: datetime) -> CaseFile:
    """A case file that keeps items on every worklist (unlike rich_case, which ends
    transferred)."""
    at = start
    act = Act(by="sb-01", at=at, recorded_at=at)
    case = CaseFile.open(
        case_id=uuid4(), office_id="abh-musterstadt", reference=f"2024-C{n:06d}",
        master_data=MASTER_DATA, act=act,
    )  # fmt: skip
    for k in range(3):
        p = case.receive_procedure(channel="mail", topic="blue_card", legal_basis=None, act=act)
        if (n + k) % 2:
            case.assign_procedure(procedure_number=p, assignee=f"sb-0{k + 1}", act=act)
        case.request_documents(
            procedure_number=p, what=["Pass"], due_on=at.date() + timedelta(days=5 + k), act=act
        )
        if k == 0:
            case.decide_procedure(
                procedure_number=p, outcome="granted", legal_basis=None, reason=None, act=act
            )
    eat = case.issue_residence_document(
        kind="eat", legal_basis=EAT_BASIS, validity=Validity(date(2024, 1, 1), date(2025, 1, 1)),
        document_number=f"Y{n:08d}", procedure_number=None, act=act,
    )  # fmt: skip
    case.order_eat_card(residence_document_number=eat, act=act)
    if n % 3 == 0:
        case.record_eat_card_arrived(residence_document_number=eat, act=act)
    case.attach_document(
        kind="passport_copy", sha256=f"{n:064x}", size_bytes=10, media_type="application/pdf",
        page_count=1, source="contact_form", act=act,
    )  # fmt: skip
    return case


def write_history(service: AkteService, cases: int) -> None:
    """Case files with every kind of event, saved in large transactions."""
    start = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    batch: list[CaseFile] = []
    for n in range(cases):
        if n % 4 == 0:
            batch.append(rich_case())
        elif n % 9 == 0:
            batch.append(closed_case())
        else:
            batch.append(busy_case(n, start))
        if len(batch) == 25:
            service.save(*batch)
            batch = []
    if batch:
        service.save(*batch)


def child_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKTE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["AKTE_STORE"] = settings.store
    env["AKTE_SNAPSHOT_INTERVAL"] = "0"
    if settings.store == "sqlite":
        env["AKTE_DATA_DIR"] = str(settings.data_dir)
    else:
        env["AKTE_POSTGRES_HOST"] = settings.postgres_host
        env["AKTE_POSTGRES_PORT"] = str(settings.postgres_port)
        env["AKTE_POSTGRES_USER"] = settings.postgres_user
        env["AKTE_POSTGRES_DBNAME"] = settings.postgres_dbname
        env["AKTE_POSTGRES_SCHEMA"] = settings.postgres_schema
    return env


def kill_midway(settings: Settings, views: ViewsStore, mode: str, start: int, head: int) -> int:
    """Run the child, SIGKILL it after it has committed some batches; its position."""
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, "7"],
        cwd=ROOT,
        env=child_env(settings),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        # Once some batches are committed, wait a random while more, then kill.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            positions = stored_positions(views)
            if positions and start + 100 < min(positions.values()):
                break
            time.sleep(0.01)
        time.sleep(random.uniform(0.0, 0.3))
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    positions = stored_positions(views)
    assert len(set(positions.values())) == 1, "all read models move batch by batch together"
    position = min(positions.values())
    assert start < position < head, "killed in the middle, not before or after"
    return position


@pytest.mark.parametrize("mode", ["rebuild", "catch-up"])
def test_a_worker_killed_midway_loses_and_duplicates_nothing(
    service: AkteService, views: ViewsStore, settings: Settings, mode: str
) -> None:
    write_history(service, 60)
    start = 0
    if mode == "catch-up":
        with engine_for(service, views) as engine:
            engine.catch_up()
        start = service.recorder.max_notification_id() or 0
        write_history(service, 60)
    head = service.recorder.max_notification_id() or 0

    kill_midway(settings, views, mode, start, head)

    with engine_for(service, views, batch_size=500) as restarted:
        restarted.catch_up()
        assert set(restarted.positions().values()) == {head}
        finished = restarted.dump()
        restarted.rebuild()
        assert restarted.dump() == finished
    states = [service.get_case(case_id) for case_id in _case_ids(finished)]
    assert comparable(finished) == expected_rows(states)
    assert dump(service, views) == finished


def _case_ids(rows: dict[str, list[tuple[object, ...]]]) -> list[UUID]:
    registry = WORKLISTS[0].registry.name
    return [UUID(str(row[0])) for row in rows[registry]]
