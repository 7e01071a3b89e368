"""Projection benchmark: how fast the worklists rebuild and how closely they follow the log.

Run ``bin/bench-projections`` (or ``python -m benchmarks.projections``) from the
repository root::

    bin/bench-projections [--events 1000000] [--stores sqlite,postgres] [--repeats 3]
                          [--lag-seconds 30] [--rate 200] [--json OUT]

Per store, on a fresh store filled with ``--events`` events (case files built in memory
with a realistic mix of commands, their lives interleaved in the log as in an office,
saved with ``service.save`` in large transactions):

1. raw read rate of the notification log (the library's select + decode of every event,
   events/s), the same read as the engine does it (in bulk), and rebuild throughput of
   all worklists (events/s), interleaved ``--repeats`` times, with the ratio of rebuild
   to raw read and to the bulk read measured just before it; the rebuild is what
   ``akte projections rebuild`` does (a new generation built beside the one in service,
   then switched to); then each worklist rebuilt on its own (what deploying a new
   version of one read model's code does: it reads only the event kinds that read model
   handles); events/s are always of the whole log; targets on PostgreSQL: 1 process
   >= 100,000 events/s and >= 0.8x the bulk read (for all worklists at once and for the
   slowest worklist on its own), 2 processes faster than 1;
2. peak RSS of a rebuild in a fresh process at a quarter of the log and at the whole log
   (memory must stay flat: it must not grow with the log);
3. lag under a steady load of ``--rate`` commands/s through the service while a runner
   thread follows the log (as in ``akte serve``): per command, the time from its return
   to the commit of the batch that contains it; median and p99; target p99 < 1 s.

Medians over repeats, never single timings. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import bisect
import gc
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import perf_counter
from typing import Any, Final, cast
from uuid import UUID, uuid4

from adapters.bootstrap import build_service, open_views_store
from adapters.cli.support import positive_int
from adapters.settings import Settings
from adapters.views.runner import (
    ApplicationEventLog,
    ProjectionRunner,
    rebuild_in_processes,
)
from benchmarks.harness import (
    STORES,
    BenchConfig,
    Machine,
    PostgresParams,
    StoreName,
    add_postgres_arguments,
    fresh_store,
    machine_info,
    postgres_from,
    postgres_server_version,
    store_names,
    write_json,
)
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.case_reference import CaseReference
from domain.values import Channel, Validity
from projections.engine import DEFAULT_BATCH_SIZE, ProjectionEngine
from projections.generations import rebuild_beside, rebuild_locks
from projections.projection import Projection
from projections.worklists import WORKLISTS
from service import AkteService

ROOT: Final = Path(__file__).resolve().parents[1]
TARGET_REBUILD_POSTGRES: Final = 100_000.0
TARGET_REBUILD_OVER_BULK_READ: Final = 0.8
"""The rebuild (1 process) against the engine's bulk read of the same log, same run."""
TARGET_LAG_P99_SECONDS: Final = 1.0
JOBS: Final = 2
"""Processes of the parallel rebuild (``akte projections rebuild --jobs 2``)."""
READ_BATCH: Final = 5000
SAVE_EVERY_EVENTS: Final = 5000
ACTIVE_CASES: Final = 4000
"""Case files in progress at a time: their events interleave in the log."""
OFFICES: Final = ("abh-musterstadt", "abh-beispielstadt")
USERS: Final = tuple(f"sb-{n:02d}" for n in range(1, 9))
MASTER_DATA: Final = MasterData(
    surname="Musterfrau",
    given_names="Erika Maria",
    date_of_birth=datetime(1991, 5, 17).date(),
    nationality="SYR",
    passport_number="N01234567",
    address="Hauptstraße 12, 12345 Musterstadt",
)
CHANNELS: Final[tuple[Channel, ...]] = ("contact_form", "appointment", "mail", "online_application")
TOPICS: Final = (
    ("extend_residence_permit", "aufenthg-18b"),
    ("extend_residence_permit", "aufenthg-16b"),
    ("blue_card", "aufenthg-18g"),
    ("family_reunion", "aufenthg-30"),
    ("change_of_address", None),
)


# ------------------------------------------------------------------ the log


