"""What every ``akte`` sub-command shares: one expected-failure type and the guard that
prints it, the settings from the environment, and the service with the store's failures
turned into one line for the operator (never a traceback, never a quoted value)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Final

import psycopg
from eventsourcing.persistence import PersistenceError

from adapters import bootstrap
from adapters.bootstrap import InvalidSettings, settings_from_environment, token_verifier_for
from adapters.http.auth.identity import Principal
from adapters.http.auth.local_issuer import LocalIssuerKeyError
from adapters.http.auth.permissions import Permission, may_in_office
from adapters.http.auth.tokens import (
    AuthConfigurationError,
    IdentityProviderUnavailable,
    InvalidToken,
)
from adapters.http.idempotency import claim_for, parse_key
from adapters.settings import Settings
from adapters.store.migrations import SchemaError
from service import AkteService
from service_common import StoreUnavailable
from service_idempotency import (
    AlreadyRecorded,
    IdempotencyKeyReused,
    OutcomeUnknown,
    idempotency_claim,
)

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNAVAILABLE: Final = 3
EXIT_BROKEN: Final = 4
EXIT_BUSY: Final = 5
EXIT_EMPTY: Final = 6
EXIT_SCHEMA: Final = 7
EXIT_OUTCOME_UNKNOWN: Final = 8
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
    EXIT_OUTCOME_UNKNOWN: (
        "a write's outcome is unknown: the store failed while recording and could not "
        "tell whether it did; run the same command again with the --idempotency-key it "
        "printed (recorded at most once)"
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


class DoneBefore(CliFailure):
    """Not a failure: the write was recorded before under the same idempotency key, and
    nothing was recorded again (exit code 0, the line on standard output)."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_OK, message)


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
            print(
                f"akte: {failure}",
                file=sys.stdout if isinstance(failure, DoneBefore) else sys.stderr,
            )
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
    return f"PostgreSQL at {settings.postgres_servers}, database {settings.postgres_dbname}{schema}"


def empty_store(settings: Settings, command: str) -> CliFailure:
    """The failure of a command that reads data from a store that holds none: the
    settings most likely point at another store than the one that was filled."""
    return CliFailure(
        EXIT_EMPTY,
        f"the event store ({store_location(settings)}) holds no events; {command} needs a "
        "filled store: check AKTE_STORE and AKTE_DATA_DIR (a relative directory is taken "
        "from where the command runs) or AKTE_POSTGRES_*",
    )


def refuse_missing_sqlite_store(settings: Settings, command: str) -> None:
    """:func:`empty_store` when the settings name a SQLite file that does not exist: a
    command that reads the store would create it (a typo in ``AKTE_DATA_DIR`` then
    reads as a fresh, empty store and the command reports success on nothing)."""
    if settings.store == "sqlite" and not settings.sqlite_path.exists():
        raise empty_store(settings, command)


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


# ------------------------------------------------------------ writes with keys

KEY_OPTION: Final = "--idempotency-key"
_NOT_THE_REQUEST: Final = frozenset({"run", "idempotency_key", "token_file", "yes"})
"""Arguments that do not make a command another command: how it runs, its key, the file
the acting person's token comes from (who acts is in the key's scope), the confirmation."""


def add_idempotency_key(parser: argparse.ArgumentParser) -> None:
    """The option of every command that records something."""
    parser.add_argument(
        KEY_OPTION,
        metavar="KEY",
        type=_key_argument,
        help=(
            "makes the command safe to run again: run again with the same key, it is "
            "recorded once (1 to 255 visible ASCII characters; default: a new random one, "
            "printed if the outcome is unknown)"
        ),
    )


def _key_argument(text: str) -> str:
    key = parse_key(text)
    if key is None:
        msg = "must be 1 to 255 visible ASCII characters"
        raise argparse.ArgumentTypeError(msg)
    return key


