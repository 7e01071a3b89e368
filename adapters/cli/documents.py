"""``akte import-scans`` and ``akte documents ...``: the document store from the shell.

* ``akte import-scans DIR``: import a batch of scanned legacy files
  (:mod:`adapters.documents.scan_import`), with a progress line on stderr and the report on stdout;
  run it again after an interruption to resume.
* ``akte documents sweep-orphans [--older-than 1d] [--dry-run]``: remove stored files no
  event references (:mod:`adapters.documents.sweep`).
* ``akte documents verify``: read every stored document and check it against its hash.

Expected failures end with one line on stderr and an exit code, never a traceback: 1 some
legacy files or documents failed (listed), 2 settings, store or usage problems, 130
interrupted. Nothing printed names a person: file numbers, positions and hashes only.
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Final

from adapters.cli.progress import ProgressDisplay, import_progress
from adapters.cli.support import (
    STORE_ERRORS,
    CliFailure,
    guarded,
    open_service,
    settings_or_fail,
)
from adapters.documents.scan_import import import_scans, report_lines
from adapters.documents.store import DocumentCorrupted, DocumentStoreError
from adapters.documents.sweep import DEFAULT_GRACE_PERIOD, sweep_orphans
from domain.case_file import require_code
from domain.errors import InvalidValue
from service_intake import SCAN_IMPORT_USER

EXIT_OK: Final = 0
EXIT_FAILURES: Final = 1
EXIT_UNAVAILABLE: Final = 3
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

_STORE_ERRORS: Final = (*STORE_ERRORS, DocumentStoreError)
_DURATION: Final = re.compile(r"(\d{1,6})([smhd])")
_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def add_document_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Adds ``import-scans`` and ``documents`` to the ``akte`` parser."""
    scans = commands.add_parser(
        "import-scans",
        help="import a batch of scanned legacy files (resumable)",
        description=(
            "Import scanned legacy paper files: DIR holds one folder per file, each with a "
            "manifest.json (file number, person, PDFs with page counts). Run it again after "
            "an interruption: what is on file already is skipped."
        ),
    )
    scans.add_argument("directory", metavar="DIR", type=Path, help="the batch directory")
    scans.add_argument(
        "--office", help="the office the files belong to (default AKTE_DEFAULT_OFFICE_ID)"
    )
    scans.add_argument(
        "--by",
        default=SCAN_IMPORT_USER,
        help="the user id the events record as acting (default %(default)s)",
    )
    scans.add_argument(
        "--report", type=Path, help="also write the report (with every failure) as JSON here"
    )
    scans.set_defaults(run=guarded(_import_scans))

    documents = commands.add_parser("documents", help="the document store")
    document_commands = documents.add_subparsers(
        dest="documents_command", required=True, metavar="COMMAND"
    )
    sweep = document_commands.add_parser(
        "sweep-orphans",
        help="remove stored files no event references",
        description=(
            "Remove stored documents that no event references (left behind when recording "
            "failed after storing), once older than --older-than. Never removes a "
            "referenced document. Run one sweep at a time."
        ),
    )
    sweep.add_argument(
        "--older-than",
        type=_duration,
        default=DEFAULT_GRACE_PERIOD,
        metavar="AGE",
        help="grace period, e.g. 30m, 12h, 7d (default 1d); 0s removes every orphan",
    )
    sweep.add_argument("--dry-run", action="store_true", help="count only, remove nothing")
    sweep.set_defaults(run=guarded(_sweep_orphans))
    verify = document_commands.add_parser(
        "verify", help="read every stored document and check it against its hash"
    )
    verify.set_defaults(run=guarded(_verify))


# ------------------------------------------------------------------ commands


def _import_scans(args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        raise CliFailure(EXIT_USAGE, f"{directory} is not a directory")
    settings = settings_or_fail()
    office_id: str = args.office or settings.default_office_id
    try:
        require_code("office", office_id)
    except InvalidValue as error:
        raise CliFailure(EXIT_USAGE, f"--office {error.message.removeprefix('office: ')}") from None
    with (
        ProgressDisplay() as display,
        open_service(settings, what="a store", store_errors=_STORE_ERRORS) as service,
    ):
        try:
            report = import_scans(
                service,
                directory,
                office_id=office_id,
                by=args.by,
                progress=import_progress(display),
            )
        except KeyboardInterrupt:
            display.end_line()
            raise CliFailure(
                EXIT_INTERRUPTED,
                f"interrupted after {display.done:,} of {display.total:,} legacy files; "
                "run the same command again to resume",
            ) from None
    for line in report_lines(report):
        print(line)
    if args.report is not None:
        args.report.write_text(json.dumps(report.as_json(), indent=2) + "\n", encoding="utf-8")
    return EXIT_FAILURES if report.failures else EXIT_OK


def _sweep_orphans(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with open_service(settings, what="a store", store_errors=_STORE_ERRORS) as service:
        report = sweep_orphans(
            service.intake.documents,
            service.intake.referenced_document_hashes,
            older_than=args.older_than,
            dry_run=args.dry_run,
        )
    verb = "would remove" if report.dry_run else "removed"
    print(
        f"{report.stored:,} documents stored: {report.referenced:,} referenced, "
        f"{report.recent:,} unreferenced but younger than {_format(args.older_than)}; "
        f"{verb} {report.removed:,} orphans ({report.removed_bytes / 1_000_000:,.1f} MB) "
        f"and {report.abandoned_writes_removed:,} abandoned writes"
    )
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    checked = 0
    corrupted: list[str] = []
    with open_service(settings, what="a store", store_errors=_STORE_ERRORS) as service:
        for entry in service.intake.documents.entries():
            try:
                service.intake.documents.verify(entry.sha256, size_bytes=entry.size_bytes)
            except DocumentCorrupted as error:
                corrupted.append(f"CORRUPTED {entry.sha256}: {error.reason}")
            checked += 1
    for line in corrupted:
        print(line)
    print(f"{checked:,} documents checked, {len(corrupted):,} corrupted")
    return EXIT_FAILURES if corrupted else EXIT_OK


# ------------------------------------------------------------------ plumbing


def _duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        msg = f"must be a number and a unit (s, m, h, d), e.g. 12h, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    amount, unit = match.groups()
    return timedelta(**{_UNITS[unit]: int(amount)})


def _format(age: timedelta) -> str:
    seconds = int(age.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
