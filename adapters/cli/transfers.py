"""``akte transfers ...``: case files between offices after a move (§ 67 AufenthV).

- ``akte transfers request --from-office A --person-file FILE --moved-in DATE
  --token-file FILE``: this office (B) records a request for the person's file and sends
  it (``ABH.Aktenanforderung``) to office A's inbox at the broker (``AKTE_OUTBOX_URL``);
  the answer comes into this office's inbox, and ``akte inbox run`` takes the file over
  (or records the refusal). Acts as the token's subject, with ``case.open`` in this
  office. The person comes from a small JSON file (``-``: standard input), so that their
  name and birth date are in no process list or shell history:
  ``{"surname": ..., "given_names": ..., "born": "YYYY-MM-DD", "file_number": ...}``
  (``file_number`` optional). ``--surname``, ``--given-names``, ``--born`` and
  ``--file-number`` still work, and show in the process list.
- ``akte transfers show REQUEST``: how a request stands (requested, taken over into
  which case file, refused for which reason); no personal data.
- ``akte transfers verify CASE``: checks a taken-over case file against the previous
  office's hash chain, offline, from what this office keeps (the proof in the document
  store, the parts in its log); exit 0 intact, 4 broken.

See docs/guides/file-transfers.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Final
from uuid import UUID

import nats

from adapters.cli.support import (
    EXIT_BROKEN,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliFailure,
    acting_principal,
    add_token_argument,
    guarded,
    open_service,
    require_permission,
    settings_or_fail,
    store_location,
)
from adapters.documents.encryption import DocumentErased
from adapters.documents.store import DocumentStoreError
from adapters.http.auth.permissions import Permission
from adapters.inbox.consumer import BROKER_ERRORS, DEFAULT_STREAM, InboxConfig, ensure_stream
from adapters.inbox.file_transfers import request_message
from adapters.inbox.messages import Answer
from domain.errors import DomainError
from service_common import CaseNotFound
from service_file_transfers import FileRequestNotFound, NotTakenOver, RequestedPerson


def add_transfer_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    """Add ``transfers request|show|verify`` to the ``akte`` command's sub-parsers."""
    parser = subparsers.add_parser(
        "transfers", help="case files between offices: request a file, check one taken over"
    )
    commands = parser.add_subparsers(dest="transfers_command", required=True, metavar="COMMAND")
    request = commands.add_parser("request", help="request a person's file from another office")
    request.add_argument("--from-office", required=True, help="the previous office's id")
    request.add_argument(
        "--person-file",
        type=Path,
        help="a JSON file with the person: surname, given_names, born (YYYY-MM-DD) and "
        "optionally file_number (- reads it from standard input); unlike the arguments "
        "below, it puts no personal data into the process list or the shell history",
    )
    shown = " (personal data: shows in the process list and shell history; prefer --person-file)"
    request.add_argument("--surname", help="the person's surname" + shown)
    request.add_argument("--given-names", help="the person's given names" + shown)
    request.add_argument("--born", type=date.fromisoformat, help="YYYY-MM-DD" + shown)
    request.add_argument(
        "--moved-in", required=True, type=date.fromisoformat, help="day of the move, YYYY-MM-DD"
    )
    request.add_argument(
        "--file-number", help="the previous office's file number, if known" + shown
    )
    request.add_argument(
        "--office", help="offices as shards: the requesting office (default: the settings')"
    )
    request.add_argument(
        "--stream", default=DEFAULT_STREAM, help="the JetStream stream (default %(default)s)"
    )
    add_token_argument(request)
    request.set_defaults(run=guarded(request_file))
    show = commands.add_parser("show", help="how a file request stands")
    show.add_argument("request", type=UUID, help="the request's id (printed by request)")
    show.add_argument("--office", help="offices as shards: the requesting office")
    show.set_defaults(run=guarded(show_request))
    verify = commands.add_parser(
        "verify", help="check a taken-over file against the previous office's chain, offline"
    )
    verify.add_argument("case", type=UUID, help="the case file's id in this office")
    verify.add_argument("--office", help="offices as shards: the office that took it over")
    verify.add_argument("--json", action="store_true", help="one JSON object")
    verify.set_defaults(run=guarded(verify_transfer))


PERSON_FILE_MAX_BYTES: Final = 64 * 1024
_PERSON_ARGUMENTS: Final = ("surname", "given_names", "born", "file_number")
_PERSON_FIELDS: Final = frozenset({"surname", "given_names", "born", "file_number"})


def requested_person(args: argparse.Namespace) -> RequestedPerson:
    """The person from ``--person-file`` (or standard input), or from the arguments.
    Failures name fields and rules, never the values given."""
    given = [name for name in _PERSON_ARGUMENTS if getattr(args, name) is not None]
    if args.person_file is None:
        missing = [name for name in ("surname", "given_names", "born") if name not in given]
        if missing:
            options = ", ".join("--" + name.replace("_", "-") for name in missing)
            raise CliFailure(EXIT_USAGE, f"the person is missing: --person-file FILE, or {options}")
        return RequestedPerson(args.surname, args.given_names, args.born, args.file_number)
    if given:
        raise CliFailure(
            EXIT_USAGE, "--person-file: give the person either in the file or as arguments"
        )
    if str(args.person_file) == "-":
        if args.token_file is not None and str(args.token_file) == "-":
            raise CliFailure(
                EXIT_USAGE, "--person-file - and --token-file - cannot both read standard input"
            )
        raw = sys.stdin.read(PERSON_FILE_MAX_BYTES + 1)
    else:
        try:
            with args.person_file.open(encoding="utf-8") as source:
                raw = source.read(PERSON_FILE_MAX_BYTES + 1)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
            raise CliFailure(EXIT_USAGE, f"--person-file: {reason}") from None
    if len(raw) > PERSON_FILE_MAX_BYTES:
        raise CliFailure(
            EXIT_USAGE, f"--person-file: longer than {PERSON_FILE_MAX_BYTES} characters"
        )
    return _person_from_json(raw)


