"""The what-if benchmark (``bin/bench-whatif``) runs end to end at a tiny size.

It checks that the benchmark runs, matches the simulator's ground truth and reports what
it promises, never how fast anything is (figures: ``docs/performance/whatif.md``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.whatif import main


def test_the_benchmark_prints_its_figures_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"

    assert main(["--scales", "0.002", "--repeats", "1", "--quiet", "--json", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "what-if median" in printed
    assert "extrapolated to 1,000,000 events" in printed
    document = json.loads(out.read_text())
    [scale] = document["scales"]
    assert scale["events"] > 0
    assert scale["saved_at_24_months"] == scale["truth_extensions"]
