"""Akte benchmark: what the service costs over the library, snapshots, orjson vs json.

Run ``bin/bench`` (or ``python -m benchmarks.service_cost``) from the repository root::

    bin/bench [--stores sqlite,postgres] [--repeats 5] [--commands 2000] [--json OUT]

It measures, side by side in one run, each figure ``--repeats`` times, interleaving the
variants that are compared (A, B, A, B, ...) so machine noise hits both alike, and reports
medians and ratios (never single timings):

1. commands/s per store: through :class:`AkteService` (each command loads the case file,
   checks the expected version, saves) and through the library's bare ``Application.save``
   of the same domain events on in-memory aggregates (no reads); ratio service/bare,
   target >= 0.60;
2. load time of a case file with 1,000 events, with snapshots (interval 50) and without;
3. OrjsonTranscoder vs the library's JSONTranscoder: encode/decode throughput on real
   event and snapshot states, and service commands/s on SQLite end to end.

Every measurement runs on a fresh store: a SQLite file in a temporary directory, or a
PostgreSQL schema created for it and dropped afterwards. An unreachable PostgreSQL server
skips the PostgreSQL rows with a note.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from time import perf_counter
from typing import Any, Final, TypeVar

from eventsourcing.persistence import Transcoder

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from adapters.store.transcoding import (
    json_transcoder,
    orjson_transcoder,
)
from benchmarks.harness import (
    LEGAL_BASIS,
    TOPIC,
    BenchConfig,
    Figure,
    Ratio,
    Report,
    Step,
    StoreName,
    TranscoderName,
    add_postgres_arguments,
    build_long_case,
    command_plan,
    fresh_store,
    machine_info,
    postgres_from,
    postgres_server_version,
    run_bare_commands,
    run_service_commands,
    store_names,
    write_json,
)
from service import AkteService

R = TypeVar("R")

TARGET_SERVICE_SHARE: Final = 0.60
"""The service path must keep at least this share of the bare ``Application.save`` rate."""


# ---------------------------------------------------------------------- sections


def _progress(config: BenchConfig, message: str) -> None:
    if config.progress:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _interleaved(repeats: int, variants: Sequence[Callable[[], R]]) -> list[list[R]]:
    """Run the variants A, B, A, B, ... ``repeats`` times; the samples of each."""
    samples: list[list[R]] = [[] for _ in variants]
    for _ in range(repeats):
        for index, variant in enumerate(variants):
            samples[index].append(variant())
    return samples


def _paired(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, ...]:
    return tuple(a / b for a, b in zip(numerators, denominators, strict=True))


def _commands_per_second(
    config: BenchConfig,
    store: StoreName,
    runner: Callable[[Settings, Sequence[Step], int], float],
    plan: Sequence[Step],
    *,
    transcoder: TranscoderName = "orjson",
    case_cache_size: int | None = None,
) -> float:
    with fresh_store(
        store, config, transcoder=transcoder, snapshot_interval=config.snapshot_interval
    ) as settings:
        if case_cache_size is not None:
            settings = settings.model_copy(update={"case_cache_size": case_cache_size})
        return len(plan) / runner(settings, plan, config.cases)


def bench_commands(config: BenchConfig, store: StoreName, report: Report) -> None:
    plan = command_plan(config.commands, config.cases)
    warmup = command_plan(min(config.commands, 10 * config.cases), config.cases)
    _progress(config, f"{store}: commands/s, service vs bare save (warm-up)")
    _commands_per_second(config, store, run_service_commands, warmup)
    _commands_per_second(config, store, run_bare_commands, warmup)
    _progress(config, f"{store}: commands/s, {config.repeats} x {config.commands} commands each")
    service, bare, uncached = _interleaved(
        config.repeats,
        [
            lambda: _commands_per_second(config, store, run_service_commands, plan),
            lambda: _commands_per_second(config, store, run_bare_commands, plan),
            # Every command loads its case file from the store: the cost of a cache miss.
            lambda: _commands_per_second(
                config, store, run_service_commands, plan, case_cache_size=0
            ),
        ],
    )
    section = f"1. commands/s on {store}"
    report.figures += [
        Figure(
            f"commands.{store}.service",
            section,
            "service (cached case file + version check + save)",
            "cmd/s",
            tuple(service),
        ),
        Figure(
            f"commands.{store}.service_uncached",
            section,
            "service without case cache (load + version check + save)",
            "cmd/s",
            tuple(uncached),
        ),
        Figure(
            f"commands.{store}.bare",
            section,
            "bare Application.save (no reads)",
            "cmd/s",
            tuple(bare),
        ),
    ]
    report.ratios.append(
        Ratio(
            f"commands.{store}.service_over_bare",
            section,
            "service / bare",
            f"commands.{store}.service",
            f"commands.{store}.bare",
            _paired(service, bare),
            target=TARGET_SERVICE_SHARE,
        )
    )
    report.ratios.append(
        Ratio(
            f"commands.{store}.uncached_over_bare",
            section,
            "service without case cache / bare",
            f"commands.{store}.service_uncached",
            f"commands.{store}.bare",
            _paired(uncached, bare),
        )
    )


def bench_load(config: BenchConfig, store: StoreName, report: Report) -> None:
    events = config.long_case_events
    _progress(config, f"{store}: load time of a case file with {events} events")
    with fresh_store(store, config, snapshot_interval=config.snapshot_interval) as settings:
        writer = build_service(settings)
        try:
            case_id = build_long_case(writer, events)
        finally:
            writer.close()
        with_snapshots = build_service(settings)
        without = build_service(settings.model_copy(update={"snapshot_interval": 0}))
        try:
            if with_snapshots.snapshots is None or without.snapshots is not None:
                msg = "snapshot configuration is not what the benchmark expects"
                raise RuntimeError(msg)
            latest = list(with_snapshots.snapshots.get(case_id, desc=True, limit=1))
            for svc in (with_snapshots, without):
                if svc.get_case(case_id).version != events:  # also the warm-up
                    msg = f"the long case file does not have {events} events"
                    raise RuntimeError(msg)

            def timed_load(svc: AkteService) -> Callable[[], float]:
                def load() -> float:
                    start = perf_counter()
                    svc.get_case(case_id)
                    return (perf_counter() - start) * 1000

                return load

            snap, full = _interleaved(
                config.repeats * config.loads_per_repeat,
                [timed_load(with_snapshots), timed_load(without)],
            )
        finally:
            with_snapshots.close()
            without.close()
    section = f"2. load a case file of {events} events on {store}"
    snapshot_version = latest[0].originator_version if latest else 0
    report.figures += [
        Figure(
            f"load.{store}.snapshots",
            section,
            f"with snapshots (interval {config.snapshot_interval}; latest at v{snapshot_version})",
            "ms",
            tuple(snap),
        ),
        Figure(
            f"load.{store}.no_snapshots",
            section,
            f"without snapshots (replays {events} events)",
            "ms",
            tuple(full),
        ),
    ]
    report.ratios.append(
        Ratio(
            f"load.{store}.no_snapshots_over_snapshots",
            section,
            "without / with (speed-up by snapshots)",
            f"load.{store}.no_snapshots",
            f"load.{store}.snapshots",
            _paired(full, snap),
        )
    )


def _state(obj: object) -> dict[str, Any]:
    """What the library's mapper gives the transcoder: the object's state without id and
    version (``Mapper.to_stored_event``)."""
    state = dict(vars(obj))
    state.pop("originator_id", None)
    state.pop("originator_version", None)
    return state


def sample_states(config: BenchConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Event states and snapshot states of a long case file, read back from SQLite."""
    with fresh_store("sqlite", config, snapshot_interval=config.snapshot_interval) as settings:
        service = build_service(settings)
        try:
            case_id = build_long_case(service, config.long_case_events)
            events = [_state(event) for event in service.case_events(case_id)]
            snapshots = (
                [_state(s) for s in service.snapshots.get(case_id)] if service.snapshots else []
            )
        finally:
            service.close()
    return events, snapshots


