"""The grouped-simulation benchmark runs end to end at a tiny scale, so it cannot rot. It
checks what the report holds (the same events both ways, targets met), never speed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.grouped_simulation import main


def test_the_benchmark_compares_the_same_events_both_ways(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "grouped.json"

    assert (
        main(
            [
                "--scale",
                "0.002",
                "--stores",
                "sqlite",
                "--group-events",
                "500",
                "--tmp-dir",
                str(tmp_path),
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )

    text = capsys.readouterr().out
    assert "sqlite, groups of 500:" in text
    assert "same events: yes" in text
    assert "MISSED" not in text
    runs = json.loads(out.read_text())["runs"]
    assert [run["group_events"] for run in runs] == [1, 500]
    assert runs[0]["topics"] == runs[1]["topics"]
    assert runs[0]["events"] == runs[1]["events"] > 0
