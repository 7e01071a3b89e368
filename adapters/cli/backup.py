"""``akte backup``, ``akte restore``: back up a running store, restore into an empty one,
and drill the restore.

- ``akte backup DEST [--with-views]``: events (with the hash chain), keys, documents and
  the office's settings into the new directory DEST, with ``manifest.json`` (head, counts,
  checksums); :mod:`adapters.backup.take` explains the order.
- ``akte restore SRC [--erasure-journal FILE ...]``: verify SRC's checksums, restore it
  into the empty store of the settings, complete erasures whose keys the backup still
  held, and erase again what the erasure journal(s) list (``AKTE_ERASURE_JOURNAL_PATH`` and
  each FILE): erasures made after the backup was taken.
- ``akte backup drill SRC`` (= ``akte restore --drill SRC``): restore into a scratch
  place and check it (:mod:`adapters.backup.drill`); exit code 0 only if all holds.

Exit codes: 1 the target is not empty / the drill found a problem, 2 usage or settings,
3 a store is unavailable, 4 the backup is corrupted (a checksum does not match, an
unreadable manifest), 6 ``akte backup`` found no store where the settings point.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Final

from adapters.backup.drill import DrillReport, run_drill
from adapters.backup.manifest import BackupCorrupted, BackupError, TargetNotEmpty
from adapters.backup.restore import restore_backup
from adapters.backup.stores import Progress
from adapters.backup.take import take_backup
from adapters.cli.progress import ProgressDisplay
from adapters.cli.support import (
    EXIT_BROKEN,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    STORE_ERRORS,
    CliFailure,
    first_line,
    guarded,
    open_service,
    refuse_missing_sqlite_store,
    settings_or_fail,
    store_location,
)
from adapters.documents.store import DocumentStoreError
from adapters.settings import Settings

_STORE_ERRORS: Final = (*STORE_ERRORS, DocumentStoreError, OSError)


def add_backup_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = subparsers.add_parser(
        "backup",
        help="back up events, keys, documents and settings (akte backup drill SRC: drill it)",
        description="akte backup DEST takes a backup into the new directory DEST; "
        "akte backup drill SRC restores SRC into a scratch place and checks it.",
    )
    backup.add_argument(
        "paths", nargs="+", metavar="DEST", help="the backup's new directory (or: drill SRC)"
    )
    backup.add_argument(
        "--with-views", action="store_true", help="also the read models (else rebuilt)"
    )
    _common(backup)
    backup.set_defaults(run=guarded(_backup))

    restore = subparsers.add_parser(
        "restore", help="restore a backup into an empty store (--drill: into a scratch place)"
    )
    restore.add_argument("source", type=Path, metavar="SRC", help="the backup's directory")
    restore.add_argument(
        "--drill", action="store_true", help="restore into a scratch place and check it"
    )
    restore.add_argument(
        "--erasure-journal",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="also apply this erasure journal (e.g. the old data directory's); repeatable",
    )
    _common(restore)
    restore.set_defaults(run=guarded(_restore))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--office", help="offices as shards: the office whose shard (default AKTE_SHARD_OFFICE)"
    )
    parser.add_argument(
        "--scratch-dir", type=Path, help="drill: where the scratch directory goes (default TMP)"
    )


def _backup(args: argparse.Namespace) -> int:
    paths: list[str] = args.paths
    if paths[0] == "drill":
        # "drill" is the sub-command, never a backup directory: without SRC, the
        # command would otherwise take a backup into ./drill and report success.
        if len(paths) != 2:
            raise CliFailure(EXIT_USAGE, "akte backup drill SRC: name the backup to drill")
        return _drill(Path(paths[1]), args)
    if len(paths) != 1:
        raise CliFailure(EXIT_USAGE, "akte backup DEST, or akte backup drill SRC")
    _refuse_scratch_dir(args)
    settings = settings_or_fail(args.office)
    refuse_missing_sqlite_store(settings, "akte backup")
    dest = Path(paths[0])
    started = time.monotonic()
    with (
        ProgressDisplay() as display,
        open_service(settings, what="a store", store_errors=_STORE_ERRORS) as service,
    ):
        try:
            manifest = take_backup(
                settings,
                dest,
                service=service,
                with_views=args.with_views,
                progress=_progress(display),
            )
        except BackupError as error:
            raise CliFailure(EXIT_USAGE, str(error)) from None
    counts = manifest.counts
    print(
        f"backup of {store_location(settings)} in {dest}: {counts.get('events', 0):,} events "
        f"up to {manifest.head}, {counts.get('keys', 0):,} keys, "
        f"{counts.get('documents', counts.get('document_files', 0)):,} documents, "
        f"{'with' if manifest.with_views else 'without'} read models, "
        f"{len(manifest.files):,} files in {time.monotonic() - started:.1f} s"
    )
    if manifest.head_anchor:
        print(f"head {manifest.head_anchor} (keep it outside the backup: --anchor)")
    return EXIT_OK


def _restore(args: argparse.Namespace) -> int:
    if args.drill:
        return _drill(args.source, args)
    _refuse_scratch_dir(args)
    settings = settings_or_fail(args.office)
    with ProgressDisplay() as display:
        try:
            report = restore_backup(
                settings,
                args.source,
                progress=_progress(display),
                journals=args.erasure_journal,
            )
        except BackupCorrupted as error:
            raise CliFailure(EXIT_BROKEN, f"nothing restored: {error}") from None
        except TargetNotEmpty as error:
            raise CliFailure(EXIT_FAILED, str(error)) from None
        except BackupError as error:
            raise CliFailure(EXIT_USAGE, f"nothing restored: {error}") from None
        except _STORE_ERRORS as error:
            raise CliFailure(EXIT_UNAVAILABLE, f"a store failed: {first_line(error)}") from None
    print(f"restored {report.events:,} events up to {report.head} into {store_location(settings)}")
    if report.erased_with_keys:
        print(
            f"completed {len(report.erased_with_keys)} erasure(s) whose keys the backup still "
            f"held ({report.keys_destroyed} keys destroyed)"
        )
    print(
        f"erasure journal: {report.journal_entries} erasure(s) applied; "
        f"{len(report.journal_erasures)} case file(s) had keys in the backup "
        f"({report.journal_keys_destroyed} keys destroyed again)"
    )
    for case_id in report.journal_erasures:
        print(f"  erased again: case file {case_id}")
    print("next: akte projections rebuild (or let akte serve catch up)")
    return EXIT_OK


def _refuse_scratch_dir(args: argparse.Namespace) -> None:
    """Only a drill has a scratch place: the option elsewhere is a mistaken command,
    not one to run without it."""
    if args.scratch_dir is not None:
        raise CliFailure(
            EXIT_USAGE,
            "--scratch-dir belongs to a drill: akte backup drill SRC or akte restore --drill SRC",
        )


def _drill(source: Path, args: argparse.Namespace) -> int:
    settings: Settings = settings_or_fail(args.office)
    with ProgressDisplay() as display:
        try:
            report = run_drill(
                settings, source, scratch_root=args.scratch_dir, progress=_progress(display)
            )
        except BackupCorrupted as error:
            raise CliFailure(EXIT_BROKEN, f"drill failed: {error}") from None
        except BackupError as error:
            raise CliFailure(EXIT_USAGE, f"drill failed: {error}") from None
        except _STORE_ERRORS as error:
            raise CliFailure(EXIT_UNAVAILABLE, f"a store failed: {first_line(error)}") from None
    _print_drill(report)
    return EXIT_OK if report.ok else EXIT_FAILED


def _print_drill(report: DrillReport) -> None:
    manifest = report.manifest
    print(
        f"drill of a {manifest.store} backup taken {manifest.created_at} "
        f"(Akte {manifest.akte_version}), head {manifest.head}"
    )
    for check in report.checks:
        print(f"  {'ok  ' if check.ok else 'FAIL'} {check.name}: {check.detail}")
    for finding in report.findings:
        print(f"  finding: {finding}")
    print("OK: the backup restores" if report.ok else "FAILED: the backup does not restore cleanly")


def _progress(display: ProgressDisplay) -> Progress:
    def update(step: str, done: int, total: int) -> None:
        display.update(done, total, lambda: f"{step}: {done:,}/{total:,}")

    return update
