"""History and point-in-time benchmark: latency on a case file with thousands of events.

Run ``bin/bench-history`` (or ``python -m benchmarks.history``) from the repository root::

    bin/bench-history [--stores sqlite,postgres] [--events 5000] [--repeats 5] [--loads 10]

Per store it writes one case file of ``--events`` events (the realistic history of
``benchmarks.harness``: procedures running their course, documents, letters, notes) through
the service, snapshotting every 50 events as deployed, then times, interleaved (A, B, A,
B, ...) so machine noise hits all alike, ``--repeats`` x ``--loads`` times each:

1. the whole history (every entry with its German description, personal data shown),
   as the JSON body the route sends (``build_history_json`` with the batch decoder of
   ``adapters.personal_data.batch_decoding``), beside the previous code path (the mapper
   decoding event by event, no batch decoder) and with the CPU time of the
   measuring thread of both (what moves least when the machine is shared); a first page
   (the route's default size); the same JSON through an entry object each
   (``build_history`` + ``history_json``, as ``akte history`` writes it); the HTML page;
2. the state as of a random recorded time (binary search over versions + snapshot
   load) and at a random version (snapshot load), side by side with the baseline of a
   full replay of all events without snapshots and a load of the current state;
3. a diff between two random versions 50 apart.

It reports medians in milliseconds (targets on PostgreSQL: the whole history under 25 ms,
issue 25; a first page and as-of under 50 ms). Fresh stores, dropped afterwards; an
unreachable PostgreSQL server skips its rows with a note.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Final
from uuid import UUID

import orjson

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.personal_data.batch_decoding import batch_decoder
from adapters.personal_data.kept_history_keys import kept_histories
from adapters.reports.case_history import (
    DEFAULT_HISTORY_PAGE,
    CaseHistory,
    build_diff,
    build_history,
    build_history_json,
    history_html,
    history_json,
)
from adapters.reports.kept_histories import (
    SHELF_STEP,
    KeptEntries,
    KeptHistories,
    KeptShelf,
    writer_fingerprint,
)
from adapters.store.kept_history_shelf import shelf_of
from benchmarks.harness import (
    STORES,
    BenchConfig,
    Figure,
    PostgresParams,
    Ratio,
    Report,
    StoreName,
    add_postgres_arguments,
    build_long_case,
    fresh_store,
    machine_info,
    postgres_from,
    postgres_server_version,
    store_names,
    write_json,
)
from service import AkteService

TARGET_MS: Final = 50.0
"""A first page and as-of, on PostgreSQL."""
WHOLE_HISTORY_TARGET_MS: Final = 25.0
"""The whole history as JSON, on PostgreSQL (issue 25)."""
SNAPSHOT_INTERVAL: Final = 50
PAGE: Final = DEFAULT_HISTORY_PAGE
DIFF_SPAN: Final = 50
KEPT_BEHIND: Final = 50
"""Events written since the kept entries, in the second figure with kept entries."""


@dataclass(frozen=True)
class HistoryBenchConfig:
    stores: tuple[StoreName, ...] = STORES
    events: int = 5000
    repeats: int = 5
    loads_per_repeat: int = 10
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True
    seed: int = 2024


def _progress(config: HistoryBenchConfig, message: str) -> None:
    if config.progress:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ms(action: Callable[[], object]) -> Callable[[], float]:
    def timed() -> float:
        start = perf_counter()
        action()
        return (perf_counter() - start) * 1000

    return timed


def _ms_with_cpu(action: Callable[[], object], cpu: list[float]) -> Callable[[], float]:
    """As :func:`_ms`, noting the CPU time of this thread in ``cpu`` as well."""

    def timed() -> float:
        started_cpu = time.thread_time()
        start = perf_counter()
        action()
        taken = (perf_counter() - start) * 1000
        cpu.append((time.thread_time() - started_cpu) * 1000)
        return taken

    return timed


def _interleaved(rounds: int, variants: Sequence[Callable[[], float]]) -> list[tuple[float, ...]]:
    samples: list[list[float]] = [[] for _ in variants]
    for _ in range(rounds):
        for index, variant in enumerate(variants):
            samples[index].append(variant())
    return [tuple(each) for each in samples]


def bench_store(config: HistoryBenchConfig, store: StoreName, report: Report) -> None:
    events = config.events
    rng = random.Random(config.seed)
    core = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    _progress(config, f"{store}: writing a case file of {events} events")
    with fresh_store(store, core, snapshot_interval=SNAPSHOT_INTERVAL) as settings:
        writer = build_service(settings)
        try:
            case_id = build_long_case(writer, events)
        finally:
            writer.close()
        service = build_service(settings)
        replay = build_service(settings.model_copy(update={"snapshot_interval": 0}))
        try:
            recorded = [event.timestamp for event in service.case_events(case_id)]
            if len(recorded) != events:
                msg = f"the long case file has {len(recorded)} events, not {events}"
                raise RuntimeError(msg)
            first, last = recorded[0], recorded[-1]
            kept = _kept(service)
            behind = _kept_behind(service, case_id, events - KEPT_BEHIND)
            in_store = _kept_in_store(service, case_id, max(1, events - (SHELF_STEP - 1)))

            def as_of() -> object:
                moment = first + (last - first) * rng.random()
                return service.get_case_as_of(case_id, moment)

            def at_version() -> object:
                return service.get_case_at_version(case_id, rng.randint(1, events))

            def diff() -> object:
                start = rng.randint(0, events - DIFF_SPAN)
                return build_diff(
                    service,
                    case_id,
                    from_version=start,
                    to_version=start + DIFF_SPAN,
                    with_personal_data=True,
                )

            variants: list[tuple[str, str, Callable[[], object]]] = [
                (
                    "history_json",
                    f"history, all {events} entries, as JSON",
                    lambda: _history_json(service, case_id, events),
                ),
                (
                    "history_json_kept",
                    "  the same, kept sealed from an earlier request",
                    lambda: _history_json(service, case_id, events, kept=kept),
                ),
                (
                    "history_json_kept_behind",
                    f"  the same, kept, {KEPT_BEHIND} events written since",
                    lambda: _history_json(service, case_id, events, kept=behind),
                ),
                (
                    "history_json_new_process",
                    f"  the same, new process: from the store, {SHELF_STEP - 1} new events",
                    lambda: _history_json(
                        service, case_id, events, kept=_kept(service), shelf=in_store
                    ),
                ),
                (
                    "history_json_previous",
                    "  the same, previous path (event by event)",
                    lambda: _history_json(service, case_id, events, batched=False),
                ),
                (
                    "history_page",
                    f"history, first page ({PAGE} entries), as JSON",
                    lambda: _history_json(service, case_id, PAGE),
                ),
                (
                    "history_json_objects",
                    f"history, all {events} entries, JSON via entry objects",
                    lambda: history_json(_history(service, case_id, events)),
                ),
                (
                    "history_html",
                    f"history, all {events} entries, as HTML",
                    lambda: history_html(_history(service, case_id, events)),
                ),
                ("as_of", "state as of a random recorded time", as_of),
                ("version", "state at a random version", at_version),
                ("current", "current state (snapshot + tail)", lambda: service.get_case(case_id)),
                (
                    "full_replay",
                    f"baseline: full replay of {events} events, no snapshots",
                    lambda: replay.get_case(case_id),
                ),
                ("diff", f"diff of {DIFF_SPAN} versions at a random point", diff),
            ]
            for _, _, action in variants:
                action()  # warm-up: caches, prepared statements, imports
            whole = _history_json(service, case_id, events)
            if whole != _history_json(service, case_id, events, batched=False):
                msg = "the whole history differs from the previous path's"
                raise RuntimeError(msg)
            for other in (kept, behind):
                if whole != _history_json(service, case_id, events, kept=other):
                    msg = "the whole history written after kept entries differs"
                    raise RuntimeError(msg)
            if whole != _history_json(
                service, case_id, events, kept=_kept(service), shelf=in_store
            ):
                msg = "the whole history written after entries kept in the store differs"
                raise RuntimeError(msg)
            rounds = config.repeats * config.loads_per_repeat
            _progress(config, f"{store}: {len(variants)} measurements x {rounds}")
            cpu: dict[str, list[float]] = {key: [] for key in _CPU_TIMED}
            samples = _interleaved(
                rounds,
                [
                    _ms_with_cpu(action, cpu[key]) if key in cpu else _ms(action)
                    for key, _, action in variants
                ],
            )
        finally:
            service.close()
            replay.close()
    section = f"history and point in time, a case file of {events} events on {store}"
    for (key, label, _), taken in zip(variants, samples, strict=True):
        report.figures.append(Figure(f"history.{store}.{key}", section, label, "ms", taken))
    for key, label in _CPU_TIMED.items():
        report.figures.append(
            Figure(f"history.{store}.{key}_cpu", section, label, "ms", tuple(cpu[key]))
        )
    by_key = {key: taken for (key, _, _), taken in zip(variants, samples, strict=True)}
    by_key.update({f"{key}_cpu": tuple(taken) for key, taken in cpu.items()})
    for key, label in (
        ("history_json", "previous path / whole history (speed-up)"),
        ("history_json_cpu", "  the same, CPU of the measuring thread"),
    ):
        previous = key.replace("history_json", "history_json_previous")
        report.ratios.append(
            Ratio(
                f"history.{store}.{previous}_over_{key}",
                section,
                label,
                f"history.{store}.{previous}",
                f"history.{store}.{key}",
                tuple(a / b for a, b in zip(by_key[previous], by_key[key], strict=True)),
            )
        )
    for key in ("as_of", "version"):
        report.ratios.append(
            Ratio(
                f"history.{store}.full_replay_over_{key}",
                section,
                f"full replay / {key.replace('_', '-')} (speed-up by snapshots)",
                f"history.{store}.full_replay",
                f"history.{store}.{key}",
                tuple(a / b for a, b in zip(by_key["full_replay"], by_key[key], strict=True)),
            )
        )


_CPU_TIMED: Final = {
    "history_json": "  CPU of the measuring thread, whole history as JSON",
    "history_json_kept": "  the same, kept sealed",
    "history_json_new_process": "  the same, a new process, kept in the store",
    "history_json_previous": "  the same, previous path",
}


def _history(service: AkteService, case_id: UUID, limit: int) -> CaseHistory:
    return build_history(
        service,
        case_id,
        with_personal_data=True,
        limit=limit,
        decode_batch=batch_decoder(service.mapper),
    )


def _history_json(
    service: AkteService,
    case_id: UUID,
    limit: int,
    *,
    batched: bool = True,
    kept: KeptHistories | None = None,
    shelf: KeptShelf | None = None,
) -> bytes:
    """As the route writes it (``batched``), or as before it (event by event); with
    ``kept`` (and ``shelf``), as the route writes it with kept histories."""
    return build_history_json(
        service,
        case_id,
        with_personal_data=True,
        limit=limit,
        decode_batch=batch_decoder(service.mapper) if batched else None,
        kept=kept,
        shelf=shelf,
    ).body


def _kept(service: AkteService) -> KeptHistories:
    kept = kept_histories(service.mapper)
    if kept is None:
        msg = "the store's mapper does not seal personal data: nothing can be kept"
        raise RuntimeError(msg)
    kept.min_entries = 1  # also the smoke test's short file
    return kept


class _KeptAsPrimed(KeptHistories):
    """Kept entries that stay as primed: every request writes the same events after them."""

    def keep(
        self,
        case_id: UUID,
        *,
        with_personal_data: bool,
        kept: KeptEntries,
        shelf: KeptShelf | None = None,
    ) -> bool:
        return False


class _StoreAsPrimed:
    """The store's kept histories as primed: read from its table on every request, never
    replaced, so every sample is a new process's first request with the same events
    written since (``adapters.store.kept_history_shelf``)."""

    def __init__(self, shelf: KeptShelf) -> None:
        self._shelf = shelf

    def load(self, case_id: UUID, view: str, writer: str) -> tuple[int, bytes] | None:
        return self._shelf.load(case_id, view, writer)

    def save(
        self, case_id: UUID, view: str, writer: str, version: int, sealed: bytes
    ) -> bool | None:
        return False

    def discard(self, case_id: UUID, view: str, writer: str, version: int) -> None:
        return None


def _kept_in_store(service: AkteService, case_id: UUID, version: int) -> KeptShelf:
    """The store's table holding the file's entries up to ``version``, as a process put
    them there (the worst case a new process meets: a history request after at most
    ``SHELF_STEP - 1`` more events would have put more there)."""
    shelf = shelf_of(service)
    if shelf is None:
        msg = "the service has no snapshots, so no kept histories in its store"
        raise RuntimeError(msg)
    body = orjson.loads(_history_json(service, case_id, version))
    entries = orjson.dumps(body["entries"], option=orjson.OPT_NON_STR_KEYS)[1:-1]
    entry = KeptEntries(version, body["reference"], body["office_id"], entries)
    if not _kept(service).keep(case_id, with_personal_data=True, kept=entry, shelf=shelf):
        msg = "the entries could not be kept"
        raise RuntimeError(msg)
    shelved = shelf.load(case_id, "personal", writer_fingerprint())
    if shelved is None or shelved[0] != version:
        msg = "the entries were not put in the store"
        raise RuntimeError(msg)
    return _StoreAsPrimed(shelf)


def _kept_behind(service: AkteService, case_id: UUID, version: int) -> KeptHistories:
    """Kept histories holding the file's entries up to ``version`` only."""
    body = orjson.loads(_history_json(service, case_id, version))
    entries = orjson.dumps(body["entries"], option=orjson.OPT_NON_STR_KEYS)[1:-1]
    sealing = _kept(service)
    primed = _KeptAsPrimed(sealing._key_of, min_entries=1)
    entry = KeptEntries(version, body["reference"], body["office_id"], entries)
    if not KeptHistories.keep(primed, case_id, with_personal_data=True, kept=entry):
        msg = "the entries could not be kept"
        raise RuntimeError(msg)
    return primed


