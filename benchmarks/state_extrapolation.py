"""A state on paper: 40 offices, 10 years, extrapolated from measured points.

Run ``bin/bench-state`` (``python -m benchmarks.state_extrapolation``) from the repository
root::

    bin/bench-state measure --scales 0.05,0.2 --json OUT     # simulate, measure (PostgreSQL)
    bin/bench-state extrapolate OUT [--years 10]             # print the state from OUT

``measure`` simulates the seeded office year (reference profile) at each scale into a
fresh PostgreSQL schema (dropped afterwards), writing the commands in groups as
:mod:`benchmarks.grouped_simulation` does, then measures: the events and procedures
written, the bytes of every table of the schema (events with their indexes, read
models, hash chain, key store), the seconds to rebuild each read model alone from the
whole log, and the rate of ``audit verify``. ``extrapolate`` fits every figure to a
straight line through the measured points (per event) and scales it to each office of
the state and to the years asked. The arithmetic is in :func:`extrapolate` so that it
can be checked without a database; see ``docs/performance/state.md``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from time import perf_counter
from typing import Any

from service_common import StoreUnavailable

# Reference office: 150,000 procedures a year (adapters/reference/office-2024.json);
# the other offices are scaled by their procedures (tests/fixtures/profiles).
REFERENCE_PROCEDURES = 150_000
# Usable disk of one database server for the shards' tables (WAL, backups elsewhere).
DEFAULT_DISK_GIB = 250.0


@dataclass(frozen=True)
class Point:
    """What one simulated office year at ``scale`` measured."""

    scale: float
    events: int
    procedures: int
    simulate_seconds: float
    bytes_by_kind: dict[str, int]
    rebuild_seconds: dict[str, float]
    verify_events_per_second: float
    load: str = ""


@dataclass(frozen=True)
class OfficeKind:
    name: str
    procedures_per_year: int
    count: int


# The state on paper: 40 offices. Spread from the profiles: small district office
# (31,000 procedures), the reference mid-sized city (150,000), a large city (450,000).
DEFAULT_STATE: tuple[OfficeKind, ...] = (
    OfficeKind("small (office-small.json)", 31_000, 28),
    OfficeKind("reference (office-2024.json)", 150_000, 9),
    OfficeKind("large (office-large.json)", 450_000, 3),
)


@dataclass(frozen=True)
class Line:
    """``value = intercept + slope * events``, fitted through the points."""

    intercept: float
    slope: float

    def at(self, events: float) -> float:
        return self.intercept + self.slope * events


def fit(xs: Sequence[float], ys: Sequence[float]) -> Line:
    """Least squares line; one point gives a line through the origin (pure proportion)."""
    if len(xs) != len(ys) or not xs:
        msg = "fit needs as many values as events, at least one"
        raise ValueError(msg)
    if len(xs) == 1 or len(set(xs)) == 1:
        return Line(0.0, sum(ys) / sum(xs))
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    return Line(my - slope * mx, slope)


@dataclass(frozen=True)
class Power:
    """``value = factor * events ** exponent``: what the points say when a figure does not
    grow in a straight line (an exponent of 1 is a line through the origin)."""

    factor: float
    exponent: float

    def at(self, events: float) -> float:
        return float(self.factor * events**self.exponent)


def power_fit(xs: Sequence[float], ys: Sequence[float]) -> Power:
    """Least squares line through the logarithms; one point (or a zero) gives exponent 1."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len({x for x, _ in pairs}) < 2:
        line = fit(xs, ys)
        return Power(line.slope, 1.0)
    logs = fit([math.log(x) for x, _ in pairs], [math.log(y) for _, y in pairs])
    return Power(math.exp(logs.intercept), logs.slope)


@dataclass(frozen=True)
class OfficeState:
    kind: str
    count: int
    events_per_year: float
    events: float
    bytes_by_kind: dict[str, float]
    rebuild_seconds: dict[str, float]
    verify_seconds: float
    rebuild_seconds_power: dict[str, float] = field(default_factory=dict)
    """The same rebuilds along the power law through the points (:class:`Power`)."""

    @property
    def bytes(self) -> float:
        return sum(self.bytes_by_kind.values())

    @property
    def slowest_rebuild(self) -> tuple[str, float]:
        name = max(self.rebuild_seconds, key=self.rebuild_seconds.__getitem__)
        return name, self.rebuild_seconds[name]

    @property
    def rebuild_all_seconds(self) -> float:
        return sum(self.rebuild_seconds.values())


