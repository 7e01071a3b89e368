"""``akte outbox ...``: publish events to NATS JetStream, show how far it got, describe it.

- ``akte outbox run`` follows the event log and publishes the chosen events
  (``AKTE_OUTBOX_EVENTS``) to ``AKTE_OUTBOX_URL``'s stream ``AKTE_OUTBOX_STREAM`` until
  SIGTERM or Ctrl-C, which let the batch in progress finish (its acknowledgements are
  recorded) before it stops; while the broker is away it retries with a growing wait
  (up to 10 s), or gives up after ``--max-retries`` failures in a row (exit code 3).
- ``akte outbox status``: position, log head, lag (notifications behind the head) and
  the last error, from the position table (also while ``run`` is running elsewhere).
  This is the outbox's lag metric; it is not on ``/metrics``.
- ``akte outbox asyncapi``: the AsyncAPI document of the messages, as JSON.

See docs/guides/outbox.md; the publisher is :mod:`adapters.outbox.publisher`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from adapters.cli.support import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliFailure,
    guarded,
    open_service,
    positive_int,
    settings_or_fail,
    store_location,
)
from adapters.logging_setup import configure_logging
from adapters.outbox.asyncapi import asyncapi_document
from adapters.outbox.cloudevents import InvalidSubjectToken, Selection, UnknownEventKind
from adapters.outbox.position import OutboxPositions, outbox_positions
from adapters.outbox.publisher import (
    DEFAULT_BATCH_SIZE,
    BrokerUnavailable,
    OutboxConfig,
    OutboxPublisher,
)
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from projections.errors import EventLogUnavailable

POLL_INTERVAL: Final = 0.5


def add_outbox_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``outbox run|status|asyncapi`` to the ``akte`` command's sub-parsers."""
    parser = subparsers.add_parser(
        "outbox", help="publish events to NATS JetStream for other systems (CloudEvents)"
    )
    commands = parser.add_subparsers(dest="outbox_command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="follow the event log and publish until SIGTERM or SIGINT (worker process)"
    )
    run.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="events published before waiting for their acknowledgements "
        "(default %(default)s; 1: one at a time)",
    )
    run.add_argument(
        "--max-retries",
        type=positive_int,
        default=None,
        help="give up after this many failures in a row (default: retry until stopped)",
    )
    run.add_argument(
        "--poll-interval",
        type=float,
        default=POLL_INTERVAL,
        help="seconds between looks at the log when idle (default %(default)s)",
    )
    _office_argument(run)
    run.set_defaults(run=guarded(run_outbox))

    status = commands.add_parser("status", help="position, log head, lag and last error")
    status.add_argument("--json", action="store_true", help="one JSON object")
    _office_argument(status)
    status.set_defaults(run=guarded(outbox_status))

    document = commands.add_parser(
        "asyncapi", help="print the AsyncAPI document of the published messages (JSON)"
    )
    _office_argument(document)
    document.set_defaults(run=guarded(print_asyncapi))


def _office_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--office",
        help="offices as shards: the office whose shard to publish (default AKTE_SHARD_OFFICE)",
    )


# ------------------------------------------------------------------- plumbing


def outbox_config(settings: Settings, **options: Any) -> OutboxConfig:
    """The outbox's configuration from the settings; bad ones are a usage failure.

    Each event goes out under the office its aggregate belongs to; the default office
    (``AKTE_DEFAULT_OFFICE_ID``) only for aggregates of no office. With offices as
    shards (``AKTE_SHARD_OFFICE``, ``--office``) the store is that office's: every event
    goes out under it."""
    try:
        return OutboxConfig(
            office=settings.default_office_id,
            shard=settings.shard_office is not None,
            selection=Selection.parse(settings.outbox_events),
            url=settings.outbox_url,
            stream=settings.outbox_stream,
            subject_prefix=settings.outbox_subject_prefix,
            **options,
        )
    except UnknownEventKind as error:
        raise CliFailure(EXIT_USAGE, f"AKTE_OUTBOX_EVENTS: {error}") from None
    except InvalidSubjectToken as error:
        raise CliFailure(EXIT_USAGE, str(error)) from None


@dataclass
class _Opened:
    log: ApplicationEventLog
    positions: OutboxPositions


@contextmanager
def _opened(settings: Settings) -> Iterator[_Opened]:
    with open_service(settings, what=f"the event store ({store_location(settings)})") as service:
        positions = outbox_positions(service.recorder)
        try:
            positions.create_table()
            yield _Opened(ApplicationEventLog(service), positions)
        except EventLogUnavailable as error:
            raise CliFailure(EXIT_UNAVAILABLE, str(error)) from None


# ------------------------------------------------------------------- commands


def run_outbox(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    config = outbox_config(
        settings,
        batch_size=args.batch_size,
        max_retries=args.max_retries,
        poll_interval=args.poll_interval,
    )
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    with _opened(settings) as opened:
        publisher = OutboxPublisher(opened.log, opened.positions, config)
        offices = (
            f"office {config.office}"
            if config.shard
            else "each office (under the office of its case file or other aggregate)"
        )
        print(
            f"akte: publishing {len(config.selection.classes)} kind(s) of events of "
            f"{offices} to stream {config.stream} (SIGTERM or Ctrl-C stops)",
            file=sys.stderr,
            flush=True,
        )
        try:
            asyncio.run(_run_until_signalled(publisher))
        except BrokerUnavailable as error:
            raise CliFailure(EXIT_UNAVAILABLE, f"the broker is unavailable: {error}") from None
        stats = publisher.stats
        print(
            f"akte: stopped at position {publisher.position():,} "
            f"({stats.published:,} published, {stats.duplicates:,} already stored)",
            file=sys.stderr,
        )
    return EXIT_OK


async def _run_until_signalled(publisher: OutboxPublisher) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, publisher.request_stop)
    try:
        await publisher.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def outbox_status(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    config = outbox_config(settings)
    with _opened(settings) as opened:
        state = opened.positions.state(config.stream)
        head = opened.log.head()
    record = {
        "stream": config.stream,
        "position": state.position,
        "head": head,
        "lag_notifications": max(head - state.position, 0),
        "updated_at": state.updated_at.isoformat() if state.updated_at else None,
        "last_error": state.last_error,
        "last_error_at": state.last_error_at.isoformat() if state.last_error_at else None,
        "events": list(config.selection.names),
    }
    if args.json:
        print(json.dumps(record))
        return EXIT_OK
    for name, value in record.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        print(f"{name:<18} {'-' if shown is None else shown}")
    return EXIT_OK


def print_asyncapi(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    config = outbox_config(settings)
    document = asyncapi_document(
        config.selection, subject_prefix=config.subject_prefix, url=config.url
    )
    print(json.dumps(document, indent=2, ensure_ascii=False))
    return EXIT_OK


__all__ = ["add_outbox_commands", "outbox_config"]
