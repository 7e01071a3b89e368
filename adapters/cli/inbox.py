"""``akte inbox ...``: messages in from NATS JetStream (notices, online applications).

- ``akte inbox run`` consumes this office's messages in (``akte.inbox.<office>.>`` of
  the stream ``AKTE_INBOX``, created if missing) from the broker at ``AKTE_OUTBOX_URL``,
  records what each causes, answers (receipts, returns to the sender) and acknowledges,
  until SIGTERM or Ctrl-C; ``--until-idle`` stops when nothing is waiting.
  Attachments of applications sent by reference are fetched from
  ``AKTE_INBOX_PORTAL_BASE_URL`` (unset: such applications go back to the portal).
  ``--metrics-port PORT`` serves the worker's metrics (messages received and by outcome,
  the consumer's pending and unacknowledged messages) at ``http://127.0.0.1:PORT/metrics``
  for Prometheus.
- ``akte inbox status``: the durable consumer's state at the broker: messages waiting,
  delivered and not yet acknowledged, redelivered.
- ``akte inbox show NOTICE --token-file FILE``: a notice in triage with its personal
  data (the read is recorded in the read-access log); ``akte inbox resolve NOTICE (--case
  CASE | --dismiss) --token-file FILE`` records it on a case file or dismisses it. Each
  acts as the subject of the access token in the file (``-``: standard input), verified
  as the HTTP API verifies it, with the roles of ``GET /registration-notices/{id}``
  (``case.read``) and its ``/resolution`` (``case.write``) in the notice's office: never
  a name typed on the command line. A notice of another office is "not found", as over
  HTTP.

See docs/guides/notices-and-applications.md; the consumer is :mod:`adapters.inbox.consumer`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Final
from uuid import UUID

import nats
import nats.js.errors
from prometheus_client import CollectorRegistry, start_http_server

from adapters.cli.support import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliFailure,
    acting_principal,
    add_idempotency_key,
    add_token_argument,
    guarded,
    keyed_write,
    open_service,
    settings_or_fail,
    store_location,
)
from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, may_in_office
from adapters.http.routes.registration_notices import NOTICE_READ, NOTICE_RESOLVE, notice_public
from adapters.inbox.attachments import AttachmentFetcher
from adapters.inbox.consumer import BROKER_ERRORS, DEFAULT_STREAM, InboxConfig, InboxConsumer
from adapters.logging_setup import configure_logging
from adapters.monitoring.metrics import InboxMetrics
from adapters.settings import Settings
from domain.errors import DomainError
from domain.registration_notices import RegistrationNotice
from service import AkteService
from service_common import CaseNotFound
from service_notices import NoticeNotFound


def add_inbox_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``inbox run|status`` to the ``akte`` command's sub-parsers."""
    parser = subparsers.add_parser(
        "inbox", help="receive registration-office notices and online applications (NATS)"
    )
    commands = parser.add_subparsers(dest="inbox_command", required=True, metavar="COMMAND")
    run = commands.add_parser("run", help="consume the office's messages until SIGTERM or SIGINT")
    run.add_argument("--until-idle", action="store_true", help="stop when no message is waiting")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve the worker's metrics at http://127.0.0.1:PORT/metrics (default: none)",
    )
    _common(run)
    run.set_defaults(run=guarded(run_inbox))
    status = commands.add_parser("status", help="messages waiting and unacknowledged")
    status.add_argument("--json", action="store_true", help="one JSON object")
    _common(status)
    status.set_defaults(run=guarded(inbox_status))
    show = commands.add_parser(
        "show", help="a notice in triage with its personal data (the read is logged)"
    )
    show.add_argument("notice", type=UUID, help="the notice's id (from the triage worklist)")
    add_token_argument(show)
    show.set_defaults(run=guarded(show_notice))
    resolve = commands.add_parser(
        "resolve", help="record a notice from triage on a case file, or dismiss it"
    )
    resolve.add_argument("notice", type=UUID, help="the notice's id")
    choice = resolve.add_mutually_exclusive_group(required=True)
    choice.add_argument("--case", type=UUID, help="record it on this case file")
    choice.add_argument("--dismiss", action="store_true", help="dismiss it")
    add_token_argument(resolve)
    add_idempotency_key(resolve)
    resolve.set_defaults(run=guarded(resolve_notice))


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--office", help="offices as shards: the office whose messages (default: the settings')"
    )
    parser.add_argument(
        "--stream", default=DEFAULT_STREAM, help="the JetStream stream (default %(default)s)"
    )


def inbox_config(settings: Settings, stream: str) -> InboxConfig:
    return InboxConfig(
        office=settings.default_office_id,
        url=settings.outbox_url,
        stream=stream,
        subject_prefix=settings.outbox_subject_prefix,
    )


