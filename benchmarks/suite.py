"""The benchmark suite: every figure of issue 11 in one run, each next to its baseline.

Run ``bin/bench-all`` (or ``python -m benchmarks.suite``) from the repository root::

    bin/bench-all [--quick] [--stores sqlite,postgres] [--sections a,b] [--json OUT]
                  [--readme]

It reuses the single-purpose benchmarks (``benchmarks/service_cost.py``, ``projections.py``,
``history.py``, ``audit.py``, ``report.py``) by calling their functions, and adds what
none of them measures: commands through HTTP (a live ``akte serve`` process and
concurrent clients, ``benchmarks/loadtest.py``), peak RSS of the API process, worklist
pages at 100,000 open procedures, and offices as shards (PostgreSQL schemas) writing at
once. Every figure is a median over repeats, printed next to its baseline measured in
the same run and next to its target with MET or MISSED. ``--quick`` uses small sizes for
iteration; the full sizes are those of the issue. ``--readme`` writes the table into the
performance page of the docs, ``docs/performance/index.md`` (between its markers). Not
part of the test suite.

PostgreSQL: 127.0.0.1:5432, user postgres, database test (or ``AKTE_TEST_POSTGRES_*``);
every schema it makes is named ``akte_suite_*`` (or the reused benchmarks' own
``akte_bench_*``) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any, Final, Literal

from psycopg import sql

from adapters.bootstrap import build_office_services, build_service, office_schema, open_views_store
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.reports.kept_histories import SHELF_STEP
from adapters.settings import Settings
from benchmarks import audit as audit_bench
from benchmarks import grouped_simulation, scan_import
from benchmarks import history as history_bench
from benchmarks import http_limit as http_limit_bench
from benchmarks import projections as projections_bench
from benchmarks import report as report_bench
from benchmarks.cluster import ApiProcess, stop_all, wait_views_built
from benchmarks.harness import (
    BenchConfig,
    PostgresParams,
    command_plan,
    fresh_store,
    machine_info,
    postgres_server_version,
    run_bare_commands,
    run_service_commands,
    store_names,
    write_json,
)
from benchmarks.loadtest import WRITES, caseworkers_for, percentile, run_load
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from projections.worklists.open_procedures_by_assignee import open_procedures_by_assignee
from projections.worklists.unassigned_procedures import unassigned_procedures
from service import AkteService

StoreName = Literal["sqlite", "postgres"]
ROOT: Final = Path(__file__).resolve().parents[1]
README: Final = ROOT / "docs" / "performance" / "index.md"
BEGIN_MARK: Final = "<!-- bench-all:begin -->"
END_MARK: Final = "<!-- bench-all:end -->"
SCHEMA_PREFIX: Final = "akte_suite_"
SECTIONS: Final = (
    "commands",
    "projections",
    "worklists",
    "report",
    "history",
    "audit",
    "shards",
    "http-limit",
    "bulk",
)
OFFICE: Final = "abh-musterstadt"
SHARD_OFFICES: Final = ("abh-a", "abh-b", "abh-c", "abh-d")
MASTER_DATA: Final = MasterData(
    surname="Muster",
    given_names="Erika",
    date_of_birth=date(1990, 1, 1),
    nationality="SYR",
    passport_number="P00000000",
)


# ----------------------------------------------------------------- sizes


@dataclass(frozen=True)
class Sizes:
    repeats: int
    commands: int
    http_requests: int
    http_clients: int
    log_events: int
    lag_seconds: float
    open_procedures: int
    report_scale: float
    history_events: int
    history_loads: int
    audit_events: int
    shard_commands: int
    simulation_scale: float
    import_folders: int


QUICK: Final = Sizes(
    repeats=3,
    commands=400,
    http_requests=400,
    http_clients=8,
    log_events=20_000,
    lag_seconds=8,
    open_procedures=10_000,
    report_scale=0.003,
    history_events=5000,
    history_loads=3,
    audit_events=20_000,
    shard_commands=300,
    simulation_scale=0.01,
    import_folders=60,
)
FULL: Final = Sizes(
    repeats=5,
    commands=2000,
    http_requests=3000,
    http_clients=16,
    log_events=1_000_000,
    lag_seconds=30,
    open_procedures=100_000,
    report_scale=0.05,
    history_events=5000,
    history_loads=10,
    audit_events=1_000_000,
    shard_commands=1500,
    simulation_scale=0.05,
    import_folders=300,
)


# ---------------------------------------------------------------- figures


@dataclass
class Row:
    """One figure: its median, its baseline (same run), its target and whether it met it."""

    section: str
    label: str
    store: str
    value: float
    unit: str
    samples: list[float] = field(default_factory=list)
    baseline_label: str = ""
    baseline: float | None = None
    target: str = ""
    met: bool | None = None

    def cell(self) -> str:
        return _number(self.value, self.unit)

    def baseline_cell(self) -> str:
        if self.baseline is None:
            return ""
        return f"{_number(self.baseline, self.unit)} {self.baseline_label}".strip()

    def status(self) -> str:
        if self.met is None:
            return ""
        return "MET" if self.met else "MISSED"


def _number(value: float, unit: str) -> str:
    if value != value:  # NaN
        return "-"
    if unit in ("ms", "s", "x"):
        return f"{value:,.2f} {unit}" if value < 10 else f"{value:,.1f} {unit}"
    return f"{value:,.0f} {unit}"


def _at_least(value: float, target: float, text: str) -> tuple[str, bool]:
    return text, value >= target


def _at_most(value: float, target: float, text: str) -> tuple[str, bool]:
    return text, value <= target


@dataclass
class SuiteReport:
    quick: bool
    stores: list[str]
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    load_average: list[float] = field(default_factory=list)

    def add(self, row: Row, target: tuple[str, bool] | None = None) -> None:
        if target is not None:
            row.target, row.met = target
        self.rows.append(row)


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def _load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


@contextmanager
def suite_store(store: StoreName, params: PostgresParams) -> Iterator[Settings]:
    """An empty store of the suite's own (schema ``akte_suite_*``), dropped afterwards."""
    with tempfile.TemporaryDirectory(prefix="akte-suite-") as tmp:
        data_dir = Path(tmp) / "data"
        if store == "sqlite":
            yield Settings(store="sqlite", data_dir=data_dir)
            return
        schema = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:10]}"
        with params.connect() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            yield Settings(
                store="postgres",
                data_dir=data_dir,
                postgres_host=params.host,
                postgres_port=params.port,
                postgres_user=params.user,
                postgres_dbname=params.dbname,
                postgres_schema=schema,
            )
        finally:
            drop_schemas(params, [schema])


