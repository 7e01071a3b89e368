"""The history benchmark (``bin/bench-history``) runs end to end at a tiny size.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/performance/history.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.history import main


def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--events", "120", "--repeats", "1", "--loads", "2"]
    argv += ["--quiet", "--tmp-dir", str(tmp_path), "--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for expected in (
        "history, all 120 entries, as JSON",
        "history, all 120 entries, JSON via entry objects",
        "history, all 120 entries, as HTML",
        "new process: from the store",
        "state as of a random recorded time",
        "state at a random version",
        "baseline: full replay of 120 events, no snapshots",
        "diff of 50 versions",
        "speed-up by snapshots",
    ):
        assert expected in printed
    figures = json.loads(out.read_text(encoding="utf-8"))["figures"]
    assert {figure["key"] for figure in figures} >= {
        "history.sqlite.history_json",
        "history.sqlite.history_json_new_process",
        "history.sqlite.as_of",
        "history.sqlite.full_replay",
    }
    assert all(figure["median"] > 0 for figure in figures)
    assert list(tmp_path.glob("akte-bench-*")) == []  # the temporary store is removed