def command_hash(command: str, args: argparse.Namespace) -> str:
    """What makes two runs the same write: the command and the values it acts on. A
    default is resolved first (``--office`` left out is the settings' default office), so
    that leaving an option out and giving its default are the same command."""
    values = {name: value for name, value in vars(args).items() if name not in _NOT_THE_REQUEST}
    if "office" in values and values["office"] is None:
        values["office"] = _default_office()
    arguments = sorted((name, str(value)) for name, value in values.items())
    return hashlib.sha256(json.dumps([command, arguments]).encode()).hexdigest()


def _default_office() -> str | None:
    """The office a command's ``--office`` defaults to (the settings' default office);
    None when the settings cannot be read (the command itself then fails on them)."""
    try:
        return settings_from_environment().default_office_id
    except InvalidSettings:
        return None


@contextmanager
def keyed_write(args: argparse.Namespace, command: str) -> Iterator[str]:
    """The block's commands run under the command's idempotency key (``--idempotency-key``,
    else a new one), as the HTTP API's writes under ``Idempotency-Key``
    (:mod:`service_idempotency`): run again with the key, the write is recorded once.

    An outcome the store could not tell ends with :data:`EXIT_OUTCOME_UNKNOWN` and the key
    to run again with; a write recorded before under the key, with exit code 0."""
    key = getattr(args, "idempotency_key", None) or uuid.uuid4().hex
    claim = claim_for(key, command_hash(command, args))
    try:
        with idempotency_claim(claim):
            yield key
    except OutcomeUnknown:
        raise CliFailure(
            EXIT_OUTCOME_UNKNOWN,
            "the event store failed while recording and could not tell whether it did; "
            f"run the same command again with {KEY_OPTION} {key} (it is recorded at most once)",
        ) from None
    except AlreadyRecorded as found:
        raise DoneBefore(
            f"recorded before under this idempotency key (log position {found.record.position}); "
            "nothing was recorded again"
        ) from None
    except IdempotencyKeyReused:
        raise CliFailure(
            EXIT_USAGE, "this idempotency key was used for another command; use a new key"
        ) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    number = int(text)
    if number < 1:
        msg = f"must be at least 1, not {number}"
        raise argparse.ArgumentTypeError(msg)
    return number


def add_token_argument(parser: argparse.ArgumentParser, when: str = "") -> None:
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"{when}a file holding the acting person's access token (- reads it from "
        "standard input); akte token USER prints one in local mode",
    )


def acting_principal(args: argparse.Namespace, settings: Settings) -> Principal:
    """Who acts: the subject of the access token, verified as the HTTP API verifies it
    (local tokens or the identity provider's). Never a name typed on the command line.
    A file rather than an argument or a variable: neither the process list nor child
    processes see it."""
    if args.token_file is None:
        raise CliFailure(
            EXIT_USAGE,
            "this step acts as a person: pass their access token with --token-file FILE "
            "(- reads it from standard input)",
        )
    try:
        if str(args.token_file) == "-":
            token = sys.stdin.read().strip()
        else:
            token = args.token_file.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise CliFailure(EXIT_USAGE, f"--token-file: {error.strerror}") from None
    if not token:
        raise CliFailure(EXIT_USAGE, "--token-file: holds no token")
    if settings.auth_mode == "local" and not settings.local_issuer_key_file.exists():
        raise CliFailure(EXIT_USAGE, f"no signing key at {settings.local_issuer_key_file}")
    try:
        return token_verifier_for(settings).verify(token)
    except (AuthConfigurationError, LocalIssuerKeyError) as error:
        raise CliFailure(EXIT_USAGE, f"tokens cannot be checked: {error}") from None
    except InvalidToken as error:
        raise CliFailure(EXIT_USAGE, f"the access token is refused: {error.reason}") from None
    except IdentityProviderUnavailable:
        raise CliFailure(
            EXIT_UNAVAILABLE, "the identity provider's signing keys cannot be fetched"
        ) from None


def require_permission(principal: Principal, permission: Permission, office_id: str) -> None:
    if not may_in_office(principal, permission, office_id):
        raise CliFailure(
            EXIT_FAILED,
            f"{principal.user_id}: the token's roles do not grant {permission.value} "
            f"in office {office_id}",
        )