def drop_schemas(params: PostgresParams, schemas: Sequence[str]) -> None:
    with params.connect() as conn:
        for schema in schemas:
            if schema.startswith(SCHEMA_PREFIX):  # only ever our own
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


# ------------------------------------------------- 1. commands: HTTP, service, bare


def bench_commands(report: SuiteReport, sizes: Sizes, store: StoreName, pg: PostgresParams) -> None:
    section = "commands"
    cases = 20
    plan = command_plan(sizes.commands, cases)
    bench = BenchConfig(stores=(store,), postgres=pg, progress=False)
    service_rates: list[float] = []
    bare_rates: list[float] = []
    service_ms: list[float] = []
    bare_ms: list[float] = []
    http_rates: list[float] = []
    http_p50: list[float] = []
    http_p99: list[float] = []
    # CPU per command: robust where rates are not (a shared machine slows every process,
    # but a process's own CPU per request changes little).
    api_cpu_ms: list[float] = []
    projection_cpu_ms: list[float] = []
    service_cpu_ms: list[float] = []
    _say(f"{store}: commands through the service and the bare library save (warm-up)")
    warmup = command_plan(10 * cases, cases)
    with fresh_store(store, bench) as settings:
        run_service_commands(settings, warmup, cases)
    with suite_store(store, pg) as settings, tempfile.TemporaryDirectory() as logs:
        build_service(settings).close()  # tables and signing key before the server starts
        api = ApiProcess(settings, Path(logs) / "api.log")
        try:
            api.start()
            api.wait_ready()
            wait_views_built(settings)
            issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
            for repeat in range(sizes.repeats):
                _say(f"{store}: commands, repeat {repeat + 1}/{sizes.repeats}")
                with fresh_store(store, bench) as fresh:
                    latencies: list[float] = []
                    cpu_before = time.process_time()
                    seconds = run_service_commands(fresh, plan, cases, latencies)
                    service_cpu_ms.append((time.process_time() - cpu_before) * 1000 / len(plan))
                    service_rates.append(len(plan) / seconds)
                    service_ms += [s * 1000 for s in latencies]
                with fresh_store(store, bench) as fresh:
                    latencies = []
                    seconds = run_bare_commands(fresh, plan, cases, latencies)
                    bare_rates.append(len(plan) / seconds)
                    bare_ms += [s * 1000 for s in latencies]
                workers = caseworkers_for(
                    issuer, [api.base_url], sizes.http_clients, cases=4, writes=1.0,
                    conflict_every=10**9,
                )  # fmt: skip
                api_before, projection_before = _cpu_seconds(api.pid)
                result = run_load(workers, requests=sizes.http_requests, seconds=120)
                api_after, projection_after = _cpu_seconds(api.pid)
                api_cpu_ms.append((api_after - api_before) * 1000 / max(result.requests, 1))
                projection_cpu_ms.append(
                    (projection_after - projection_before) * 1000 / max(result.requests, 1)
                )
                if result.errors:
                    report.notes.append(
                        f"{store}: HTTP errors {result.errors}: {result.error_samples[:3]}"
                    )
                writes = result.merged(WRITES)
                http_rates.append(len(writes) / result.seconds)
                http_p50.append(percentile(writes, 0.5))
                http_p99.append(percentile(writes, 0.99))
            api_rss = api.peak_rss_mib()
        finally:
            stop_all([api])
    service = _median(service_rates)
    bare = _median(bare_rates)
    http = _median(http_rates)
    pg_only = store == "postgres"
    report.add(
        Row(section, "HTTP commands/s (live server, concurrent clients)", store, http, "cmd/s",
            http_rates, "service", service),
        _at_least(http, 500, ">= 500/s") if pg_only else None,
    )  # fmt: skip
    report.add(
        Row(section, "HTTP command latency p99", store, _median(http_p99), "ms", http_p99,
            "p50", _median(http_p50)),
        _at_most(_median(http_p99), 50, "< 50 ms") if pg_only else None,
    )  # fmt: skip
    report.add(
        Row(section, "API process CPU per HTTP command", store, _median(api_cpu_ms), "ms",
            api_cpu_ms, "service in-process", _median(service_cpu_ms)),
    )  # fmt: skip
    if any(projection_cpu_ms):
        report.add(
            Row(section, "projection child process CPU per HTTP command", store,
                _median(projection_cpu_ms), "ms", projection_cpu_ms),
        )  # fmt: skip
    report.add(
        Row(section, "service commands/s", store, service, "cmd/s", service_rates,
            "bare save", bare),
        _at_least(service / bare, 0.6, f">= 60% of bare ({service / bare:.0%})"),
    )  # fmt: skip
    report.add(
        Row(section, "service command latency p99", store, percentile(service_ms, 0.99), "ms",
            [], "p50", percentile(service_ms, 0.5)),
    )  # fmt: skip
    report.add(
        Row(section, "bare library save latency p99", store, percentile(bare_ms, 0.99), "ms",
            [], "p50", percentile(bare_ms, 0.5)),
    )  # fmt: skip
    report.add(
        Row(section, "peak RSS of the API process", store, api_rss, "MiB", [api_rss],
            "", None, "flat in the log's size"),
    )  # fmt: skip


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) of a process so far, and of its child processes (the
    projection runner of ``akte serve`` on PostgreSQL); NaN where ``/proc`` cannot say."""
    ticks = os.sysconf("SC_CLK_TCK")

    def of(one: int) -> float:
        fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    try:
        own = of(pid)
        children: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):  # the thread ended meanwhile
                children += [int(child) for child in (task / "children").read_text().split()]
        return own, sum(of(child) for child in children)
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


# ------------------------------------------------------ 2. projections (reused)


def bench_projections(
    report: SuiteReport, sizes: Sizes, stores: Sequence[StoreName], pg: PostgresParams
) -> None:
    config = projections_bench.Config(
        stores=tuple(stores),
        events=sizes.log_events,
        repeats=sizes.repeats,
        lag_seconds=sizes.lag_seconds,
        postgres=pg,
    )
    _say(f"projections: {sizes.log_events:,} events per store (benchmarks/projections.py)")
    result = projections_bench.run(config)
    report.notes += result.notes
    for res in result.stores:
        store = res.store
        rebuild = _median(res.rebuild_rates)
        target = projections_bench.TARGET_REBUILD_POSTGRES
        report.add(
            Row("projections", "worklists rebuild events/s", store, rebuild, "events/s",
                res.rebuild_rates, "bulk read", _median(res.bulk_read_rates)),
            _at_least(rebuild, target, f">= {target:,.0f}/s") if store == "postgres" else None,
        )  # fmt: skip
        share = projections_bench.TARGET_REBUILD_OVER_BULK_READ
        report.add(
            Row("projections", "rebuild / bulk read (same run)", store,
                res.rebuild_over_bulk_read, "x", [res.rebuild_over_bulk_read], "target", share),
            _at_least(res.rebuild_over_bulk_read, share, f">= {share:.1f}x bulk read"),
        )  # fmt: skip
        if res.alone_rates:
            slowest, alone = res.slowest_alone
            report.add(
                Row("projections", f"slowest worklist rebuilt on its own ({slowest})", store,
                    alone, "events/s", res.alone_rates[slowest], "bulk read",
                    _median(res.bulk_read_rates)),
                _at_least(alone, target, f">= {target:,.0f}/s") if store == "postgres" else None,
            )  # fmt: skip
            report.add(
                Row("projections", "slowest worklist on its own / bulk read", store,
                    res.slowest_alone_over_bulk_read, "x", [res.slowest_alone_over_bulk_read],
                    "target", share),
                _at_least(res.slowest_alone_over_bulk_read, share, f">= {share:.1f}x bulk read"),
            )  # fmt: skip
        report.add(
            Row("projections", f"rebuild in {projections_bench.JOBS} processes", store,
                _median(res.parallel_rates), "events/s", res.parallel_rates, "bulk read",
                _median(res.bulk_read_rates)),
        )  # fmt: skip
        if len(res.rss) >= 2:
            quarter, whole = res.rss[0]["peak_rss_mib"], res.rss[-1]["peak_rss_mib"]
            report.add(
                Row("projections", "peak RSS of a rebuild, whole log", store, whole, "MiB",
                    [whole], "at 1/4 of the log", quarter),
                _at_most(whole, quarter * 1.25 + 10, "flat (<= 1/4-log x 1.25)"),
            )  # fmt: skip
        if res.lag is not None:
            report.add(
                Row("projections", f"catch-up lag p99 at {config.rate:.0f} cmd/s", store,
                    res.lag.p99_seconds * 1000, "ms", [], "median",
                    res.lag.median_seconds * 1000),
                _at_most(res.lag.p99_seconds, 1.0, "< 1 s"),
            )  # fmt: skip


# ------------------------------------------- 3. worklist pages at 100k open procedures


def fill_open_procedures(service: AkteService, procedures: int, assignees: int = 20) -> None:
    """Case files with two open procedures each, one of them assigned, saved in bulk
    (``Application.save`` of real domain events, no commands)."""
    start = datetime(2024, 1, 2, 8, 0, tzinfo=UTC)
    batch: list[CaseFile] = []
    for n in range(procedures // 2):
        at = start + timedelta(minutes=n)
        act = Act(by="sb-01", at=at, recorded_at=at)
        case = CaseFile.open(
            case_id=uuid.uuid4(), office_id=OFFICE, reference=f"2024-W{n:07d}",
            master_data=MASTER_DATA, act=act,
        )  # fmt: skip
        for k in range(2):
            number = case.receive_procedure(
                channel="mail", topic="extend_residence_permit", legal_basis=None, act=act
            )
            if k == 0:
                case.assign_procedure(
                    procedure_number=number, assignee=f"sb-{n % assignees:02d}", act=act
                )
        batch.append(case)
        if len(batch) == 1000:
            service.save(*batch)
            batch = []
    if batch:
        service.save(*batch)


def _page_reads(settings: Settings, reads: int) -> dict[str, list[float]]:
    """Latency (ms) of a first page of unassigned procedures, a page 10 deep, and a
    caseworker's own list, interleaved."""
    views = open_views_store(settings)
    today = date(2025, 1, 1)
    timings: dict[str, list[float]] = {"unassigned": [], "deep": [], "mine": []}
    try:
        page = unassigned_procedures(views, today=today, office_id=OFFICE, limit=50)
        cursor = page.next_cursor
        for _ in range(8):
            if cursor is None:
                break
            cursor = unassigned_procedures(
                views, today=today, office_id=OFFICE, limit=50, cursor=cursor
            ).next_cursor
        deep_cursor = cursor
        variants: dict[str, Callable[[int], object]] = {
            "unassigned": lambda n: unassigned_procedures(
                views, today=today, office_id=OFFICE, limit=50
            ),
            "deep": lambda n: unassigned_procedures(
                views, today=today, office_id=OFFICE, limit=50, cursor=deep_cursor
            ),
            "mine": lambda n: open_procedures_by_assignee(
                views, assignee=f"sb-{n % 20:02d}", today=today, office_id=OFFICE, limit=50
            ),
        }
        for n in range(reads):
            for name, read in variants.items():
                began = time.perf_counter()
                read(n)
                timings[name].append((time.perf_counter() - began) * 1000)
    finally:
        views.close()
    return timings


