"""``akte history CASE``: a case file's history as text, JSON or a printable HTML page.

The command reads the store directly, as an operator with access to it does, so it
shows personal data; like every read of a case file it is recorded in the read-access
log (as ``--by``, default ``operator``). Exit codes as for ``akte case``: 1 unknown
case file, 2 store unreachable or settings invalid.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Final
from uuid import UUID

from adapters.cli.support import (
    EXIT_USAGE,
    CliFailure,
    guarded,
    open_service,
    settings_or_fail,
)
from adapters.personal_data.batch_decoding import batch_decoder
from adapters.reports.case_history import (
    build_history,
    history_html,
    history_json,
    history_text,
)
from domain.history import HistoryFilter, event_kinds
from service import AkteService
from service_common import CaseNotFound, ReferenceNotFound

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_UNAVAILABLE: Final = 3
CLI_ENDPOINT: Final = "CLI akte history"
DEFAULT_OPERATOR: Final = "operator"
_EVERY_EVENT: Final = 2**62


def add_history_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``history`` to the ``akte`` parser."""
    parser = commands.add_parser(
        "history",
        help="print a case file's history (who did what when, and why)",
        description=(
            "Every event of a case file with who acted, business and recorded time, legal "
            "basis, reason and a German description. The read is recorded in the "
            "read-access log."
        ),
    )
    parser.add_argument("case", metavar="CASE", help="case id or file number")
    parser.add_argument("--format", choices=("text", "json", "html"), default="text")
    parser.add_argument("--out", type=Path, help="write to this file (default: stdout)")
    parser.add_argument(
        "--from", dest="at_from", type=_aware, help="only events at or after (business time)"
    )
    parser.add_argument(
        "--until", dest="at_until", type=_aware, help="only events before (business time)"
    )
    parser.add_argument(
        "--on",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help=(
            "only the events the file consisted of on this business date: business time on "
            "or before the end of that day in the office's time zone (AKTE_OFFICE_TIME_ZONE)"
        ),
    )
    parser.add_argument("--actor", help="only events by this user id")
    parser.add_argument(
        "--kind", action="append", choices=event_kinds(), help="only this kind (repeatable)"
    )
    parser.add_argument(
        "--office", help="the office of a file number (default AKTE_DEFAULT_OFFICE_ID)"
    )
    parser.add_argument(
        "--by",
        default=DEFAULT_OPERATOR,
        help="who reads, as the read-access log records it (default %(default)s)",
    )
    parser.set_defaults(run=guarded(_history))


def _aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        msg = f"{text} needs a time zone, e.g. 2024-03-04T09:00:00+01:00"
        raise argparse.ArgumentTypeError(msg)
    return moment


def _case_id(service: AkteService, office_id: str, given: str) -> UUID:
    try:
        return UUID(given)
    except ValueError:
        pass
    try:
        return service.find_case_by_reference(office_id, given)
    except ReferenceNotFound:
        raise CliFailure(
            EXIT_NOT_FOUND, f"neither a case id nor a file number in office {office_id}"
        ) from None


def _history(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with open_service(settings) as service:
        case_id = _case_id(service, args.office or settings.default_office_id, args.case)
        at_until = args.at_until
        if args.on is not None:
            if at_until is not None:
                raise CliFailure(EXIT_USAGE, "--until, --on: give at most one of them")
            at_until = service.case_as_of.end_of(args.on)
        try:
            history = build_history(
                service,
                case_id,
                criteria=HistoryFilter(
                    args.at_from, at_until, args.actor, frozenset(args.kind or ())
                ),
                with_personal_data=True,
                limit=_EVERY_EVENT,
                decode_batch=batch_decoder(service.mapper),
            )
        except CaseNotFound as error:
            raise CliFailure(EXIT_NOT_FOUND, str(error)) from None
        service.record_read(
            by=args.by, endpoint=CLI_ENDPOINT, case_id=case_id, office_id=history.office_id
        )
    if args.format == "json":
        output = history_json(history, indent=True).decode() + "\n"
    elif args.format == "html":
        output = history_html(history)
    else:
        output = history_text(history)
    if args.out is None:
        sys.stdout.write(output)
    else:
        args.out.write_text(output, encoding="utf-8")
    return EXIT_OK