class SyntheticClock:
    """Recorded time moves on by a fixed step per command; business time equals it."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now = start
        self.step = step

    def act(self, by: str) -> Act:
        self.now += self.step
        return Act(by=by, at=self.now, recorded_at=self.now)


def _life(case: CaseFile, rng: random.Random, clock: SyntheticClock) -> Iterator[None]:
    """The rest of a case file's life after it was opened: one command per step."""
    serial = iter(range(1, 10_000))
    by = rng.choice(USERS)

    def act() -> Act:
        return clock.act(by)

    def upload(source: str = "contact_form") -> int:
        return case.attach_document(
            kind=rng.choice(("passport_copy", "employment_contract", "payslip")),
            sha256=f"{rng.getrandbits(256):064x}",
            size_bytes=rng.randint(50_000, 3_000_000),
            media_type="application/pdf",
            page_count=rng.randint(1, 12),
            source=cast(Any, source),
            act=act(),
        )

    if rng.random() < 0.1:
        case.correct_master_data(
            corrections={"address": "Neue Straße 1, 12345 Musterstadt"}, reason="Umzug", act=act()
        )
        yield
    current: int | None = None
    for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
        channel = rng.choice(CHANNELS)
        topic, basis = rng.choice(TOPICS)
        number = case.receive_procedure(channel=channel, topic=topic, legal_basis=basis, act=act())
        yield
        uploads = []
        if channel in ("contact_form", "online_application"):
            for _ in range(rng.randint(1, 3)):
                uploads.append(upload())
                yield
        if rng.random() < 0.85:
            case.assign_procedure(procedure_number=number, assignee=by, act=act())
            yield
            if rng.random() < 0.15:
                other = rng.choice([u for u in USERS if u != by])
                case.assign_procedure(procedure_number=number, assignee=other, act=act())
                yield
        if rng.random() < 0.5:
            case.request_documents(
                procedure_number=number,
                what=["Arbeitsvertrag", "Gehaltsnachweise"],
                due_on=clock.now.date() + timedelta(days=28),
                act=act(),
            )
            yield
            uploads.append(upload(rng.choice(("contact_form", "scan", "mail"))))
            yield
        for document in uploads:
            if rng.random() < 0.8 and case.documents[document - 1].reviewed_at is None:
                case.review_document(document_number=document, act=act())
                yield
        fiction = None
        if rng.random() < 0.35:
            start = clock.now.date()
            fiction = case.issue_fiction_certificate(
                kind="81_4",
                validity=Validity(start, start + timedelta(days=90)),
                carrier_sheet_number=f"FB{rng.getrandbits(32):08d}"[:12],
                procedure_number=number,
                # § 81 (4): applied for while the previous title was still valid.
                order_basis="timely_application",
                previous_title_valid_until=start,
                act=act(),
            )
            yield
            if rng.random() < 0.4:
                case.extend_fiction_certificate(
                    certificate_number=fiction,
                    valid_until=start + timedelta(days=180),
                    new_carrier_sheet_number=None,
                    act=act(),
                )
                yield
        for _ in range(rng.randint(0, 3)):
            case.add_note(text="Vorsprache; Unterlagen teilweise vorgelegt, Rückruf.", act=act())
            yield
        if rng.random() < 0.3:
            case.record_correspondence(
                direction="sent",
                counterpart_kind="authority",
                counterpart_name="Bundesagentur für Arbeit",
                subject="Zustimmung zur Beschäftigung nach § 39 AufenthG",
                attachment_numbers=[],
                act=act(),
            )
            yield
        roll = rng.random()
        outcome = "granted" if roll < 0.8 else "refused" if roll < 0.9 else "withdrawn"
        case.decide_procedure(
            procedure_number=number,
            outcome=cast(Any, outcome),
            legal_basis=None,
            reason="Voraussetzungen fehlen" if outcome == "refused" else None,
            act=act(),
        )
        yield
        # The decision itself ends the procedure's Fiktionsbescheinigung (§ 81 AufenthG).
        if rng.random() < 0.7:
            case.close_procedure(procedure_number=number, act=act())
            yield
        if outcome != "granted":
            continue
        kind_roll = rng.random()
        kind, legal_basis = (
            ("eat", basis or "aufenthg-18b")
            if kind_roll < 0.75
            else ("duldung", "aufenthg-60a")
            if kind_roll < 0.9
            else ("aufenthaltsgestattung", "asylg-55")
        )
        start = clock.now.date()
        document = case.issue_residence_document(
            kind=cast(Any, kind),
            legal_basis=legal_basis,
            validity=Validity(start, start + timedelta(days=rng.choice((180, 365, 730)))),
            document_number=f"Y{next(serial):03d}{rng.getrandbits(24):07d}",
            procedure_number=number,
            act=act(),
        )
        yield
        if current is not None and rng.random() < 0.8:
            case.end_residence_document(
                residence_document_number=current, end_reason="replaced", reason=None, act=act()
            )
            yield
        current = document
        if kind == "eat":
            case.order_eat_card(residence_document_number=document, act=act())
            yield
            if rng.random() < 0.9:
                case.record_eat_card_arrived(residence_document_number=document, act=act())
                yield
                if rng.random() < 0.85:
                    case.hand_over_eat_card(residence_document_number=document, act=act())
                    yield
            if rng.random() < 0.05:
                case.transfer_eat_to_new_passport(
                    residence_document_number=document,
                    new_card_number=f"Y{next(serial):03d}{rng.getrandbits(24):07d}",
                    act=act(),
                )
                yield
        if rng.random() < 0.2:
            case.extend_residence_document(
                residence_document_number=document,
                valid_until=start + timedelta(days=1095),
                reason=None,
                act=act(),
            )
            yield
    if rng.random() < 0.1:
        inquiry = case.receive_inquiry(kind="civil_registry", act=act())
        yield
        case.answer_inquiry(inquiry_number=inquiry, act=act())
        yield
    ending = rng.random()
    if ending < 0.04:
        case.transfer_to_office(to_office_id="abh-anderswo", reason=None, act=act())
        yield
    elif ending < 0.08:
        case.close(closure_reason="left", act=act())
        yield