def bench_worklists(
    report: SuiteReport, sizes: Sizes, store: StoreName, pg: PostgresParams
) -> None:
    small = max(100, sizes.open_procedures // 100)
    results: dict[int, dict[str, list[float]]] = {}
    rebuild: dict[int, float] = {}
    for procedures in (small, sizes.open_procedures):
        with suite_store(store, pg) as settings:
            settings = settings.model_copy(update={"snapshot_interval": 0})
            service = build_service(settings)
            try:
                _say(f"{store}: filling {procedures:,} open procedures")
                fill_open_procedures(service, procedures)
                _say(f"{store}: building the worklists")
                rebuild[procedures] = projections_bench.rebuild_rate(settings, service)
            finally:
                service.close()
            _say(f"{store}: worklist page reads at {procedures:,} open procedures")
            results[procedures] = _page_reads(settings, 40 * sizes.repeats)
    big, base = results[sizes.open_procedures], results[small]
    labels = {
        "unassigned": "worklist first page (unassigned, 50)",
        "deep": "worklist page 10 deep (cursor)",
        "mine": "worklist 'my open procedures' page",
    }
    for key, label in labels.items():
        p99 = percentile(big[key], 0.99)
        report.add(
            Row("worklists", f"{label} p99 at {sizes.open_procedures:,} open", store, p99, "ms",
                [], f"at {small:,} open", percentile(base[key], 0.99)),
            _at_most(p99, 50, "< 50 ms") if store == "postgres" else None,
        )  # fmt: skip
        report.add(
            Row("worklists", f"{label} p50 at {sizes.open_procedures:,} open", store,
                percentile(big[key], 0.5), "ms", [], f"at {small:,} open",
                percentile(base[key], 0.5)),
        )  # fmt: skip
    report.notes.append(
        f"{store}: worklists built at {rebuild[sizes.open_procedures]:,.0f} events/s "
        f"for {sizes.open_procedures:,} open procedures"
    )


# ------------------------------------------------- 4. report, history, audit (reused)


def bench_report(
    report: SuiteReport, sizes: Sizes, stores: Sequence[StoreName], pg: PostgresParams
) -> None:
    _say("yearly report at 1 and 10 simulated years (benchmarks/report.py)")
    config = report_bench.ReportBenchConfig(
        stores=tuple(stores), scale=sizes.report_scale, repeats=sizes.repeats, progress=False
    )
    result = report_bench.run(config)
    report.notes += result.notes
    for store in stores:
        try:
            ten = result.figure(f"{store}.report_{config.years}y")
            one = result.figure(f"{store}.report_1y")
        except StopIteration:
            continue
        report.add(
            Row("report", f"yearly report at {config.years} years", store, ten.median, "ms",
                list(ten.samples), "at 1 year", one.median),
            _at_most(ten.median, 50, "< 50 ms") if store == "postgres" else None,
        )  # fmt: skip


def bench_history(
    report: SuiteReport, sizes: Sizes, stores: Sequence[StoreName], pg: PostgresParams
) -> None:
    _say(f"history of a {sizes.history_events:,}-event case file (benchmarks/history.py)")
    config = history_bench.HistoryBenchConfig(
        stores=tuple(stores),
        events=sizes.history_events,
        repeats=sizes.repeats,
        loads_per_repeat=sizes.history_loads,
        postgres=pg,
        progress=False,
    )
    result = history_bench.run(config)
    report.notes += result.notes
    for store in stores:
        figures = {f.key.rsplit(".", 1)[1]: f for f in result.figures if f".{store}." in f.key}
        if not figures:
            continue
        replay = figures["full_replay"].median
        whole = f"case history, all {sizes.history_events:,} entries (JSON)"
        for key, label in (
            ("history_json", f"{whole}, nothing kept anywhere"),
            ("history_json_kept", f"{whole}, kept sealed from an earlier request"),
            (
                "history_json_new_process",
                f"{whole}, a new process: kept in the store, {SHELF_STEP - 1} written since",
            ),
            (
                "history_json_kept_behind",
                f"{whole}, kept, {history_bench.KEPT_BEHIND} written since",
            ),
            ("history_page", "case history, first page"),
            ("as_of", "case state as of a time"),
        ):
            figure = figures[key]
            report.add(
                Row("history", label, store, figure.median, "ms", list(figure.samples),
                    "full replay", replay),
                (_at_most(figure.median, 25, "< 25 ms") if key.startswith("history_json")
                 else _at_most(figure.median, 50, "< 50 ms")) if store == "postgres" else None,
            )  # fmt: skip


def bench_audit(
    report: SuiteReport, sizes: Sizes, stores: Sequence[StoreName], pg: PostgresParams
) -> None:
    _say(f"audit verify over {sizes.audit_events:,} events (benchmarks/audit.py)")
    config = audit_bench.Config(
        stores=tuple(stores),
        events=sizes.audit_events,
        repeats=sizes.repeats,
        commands=max(200, sizes.commands // 2),
        postgres=pg,
        progress=False,
    )
    results, notes = audit_bench.run(config)
    report.notes += notes
    for res in results:
        verify = _median(res.verify_events_per_second)
        report.add(
            Row("audit", "audit verify events/s", res.store, verify, "events/s",
                res.verify_events_per_second, "writing the log", res.write_events_per_second),
        )  # fmt: skip
        if len(res.probes) >= 2:
            report.add(
                Row("audit", "peak RSS of verify, whole log", res.store,
                    res.probes[-1]["peak_rss_mib"], "MiB", [], "at 1/4 of the log",
                    res.probes[0]["peak_rss_mib"]),
            )  # fmt: skip


# ------------------------------------------------------------- 5. offices as shards


def _shard_writer(
    settings_json: str, commands: int, barrier: Barrier, results: Any, index: int
) -> None:
    """In a writer process: wait for all writers, then run the commands (core's plan)."""
    # The parent created the tables: writers starting at once must not race to run the
    # library's CREATE OR REPLACE FUNCTION ("tuple concurrently updated").
    os.environ["CREATE_TABLE"] = "false"
    settings = Settings.model_validate_json(settings_json)
    plan = command_plan(commands, 10)
    barrier.wait(timeout=120)
    began = time.time()
    run_service_commands(settings, plan, 10)
    results[index] = (began, time.time())


@dataclass(frozen=True)
class _WritersRun:
    commands_per_second: float
    began: float
    ended: float
    """Wall-clock times (``time.time()``) of the first writer's start and the last one's end."""


def _writers_at_once(settings_list: Sequence[Settings], commands: int) -> _WritersRun:
    """Commands/s of all writers together (one process each), started at once."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(settings_list))
    with ctx.Manager() as manager:
        results = manager.dict()
        processes = [
            ctx.Process(
                target=_shard_writer,
                args=(s.model_dump_json(), commands, barrier, results, n),
                daemon=True,
            )
            for n, s in enumerate(settings_list)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=600)
        times: dict[int, tuple[float, float]] = dict(results)
    if len(times) != len(settings_list):
        msg = "a shard writer failed"
        raise RuntimeError(msg)
    start = min(began for began, _ in times.values())
    end = max(ended for _, ended in times.values())
    return _WritersRun(float(commands * len(settings_list) / (end - start)), start, end)


class _EventLockWaits:
    """How many backends wait for the lock of an event table in ``schemas``, sampled from
    a connection of its own while writers run.

    The library's PostgreSQL recorder takes ``LOCK TABLE <events> IN EXCLUSIVE MODE`` in
    every insert and holds it to commit (so that notification ids are committed in order):
    writers into one schema queue behind each other's commits, writers into schemas of
    their own never do. That wait shows even where there are too few cores for separate
    schemas to buy throughput. Sampled, not traced: a rough share, not an exact sum.
    """

    INTERVAL: Final = 0.01
    QUERY: Final = (
        "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE NOT l.granted AND n.nspname = ANY(%s) AND c.relname LIKE '%%events'"
    )

    def __init__(self, pg: PostgresParams, schemas: Sequence[str]) -> None:
        self._pg = pg
        self._schemas = list(schemas)
        self._samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _EventLockWaits:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _sample(self) -> None:
        with self._pg.connect() as conn:
            conn.autocommit = True
            while not self._stop.is_set():
                row = conn.execute(self.QUERY, (self._schemas,)).fetchone()
                self._samples.append((time.time(), int(row[0]) if row else 0))
                self._stop.wait(self.INTERVAL)

    def waiting_share(self, run: _WritersRun, writers: int) -> float:
        """Percent of the writers' time in the run spent waiting for an event table lock."""
        during = [waiting for at, waiting in self._samples if run.began <= at <= run.ended]
        if not during:
            return float("nan")
        return 100 * statistics.fmean(during) / writers


def bench_shards(report: SuiteReport, sizes: Sizes, pg: PostgresParams) -> None:
    for writers in (1, 2, 4):
        sharded: list[float] = []
        shared: list[float] = []
        sharded_waits: list[float] = []
        shared_waits: list[float] = []
        for repeat in range(sizes.repeats):
            _say(f"shards: {writers} writer(s), repeat {repeat + 1}/{sizes.repeats}")
            base = f"{SCHEMA_PREFIX}{uuid.uuid4().hex[:8]}"
            offices = SHARD_OFFICES[:writers]
            with tempfile.TemporaryDirectory() as tmp:
                settings = Settings(
                    store="postgres", data_dir=Path(tmp), postgres_host=pg.host,
                    postgres_port=pg.port, postgres_user=pg.user, postgres_dbname=pg.dbname,
                    postgres_schema=base, shard_by_office=True, offices=",".join(offices),
                )  # fmt: skip
                schemas = [office_schema(settings, office) for office in offices]
                try:
                    for service in build_office_services(settings).values():
                        service.close()  # schemas and tables exist before writers start
                    per_office = [
                        settings.model_copy(update={"postgres_schema": schema})
                        for schema in schemas
                    ]
                    with _EventLockWaits(pg, schemas) as waits:
                        run = _writers_at_once(per_office, sizes.shard_commands)
                    sharded.append(run.commands_per_second)
                    sharded_waits.append(waits.waiting_share(run, writers))
                    one = per_office[0]
                    with _EventLockWaits(pg, schemas) as waits:
                        run = _writers_at_once([one] * writers, sizes.shard_commands)
                    shared.append(run.commands_per_second)
                    shared_waits.append(waits.waiting_share(run, writers))
                finally:
                    drop_schemas(pg, schemas)
        report.add(
            Row("shards", f"{writers} office(s) writing at once, own schemas", "postgres",
                _median(sharded), "cmd/s", sharded, "one shared schema", _median(shared)),
        )  # fmt: skip
        report.add(
            Row("shards", f"{writers} office(s): writer time waiting for the event table "
                "lock, own schemas", "postgres", _median(sharded_waits), "%", sharded_waits,
                "one shared schema", _median(shared_waits)),
        )  # fmt: skip


# ---------------------------------------------- HTTP against the machine's floor


def bench_http_limit(report: SuiteReport, sizes: Sizes, pg: PostgresParams) -> None:
    """Akte's HTTP write path beside a minimal ASGI app doing one INSERT + COMMIT (the
    floor of this machine), same clients, same run (``benchmarks/http_limit.py``)."""
    _say("postgres: HTTP write path against a minimal app's INSERT + COMMIT")
    config = http_limit_bench.LimitConfig(
        concurrency=sizes.http_clients,
        requests=sizes.http_requests,
        repeats=min(sizes.repeats, 3),
        profile_requests=0,
        postgres=pg,
        progress=False,
    )
    result = http_limit_bench.run(config)
    floor, bare_http, akte = (result.rows[k] for k in ("floor_db", "floor_http", "akte"))
    section = "http-limit"
    report.add(
        Row(section, "floor: minimal ASGI app, INSERT + COMMIT, commands/s", "postgres",
            floor.rate, "cmd/s", [r.rate for r in result.samples["floor_db"]],
            "no database", bare_http.rate),
    )  # fmt: skip
    report.add(
        Row(section, "Akte POST notes, commands/s", "postgres", akte.rate, "cmd/s",
            [r.rate for r in result.samples["akte"]], "floor", floor.rate),
        _at_least(akte.rate, 500, f">= 500/s ({result.share_of_floor:.0%} of floor)"),
    )  # fmt: skip
    report.add(
        Row(section, "Akte POST notes, p99", "postgres", akte.p99_ms, "ms", [],
            "floor", floor.p99_ms),
        _at_most(akte.p99_ms, 50, "< 50 ms"),
    )  # fmt: skip
    report.add(
        Row(section, "Akte POST notes, API CPU per command", "postgres",
            akte.server_cpu_ms or float("nan"), "ms", [], "floor", floor.server_cpu_ms),
    )  # fmt: skip


# ------------------------------------------------ 8. bulk simulation and scan import


def _commits_per_second(pg: PostgresParams, seconds: float = 2.0) -> float:
    """Durable one-row commits per second on this server (a table of its own, dropped):
    what a command written alone pays besides its own work, and so what writing
    commands in groups can save at most. A machine with a fast ``fdatasync`` gains
    little from groups."""
    schema = f"{SCHEMA_PREFIX}commits_{uuid.uuid4().hex[:8]}"
    table = sql.Identifier(schema, "one_row")
    with pg.connect() as conn:
        conn.autocommit = True
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            conn.execute(sql.SQL("CREATE TABLE {} (n integer)").format(table))
            insert = sql.SQL("INSERT INTO {} VALUES (%s)").format(table)
            done = 0
            started = time.perf_counter()
            while (elapsed := time.perf_counter() - started) < seconds:
                conn.execute(insert, (done,))  # autocommit: one commit, one WAL flush
                done += 1
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return done / elapsed


def bench_bulk(report: SuiteReport, sizes: Sizes, pg: PostgresParams) -> None:
    """Point 7 of issue 25: the simulator and the scan import on PostgreSQL, their
    commands written in groups, beside one transaction each (the code path before);
    the scan import also beside what its bytes alone allow (plain, and hashed and
    sealed as the document store must)."""
    _say("this machine's commits/s: one-row INSERT + COMMIT in a loop")
    commits = [_commits_per_second(pg) for _ in range(sizes.repeats)]
    report.add(
        Row("bulk", "one-row INSERT + COMMIT per second (what grouping saves)", "postgres",
            _median(commits), "/s", commits),
    )  # fmt: skip
    _say(f"office year at scale {sizes.simulation_scale}, grouped and not (grouped_simulation)")
    simulated = grouped_simulation.run(
        grouped_simulation.Config(
            stores=("postgres",),
            scale=sizes.simulation_scale,
            repeats=sizes.repeats,
            postgres=pg,
            progress=False,
        )
    )
    report.notes += simulated.notes
    alone = [r.commands_per_second for r in simulated.runs if r.group_events == 1]
    grouped = [r.commands_per_second for r in simulated.runs if r.group_events != 1]
    if alone and grouped:
        ratio = _median(grouped) / _median(alone)
        report.add(
            Row("bulk", "simulator commands/s, grouped", "postgres", _median(grouped),
                "/s", grouped, "one commit per command", _median(alone)),
        )  # fmt: skip
        report.add(
            Row("bulk", "simulator grouped vs one commit per command", "postgres", ratio,
                "x", [], "", None),
            _at_least(ratio, 5, ">= 5x"),
        )  # fmt: skip
    _say(f"scan import of {sizes.import_folders} legacy files, grouped and not (scan_import)")
    imported = scan_import.run(
        scan_import.ImportBenchConfig(
            folders=sizes.import_folders,
            stores=("postgres",),
            repeats=sizes.repeats,
            postgres=pg,
            progress=False,
        )
    )
    report.notes += imported.notes
    one_each = [r.seconds for r in imported.runs if r.group_events == 1]
    in_groups = [r.seconds for r in imported.runs if r.group_events != 1]
    if not (one_each and in_groups):
        return
    files = [r.folders_per_second for r in imported.runs if r.group_events != 1]
    files_alone = [r.folders_per_second for r in imported.runs if r.group_events == 1]
    report.add(
        Row("bulk", "scan import legacy files/s, grouped", "postgres", _median(files), "/s",
            files, "one transaction per file", _median(files_alone)),
    )  # fmt: skip
    ratio = _median(one_each) / _median(in_groups)
    report.add(
        Row("bulk", "scan import grouped vs one transaction per file", "postgres", ratio,
            "x", [], "", None),
        _at_least(ratio, 5, ">= 5x"),
    )  # fmt: skip
    for sealed, label in (
        (False, "at most, the plain COPY of its bytes"),
        (True, "at most, its bytes hashed, sealed and copied"),
    ):
        bounds = [b.seconds for b in imported.bounds if b.sealed == sealed]
        if bounds:
            report.add(
                Row("bulk", f"scan import vs one transaction per file {label}", "postgres",
                    _median(one_each) / _median(bounds), "x", [], "", None),
            )  # fmt: skip


# ------------------------------------------------------------------ the run


def run(
    quick: bool, stores: Sequence[StoreName], sections: Sequence[str], pg: PostgresParams
) -> SuiteReport:
    sizes = QUICK if quick else FULL
    server, problem = postgres_server_version(pg)
    if problem is not None and "postgres" in stores:
        stores = [s for s in stores if s != "postgres"]
    report = SuiteReport(quick=quick, stores=list(stores))
    if problem is not None:
        report.notes.append(f"PostgreSQL rows skipped: {problem}")
    report.machine = asdict(machine_info(server))
    report.load_average.append(_load_average())
    started = time.perf_counter()
    for section in sections:
        if section == "commands":
            for store in stores:
                bench_commands(report, sizes, store, pg)
        elif section == "projections":
            bench_projections(report, sizes, stores, pg)
        elif section == "worklists":
            for store in stores:
                bench_worklists(report, sizes, store, pg)
        elif section == "report":
            bench_report(report, sizes, stores, pg)
        elif section == "history":
            bench_history(report, sizes, stores, pg)
        elif section == "audit":
            bench_audit(report, sizes, stores, pg)
        elif section == "shards" and "postgres" in stores:
            bench_shards(report, sizes, pg)
        elif section == "http-limit" and "postgres" in stores:
            bench_http_limit(report, sizes, pg)
        elif section == "bulk" and "postgres" in stores:
            bench_bulk(report, sizes, pg)
        report.load_average.append(_load_average())
    report.seconds = time.perf_counter() - started
    return report


def format_table(report: SuiteReport) -> str:
    """The figures as a Markdown table (the performance page's and the terminal's)."""
    lines = [
        "| section | figure | store | median | baseline (same run) | target | |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for row in report.rows:
        lines.append(
            f"| {row.section} | {row.label} | {row.store} | {row.cell()} | "
            f"{row.baseline_cell()} | {row.target} | {row.status()} |"
        )
    return "\n".join(lines)


def format_report(report: SuiteReport, command: str) -> str:
    machine = report.machine
    load = ", ".join(f"{x:.1f}" for x in report.load_average)
    header = [
        f"Machine: {machine.get('nproc')} cores ({machine.get('cpu_model')}), "
        f"{machine.get('python')}, PostgreSQL {machine.get('postgres_server') or '-'}; "
        f"1-minute load average during the run {load} (the suite itself makes about 1-2 "
        f"on {machine.get('nproc')} cores; more means other work shared the machine, and "
        f"the figures are then lower bounds of what it does alone).",
        f"Command: `{command}` ({'quick sizes' if report.quick else 'full sizes'}, "
        f"{report.seconds / 60:.0f} min, {datetime.now(tz=UTC):%Y-%m-%d}).",
        "",
        format_table(report),
    ]
    if report.notes:
        header += ["", *(f"- {note}" for note in report.notes)]
    return "\n".join(header)


def to_json(report: SuiteReport) -> dict[str, Any]:
    return {
        "quick": report.quick,
        "stores": report.stores,
        "seconds": round(report.seconds, 1),
        "machine": report.machine,
        "load_average": report.load_average,
        "python": platform.python_version(),
        "rows": [asdict(row) | {"status": row.status()} for row in report.rows],
        "notes": report.notes,
    }


def write_readme(text: str, readme: Path = README) -> None:
    """Replace what stands between the markers of the docs' performance page."""
    content = readme.read_text()
    begin, end = content.find(BEGIN_MARK), content.find(END_MARK)
    if begin < 0 or end < begin:
        msg = f"{readme} has no {BEGIN_MARK} ... {END_MARK} markers"
        raise SystemExit(msg)
    updated = content[: begin + len(BEGIN_MARK)] + "\n" + text + "\n" + content[end:]
    readme.write_text(updated)


def _sections(text: str) -> list[str]:
    chosen = [s for s in text.split(",") if s]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        msg = f"unknown section(s) {sorted(unknown)}; known: {', '.join(SECTIONS)}"
        raise argparse.ArgumentTypeError(msg)
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-all", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for iteration")
    parser.add_argument(
        "--stores", type=lambda text: list(store_names(text)), default=["sqlite", "postgres"]
    )
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS))
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument(
        "--readme", action="store_true", help="write the table into docs/performance/index.md"
    )
    args = parser.parse_args(argv)
    report = run(args.quick, args.stores, args.sections, PostgresParams())
    command = "bin/bench-all" + (" --quick" if args.quick else "")
    text = format_report(report, command)
    print(text)
    if args.json is not None:
        write_json(args.json, to_json(report))
    if args.readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
