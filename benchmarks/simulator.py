"""The office-year simulator's throughput: commands/s and events/s per store.

Run ``bin/bench-simulator`` (or ``python -m benchmarks.simulator``) from the repository
root::

    bin/bench-simulator [--scale 0.1] [--years 1] [--stores sqlite,postgres] [--repeats 3]
                        [--json OUT] [--tmp-dir DIR]

Each repeat simulates the same seeded year(s) into a fresh store (a SQLite file in a
temporary directory, or a PostgreSQL schema dropped afterwards) through the service, as
``akte simulate`` does, and times it end to end: planning, every command with its own
transaction, the ground truth. Reported are medians over the repeats with their spread,
never single timings, and whether every target figure was met. Every command is one
transaction, so on SQLite the disk's flush latency (fsync of the WAL) sets the pace:
``--tmp-dir /dev/shm`` shows what the simulator and the service cost without it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Final

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.simulation.profile import load_profile
from adapters.simulation.simulator import simulate, suggested_case_cache
from adapters.simulation.tally import achieved
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

DEFAULT_SEED: Final = 2024
DEFAULT_YEAR: Final = 2024


@dataclass(frozen=True)
class Config:
    stores: tuple[StoreName, ...] = STORES
    scale: float = 0.1
    years: int = 1
    year: int = DEFAULT_YEAR
    seed: int = DEFAULT_SEED
    repeats: int = 3
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class Run:
    commands: int
    events: int
    case_files: int
    seconds: float
    targets_met: bool
    load_average: tuple[float, float]
    """1-minute load average before and after: other work on the machine skews figures."""

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds


@dataclass
class StoreResult:
    store: StoreName
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(float(getattr(run, attribute)) for run in self.runs)

    def spread(self, attribute: str) -> tuple[float, float]:
        values = [float(getattr(run, attribute)) for run in self.runs]
        return min(values), max(values)


@dataclass
class SimulatorReport:
    machine: Machine
    parameters: dict[str, Any]
    stores: list[StoreResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _say(config: Config, message: str) -> None:
    if config.progress:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def one_run(config: Config, store: StoreName) -> Run:
    """Simulate the configured years into a fresh store of ``store``."""
    profile = load_profile()
    bench_config = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    load_before = _load_average()
    cache = suggested_case_cache(config.scale, years=config.years)
    with fresh_store(store, bench_config) as settings:
        # As akte simulate does: the files the office keeps coming back to stay in memory.
        service = build_service(settings.model_copy(update={"case_cache_size": cache}))
        try:
            started = perf_counter()
            result = simulate(
                service,
                profile,
                seed=config.seed,
                year=config.year,
                years=config.years,
                scale=config.scale,
            )
            seconds = perf_counter() - started
        finally:
            service.close()
    met = all(achieved(result.truth[year]) == result.targets[year] for year in result.years)
    return Run(
        commands=result.commands,
        events=result.events,
        case_files=result.case_files,
        seconds=seconds,
        targets_met=met,
        load_average=(load_before, _load_average()),
    )


def run(config: Config) -> SimulatorReport:
    started = perf_counter()
    server, problem = postgres_server_version(config.postgres)
    report = SimulatorReport(
        machine=machine_info(server),
        parameters={
            "stores": list(config.stores),
            "scale": config.scale,
            "years": config.years,
            "first_year": config.year,
            "seed": config.seed,
            "repeats": config.repeats,
            "tmp_dir": str(config.tmp_root) if config.tmp_root else None,
        },
    )
    for store in config.stores:
        if store == "postgres" and problem is not None:
            report.notes.append(f"PostgreSQL rows skipped: {problem}")
            continue
        result = StoreResult(store)
        for repeat in range(config.repeats):
            _say(config, f"{store}: simulating, repeat {repeat + 1}/{config.repeats}")
            result.runs.append(one_run(config, store))
            last = result.runs[-1]
            _say(
                config,
                f"{store}: {last.commands:,} commands in {last.seconds:,.1f} s "
                f"({last.commands_per_second:,.0f} commands/s, "
                f"{last.events_per_second:,.0f} events/s)",
            )
        report.stores.append(result)
    report.seconds = perf_counter() - started
    return report


def format_report(report: SimulatorReport) -> str:
    m = report.machine
    p = report.parameters
    lines = [
        "Akte simulator benchmark",
        f"machine: {m.cpu_model}, {m.nproc} CPUs; {m.python}; {m.platform}",
        "libraries: "
        + ", ".join(f"{k} {v}" for k, v in m.libraries.items())
        + (f", PostgreSQL server {m.postgres_server}" if m.postgres_server else ""),
        f"parameters: scale={p['scale']:g} years={p['years']} from {p['first_year']} "
        f"seed={p['seed']} repeats={p['repeats']}"
        + (f" tmp-dir={p['tmp_dir']}" if p["tmp_dir"] else ""),
    ]
    for result in report.stores:
        first = result.runs[0]
        low, high = result.spread("seconds")
        lines += [
            "",
            f"{result.store}: {first.commands:,} commands, {first.events:,} events, "
            f"{first.case_files:,} case files per run",
            f"  time per run                {result.median('seconds'):>10,.1f} s "
            f"({low:,.1f}..{high:,.1f}, n={len(result.runs)})",
        ]
        for label, attribute, unit in (
            ("commands", "commands_per_second", "commands/s"),
            ("events", "events_per_second", "events/s"),
        ):
            low, high = result.spread(attribute)
            lines.append(
                f"  {label:<27} {result.median(attribute):>10,.0f} {unit} ({low:,.0f}..{high:,.0f})"
            )
        met = all(run.targets_met for run in result.runs)
        loads = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in (r.load_average for r in result.runs))
        lines += [
            f"  targets met in every run    {'yes' if met else 'NO'}",
            f"  load average before/after   {loads}",
        ]
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def to_json(report: SimulatorReport) -> dict[str, Any]:
    return {
        "machine": asdict(report.machine),
        "parameters": report.parameters,
        "seconds": round(report.seconds, 1),
        "stores": [
            {
                "store": result.store,
                "commands": result.runs[0].commands,
                "events": result.runs[0].events,
                "case_files": result.runs[0].case_files,
                "median_seconds": result.median("seconds"),
                "median_commands_per_second": result.median("commands_per_second"),
                "median_events_per_second": result.median("events_per_second"),
                "commands_per_second": [run.commands_per_second for run in result.runs],
                "events_per_second": [run.events_per_second for run in result.runs],
                "seconds": [run.seconds for run in result.runs],
                "targets_met": all(run.targets_met for run in result.runs),
                "load_average": [list(run.load_average) for run in result.runs],
            }
            for result in report.stores
        ],
        "notes": report.notes,
    }


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None]:
    defaults = Config()
    parser = argparse.ArgumentParser(
        prog="bench-simulator", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument("--scale", type=float, default=defaults.scale)
    parser.add_argument("--years", type=positive_int, default=defaults.years)
    parser.add_argument("--year", type=int, default=defaults.year, help="the first year")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--tmp-dir", type=Path, help="where SQLite stores go")
    add_postgres_arguments(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = parser.parse_args(argv)
    config = Config(
        stores=tuple(store for store in STORES if store in args.stores),  # in STORES order
        scale=args.scale,
        years=args.years,
        year=args.year,
        seed=args.seed,
        repeats=args.repeats,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    return config, args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, json_path = parse_args(argv)
    report = run(config)
    print(format_report(report))
    if json_path is not None:
        write_json(json_path, to_json(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
