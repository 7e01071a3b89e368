"""``akte simulate``: simulate an office's year(s) through the service, print the truth.

The ground truth (:meth:`adapters.simulation.tally.SimulationResult.truth_json`) goes to stdout
as JSON, or to ``--truth-out``; a progress line with commands/s and events/s goes to
stderr, and a summary line at the end. Expected failures end with one line on stderr and
an exit code, never a traceback: 2 for settings, store and usage problems (a store that
already holds events, unless ``--append``; a year that has not ended yet), 130 when
interrupted. Nothing printed names a person.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Final

from adapters.cli.progress import ProgressDisplay, simulation_progress
from adapters.cli.support import (
    CliFailure,
    guarded,
    open_service,
    positive_int,
    settings_or_fail,
)
from adapters.simulation.profile import SimulationError, load_profile
from adapters.simulation.simulator import (
    DEFAULT_OFFICE_ID,
    SimulationProgress,
    simulate,
    suggested_case_cache,
)
from adapters.store.statistics_upkeep import FIRST_REFRESH_EVENTS, GrowingLogStatistics
from domain.case_file import require_code
from domain.errors import InvalidValue

EXIT_OK: Final = 0
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def add_simulator_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Adds ``simulate`` to the ``akte`` parser."""
    parser = commands.add_parser(
        "simulate",
        help="simulate an office's year through the service and print its ground truth",
        description=(
            "Generate a realistic year (or several) of a foreigners' office through the "
            "service's commands, with the profile's counts as targets (scaled by --scale), "
            "and print what it did, figure by figure, as JSON: the yearly report for that "
            "year must reproduce it. The same seed, profile and scale give the same history "
            "(ids aside). Business time must lie in the past."
        ),
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="the office's yearly figures as JSON (default: the 2024 profile shipped with Akte)",
    )
    parser.add_argument("--seed", type=int, required=True, help="same seed, same history")
    parser.add_argument(
        "--year", type=int, help="the first simulated year (default: the profile's)"
    )
    parser.add_argument(
        "--years", type=positive_int, default=1, help="consecutive years (default %(default)s)"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="share of the profile's counts, e.g. 0.1 (default %(default)s)",
    )
    parser.add_argument(
        "--growth",
        type=float,
        default=0.0,
        help="growth of the counts per further year, e.g. 0.02 (default %(default)s)",
    )
    parser.add_argument(
        "--office", default=DEFAULT_OFFICE_ID, help="the office's id (default %(default)s)"
    )
    parser.add_argument("--truth-out", type=Path, help="write the ground truth here, not to stdout")
    parser.add_argument(
        "--staff-out",
        type=Path,
        help=(
            "write the simulated office's staff plan here (the form of AKTE_STAFF_FILE: "
            "posts from the profile's staff scaled as the figures, at least one; people at "
            "work by month)"
        ),
    )
    parser.add_argument(
        "--append",
        action="store_true",
        help="simulate into a store that holds events already (the truth counts this run only)",
    )
    parser.add_argument(
        "--case-cache",
        type=positive_int,
        help=(
            "case files the service keeps in memory, about 5 KB each (default: enough for "
            "the simulated office, at least AKTE_CASE_CACHE_SIZE)"
        ),
    )
    parser.set_defaults(run=guarded(_simulate))


def _simulate(args: argparse.Namespace) -> int:
    try:
        require_code("office", args.office)
    except InvalidValue as error:
        raise CliFailure(EXIT_USAGE, f"--office {error.message.removeprefix('office: ')}") from None
    try:
        profile = load_profile(args.profile)
    except SimulationError as error:
        raise CliFailure(EXIT_USAGE, str(error)) from None
    settings = settings_or_fail()
    cache = args.case_cache or max(
        settings.case_cache_size,
        suggested_case_cache(args.scale, years=args.years, growth=args.growth),
    )
    settings = settings.model_copy(update={"case_cache_size": cache})
    with ProgressDisplay() as display, open_service(settings) as service:
        existing = service.recorder.max_notification_id() or 0
        if existing and not args.append:
            raise CliFailure(
                EXIT_USAGE,
                f"the store holds {existing:,} events already; simulate into an empty store "
                "(another AKTE_DATA_DIR or AKTE_POSTGRES_SCHEMA) or pass --append",
            )
        upkeep = GrowingLogStatistics.of(service.recorder)
        if upkeep.problem is not None:
            print(
                f"warning: {upkeep.problem}; this simulation runs ANALYZE itself after "
                f"{FIRST_REFRESH_EVENTS:,} events and each time they doubled",
                file=sys.stderr,
            )
        show = simulation_progress(display)

        def progress(reached: SimulationProgress) -> None:
            show(reached)
            upkeep.grown(existing + reached.events)

        try:
            result = simulate(
                service,
                profile,
                seed=args.seed,
                year=args.year,
                years=args.years,
                scale=args.scale,
                office_id=args.office,
                growth=args.growth,
                progress=progress,
            )
        except SimulationError as error:
            display.end_line()
            raise CliFailure(EXIT_USAGE, str(error)) from None
        except KeyboardInterrupt:
            display.end_line()
            raise CliFailure(
                EXIT_INTERRUPTED,
                "interrupted; the store holds a part of the simulation, start again in an "
                "empty store",
            ) from None
    truth = json.dumps(result.truth_json(), indent=2, ensure_ascii=False) + "\n"
    if args.staff_out is not None:
        args.staff_out.write_text(
            json.dumps(result.staff_plan, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if args.truth_out is not None:
        args.truth_out.write_text(truth, encoding="utf-8")
    else:
        sys.stdout.write(truth)
    years = ", ".join(str(year) for year in result.years)
    print(
        f"simulated {years} of {result.office_id} at scale {result.scale:g}: "
        f"{result.commands:,} commands, {result.events:,} events, {result.case_files:,} case "
        f"files in {result.seconds:,.1f} s ({result.commands_per_second:,.0f} commands/s, "
        f"{result.events_per_second:,.0f} events/s)",
        file=sys.stderr,
    )
    return EXIT_OK