def _person_from_json(raw: str) -> RequestedPerson:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        raise CliFailure(EXIT_USAGE, "--person-file: not JSON") from None
    if not isinstance(data, dict):
        raise CliFailure(EXIT_USAGE, "--person-file: not a JSON object")
    unknown = sorted(set(data) - _PERSON_FIELDS)
    if unknown:
        # The keys are not echoed: in a malformed file a key may be a name.
        allowed = ", ".join(sorted(_PERSON_FIELDS))
        raise CliFailure(
            EXIT_USAGE, f"--person-file: {len(unknown)} unknown field(s); allowed: {allowed}"
        )
    for name in ("surname", "given_names", "born"):
        if not isinstance(data.get(name), str):
            raise CliFailure(EXIT_USAGE, f"--person-file: {name} is missing or not text")
    file_number = data.get("file_number")
    if file_number is not None and not isinstance(file_number, str):
        raise CliFailure(EXIT_USAGE, "--person-file: file_number is not text")
    try:
        born = date.fromisoformat(data["born"])
    except ValueError:
        raise CliFailure(EXIT_USAGE, "--person-file: born is no date YYYY-MM-DD") from None
    return RequestedPerson(data["surname"], data["given_names"], born, file_number)


def request_file(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    person = requested_person(args)
    principal = acting_principal(args, settings)
    office_id = settings.default_office_id
    require_permission(principal, Permission.CASE_OPEN, office_id)
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        try:
            outgoing = service.file_transfers.request_file(
                office_id=office_id,
                from_office_id=args.from_office,
                person=person,
                moved_in_on=args.moved_in,
                by=principal.user_id,
            )
        except DomainError as error:
            raise CliFailure(EXIT_FAILED, str(error)) from None
        message = request_message(
            outgoing,
            subject_prefix=settings.outbox_subject_prefix,
            created=datetime.now().astimezone(),
        )
    config = InboxConfig(
        office=office_id,
        url=settings.outbox_url,
        stream=args.stream,
        subject_prefix=settings.outbox_subject_prefix,
    )
    try:
        asyncio.run(send(config, message))
    except BROKER_ERRORS as error:
        raise CliFailure(
            EXIT_UNAVAILABLE,
            f"the request {outgoing.request_id} is recorded but the broker is unavailable: "
            f"{type(error).__name__}",
        ) from None
    print(f"akte: file requested from {args.from_office}: request {outgoing.request_id}")
    return EXIT_OK


async def send(config: InboxConfig, message: Answer) -> None:
    """Publish a message into the inbox stream, acknowledged by the broker."""
    client = await nats.connect(servers=[config.url], connect_timeout=2, allow_reconnect=False)
    try:
        stream = client.jetstream()
        await ensure_stream(stream, config)
        await stream.publish(message.subject or "", message.payload())
    finally:
        await client.close()


def show_request(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        try:
            request = service.file_transfers.get_request(args.request)
        except FileRequestNotFound as error:
            raise CliFailure(EXIT_FAILED, str(error)) from None
    record = {
        "request_id": str(request.id),
        "office_id": request.office_id,
        "from_office_id": request.from_office_id,
        "status": request.status,
        "case_id": request.case_id,
        "reason": request.reason,
        "answer_message_id": request.answer_message_id,
    }
    print(json.dumps(record, indent=2))
    return EXIT_OK


def verify_transfer(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        try:
            check = service.file_transfers.check_taken_over(args.case)
        except (CaseNotFound, NotTakenOver) as error:
            raise CliFailure(EXIT_FAILED, str(error)) from None
        except DocumentErased:
            raise CliFailure(
                EXIT_FAILED, "the proof was erased with the person's data: nothing to check"
            ) from None
        except DocumentStoreError as error:
            # The proof kept at the take-over is gone or no longer what was stored.
            raise CliFailure(
                EXIT_BROKEN, f"the proof kept for this file cannot be read: {type(error).__name__}"
            ) from None
    if args.json:
        print(
            json.dumps(
                {
                    "case_id": str(check.case_id),
                    "from_office_id": check.from_office_id,
                    "from_case_id": check.from_case_id,
                    "parts": check.parts,
                    "stream_head": check.stream_head,
                    "ok": check.ok,
                    "problems": check.problems,
                    "unchecked_versions": check.unchecked,
                }
            )
        )
    elif check.ok:
        print(
            f"OK: case file {check.case_id}, {check.parts} parts from {check.from_office_id} "
            f"(its file {check.from_case_id}), chain intact, stream head {check.stream_head}"
        )
        if check.unchecked:
            # Stored compressed or encrypted as a whole at A: the chain covers them, a
            # field-by-field comparison could not be made.
            versions = ", ".join(str(version) for version in check.unchecked)
            print(f"  only chain-checked (stored form unreadable): versions {versions}")
    else:
        print(f"BROKEN: case file {check.case_id}", file=sys.stderr)
        for problem in check.problems:
            print(f"  {problem}", file=sys.stderr)
    return EXIT_OK if check.ok else EXIT_BROKEN


__all__ = ["add_transfer_commands"]
