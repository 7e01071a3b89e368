"""Upload inspection benchmark: what a hostile PDF at the size limit costs the server.

Run ``bin/bench-uploads`` (or ``python -m benchmarks.uploads``) from the repository root::

    bin/bench-uploads [--limit-mib 10] [--repeats 3] [--json OUT]

For each file (ordinary scans as the baseline, then PDFs built to exhaust a reader, each
as large as the contact form's limit allows, ``--limit-mib``) it inspects the file as an
upload is inspected (:func:`adapters.documents.inspection.inspect_file`), ``--repeats``
times, each in a fresh process, and reports:

* the outcome: pages counted, or the problem it is refused with;
* the time of the inspection (median), including the worker's start (a server starts
  its workers once and keeps them: the first file of a process pays ~0.2 s more);
* the peak memory of the inspecting process (the server) and of its worker.

The bounds: the server's peak never holds more than the file itself (plus the
interpreter), the worker's never more than its cap (768 MiB), and no file takes longer
than the time limit (10 s) plus the worker's start. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from benchmarks.hostile_pdfs import (
    deeply_nested,
    looping_page_tree,
    object_stream_bomb,
    page_chain,
    wide_page_tree,
)

ROOT: Final = Path(__file__).resolve().parents[1]
MIB: Final = 1_048_576


@dataclass
class Row:
    name: str
    size_bytes: int
    outcome: str
    median_seconds: float
    max_seconds: float
    server_peak_mib: float
    worker_peak_mib: float


def files(limit_mib: int) -> dict[str, Callable[[], bytes]]:
    """Each file by name, made on demand (some take a second to build)."""
    from adapters.simulation.legacy_scans import make_pdf

    limit = limit_mib * MIB
    return {
        "scan of 10 pages": lambda: make_pdf(10, payload_bytes=100_000),
        "scan of 1000 pages": lambda: make_pdf(1000, payload_bytes=min(8_000, limit // 1200)),
        "object-stream bomb, 1 layer": lambda: object_stream_bomb(
            min(limit // 1100, 8192), layers=1
        ),
        "object-stream bomb, 2 layers": lambda: object_stream_bomb(8192, layers=2),
        "page tree loop": looping_page_tree,
        "nesting at the limit": lambda: deeply_nested(limit // 2 - 1000),
        "page chain at the limit": lambda: page_chain(limit // 90),
        "wide page tree at the limit": lambda: wide_page_tree(limit // 95),
    }


def child(name: str, limit_mib: int) -> None:
    """In a fresh process: inspect one file, print the figures as JSON."""
    from adapters.documents.inspection import UnacceptableFile, inspect_file
    from adapters.documents.pdf_pages import default_counter

    data = files(limit_mib)[name]()
    started = time.perf_counter()
    try:
        inspection = inspect_file(io.BytesIO(data), max_bytes=limit_mib * MIB)
        outcome = f"{inspection.page_count} pages"
    except UnacceptableFile as refused:
        outcome = f"refused: {refused.code}"
    seconds = time.perf_counter() - started
    default_counter().close()  # a worker's peak counts once it has ended
    print(
        json.dumps(
            {
                "size": len(data),
                "outcome": outcome,
                "seconds": seconds,
                "server_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def measure(name: str, limit_mib: int, repeats: int) -> Row:
    probes = []
    for _ in range(repeats):
        finished = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.uploads",
                "--child",
                name,
                "--limit-mib",
                str(limit_mib),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        probes.append(json.loads(finished.stdout.strip().splitlines()[-1]))
    seconds = [probe["seconds"] for probe in probes]
    return Row(
        name=name,
        size_bytes=probes[0]["size"],
        outcome=probes[0]["outcome"],
        median_seconds=statistics.median(seconds),
        max_seconds=max(seconds),
        server_peak_mib=max(probe["server_peak_mib"] for probe in probes),
        worker_peak_mib=max(probe["worker_peak_mib"] for probe in probes),
    )


def format_table(rows: Sequence[Row]) -> str:
    lines = [
        f"{'file':30} {'size':>9} {'outcome':32} {'median s':>8} {'max s':>6} "
        f"{'server MiB':>10} {'worker MiB':>10}"
    ]
    for row in rows:
        lines.append(
            f"{row.name:30} {row.size_bytes / 1024:>7,.0f}Ki {row.outcome:32} "
            f"{row.median_seconds:>8.2f} {row.max_seconds:>6.2f} "
            f"{row.server_peak_mib:>10.0f} {row.worker_peak_mib:>10.0f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/bench-uploads", description=__doc__)
    parser.add_argument("--limit-mib", type=int, default=10, help="the upload size limit")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", help="comma-separated file names (default: all)")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child, args.limit_mib)
        return 0
    names = list(files(args.limit_mib))
    if args.only:
        names = [name for name in names if name in args.only.split(",")]
    rows = []
    for name in names:
        print(f"measuring: {name}", file=sys.stderr)
        rows.append(measure(name, args.limit_mib, args.repeats))
    print(format_table(rows))
    if args.json:
        args.json.write_text(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
