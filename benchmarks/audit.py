"""Tamper-evidence benchmark: what the hash chain costs writers, how fast verify reads.

Run ``bin/bench-audit`` (or ``python -m benchmarks.audit``) from the repository root::

    bin/bench-audit [--events 1000000] [--stores sqlite,postgres] [--repeats 3]
                    [--commands 2000] [--json OUT]

Per store:

1. write cost: commands/s through the service and through the library's bare
   ``Application.save``, each with the chained recorder (as deployed) and with the
   library's own recorder, on two fresh stores open side by side; the same commands run
   in alternating blocks of 50 (A, B, B, A ...), so that load from other work on the
   machine hits both alike; ``--repeats`` times; medians of the repeats' rates, and the
   median over all blocks of the ratio chained/unchained;
2. a log of ``--events`` events (the projection benchmark's realistic case files,
   ``service.save`` in transactions of 5,000 events, chained as they are written); at a
   quarter and at the whole log, ``akte audit verify`` in a fresh process: events/s and
   its peak RSS (memory must not grow with the log);
3. verify over the whole log ``--repeats`` times in this process, alternately as deployed
   (on PostgreSQL the server recomputes the links, see ``verify_chains``) and with every
   link recomputed in Python (``server_digests=False``, the previous code path): events/s
   of each, medians, the median ratio of the alternating pairs, and CPU seconds per event
   of this process and, where PostgreSQL runs on this machine, of its server processes
   serving the verify; then the target line (100,000 events/s on PostgreSQL).

The unchained service is built exactly as the composition root builds it, minus the
recorder topic (:func:`_unchained`); nothing in the deployment can switch the chain off.
Not part of the test suite; the figures live in ``docs/performance/audit.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any, Final, Protocol

from eventsourcing.postgres import PostgresDatastore

import adapters.bootstrap
from adapters.bootstrap import build_service, library_env
from adapters.cli.support import positive_int
from adapters.settings import Settings
from adapters.store.hash_chain import ChainSource, verify_chains
from benchmarks.harness import (
    BY,
    LEGAL_BASIS,
    MASTER_DATA,
    OFFICE_ID,
    STORES,
    TOPIC,
    BareApplication,
    BenchConfig,
    PostgresParams,
    Step,
    StoreName,
    add_postgres_arguments,
    command_plan,
    fresh_store,
    machine_info,
    open_in_memory,
    postgres_from,
    postgres_server_version,
    store_names,
    write_json,
)
from benchmarks.projections import settings_env, write_log
from domain.acts import Act
from service import AkteService

ROOT: Final = Path(__file__).resolve().parents[1]
TARGET_EVENTS_PER_SECOND: Final = 100_000
"""Issue 25, point 5a: ``akte audit verify`` on PostgreSQL."""
CASES: Final = 20
BLOCK: Final = 50
"""Commands per block: chained and unchained alternate block by block."""


@dataclass(frozen=True)
class Config:
    stores: tuple[StoreName, ...] = STORES
    events: int = 1_000_000
    repeats: int = 3
    commands: int = 2000
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True


@dataclass
class StoreResult:
    store: str
    commands: int
    service_chained: list[float] = field(default_factory=list)
    service_unchained: list[float] = field(default_factory=list)
    bare_chained: list[float] = field(default_factory=list)
    bare_unchained: list[float] = field(default_factory=list)
    service_block_ratios: list[float] = field(default_factory=list)
    """unchained seconds / chained seconds of each block: chained/unchained throughput."""
    bare_block_ratios: list[float] = field(default_factory=list)
    events: int = 0
    write_events_per_second: float = 0.0
    probes: list[dict[str, float]] = field(default_factory=list)
    verify_events_per_second: list[float] = field(default_factory=list)
    """As deployed (on PostgreSQL: the server's digests)."""
    verify_python_events_per_second: list[float] = field(default_factory=list)
    """Every link recomputed in Python (the previous code path)."""
    verify_pair_ratios: list[float] = field(default_factory=list)
    """Deployed rate / Python rate of each alternating pair."""
    verify_cpu_us_per_event: list[float] = field(default_factory=list)
    verify_python_cpu_us_per_event: list[float] = field(default_factory=list)
    verify_server_cpu_us_per_event: list[float] = field(default_factory=list)
    """The server processes' CPU (PostgreSQL on this machine only; empty otherwise)."""
    verify_python_server_cpu_us_per_event: list[float] = field(default_factory=list)
    checked_on_server: bool = False
    load_average: list[float] = field(default_factory=list)
    """The 1-minute load average at each verify of step 3."""

    @property
    def service_ratio(self) -> float:
        return statistics.median(self.service_block_ratios)

    @property
    def bare_ratio(self) -> float:
        return statistics.median(self.bare_block_ratios)


@contextmanager
def _unchained() -> Iterator[None]:
    """The composition root with the library's own recorder instead of the chained one."""
    original = adapters.bootstrap.library_env

    def without_chain(settings: Settings) -> dict[str, str]:
        env = original(settings)
        del env["APPLICATION_RECORDER_TOPIC"]
        return env

    # build_service looks the function up in its module at each call.
    vars(adapters.bootstrap)["library_env"] = without_chain
    try:
        yield
    finally:
        vars(adapters.bootstrap)["library_env"] = original


class _Writer(Protocol):
    def __call__(self, step: Step, n: int) -> None: ...


def _service_writer(service: AkteService) -> _Writer:
    cases = [
        service.open_case(office_id=OFFICE_ID, master_data=MASTER_DATA, by=BY) for _ in range(CASES)
    ]
    ids = [opened.case_id for opened in cases]
    versions = [opened.version for opened in cases]

    def write(step: Step, n: int) -> None:
        case_id, version = ids[step.case], versions[step.case]
        if step.op == "note":
            version = service.add_note(
                case_id, expected_version=version, by=BY, text=_text(n)
            ).version
        elif step.op == "receive":
            version = service.receive_procedure(
                case_id,
                expected_version=version,
                by=BY,
                channel="online_application",
                topic=TOPIC,
                legal_basis=LEGAL_BASIS,
            ).version
        else:
            version = service.assign_procedure(
                case_id,
                expected_version=version,
                by=BY,
                procedure_number=step.procedure_number,
                assignee=step.assignee,
            ).version
        versions[step.case] = version

    return write


def _bare_writer(app: BareApplication) -> _Writer:
    aggregates = []
    for _ in range(CASES):
        now = datetime.now(tz=UTC)
        case, claim = open_in_memory(Act(by=BY, at=now, recorded_at=now))
        app.save(case, claim)
        aggregates.append(case)

    def write(step: Step, n: int) -> None:
        case = aggregates[step.case]
        now = datetime.now(tz=UTC)
        act = Act(by=BY, at=now, recorded_at=now)
        if step.op == "note":
            case.add_note(text=_text(n), act=act)
        elif step.op == "receive":
            case.receive_procedure(
                channel="online_application", topic=TOPIC, legal_basis=LEGAL_BASIS, act=act
            )
        else:
            case.assign_procedure(
                procedure_number=step.procedure_number, assignee=step.assignee, act=act
            )
        app.save(case)

    return write


def _text(n: int) -> str:
    return f"Vorsprache am Schalter ({n}): Reisepass und Meldebescheinigung vorgelegt."


def _interleaved(
    config: Config, chained: _Writer, unchained: _Writer
) -> tuple[float, float, list[float]]:
    """Commands/s of each, running the same plan in alternating blocks; per-block ratios."""
    plan = command_plan(config.commands, CASES)
    seconds = {True: 0.0, False: 0.0}
    ratios = []
    for block, start in enumerate(range(0, len(plan), BLOCK)):
        steps = plan[start : start + BLOCK]
        taken = {}
        # Alternate which goes first, so that drift within a block hits both alike.
        for is_chained in (True, False) if block % 2 == 0 else (False, True):
            write = chained if is_chained else unchained
            began = perf_counter()
            for offset, step in enumerate(steps):
                write(step, start + offset)
            taken[is_chained] = perf_counter() - began
            seconds[is_chained] += taken[is_chained]
        ratios.append(taken[False] / taken[True])
    return config.commands / seconds[True], config.commands / seconds[False], ratios


def measure_write_cost(store: StoreName, config: Config, result: StoreResult) -> None:
    bench = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    for repeat in range(config.repeats):
        _say(config, f"{store}: write cost, repeat {repeat + 1}/{config.repeats}")
        with fresh_store(store, bench) as one, fresh_store(store, bench) as other:
            chained_service = build_service(one)
            with _unchained():
                plain_service = build_service(other)
            try:
                rates = _interleaved(
                    config, _service_writer(chained_service), _service_writer(plain_service)
                )
            finally:
                chained_service.close()
                plain_service.close()
            result.service_chained.append(rates[0])
            result.service_unchained.append(rates[1])
            result.service_block_ratios.extend(rates[2])
        with fresh_store(store, bench) as one, fresh_store(store, bench) as other:
            plain_env = library_env(other)
            del plain_env["APPLICATION_RECORDER_TOPIC"]
            chained_app = BareApplication(library_env(one))
            plain_app = BareApplication(plain_env)
            try:
                rates = _interleaved(config, _bare_writer(chained_app), _bare_writer(plain_app))
            finally:
                chained_app.close()
                plain_app.close()
            result.bare_chained.append(rates[0])
            result.bare_unchained.append(rates[1])
            result.bare_block_ratios.extend(rates[2])


def measure_verify(store: StoreName, config: Config, result: StoreResult) -> None:
    bench = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    with fresh_store(store, bench, snapshot_interval=0) as settings:
        service = build_service(settings)
        try:
            started = perf_counter()
            written = 0
            for until in (config.events // 4, config.events):
                _say(config, f"{store}: writing the log up to {until:,} events")
                written += write_log(service, until - written, seed=written + 1)
                result.probes.append(verify_in_fresh_process(settings))
            result.events = written
            result.write_events_per_second = written / (perf_counter() - started)
            source: ChainSource = service.recorder  # type: ignore[assignment]
            for repeat in range(config.repeats):
                _say(config, f"{store}: verify, repeat {repeat + 1}/{config.repeats}")
                # Alternate which goes first, so that drift hits both alike.
                order = (True, False) if repeat % 2 == 0 else (False, True)
                rates = {}
                for server_digests in order:
                    result.load_average.append(os.getloadavg()[0])
                    rate, cpu, server_cpu, on_server = _timed_verify(source, server_digests)
                    rates[server_digests] = rate
                    if server_digests:
                        result.verify_events_per_second.append(rate)
                        result.verify_cpu_us_per_event.append(cpu)
                        result.checked_on_server = on_server
                        if server_cpu is not None:
                            result.verify_server_cpu_us_per_event.append(server_cpu)
                    else:
                        result.verify_python_events_per_second.append(rate)
                        result.verify_python_cpu_us_per_event.append(cpu)
                        if server_cpu is not None:
                            result.verify_python_server_cpu_us_per_event.append(server_cpu)
                result.verify_pair_ratios.append(rates[True] / rates[False])
        finally:
            service.close()


def _timed_verify(
    source: ChainSource, server_digests: bool
) -> tuple[float, float, float | None, bool]:
    """events/s, this process's CPU µs per event, the server's (or ``None``), and whether
    the server's digests were used."""
    backends = _server_cpu_seconds(source)
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    report = verify_chains(source, server_digests=server_digests)
    after = resource.getrusage(resource.RUSAGE_SELF)
    if not report.ok:
        msg = f"the benchmark's log does not verify: {report.first}"
        raise RuntimeError(msg)
    backends_after = _server_cpu_seconds(source)
    events = max(report.events, 1)
    cpu_seconds = (after.ru_utime - cpu.ru_utime) + (after.ru_stime - cpu.ru_stime)
    server = None
    if backends is not None and backends_after is not None:
        # Connections the verify opened count from zero.
        spent = sum(t - backends.get(pid, 0.0) for pid, t in backends_after.items())
        server = spent / events * 1e6
    return report.events_per_second, cpu_seconds / events * 1e6, server, report.checked_on_server


def _server_cpu_seconds(source: object) -> dict[int, float] | None:
    """CPU seconds of each server process behind ``source``'s connection pool, read from
    ``/proc`` (PostgreSQL on this machine only; ``None`` elsewhere or on SQLite)."""
    datastore = getattr(source, "datastore", None)
    if not isinstance(datastore, PostgresDatastore):
        return None
    connections = getattr(datastore.pool, "_pool", None)  # psycopg_pool's idle connections
    if connections is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    seconds = {}
    for conn in list(connections):
        pid = conn.info.backend_pid
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None  # not this machine's process: no figure rather than a wrong one
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
    return seconds


def verify_in_fresh_process(settings: Settings) -> dict[str, float]:
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.audit", "--child-verify"],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        lines = finished.stderr.strip().splitlines()
        raise RuntimeError(lines[-1] if lines else f"exit code {finished.returncode}")
    probe: dict[str, float] = json.loads(finished.stdout.strip().splitlines()[-1])
    return probe


def child_verify() -> None:
    """In a fresh process (``--child-verify``): verify, print rate and peak RSS as JSON."""
    service = build_service(Settings())
    try:
        source: ChainSource = service.recorder  # type: ignore[assignment]
        report = verify_chains(source)
    finally:
        service.close()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "events": report.events,
                "ok": report.ok,
                "checked_on_server": report.checked_on_server,
                "events_per_second": report.events_per_second,
                "peak_rss_mib": peak_kib / 1024,
            }
        )
    )


