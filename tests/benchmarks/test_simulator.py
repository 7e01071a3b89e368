"""The simulator benchmark (``bin/bench-simulator``) runs end to end at a tiny size.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/performance/simulator.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.simulator import main


def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--scale", "0.0005", "--repeats", "2", "--quiet"]
    argv += ["--tmp-dir", str(tmp_path), "--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for expected in ("commands/s", "events/s", "time per run", "targets met in every run    yes"):
        assert expected in printed
    [store] = json.loads(out.read_text(encoding="utf-8"))["stores"]
    assert store["store"] == "sqlite"
    assert store["targets_met"] is True
    assert store["events"] >= store["commands"] > 0
    assert len(store["commands_per_second"]) == 2
    assert all(rate > 0 for rate in store["events_per_second"])
    assert list(tmp_path.glob("akte-bench-*")) == []  # the temporary stores are removed
