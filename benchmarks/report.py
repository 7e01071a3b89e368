"""Yearly report benchmark: a year's report read at 1 and at 10 simulated years of history.

Run ``bin/bench-report`` (or ``python -m benchmarks.report``) from the repository root::

    bin/bench-report [--stores sqlite,postgres] [--scale 0.05] [--years 10]
                     [--repeats 7] [--reads 30] [--json OUT]

Per store it simulates one office year (2024) in one fresh store and ten office years
(2015-2024) in another, through the service (``adapters/simulation/simulator.py``), and catches the
statistics read model up in each. It then reads the 2024 report from both, interleaved
(1 year, 10 years, 1 year, ...), ``--repeats`` times ``--reads`` reads, and reports the
median latency of each and their ratio: a report reads totals only, so ten years of
history should cost about what one costs (target: under 50 ms median on PostgreSQL).
It also reports the simulator's throughput (commands/s, events/s) and the statistics
rebuild rate, and checks that the 2024 report reproduces the simulator's ground truth.

``--scale`` scales the profile's yearly counts (1.0: the full office of 150,000 procedures
a year, which takes a long time to simulate ten times); the report's cost depends on
the number of totals rows (months x figures x kinds), not on the scale.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any, Final

from adapters.bootstrap import build_service, open_views_store
from adapters.settings import Settings
from adapters.simulation.profile import load_profile
from adapters.simulation.simulator import simulate
from adapters.simulation.tally import SimulationResult
from adapters.views.runner import ApplicationEventLog
from benchmarks.harness import (
    STORES,
    BenchConfig,
    Figure,
    Ratio,
    Report,
    StoreName,
    fresh_store,
    machine_info,
    postgres_server_version,
    store_names,
    write_json,
)
from projections.engine import ProjectionEngine
from projections.figures import statistics as statistics_model
from projections.figures.yearly_report import YearlyReport, yearly_report
from projections.storage import ViewsStore
from service import AkteService

REPORT_YEAR: Final = 2024
OFFICE: Final = "abh-simulation"
TARGET_MS: Final = 50.0


@dataclass(frozen=True)
class ReportBenchConfig:
    stores: tuple[StoreName, ...] = STORES
    scale: float = 0.05
    years: int = 10
    repeats: int = 7
    reads: int = 30
    seed: int = 2024
    progress: bool = True


@dataclass
class _History:
    """One store holding simulated years, with its statistics read model built."""

    service: AkteService
    views: ViewsStore
    simulation: SimulationResult
    rebuild_events_per_second: float


def _say(config: ReportBenchConfig, message: str) -> None:
    if config.progress:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def _simulated(settings: Settings, config: ReportBenchConfig, years: int) -> Iterator[_History]:
    service = build_service(settings)
    views = open_views_store(settings)
    try:
        simulation = simulate(
            service,
            load_profile(),
            seed=config.seed,
            year=REPORT_YEAR - years + 1,
            years=years,
            scale=config.scale,
            office_id=OFFICE,
        )
        writer = views.writer()
        try:
            engine = ProjectionEngine(
                ApplicationEventLog(service), writer, [statistics_model.PROJECTION]
            )
            started = perf_counter()
            done = engine.rebuild()
            rate = done / max(perf_counter() - started, 1e-9)
        finally:
            writer.close()
        yield _History(service, views, simulation, rate)
    finally:
        views.close()
        service.close()


def _read_latency_ms(views: ViewsStore, reads: int) -> float:
    """The median latency of ``reads`` reads of the report, in milliseconds."""
    samples = []
    for _ in range(reads):
        started = perf_counter()
        yearly_report(views, OFFICE, REPORT_YEAR)
        samples.append((perf_counter() - started) * 1000)
    return statistics.median(samples)


def _mismatches(report: YearlyReport, truth: dict[str, Any]) -> list[str]:
    """Where the report differs from the simulator's ground truth (should be nowhere)."""
    expected = {
        "residence_documents_issued": truth["residence_documents_issued"]["total"],
        "fiction_certificates_issued": truth["fiction_certificates_issued"],
        "procedures_processed": truth["procedures_processed"]["total"],
        "entry_procedures": truth["entry_procedures"],
        "integration_course_entitlements": truth["integration_course_entitlements"],
        "integration_course_obligations": truth["integration_course_obligations"],
        "commitment_declarations": truth["commitment_declarations"],
        "civil_registry_inquiries": truth["civil_registry_inquiries"],
        "naturalisation_inquiries": truth["naturalisation_inquiries"],
        "backlog_at_year_end": truth["backlog_at_year_end"],
    }
    return [
        f"{key}: report {report.figure(key).value}, simulator {value}"
        for key, value in expected.items()
        if report.figure(key).value != value
    ]


