"""``akte import-scans`` and ``akte documents ...``: the document store from the shell.

* ``akte import-scans DIR``: import a batch of scanned legacy files
  (:mod:`adapters.documents.scan_import`), with a progress line on stderr and the report on stdout;
  run it again after an interruption to resume.
* ``akte documents sweep-orphans [--older-than 1d] [--dry-run]``: remove stored files no
  event references (:mod:`adapters.documents.sweep`).
* ``akte documents verify``: read every referenced document, decrypt it with its owner's
  key and check it against its hash.
* ``akte documents encrypt [--batch-size N] [--limit N]``: encrypt the documents stored in
  clear before documents were encrypted per owner (:mod:`adapters.documents.encrypt_clear`),
  with a progress line on stderr; resumable, and safe to run again.

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
from adapters.documents.encrypt_clear import (
    DEFAULT_BATCH_SIZE,
    EncryptionProgress,
    encrypt_clear_documents,
)
from adapters.documents.encryption import DocumentErased, EncryptedDocumentStore
from adapters.documents.scan_import import import_scans, report_lines
from adapters.documents.store import DocumentCorrupted, DocumentNotStored, DocumentStoreError
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
        "verify", help="read every referenced document and check it against its hash"
    )
    verify.set_defaults(run=guarded(_verify))
    encrypt = document_commands.add_parser(
        "encrypt",
        help="encrypt the documents stored in clear, per owner (resumable)",
        description=(
            "Encrypt every document stored in clear (before documents were encrypted) with "
            "its owners' keys and remove the clear copy, in batches. Run it again after an "
            "interruption: it goes on where it stopped; over an encrypted store it does "
            "nothing."
        ),
    )
    encrypt.add_argument(
        "--batch-size",
        type=_positive,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help="documents between two progress reports and clean-ups (default %(default)s)",
    )
    encrypt.add_argument(
        "--limit",
        type=_positive,
        metavar="N",
        help="stop after N documents (spread the work over several runs)",
    )
    encrypt.set_defaults(run=guarded(_encrypt))


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
            service.intake.referenced_addresses,
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
    checked = erased = missing = 0
    corrupted: list[str] = []
    with open_service(settings, what="a store", store_errors=_STORE_ERRORS) as service:
        documents = service.intake.documents
        for reference in service.intake.referenced_documents():
            try:
                documents.verify(
                    reference.sha256, owner=reference.owner, size_bytes=reference.size_bytes
                )
            except DocumentErased:
                erased += 1
                continue
            except DocumentNotStored:
                missing += 1  # attached by reference only: never stored here
                continue
            except DocumentCorrupted as error:
                corrupted.append(f"CORRUPTED {reference.sha256}: {error.reason}")
            checked += 1
    for line in corrupted:
        print(line)
    print(
        f"{checked:,} documents checked, {len(corrupted):,} corrupted; "
        f"{erased:,} erased with their owners, {missing:,} not stored"
    )
    return EXIT_FAILURES if corrupted else EXIT_OK


def _encrypt(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    with (
        ProgressDisplay() as display,
        open_service(settings, what="a store", store_errors=_STORE_ERRORS) as service,
    ):
        documents = service.intake.documents
        if not isinstance(documents, EncryptedDocumentStore):
            raise CliFailure(EXIT_USAGE, "the service's document store does not encrypt")

        def progress(step: EncryptionProgress) -> None:
            display.update(
                step.done,
                step.total,
                lambda: (
                    f"{step.done:,} of {step.total:,} documents encrypted "
                    f"({step.copies:,} copies, one per owner)"
                ),
            )

        try:
            report = encrypt_clear_documents(
                documents,
                service.intake.referenced_documents(),
                batch_size=args.batch_size,
                limit=args.limit,
                progress=progress,
            )
        except KeyboardInterrupt:
            display.end_line()
            raise CliFailure(
                EXIT_INTERRUPTED,
                f"interrupted after {display.done:,} of {display.total:,} documents; "
                "run the same command again to resume",
            ) from None
    for sha256 in report.failed:
        print(f"CORRUPTED {sha256}: left in clear")
    print(
        f"{report.clear_found:,} documents in clear: {report.encrypted:,} encrypted "
        f"({report.copies:,} copies), {report.erased_removed:,} removed (owners erased), "
        f"{len(report.failed):,} failed, {report.remaining:,} left for another run"
    )
    return EXIT_FAILURES if report.failed else EXIT_OK


# ------------------------------------------------------------------ plumbing


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        msg = f"must be a whole number of at least 1, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return number


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