def _check_transcoders(
    states: Sequence[dict[str, Any]], orjson_tc: Transcoder, json_tc: Transcoder
) -> None:
    """Both transcoders round-trip every state alike and read each other's bytes."""
    for state in states:
        via_orjson = orjson_tc.decode(orjson_tc.encode(state))
        if via_orjson != json_tc.decode(json_tc.encode(state)):
            msg = "orjson and json transcoders decode a state differently"
            raise RuntimeError(msg)
        if json_tc.decode(orjson_tc.encode(state)) != via_orjson:
            msg = "the json transcoder cannot read what the orjson transcoder wrote"
            raise RuntimeError(msg)


def _throughput(
    transcoder: Transcoder, states: Sequence[dict[str, Any]], passes: int
) -> tuple[float, float, float]:
    """(encodes/s, decodes/s, round trips/s) over ``passes`` passes of all states."""
    encode, decode = transcoder.encode, transcoder.decode
    start = perf_counter()
    for _ in range(passes):
        encoded = [encode(state) for state in states]
    encode_seconds = perf_counter() - start
    start = perf_counter()
    for _ in range(passes):
        for data in encoded:
            decode(data)
    decode_seconds = perf_counter() - start
    n = len(states) * passes
    return n / encode_seconds, n / decode_seconds, n / (encode_seconds + decode_seconds)


