"""``akte appointments tick`` and ``akte appointments bounce``.

``tick`` runs the time-driven steps once (or every ``--every`` seconds until
interrupted): reminders before holds lapse, lapses of holds that ran out, mails to try
again, freed seats offered to the waitlist. Each run is idempotent and reads the
service's clock, so running it twice, or on two hosts at once, does no step twice that
matters (at worst a mail goes out twice). Same-day seats need no step: they are
released by the clock itself.

``tick --now ISO-DATETIME`` runs the steps as if the clock showed that time (and, with
``--every``, as if it ran on from there): to rehearse what the steps would do, and for
tests and outside checks to drive time. It records real events with those times, so it
is refused with ``AKTE_DEPLOYMENT=production``; point it at a copy of the store.

Each tick is recorded for monitoring (:mod:`adapters.monitoring.runs`, task
``appointments_tick``; its steps: reminders, lapses, mails, offers, observations).

``bounce`` records a delivery status notification for a mail (its Message-ID names
appointment and mail: ``<APPOINTMENT.MAIL@akte>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Final
from uuid import UUID

from adapters.bootstrap import build_service, open_views_store
from adapters.cli.projections import EXIT_OK, EXIT_UNAVAILABLE, load_settings
from adapters.cli.support import (
    EXIT_SCHEMA,
    EXIT_USAGE,
    STORE_ERRORS,
    CliFailure,
    add_idempotency_key,
    first_line,
    guarded,
    keyed_write,
)
from adapters.monitoring import runs
from adapters.settings import Settings
from adapters.store.migrations import SchemaError
from domain.errors import DomainError
from service import AkteService
from service_appointment_mails import AppointmentsNotConfigured, BookingNotFound
from service_appointments import TickReport
from service_common import StoreUnavailable, system_clock

EXIT_NOT_FOUND: Final = 1
EXIT_INTERRUPTED: Final = 130


def add_appointment_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    parser = subparsers.add_parser("appointments", help="time-driven steps of appointments")
    commands = parser.add_subparsers(dest="appointments_command", required=True, metavar="COMMAND")
    tick = commands.add_parser(
        "tick", help="send reminders, lapse holds, retry mails, offer freed seats (idempotent)"
    )
    tick.add_argument(
        "--every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="keep running, one tick every SECONDS (a worker loop)",
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
    bounce = commands.add_parser("bounce", help="record that a mail came back")
    bounce.add_argument("message_id", metavar="MESSAGE_ID", help="<APPOINTMENT.MAIL@akte>")
    bounce.add_argument("--status", required=True, help="the DSN status code, e.g. 5.1.1")
    add_idempotency_key(bounce)
    bounce.set_defaults(run=guarded(run_bounce))


def aware_datetime(text: str) -> datetime:
    """An argparse type: an ISO 8601 date and time with its offset from UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        msg = "must be an ISO 8601 date and time, e.g. 2025-03-04T09:00:00+01:00"
        raise argparse.ArgumentTypeError(msg) from None
    if moment.utcoffset() is None:
        msg = "must name its offset from UTC (e.g. +01:00 or Z): a time alone is ambiguous"
        raise argparse.ArgumentTypeError(msg)
    return moment


def clock_from(now: datetime) -> Callable[[], datetime]:
    """A clock that shows ``now`` at first and runs on in step with the real one."""
    offset = now - system_clock()
    return lambda: system_clock() + offset


def service_at(settings: Settings, now: datetime | None) -> AkteService:
    """The service on the real clock, or on one that shows ``now`` (``--now`` of the
    time-driven commands): a rehearsal, refused in production because it would record
    events at a time that is not now."""
    if now is None:
        return build_service(settings)
    if settings.deployment == "production":
        raise CliFailure(
            EXIT_USAGE,
            "--now is refused with AKTE_DEPLOYMENT=production: it would record events at a "
            "time that is not now; rehearse on a copy of the store",
        )
    return build_service(settings, clock=clock_from(now))


def tick_service(
    settings: Settings, now: datetime | None, note_failed: Callable[[], object]
) -> AkteService:
    """:func:`service_at` for a tick: a store that cannot be opened, or whose schema
    does not fit this release, becomes a :class:`CliFailure` (one line, no traceback),
    and ``note_failed`` records the failed run first, so that the monitoring alert on
    failing ticks sees it (as far as the views store can be reached)."""
    # OSError: the data directory cannot be created (permissions, a file in the way).
    opening_errors: tuple[type[BaseException], ...] = (*STORE_ERRORS, OSError)
    try:
        return service_at(settings, now)
    except SchemaError as error:
        note_failed()
        raise CliFailure(EXIT_SCHEMA, str(error)) from None
    except opening_errors as error:
        note_failed()
        raise CliFailure(
            EXIT_UNAVAILABLE, f"the event store is unavailable: {first_line(error)}"
        ) from None


def run_tick(args: argparse.Namespace) -> int:
    settings = load_settings()
    started = runs.now()
    service = tick_service(settings, args.now, lambda: _note_tick(settings, started, "failed", 0))
    try:
        while True:
            started = runs.now()
            report = service.appointments.run_appointment_tick()
            _note_tick(settings, started, "ok", tick_steps(report))
            print(json.dumps(asdict(report)), flush=True)
            if args.every is None:
                return EXIT_OK
            time.sleep(args.every)
    except (StoreUnavailable, AppointmentsNotConfigured) as error:
        print(f"akte: {error}", file=sys.stderr)
        _note_tick(settings, started, "failed", 0)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        service.close()


def tick_steps(report: TickReport) -> int:
    """What a tick did: reminders, lapses, mails (sent or failed), offers, observations."""
    return (
        report.reminders
        + report.lapses
        + report.mails_sent
        + report.mails_failed
        + report.offers
        + report.observations
    )


def _note_tick(settings: Settings, started: datetime, result: runs.Result, steps: int) -> None:
    """The run, for monitoring (``akte_task_last_success_timestamp_seconds``)."""
    runs.note_run(
        lambda: open_views_store(settings),
        runs.APPOINTMENTS_TICK,
        started_at=started,
        result=result,
        steps=steps,
    )


def run_bounce(args: argparse.Namespace) -> int:
    text = args.message_id.strip().strip("<>")
    try:
        ident, rest = text.split(".", 1)
        number = int(rest.split("@", 1)[0])
        appointment_id = UUID(ident)
    except ValueError:
        print("akte: MESSAGE_ID must read <APPOINTMENT.MAIL@akte>", file=sys.stderr)
        return EXIT_NOT_FOUND
    settings = load_settings()
    service = build_service(settings)
    try:
        with keyed_write(args, "appointments bounce"):
            service.appointments.record_mail_bounce(
                appointment_id, mail_number=number, reason=args.status
            )
    except (BookingNotFound, DomainError) as error:
        print(f"akte: {error}", file=sys.stderr)
        return EXIT_NOT_FOUND
    except StoreUnavailable as error:
        print(f"akte: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    finally:
        service.close()
    return EXIT_OK
