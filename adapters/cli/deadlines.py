"""``akte deadlines tick``: record the effects of legal periods that have passed.

One run records, on each case file, the visa consents that the office's silence gave
(§ 31 Abs. 1 AufenthV, :data:`domain.deadlines.DEEMED_ENTRY_CONSENT`), counting with the
office's public holidays (``AKTE_OFFICE_STATE``) and its date (``AKTE_OFFICE_TIME_ZONE``).
It is idempotent: run it from a timer, as often as wanted, on one host or several.

``--now ISO-DATETIME`` runs it as if the clock showed that time: to rehearse what it
would record, and for tests. It records real events with that time, so it is refused
with ``AKTE_DEPLOYMENT=production``, as ``akte appointments tick --now`` is.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from adapters.cli.appointments import aware_datetime, service_at
from adapters.cli.projections import EXIT_OK, EXIT_UNAVAILABLE, load_settings
from service_common import StoreUnavailable


def add_deadline_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser("deadlines", help="effects of legal periods that passed")
    commands = parser.add_subparsers(dest="deadlines_command", required=True, metavar="COMMAND")
    tick = commands.add_parser(
        "tick", help="record consents deemed given by silence (§ 31 AufenthV; idempotent)"
    )
    tick.add_argument(
        "--now",
        type=aware_datetime,
        default=None,
        metavar="ISO-DATETIME",
        help=(
            "run as if the clock showed this time, e.g. 2025-03-04T09:00:00+01:00 (a "
            "rehearsal; refused with AKTE_DEPLOYMENT=production)"
        ),
    )
    tick.set_defaults(run=run_tick)


def run_tick(args: argparse.Namespace) -> int:
    service = service_at(load_settings(), args.now)
    try:
        report = service.deadlines.run_deadline_tick()
    except StoreUnavailable as error:
        print(f"akte: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        service.close()
    print(json.dumps(asdict(report)), flush=True)
    return EXIT_OK
