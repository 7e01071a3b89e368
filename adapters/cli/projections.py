"""``akte projections ...``: rebuild read models, show their status, follow the log.

``add_projection_commands(subparsers)`` adds the ``projections`` command to the ``akte``
parser; each sub-command's ``run`` returns the exit code and reports expected failures
as one line on stderr, never a traceback: 1 when a read model fails on an event (the
line names it, the event's position and the error's type), 2 for settings and unknown
read-model names, 3 for stores, 5 when another rebuild of a read model runs, 7 for a
store whose schema does not fit this release, 130 when interrupted (the table:
docs/reference/cli.md).

``rebuild`` builds a new generation of each read model beside the one in service and
switches to it in one transaction (:mod:`projections.generations`): worklists answer
throughout, workers that follow the read models need not be stopped, and an interrupted
rebuild leaves the read models in service as they were.

With offices as shards (docs "Offices as shards"), each command works on one office's
shard: ``--office`` or ``AKTE_SHARD_OFFICE`` names it, and its read models live in that
office's schema beside its events; run one ``projections run`` worker per office.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any, Final

from adapters.bootstrap import build_service, open_views_store
from adapters.cli.progress import ProgressDisplay, projection_progress
from adapters.cli.support import (
    EXIT_FAILED,
    EXIT_SCHEMA,
    CliFailure,
    first_line,
    guarded,
    positive_int,
    settings_or_fail,
)
from adapters.settings import Settings
from adapters.store.migrations import SchemaError
from adapters.views.runner import (
    ApplicationEventLog,
    ProjectionRunner,
    rebuild_in_processes,
)
from projections.engine import DEFAULT_BATCH_SIZE, Progress
from projections.errors import ProjectionBusy, ProjectionError, ReadModelFailed, UnknownProjection
from projections.generations import rebuild_beside, rebuild_locks
from projections.projection import Projection
from projections.read_models import READ_MODELS
from projections.selection import select_projections
from projections.status import ProjectionStatus, projection_status
from projections.storage import ViewsStore
from service import AkteService

EXIT_OK: Final = 0
EXIT_UNAVAILABLE: Final = 3
EXIT_BUSY: Final = 5
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130

LOCK_WAIT_SECONDS: Final = 10.0
"""How long rebuild waits for a read model's lock (a killed worker's lock is released
when the server notices its connection is gone, which takes a moment)."""


def add_projection_commands(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    projections: Sequence[Projection] = READ_MODELS,
) -> None:
    """Add ``projections rebuild|status|run`` to the ``akte`` command's sub-parsers."""
    names = ", ".join(p.name for p in projections)
    parser = subparsers.add_parser(
        "projections", help="read models (worklists): rebuild, status, follow the log"
    )
    commands = parser.add_subparsers(dest="projections_command", required=True, metavar="COMMAND")

    rebuild = commands.add_parser(
        "rebuild", help="rebuild read models from the whole event log", description=names
    )
    rebuild.add_argument("names", nargs="*", metavar="NAME", help="read models (default: all)")
    rebuild.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="events per transaction (default %(default)s)",
    )
    rebuild.add_argument(
        "--jobs",
        type=positive_int,
        default=1,
        help="processes, each building a group of read models that share events "
        "(default %(default)s; 2 uses both cores of a two-core machine)",
    )
    rebuild.add_argument(
        "--wait",
        type=float,
        default=LOCK_WAIT_SECONDS,
        help="seconds to wait for a read model another worker holds (default %(default)s)",
    )
    _office_argument(rebuild)
    rebuild.set_defaults(run=_bound(run_rebuild, projections))

    status = commands.add_parser("status", help="position, head and lag of each read model")
    status.add_argument("--json", action="store_true", help="one JSON object per read model")
    _office_argument(status)
    status.set_defaults(run=_bound(run_status, projections))

    run = commands.add_parser(
        "run", help="follow the event log until SIGTERM or SIGINT (worker process)"
    )
    run.add_argument("names", nargs="*", metavar="NAME", help="read models (default: all)")
    run.add_argument(
        "--poll-interval",
        type=float,
        default=None,
        help="seconds between polls when idle (default 0.2 on SQLite, 1.5 on PostgreSQL)",
    )
    _office_argument(run)
    run.set_defaults(run=_bound(run_worker, projections))


def _office_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--office",
        help="offices as shards: the office whose shard to work on (default AKTE_SHARD_OFFICE)",
    )


def _bound(
    command: Callable[[argparse.Namespace, Sequence[Projection]], int],
    projections: Sequence[Projection],
) -> Callable[[argparse.Namespace], int]:
    return guarded(lambda args: command(args, projections))


# ------------------------------------------------------------------- plumbing


def load_settings(office: str | None = None) -> Settings:
    """The settings from the environment; with offices as shards, those of the shard of
    ``office`` (default ``AKTE_SHARD_OFFICE``)."""
    return settings_or_fail(office)


@dataclass
class Stores:
    service: AkteService
    log: ApplicationEventLog
    views: ViewsStore


