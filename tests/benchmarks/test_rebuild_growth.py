"""The rebuild growth benchmark's arithmetic and report (no database)."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from benchmarks.rebuild_growth import (
    FullCollections,
    Rebuild,
    backend_cpu_seconds,
    exponent,
    report,
)


def test_the_exponent_is_one_for_a_line_and_two_for_a_square() -> None:
    assert exponent((100, 400), (1.0, 4.0)) == pytest.approx(1.0)
    assert exponent((100, 400), (1.0, 16.0)) == pytest.approx(2.0)


def test_the_report_gives_time_and_rows_per_event_and_the_exponent() -> None:
    results = [
        Rebuild("audit_actions", 0.05, 50_000, 2.0, 1.0, 0.5, 40_000, "1.0"),
        Rebuild("audit_actions", 0.2, 200_000, 8.0, 4.0, 2.0, 160_000, "1.1"),
        Rebuild("workload", 0.05, 50_000, 1.0, 1.0, None, 10_000, "1.0", 3, 0.25),
    ]
    text = report(results).splitlines()
    assert text[0].startswith("audit_actions: 50,000: 30.0 µs/event, 0.80 rows/event")
    assert text[0].endswith("; k 1.00")
    assert text[1] == (
        "workload: 50,000: 20.0 µs/event, 0.20 rows/event, 1.0 s wall (load 1.0), "
        "3 full collections 0.2 s"
    )


def test_only_full_collections_are_counted_and_only_inside_the_block() -> None:
    with FullCollections() as collections:
        gc.collect(0)
        gc.collect(1)
        gc.collect()
        gc.collect()
    gc.collect()
    assert collections.count == 2
    assert collections.seconds > 0


def test_a_local_process_cpu_is_read_and_a_missing_one_is_none(tmp_path: Path) -> None:
    own = backend_cpu_seconds(os.getpid())
    assert own is not None
    assert own >= 0
    assert backend_cpu_seconds(123, proc=tmp_path) is None