def run(config: HistoryBenchConfig) -> Report:
    started = perf_counter()
    stores = list(config.stores)
    server: str | None = None
    notes: list[str] = []
    if "postgres" in stores:
        server, problem = postgres_server_version(config.postgres)
        if problem is not None:
            stores.remove("postgres")
            notes.append(f"PostgreSQL rows SKIPPED: {problem}")
    report = Report(
        machine=machine_info(server),
        parameters={
            "stores": list(config.stores),
            "events": config.events,
            "repeats": config.repeats,
            "loads_per_repeat": config.loads_per_repeat,
            "snapshot_interval": SNAPSHOT_INTERVAL,
            "target_ms": TARGET_MS,
            "whole_history_target_ms": WHOLE_HISTORY_TARGET_MS,
        },
        notes=notes,
    )
    for store in stores:
        bench_store(config, store, report)
    report.seconds = perf_counter() - started
    return report


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _target_of(key: str) -> float | None:
    if ".postgres." not in key:
        return None
    if key.endswith(
        (
            ".history_json",
            ".history_json_kept",
            ".history_json_kept_behind",
            ".history_json_new_process",
        )
    ):
        return WHOLE_HISTORY_TARGET_MS
    if key.endswith((".history_page", ".as_of")):
        return TARGET_MS
    return None


