"""The ``akte`` command: serve the HTTP API, load a demo office, look at a case file,
print a demo user's token (local mode); import scans and tend the document store
(:mod:`adapters.cli.documents`).

Settings come from the environment (``AKTE_*``, see :mod:`adapters.settings`); every
problem with them is reported at once (:mod:`adapters.settings_sources`), and ``akte
config check`` lists them without doing anything else. Expected failures (a store that
cannot be reached, bad settings, an unknown case file) end with one line on stderr and
an exit code, never a traceback; each exit code has one meaning
(:data:`adapters.cli.support.EXIT_CODES`, docs/reference/cli.md). Messages name stores
and ids, never personal data.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import date, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

from adapters.bootstrap import demo_payments, deployment_problems, served_app
from adapters.cli import support
from adapters.cli.appointments import add_appointment_commands
from adapters.cli.audit import add_audit_commands
from adapters.cli.backup import add_backup_commands
from adapters.cli.data_protection import add_data_protection_commands
from adapters.cli.deadlines import add_deadline_commands
from adapters.cli.documents import add_document_commands
from adapters.cli.histories import add_histories_commands
from adapters.cli.history import add_history_command
from adapters.cli.inbox import add_inbox_commands
from adapters.cli.migrate import add_migrate_command
from adapters.cli.offices import add_offices_command
from adapters.cli.outbox import add_outbox_commands
from adapters.cli.progress import DemoLoadProgress, ProgressDisplay
from adapters.cli.projections import add_projection_commands
from adapters.cli.report import add_report_command
from adapters.cli.simulate import add_simulator_commands
from adapters.cli.support import (
    EXIT_CODES,
    CliFailure,
    open_service,
    positive_int,
    settings_or_fail,
)
from adapters.cli.transfers import add_transfer_commands
from adapters.cli.whatif import add_whatif_command
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import (
    DEFAULT_TOKEN_MINUTES,
    MAX_TOKEN_MINUTES,
    LocalIssuer,
    LocalIssuerKeyError,
    demo_users,
)
from adapters.http.auth.tokens import AuthConfigurationError, check_auth_settings
from adapters.http.schemas.cases import MAX_USER_ID
from adapters.logging_setup import configure_logging
from adapters.reference.staff_plan import EXAMPLE_STAFF_FILE
from adapters.settings import Settings
from adapters.settings_sources import read_settings, secret_fields, setting_variable
from adapters.simulation.demo_office import DEFAULT_OFFICE_ID, DemoSummary, load_demo_office
from domain.case_file import CaseFile, require_code
from domain.errors import InvalidValue
from service import AkteService
from service_common import CaseNotFound, ReferenceNotFound

if TYPE_CHECKING:
    from fastapi import FastAPI

_logger = logging.getLogger("akte.cli")

EXIT_OK: Final = support.EXIT_OK
EXIT_NOT_FOUND: Final = support.EXIT_FAILED
EXIT_USAGE: Final = support.EXIT_USAGE
EXIT_UNAVAILABLE: Final = support.EXIT_UNAVAILABLE
EXIT_EMPTY: Final = support.EXIT_EMPTY
EXIT_INTERRUPTED: Final = support.EXIT_INTERRUPTED


# ------------------------------------------------------------------ plumbing


def _open_service(settings: Settings) -> AbstractContextManager[AkteService]:
    """The service over the configured store; its failures name which store it is."""
    return open_service(settings, what=f"the event store ({support.store_location(settings)})")


def _load_demo(service: AkteService, settings: Settings, *, cases: int, seed: int) -> DemoSummary:
    display = ProgressDisplay()
    progress = DemoLoadProgress(display, lambda: service.recorder.max_notification_id() or 0)
    started = time.monotonic()
    try:
        summary = load_demo_office(
            service,
            cases=cases,
            seed=seed,
            progress=progress,
            office_id=settings.default_office_id or DEFAULT_OFFICE_ID,
        )
    except KeyboardInterrupt:
        # Each case file is saved as it is written, so the store keeps a partial office;
        # a later --demo sees a store that is not empty and leaves it alone.
        raise CliFailure(
            EXIT_INTERRUPTED,
            f"interrupted after {progress.done:,} of {cases:,} case files; "
            f"they stay in the store ({support.store_location(settings)})",
        ) from None
    finally:
        display.end_line()
    if summary.skipped:
        print(
            f"akte: the store already holds {summary.existing_events:,} events; "
            "no demo office loaded",
            file=sys.stderr,
        )
    else:
        _print_summary(summary, settings, time.monotonic() - started)
    return summary


def _print_summary(summary: DemoSummary, settings: Settings, seconds: float) -> None:
    counts = summary.counts

    def count(*names: str) -> int:
        return sum(counts.get(name, 0) for name in names)

    rate = summary.events / max(seconds, 1e-6)
    rows = [
        (
            "procedures",
            count("receive_procedure"),
            f"{count('decided granted')} granted, {count('decided refused')} refused, "
            f"{count('decided withdrawn')} withdrawn",
        ),
        (
            "residence documents",
            count("issue_residence_document"),
            f"{count('issued eat')} eAT, {count('issued duldung')} Duldung, "
            f"{count('issued aufenthaltsgestattung')} Aufenthaltsgestattung; "
            f"{count('extend_residence_document')} extensions, "
            f"{count('transfer_eat_to_new_passport')} moved to a new passport",
        ),
        (
            "Fiktionsbescheinigungen",
            count("issue_fiction_certificate"),
            f"{count('extend_fiction_certificate')} extensions, "
            f"{count('fiction new carrier sheet')} on a new carrier sheet",
        ),
        (
            "entry procedures",
            count("request_entry_consent"),
            f"{count('entry consent given')} consented, {count('entry consent refused')} refused",
        ),
        (
            "integration course",
            count("issue_integration_course_entitlement", "impose_integration_course_obligation"),
            f"{count('impose_integration_course_obligation')} obligations",
        ),
        ("inquiries", count("receive_inquiry"), f"{count('answer_inquiry')} answered"),
        ("documents attached", count("attach_document"), ""),
        ("letters", count("record_correspondence"), ""),
        ("notes", count("add_note"), ""),
        (
            "files closed",
            count("close_case"),
            f"{count('closed naturalised')} naturalised, {count('closed left')} left, "
            f"{count('closed died')} died",
        ),
        ("files transferred", count("transfer_to_office"), ""),
    ]
    office = settings.default_office_id or DEFAULT_OFFICE_ID
    print(
        f"Demo office {office}: {summary.cases:,} case files, {summary.events:,} events "
        f"in {seconds:.1f} s ({rate:,.0f} events/s)"
    )
    for label, number, detail in rows:
        print(f"  {label:<24}{number:>6,}" + (f"  ({detail})" if detail else ""))
    if summary.case_ids:
        print(f"Try: akte case show {summary.case_ids[0]}")


# ---------------------------------------------------------------- commands


def _serve_app(
    args: argparse.Namespace,
    settings: Settings,
    service: AkteService,
    app: FastAPI,
    *,
    stand_in_url: str | None = None,
) -> None:
    # Imported here: the other commands need neither the web stack nor its start-up time.
    import uvicorn

    if args.demo:
        _load_demo(service, settings, cases=args.cases, seed=args.seed)
    base = f"http://{_display_host(args.host)}:{args.port}"
    print(
        f"Akte serves {support.store_location(settings)} at {base} - API docs: {base}/docs",
        flush=True,
    )
    print(_how_to_get_a_token(settings, base), flush=True)
    if args.demo:
        print(demo_pages(settings, base, stand_in_url), flush=True)
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    # Absolute: a relative AKTE_DATA_DIR means "below where the server was started", and
    # a command run elsewhere would otherwise use another store without noticing.
    _logger.info("paths in use: %s", ", ".join(f"{k}={v}" for k, v in _paths(settings)))
    # uvicorn drains the requests on SIGTERM, then raises the signal again with the
    # handler it found: the default one would end the process inside uvicorn.run and skip
    # our clean-up (stopping the projection process, closing the stores).
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        # Our access log names route templates; uvicorn's would log raw paths with ids.
        uvicorn.run(app, host=args.host, port=args.port, log_config=None, access_log=False)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _paths(settings: Settings) -> list[tuple[str, str]]:
    """The files and directories the settings point at, for the start-up log line."""
    paths = [("data_dir", settings.data_dir), ("documents_dir", settings.documents_directory)]
    if settings.store == "sqlite":
        paths += [("sqlite", settings.sqlite_path), ("key_store", settings.key_store_file)]
    if settings.auth_mode == "local":
        paths.append(("local_issuer_key", settings.local_issuer_key_file))
    paths += [
        (name, path)
        for name, path in (
            ("staff_file", settings.staff_file),
            ("retention_rules", settings.retention_rules_path),
        )
        if path is not None
    ]
    return [(name, str(path)) for name, path in paths]


def _serve(args: argparse.Namespace) -> int:
    settings = settings_or_fail(office=args.office)
    if settings.public_base_url is None and settings.deployment != "production":
        # The mails' links lead to this server (`bin/demo --port 8001` too), not to a
        # default port; production names its public address itself.
        served_at = f"http://{_display_host(args.host)}:{args.port}"
        settings = settings.model_copy(update={"public_base_url": served_at})
    problems = deployment_problems(settings)
    if problems:
        raise CliFailure(
            EXIT_USAGE,
            f"refusing to start, {len(problems)} problem(s) with the settings: "
            + "; ".join(problems),
        )

    if args.demo and settings.staff_file is None:
        # The demo office's report and workload show staff from the example plan.
        settings = settings.model_copy(update={"staff_file": EXAMPLE_STAFF_FILE})
    with _open_service(settings) as service, ExitStack() as serving:
        stand_in_url = None
        if args.demo:
            # The stand-in ePayment platform runs beside the demo and stops with it.
            paying, stand_in = serving.enter_context(
                demo_payments(settings, port=args.stand_in_port)
            )
            if stand_in is not None:
                settings, stand_in_url = paying, stand_in.base_url
        try:
            # Built before the demo loads: unusable authentication fails at once.
            app = serving.enter_context(served_app(settings, service))
        except (AuthConfigurationError, LocalIssuerKeyError) as error:
            raise CliFailure(EXIT_USAGE, f"refusing to start: {error}") from None
        _serve_app(args, settings, service, app, stand_in_url=stand_in_url)
    return EXIT_OK


def demo_pages(settings: Settings, base: str, stand_in_url: str | None) -> str:
    """The start message's list of what to open in a browser in the demo."""
    pages = [
        ("start page", "/"),
        ("book an appointment", "/booking"),
        ("contact form", "/contact"),
        ("commitment declaration", "/declaration"),
    ]
    if settings.mails_to_mailbox and settings.deployment != "production":
        pages.append(("mailbox (development)", "/dev/mailbox"))
    lines = ["Pages of the demo:"]
    lines += [f"  {label:<26}{base}{path}" for label, path in pages]
    if stand_in_url is not None:
        lines.append(f"  {'stand-in ePayment':<26}{stand_in_url} (pay declarations here)")
    return "\n".join(lines)