def write_log(
    service: AkteService,
    events: int,
    *,
    seed: int = 2024,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write about ``events`` events (at least that many); returns the number written."""
    rng = random.Random(seed)
    clock = SyntheticClock(datetime(2023, 1, 2, 8, 0, tzinfo=UTC), timedelta(seconds=20))
    active: list[tuple[CaseFile, Iterator[None]]] = []
    pending: dict[UUID, Any] = {}
    pending_events = 0
    written = 0

    def open_case() -> None:
        nonlocal pending_events
        act = clock.act(rng.choice(USERS))
        case_id = uuid4()
        office = OFFICES[0] if rng.random() < 0.8 else OFFICES[1]
        reference = f"{act.at.year}-{case_id.hex[:10].upper()}"
        case = CaseFile.open(
            case_id=case_id, office_id=office, reference=reference, master_data=MASTER_DATA, act=act
        )
        claim = CaseReference.claim(office_id=office, reference=reference, case_id=case_id, act=act)
        pending[case.id] = case
        pending[claim.id] = claim
        pending_events += 2
        active.append((case, _life(case, rng, clock)))

    while written + pending_events < events:
        while len(active) < ACTIVE_CASES:
            open_case()
        index = rng.randrange(len(active))
        case, life = active[index]
        try:
            next(life)
            pending[case.id] = case
            pending_events += 1
        except StopIteration:
            active[index] = active[-1]
            active.pop()
        if pending_events >= SAVE_EVERY_EVENTS:
            service.save(*pending.values())
            written += pending_events
            pending.clear()
            pending_events = 0
            if progress is not None:
                progress(written)
    if pending:
        service.save(*pending.values())
        written += pending_events
    return written


# -------------------------------------------------------------- measurements


def read_rate(service: AkteService) -> float:
    """Events/s of select + decode over the whole log."""
    recorder, mapper = service.recorder, service.mapper
    started = perf_counter()
    position = 0
    count = 0
    while True:
        notifications = recorder.select_notifications(start=position + 1, limit=READ_BATCH)
        if not notifications:
            break
        for notification in notifications:
            mapper.to_domain_event(notification)
        position = notifications[-1].id
        count += len(notifications)
    return count / (perf_counter() - started)


def bulk_read_rate(service: AkteService) -> float:
    """Events/s of reading the whole log as the engine does: select + decode in bulk
    (``ApplicationEventLog.read_events``), in batches of the engine's size, with Python's
    cyclic garbage collector paused (the engine pauses it while it works; left on, it
    walks each batch's events over and over as they pile up)."""
    log = ApplicationEventLog(service)
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        started = perf_counter()
        position = 0
        count = 0
        while True:
            events = log.read_events(position, DEFAULT_BATCH_SIZE)
            if not events:
                break
            position = events[-1][0]
            count += len(events)
        return count / (perf_counter() - started)
    finally:
        if was_enabled:
            gc.enable()


def rebuild_rate(settings: Settings, service: AkteService, until: int | None = None) -> float:
    """Events/s of rebuilding all worklists from scratch in place (up to ``until``): the
    engine alone, for the peak RSS at two sizes of the log."""
    views = open_views_store(settings)
    writer = views.writer()
    try:
        engine = ProjectionEngine(ApplicationEventLog(service), writer, WORKLISTS)
        engine.prepare()
        started = perf_counter()
        done = engine.rebuild(until=until)
        return done / (perf_counter() - started)
    finally:
        writer.close()
        views.close()


def rebuild_beside_rate(
    settings: Settings, service: AkteService, projections: Sequence[Projection] = WORKLISTS
) -> float:
    """Events/s of ``akte projections rebuild`` in one process: the read models (all
    worklists unless told) built as a new generation beside the one in service, caught up
    and switched to. Events/s are of the whole log (its last position over the seconds
    taken), whatever share of it the read models read."""
    views = open_views_store(settings)
    writer = views.writer()
    try:
        log = ApplicationEventLog(service)
        names = [projection.name for projection in projections]
        with rebuild_locks(writer, names, 10.0):
            started = perf_counter()
            rebuild_beside(log, writer, projections)
            seconds = perf_counter() - started
        return log.head() / seconds
    finally:
        writer.close()
        views.close()


def parallel_rebuild_rate(settings: Settings, jobs: int) -> float:
    """Events/s of rebuilding all worklists in ``jobs`` processes (start-up included)."""
    service = build_service(settings)
    try:
        started = perf_counter()
        done = rebuild_in_processes(
            settings,
            WORKLISTS,
            build_service=build_service,
            open_views_store=open_views_store,
            jobs=jobs,
        )
        return done / (perf_counter() - started)
    finally:
        service.close()


def child_rebuild(until: int) -> None:
    """In a fresh process (``--child-rebuild``): rebuild, print rate and peak RSS as JSON."""
    settings = Settings()
    service = build_service(settings)
    try:
        rate = rebuild_rate(settings, service, until=until)
    finally:
        service.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"until": until, "events_per_second": rate, "peak_rss_mib": peak_kib / 1024}))


