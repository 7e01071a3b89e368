"""The upload inspection benchmark (``bin/bench-uploads``) runs end to end at a tiny size.

It checks that the benchmark measures and reports what it promises, never how fast
anything is (the figures are in docs/performance/uploads.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.uploads import files, main


def test_every_file_fits_the_limit_it_is_made_for() -> None:
    for name, make in files(1).items():
        if "bomb, 2 layers" in name:
            continue  # a few KiB whatever it inflates to
        assert len(make()) <= 2 * 1_048_576, name


def test_the_benchmark_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "uploads.json"

    assert (
        main(
            [
                "--limit-mib",
                "1",
                "--repeats",
                "1",
                "--only",
                "page tree loop,scan of 10 pages",
                "--json",
                str(out),
            ]
        )
        == 0
    )

    printed = capsys.readouterr().out
    assert "page tree loop" in printed
    rows = json.loads(out.read_text())
    assert [row["name"] for row in rows] == ["scan of 10 pages", "page tree loop"]
    assert rows[0]["outcome"] == "10 pages"
    assert rows[1]["outcome"] == "99999 pages"
    assert all(row["server_peak_mib"] > 0 for row in rows)
