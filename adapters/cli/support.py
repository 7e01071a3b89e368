"""What every ``akte`` sub-command shares: one expected-failure type and the guard that
prints it, the settings from the environment, and the service with the store's failures
turned into one line for the operator (never a traceback, never a quoted value)."""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Final

import psycopg
from eventsourcing.persistence import PersistenceError

from adapters import bootstrap
from adapters.bootstrap import InvalidSettings, settings_from_environment
from adapters.settings import Settings
from adapters.store.migrations import SchemaError
from service import AkteService
from service_common import StoreUnavailable

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 3
EXIT_BROKEN: Final = 4
EXIT_BUSY: Final = 5
EXIT_EMPTY: Final = 6
EXIT_SCHEMA: Final = 7
EXIT_INTERRUPTED: Final = 130

EXIT_CODES: Final = {
    EXIT_OK: "done",
    EXIT_FAILED: (
        "the command ran and the answer is no: what it names does not exist, the domain "
        "refuses it, some of its items failed (scans not imported, documents corrupted, "
        "erasures failed), a restore target is not empty, or a restore drill found a fault"
    ),
    EXIT_USAGE: (
        "usage or settings: bad arguments, an unknown or invalid setting, settings a "
        "server refuses, a file the settings name that cannot be used"
    ),
    EXIT_UNAVAILABLE: (
        "a store (events, read models, keys, documents) or a tool the command needs "
        "(Chromium, to print a PDF) cannot be reached or fails"
    ),
    EXIT_BROKEN: (
        "broken evidence: akte audit verify found the hash chain broken (tampering), or a "
        "backup's checksums do not match its files"
    ),
    EXIT_BUSY: "another process holds the lock (a projection worker, a running server)",
    EXIT_EMPTY: (
        "nothing where something was expected: an empty store or a missing signing key, "
        "usually settings that point at the wrong place"
    ),
    EXIT_SCHEMA: (
        "a store's schema does not fit this release: newer than the code knows, or waiting "
        "for a step that only akte migrate runs (docs/operations/upgrades.md)"
    ),
    EXIT_INTERRUPTED: "interrupted (Ctrl-C)",
}
"""Every exit code of ``akte``, one meaning each (docs/reference/cli.md lists them)."""

STORE_ERRORS: Final = (StoreUnavailable, PersistenceError, psycopg.Error, sqlite3.Error)
_MAX_REASON_LENGTH: Final = 200


class CliFailure(Exception):
    """An expected failure: one line for the user and the exit code."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def first_line(error: BaseException) -> str:
    """The error's first line, shortened: drivers quote offending values on later lines."""
    lines = str(error).strip().splitlines()
    return lines[0][:_MAX_REASON_LENGTH] if lines else type(error).__name__


def guarded(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """The command, printing a :class:`CliFailure` or an interrupt as one line and
    returning its exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return command(args)
        except CliFailure as failure:
            print(f"akte: {failure}", file=sys.stderr)
            return failure.exit_code
        except KeyboardInterrupt:
            print("akte: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED

    return run


def settings_or_fail(office: str | None = None, *, exit_code: int = EXIT_USAGE) -> Settings:
    """:func:`adapters.bootstrap.settings_from_environment`, or a :class:`CliFailure`."""
    try:
        return settings_from_environment(office)
    except InvalidSettings as error:
        raise CliFailure(exit_code, str(error)) from None


def store_location(settings: Settings) -> str:
    """Which event store the settings name, for messages (never the password)."""
    if settings.store == "sqlite":
        return f"SQLite file {settings.sqlite_path}"
    schema = f", schema {settings.postgres_schema}" if settings.postgres_schema else ""
    return (
        f"PostgreSQL at {settings.postgres_host}:{settings.postgres_port}, "
        f"database {settings.postgres_dbname}{schema}"
    )


def empty_store(settings: Settings, command: str) -> CliFailure:
    """The failure of a command that reads data from a store that holds none: the
    settings most likely point at another store than the one that was filled."""
    return CliFailure(
        EXIT_EMPTY,
        f"the event store ({store_location(settings)}) holds no events; {command} needs a "
        "filled store: check AKTE_STORE and AKTE_DATA_DIR (a relative directory is taken "
        "from where the command runs) or AKTE_POSTGRES_*",
    )


@contextmanager
def open_service(
    settings: Settings,
    *,
    what: str = "the event store",
    store_errors: tuple[type[BaseException], ...] = STORE_ERRORS,
    exit_code: int = EXIT_UNAVAILABLE,
) -> Iterator[AkteService]:
    """:func:`adapters.bootstrap.open_service`: the service over the configured store,
    closed afterwards; a store that cannot be opened or fails meanwhile becomes a
    :class:`CliFailure` ("<what> is unavailable")."""
    # OSError: the data directory cannot be created (permissions, a file in the way).
    opening_errors: tuple[type[BaseException], ...] = (*store_errors, OSError)
    with ExitStack() as opened:
        try:
            service = opened.enter_context(bootstrap.open_service(settings))
        except SchemaError as error:
            raise CliFailure(EXIT_SCHEMA, str(error)) from None
        except opening_errors as error:
            raise CliFailure(exit_code, f"{what} is unavailable: {first_line(error)}") from None
        try:
            yield service
        except store_errors as error:
            raise CliFailure(exit_code, f"{what} is unavailable: {first_line(error)}") from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = int(text)
    if number < 1:
        msg = f"must be at least 1, not {number}"
        raise argparse.ArgumentTypeError(msg)
    return number
