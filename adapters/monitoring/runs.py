"""The last run of each command-line task, where the server can read it.

``akte audit verify``, ``akte deadlines tick`` and ``akte appointments tick`` run as
processes of their own, from a timer. Each records its run in the views store's table
``task_runs`` (``akte_view_task_runs``): one row per task with the last run's
start, end, result and steps, the end of the last successful run, and how many runs
succeeded and failed so far. ``/metrics`` reads the rows (:mod:`adapters.monitoring.metrics`),
so an alert can say that the hash chains were not verified for a day, or that the
appointment tick stopped.

The views store, not the event log: a run is not a fact of any case, a tick every minute
would fill the log, and a verification must not change the log it verifies. The table
is not a read model (nothing rebuilds it); a restore without views starts it empty, and
the first run after it fills it again.

Recording never changes a task's outcome: when the views store cannot be written, the
task says so on stderr and ends with its own exit code.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from projections.errors import ProjectionError
from projections.storage import Column, TableSchema, ViewsStore

logger = logging.getLogger("akte.monitoring")

AUDIT_VERIFY: Final = "audit_verify"
DEADLINES_TICK: Final = "deadlines_tick"
APPOINTMENTS_TICK: Final = "appointments_tick"
TASKS: Final = (AUDIT_VERIFY, DEADLINES_TICK, APPOINTMENTS_TICK)

Result = Literal["ok", "broken", "failed"]
"""``ok``; ``broken``: ``audit verify`` found a broken hash chain; ``failed``: the task
could not do its work (the store unavailable, appointments not configured)."""
RESULTS: Final[tuple[Result, ...]] = ("ok", "broken", "failed")

RUNS: Final = TableSchema(
    "task_runs",
    (
        Column("task", "text", nullable=False),
        Column("last_started_at", "timestamp", nullable=False),
        Column("last_finished_at", "timestamp", nullable=False),
        Column("last_result", "text", nullable=False),
        Column("last_steps", "integer", nullable=False),
        Column("last_success_at", "timestamp", nullable=True),
        Column("runs_ok", "integer", nullable=False),
        Column("runs_failed", "integer", nullable=False),
    ),
    ("task",),
)


@dataclass(frozen=True)
class TaskRun:
    """What the views store knows of a task's runs."""

    task: str
    last_started_at: datetime
    last_finished_at: datetime
    last_result: str
    last_steps: int
    """What the last run did: events verified, consents recorded, tick steps taken."""
    last_success_at: datetime | None
    runs_ok: int
    runs_failed: int


def record_run(
    views: ViewsStore,
    task: str,
    *,
    started_at: datetime,
    finished_at: datetime,
    result: Result,
    steps: int,
) -> None:
    """Write one run of ``task`` (creating the table on first use)."""
    if task not in TASKS or result not in RESULTS:
        msg = f"unknown task {task!r} or result {result!r}"
        raise ValueError(msg)
    writer = views.writer()
    try:
        table = writer.table(RUNS.name)
        if not writer.table_exists(RUNS.name):
            with writer.transaction():
                writer.lock_schema()
                writer.create_table(RUNS)
        encode = writer.encoder("timestamp") or (lambda value: value)
        ok = result == "ok"
        p = writer.param
        columns = ", ".join(RUNS.column_names)
        with writer.transaction():
            writer.execute(
                f"INSERT INTO {table} AS runs ({columns}) "
                f"VALUES ({', '.join([p] * len(RUNS.columns))}) "
                "ON CONFLICT (task) DO UPDATE SET "
                "last_started_at = excluded.last_started_at, "
                "last_finished_at = excluded.last_finished_at, "
                "last_result = excluded.last_result, "
                "last_steps = excluded.last_steps, "
                "last_success_at = COALESCE(excluded.last_success_at, runs.last_success_at), "
                "runs_ok = runs.runs_ok + excluded.runs_ok, "
                "runs_failed = runs.runs_failed + excluded.runs_failed",
                (
                    task,
                    encode(started_at),
                    encode(finished_at),
                    result,
                    steps,
                    encode(finished_at) if ok else None,
                    1 if ok else 0,
                    0 if ok else 1,
                ),
            )
    finally:
        writer.close()


def task_runs(views: ViewsStore) -> dict[str, TaskRun]:
    """Each task that ever recorded a run, by name (none before the first run)."""
    with views.reader() as session:
        if not session.table_exists(RUNS.name):
            return {}
        rows = session.fetch(
            f"SELECT {', '.join(RUNS.column_names)} FROM {session.table(RUNS.name)}"
        )
        decode = session.decoder("timestamp") or (lambda value: value)
    runs = {}
    for task, started, finished, result, steps, success, runs_ok, runs_failed in rows:
        runs[str(task)] = TaskRun(
            task=str(task),
            last_started_at=_utc(decode(started)),
            last_finished_at=_utc(decode(finished)),
            last_result=str(result),
            last_steps=int(steps),
            last_success_at=None if success is None else _utc(decode(success)),
            runs_ok=int(runs_ok),
            runs_failed=int(runs_failed),
        )
    return runs


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def now() -> datetime:
    """The wall clock a run is recorded with (also under ``--now``: it ran now)."""
    return datetime.now(UTC)


def note_run(
    open_views: Callable[[], ViewsStore],
    task: str,
    *,
    started_at: datetime,
    result: Result,
    steps: int,
) -> bool:
    """For the commands: record a run that ends now; on failure one line on stderr
    (the error's type and the store's own first line, no data) and ``False``."""
    views: ViewsStore | None = None
    try:
        views = open_views()
        record_run(
            views, task, started_at=started_at, finished_at=now(), result=result, steps=steps
        )
    except (ProjectionError, OSError) as error:
        print(f"akte: the run was not recorded for monitoring: {error}", file=sys.stderr)
        logger.warning("run of %s not recorded (%s)", task, type(error).__qualname__)
        return False
    finally:
        if views is not None:
            views.close()
    return True