def settings_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKTE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["AKTE_STORE"] = settings.store
    env["AKTE_SNAPSHOT_INTERVAL"] = str(settings.snapshot_interval)
    if settings.store == "sqlite":
        env["AKTE_DATA_DIR"] = str(settings.data_dir)
    else:
        env["AKTE_POSTGRES_HOST"] = settings.postgres_host
        env["AKTE_POSTGRES_PORT"] = str(settings.postgres_port)
        env["AKTE_POSTGRES_USER"] = settings.postgres_user
        env["AKTE_POSTGRES_DBNAME"] = settings.postgres_dbname
        env["AKTE_POSTGRES_SCHEMA"] = settings.postgres_schema
    return env


class ChildFailed(RuntimeError):
    """The rebuild process of the RSS measurement failed (its last stderr line)."""


def peak_rss_of_rebuild(settings: Settings, until: int) -> dict[str, float]:
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.projections", "--child-rebuild", str(until)],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        lines = finished.stderr.strip().splitlines()
        raise ChildFailed(lines[-1] if lines else f"exit code {finished.returncode}")
    result: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


@dataclass
class _LoadCase:
    """A case file of the steady load: receive, (re-)assign, request, upload, note."""

    case_id: UUID
    version: int
    procedures: int = 0
    assignee: int = -1
    """Index into USERS of the latest procedure's assignee (-1: none)."""

    def next_command(self, service: AkteService, rng: random.Random) -> int:
        """Run one command; the notification id of its last event."""
        roll = rng.random()
        if self.procedures == 0 or roll < 0.2:
            recorded: Any = service.receive_procedure(
                self.case_id, expected_version=self.version, by="portal",
                channel="contact_form", topic="extend_residence_permit",
                legal_basis="aufenthg-18b",
            )  # fmt: skip
            self.procedures += 1
            self.assignee = -1
        elif roll < 0.4:
            self.assignee = (self.assignee + 1) % len(USERS)
            recorded = service.assign_procedure(
                self.case_id, expected_version=self.version, by="tl-01",
                procedure_number=self.procedures, assignee=USERS[self.assignee],
            )  # fmt: skip
        elif roll < 0.5:
            recorded = service.request_documents(
                self.case_id, expected_version=self.version, by="sb-01",
                procedure_number=self.procedures, what=["Pass"],
                due_on=datetime.now(tz=UTC).date() + timedelta(days=28),
            )  # fmt: skip
        elif roll < 0.6:
            recorded = service.attach_document(
                self.case_id, expected_version=self.version, by="portal", kind="passport_copy",
                sha256=f"{rng.getrandbits(256):064x}", size_bytes=1000,
                media_type="application/pdf", page_count=1, source="contact_form",
            )  # fmt: skip
        else:
            recorded = service.add_note(
                self.case_id, expected_version=self.version, by="sb-01", text="Rückruf vereinbart."
            )
        self.version = recorded.version
        position: int = recorded.position
        return position