@dataclass(frozen=True)
class StateEstimate:
    years: int
    offices: list[OfficeState]
    events_per_reference_year: float
    measured_events: tuple[int, ...]
    rebuild_exponents: dict[str, float] = field(default_factory=dict)

    @property
    def events(self) -> float:
        return sum(o.events * o.count for o in self.offices)

    @property
    def bytes(self) -> float:
        return sum(o.bytes * o.count for o in self.offices)


def _per_event(points: Sequence[Point], values: Sequence[float]) -> Line:
    return fit([float(p.events) for p in points], values)


def extrapolate(
    points: Sequence[Point],
    state: Sequence[OfficeKind] = DEFAULT_STATE,
    years: int = 10,
) -> StateEstimate:
    """Scale the measured points to ``state`` over ``years`` (straight lines in events)."""
    if not points:
        msg = "no measured points"
        raise ValueError(msg)
    # Events per procedure, fitted, gives the events of an office year of any size.
    per_procedure = fit([float(p.procedures) for p in points], [float(p.events) for p in points])
    kinds = sorted({k for p in points for k in p.bytes_by_kind})
    models = sorted({m for p in points for m in p.rebuild_seconds})
    byte_lines = {k: _per_event(points, [p.bytes_by_kind.get(k, 0) for p in points]) for k in kinds}
    rebuild_powers = {
        m: power_fit(
            [float(p.events) for p in points], [p.rebuild_seconds.get(m, 0.0) for p in points]
        )
        for m in models
    }
    rebuild_lines = {
        m: _per_event(points, [p.rebuild_seconds.get(m, 0.0) for p in points]) for m in models
    }
    verify_rate = min(p.verify_events_per_second for p in points)  # the slower, to be safe
    offices = []
    for kind in state:
        per_year = per_procedure.at(kind.procedures_per_year)
        events = per_year * years
        offices.append(
            OfficeState(
                kind=kind.name,
                count=kind.count,
                events_per_year=per_year,
                events=events,
                bytes_by_kind={k: max(0.0, line.at(events)) for k, line in byte_lines.items()},
                rebuild_seconds={m: max(0.0, line.at(events)) for m, line in rebuild_lines.items()},
                rebuild_seconds_power={m: power.at(events) for m, power in rebuild_powers.items()},
                verify_seconds=events / verify_rate,
            )
        )
    return StateEstimate(
        years=years,
        offices=offices,
        events_per_reference_year=per_procedure.at(REFERENCE_PROCEDURES),
        measured_events=tuple(p.events for p in points),
        rebuild_exponents={m: power.exponent for m, power in rebuild_powers.items()},
    )


def shard_footprint(office: OfficeState) -> float:
    """Bytes a shard needs on its server: everything, plus its read models once more,
    since a rebuild builds the new generation beside the one in service."""
    return office.bytes + office.bytes_by_kind.get("read models", 0.0)


def servers_needed(estimate: StateEstimate, disk_bytes: float) -> list[list[str]]:
    """Shards packed onto database servers of ``disk_bytes`` each, largest first (first
    fit); a shard larger than a server gets one of its own."""
    shards = [
        (shard_footprint(o), o.kind.split(" ", 1)[0])
        for o in estimate.offices
        for _ in range(o.count)
    ]
    shards.sort(key=lambda shard: -shard[0])
    servers: list[tuple[float, list[str]]] = []
    for size, name in shards:
        for index, (used, names) in enumerate(servers):
            if used + size <= disk_bytes:
                servers[index] = (used + size, [*names, name])
                break
        else:
            servers.append((size, [name]))
    return [names for _, names in servers]


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def format_estimate(estimate: StateEstimate, disk_gib: float = DEFAULT_DISK_GIB) -> str:
    lines = [
        f"State on paper: {sum(o.count for o in estimate.offices)} offices, "
        f"{estimate.years} years (straight lines through the measured points at "
        + ", ".join(f"{e:,}" for e in estimate.measured_events)
        + " events)",
        f"reference office year: {estimate.events_per_reference_year:,.0f} events",
        "",
    ]
    for o in estimate.offices:
        name, slowest = o.slowest_rebuild
        lines += [
            f"{o.count} x {o.kind}: {o.events_per_year:,.0f} events/year, "
            f"{o.events:,.0f} in {estimate.years} years",
            "   storage: "
            + ", ".join(f"{k} {_gib(v)}" for k, v in sorted(o.bytes_by_kind.items()))
            + f"; total {_gib(o.bytes)}",
            f"   rebuild of all read models one after another: {_duration(o.rebuild_all_seconds)}"
            f"; slowest alone: {name} {_duration(slowest)}",
            f"   audit verify of the whole log: {_duration(o.verify_seconds)}",
        ]
    lines += [
        "",
        f"all offices: {estimate.events:,.0f} events, {_gib(estimate.bytes)}",
    ]
    servers = servers_needed(estimate, disk_gib * 2**30)
    lines += [
        "",
        f"database servers of {disk_gib:,.0f} GiB for the shards (read models counted twice: "
        f"a rebuild builds beside): {len(servers)}",
        *(
            f"   server {i + 1}: " + ", ".join(f"{n} {kind}" for kind, n in Counter(names).items())
            for i, names in enumerate(servers)
        ),
        "",
        "rebuild per read model, per office shard of each kind: along the line | along the",
        "power law through the points (its exponent; 1 = grows with the events)",
    ]
    models = sorted(estimate.offices[0].rebuild_seconds) if estimate.offices else []
    for m in models:
        lines.append(
            f"   {m:31}{estimate.rebuild_exponents.get(m, 1.0):5.2f}"
            + "".join(
                f"{_duration(o.rebuild_seconds[m]):>9} |{_duration(o.rebuild_seconds_power[m]):>8}"
                for o in estimate.offices
            )
        )
    return "\n".join(lines)


