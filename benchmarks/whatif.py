"""What-if benchmark: the replay of one simulated office year under a longer validity.

Run ``bin/bench-whatif`` (or ``python -m benchmarks.whatif``) from the repository root::

    bin/bench-whatif [--store sqlite|postgres] [--scales 0.01,0.05] [--months 6]
                     [--repeats 3] [--json OUT] [--quiet]

Per scale it simulates the office year 2024 into a fresh store
(``adapters/simulation/simulator.py``; scale 1 is the full office of the design brief, about
870,000 events), then runs the
what-if of Fiktionsbescheinigungen valid for ``--months`` months over that year
``--repeats`` times and reports the median time and the events per second (events of the
whole log, which the replay reads up to its head). It checks the replay's answer against
the simulator's ground truth (with a validity of 24 months every extension is saved) and
exits 1 if it does not match. From the largest scale it extrapolates, linearly in the
events of the log, to one million events; figures in ``docs/performance/whatif.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from adapters.bootstrap import build_service
from adapters.simulation.profile import load_profile
from adapters.simulation.simulator import simulate, suggested_case_cache
from adapters.views.runner import ApplicationEventLog
from adapters.views.whatif_replay import WhatIfRun, run_whatif
from benchmarks.harness import (
    BenchConfig,
    StoreName,
    fresh_store,
    machine_info,
)
from domain.whatif import FictionValidity

YEAR: Final = 2024
OFFICE: Final = "abh-simulation"
MILLION: Final = 1_000_000


@dataclass(frozen=True)
class ScaleResult:
    scale: float
    events: int
    """Notifications in the log (what the replay reads up to)."""
    simulate_seconds: float
    whatif_seconds: tuple[float, ...]
    extensions: int
    extensions_saved: int
    truth_extensions: int
    saved_at_24_months: int

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.whatif_seconds)

    @property
    def events_per_second(self) -> float:
        return self.events / self.median_seconds if self.median_seconds > 0 else 0.0

    @property
    def correct(self) -> bool:
        return self.saved_at_24_months == self.truth_extensions == self.extensions


def _say(quiet: bool, message: str) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)


def bench_scale(
    store: StoreName, scale: float, months: int, repeats: int, quiet: bool
) -> ScaleResult:
    with fresh_store(store, BenchConfig()) as settings:
        settings = settings.model_copy(update={"case_cache_size": suggested_case_cache(scale)})
        service = build_service(settings)
        try:
            _say(quiet, f"simulating {YEAR} at scale {scale} on {store} ...")
            started = time.perf_counter()
            simulation = simulate(service, load_profile(), seed=2024, year=YEAR, scale=scale)
            simulated = time.perf_counter() - started
            log = ApplicationEventLog(service)

            def replay(validity: int) -> WhatIfRun:
                return run_whatif(
                    log,
                    FictionValidity(validity),
                    office_id=OFFICE,
                    period_from=date(YEAR, 1, 1),
                    period_until=date(YEAR, 12, 31),
                )

            seconds = []
            result = None
            for repeat in range(repeats):
                run = replay(months)
                seconds.append(run.seconds)
                result = run.result
                _say(quiet, f"  what-if {repeat + 1}/{repeats}: {run.seconds:.2f} s")
            assert result is not None
            check = replay(24)
            return ScaleResult(
                scale=scale,
                events=result.position,
                simulate_seconds=simulated,
                whatif_seconds=tuple(seconds),
                extensions=result.extensions,
                extensions_saved=result.extensions_saved,
                truth_extensions=int(simulation.truth[YEAR]["fiction_certificates_extended"]),
                saved_at_24_months=check.result.extensions_saved,
            )
        finally:
            service.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench-whatif", description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--scales", default="0.01,0.05", help="comma-separated, e.g. 0.01,0.1")
    parser.add_argument("--months", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    scales = [float(text) for text in args.scales.split(",") if text]
    results = [
        bench_scale(args.store, scale, args.months, args.repeats, args.quiet) for scale in scales
    ]
    largest = max(results, key=lambda r: r.events)
    per_event = largest.median_seconds / max(largest.events, 1)
    print(f"what-if benchmark on {args.store}: one office year {YEAR}, months={args.months}")
    for r in results:
        print(
            f"scale {r.scale}: {r.events:,} events, simulated in {r.simulate_seconds:.1f} s; "
            f"what-if median {r.median_seconds:.2f} s ({r.events_per_second:,.0f} events/s); "
            f"extensions {r.extensions}, saved {r.extensions_saved}; "
            f"24 months save {r.saved_at_24_months} of {r.truth_extensions} (truth)"
        )
    print(
        f"extrapolated to {MILLION:,} events (linear from scale {largest.scale}): "
        f"{per_event * MILLION:.0f} s"
    )
    if args.json is not None:
        machine = machine_info(None)
        document: dict[str, Any] = {
            "store": args.store,
            "months": args.months,
            "machine": machine.__dict__ if hasattr(machine, "__dict__") else str(machine),
            "scales": [
                {
                    "scale": r.scale,
                    "events": r.events,
                    "simulate_seconds": r.simulate_seconds,
                    "whatif_seconds": list(r.whatif_seconds),
                    "median_seconds": r.median_seconds,
                    "events_per_second": r.events_per_second,
                    "extensions": r.extensions,
                    "extensions_saved": r.extensions_saved,
                    "truth_extensions": r.truth_extensions,
                    "saved_at_24_months": r.saved_at_24_months,
                }
                for r in results
            ],
            "extrapolated_seconds_per_million_events": per_event * MILLION,
        }
        args.json.write_text(json.dumps(document, indent=2, default=str) + "\n")
    return 0 if all(r.correct for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