@contextmanager
def open_stores(settings: Settings) -> Iterator[Stores]:
    try:
        service = build_service(settings)
    except SchemaError as error:
        # Not unavailable: the store answers, and its schema does not fit this release
        # (newer than the code, or waiting for akte migrate; docs/operations/upgrades.md).
        raise CliFailure(EXIT_SCHEMA, str(error)) from None
    except Exception as error:  # the library raises its own, psycopg's and sqlite3's errors
        raise CliFailure(
            EXIT_UNAVAILABLE, f"the event store is unavailable: {first_line(error)}"
        ) from None
    views = open_views_store(settings)
    try:
        yield Stores(service, ApplicationEventLog(service), views)
    except ProjectionError as error:
        raise CliFailure(EXIT_UNAVAILABLE, str(error)) from None
    finally:
        views.close()
        service.close()


def _chosen(projections: Sequence[Projection], names: Sequence[str]) -> list[Projection]:
    try:
        return select_projections(projections, names)
    except UnknownProjection as error:
        known = ", ".join(p.name for p in projections)
        raise CliFailure(EXIT_USAGE, f"{error} (known: {known})") from None


def _busy(error: ProjectionBusy) -> CliFailure:
    return CliFailure(EXIT_BUSY, f"{error}; wait for it to finish and try again")


# ------------------------------------------------------------------- commands


def run_rebuild(args: argparse.Namespace, projections: Sequence[Projection]) -> int:
    chosen = _chosen(projections, args.names)
    settings = load_settings(args.office)
    display = ProgressDisplay()
    progress = projection_progress(display)
    with open_stores(settings) as stores, display:
        started = time.monotonic()
        try:
            known = {p.name for p in READ_MODELS}
            if args.jobs > 1 and all(p.name in known for p in chosen):
                done = rebuild_in_processes(
                    settings,
                    chosen,
                    build_service=build_service,
                    open_views_store=open_views_store,
                    jobs=args.jobs,
                    batch_size=args.batch_size,
                    lock_wait=args.wait,
                    progress=progress,
                )
            else:
                done = _rebuild_here(stores, chosen, args.batch_size, args.wait, progress)
        except ProjectionBusy as busy:
            display.end_line()
            raise _busy(busy) from None
        except ReadModelFailed as failed:
            display.end_line()
            raise CliFailure(
                EXIT_FAILED,
                f"{failed}; the read models in service are unchanged; fix the cause and run "
                "the rebuild again",
            ) from None
        except KeyboardInterrupt:
            display.end_line()
            raise CliFailure(
                EXIT_INTERRUPTED,
                "interrupted; the read models in service are unchanged (the next rebuild "
                "drops the unfinished one)",
            ) from None
        seconds = time.monotonic() - started
        display.end_line()
        print(
            f"rebuilt {len(chosen)} read model(s) from {done:,} events in {seconds:.1f} s "
            f"({done / max(seconds, 1e-6):,.0f} events/s) in {stores.views.where}"
        )
    return EXIT_OK


def _rebuild_here(
    stores: Stores,
    chosen: Sequence[Projection],
    batch_size: int,
    wait: float,
    progress: Callable[[Progress], None],
) -> int:
    writer = stores.views.writer()
    try:
        # The rebuild's own locks: the worker that follows these read models goes on
        # serving them while the new generation is built beside.
        with rebuild_locks(writer, [p.name for p in chosen], wait):
            return rebuild_beside(
                stores.log, writer, chosen, batch_size=batch_size, progress=progress
            )
    finally:
        writer.close()


def run_status(args: argparse.Namespace, projections: Sequence[Projection]) -> int:
    settings = load_settings(args.office)
    with open_stores(settings) as stores:
        statuses = projection_status(stores.log, stores.views, projections)
    if args.json:
        for status in statuses:
            print(json.dumps(_status_record(status)))
    else:
        print(format_status_table(statuses))
    return EXIT_OK


def _status_record(status: ProjectionStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "position": status.position,
        "head": status.head,
        "lag_events": status.lag_events,
        "lag_seconds": round(status.lag_seconds, 3),
        "updated_at": status.updated_at.isoformat() if status.updated_at else None,
        "built": status.built,
        "failed_at": (
            None
            if status.failure is None
            else {"position": status.failure.position, "reason": status.failure.reason}
        ),
    }


def _stopped(status: ProjectionStatus) -> str:
    failure = status.failure
    if failure is None:
        return ""
    at = failure.position if failure.position is not None else "?"
    return f" (STOPPED at event {at}: {failure.reason})"


def format_status_table(statuses: Sequence[ProjectionStatus]) -> str:
    header = ("read model", "position", "head", "lag events", "lag seconds", "updated")
    rows = [
        (
            status.name + ("" if status.built else " (not built)") + _stopped(status),
            f"{status.position:,}",
            f"{status.head:,}",
            f"{status.lag_events:,}",
            f"{status.lag_seconds:,.1f}",
            status.updated_at.strftime("%Y-%m-%d %H:%M:%S") if status.updated_at else "-",
        )
        for status in statuses
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = []
    for row in (header, *rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run_worker(args: argparse.Namespace, projections: Sequence[Projection]) -> int:
    chosen = _chosen(projections, args.names)
    settings = load_settings(args.office)
    with open_stores(settings) as stores:
        runner = ProjectionRunner(
            stores.log, stores.views, chosen, poll_interval=args.poll_interval
        )

        def stop(signum: int, frame: FrameType | None) -> None:
            runner.request_stop()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            print(
                f"akte: following {len(chosen)} read model(s) in {stores.views.where} "
                "(SIGTERM or Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            )
            runner.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        positions = runner.positions()
        low = min(positions.values()) if positions else 0
        print(f"akte: stopped at position {low:,}", file=sys.stderr)
    return EXIT_OK
