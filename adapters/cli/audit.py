"""``akte audit ...``: check that the event log is intact, export a case for offline checks.

``add_audit_commands(subparsers)`` adds the ``audit`` command to the ``akte`` parser:

- ``akte audit verify [--anchor NID:HASH]... [--json]`` recomputes both hash chains over
  the whole log (:mod:`adapters.store.hash_chain`), prints the first broken links with stream,
  version and notification id, the log's head and the rate in events/s. Exit code 0: intact;
  4: broken; 6: no SQLite store where the settings point (it is not created). Each run
  is recorded for monitoring (:mod:`adapters.monitoring.runs`).
- ``akte audit export CASE [--out FILE]`` writes the case's history as a self-contained
  script that verifies it offline (:mod:`adapters.reports.audit_export`).

Expected failures end with one line on stderr: 1 unknown case, 2 settings or store.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TextIO
from uuid import UUID

from adapters.bootstrap import open_views_store
from adapters.cli.progress import ProgressDisplay, VerifyProgress
from adapters.cli.support import (
    CliFailure,
    guarded,
    open_service,
    positive_int,
    refuse_missing_sqlite_store,
    settings_or_fail,
)
from adapters.monitoring import runs
from adapters.reports.audit_export import NothingToExport, export_case
from adapters.settings import Settings
from adapters.store.hash_chain import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_FINDINGS,
    Anchor,
    ChainSource,
    VerifyReport,
    verify_chains,
)
from service import AkteService
from service_common import ReferenceNotFound

EXIT_OK: Final = 0
EXIT_NOT_FOUND: Final = 1
EXIT_UNAVAILABLE: Final = 3
EXIT_BROKEN: Final = 4
EXIT_INTERRUPTED: Final = 130


def add_audit_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "audit", help="tamper evidence: verify the event log's hash chains, export a case"
    )
    commands = parser.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    verify = commands.add_parser(
        "verify",
        help="recompute the hash chains of the whole log; exit code 4 if one is broken",
    )
    verify.add_argument(
        "--anchor",
        action="append",
        type=_anchor,
        default=[],
        metavar="NID:HASH",
        help="a head printed by an earlier verify: the log must still pass through it",
    )
    verify.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="events read per query (default %(default)s)",
    )
    verify.add_argument(
        "--max-findings",
        type=positive_int,
        default=DEFAULT_MAX_FINDINGS,
        help="broken links listed at most (default %(default)s)",
    )
    verify.add_argument(
        "--in-python",
        action="store_true",
        help=(
            "recompute every hash here, not by the database server (on PostgreSQL the "
            "server checks the links first by default; this is about five times slower)"
        ),
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.set_defaults(run=guarded(run_verify))

    export = commands.add_parser(
        "export", help="write a case's history as a script that verifies it offline"
    )
    export.add_argument("case", metavar="CASE", help="case id or file number")
    export.add_argument(
        "--out", type=Path, help="the file to write (default: akte-case-<id>.py here)"
    )
    export.set_defaults(run=guarded(run_export))


def report_json(report: VerifyReport) -> dict[str, Any]:
    """The report as JSON: ids, versions, positions and hashes only, no personal data."""
    return {
        "ok": report.ok,
        "events": report.events,
        "chain_entries": report.entries,
        "head": report.head,
        "sealed": None
        if report.seal is None
        else {
            "up_to_notification_id": report.seal.sealed_up_to,
            "at": report.seal.sealed_at.isoformat(),
        },
        "anchors": report.anchors,
        "first_break": None if report.first is None else _finding_json(report.first),
        "breaks": [_finding_json(finding) for finding in report.findings],
        "more_breaks": report.more_findings,
        "checked_on_server": report.checked_on_server,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.events_per_second),
    }


def _finding_json(finding: Any) -> dict[str, Any]:
    return {
        "kind": finding.kind.value,
        "notification_id": finding.notification_id,
        "stream": finding.stream,
        "version": finding.version,
        "chain": finding.chain,
        "detail": finding.detail,
    }


def run_verify(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    refuse_missing_sqlite_store(settings, "akte audit verify")
    started = runs.now()
    try:
        with (
            ProgressDisplay(off_terminal="finished") as display,
            _chain_source(settings) as source,
        ):
            report = verify_chains(
                source,
                batch_size=args.batch_size,
                max_findings=args.max_findings,
                anchors=args.anchor,
                progress=VerifyProgress(display),
                server_digests=not args.in_python,
            )
    except CliFailure as failure:
        # The log could not be read: a failed verification. (An empty store where a
        # populated one was expected, or a schema to migrate, is no run.)
        if failure.exit_code == EXIT_UNAVAILABLE:
            _note_verify(settings, started, "failed", 0)
        raise
    _note_verify(settings, started, "ok" if report.ok else "broken", report.events)
    if args.json:
        print(json.dumps(report_json(report), indent=2))
    else:
        _print_report(report, sys.stdout)
    return EXIT_OK if report.ok else EXIT_BROKEN


def _note_verify(settings: Settings, started: datetime, result: runs.Result, events: int) -> None:
    """The run, for monitoring (``akte_task_last_run_ok{task="audit_verify"}`` and its age)."""
    runs.note_run(
        lambda: open_views_store(settings),
        runs.AUDIT_VERIFY,
        started_at=started,
        result=result,
        steps=events,
    )


def _print_report(report: VerifyReport, out: TextIO) -> None:
    if report.seal is None:
        print("note: no seal record: the chain's start is unknown (deleted?)", file=out)
    elif report.seal.sealed_up_to:
        print(
            f"note: events up to notification {report.seal.sealed_up_to} were chained when "
            f"tamper evidence was introduced ({report.seal.sealed_at:%Y-%m-%d %H:%M} UTC), "
            "not when they were written",
            file=out,
        )
    for finding in report.findings:
        print(f"BROKEN: {finding}", file=out)
    if report.more_findings:
        print("... and more (--max-findings)", file=out)
    verdict = "OK" if report.ok else "BROKEN"
    print(
        f"{verdict}: {report.events:,} events, {report.entries:,} chain entries verified in "
        f"{report.seconds:.1f} s ({report.events_per_second:,.0f} events/s)",
        file=out,
    )
    print(f"head {report.head}", file=out)
    if report.ok:
        print("keep the head outside the database; pass it later as --anchor", file=out)


def run_export(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with open_service(settings) as service:
        case_id = _case_id(service, settings, args.case)
        out: Path = args.out or Path(f"akte-case-{case_id}.py")
        try:
            export = export_case(_source_of(service), case_id, name=out.name)
        except NothingToExport:
            raise CliFailure(EXIT_NOT_FOUND, f"case file {case_id} does not exist") from None
    out.write_text(export.script, encoding="utf-8")
    print(
        f"wrote {out}: {export.events} events, stream head {export.stream_head}\n"
        f"verify it anywhere with: python3 {out}",
        file=sys.stderr,
    )
    return EXIT_OK


# ------------------------------------------------------------------- plumbing


@contextmanager
def _chain_source(settings: Settings) -> Iterator[ChainSource]:
    with open_service(settings) as service:
        yield _source_of(service)


def _source_of(service: AkteService) -> ChainSource:
    recorder: ChainSource = service.recorder  # type: ignore[assignment]
    if not hasattr(recorder, "stream_rows"):
        raise CliFailure(EXIT_UNAVAILABLE, "the event store is not configured with the hash chain")
    return recorder


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


def _anchor(text: str) -> Anchor:
    try:
        return Anchor.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
