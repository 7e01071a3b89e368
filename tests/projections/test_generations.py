"""Rebuilding beside the generation in service: readers never see an empty or partial
worklist, an interrupted rebuild (an error, ``kill -9``) leaves the one in service, and
a newer version switched in is left alone by an older worker."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from adapters.settings import Settings
from adapters.views.runner import (
    ApplicationEventLog,
    ProjectionRunner,
    _settings_message,
)
from domain.case_file import CaseFile
from projections.errors import ProjectionBusy
from projections.generations import (
    build_table_name,
    lock_rebuilds,
    read_generations,
    rebuild_beside,
    rebuild_locks,
    unlock_rebuilds,
)
from projections.positions import read_positions
from projections.projection import Projection
from projections.storage import ViewsStore
from projections.worklists import WORKLISTS, unassigned_procedures
from projections.worklists import open_procedures_by_assignee as open_procedures_by_assignee_model
from projections.worklists.open_procedures_by_assignee import open_procedures_by_assignee
from service import AkteService
from tests.support.projections import TOPIC, CaseDriver, catch_up, dump, rebuilt_dump, views_for

TODAY = date(2024, 3, 4)
FILES = 30
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def history(service: AkteService) -> set[tuple[str, int]]:
    """Case files with one procedure assigned to sb-02 and one unassigned; the worklist
    "open procedures of sb-02" as it must read."""
    expected = set()
    for _ in range(FILES):
        case = CaseDriver.open(service)
        number: int = case("receive_procedure", channel="mail", topic=TOPIC)
        case("assign_procedure", procedure_number=number, assignee="sb-02")
        case("receive_procedure", channel="mail", topic=TOPIC)
        expected.add((case.id, number))
    return expected


def worklist(views: ViewsStore) -> set[tuple[str, int]]:
    page = open_procedures_by_assignee(views, assignee="sb-02", today=TODAY, limit=500)
    return {(item.case_id, item.procedure_number) for item in page.items}


class Reader:
    """Reads the worklist over and over in a thread; keeps every answer that differs from
    the expected one (empty, partial, an error)."""

    def __init__(self, views: ViewsStore, expected: set[tuple[str, int]]) -> None:
        self.views = views
        self.expected = expected
        self.reads = 0
        self.wrong: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                found = worklist(self.views)
            except Exception as error:
                self.wrong.append(f"{type(error).__name__}: {error}")
                continue
            self.reads += 1
            if found != self.expected:
                self.wrong.append(f"{len(found)} of {len(self.expected)} items")

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def rebuild(
    service: AkteService,
    views: ViewsStore,
    projections: tuple[Projection, ...] = WORKLISTS,
    **options: Any,
) -> int:
    writer = views.writer()
    try:
        # A killed rebuild's locks go once the server has noticed: a moment, under load.
        with rebuild_locks(writer, [p.name for p in projections], 10.0):
            return rebuild_beside(ApplicationEventLog(service), writer, projections, **options)
    finally:
        writer.close()


def leftovers(views: ViewsStore, generation: int) -> list[str]:
    """Tables of generation ``generation`` still under their build names."""
    writer = views.writer()
    try:
        return [
            schema.name
            for projection in WORKLISTS
            for schema in projection.schemas
            if writer.table_exists(build_table_name(schema.name, generation))
        ]
    finally:
        writer.close()


def generations(views: ViewsStore) -> dict[str, tuple[int, int | None]]:
    with views.reader() as session:
        return {g.name: (g.serving, g.building) for g in read_generations(session).values()}


def test_readers_never_see_an_empty_or_partial_worklist_while_it_is_rebuilt_beside(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    head = service.recorder.max_notification_id() or 0
    catch_up(service, views)
    assert worklist(views) == expected
    before = dump(service, views)
    switched = threading.Event()
    with Reader(views, expected) as reader:
        # Small batches: the rebuild takes many transactions, readers read in between.
        done = rebuild(service, views, batch_size=3, before_switch=switched.set)
        reads_during = reader.reads
        time.sleep(0.1)
    assert switched.is_set()
    assert done >= head
    assert reads_during > 0, "the reader read while the rebuild ran"
    assert reader.wrong == []
    assert dump(service, views) == before == rebuilt_dump(service, views)
    assert generations(views) == {p.name: (1, None) for p in WORKLISTS}
    assert leftovers(views, 1) == []
    with views.reader() as session:
        assert {p.name: p.position for p in read_positions(session)} == {
            p.name: head for p in WORKLISTS
        }
    # The next rebuild is generation 2, and the worklist still reads the same.
    rebuild(service, views)
    assert generations(views) == {p.name: (2, None) for p in WORKLISTS}
    assert worklist(views) == expected


def test_a_runner_keeps_following_during_the_rebuild_and_after_the_switch(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, poll_interval=0.05)
    runner.start()
    try:
        assert runner.wait_until(service.recorder.max_notification_id() or 0, timeout=10)
        during = CaseDriver.open(service)

        def new_work() -> None:
            number: int = during("receive_procedure", channel="mail", topic=TOPIC)
            during("assign_procedure", procedure_number=number, assignee="sb-02")
            expected.add((during.id, number))
            assert runner.wait_until(during.position, timeout=10)

        # New work while the new generation is built: the one in service shows it.
        rebuild(service, views, batch_size=5, before_switch=new_work)
        assert worklist(views) == expected
        after = CaseDriver.open(service)
        number: int = after("receive_procedure", channel="mail", topic=TOPIC)
        after("assign_procedure", procedure_number=number, assignee="sb-02")
        expected.add((after.id, number))
        # The runner found its positions moved by the switch and follows the new tables.
        assert runner.wait_until(after.position, timeout=10)
        assert worklist(views) == expected
        assert runner.stats.errors == 0
    finally:
        assert runner.stop()
    assert dump(service, views) == rebuilt_dump(service, views)


def test_an_interrupted_rebuild_leaves_the_one_in_service_and_its_leftovers_go_next_time(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    before = dump(service, views)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebuild(service, views, batch_size=7, before_switch=interrupt)
    assert worklist(views) == expected
    assert dump(service, views) == before
    assert leftovers(views, 1), "the unfinished generation is still there"
    assert generations(views) == {p.name: (0, 1) for p in WORKLISTS}
    rebuild(service, views)
    assert leftovers(views, 1) == []
    assert leftovers(views, 2) == []
    assert generations(views) == {p.name: (2, None) for p in WORKLISTS}
    assert dump(service, views) == before


_CHILD = """
import sys, time
from adapters.bootstrap import build_service, open_views_store
from adapters.views.runner import ApplicationEventLog, _settings_from
from projections.generations import lock_rebuilds, rebuild_beside
from projections.worklists import WORKLISTS