def _how_to_get_a_token(settings: Settings, base: str) -> str:
    if settings.auth_mode == "oidc":
        return f"Bearer tokens come from the identity provider {settings.oidc_issuer}."
    users = ", ".join(
        f"{user.user_id} ({user.description}, {user.office_id})"
        for user in demo_users(settings.default_office_id).values()
    )
    return (
        "Local tokens (development only): akte token USER [--role ROLE] [--office OFFICE]\n"
        f"  demo users: {users}\n"
        f'  e.g.: curl -H "Authorization: Bearer $(akte token sb-01)" {base}/cases/<id>'
    )


def _display_host(host: str) -> str:
    """Where a browser on this machine reaches a server bound to ``host``."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _demo(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with _open_service(settings) as service:
        _load_demo(service, settings, cases=args.cases, seed=args.seed)
    return EXIT_OK


def _case_id(service: AkteService, settings: Settings, given: str) -> UUID:
    """A case id, or else a file number (Aktenzeichen) in the default office."""
    try:
        return UUID(given)
    except ValueError:
        pass
    try:
        return service.find_case_by_reference(settings.default_office_id, given)
    except ReferenceNotFound:
        raise CliFailure(
            EXIT_NOT_FOUND,
            f"neither a case id nor a file number in office {settings.default_office_id}",
        ) from None


def _case_show(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with _open_service(settings) as service:
        case_id = _case_id(service, settings, args.case)
        try:
            case = service.get_case(case_id, version=args.version)
        except CaseNotFound as error:
            raise CliFailure(EXIT_NOT_FOUND, str(error)) from None
        print(json.dumps(_case_state(case), ensure_ascii=False, indent=2, default=_json_value))
    return EXIT_OK


def _case_events(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with _open_service(settings) as service:
        case_id = _case_id(service, settings, args.case)
        try:
            events = service.case_events(case_id, after_version=args.after, limit=args.limit)
        except CaseNotFound as error:
            raise CliFailure(EXIT_NOT_FOUND, str(error)) from None
        for event in events:
            print(json.dumps(_event_record(event), ensure_ascii=False, default=_json_value))
    return EXIT_OK


def _token(args: argparse.Namespace) -> int:
    """Print an access token for a demo user, signed by the local issuer."""
    settings = settings_or_fail()
    if settings.auth_mode != "local":
        raise CliFailure(
            EXIT_USAGE,
            "akte token works in local mode only (AKTE_AUTH_MODE=local); with oidc, "
            "tokens come from the identity provider",
        )
    try:
        check_auth_settings(settings)
    except AuthConfigurationError as error:
        raise CliFailure(EXIT_USAGE, f"no local tokens: {error}") from None
    user_id: str = args.user
    if not user_id or len(user_id) > MAX_USER_ID or not user_id.isprintable() or " " in user_id:
        raise CliFailure(EXIT_USAGE, f"USER must be an account id of 1 to {MAX_USER_ID} characters")
    users = demo_users(settings.default_office_id)
    known = users.get(user_id)
    roles = [Role(role) for role in args.role] if args.role else None
    if roles is None:
        if known is None:
            raise CliFailure(
                EXIT_USAGE,
                f"{user_id} is not a demo user ({', '.join(users)}); name its --role",
            )
        roles = list(known.roles)
    office_id = args.office or (known.office_id if known else settings.default_office_id)
    try:
        require_code("office", office_id)
    except InvalidValue as error:
        raise CliFailure(EXIT_USAGE, f"--office {error.message.removeprefix('office: ')}") from None
    key_file = settings.local_issuer_key_file
    if not key_file.exists() and not args.create_key:
        # A new key signs tokens the running server does not accept (401): most likely
        # the command runs with another AKTE_DATA_DIR (or in another directory) than it.
        raise CliFailure(
            EXIT_EMPTY,
            f"no signing key at {key_file}: akte serve creates it; run akte token with the "
            "server's AKTE_DATA_DIR (or AKTE_LOCAL_ISSUER_KEY_PATH), or pass --create-key "
            "to make a new one",
        )
    try:
        issuer = LocalIssuer.load_or_create(key_file)
    except LocalIssuerKeyError as error:
        raise CliFailure(EXIT_USAGE, str(error)) from None
    token = issuer.issue(
        user_id=user_id,
        roles=roles,
        office_id=office_id,
        lifetime=timedelta(minutes=args.minutes),
    )
    print(token)
    print(
        f"akte: token for {user_id} ({', '.join(role.value for role in roles)}; "
        f"office {office_id}), valid {args.minutes} minutes",
        file=sys.stderr,
    )
    return EXIT_OK


def _config_check(args: argparse.Namespace) -> int:
    """The effective settings, secrets masked, and every problem: 0 usable, 2 not."""
    reading = read_settings()
    problems = list(reading.problems)
    settings = reading.settings
    if settings is not None and not problems:
        try:
            settings = settings_or_fail(office=args.office)
        except CliFailure as failure:
            problems.append(str(failure))
    if settings is not None:
        problems += deployment_problems(settings)
    if settings is not None:
        secrets = set(secret_fields())
        for name in type(settings).model_fields:
            value = getattr(settings, name)
            if name in secrets:
                shown = "(unset)" if value is None or not value.get_secret_value() else "********"
            else:
                shown = "(unset)" if value is None else str(value)
            print(f"{setting_variable(name)}={shown}")
    for problem in problems:
        print(f"akte: {problem}", file=sys.stderr)
    if problems:
        print(f"akte: {len(problems)} problem(s) with the settings", file=sys.stderr)
        return EXIT_USAGE
    print("akte: the settings are usable", file=sys.stderr)
    return EXIT_OK


def _version() -> str:
    try:
        return importlib.metadata.version("akte")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


# ------------------------------------------------------------------ output


def _case_state(case: CaseFile) -> dict[str, Any]:
    """The case file's state as plain data: its public attributes, id and version."""
    state: dict[str, Any] = {
        "id": case.id,
        "version": case.version,
        "created_on": case.created_on,
        "modified_on": case.modified_on,
    }
    state |= {name: value for name, value in vars(case).items() if not name.startswith("_")}
    return state


