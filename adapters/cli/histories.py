"""``akte histories keep``: write the histories of long case files once, into the store.

A long case file's history is kept, sealed with the file's key, in the store beside its
snapshots (:mod:`adapters.store.kept_history_shelf`) once a request has written it, or
the API process ahead of requests (:mod:`adapters.reports.history_keeper`, for files
that grow while it runs, through it or another process); every later request, in any API
process, then writes only the events since. The first request for a file that was long
before the API process started, or after a release changed how entries are written,
writes all its events (about 45 to 90 ms for 5,000 events here). Run this after a
deployment, or at night, and no caseworker or auditor waits for that: it writes, for
every case file of the shard with at least ``--min-entries`` events, both views (with
and without personal data) and keeps them, and says how many it kept. It first removes
what is kept of erased files: an erasure deletes it, but an API process whose key cache
still held the key may put a history back within that minute (sealed with the destroyed
key, so unreadable). Nobody reads the histories here, so nothing goes to the read-access log.

Exit codes: 0 done; 2 settings invalid; 3 store unreachable; 6 no store at the
configured place.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Final

from adapters.cli.progress import ProgressDisplay
from adapters.cli.support import (
    EXIT_OK,
    EXIT_USAGE,
    CliFailure,
    guarded,
    open_service,
    positive_int,
    refuse_missing_sqlite_store,
    settings_or_fail,
)
from adapters.personal_data.batch_decoding import batch_decoder
from adapters.personal_data.kept_history_keys import kept_histories
from adapters.reports.case_history import MAX_HISTORY_PAGE, build_history_json
from adapters.reports.kept_histories import MIN_KEPT_ENTRIES
from adapters.store.kept_history_shelf import long_streams, shelf_of
from service_common import CaseNotFound

COMMAND: Final = "akte histories keep"


def add_histories_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``histories keep`` to the ``akte`` parser."""
    histories = commands.add_parser("histories", help="long case files' kept histories")
    sub = histories.add_subparsers(dest="histories_command", required=True, metavar="COMMAND")
    keep = sub.add_parser(
        "keep",
        help="write the histories of long case files once and keep them in the store",
        description=(
            "Writes the history of every case file with at least --min-entries events (both "
            "views) and keeps it sealed with the file's key in the store, so that no "
            "request writes it from all its events. Run it after a deployment."
        ),
    )
    keep.add_argument("--office", help="offices as shards: this office's shard")
    keep.add_argument(
        "--min-entries",
        type=positive_int,
        default=MIN_KEPT_ENTRIES,
        help="files with at least this many events (default %(default)s; fewer are not kept)",
    )
    keep.set_defaults(run=guarded(_keep))


def _line(done: int, total: int) -> Callable[[], str]:
    return lambda: f"{done} of {total} long streams"


def _keep(args: argparse.Namespace) -> int:
    settings = settings_or_fail(args.office)
    refuse_missing_sqlite_store(settings, COMMAND)
    with open_service(settings) as service:
        kept, shelf = kept_histories(service.mapper), shelf_of(service)
        if kept is None or shelf is None:
            raise CliFailure(
                EXIT_USAGE, "this store does not seal personal data per person: nothing is kept"
            )
        kept.min_entries = min(kept.min_entries, args.min_entries)
        # First what an API process may have put back just after an erasure (its key
        # cache still held the key): sealed with a destroyed key, removed here.
        removed = 0
        for case_id in shelf.files():
            if kept.key_destroyed(case_id):
                shelf.delete(case_id)
                removed += 1
        files = long_streams(service.recorder, args.min_entries)
        decode = batch_decoder(service.mapper)
        case_files = in_store = 0
        with ProgressDisplay() as display:
            for done, case_id in enumerate(files, 1):
                try:
                    for with_personal_data in (True, False):
                        build_history_json(
                            service,
                            case_id,
                            with_personal_data=with_personal_data,
                            limit=MAX_HISTORY_PAGE,
                            decode_batch=decode,
                            kept=kept,
                            shelf=shelf,
                        )
                except CaseNotFound:  # a long stream that is no case file (a calendar)
                    pass
                else:
                    case_files += 1
                    in_store += all(
                        shelf.kept_version(case_id, view, kept.writer) is not None
                        for view in ("personal", "withheld")
                    )
                kept.forget(case_id)  # one file in memory at a time
                display.update(done, len(files), _line(done, len(files)))
    print(
        f"{in_store} of {case_files} case files with at least {args.min_entries} events have "
        "their histories kept in the store"
        + ("" if in_store == case_files else " (the others: erased, or not taken by the store)")
        + (f"; removed what was kept of {removed} erased case files" if removed else ""),
        file=sys.stdout,
    )
    return EXIT_OK