settings = _settings_from(sys.stdin.buffer.readline())
stage = sys.argv[1]
service = build_service(settings)
views = open_views_store(settings)
writer = views.writer()
lock_rebuilds(writer, [p.name for p in WORKLISTS], 10.0)

def say(what):
    print(what, flush=True)
    time.sleep(120)

rebuild_beside(
    ApplicationEventLog(service), writer, WORKLISTS, batch_size=5,
    progress=(lambda p: p.done >= 40 and say("building")) if stage == "building" else None,
    before_switch=(lambda: say("switching")) if stage == "switching" else None,
)
"""


def _killed_at(settings: Settings, stage: str) -> None:
    """Run a rebuild in a process of its own and ``kill -9`` it at ``stage``."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, stage],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert child.stdin is not None
        assert child.stdout is not None
        child.stdin.write(_settings_message(settings))
        child.stdin.flush()
        assert child.stdout.readline().strip() == stage.encode()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        for stream in (child.stdin, child.stdout):
            if stream is not None:
                stream.close()


@pytest.mark.long  # child processes killed at two points: 25-30 s each
def test_a_rebuild_killed_at_any_point_leaves_the_one_in_service(
    settings: Settings, service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    before = dump(service, views)
    with Reader(views, expected) as reader:
        _killed_at(settings, "building")
        assert worklist(views) == expected
        assert generations(views) == {p.name: (0, 1) for p in WORKLISTS}
        _killed_at(settings, "switching")
        assert generations(views) == {p.name: (0, 2) for p in WORKLISTS}
        assert leftovers(views, 2), "the killed rebuild left its tables"
    assert reader.reads > 0
    assert reader.wrong == []
    assert dump(service, views) == before
    # The killed rebuild's lock went with its process; the next one cleans up.
    rebuild(service, views)
    assert [leftovers(views, n) for n in (1, 2, 3)] == [[], [], []]
    assert generations(views) == {p.name: (3, None) for p in WORKLISTS}
    assert dump(service, views) == before


@pytest.mark.long  # two rebuilds in child processes, one waiting: 10-13 s
def test_a_second_rebuild_of_the_same_read_model_waits_for_the_first(
    service: AkteService, views: ViewsStore
) -> None:
    history(service)
    first = views.writer()
    try:
        lock_rebuilds(first, [unassigned_procedures.NAME], 1.0)
        with pytest.raises(ProjectionBusy, match="another worker rebuilds unassigned_procedures"):
            rebuild(service, views, (unassigned_procedures.PROJECTION,))
    finally:
        first.close()
    rebuild(service, views, (unassigned_procedures.PROJECTION,))


def test_a_new_version_deploys_beside_and_the_old_worker_leaves_it_alone(
    service: AkteService, views: ViewsStore
) -> None:
    history(service)
    old = unassigned_procedures.PROJECTION
    new = dataclasses.replace(old, version=old.version + 1)
    runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, poll_interval=0.05)
    runner.start()
    try:
        assert runner.wait_until(service.recorder.max_notification_id() or 0, timeout=10)
        assert old.name in runner.held
        before = dump(service, views, [old])
        rebuild(service, views, (new,))
        # Something new: the old worker's next batch finds the newer version serving.
        case = CaseDriver.open(service)
        case("receive_procedure", channel="mail", topic=TOPIC)
        deadline = time.monotonic() + 10
        while old.name in runner.held and time.monotonic() < deadline:
            time.sleep(0.02)
        assert old.name not in runner.held
        assert runner.wait_until(case.position, timeout=10, names=[WORKLISTS[0].name])
        with views.reader() as session:
            stored = {p.name: p for p in read_positions(session)}
        assert stored[old.name].version == new.version
        # Left as the new version built it: not reset by the old code.
        assert dump(service, views, [new]) == before
        # An older release may not switch back.
        with pytest.raises(Exception, match="a newer version of unassigned_procedures serves"):
            rebuild(service, views, (old,))
        assert worklist(views)
    finally:
        assert runner.stop()


