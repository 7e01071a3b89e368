"""``akte offices status|verify|find``: reads across the offices' shards, for the roles
whose work spans offices (auditors, the data protection officer).

With offices as shards (``AKTE_SHARD_BY_OFFICE=true``) every other command works on one
office's shard. These fan out: each office's shard is opened on the server it lives on
(``AKTE_OFFICE_SERVERS``; the others on ``AKTE_POSTGRES_HOST``), all at once, one thread
per office, and each office answers for itself: a server that cannot be reached is named
in its office's line, and the others still answer.

- ``status``: per office its server, schema and log head;
- ``verify``: ``akte audit verify`` of every office's hash chain;
- ``find CASE_ID``: which office holds a case file (its id only: nothing is decrypted).

Exit codes: 0 every office answered (and, for ``verify``, every chain is intact; for
``find``, an office holds the case), 1 ``find`` found no office holding it, 2 settings,
3 an office's store could not be reached, 4 an office's chain is broken.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Final, Generic, TypeVar
from uuid import UUID

import psycopg

from adapters.bootstrap import open_views_store, shard_schema_exists
from adapters.cli.audit import report_json
from adapters.cli.support import (
    EXIT_BROKEN,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliFailure,
    first_line,
    guarded,
    open_service,
    settings_or_fail,
)
from adapters.monitoring import runs
from adapters.settings import Settings
from adapters.settings_sources import read_settings
from adapters.store.hash_chain import ChainSource, VerifyReport, verify_chains
from service import AkteService

T = TypeVar("T")

CASE_FILE_TOPIC: Final = "domain.case_file:CaseFile."
"""The topics of a case file's events (the store also holds other aggregates)."""


@dataclass(frozen=True)
class OfficeAnswer(Generic[T]):
    """One office's answer to a fanned-out read, or why it gave none."""

    office_id: str
    server: str
    """``host:port/database`` (never the password)."""
    schema: str
    answer: T | None = None
    unavailable: str | None = None