def point_from_json(data: Mapping[str, Any]) -> Point:
    return Point(
        scale=float(data["scale"]),
        events=int(data["events"]),
        procedures=int(data["procedures"]),
        simulate_seconds=float(data["simulate_seconds"]),
        bytes_by_kind={str(k): int(v) for k, v in data["bytes_by_kind"].items()},
        rebuild_seconds={str(k): float(v) for k, v in data["rebuild_seconds"].items()},
        verify_events_per_second=float(data["verify_events_per_second"]),
        load=str(data.get("load", "")),
    )


# --- measuring (needs PostgreSQL) -------------------------------------------------------


def _table_kind(name: str) -> str:
    """Which part of the state a table of the schema belongs to (Akte's table names)."""
    lowered = name.lower()
    if "_view_" in lowered:
        return "read models"
    if "event_chain" in lowered:
        return "hash chain"
    if "data_key" in lowered or "master_key" in lowered:
        return "key store"
    if lowered.endswith(("_events", "_snapshots")):
        return "events"
    return "other"


def bytes_by_kind(tables: Mapping[str, int]) -> dict[str, int]:
    by_kind: Counter[str] = Counter()
    for name, size in tables.items():
        by_kind[_table_kind(name)] += size
    return dict(by_kind)


@dataclass
class Measurement:
    points: list[Point] = field(default_factory=list)
    tables: list[dict[str, dict[str, int]]] = field(default_factory=list)


def _load() -> str:
    return (
        Path("/proc/loadavg").read_text().split(" ", 3)[0] if Path("/proc/loadavg").exists() else ""
    )


@dataclass
class Progress:
    """What the point being measured has so far. It is saved after every stage, so that a
    run stopped after its simulation goes on with ``measure --resume`` from the schema it
    kept, instead of simulating the year again (hours at the largest scales)."""

    scale: float
    schema: str
    load_before: str = ""
    simulated: bool = False
    events: int = 0
    procedures: int = 0
    simulate_seconds: float = 0.0
    log_tables: dict[str, int] = field(default_factory=dict)
    """The tables' bytes right after the simulation: events, chain and keys alone."""
    verify_events_per_second: float | None = None
    rebuild_seconds: dict[str, float] = field(default_factory=dict)


def _table_bytes(pg: Any, schema: str) -> dict[str, int]:
    from psycopg import sql

    with pg.connect() as conn:
        rows = conn.execute(
            sql.SQL(
                "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = {} AND c.relkind = 'r'"
            ).format(sql.Literal(schema))
        ).fetchall()
    return {str(name): int(size) for name, size in rows}