def run(config: Config) -> tuple[list[StoreResult], list[str]]:
    results: list[StoreResult] = []
    notes: list[str] = []
    for store in config.stores:
        if store == "postgres":
            _, problem = postgres_server_version(config.postgres)
            if problem is not None:
                notes.append(f"PostgreSQL skipped: {problem}")
                continue
        result = StoreResult(store=store, commands=config.commands)
        measure_write_cost(store, config, result)
        measure_verify(store, config, result)
        results.append(result)
    return results, notes


def format_report(results: Sequence[StoreResult], notes: Sequence[str]) -> str:
    lines = [f"{'figure':<58}" + "".join(f"{r.store:>16}" for r in results)]

    def row(label: str, values: Sequence[str]) -> None:
        lines.append(f"{label:<58}" + "".join(f"{v:>16}" for v in values))

    def med(samples: Sequence[float]) -> str:
        return f"{statistics.median(samples):,.0f}"

    row("1. service commands/s, chained", [med(r.service_chained) for r in results])
    row("   service commands/s, unchained", [med(r.service_unchained) for r in results])
    row("   service chained / unchained", [f"{r.service_ratio:.2f}x" for r in results])
    row("   bare save commands/s, chained", [med(r.bare_chained) for r in results])
    row("   bare save commands/s, unchained", [med(r.bare_unchained) for r in results])
    row("   bare save chained / unchained", [f"{r.bare_ratio:.2f}x" for r in results])
    row("2. log written (events)", [f"{r.events:,}" for r in results])
    row(
        "   write rate, service.save batches, chained (events/s)",
        [f"{r.write_events_per_second:,.0f}" for r in results],
    )
    for index, label in enumerate(("a quarter", "the whole log")):
        row(
            f"   verify in a fresh process, {label} (events/s)",
            [f"{r.probes[index]['events_per_second']:,.0f}" for r in results],
        )
        row(
            f"   peak RSS of that verify, {label} (MiB)",
            [f"{r.probes[index]['peak_rss_mib']:,.0f}" for r in results],
        )
    row(
        "   RSS at 4/4 over 1/4 of the log",
        [f"{r.probes[1]['peak_rss_mib'] / r.probes[0]['peak_rss_mib']:.2f}x" for r in results],
    )
    row(
        "3. verify the whole log (events/s, median)",
        [med(r.verify_events_per_second) for r in results],
    )
    row(
        "   ... links checked by the server",
        ["yes" if r.checked_on_server else "no" for r in results],
    )
    row(
        "   verify, every link in Python (events/s, median)",
        [med(r.verify_python_events_per_second) for r in results],
    )
    row(
        "   verify / in Python (median of alternating pairs)",
        [f"{statistics.median(r.verify_pair_ratios):.2f}x" for r in results],
    )
    row(
        "   CPU µs per event, this process: verify / in Python",
        [
            f"{statistics.median(r.verify_cpu_us_per_event):.1f} / "
            f"{statistics.median(r.verify_python_cpu_us_per_event):.1f}"
            for r in results
        ],
    )
    row(
        "   CPU µs per event, server: verify / in Python",
        [
            f"{statistics.median(r.verify_server_cpu_us_per_event):.1f} / "
            f"{statistics.median(r.verify_python_server_cpu_us_per_event):.1f}"
            if r.verify_server_cpu_us_per_event and r.verify_python_server_cpu_us_per_event
            else "-"
            for r in results
        ],
    )
    row(
        "   load average during step 3 (min..max)",
        [
            f"{min(r.load_average):.1f}..{max(r.load_average):.1f}" if r.load_average else "-"
            for r in results
        ],
    )
    lines.append(target_line(results))
    lines.extend(f"note: {note}" for note in notes)
    return "\n".join(lines)


