"""The office-year simulator with its commands written in groups, beside one commit each.

Run ``python -m benchmarks.grouped_simulation`` from the repository root::

    python -m benchmarks.grouped_simulation [--scale 0.05] [--stores sqlite,postgres]
                                            [--group-events 5000] [--repeats 1] [--json OUT]

Each repeat simulates the same seeded year into fresh stores twice, interleaved: once as
``akte simulate`` does today (every command its own transaction), once inside
``service.grouped(max_events=...)`` (:mod:`service_unit_of_work`), which writes the
same commands' events some thousand at a time. The simulator itself is unchanged: the
group is opened around the whole run. Reported: seconds, commands/s, the ratio, and
whether both runs recorded the same events (the number of each kind of event, and the
whole log's count) and met every target.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.simulation.profile import load_profile
from adapters.simulation.simulator import simulate, suggested_case_cache
from adapters.simulation.tally import achieved
from benchmarks.harness import (
    STORES,
    BenchConfig,
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
from benchmarks.simulator import DEFAULT_SEED, DEFAULT_YEAR
from service import AkteService
from service_unit_of_work import DEFAULT_GROUP_EVENTS


@dataclass(frozen=True)
class Config:
    stores: tuple[StoreName, ...] = STORES
    scale: float = 0.05
    group_events: int = DEFAULT_GROUP_EVENTS
    repeats: int = 1
    seed: int = DEFAULT_SEED
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True


@dataclass(frozen=True)
class Run:
    store: str
    group_events: int
    """1: every command its own transaction (as today)."""
    commands: int
    events: int
    case_files: int
    seconds: float
    targets_met: bool
    topics: dict[str, int]

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds


@dataclass
class Report:
    parameters: dict[str, Any]
    machine: dict[str, Any]
    runs: list[Run] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _logged_topics(service: AkteService) -> dict[str, int]:
    counts: Counter[str] = Counter()
    start = 1
    while True:
        batch = service.recorder.select_notifications(start=start, limit=10_000)
        if not batch:
            return dict(sorted(counts.items()))
        counts.update(n.topic for n in batch)
        start = batch[-1].id + 1


def one_run(config: Config, store: StoreName, group_events: int) -> Run:
    bench_config = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    cache = suggested_case_cache(config.scale, years=1)
    with fresh_store(store, bench_config) as settings:
        service = build_service(settings.model_copy(update={"case_cache_size": cache}))
        try:
            grouping: AbstractContextManager[object] = (
                service.grouped(max_events=group_events) if group_events > 1 else nullcontext()
            )
            started = perf_counter()
            with grouping:
                result = simulate(
                    service, load_profile(), seed=config.seed, year=DEFAULT_YEAR, scale=config.scale
                )
            seconds = perf_counter() - started
            topics = _logged_topics(service)
        finally:
            service.close()
    met = all(achieved(result.truth[y]) == result.targets[y] for y in result.years)
    return Run(
        store=store,
        group_events=group_events,
        commands=result.commands,
        events=result.events,
        case_files=result.case_files,
        seconds=seconds,
        targets_met=met,
        topics=topics,
    )


def run(config: Config) -> Report:
    stores = config.stores
    notes: list[str] = []
    server = None
    if "postgres" in stores:
        server, problem = postgres_server_version(config.postgres)
        if problem is not None:
            stores = tuple(store for store in stores if store != "postgres")
            notes.append(f"PostgreSQL rows SKIPPED: {problem}")
    report = Report(
        parameters={
            "scale": config.scale,
            "stores": list(stores),
            "group_events": config.group_events,
            "repeats": config.repeats,
            "seed": config.seed,
        },
        machine=asdict(machine_info(server)),
        notes=notes,
    )
    for repeat in range(config.repeats):
        for store in stores:
            for group in (1, config.group_events):  # interleaved: noise hits both alike
                if config.progress:
                    print(
                        f"simulate {repeat + 1}/{config.repeats} on {store}, "
                        f"{group} events per transaction ...",
                        file=sys.stderr,
                        flush=True,
                    )
                report.runs.append(one_run(config, store, group))
    return report


def format_report(report: Report) -> str:
    machine = report.machine
    lines = [
        "Akte simulator, one commit per command beside groups of commands",
        f"machine: {machine['cpu_model']}, {machine['nproc']} CPUs; {machine['python']}",
        f"scale {report.parameters['scale']}, seed {report.parameters['seed']}; "
        "figures: median (min..max) over the repeats",
    ]
    group = report.parameters["group_events"]
    for store in report.parameters["stores"]:
        plain = [r for r in report.runs if r.store == store and r.group_events == 1]
        grouped = [r for r in report.runs if r.store == store and r.group_events == group]
        if not plain or not grouped:
            continue
        lines.append("")
        for label, runs in (("one commit per command", plain), (f"groups of {group}", grouped)):
            seconds = [r.seconds for r in runs]
            rates = [r.commands_per_second for r in runs]
            lines.append(
                f"{store}, {label}: {statistics.median(seconds):,.1f} s "
                f"({min(seconds):,.1f}..{max(seconds):,.1f}), "
                f"{statistics.median(rates):,.0f} commands/s, "
                f"{runs[0].commands:,} commands, {runs[0].events:,} events, "
                f"targets {'met' if all(r.targets_met for r in runs) else 'MISSED'}"
            )
        ratio = statistics.median(r.seconds for r in plain) / statistics.median(
            r.seconds for r in grouped
        )
        same = all(r.topics == plain[0].topics for r in (*plain, *grouped))
        lines.append(
            f"{store}: grouped is {ratio:.2f}x as fast; "
            f"same events: {'yes' if same else 'NO'} ({sum(plain[0].topics.values()):,} logged)"
        )
    lines += [f"NOTE: {note}" for note in report.notes]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.grouped_simulation",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    defaults = Config()
    parser.add_argument("--scale", type=float, default=defaults.scale)
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument("--group-events", type=positive_int, default=defaults.group_events)
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    add_postgres_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    config = Config(
        stores=tuple(store for store in STORES if store in args.stores),
        scale=args.scale,
        group_events=args.group_events,
        repeats=args.repeats,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    report = run(config)
    print(format_report(report))
    if args.json is not None:
        write_json(
            args.json,
            {
                "parameters": report.parameters,
                "machine": report.machine,
                "runs": [asdict(r) for r in report.runs],
                "notes": report.notes,
            },
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
