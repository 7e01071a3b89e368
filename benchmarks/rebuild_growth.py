"""How the rebuild of a read model grows with the log (issue 25, docs/performance/state.md).

Simulates the reference office year at a few scales on PostgreSQL (grouped, as
``bin/bench-state``), rebuilds each named read model alone beside the one in service
(``rebuild_beside``, what ``akte projections rebuild NAME`` runs) and prints, per read
model and scale, the CPU seconds of this process plus those of the writer's PostgreSQL
backend (read from ``/proc`` when the server runs on this machine, else left out), per
event, the rows copied per event, and the exponent ``k`` of ``time = a * events^k``
between neighbouring scales (1: linear). Run from the repository root::

    python -m benchmarks.rebuild_growth --scales 0.05,0.2 \\
        --read-models audit_actions,workload,statistics [--keep akte_growth] [--json OUT]

``--keep PREFIX`` keeps the simulated logs in schemas ``PREFIX_<scale>`` and reuses them
when they exist: run the same command from another checkout (``PYTHONPATH``) to compare
two versions of the engine on the same logs, side by side.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from adapters.settings import Settings
from benchmarks.harness import (
    PostgresParams,
    add_postgres_arguments,
    postgres_from,
    schema_settings,
    simulate_reference_year,
)


@dataclass(frozen=True)
class Rebuild:
    read_model: str
    scale: float
    events: int
    wall_seconds: float
    process_cpu_seconds: float
    server_cpu_seconds: float | None
    rows_copied: int
    load: str
    full_collections: int = 0
    """Python's full (oldest-generation) garbage collections during the rebuild: each walks
    the whole heap of the process."""
    collection_seconds: float = 0.0

    @property
    def cpu_seconds(self) -> float:
        return self.process_cpu_seconds + (self.server_cpu_seconds or 0.0)


def exponent(events: tuple[int, int], seconds: tuple[float, float]) -> float:
    """``k`` of ``seconds = a * events^k`` through two points."""
    return math.log(seconds[1] / seconds[0]) / math.log(events[1] / events[0])


def backend_cpu_seconds(pid: int, proc: Path = Path("/proc")) -> float | None:
    """User and system CPU of a local process, or None where it cannot be read."""
    try:
        fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _load() -> str:
    path = Path("/proc/loadavg")
    return path.read_text().split(" ", 1)[0] if path.exists() else ""


@contextmanager
def simulated_log(pg: PostgresParams, scale: float, keep: str | None) -> Iterator[Settings]:
    """Settings of a schema holding the simulated year at ``scale`` (made unless kept)."""
    from adapters.bootstrap import build_service
    from adapters.simulation.simulator import suggested_case_cache

    schema = f"{keep}_{str(scale).replace('.', '_')}" if keep else f"akte_growth_{os.getpid()}"
    with pg.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
        if not exists or not keep:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
            exists = None
    settings = schema_settings(pg, schema)
    try:
        if not exists:
            cache = suggested_case_cache(scale, years=1)
            service = build_service(settings.model_copy(update={"case_cache_size": cache}))
            try:
                simulate_reference_year(
                    service, scale, lambda text: print(text, file=sys.stderr, flush=True)
                )
            finally:
                service.close()
        yield settings
    finally:
        if not keep:
            with pg.connect() as conn:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class _CountingWriter:
    """The views writer, counting the rows inserted."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        self.rows = 0

    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
        self.rows += len(rows)
        self._writer.insert_rows(table, columns, rows)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._writer, name)


def measure(
    settings: Settings, scale: float, names: Sequence[str], cached_rows: int | None = None
) -> list[Rebuild]:
    """Rebuild each read model alone beside the one in service, one after another."""
    from adapters.bootstrap import build_service, open_views_store
    from adapters.views.runner import ApplicationEventLog
    from projections.engine import DEFAULT_CACHED_ROWS
    from projections.generations import rebuild_beside, rebuild_locks
    from projections.read_models import READ_MODELS

    by_name = {projection.name: projection for projection in READ_MODELS}
    service = build_service(settings)
    views = open_views_store(settings)
    writer = views.writer()
    results = []
    try:
        backend = int(writer.fetch("SELECT pg_backend_pid()")[0][0])
        log = ApplicationEventLog(service)
        events = log.head()
        for name in names:
            counting = _CountingWriter(writer)
            server_before = backend_cpu_seconds(backend)
            cpu_before = time.process_time()
            started = time.perf_counter()
            with rebuild_locks(writer, [name], 10.0), FullCollections() as collections:
                rebuild_beside(
                    log,
                    counting,
                    [by_name[name]],
                    cached_rows=DEFAULT_CACHED_ROWS if cached_rows is None else cached_rows,
                )
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu_before
            server_after = backend_cpu_seconds(backend)
            server = (
                None
                if server_before is None or server_after is None
                else server_after - server_before
            )
            results.append(
                Rebuild(
                    name,
                    scale,
                    events,
                    wall,
                    cpu,
                    server,
                    counting.rows,
                    _load(),
                    collections.count,
                    collections.seconds,
                )
            )
    finally:
        writer.close()
        views.close()
        service.close()
    return results


class FullCollections:
    """Counts Python's full garbage collections while the block runs, and their seconds."""

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self._started = 0.0

    def _watch(self, phase: str, info: dict[str, Any]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._started

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self._watch)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._watch)


def report(results: Sequence[Rebuild]) -> str:
    lines = []
    for name in dict.fromkeys(result.read_model for result in results):
        points = sorted((r for r in results if r.read_model == name), key=lambda r: r.events)
        cells = [
            f"{r.events:,}: {1e6 * r.cpu_seconds / r.events:.1f} µs/event, "
            f"{r.rows_copied / r.events:.2f} rows/event, {r.wall_seconds:.1f} s wall "
            f"(load {r.load}), {r.full_collections} full collections {r.collection_seconds:.1f} s"
            for r in points
        ]
        ks = [
            f"{exponent((a.events, b.events), (a.cpu_seconds, b.cpu_seconds)):.2f}"
            for a, b in itertools.pairwise(points)
        ]
        lines.append(f"{name}: " + " | ".join(cells) + (f"; k {', '.join(ks)}" if ks else ""))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--scales", default="0.05,0.2")
    parser.add_argument("--read-models", default="audit_actions,workload,statistics")
    parser.add_argument("--keep", metavar="PREFIX", help="keep and reuse the simulated logs")
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument(
        "--cached-rows",
        type=int,
        help="rows the rebuild remembers between batches (default: the engine's); a smaller"
        " cache shows at a small log what a rebuild of a larger one meets",
    )
    add_postgres_arguments(parser)
    args = parser.parse_args(argv)
    pg = postgres_from(args)
    names = [name for name in args.read_models.split(",") if name]
    results: list[Rebuild] = []
    for scale in (float(s) for s in args.scales.split(",") if s):
        with simulated_log(pg, scale, args.keep) as settings:
            print(f"scale {scale}: rebuilding {', '.join(names)}", file=sys.stderr, flush=True)
            results += measure(settings, scale, names, args.cached_rows)
    print(report(results))
    if args.json:
        args.json.write_text(
            json.dumps([{**asdict(r), "cpu_seconds": r.cpu_seconds} for r in results], indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