def bench_transcoders(config: BenchConfig, report: Report) -> None:
    _progress(config, "transcoders: sample states of a long case file")
    events, snapshots = sample_states(config)
    orjson_tc, json_tc = orjson_transcoder(), json_transcoder()
    _check_transcoders(events + snapshots, orjson_tc, json_tc)
    section = "3. transcoders: orjson vs the library's json"
    passes = config.transcoder_passes
    for kind, states in (("events", events), ("snapshots", snapshots)):
        if not states:
            report.notes.append(f"no {kind} to measure the transcoders on")
            continue
        size = {
            name: statistics.mean(len(tc.encode(s)) for s in states)
            for name, tc in (("orjson", orjson_tc), ("json", json_tc))
        }
        _progress(config, f"transcoders: {len(states)} {kind} states x {passes} passes")
        _throughput(orjson_tc, states, 1)  # warm-up
        _throughput(json_tc, states, 1)
        by_orjson, by_json = _interleaved(
            config.repeats,
            [
                partial(_throughput, orjson_tc, states, passes),
                partial(_throughput, json_tc, states, passes),
            ],
        )
        for op_index, op in enumerate(("encode", "decode", "round trip")):
            o = tuple(t[op_index] for t in by_orjson)
            j = tuple(t[op_index] for t in by_json)
            key = f"transcoder.{kind}.{op.replace(' ', '_')}"
            report.figures += [
                Figure(
                    f"{key}.orjson",
                    section,
                    f"{kind} {op}, orjson ({size['orjson']:,.0f} B/state)",
                    "states/s",
                    o,
                ),
                Figure(
                    f"{key}.json",
                    section,
                    f"{kind} {op}, json ({size['json']:,.0f} B/state)",
                    "states/s",
                    j,
                ),
            ]
            report.ratios.append(
                Ratio(
                    f"{key}.orjson_over_json",
                    section,
                    f"{kind} {op}: orjson / json",
                    f"{key}.orjson",
                    f"{key}.json",
                    _paired(o, j),
                )
            )

    plan = command_plan(config.commands, config.cases)
    warmup = command_plan(min(config.commands, 10 * config.cases), config.cases)
    _progress(config, "transcoders: service commands/s on sqlite, orjson vs json (warm-up)")
    transcoders: tuple[TranscoderName, ...] = ("orjson", "json")
    for name in transcoders:
        _commands_per_second(config, "sqlite", run_service_commands, warmup, transcoder=name)
    _progress(config, f"transcoders: {config.repeats} x {config.commands} service commands each")
    with_orjson, with_json = _interleaved(
        config.repeats,
        [
            lambda: _commands_per_second(
                config, "sqlite", run_service_commands, plan, transcoder="orjson"
            ),
            lambda: _commands_per_second(
                config, "sqlite", run_service_commands, plan, transcoder="json"
            ),
        ],
    )
    report.figures += [
        Figure(
            "transcoder.e2e.sqlite.orjson",
            section,
            "service commands on sqlite, orjson",
            "cmd/s",
            tuple(with_orjson),
        ),
        Figure(
            "transcoder.e2e.sqlite.json",
            section,
            "service commands on sqlite, json",
            "cmd/s",
            tuple(with_json),
        ),
    ]
    report.ratios.append(
        Ratio(
            "transcoder.e2e.sqlite.orjson_over_json",
            section,
            "service commands on sqlite: orjson / json",
            "transcoder.e2e.sqlite.orjson",
            "transcoder.e2e.sqlite.json",
            _paired(with_orjson, with_json),
        )
    )


