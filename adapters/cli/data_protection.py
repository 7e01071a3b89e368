"""Data protection on the command line: erasure, retention runs, subject access, keys.

- ``akte erase request CASE --legal-ground G [--rule RULE]``: request an erasure
  (nothing is erased yet); ``akte erase approve CASE NUMBER [--yes]``: approve another
  person's request and carry it out, asking for confirmation on a terminal (without one,
  only with ``--yes``); ``akte erase withdraw CASE NUMBER``; ``akte erase pending
  [--office X]``: the requests waiting for a second person. Four eyes: each step acts
  as the subject of the access token in ``--token-file FILE`` (``-``: standard input),
  verified as the HTTP API verifies it, with the same roles (request:
  ``personal_data.erase``; approve: ``personal_data.erase.approve``, never one's own).
- ``akte retention run [--apply --token-file FILE] [--office X] [--today DAY]
  [--format text|json]``: a
  dry run by default (lists what is due and why); ``--apply`` erases it, as the legal
  deletion at the end of the retention period, which needs no second person; the token's
  subject (``personal_data.erase`` in every office the run covers) is recorded as who
  approved the run.
- ``akte subject-access CASE [--format json|html] [--out FILE] [--by USER]``: everything
  held about the person (Art. 15 DSGVO); the export is a read of the file and is logged
  in the read-access log as ``--by``.
- ``akte privacy record [--format json|html] [--out FILE]``: the record of processing
  activities (Art. 30 DSGVO) and the deletion concept, generated from the code.
- ``akte keys rotate``: re-wrap every data key with the first of ``AKTE_MASTER_KEYS``
  (no event is rewritten); ``akte keys status``: keys per master key, erased keys.

Exit codes (docs/reference/cli.md): 0 done; 1 an unknown case file or request, an
erasure the domain refuses (one's own request), a token whose roles do not allow the
step, or a retention run in which some files failed; 2 usage and settings (an
unconfirmed erasure, a missing or invalid token too); 3 store problems. Messages name
ids and file numbers, never personal data.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Final
from uuid import UUID

from adapters.cli.projections import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    Stores,
    load_settings,
    open_stores,
)
from adapters.cli.support import (
    EXIT_FAILED,
    CliFailure,
    acting_principal,
    add_idempotency_key,
    add_token_argument,
    guarded,
    keyed_write,
    require_permission,
)
from adapters.http.auth.permissions import Permission
from adapters.personal_data.key_store import DataKeyError
from adapters.personal_data.mapper import data_keys_of
from adapters.personal_data.record_of_processing import (
    UnrecordedPersonalData,
    record_of_processing,
)
from adapters.personal_data.record_of_processing import as_html as record_as_html
from adapters.personal_data.retention import InvalidRetentionRules, load_rules, run_retention
from adapters.personal_data.subject_access import as_html, as_json, subject_access
from domain.erasure import ERASURE_GROUNDS, ErasureRequestNotFound
from domain.errors import DomainError
from projections.audit import read_access_log
from projections.engine import ProjectionEngine
from projections.errors import ProjectionError
from projections.worklists import retention_due
from service import AkteService
from service_common import CaseNotFound, ReferenceNotFound, ServiceError
from service_data_protection import PersonalDataProtectionOff

EXIT_NOT_FOUND: Final = 1
EXIT_PARTIAL: Final = 1
EXIT_REFUSED: Final = 1
EXIT_USAGE: Final = 2
CLI_ENDPOINT: Final = "CLI akte subject-access"
CLI_USER: Final = "operator"


def add_data_protection_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    erase = subparsers.add_parser(
        "erase",
        help="erase a person's data with four eyes: one requests, another approves",
    )
    erase_commands = erase.add_subparsers(dest="erase_command", required=True, metavar="STEP")
    request = erase_commands.add_parser("request", help="request an erasure (erases nothing)")
    request.add_argument("case", metavar="CASE", help="case id or file number")
    request.add_argument("--legal-ground", required=True, choices=sorted(ERASURE_GROUNDS))
    request.add_argument("--rule", help="the retention rule that made it due")
    request.set_defaults(run=guarded(_erase_request))
    approve = erase_commands.add_parser(
        "approve", help="approve another person's request and erase (cannot be undone)"
    )
    approve.add_argument("case", metavar="CASE", help="case id or file number")
    approve.add_argument("number", metavar="NUMBER", type=int, help="the request's number")
    approve.add_argument(
        "--yes",
        action="store_true",
        help="erase without asking (needed where no terminal can ask, e.g. in scripts)",
    )
    approve.set_defaults(run=guarded(_erase_approve))
    withdraw = erase_commands.add_parser("withdraw", help="withdraw or decline a request")
    withdraw.add_argument("case", metavar="CASE", help="case id or file number")
    withdraw.add_argument("number", metavar="NUMBER", type=int, help="the request's number")
    withdraw.set_defaults(run=guarded(_erase_withdraw))
    pending = erase_commands.add_parser("pending", help="requests waiting for a second person")
    pending.add_argument("--office", help="only this office (default: those the token reaches)")
    pending.set_defaults(run=guarded(_erase_pending))
    for step in (request, approve, withdraw):
        step.add_argument("--office", help="the office of a file number (default: the default)")
        add_idempotency_key(step)
    for step in (request, approve, withdraw, pending):
        add_token_argument(step)

    retention = subparsers.add_parser("retention", help="retention periods and erasure runs")
    retention_commands = retention.add_subparsers(
        dest="retention_command", required=True, metavar="COMMAND"
    )
    run = retention_commands.add_parser(
        "run", help="list the files due for erasure (dry run), or erase them (--apply)"
    )
    run.add_argument("--apply", action="store_true", help="erase what is due")
    add_token_argument(run, "with --apply: ")
    run.add_argument("--office", action="append", help="only this office (repeatable)")
    run.add_argument(
        "--today", type=date.fromisoformat, help="the day to judge by (default: today)"
    )
    run.add_argument("--format", choices=("text", "json"), default="text")
    run.add_argument("--limit", type=int, default=10_000, help="at most this many files")
    run.set_defaults(run=guarded(_retention_run))

    access = subparsers.add_parser(
        "subject-access", help="export everything held about a person (Art. 15 DSGVO)"
    )
    access.add_argument("case", metavar="CASE", help="case id or file number")
    access.add_argument("--format", choices=("json", "html"), default="json")
    access.add_argument("--out", type=Path, help="write to this file instead of stdout")
    access.add_argument("--by", default=CLI_USER, help="who asks (read-access log)")
    access.add_argument("--office", help="the office of a file number (default: the default)")
    access.set_defaults(run=guarded(_subject_access))

    privacy = subparsers.add_parser("privacy", help="the record of processing (Art. 30 DSGVO)")
    privacy_commands = privacy.add_subparsers(
        dest="privacy_command", required=True, metavar="COMMAND"
    )
    record = privacy_commands.add_parser(
        "record",
        help="the record of processing activities and the deletion concept, from the code",
    )
    record.add_argument("--format", choices=("json", "html"), default="json")
    record.add_argument("--out", type=Path, help="write to this file instead of stdout")
    record.set_defaults(run=guarded(_privacy_record))

    keys = subparsers.add_parser("keys", help="the per-person data keys and master keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    rotate = key_commands.add_parser(
        "rotate", help="re-wrap every data key with the current master key"
    )
    rotate.set_defaults(run=guarded(_keys_rotate))
    status = key_commands.add_parser("status", help="keys per master key, erased keys")
    status.set_defaults(run=guarded(_keys_status))


def _case_id(service: AkteService, office_id: str, given: str) -> UUID:
    try:
        return UUID(given)
    except ValueError:
        pass
    try:
        return service.find_case_by_reference(office_id, given)
    except ReferenceNotFound:
        raise CliFailure(
            EXIT_NOT_FOUND, f"neither a case id nor a file number in office {office_id}"
        ) from None


def _catch_up(stores: Stores, projection_names: tuple[str, ...]) -> None:
    """Bring the read models the command needs up to the log's head (if no worker holds
    them; then they are followed anyway)."""
    projections = [
        p
        for p in (retention_due.PROJECTION, read_access_log.PROJECTION)
        if p.name in projection_names
    ]
    writer = stores.views.writer()
    try:
        for projection in projections:
            if writer.try_lock(projection.name):
                try:
                    ProjectionEngine(stores.log, writer, [projection]).catch_up()
                finally:
                    writer.unlock(projection.name)
    except ProjectionError as error:
        raise CliFailure(EXIT_UNAVAILABLE, str(error)) from None
    finally:
        writer.close()


def _confirm_erasure(args: argparse.Namespace) -> None:
    """An erasure destroys keys for good: asked on a terminal, refused without one unless
    ``--yes`` says the caller means it (a script cannot be asked)."""
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliFailure(
            EXIT_USAGE,
            "akte erase approve cannot be undone: run it on a terminal to confirm, or pass --yes",
        )
    answer = input(
        f"Approve erasure request {args.number} of case file {args.case} and erase the "
        "person's data for good? Type yes: "
    )
    if answer.strip().lower() != "yes":
        raise CliFailure(EXIT_USAGE, "not confirmed; nothing erased")


def _refusals(error: Exception) -> CliFailure:
    if isinstance(error, CaseNotFound | ErasureRequestNotFound):
        return CliFailure(EXIT_NOT_FOUND, str(error))
    if isinstance(error, DataKeyError | PersonalDataProtectionOff):
        return CliFailure(EXIT_UNAVAILABLE, str(error))
    return CliFailure(EXIT_REFUSED, str(error))


_REFUSED = (DomainError, ServiceError, DataKeyError, PersonalDataProtectionOff)


def _erase_request(args: argparse.Namespace) -> int:
    settings = load_settings()
    principal = acting_principal(args, settings)
    with open_stores(settings) as stores:
        service = stores.service
        case_id = _case_id(service, args.office or settings.default_office_id, args.case)
        try:
            require_permission(
                principal, Permission.PERSONAL_DATA_ERASE, service.get_case(case_id).office_id
            )
            with keyed_write(args, "erase request"):
                recorded = service.erasure_requests.request(
                    case_id, by=principal.user_id, legal_ground=args.legal_ground, rule_id=args.rule
                )
        except _REFUSED as error:
            raise _refusals(error) from None
    print(
        f"akte: erasure request {recorded.request.number} of case file {case_id} recorded "
        f"by {principal.user_id}; nothing is erased until another person approves it: "
        f"akte erase approve {case_id} {recorded.request.number}"
    )
    return EXIT_OK


def _erase_approve(args: argparse.Namespace) -> int:
    _confirm_erasure(args)
    settings = load_settings()
    principal = acting_principal(args, settings)
    with open_stores(settings) as stores:
        service = stores.service
        case_id = _case_id(service, args.office or settings.default_office_id, args.case)
        try:
            require_permission(
                principal,
                Permission.PERSONAL_DATA_ERASE_APPROVE,
                service.get_case(case_id).office_id,
            )
            with keyed_write(args, "erase approve"):
                approval = service.erasure_requests.approve(
                    case_id, args.number, by=principal.user_id
                )
        except _REFUSED as error:
            raise _refusals(error) from None
    recorded = approval.erasure
    erasure = recorded.result
    print(
        f"akte: case file {case_id} erased at version {recorded.version} (requested by "
        f"{approval.request.requested_by}, approved by {principal.user_id}): "
        f"{len(erasure.keys_destroyed)} keys destroyed, {erasure.snapshots_deleted} snapshots "
        f"deleted, {len(erasure.linked_kept)} linked declarations kept"
        + (
            f"; WARNING {erasure.plaintext_events} events were written before encryption"
            if erasure.plaintext_events
            else ""
        )
    )
    return EXIT_OK


def _erase_withdraw(args: argparse.Namespace) -> int:
    settings = load_settings()
    principal = acting_principal(args, settings)
    with open_stores(settings) as stores:
        service = stores.service
        case_id = _case_id(service, args.office or settings.default_office_id, args.case)
        try:
            require_permission(
                principal, Permission.PERSONAL_DATA_ERASE, service.get_case(case_id).office_id
            )
            with keyed_write(args, "erase withdraw"):
                service.erasure_requests.withdraw(case_id, args.number, by=principal.user_id)
        except _REFUSED as error:
            raise _refusals(error) from None
    print(f"akte: erasure request {args.number} of case file {case_id} withdrawn; nothing erased")
    return EXIT_OK


def _erase_pending(args: argparse.Namespace) -> int:
    settings = load_settings()
    principal = acting_principal(args, settings)
    office = args.office or principal.office_id
    offices: list[str] | None = None
    if office is None:
        require_permission(principal, Permission.PERSONAL_DATA_ERASE, "*")
    else:
        require_permission(principal, Permission.PERSONAL_DATA_ERASE, office)
        offices = [office]
    with open_stores(settings) as stores:
        pending = stores.service.erasure_requests.pending(office_ids=offices)
    for request in pending:
        print(
            f"{request.case_id}  {request.number:>3}  {request.office_id:<20} "
            f"{request.legal_ground:<12} requested by {request.requested_by} "
            f"at {request.requested_at.isoformat()}"
        )
    print(f"akte: {len(pending)} erasure requests waiting for approval", file=sys.stderr)
    return EXIT_OK


def _retention_run(args: argparse.Namespace) -> int:
    settings = load_settings()
    approved_by: str | None = None
    if args.apply:
        # The legal deletion at the end of the retention period needs no second person;
        # whoever starts it is recorded, verified by their token, in every office it covers.
        principal = acting_principal(args, settings)
        for office in args.office or ["*"]:
            require_permission(principal, Permission.PERSONAL_DATA_ERASE, office)
        approved_by = principal.user_id
    try:
        rules = load_rules(settings.retention_rules_path)
    except (OSError, ValueError, InvalidRetentionRules) as error:
        raise CliFailure(EXIT_USAGE, f"retention rules: {error}") from None
    with open_stores(settings) as stores:
        _catch_up(stores, (retention_due.NAME,))
        report = run_retention(
            stores.service,
            stores.views,
            rules,
            # The office's date, not the UTC date: after midnight in Berlin it is the next day.
            today=args.today or stores.service.deadlines.today(),
            office_ids=args.office,
            apply=args.apply,
            approved_by=approved_by,
            limit=args.limit,
        )
    if args.format == "json":
        sys.stdout.write(json.dumps(report.as_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        sys.stdout.write(report.as_text())
    return EXIT_PARTIAL if report.failed else EXIT_OK


def _subject_access(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_stores(settings) as stores:
        service = stores.service
        case_id = _case_id(service, args.office or settings.default_office_id, args.case)
        _catch_up(stores, (read_access_log.NAME,))
        try:
            export = subject_access(service, stores.views, case_id, requested_by=args.by)
        except CaseNotFound as error:
            raise CliFailure(EXIT_NOT_FOUND, str(error)) from None
        service.record_read(
            by=args.by,
            endpoint=CLI_ENDPOINT,
            case_id=case_id,
            office_id=str(export.document["office_id"]),
        )
    output = as_html(export) if args.format == "html" else as_json(export)
    if args.out is None:
        sys.stdout.write(output)
    else:
        args.out.write_text(output, encoding="utf-8")
        print(f"akte: wrote the subject access export to {args.out}", file=sys.stderr)
    return EXIT_OK


def _privacy_record(args: argparse.Namespace) -> int:
    """Needs no store: the record is read from the code and the retention rules."""
    try:
        record = record_of_processing()
    except (UnrecordedPersonalData, InvalidRetentionRules) as error:
        raise CliFailure(EXIT_FAILED, str(error)) from None
    if args.format == "html":
        output = record_as_html(record)
    else:
        output = json.dumps(record.as_json(), ensure_ascii=False, indent=2) + "\n"
    if args.out is None:
        sys.stdout.write(output)
    else:
        args.out.write_text(output, encoding="utf-8")
        print(f"akte: wrote the record of processing to {args.out}", file=sys.stderr)
    return EXIT_OK


def _keys_rotate(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_stores(settings) as stores:
        try:
            rotation = data_keys_of(stores.service).rotate()
        except DataKeyError as error:
            raise CliFailure(EXIT_UNAVAILABLE, str(error)) from None
    retired = ", ".join(rotation.retired) or "none"
    print(
        f"akte: {rotation.rewrapped} data keys re-wrapped with master key "
        f"{rotation.current_master_key_id}; retired: {retired} (remove retired keys from "
        "AKTE_MASTER_KEYS once every backup of the key store is re-wrapped too)"
    )
    return EXIT_OK


def _keys_status(args: argparse.Namespace) -> int:
    settings = load_settings()
    with open_stores(settings) as stores:
        status = data_keys_of(stores.service).status()
    print(
        json.dumps(
            {
                "current_master_key_id": status.current_master_key_id,
                "keys_by_master_key": status.keys_by_master_key,
                "erased": status.erased,
                "retired": {key: at.isoformat() for key, at in status.retired.items()},
            },
            indent=2,
        )
    )
    return EXIT_OK