def measure(
    scale: float,
    pg: Any,
    progress: bool,
    save: Callable[[Progress], None] = lambda _: None,
    resume: Progress | None = None,
    first: Sequence[str] = (),
) -> tuple[Point, dict[str, int]]:
    """Simulate one office year at ``scale`` (or go on with ``resume``) and measure it.

    The schema is dropped when the point is complete, or when the simulation itself
    failed; a run stopped later keeps it and says how to go on. ``first``: read models
    to rebuild before the others (the ones a run that may be stopped must not miss)."""
    from uuid import uuid4

    from psycopg import sql

    from adapters.bootstrap import build_service, open_views_store
    from adapters.simulation.simulator import suggested_case_cache
    from adapters.store.hash_chain import ChainSource, verify_chains
    from adapters.views.runner import ApplicationEventLog
    from benchmarks.harness import schema_settings, simulate_reference_year
    from projections.generations import rebuild_beside, rebuild_locks
    from projections.read_models import READ_MODELS

    def say(text: str) -> None:
        if progress:
            print(f"[scale {scale}] {text} (load {_load()})", file=sys.stderr, flush=True)

    if resume is None:
        state = Progress(scale=scale, schema=f"akte_bench_{uuid4().hex[:12]}", load_before=_load())
        with pg.connect() as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(state.schema)))
    else:
        state = resume
        say(f"going on in schema {state.schema}")
    settings = schema_settings(pg, state.schema)
    complete = False
    try:
        cache = suggested_case_cache(scale, years=1)
        # A bulk job, often beside other heavy work on a shared host: one of its
        # transactions once waited over 10 s for its next statement at 3.1 million events.
        service = build_service(
            settings.model_copy(
                update={"case_cache_size": cache, "postgres_idle_transaction_timeout_seconds": 300}
            )
        )
        try:
            if not state.simulated:
                say("simulating")
                started = perf_counter()
                simulate_reference_year(service, scale, say)
                state.simulate_seconds = perf_counter() - started
                topics: Counter[str] = Counter()
                start = 1
                while batch := service.recorder.select_notifications(start=start, limit=10_000):
                    topics.update(n.topic.rsplit(":", 1)[-1] for n in batch)
                    start = batch[-1].id + 1
                state.events = sum(topics.values())
                state.procedures = sum(
                    v for k, v in topics.items() if k.endswith("ProcedureReceived")
                )
                state.log_tables = _table_bytes(pg, state.schema)
                state.simulated = True
                save(state)
                say(
                    f"{state.events:,} events, {state.procedures:,} procedures "
                    f"in {state.simulate_seconds:.0f} s"
                )
            if state.verify_events_per_second is None:
                source: ChainSource = service.recorder  # type: ignore[assignment]
                report = verify_chains(source)
                if not report.ok:
                    msg = f"the simulated log does not verify: {report.first}"
                    raise RuntimeError(msg)
                state.verify_events_per_second = report.events_per_second
                save(state)
                say(f"verified at {report.events_per_second:,.0f} events/s")
        finally:
            service.close()
        # The rebuilds run as `akte projections rebuild` does: in a process that holds no
        # simulation. Up to the 10-million point they ran beside the simulating service
        # and its case cache (2.9 GB there), and every full collection the engine made
        # walked the whole heap: 25 million objects more took a statistics rebuild's 15
        # collections at 2.2 million events from about 17 to 37 s (medians of two).
        del service
        gc.collect()
        service = build_service(
            settings.model_copy(update={"postgres_idle_transaction_timeout_seconds": 300})
        )
        try:
            views = open_views_store(settings)
            writer = views.writer()
            try:
                log = ApplicationEventLog(service)
                ordered = sorted(
                    READ_MODELS,
                    key=lambda p: first.index(p.name) if p.name in first else len(first),
                )
                for projection in ordered:
                    if projection.name in state.rebuild_seconds:
                        continue
                    with rebuild_locks(writer, [projection.name], 10.0):
                        started = perf_counter()
                        rebuild_beside(log, writer, [projection])
                        seconds = perf_counter() - started
                    state.rebuild_seconds[projection.name] = seconds
                    save(state)
                    say(f"rebuilt {projection.name} in {seconds:.1f} s")
            finally:
                writer.close()
                views.close()
        finally:
            service.close()
        tables = _table_bytes(pg, state.schema)
        complete = True
    finally:
        if complete or not state.simulated:
            with pg.connect() as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(state.schema)))
        else:
            say(
                f"stopped; the simulated year stays in schema {state.schema}: go on with "
                "`bin/bench-state measure --resume OUT`, or drop the schema"
            )
    point = Point(
        scale=scale,
        events=state.events,
        procedures=state.procedures,
        simulate_seconds=state.simulate_seconds,
        bytes_by_kind=bytes_by_kind(tables),
        rebuild_seconds=dict(state.rebuild_seconds),
        verify_events_per_second=state.verify_events_per_second or 0.0,
        load=f"{state.load_before} -> {_load()}",
    )
    return point, tables


