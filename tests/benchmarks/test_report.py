"""The yearly report benchmark (``bin/bench-report``) runs end to end at a tiny size.

It checks that the benchmark runs, reproduces the simulator's ground truth and reports
what it promises, never how fast anything is (figures: ``docs/performance/report.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.report import main


def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--scale", "0.002", "--years", "2", "--repeats", "1"]
    argv += ["--reads", "2", "--quiet", "--json", str(out)]

    assert main(argv) == 0  # 1 would mean the report missed the simulator's truth

    printed = capsys.readouterr().out
    for expected in (
        "report latency, 1 year of history",
        "report latency, 2 years of history",
        "latency 2 years / 1 year",
        "simulator, 1 year(s): events/s",
        "statistics rebuild, 2 year(s)",
    ):
        assert expected in printed
    figures = {figure["key"]: figure for figure in json.loads(out.read_text())["figures"]}
    assert figures["sqlite.report_1y"]["median"] > 0
    assert figures["sqlite.report_2y"]["median"] > 0
