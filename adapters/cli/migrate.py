"""``akte migrate [--dry-run]``: bring every store's schema to this release's version.

Applies the numbered steps of :mod:`adapters.store.migrations` that a store has not had
yet, under the set-up lock, and prints one line per version recorded; ``--dry-run``
prints the pending ones and changes nothing. Exit codes: 0 done (or nothing to do), 2
settings, 3 a store is unavailable, 7 a store is newer than this release.
"""

from __future__ import annotations

import argparse

from adapters.bootstrap import migrate_stores
from adapters.cli.support import (
    EXIT_OK,
    EXIT_SCHEMA,
    EXIT_UNAVAILABLE,
    STORE_ERRORS,
    CliFailure,
    first_line,
    guarded,
    settings_or_fail,
)
from adapters.store.migrations import SchemaError


def add_migrate_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    migrate = subparsers.add_parser(
        "migrate",
        help="bring the stores' schemas to this release (--dry-run: list the pending steps)",
        description="Applies the pending schema steps of every store (events, keys, read "
        "models, documents in PostgreSQL) and prints them. Take a backup first.",
    )
    migrate.add_argument(
        "--dry-run", action="store_true", help="list the pending steps, change nothing"
    )
    migrate.add_argument(
        "--office", help="offices as shards: the office whose shard (default AKTE_SHARD_OFFICE)"
    )
    migrate.set_defaults(run=guarded(_migrate))


def _migrate(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    dry_run: bool = args.dry_run
    try:
        changes = migrate_stores(settings, dry_run=dry_run)
    except SchemaError as error:
        raise CliFailure(EXIT_SCHEMA, str(error)) from None
    except (*STORE_ERRORS, OSError) as error:
        raise CliFailure(EXIT_UNAVAILABLE, f"a store is unavailable: {first_line(error)}") from None
    verb = "would record" if dry_run else "recorded"
    for change in changes:
        print(
            f"{change.component} ({change.where}): {verb} version {change.version}: {change.note}"
        )
    if not changes:
        print("every store is at this release's schema versions: nothing to do")
    return EXIT_OK