@dataclass(frozen=True)
class LagResult:
    commands: int
    achieved_rate: float
    median_seconds: float
    p99_seconds: float
    max_seconds: float


def lag_under_load(settings: Settings, seconds: float, rate: float) -> LagResult:
    """Commands at ``rate``/s through the service while a runner thread follows the log."""
    service = build_service(settings)
    views = open_views_store(settings)
    commits: list[tuple[int, float]] = []
    commits_lock = threading.Lock()

    def on_commit(position: int) -> None:
        with commits_lock:
            commits.append((position, perf_counter()))

    runner = ProjectionRunner(ApplicationEventLog(service), views, WORKLISTS, on_commit=on_commit)
    rng = random.Random(7)
    try:
        cases: list[_LoadCase] = []
        for _ in range(200):
            opened = service.open_case(office_id=OFFICES[0], master_data=MASTER_DATA, by="sb-01")
            cases.append(_LoadCase(opened.case_id, opened.version))
        runner.start()
        if not runner.wait_until(service.recorder.max_notification_id() or 0, timeout=600):
            msg = "the runner did not catch up before the load started"
            raise RuntimeError(msg)
        done: list[tuple[int, float]] = []
        count = int(seconds * rate)
        started = perf_counter()
        for i in range(count):
            delay = started + i / rate - perf_counter()
            if delay > 0:
                time.sleep(delay)
            case = cases[rng.randrange(len(cases))]
            done.append((case.next_command(service, rng), perf_counter()))
        elapsed = perf_counter() - started
        last = done[-1][0]
        if not runner.wait_until(last, timeout=60):
            msg = "the runner did not catch up after the load"
            raise RuntimeError(msg)
    finally:
        runner.stop()
        views.close()
        service.close()
    with commits_lock:
        positions = [position for position, _ in commits]
        times = [moment for _, moment in commits]
    lags = []
    for position, moment in done:
        index = bisect.bisect_left(positions, position)
        lags.append(times[index] - moment)
    lags.sort()
    return LagResult(
        commands=len(done),
        achieved_rate=len(done) / elapsed,
        median_seconds=statistics.median(lags),
        p99_seconds=lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        max_seconds=lags[-1],
    )


# -------------------------------------------------------------------- report