def add_offices_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    offices = subparsers.add_parser(
        "offices",
        help="reads across the offices' shards, on every server (auditors, data protection)",
        description="Fans a read out over every office of AKTE_OFFICES, each on its server "
        "(AKTE_OFFICE_SERVERS), all at once; an unreachable server is named, the others "
        "still answer.",
    )
    commands = offices.add_subparsers(dest="offices_command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="each office's server, schema and log head")
    status.add_argument("--json", action="store_true", help="JSON instead of lines")
    status.set_defaults(run=guarded(_status))
    verify = commands.add_parser("verify", help="akte audit verify of every office's chain")
    verify.add_argument("--json", action="store_true", help="JSON instead of lines")
    verify.set_defaults(run=guarded(_verify))
    find = commands.add_parser("find", help="which office holds a case file (by its id)")
    find.add_argument("case_id", metavar="CASE_ID", type=_case_id, help="the case file's id")
    find.add_argument("--json", action="store_true", help="JSON instead of lines")
    find.set_defaults(run=guarded(_find))


def _case_id(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        msg = "a case id (UUID); a file number names one office: ask that office's shard"
        raise argparse.ArgumentTypeError(msg) from None


def deployment_settings() -> Settings:
    """The deployment's settings as the environment gives them, before any office's shard
    is chosen (every other command works on one office's)."""
    reading = read_settings()
    if reading.settings is None or reading.problems:
        problems = "; ".join(reading.problems) or "unreadable settings"
        raise CliFailure(EXIT_USAGE, f"invalid settings: {problems}")
    return reading.settings


def office_settings(settings: Settings) -> dict[str, Settings]:
    """Each office's settings, pointing at its shard on its server."""
    if settings.store != "postgres" or not settings.shard_by_office:
        raise CliFailure(
            EXIT_USAGE,
            "akte offices reads across shards: it needs AKTE_STORE=postgres, "
            "AKTE_SHARD_BY_OFFICE=true and AKTE_OFFICES",
        )
    if not settings.office_shards:
        raise CliFailure(EXIT_USAGE, "AKTE_OFFICES names no office")
    return {office: settings_or_fail(office) for office in settings.office_shards}


def fan_out(settings: Settings, read: Callable[[str, AkteService], T]) -> list[OfficeAnswer[T]]:
    """``read(office, service)`` on every office's shard at once, in the order of
    ``AKTE_OFFICES``."""
    shards = office_settings(settings)

    def one(office_id: str) -> OfficeAnswer[T]:
        shard = shards[office_id]
        server = f"{shard.postgres_host}:{shard.postgres_port}/{shard.postgres_dbname}"
        schema = shard.postgres_schema
        try:
            present = shard_schema_exists(shard)
        except psycopg.Error as error:
            reason = f"office {office_id}'s store is unavailable: {first_line(error)}"
            return OfficeAnswer(office_id, server, schema, unavailable=reason)
        if not present:
            # Never made here: an empty shard would say the office has no files (an
            # entry of AKTE_OFFICE_SERVERS changed before the restore, or a typo).
            missing = f"office {office_id}'s schema {schema} is not on {server}"
            return OfficeAnswer(office_id, server, schema, unavailable=missing)
        try:
            with open_service(shard, what=f"office {office_id}'s store") as service:
                return OfficeAnswer(office_id, server, schema, answer=read(office_id, service))
        except CliFailure as failure:
            return OfficeAnswer(office_id, server, schema, unavailable=str(failure))

    with ThreadPoolExecutor(max_workers=len(shards), thread_name_prefix="office") as pool:
        return list(pool.map(one, shards))


def _head(_office_id: str, service: AkteService) -> int:
    return int(service.recorder.max_notification_id() or 0)


def _status(args: argparse.Namespace) -> int:
    answers = fan_out(deployment_settings(), _head)
    if args.json:
        print(json.dumps([_json(a, {"log_head": a.answer}) for a in answers], indent=2))
    for answer in answers if not args.json else ():
        said = answer.unavailable or f"log head {answer.answer:,}"
        print(f"{answer.office_id}: {answer.server}, schema {answer.schema}: {said}")
    return _unavailable_or(answers, EXIT_OK)


def _verify(args: argparse.Namespace) -> int:
    shards = office_settings(deployment_settings())

    def verify(office_id: str, service: AkteService) -> VerifyReport:
        started = runs.now()
        source: ChainSource = service.recorder  # type: ignore[assignment]
        report = verify_chains(source)
        # Each office's run counts as that office's verification, for its monitoring.
        runs.note_run(
            lambda: open_views_store(shards[office_id]),
            runs.AUDIT_VERIFY,
            started_at=started,
            result="ok" if report.ok else "broken",
            steps=report.events,
        )
        return report

    answers = fan_out(deployment_settings(), verify)
    if args.json:
        print(
            json.dumps(
                [
                    _json(a, {"verify": None if a.answer is None else report_json(a.answer)})
                    for a in answers
                ],
                indent=2,
            )
        )
    for answer in answers if not args.json else ():
        if answer.answer is None:
            print(f"{answer.office_id}: {answer.server}: {answer.unavailable}")
            continue
        report = answer.answer
        state = "intact" if report.ok else f"BROKEN: {report.first}"
        print(
            f"{answer.office_id}: {answer.server}, schema {answer.schema}: {state}, "
            f"{report.events:,} events, head {report.head}"
        )
    broken = any(a.answer is not None and not a.answer.ok for a in answers)
    return _unavailable_or(answers, EXIT_BROKEN if broken else EXIT_OK)


def _find(args: argparse.Namespace) -> int:
    case_id: UUID = args.case_id

    def holds(_office_id: str, service: AkteService) -> bool:
        # The first stored event only: whether the case is here, never its content.
        first = service.recorder.select_events(case_id, limit=1)
        return bool(first) and first[0].topic.startswith(CASE_FILE_TOPIC)

    answers = fan_out(deployment_settings(), holds)
    holders = [a.office_id for a in answers if a.answer]
    if args.json:
        print(json.dumps({"case_id": str(case_id), "offices": holders}))
    else:
        for answer in answers:
            if answer.unavailable:
                print(f"{answer.office_id}: {answer.server}: {answer.unavailable}")
        print(
            f"case {case_id}: office {', '.join(holders)}"
            if holders
            else f"case {case_id}: no office that answered holds it"
        )
    if holders:
        return EXIT_OK
    return _unavailable_or(answers, EXIT_FAILED)


def _json(answer: OfficeAnswer[T], fields: dict[str, object]) -> dict[str, object]:
    return {
        "office_id": answer.office_id,
        "server": answer.server,
        "schema": answer.schema,
        "unavailable": answer.unavailable,
        **(fields if answer.unavailable is None else {}),
    }


def _unavailable_or(answers: list[OfficeAnswer[T]], exit_code: int) -> int:
    unreachable = [a.office_id for a in answers if a.unavailable is not None]
    if unreachable:
        print(f"akte: no answer from office {', '.join(unreachable)}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return exit_code