def target_line(results: Sequence[StoreResult]) -> str:
    """Whether verify reached the issue's target on PostgreSQL (median of step 3)."""
    postgres = [r for r in results if r.store == "postgres"]
    if not postgres:
        return (
            f"target: verify >= {TARGET_EVENTS_PER_SECOND:,} events/s on PostgreSQL: not measured"
        )
    rate = statistics.median(postgres[0].verify_events_per_second)
    verdict = "MET" if rate >= TARGET_EVENTS_PER_SECOND else "MISSED"
    load = postgres[0].load_average
    at_load = f", load average {min(load):.1f}..{max(load):.1f}" if load else ""
    return (
        f"target: verify >= {TARGET_EVENTS_PER_SECOND:,} events/s on PostgreSQL: {verdict} "
        f"({rate:,.0f} events/s, median of {len(postgres[0].verify_events_per_second)}"
        f"{at_load})"
    )


def to_json(results: Sequence[StoreResult], notes: Sequence[str]) -> dict[str, Any]:
    postgres, _ = postgres_server_version(PostgresParams())
    return {
        "machine": asdict(machine_info(postgres)),
        "stores": [
            asdict(r) | {"service_ratio": r.service_ratio, "bare_ratio": r.bare_ratio}
            for r in results
        ],
        "notes": list(notes),
    }


def _say(config: Config, text: str) -> None:
    if config.progress:
        print(text, file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None, bool]:
    parser = argparse.ArgumentParser(
        prog="bin/bench-audit", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = Config()
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument("--events", type=positive_int, default=defaults.events)
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats)
    parser.add_argument("--commands", type=positive_int, default=defaults.commands)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--tmp-dir", type=Path, help="where SQLite stores go")
    add_postgres_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--child-verify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    config = Config(
        stores=args.stores,
        events=args.events,
        repeats=args.repeats,
        commands=args.commands,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    return config, args.json, args.child_verify


def main(argv: Sequence[str] | None = None) -> int:
    config, json_path, child = parse_args(argv)
    if child:
        child_verify()
        return 0
    results, notes = run(config)
    print(format_report(results, notes))
    if json_path is not None:
        write_json(json_path, to_json(results, notes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