@dataclass
class StoreResult:
    store: StoreName
    events: int
    write_seconds: float
    read_rates: list[float] = field(default_factory=list)
    bulk_read_rates: list[float] = field(default_factory=list)
    rebuild_rates: list[float] = field(default_factory=list)
    parallel_rates: list[float] = field(default_factory=list)
    alone_rates: dict[str, list[float]] = field(default_factory=dict)
    """Per worklist, events/s of rebuilding it on its own (what deploying a new version
    of one read model's code does), one per repeat."""
    rss: list[dict[str, float]] = field(default_factory=list)
    lag: LagResult | None = None
    load_average: list[float] = field(default_factory=list)
    """1-minute load average before and after: other work on the machine skews figures."""

    @property
    def rebuild_over_read(self) -> float:
        pairs = zip(self.rebuild_rates, self.read_rates, strict=True)
        return statistics.median(rebuild / read for rebuild, read in pairs)

    @property
    def rebuild_over_bulk_read(self) -> float:
        """Per repeat, the rebuild against the bulk read measured just before it."""
        pairs = zip(self.rebuild_rates, self.bulk_read_rates, strict=True)
        return statistics.median(rebuild / read for rebuild, read in pairs)

    @property
    def slowest_alone(self) -> tuple[str, float]:
        """The worklist whose rebuild on its own is slowest, and its median events/s."""
        medians = {name: statistics.median(rates) for name, rates in self.alone_rates.items()}
        name = min(medians, key=medians.__getitem__)
        return name, medians[name]

    @property
    def slowest_alone_over_bulk_read(self) -> float:
        """Per repeat, the slowest worklist rebuilt on its own against the bulk read of
        the whole log measured in the same repeat."""
        per_repeat: list[float] = [
            min(rates) for rates in zip(*self.alone_rates.values(), strict=True)
        ]
        pairs = zip(per_repeat, self.bulk_read_rates, strict=True)
        return statistics.median(alone / read for alone, read in pairs)

    @property
    def parallel_over_rebuild(self) -> float:
        pairs = zip(self.parallel_rates, self.rebuild_rates, strict=True)
        return statistics.median(parallel / rebuild for parallel, rebuild in pairs)