def bench_store(config: ReportBenchConfig, store: StoreName, report: Report) -> None:
    bench = BenchConfig(stores=(store,))
    section = f"{store}: yearly report {REPORT_YEAR}"
    with ExitStack() as stack:
        histories: dict[int, _History] = {}
        for years in (1, config.years):
            settings = stack.enter_context(fresh_store(store, bench))
            _say(config, f"{store}: simulating {years} year(s) at scale {config.scale}")
            histories[years] = stack.enter_context(_simulated(settings, config, years))
            simulation = histories[years].simulation
            _say(
                config,
                f"{store}: {simulation.events:,} events in {simulation.seconds:.0f} s "
                f"({simulation.events_per_second:,.0f} events/s)",
            )
        for years, history in histories.items():
            built = yearly_report(history.views, OFFICE, REPORT_YEAR)
            for mismatch in _mismatches(built, history.simulation.truth[REPORT_YEAR]):
                report.notes.append(f"{store}, {years} years: MISMATCH {mismatch}")
        variants: list[Callable[[], float]] = [
            partial(_read_latency_ms, history.views, config.reads) for history in histories.values()
        ]
        samples: list[list[float]] = [[] for _ in variants]
        for _ in range(config.repeats):
            for index, variant in enumerate(variants):
                samples[index].append(variant())
        one, many = samples
        report.figures += [
            Figure(
                f"{store}.report_1y", section, "report latency, 1 year of history", "ms", tuple(one)
            ),
            Figure(
                f"{store}.report_{config.years}y",
                section,
                f"report latency, {config.years} years of history",
                "ms",
                tuple(many),
            ),
        ]
        report.ratios.append(
            Ratio(
                f"{store}.report_ratio",
                section,
                f"latency {config.years} years / 1 year",
                f"{store}.report_{config.years}y",
                f"{store}.report_1y",
                tuple(b / a for a, b in zip(one, many, strict=True)),
            )
        )
        for years, history in histories.items():
            simulation = history.simulation
            report.figures += [
                Figure(
                    f"{store}.simulator_{years}y_commands",
                    f"{store}: simulator and rebuild",
                    f"simulator, {years} year(s): commands/s",
                    "cmd/s",
                    (simulation.commands_per_second,),
                ),
                Figure(
                    f"{store}.simulator_{years}y_events",
                    f"{store}: simulator and rebuild",
                    f"simulator, {years} year(s): events/s ({simulation.events:,} events)",
                    "events/s",
                    (simulation.events_per_second,),
                ),
                Figure(
                    f"{store}.statistics_rebuild_{years}y",
                    f"{store}: simulator and rebuild",
                    f"statistics rebuild, {years} year(s)",
                    "events/s",
                    (history.rebuild_events_per_second,),
                ),
            ]


def run(config: ReportBenchConfig) -> Report:
    server, why_not = postgres_server_version(BenchConfig().postgres)
    stores = [s for s in config.stores if s != "postgres" or server is not None]
    report = Report(
        machine=machine_info(server),
        parameters={
            "stores": stores,
            "scale": config.scale,
            "years": config.years,
            "repeats": config.repeats,
            "reads": config.reads,
            "seed": config.seed,
            "office": OFFICE,
            "report_year": REPORT_YEAR,
        },
    )
    if why_not is not None and "postgres" in config.stores:
        report.notes.append(f"PostgreSQL skipped: {why_not}")
    started = perf_counter()
    for store in stores:
        bench_store(config, store, report)
    report.seconds = perf_counter() - started
    return report


def format_report(report: Report) -> str:
    m = report.machine
    p = report.parameters
    lines = [
        "Akte yearly report benchmark",
        f"machine: {m.cpu_model}, {m.nproc} CPUs; {m.python}",
        f"parameters: stores={','.join(p['stores'])} scale={p['scale']} years={p['years']} "
        f"repeats={p['repeats']} reads/repeat={p['reads']}",
        "latencies: medians over the repeats of each repeat's median read (spread min..max)",
    ]
    for section in dict.fromkeys(f.section for f in report.figures):
        lines += ["", section]
        for figure in (f for f in report.figures if f.section == section):
            spread = f"{min(figure.samples):,.1f}..{max(figure.samples):,.1f}"
            lines.append(
                f"  {figure.label:<58} {figure.median:>10,.1f} {figure.unit:<9} ({spread})"
            )
        for ratio in (r for r in report.ratios if r.section == section):
            lines.append(f"  = {ratio.label:<56} {ratio.value:>10.2f}x")
        for figure in (f for f in report.figures if f.section == section and f.unit == "ms"):
            if figure.median >= TARGET_MS:
                lines.append(f"  ! {figure.label}: above the {TARGET_MS:.0f} ms target")
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[ReportBenchConfig, Path | None]:
    parser = argparse.ArgumentParser(prog="bench-report", description=__doc__.split("\n")[0])
    parser.add_argument("--stores", type=store_names, default=STORES)
    parser.add_argument("--scale", type=float, default=0.05, help="default %(default)s")
    parser.add_argument("--years", type=int, default=10, help="default %(default)s")
    parser.add_argument("--repeats", type=int, default=7, help="default %(default)s")
    parser.add_argument("--reads", type=int, default=30, help="reads per repeat")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.years < 2 or args.repeats < 1 or args.reads < 1 or not 0 < args.scale <= 1:
        parser.error("need --years >= 2, --repeats >= 1, --reads >= 1, 0 < --scale <= 1")
    config = ReportBenchConfig(
        stores=args.stores,
        scale=args.scale,
        years=args.years,
        repeats=args.repeats,
        reads=args.reads,
        seed=args.seed,
        progress=not args.quiet,
    )
    return config, args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, json_out = parse_args(argv)
    report = run(config)
    print(format_report(report))
    if json_out is not None:
        write_json(json_out, report.to_json())
    return 1 if any("MISMATCH" in note for note in report.notes) else 0


if __name__ == "__main__":
    sys.exit(main())
