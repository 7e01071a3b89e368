"""``akte deadlines tick``: record the effects of legal periods that have passed.

One run records, on each case file, the visa consents that the office's silence gave
(§ 31 Abs. 1 AufenthV, :data:`domain.deadlines.DEEMED_ENTRY_CONSENT`), counting with the
office's public holidays (``AKTE_OFFICE_STATE``) and its date (``AKTE_OFFICE_TIME_ZONE``).
It is idempotent: run it from a timer, as often as wanted, on one host or several.

``--now ISO-DATETIME`` runs it as if the clock showed that time: to rehearse what it
would record, and for tests. It records real events with that time, so it is refused
with ``AKTE_DEPLOYMENT=production``, as ``akte appointments tick --now`` is.

Each run is recorded for monitoring (:mod:`adapters.monitoring.runs`, task
``deadlines_tick``; its steps: the consents recorded).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime

from adapters.bootstrap import open_views_store
from adapters.cli.appointments import aware_datetime, tick_service
from adapters.cli.projections import EXIT_OK, EXIT_UNAVAILABLE, load_settings
from adapters.monitoring import runs
from adapters.settings import Settings
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
    settings = load_settings()
    started = runs.now()
    service = tick_service(settings, args.now, lambda: _note_tick(settings, started, "failed", 0))
    try:
        report = service.deadlines.run_deadline_tick()
    except StoreUnavailable as error:
        print(f"akte: {error}", file=sys.stderr)
        _note_tick(settings, started, "failed", 0)
        return EXIT_UNAVAILABLE
    finally:
        service.close()
    _note_tick(settings, started, "ok", report.deemed_consents)
    print(json.dumps(asdict(report)), flush=True)
    return EXIT_OK


def _note_tick(settings: Settings, started: datetime, result: runs.Result, steps: int) -> None:
    """The run, for monitoring (``akte_task_last_success_timestamp_seconds``)."""
    runs.note_run(
        lambda: open_views_store(settings),
        runs.DEADLINES_TICK,
        started_at=started,
        result=result,
        steps=steps,
    )