def _scales(text: str) -> list[float]:
    return [float(s) for s in text.split(",") if s.strip()]


def _measure(args: argparse.Namespace) -> int:
    from benchmarks.harness import postgres_from

    out: Path | None = args.resume or args.json
    if out is None:
        print("bin/bench-state measure: give --json OUT (or --resume OUT)", file=sys.stderr)
        return 2
    from projections.read_models import READ_MODELS

    known = {projection.name for projection in READ_MODELS}
    unknown = sorted(set(args.first) - known)
    if unknown:
        print(
            f"bin/bench-state measure: --first names no read model {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    measurement = Measurement()
    scales = list(args.scales)
    resume: Progress | None = None
    if args.resume is not None:
        data = json.loads(args.resume.read_text())
        measurement.points = [point_from_json(p) for p in data.get("points", [])]
        measurement.tables = list(data.get("tables", []))
        scales = list(data.get("scales_left", []))
        if data.get("partial") is not None:
            resume = Progress(**data["partial"])
            scales = [resume.scale, *scales]
        if not scales:
            print(f"bin/bench-state measure: {out} has nothing left to measure", file=sys.stderr)
            return 2

    def write(partial: Progress | None, left: list[float]) -> None:
        record = asdict(measurement) | {
            "partial": None if partial is None else asdict(partial),
            "scales_left": left,
        }
        # Replaced whole: a stop while writing leaves the previous state, not half a file.
        written = out.with_name(out.name + ".part")
        written.write_text(json.dumps(record, indent=2))
        written.replace(out)

    # Written before anything is simulated: a path that cannot be written fails now,
    # not after an hour, with a schema nobody could resume.
    try:
        write(resume, scales[1:] if resume is not None else scales)
    except OSError as error:
        print(f"bin/bench-state measure: cannot write {out}: {error.strerror}", file=sys.stderr)
        return 2
    for index, scale in enumerate(scales):
        left = scales[index + 1 :]
        try:
            point, tables = measure(
                scale,
                postgres_from(args),
                not args.quiet,
                save=lambda partial, left=left: write(partial, left),  # type: ignore[misc]
                resume=resume,
                first=args.first,
            )
        except StoreUnavailable as error:
            # The service names only the error's type (no personal data in messages); the
            # simulated year has none, and an hour's run needs the driver's own words.
            print(f"bin/bench-state measure: caused by {error.__context__!r}", file=sys.stderr)
            raise
        resume = None
        measurement.points.append(point)
        measurement.tables.append({"tables": tables})
        # Written after every scale: a run stopped later keeps what it measured.
        write(None, left)
    print(format_estimate(extrapolate(measurement.points, years=args.years)))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    from benchmarks.harness import add_postgres_arguments

    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n", 1)[0] if __doc__ else None,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    m = commands.add_parser("measure", help="simulate office years on PostgreSQL and measure")
    m.add_argument("--scales", type=_scales, default=[0.05, 0.2])
    m.add_argument("--json", type=Path, metavar="OUT", help="written after every stage")
    m.add_argument(
        "--resume",
        type=Path,
        metavar="OUT",
        help="finish the point a stopped run left in OUT (its schema), then the scales after it",
    )
    m.add_argument("--years", type=int, default=10)
    m.add_argument("--quiet", action="store_true")
    m.add_argument(
        "--first",
        type=lambda text: [name for name in text.split(",") if name],
        default=[],
        metavar="NAMES",
        help="read models to rebuild before the others, comma-separated",
    )
    add_postgres_arguments(m)
    e = commands.add_parser("extrapolate", help="print the state from measured points")
    e.add_argument("points", type=Path, help="JSON written by measure")
    e.add_argument("--years", type=int, default=10)
    e.add_argument("--disk-gib", type=float, default=DEFAULT_DISK_GIB)
    args = parser.parse_args(argv)
    if args.command == "measure":
        return _measure(args)
    data = json.loads(args.points.read_text())
    points = [point_from_json(p) for p in data["points"]]
    # The tables are grouped again here, so that a better grouping applies to old runs.
    measured_tables = [t["tables"] for t in data.get("tables", [])]
    if len(measured_tables) == len(points):
        points = [
            replace(p, bytes_by_kind=bytes_by_kind(t))
            for p, t in zip(points, measured_tables, strict=True)
        ]
    print(format_estimate(extrapolate(points, years=args.years), args.disk_gib))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