def format_report(report: Report) -> str:
    m = report.machine
    p = report.parameters
    lines = [
        "Akte history benchmark",
        f"machine: {m.cpu_model}, {m.nproc} CPUs; {m.python}; {m.platform}",
        "libraries: "
        + ", ".join(f"{k} {v}" for k, v in m.libraries.items())
        + (f", PostgreSQL server {m.postgres_server}" if m.postgres_server else ""),
        f"parameters: events={p['events']} repeats={p['repeats']} "
        f"loads_per_repeat={p['loads_per_repeat']} snapshot_interval={p['snapshot_interval']}",
        "figures are medians in ms (spread: min..max); targets on PostgreSQL: the whole "
        f"history < {WHOLE_HISTORY_TARGET_MS:.0f} ms, a first page and as-of < "
        f"{TARGET_MS:.0f} ms",
    ]
    for section in dict.fromkeys(f.section for f in report.figures):
        lines += ["", section]
        for figure in (f for f in report.figures if f.section == section):
            spread = f"{_number(min(figure.samples))}..{_number(max(figure.samples))}"
            verdict = ""
            target = _target_of(figure.key)
            if target is not None:
                met = "MET" if figure.median < target else "MISSED"
                verdict = f"  target < {target:.0f} ms: {met}"
            lines.append(
                f"  {figure.label:<52} {_number(figure.median):>9} {figure.unit:<3}"
                f" ({spread}, n={len(figure.samples)}){verdict}"
            )
        for ratio in (r for r in report.ratios if r.section == section):
            lines.append(f"  = {ratio.label:<50} {ratio.value:>9.1f}x")
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[HistoryBenchConfig, Path | None]:
    parser = argparse.ArgumentParser(
        prog="bin/bench-history",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    defaults = HistoryBenchConfig()
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument(
        "--events", type=positive_int, default=defaults.events, help="default: %(default)s"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=defaults.repeats, help="default: %(default)s"
    )
    parser.add_argument(
        "--loads",
        type=positive_int,
        default=defaults.loads_per_repeat,
        help="timings per repeat (default: %(default)s)",
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where SQLite files go")
    add_postgres_arguments(parser)
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    if args.events <= DIFF_SPAN:
        parser.error(f"--events must be more than {DIFF_SPAN}")
    config = HistoryBenchConfig(
        stores=tuple(store for store in STORES if store in args.stores),  # in STORES order
        events=args.events,
        repeats=args.repeats,
        loads_per_repeat=args.loads,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    return config, args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, json_out = parse_args(argv)
    report = run(config)
    print(format_report(report))
    if json_out is not None:
        write_json(json_out, report.to_json())
        print(f"\nwritten: {json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