# ------------------------------------------------------------------------- driver


def run(config: BenchConfig) -> Report:
    """Every measurement of the benchmark, as a report."""
    started = perf_counter()
    catalogue = load_catalogue()
    catalogue.check_topic("topic", TOPIC)
    catalogue.check_legal_basis("legal_basis", LEGAL_BASIS)

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
            "repeats": config.repeats,
            "commands": config.commands,
            "cases": config.cases,
            "command_mix": "per case: 3/5 add_note, 1/5 receive_procedure, 1/5 assign_procedure",
            "snapshot_interval": config.snapshot_interval,
            "long_case_events": config.long_case_events,
            "loads_per_repeat": config.loads_per_repeat,
            "transcoder_passes": config.transcoder_passes,
            "sqlite_dir": str(config.tmp_root or tempfile.gettempdir()),
            "postgres": f"{config.postgres.user}@{config.postgres.host}:{config.postgres.port}"
            f"/{config.postgres.dbname}",
        },
        notes=notes,
    )
    for store in stores:
        bench_commands(config, store, report)
    for store in stores:
        bench_load(config, store, report)
    bench_transcoders(config, report)
    report.seconds = perf_counter() - started
    return report


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_report(report: Report) -> str:
    m = report.machine
    p = report.parameters
    lines = [
        "Akte benchmark",
        f"machine: {m.cpu_model}, {m.nproc} CPUs; {m.python}; {m.platform}",
        "libraries: "
        + ", ".join(f"{k} {v}" for k, v in m.libraries.items())
        + (f", PostgreSQL server {m.postgres_server}" if m.postgres_server else ""),
        f"parameters: stores={','.join(p['stores'])} repeats={p['repeats']} "
        f"commands={p['commands']} cases={p['cases']} "
        f"snapshot_interval={p['snapshot_interval']} long_case_events={p['long_case_events']}",
        f"command mix: {p['command_mix']}",
        "figures are medians over the repeats (spread: min..max); ratios are medians of the "
        "per-repeat ratios of interleaved runs",
    ]
    sections = list(dict.fromkeys([f.section for f in report.figures]))
    for section in sections:
        lines += ["", section]
        for figure in (f for f in report.figures if f.section == section):
            spread = f"{_number(min(figure.samples))}..{_number(max(figure.samples))}"
            lines.append(
                f"  {figure.label:<56} {_number(figure.median):>10} {figure.unit:<9}"
                f" ({spread}, n={len(figure.samples)})"
            )
        for ratio in (r for r in report.ratios if r.section == section):
            verdict = ""
            if ratio.target is not None:
                met = "MET" if ratio.meets_target else "MISSED"
                verdict = f"  target >= {ratio.target:.2f}: {met}"
            lines.append(f"  = {ratio.label:<54} {ratio.value:>10.2f}x{verdict}")
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> tuple[BenchConfig, Path | None]:
    parser = argparse.ArgumentParser(
        prog="bin/bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = BenchConfig()
    parser.add_argument(
        "--stores", type=store_names, default=defaults.stores, help="default: sqlite,postgres"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=defaults.repeats, help="default: %(default)s"
    )
    parser.add_argument(
        "--commands",
        type=positive_int,
        default=defaults.commands,
        help="commands per measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--cases",
        type=positive_int,
        default=defaults.cases,
        help="case files the commands go to, round robin (default: %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=positive_int,
        default=defaults.long_case_events,
        help="events of the case file loaded in section 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--loads",
        type=positive_int,
        default=defaults.loads_per_repeat,
        help="loads per repeat in section 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--passes",
        type=positive_int,
        default=defaults.transcoder_passes,
        help="passes over the sample states per transcoder measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=positive_int,
        default=defaults.snapshot_interval,
        help="the service's snapshot interval (default: %(default)s)",
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where SQLite files go")
    add_postgres_arguments(parser)
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    config = BenchConfig(
        stores=args.stores,
        repeats=args.repeats,
        commands=args.commands,
        cases=args.cases,
        snapshot_interval=args.snapshot_interval,
        long_case_events=args.events,
        loads_per_repeat=args.loads,
        transcoder_passes=args.passes,
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