@dataclass
class ProjectionReport:
    machine: Machine
    parameters: dict[str, Any]
    stores: list[StoreResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


@dataclass(frozen=True)
class Config:
    stores: tuple[StoreName, ...] = STORES
    events: int = 1_000_000
    repeats: int = 3
    lag_seconds: float = 30.0
    rate: float = 200.0
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True


def _say(config: Config, message: str) -> None:
    if config.progress:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def bench_store(config: Config, store: StoreName) -> StoreResult:
    load_before = _load_average()
    bench_config = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    with fresh_store(store, bench_config, snapshot_interval=0) as settings:
        service = build_service(settings)
        try:
            _say(config, f"{store}: writing {config.events:,} events")
            started = perf_counter()
            written = write_log(
                service,
                config.events,
                progress=lambda n: (
                    _say(config, f"{store}: {n:,} events written")
                    if n % 100_000 < SAVE_EVERY_EVENTS
                    else None
                ),
            )
            result = StoreResult(store, written, perf_counter() - started)
            for repeat in range(config.repeats):
                _say(config, f"{store}: read + rebuild, repeat {repeat + 1}/{config.repeats}")
                result.read_rates.append(read_rate(service))
                result.bulk_read_rates.append(bulk_read_rate(service))
                result.rebuild_rates.append(rebuild_beside_rate(settings, service))
                result.parallel_rates.append(parallel_rebuild_rate(settings, JOBS))
                for projection in WORKLISTS:
                    result.alone_rates.setdefault(projection.name, []).append(
                        rebuild_beside_rate(settings, service, (projection,))
                    )
                slowest, slowest_rate = result.slowest_alone
                _say(
                    config,
                    f"{store}: read {result.read_rates[-1]:,.0f} (bulk "
                    f"{result.bulk_read_rates[-1]:,.0f}), rebuild "
                    f"{result.rebuild_rates[-1]:,.0f}, rebuild in {JOBS} processes "
                    f"{result.parallel_rates[-1]:,.0f} events/s; slowest worklist on its own "
                    f"so far: {slowest} {slowest_rate:,.0f} events/s",
                )
        finally:
            service.close()
        _say(config, f"{store}: peak RSS of a rebuild at 1/4 and 4/4 of the log")
        for until in (written // 4, written):
            for attempt in (1, 2):
                try:
                    result.rss.append(peak_rss_of_rebuild(settings, until))
                    break
                except ChildFailed as failure:
                    _say(config, f"{store}: RSS child failed ({failure}), attempt {attempt}")
        _say(config, f"{store}: lag at {config.rate:.0f} commands/s for {config.lag_seconds:.0f} s")
        result.lag = lag_under_load(
            settings.model_copy(update={"snapshot_interval": 50}), config.lag_seconds, config.rate
        )
    result.load_average = [load_before, _load_average()]
    return result


def run(config: Config) -> ProjectionReport:
    started = perf_counter()
    server, problem = postgres_server_version(config.postgres)
    report = ProjectionReport(
        machine=machine_info(server),
        parameters={
            "stores": list(config.stores),
            "events": config.events,
            "repeats": config.repeats,
            "lag_seconds": config.lag_seconds,
            "rate": config.rate,
            "read_batch": READ_BATCH,
            "active_cases": ACTIVE_CASES,
        },
    )
    for store in config.stores:
        if store == "postgres" and problem is not None:
            report.notes.append(f"PostgreSQL rows skipped: {problem}")
            continue
        result = bench_store(config, store)
        report.stores.append(result)
        _say(config, "\n" + "\n".join(format_store(result)))
    report.seconds = perf_counter() - started
    return report


def _spread(samples: Sequence[float]) -> str:
    return f"({min(samples):,.0f}..{max(samples):,.0f}, n={len(samples)})"


def format_report(report: ProjectionReport) -> str:
    m = report.machine
    p = report.parameters
    lines = [
        "Akte projection benchmark",
        f"machine: {m.cpu_model}, {m.nproc} CPUs; {m.python}; {m.platform}",
        "libraries: "
        + ", ".join(f"{k} {v}" for k, v in m.libraries.items())
        + (f", PostgreSQL server {m.postgres_server}" if m.postgres_server else ""),
        f"parameters: events={p['events']:,} repeats={p['repeats']} "
        f"lag load={p['rate']:.0f} commands/s for {p['lag_seconds']:.0f} s",
    ]
    for result in report.stores:
        lines += format_store(result)
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def format_store(result: StoreResult) -> list[str]:
    lines: list[str] = []
    write_rate = result.events / result.write_seconds
    read = statistics.median(result.read_rates)
    rebuild = statistics.median(result.rebuild_rates)
    parallel = statistics.median(result.parallel_rates)
    lines += [
        "",
        f"{result.store}: {result.events:,} events written in {result.write_seconds:.0f} s "
        f"({write_rate:,.0f} events/s); load average before/after "
        + "/".join(f"{value:.2f}" for value in result.load_average),
        f"  1. read log (select + decode)       {read:>10,.0f}"
        f" events/s {_spread(result.read_rates)}",
        f"     read log as the engine does (bulk){statistics.median(result.bulk_read_rates):>9,.0f}"
        f" events/s {_spread(result.bulk_read_rates)}",
        f"     rebuild all worklists, 1 process {rebuild:>10,.0f}"
        f" events/s {_spread(result.rebuild_rates)}",
        f"     rebuild all worklists, {JOBS} processes{parallel:>9,.0f}"
        f" events/s {_spread(result.parallel_rates)}",
        f"     = rebuild (1 process) / read     {result.rebuild_over_read:>10.2f}x",
        f"     = rebuild (1 process) / bulk read{result.rebuild_over_bulk_read:>10.2f}x",
        f"     = rebuild {JOBS} processes / 1 process{result.parallel_over_rebuild:>8.2f}x",
    ]
    for name, rates in sorted(result.alone_rates.items()):
        lines.append(
            f"     rebuild {name} on its own".ljust(56)
            + f"{statistics.median(rates):>10,.0f} events/s {_spread(rates)}"
        )
    if result.alone_rates:
        slowest, slowest_rate = result.slowest_alone
        lines += [
            f"     = slowest on its own ({slowest}) / bulk read"
            f"{result.slowest_alone_over_bulk_read:>8.2f}x",
        ]
    if result.store == "postgres":
        met = rebuild >= TARGET_REBUILD_POSTGRES
        lines.append(
            f"     target rebuild >= {TARGET_REBUILD_POSTGRES:,.0f} events/s, 1 process: "
            f"{'MET' if met else 'MISSED'}"
        )
        met = result.rebuild_over_bulk_read >= TARGET_REBUILD_OVER_BULK_READ
        lines.append(
            f"     target rebuild (1 process) >= {TARGET_REBUILD_OVER_BULK_READ:.1f}x bulk read: "
            f"{'MET' if met else 'MISSED'}"
        )
        if result.alone_rates:
            _, slowest_rate = result.slowest_alone
            met = (
                slowest_rate >= TARGET_REBUILD_POSTGRES
                and result.slowest_alone_over_bulk_read >= TARGET_REBUILD_OVER_BULK_READ
            )
            lines.append(
                f"     target each worklist rebuilt on its own >= "
                f"{TARGET_REBUILD_POSTGRES:,.0f} events/s and >= "
                f"{TARGET_REBUILD_OVER_BULK_READ:.1f}x bulk read: {'MET' if met else 'MISSED'}"
            )
        met = result.parallel_over_rebuild > 1.0
        lines.append(
            f"     target rebuild in {JOBS} processes faster than in 1: "
            f"{'MET' if met else 'MISSED'}"
        )
    for rss in result.rss:
        lines.append(
            f"  2. peak RSS, rebuild of {int(rss['until']):>10,} events  "
            f"{rss['peak_rss_mib']:>8.0f} MiB ({rss['events_per_second']:,.0f} events/s)"
        )
    if len(result.rss) == 2 and result.rss[0]["until"] < result.rss[1]["until"]:
        growth = result.rss[1]["peak_rss_mib"] / result.rss[0]["peak_rss_mib"]
        lines.append(f"     = RSS at 4/4 over 1/4 of the log   {growth:>8.2f}x")
    if result.lag is not None:
        lag = result.lag
        lines += [
            f"  3. lag at {lag.achieved_rate:,.0f} commands/s ({lag.commands:,} commands): "
            f"median {lag.median_seconds * 1000:,.0f} ms, "
            f"p99 {lag.p99_seconds * 1000:,.0f} ms, max {lag.max_seconds * 1000:,.0f} ms",
            f"     target p99 < {TARGET_LAG_P99_SECONDS:.0f} s: "
            f"{'MET' if lag.p99_seconds < TARGET_LAG_P99_SECONDS else 'MISSED'}",
        ]
    return lines


def to_json(report: ProjectionReport) -> dict[str, Any]:
    return {
        "machine": asdict(report.machine),
        "parameters": report.parameters,
        "seconds": round(report.seconds, 1),
        "stores": [
            {
                "store": r.store,
                "events": r.events,
                "write_seconds": r.write_seconds,
                "read_events_per_second": r.read_rates,
                "bulk_read_events_per_second": r.bulk_read_rates,
                "rebuild_events_per_second": r.rebuild_rates,
                "rebuild_parallel_events_per_second": r.parallel_rates,
                "rebuild_parallel_jobs": JOBS,
                "rebuild_alone_events_per_second": r.alone_rates,
                "rebuild_over_read": r.rebuild_over_read,
                "rebuild_over_bulk_read": r.rebuild_over_bulk_read,
                "rebuild_parallel_over_one": r.parallel_over_rebuild,
                "peak_rss": r.rss,
                "lag": asdict(r.lag) if r.lag is not None else None,
                "load_average": r.load_average,
            }
            for r in report.stores
        ],
        "notes": report.notes,
    }


# ---------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None, int | None]:
    parser = argparse.ArgumentParser(
        prog="bin/bench-projections",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    defaults = Config()
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument("--events", type=positive_int, default=defaults.events)
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats)
    parser.add_argument("--lag-seconds", type=float, default=defaults.lag_seconds)
    parser.add_argument("--rate", type=float, default=defaults.rate, help="commands/s")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--tmp-dir", type=Path, help="where SQLite stores go")
    add_postgres_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--child-rebuild", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = Config(
        stores=args.stores,
        events=args.events,
        repeats=args.repeats,
        lag_seconds=args.lag_seconds,
        rate=args.rate,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    return config, args.json, args.child_rebuild


def main(argv: Sequence[str] | None = None) -> int:
    config, json_path, child_until = parse_args(argv)
    if child_until is not None:
        child_rebuild(child_until)
        return 0
    report = run(config)
    print(format_report(report))
    if json_path is not None:
        write_json(json_path, to_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