def attachment_fetcher(settings: Settings) -> AttachmentFetcher | None:
    """Fetches attachments sent by reference from the portal; None: none configured."""
    if settings.inbox_portal_base_url is None:
        return None
    return AttachmentFetcher(
        settings.inbox_portal_base_url, timeout=settings.inbox_attachment_timeout_seconds
    )


def run_inbox(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    config = inbox_config(settings, args.stream)
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        metrics = None
        if args.metrics_port is not None:
            registry = CollectorRegistry()
            metrics = InboxMetrics(registry)
            try:
                start_http_server(args.metrics_port, addr="127.0.0.1", registry=registry)
            except OSError as error:
                msg = f"--metrics-port {args.metrics_port}: {error.strerror}"
                raise CliFailure(EXIT_USAGE, msg) from None
        consumer = InboxConsumer(
            service.notices,
            config,
            transfers=service.file_transfers,
            metrics=metrics,
            fetcher=attachment_fetcher(settings),
        )
        print(
            f"akte: receiving {config.office_subjects} from stream {config.stream} "
            "(SIGTERM or Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
        asyncio.run(_run_until_signalled(consumer, until_idle=args.until_idle))
        stats = consumer.stats
        print(
            f"akte: {stats.handled} message(s): {stats.recorded} recorded on case files, "
            f"{stats.triaged} to triage, {stats.applications} application(s), "
            f"{stats.duplicates} duplicate(s), {stats.returned} returned to the sender, "
            f"{stats.ignored} ignored (returns of no answer of ours)",
            file=sys.stderr,
        )
    return EXIT_OK


async def _run_until_signalled(consumer: InboxConsumer, *, until_idle: bool) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, consumer.request_stop)
    try:
        await consumer.run(until_idle=until_idle)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def inbox_status(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    config = inbox_config(settings, args.stream)
    try:
        record = asyncio.run(_status(config))
    except BROKER_ERRORS as error:
        raise CliFailure(EXIT_UNAVAILABLE, f"the broker is unavailable: {error}") from None
    if args.json:
        print(json.dumps(record))
        return EXIT_OK
    for name, value in record.items():
        print(f"{name:<16} {'-' if value is None else value}")
    return EXIT_OK


SHOW_ENDPOINT: Final = "CLI akte inbox show"


def _notice_in_reach(
    service: AkteService, principal: Principal, permission: Permission, notice_id: UUID
) -> RegistrationNotice:
    """As over HTTP: a notice of an office the token's roles do not reach is not found."""
    try:
        notice = service.notices.get_notice(notice_id)
    except NoticeNotFound as error:
        raise CliFailure(EXIT_FAILED, str(error)) from None
    if not may_in_office(principal, permission, notice.office_id):
        raise CliFailure(EXIT_FAILED, str(NoticeNotFound(notice_id)))
    return notice


def show_notice(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    principal = acting_principal(args, settings)
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        notice = _notice_in_reach(service, principal, NOTICE_READ, args.notice)
        service.record_read(
            by=principal.user_id, endpoint=SHOW_ENDPOINT, case_id=None, office_id=notice.office_id
        )
    print(notice_public(notice).model_dump_json(indent=2))
    return EXIT_OK


def resolve_notice(args: argparse.Namespace) -> int:
    settings = settings_or_fail()
    principal = acting_principal(args, settings)
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        _notice_in_reach(service, principal, NOTICE_RESOLVE, args.notice)
        try:
            with keyed_write(args, "inbox resolve"):
                position = service.notices.resolve_notice(
                    args.notice,
                    by=principal.user_id,
                    resolution="dismissed" if args.dismiss else "recorded_on_case_file",
                    case_id=None if args.dismiss else args.case,
                )
        except (NoticeNotFound, CaseNotFound, DomainError) as error:
            raise CliFailure(EXIT_FAILED, str(error)) from None
    what = "dismissed" if args.dismiss else f"recorded on case file {args.case}"
    print(
        f"akte: notice {args.notice} {what} by {principal.user_id} (log position {position})",
        file=sys.stderr,
    )
    return EXIT_OK


async def _status(config: InboxConfig) -> dict[str, object]:
    client = await nats.connect(servers=[config.url], connect_timeout=2, allow_reconnect=False)
    try:
        stream = client.jetstream()
        record: dict[str, object] = {
            "stream": config.stream,
            "consumer": config.durable,
            "subjects": config.office_subjects,
        }
        try:
            info = await stream.consumer_info(config.stream, config.durable)
        except nats.js.errors.NotFoundError:
            record.update(waiting=None, unacknowledged=None, redelivered=None, delivered=None)
            return record
        record.update(
            waiting=info.num_pending,
            unacknowledged=info.num_ack_pending,
            redelivered=info.num_redelivered,
            delivered=info.delivered.stream_seq if info.delivered else None,
        )
        return record
    finally:
        await client.close()


__all__ = ["add_inbox_commands"]
