"""``akte whatif``: replay a period of the log under another validity rule (read-only).

    akte whatif --policy fiction-validity --months 6 [--include-duldung] \\
        --from 2024-01-01 --until 2024-12-31 [--office O] [--format json|csv|html]
    akte whatif --policy ordinance-extension --extended-to 2026-03-04 --from ... --until ...

The replay reads the event log and builds its scratch read model in a temporary
directory; it writes neither the event store nor the live read models.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Final

from adapters.cli.progress import ProgressDisplay, projection_progress
from adapters.cli.projections import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    load_settings,
    open_stores,
)
from adapters.cli.support import CliFailure
from adapters.reports import whatif as whatif_formats
from adapters.views.whatif_replay import POLICIES, WhatIfError, policy_for, run_whatif
from projections.errors import ProjectionError
from projections.figures.whatif import WhatIfResult

EXIT_USAGE: Final = 2
FORMATS: Final = ("json", "csv", "html")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def add_whatif_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "whatif",
        help="what another validity rule would have saved (replays the log, read-only)",
    )
    parser.add_argument("--policy", choices=POLICIES, default="fiction-validity")
    parser.add_argument(
        "--months", type=int, help="fiction-validity: the validity in months (1-120)"
    )
    parser.add_argument(
        "--include-duldung",
        action="store_true",
        help="fiction-validity: Duldungen are issued for as long too",
    )
    parser.add_argument(
        "--extended-to", type=_day, help="ordinance-extension: valid by ordinance until this day"
    )
    parser.add_argument(
        "--legal-basis", help="ordinance-extension: the titles' legal basis (default aufenthg-24)"
    )
    parser.add_argument(
        "--from", dest="period_from", type=_day, required=True, help="first day (Berlin)"
    )
    parser.add_argument(
        "--until", dest="period_until", type=_day, required=True, help="last day (Berlin)"
    )
    parser.add_argument(
        "--office", help="the office (default: AKTE_DEFAULT_OFFICE_ID, the demo office)"
    )
    parser.add_argument("--format", choices=FORMATS, default="json", help="default: json")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    parser.set_defaults(run=run_whatif_command)


def run_whatif_command(args: argparse.Namespace) -> int:
    try:
        policy = policy_for(
            args.policy,
            months=args.months,
            include_duldung=args.include_duldung,
            extended_to=args.extended_to,
            legal_basis=args.legal_basis,
        )
    except WhatIfError as error:
        print(f"akte: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = load_settings()
        office = args.office or settings.default_office_id
        with open_stores(settings) as stores, ProgressDisplay() as display:
            progress = projection_progress(display, label="replayed")
            try:
                run = run_whatif(
                    stores.log,
                    policy,
                    office_id=office,
                    period_from=args.period_from,
                    period_until=args.period_until,
                    progress=progress,
                )
            except WhatIfError as error:
                print(f"akte: {error}", file=sys.stderr)
                return EXIT_USAGE
            except ProjectionError as error:
                raise CliFailure(EXIT_UNAVAILABLE, str(error)) from None
    except CliFailure as failure:
        print(f"akte: {failure}", file=sys.stderr)
        return failure.exit_code
    text = render(run.result, args.format)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"akte: wrote the what-if to {args.out}", file=sys.stderr)
    print(
        f"akte: replayed {run.events_read:,} notifications in {run.seconds:.1f} s",
        file=sys.stderr,
    )
    return EXIT_OK


def render(result: WhatIfResult, output_format: str) -> str:
    if output_format == "csv":
        return whatif_formats.whatif_csv(result)
    if output_format == "html":
        return whatif_formats.whatif_html(result)
    return json.dumps(whatif_formats.whatif_json(result), ensure_ascii=False, indent=2) + "\n"