def test_a_runner_of_a_new_release_builds_the_new_version_beside_the_old_one(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    old = open_procedures_by_assignee_model.PROJECTION
    new = dataclasses.replace(old, version=old.version + 1)
    release = tuple(new if p.name == old.name else p for p in WORKLISTS)
    with Reader(views, expected) as reader:
        runner = ProjectionRunner(ApplicationEventLog(service), views, release, batch_size=3)
        runner.start()
        try:
            # The positions stored by the old version are at the head already: wait for
            # the switch to the new version (a stop would interrupt the build).
            deadline = time.monotonic() + 30
            while versions(views)[old.name] != new.version and time.monotonic() < deadline:
                time.sleep(0.05)
            assert runner.wait_until(service.recorder.max_notification_id() or 0, timeout=30)
        finally:
            assert runner.stop()
    assert reader.reads > 0
    assert reader.wrong == [], "the old version served until the new one replaced it"
    with views.reader() as session:
        stored = {p.name: p.version for p in read_positions(session)}
    assert stored[old.name] == new.version
    assert generations(views)[old.name] == (1, None)
    assert worklist(views) == expected


def versions(views: ViewsStore) -> dict[str, int]:
    with views.reader() as session:
        return {p.name: p.version for p in read_positions(session)}


def test_a_runner_of_a_new_release_never_resets_a_read_model_another_rebuild_holds(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    old = open_procedures_by_assignee_model.PROJECTION
    other = unassigned_procedures.PROJECTION
    new = dataclasses.replace(old, version=old.version + 1)
    release = tuple(new if p.name == old.name else p for p in WORKLISTS)
    # An `akte projections rebuild` of the new version runs beside (its lock is held).
    rebuilding = views.writer()
    try:
        lock_rebuilds(rebuilding, [old.name], 0)
        runner = ProjectionRunner(
            ApplicationEventLog(service),
            views,
            release,
            poll_interval=0.05,
            lock_retry_interval=0.1,
        )
        runner.start()
        try:
            case = CaseDriver.open(service)
            case("receive_procedure", channel="mail", topic=TOPIC)
            # The runner follows the other read model...
            assert runner.wait_until(case.position, timeout=10, names=[other.name])
            # ...and leaves the one being rebuilt as it is: the old version keeps serving,
            # never emptied (a reset would have stored the new version at once).
            assert versions(views)[old.name] == old.version
            assert worklist(views) == expected
            unlock_rebuilds(rebuilding, [old.name])
            # Once the lock is free, the runner builds the new version beside and follows.
            assert runner.wait_until(case.position, timeout=30)
            assert runner.stats.errors == 0
        finally:
            assert runner.stop()
    finally:
        rebuilding.close()
    assert versions(views)[old.name] == new.version
    assert generations(views)[old.name] == (1, None)
    assert worklist(views) == expected


def test_a_new_version_that_fails_to_build_stops_alone_and_the_old_one_keeps_serving(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    old = open_procedures_by_assignee_model.PROJECTION
    other = unassigned_procedures.PROJECTION

    def broken(case: Any, event: Any) -> None:
        raise RuntimeError

    new = dataclasses.replace(
        old, version=old.version + 1, handlers={**old.handlers, CaseFile.ProcedureAssigned: broken}
    )
    release = tuple(new if p.name == old.name else p for p in WORKLISTS)
    runner = ProjectionRunner(ApplicationEventLog(service), views, release, poll_interval=0.05)
    runner.start()
    try:
        case = CaseDriver.open(service)
        case("receive_procedure", channel="mail", topic=TOPIC)
        # The others go on: the failed build is that read model's failure, not the loop's.
        assert runner.wait_until(case.position, timeout=30)
        assert set(runner.failures) == {old.name}
        assert runner.stats.errors == 0
        assert other.name in runner.held
    finally:
        assert runner.stop()
    # The old version kept serving, untouched.
    assert versions(views)[old.name] == old.version
    assert worklist(views) == expected


@pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_the_switch_waits_for_a_reader_holding_the_tables_and_later_readers_see_the_new(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    projection = open_procedures_by_assignee_model.PROJECTION
    table = projection.schemas[0].name
    holding = threading.Event()
    release = threading.Event()
    order: list[str] = []
    seen: list[int] = []

    def read_and_hold() -> None:
        # One read transaction that has read the table: it holds it until it ends.
        with views.reader() as session:
            seen.append(session.fetch(f"SELECT '{session.table(table)}'::regclass::oid")[0][0])
            session.fetch(f"SELECT count(*) FROM {session.table(table)}")
            holding.set()
            release.wait(30)
            order.append("reader committed")

    reader = threading.Thread(target=read_and_hold, daemon=True)

    def switch_blocked() -> bool:
        with views.reader() as session:
            rows = session.fetch(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = "
                f"'{session.table(table)}'::regclass"
            )
        return bool(rows[0][0])

    def hold_then_release() -> None:
        reader.start()
        assert holding.wait(10)

        # Release the reader only once the switch is seen waiting for the table.
        def watch() -> None:
            deadline = time.monotonic() + 30
            while not switch_blocked() and time.monotonic() < deadline:
                time.sleep(0.02)
            order.append("switch waited" if switch_blocked() else "switch never waited")
            release.set()

        threading.Thread(target=watch, daemon=True).start()

    try:
        rebuild(service, views, (projection,), before_switch=hold_then_release)
        order.append("switched")
    finally:
        release.set()
        reader.join(10)
    assert order == ["switch waited", "reader committed", "switched"]
    with views.reader() as session:
        now = session.fetch(f"SELECT '{session.table(table)}'::regclass::oid")[0][0]
    assert now != seen[0], "a reader after the switch reads the new generation's table"
    assert generations(views)[projection.name] == (1, None)
    assert worklist(views) == expected


def gated(projection: Projection, gate: threading.Event, reached: threading.Event) -> Projection:
    """A new version of ``projection`` whose build waits at its first assignment until
    ``gate`` is set (``reached`` says it got there)."""
    assigned = projection.handlers[CaseFile.ProcedureAssigned]

    def waiting(case: Any, event: Any) -> None:
        reached.set()
        gate.wait(30)
        assigned(case, event)

    return dataclasses.replace(
        projection,
        version=projection.version + 1,
        handlers={**projection.handlers, CaseFile.ProcedureAssigned: waiting},
    )


# PostgreSQL: on SQLite the build held inside its batch's write transaction would hold
# every writer (one writer at a time); there the runner's batches go between the build's.
@pytest.mark.parametrize(
    "settings", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_runner_follows_its_other_read_models_while_it_builds_a_new_version(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    old = open_procedures_by_assignee_model.PROJECTION
    other = unassigned_procedures.PROJECTION
    gate, reached = threading.Event(), threading.Event()
    new = gated(old, gate, reached)
    release = tuple(new if p.name == old.name else p for p in WORKLISTS)
    runner = ProjectionRunner(ApplicationEventLog(service), views, release, poll_interval=0.05)
    runner.start()
    try:
        assert reached.wait(30)
        # The build is held in the middle: the other read model is followed all the same.
        case = CaseDriver.open(service)
        case("receive_procedure", channel="mail", topic=TOPIC)
        assert runner.wait_until(case.position, timeout=10, names=[other.name])
        assert versions(views)[old.name] == old.version
        gate.set()
        assert runner.wait_until(case.position, timeout=30, names=[old.name])
        assert runner.stats.errors == 0
    finally:
        gate.set()
        assert runner.stop()
    assert versions(views)[old.name] == new.version
    assert worklist(views) == expected


def test_a_stop_ends_a_build_of_a_new_version_between_two_batches(
    service: AkteService, views: ViewsStore
) -> None:
    expected = history(service)
    catch_up(service, views)
    old = open_procedures_by_assignee_model.PROJECTION
    gate, reached = threading.Event(), threading.Event()
    release = tuple(gated(old, gate, reached) if p.name == old.name else p for p in WORKLISTS)
    runner = ProjectionRunner(ApplicationEventLog(service), views, release, batch_size=3)
    runner.start()
    try:
        assert reached.wait(30)
        runner.request_stop()
    finally:
        gate.set()
        assert runner.stop()
    # Interrupted before its switch: the old version serves, untouched.
    assert versions(views)[old.name] == old.version
    assert worklist(views) == expected
