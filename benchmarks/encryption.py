"""Per-person encryption benchmark: what sealing personal fields costs on writes and replay.

Run ``bin/bench-encryption`` (or ``python -m benchmarks.encryption``) from the repository
root::

    bin/bench-encryption [--stores sqlite,postgres] [--repeats 5] [--commands 1000]
                         [--cases 20] [--events 1000] [--loads 10] [--json OUT]

Per store, the same work on a store with per-person encryption (``AKTE_PERSONAL_DATA_
ENCRYPTION=true``, the default) and on one without, interleaved (plain, encrypted, plain,
...) so machine noise hits both alike, ``--repeats`` times:

1. write path: opening 160 case files (every field of ``Opened`` is personal, and each
   file has its own key, made ahead 32 per commit to the key store, so the batches are
   refilled five times in the timed part), then ``--commands`` commands through the
   service, round robin over ``--cases`` files (of every five: three notes, personal; one procedure
   received and one assigned, not personal), snapshots every 50 events as deployed;
2. replay: one case file of ``--events`` events (the realistic history of
   ``benchmarks.harness``), loaded ``--loads`` times per repeat from all its events without
   snapshots (warm key cache, and cold: the key read from the key store and unwrapped
   each time), and as the service loads it (latest snapshot plus the events after it);
3. the mapper alone, no I/O: microseconds per event to encode and decode every event
   kind of a rich case history.

Figures are medians; ratios are medians of the per-repeat ratios ``encrypted / plain`` of
the time taken (target: under 1.5). Fresh stores, dropped afterwards.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import Any, Final
from uuid import UUID

from eventsourcing.persistence import Mapper

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.personal_data.key_store import DEFAULT_RESERVE_SIZE
from adapters.personal_data.mapper import PersonalDataMapper, data_keys_of
from adapters.settings import Settings
from benchmarks.harness import (
    BY,
    MASTER_DATA,
    OFFICE_ID,
    STORES,
    BenchConfig,
    PostgresParams,
    StoreName,
    build_long_case,
    command_plan,
    fresh_store,
    machine_info,
    postgres_server_version,
    run_service_commands,
    store_names,
    write_json,
)
from service import AkteService, project_case

TARGET: Final = 1.5


@dataclass(frozen=True)
class Timing:
    key: str
    section: str
    label: str
    unit: str
    plain: tuple[float, ...]
    encrypted: tuple[float, ...]
    higher_is_better: bool = False

    @property
    def ratios(self) -> tuple[float, ...]:
        """Per repeat: time with encryption over time without."""
        if self.higher_is_better:
            return tuple(p / e for p, e in zip(self.plain, self.encrypted, strict=True))
        return tuple(e / p for p, e in zip(self.plain, self.encrypted, strict=True))

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "section": self.section,
            "label": self.label,
            "unit": self.unit,
            "plain_median": statistics.median(self.plain),
            "encrypted_median": statistics.median(self.encrypted),
            "plain": list(self.plain),
            "encrypted": list(self.encrypted),
            "cost_ratio": self.ratio,
            "meets_target": self.ratio < TARGET,
        }


@dataclass
class EncryptionReport:
    parameters: dict[str, Any]
    machine: dict[str, Any]
    timings: list[Timing] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "machine": self.machine,
            "target": f"cost ratio (encrypted / plain time) under {TARGET}",
            "timings": [timing.as_json() for timing in self.timings],
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def _progress(quiet: bool, message: str) -> None:
    if not quiet:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _with(settings: Settings, encrypted: bool) -> Settings:
    return settings.model_copy(update={"personal_data_encryption": encrypted})


# ------------------------------------------------------------------ write path


OPENED_PER_RUN: Final = 5 * DEFAULT_RESERVE_SIZE
"""Case files opened per run: enough that the batches of keys made ahead are refilled
several times inside the timed part, so the figure is the cost per file over time."""


def _open_cases(settings: Settings, cases: int) -> float:
    service = build_service(settings)
    try:
        # One file first: the first write of a fresh service warms caches and tables.
        service.open_case(office_id=OFFICE_ID, master_data=MASTER_DATA, by=BY)
        start = perf_counter()
        for _ in range(cases):
            service.open_case(office_id=OFFICE_ID, master_data=MASTER_DATA, by=BY)
        return perf_counter() - start
    finally:
        service.close()


def bench_writes(config: BenchConfig, store: StoreName, report: EncryptionReport) -> None:
    plan = command_plan(config.commands, config.cases)
    opening: dict[bool, list[float]] = {False: [], True: []}
    commands: dict[bool, list[float]] = {False: [], True: []}
    for repeat in range(config.repeats):
        for encrypted in (False, True):
            with fresh_store(store, config) as settings:
                chosen = _with(settings, encrypted)
                seconds = _open_cases(chosen, OPENED_PER_RUN)
                opening[encrypted].append(OPENED_PER_RUN / seconds)
            with fresh_store(store, config) as settings:
                chosen = _with(settings, encrypted)
                seconds = run_service_commands(chosen, plan, config.cases)
                commands[encrypted].append(len(plan) / seconds)
        _progress(not config.progress, f"{store}: write path, repeat {repeat + 1}")
    section = f"1. write path ({store})"
    report.timings.append(
        Timing(
            f"encryption.{store}.open",
            section,
            f"{OPENED_PER_RUN} case files opened (all fields personal, a key each, "
            f"made ahead {DEFAULT_RESERVE_SIZE} per commit)",
            "files/s",
            tuple(opening[False]),
            tuple(opening[True]),
            higher_is_better=True,
        )
    )
    report.timings.append(
        Timing(
            f"encryption.{store}.commands",
            section,
            f"commands (3 of 5 with personal data), {len(plan)} per run",
            "cmds/s",
            tuple(commands[False]),
            tuple(commands[True]),
            higher_is_better=True,
        )
    )


# ---------------------------------------------------------------------- replay


def _replay_all(service: AkteService, case_id: UUID, *, cold: bool) -> float:
    start = perf_counter()
    if cold:
        data_keys_of(service).forget(str(case_id))
    case = project_case(None, service.events.get(case_id))
    assert case is not None
    return perf_counter() - start


def _load(service: AkteService, case_id: UUID) -> float:
    start = perf_counter()
    service._case_cache.pop(case_id)
    service.get_case(case_id)
    return perf_counter() - start


def bench_replay(config: BenchConfig, store: StoreName, report: EncryptionReport) -> None:
    with fresh_store(store, config) as plain_settings, fresh_store(store, config) as enc_settings:
        services = {
            False: build_service(_with(plain_settings, False)),
            True: build_service(_with(enc_settings, True)),
        }
        try:
            ids = {
                encrypted: build_long_case(service, config.long_case_events)
                for encrypted, service in services.items()
            }
            variants: dict[str, Callable[[AkteService, UUID], float]] = {
                "replay": lambda s, i: _replay_all(s, i, cold=False),
                "replay_cold": lambda s, i: _replay_all(s, i, cold=True),
                "load": _load,
            }
            samples: dict[str, dict[bool, list[float]]] = {
                name: {False: [], True: []} for name in variants
            }
            for encrypted, service in services.items():  # warm-up
                for run in variants.values():
                    run(service, ids[encrypted])
            for repeat in range(config.repeats):
                for name, run in variants.items():
                    for encrypted in (False, True):
                        service = services[encrypted]
                        runs = [
                            run(service, ids[encrypted]) for _ in range(config.loads_per_repeat)
                        ]
                        samples[name][encrypted].append(statistics.median(runs) * 1000)
                _progress(not config.progress, f"{store}: replay, repeat {repeat + 1}")
        finally:
            for service in services.values():
                service.close()
    section = f"2. replay ({store})"
    labels = {
        "replay": f"replay of all {config.long_case_events} events, no snapshots",
        "replay_cold": f"the same, key read and unwrapped each time ({store} key store)",
        "load": "load as the service does (snapshot + events after it)",
    }
    for name, label in labels.items():
        report.timings.append(
            Timing(
                f"encryption.{store}.{name}",
                section,
                label,
                "ms",
                tuple(samples[name][False]),
                tuple(samples[name][True]),
            )
        )


# ---------------------------------------------------------------------- mapper


def bench_mapper(config: BenchConfig, report: EncryptionReport) -> None:
    """The mapper alone: encode and decode every event of the rich histories."""
    from adapters.simulation.case_histories import closed_case, rich_case

    events: list[Any] = []
    for _ in range(20):
        events += rich_case().collect_events()
        events += closed_case().collect_events()
    with fresh_store("sqlite", config) as settings:
        service = build_service(settings)
        try:
            encrypting = service.mapper
            assert isinstance(encrypting, PersonalDataMapper)
            plain = Mapper[UUID](transcoder=encrypting.transcoder)
            encrypting.keys._cache_seconds = 3600.0
            for event in events:  # make the keys, warm the cache
                encrypting.to_stored_event(event)
            stored = {
                False: [plain.to_stored_event(e) for e in events],
                True: [encrypting.to_stored_event(e) for e in events],
            }
            mappers: dict[bool, Mapper[UUID]] = {False: plain, True: encrypting}
            encode: dict[bool, list[float]] = {False: [], True: []}
            decode: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(config.repeats):
                for encrypted in (False, True):
                    mapper = mappers[encrypted]
                    start = perf_counter()
                    for event in events:
                        mapper.to_stored_event(event)
                    encode[encrypted].append((perf_counter() - start) / len(events) * 1e6)
                    start = perf_counter()
                    for item in stored[encrypted]:
                        mapper.to_domain_event(item)
                    decode[encrypted].append((perf_counter() - start) / len(events) * 1e6)
        finally:
            service.close()
    section = "3. mapper alone (no I/O)"
    report.timings.append(
        Timing(
            "encryption.mapper.encode",
            section,
            f"encode an event ({len(events)} events of every kind)",
            "µs/event",
            tuple(encode[False]),
            tuple(encode[True]),
        )
    )
    report.timings.append(
        Timing(
            "encryption.mapper.decode",
            section,
            "decode an event",
            "µs/event",
            tuple(decode[False]),
            tuple(decode[True]),
        )
    )


# ------------------------------------------------------------------------ run


def run(config: BenchConfig) -> EncryptionReport:
    started = perf_counter()
    postgres_server, problem = (
        postgres_server_version(config.postgres) if "postgres" in config.stores else (None, None)
    )
    machine = machine_info(postgres_server)
    report = EncryptionReport(
        parameters={
            "stores": list(config.stores),
            "repeats": config.repeats,
            "commands": config.commands,
            "cases": config.cases,
            "events": config.long_case_events,
            "loads": config.loads_per_repeat,
        },
        machine={
            "cpu": machine.cpu_model,
            "nproc": machine.nproc,
            "python": machine.python,
            "platform": machine.platform,
            "postgres_server": machine.postgres_server,
        },
    )
    for store in config.stores:
        if store == "postgres" and problem is not None:
            report.notes.append(f"PostgreSQL skipped: {problem}")
            continue
        _progress(not config.progress, f"{store}: write path")
        bench_writes(config, store, report)
        _progress(not config.progress, f"{store}: replay")
        bench_replay(config, store, report)
    bench_mapper(config, report)
    report.seconds = perf_counter() - started
    return report


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_report(report: EncryptionReport) -> str:
    p = report.parameters
    m = report.machine
    lines = [
        "Akte per-person encryption benchmark",
        f"machine: {m['cpu']}, {m['nproc']} CPUs; {m['python']}; {m['platform']}"
        + (f"; PostgreSQL {m['postgres_server']}" if m["postgres_server"] else ""),
        f"parameters: stores={','.join(p['stores'])} repeats={p['repeats']} "
        f"commands={p['commands']} cases={p['cases']} events={p['events']} loads={p['loads']}",
        "medians over the repeats; cost = encrypted / plain time (median of per-repeat "
        f"ratios of interleaved runs), target under {TARGET}",
    ]
    for section in dict.fromkeys(t.section for t in report.timings):
        lines += ["", section]
        lines.append(f"  {'':<62} {'plain':>10} {'encrypted':>10} {'':<9} {'cost':>6}")
        for t in (t for t in report.timings if t.section == section):
            verdict = "met" if t.ratio < TARGET else "MISSED"
            lines.append(
                f"  {t.label:<62} {_number(statistics.median(t.plain)):>10} "
                f"{_number(statistics.median(t.encrypted)):>10} {t.unit:<9} "
                f"{t.ratio:>5.2f}x  {verdict}"
            )
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bin/bench-encryption",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--stores", type=store_names, default=STORES)
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--commands", type=positive_int, default=1000)
    parser.add_argument("--cases", type=positive_int, default=20)
    parser.add_argument("--events", type=positive_int, default=1000)
    parser.add_argument("--loads", type=positive_int, default=10)
    parser.add_argument("--tmp-dir", type=Path, help="where SQLite stores go")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    config = BenchConfig(
        stores=args.stores,
        repeats=args.repeats,
        commands=args.commands,
        cases=args.cases,
        long_case_events=args.events,
        loads_per_repeat=args.loads,
        postgres=PostgresParams(),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    report = run(config)
    print(format_report(report))
    if args.json is not None:
        write_json(args.json, report.as_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