_EVENT_HEADER_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by", "at"}
)


def _event_record(event: CaseFile.Event) -> dict[str, Any]:
    """One event as plain data: kind, version, who, business and recorded time, fields."""
    record: dict[str, Any] = {
        "version": event.originator_version,
        "type": type(event).__name__,
        "by": event.by,
        "at": event.at,
        "recorded_at": event.timestamp,
    }
    if dataclasses.is_dataclass(event):
        for item in dataclasses.fields(event):
            if item.name not in _EVENT_HEADER_FIELDS:
                record[item.name] = getattr(event, item.name)
    return record


def _json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {item.name: getattr(value, item.name) for item in dataclasses.fields(value)}
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


# ------------------------------------------------------------------ parser


def _not_negative(text: str) -> int:
    number = int(text)
    if number < 0:
        msg = f"must not be negative, not {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="akte",
        description="Akte: case processing for a foreigners' office (Ausländerbehörde).",
        epilog="The store is chosen by AKTE_STORE, AKTE_DATA_DIR and AKTE_POSTGRES_*. "
        "Exit codes: "
        + ", ".join(f"{code} {meaning.split(':')[0]}" for code, meaning in EXIT_CODES.items())
        + " (docs/reference/cli.md).",
    )
    parser.add_argument("--version", action="version", version=f"akte {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="serve the HTTP API")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=8000, help="port (default %(default)s)")
    serve.add_argument(
        "--demo", action="store_true", help="load a demo office first, if the store is empty"
    )
    serve.add_argument(
        "--office",
        help="offices as shards: serve only this office's shard (default AKTE_SHARD_OFFICE)",
    )
    serve.add_argument(
        "--stand-in-port",
        type=int,
        default=0,
        help="with --demo: port of the stand-in ePayment platform (default: a free one)",
    )
    _demo_arguments(serve)
    serve.set_defaults(run=_serve)

    demo = commands.add_parser("demo", help="load a demo office into an empty store")
    _demo_arguments(demo)
    demo.set_defaults(run=_demo)

    case = commands.add_parser("case", help="look at one case file")
    case_commands = case.add_subparsers(dest="case_command", required=True, metavar="COMMAND")
    show = case_commands.add_parser("show", help="print the case file's state as JSON")
    show.add_argument("case", metavar="CASE", help="case id or file number")
    show.add_argument("--version", type=positive_int, help="the state as of this version")
    show.set_defaults(run=_case_show)
    events = case_commands.add_parser("events", help="print the case file's events, one per line")
    events.add_argument("case", metavar="CASE", help="case id or file number")
    events.add_argument(
        "--after", type=_not_negative, default=0, help="only events after this version"
    )
    events.add_argument("--limit", type=positive_int, help="at most this many events")
    events.set_defaults(run=_case_events)

    token = commands.add_parser(
        "token",
        help="print an access token for a demo user (local mode, development only)",
        description=(
            "Print a bearer token signed by the local issuer. Demo users: "
            + ", ".join(
                f"{user.user_id} ({user.description})"
                for user in demo_users(DEFAULT_OFFICE_ID).values()
            )
            + ". Other users need --role."
        ),
    )
    token.add_argument("user", metavar="USER", help="the account id (the token's subject)")
    token.add_argument(
        "--role",
        action="append",
        choices=[role.value for role in Role],
        help="a role (repeatable); default: the demo user's",
    )
    token.add_argument(
        "--office",
        help="the account's office; default: the demo user's, else AKTE_DEFAULT_OFFICE_ID",
    )
    token.add_argument(
        "--minutes",
        type=_token_minutes,
        default=DEFAULT_TOKEN_MINUTES,
        help="how long the token is valid (default %(default)s)",
    )
    token.add_argument(
        "--create-key",
        action="store_true",
        help="make a new signing key if there is none (akte serve makes one otherwise)",
    )
    token.set_defaults(run=_token)

    config = commands.add_parser("config", help="the settings")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="COMMAND")
    check = config_commands.add_parser(
        "check",
        help="print the effective settings (secrets masked) and every problem with them",
        description=f"Exit code 0 when the settings are usable, {EXIT_USAGE} otherwise.",
    )
    check.add_argument("--office", help="offices as shards: the settings of this office's shard")
    check.set_defaults(run=_config_check)

    add_document_commands(commands)
    add_projection_commands(commands)
    add_simulator_commands(commands)
    add_report_command(commands)
    add_whatif_command(commands)
    add_history_command(commands)
    add_histories_commands(commands)
    add_audit_commands(commands)
    add_appointment_commands(commands)
    add_deadline_commands(commands)
    add_data_protection_commands(commands)
    add_backup_commands(commands)
    add_migrate_command(commands)
    add_outbox_commands(commands)
    add_inbox_commands(commands)
    add_offices_command(commands)
    add_transfer_commands(commands)
    return parser


def _token_minutes(text: str) -> int:
    minutes = positive_int(text)
    if minutes > MAX_TOKEN_MINUTES:
        msg = f"must be at most {MAX_TOKEN_MINUTES}, not {minutes}"
        raise argparse.ArgumentTypeError(msg)
    return minutes


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cases", type=positive_int, default=300, help="case files (default %(default)s)"
    )
    parser.add_argument(
        "--seed", type=int, default=2024, help="same seed, same office (default %(default)s)"
    )


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except CliFailure as failure:
        print(f"akte: {failure}", file=sys.stderr)
        return failure.exit_code
    except KeyboardInterrupt:
        print("akte: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
