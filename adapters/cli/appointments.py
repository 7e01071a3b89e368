"""``akte appointments tick`` and ``akte appointments bounce``.

``tick`` runs the time-driven steps once (or every ``--every`` seconds until
interrupted): reminders before holds lapse, lapses of holds that ran out, mails to try
again, freed seats offered to the waitlist. Each run is idempotent and reads the
service's clock, so running it twice, or on two hosts at once, does no step twice that
matters (at worst a mail goes out twice). Same-day seats need no step: they are
released by the clock itself.

``bounce`` records a delivery status notification for a mail (its Message-ID names
appointment and mail: ``<APPOINTMENT.MAIL@akte>``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from typing import Final
from uuid import UUID

from adapters.bootstrap import build_service
from adapters.cli.projections import EXIT_OK, EXIT_UNAVAILABLE, load_settings
from domain.errors import DomainError
from service_appointment_mails import AppointmentsNotConfigured, BookingNotFound
from service_common import StoreUnavailable

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
    tick.set_defaults(run=run_tick)
    bounce = commands.add_parser("bounce", help="record that a mail came back")
    bounce.add_argument("message_id", metavar="MESSAGE_ID", help="<APPOINTMENT.MAIL@akte>")
    bounce.add_argument("--status", required=True, help="the DSN status code, e.g. 5.1.1")
    bounce.set_defaults(run=run_bounce)


def run_tick(args: argparse.Namespace) -> int:
    settings = load_settings()
    service = build_service(settings)
    try:
        while True:
            report = service.appointments.run_appointment_tick()
            print(json.dumps(asdict(report)), flush=True)
            if args.every is None:
                return EXIT_OK
            time.sleep(args.every)
    except (StoreUnavailable, AppointmentsNotConfigured) as error:
        print(f"akte: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        service.close()


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
