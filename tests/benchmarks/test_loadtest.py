"""The load test (``bin/load-test``) runs end to end at a tiny size, so it cannot rot.

It checks that it runs and reports what it promises, never how fast anything is.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.loadtest import READS, WRITES, main


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_a_tiny_load_test_reports_every_operation_and_no_errors(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    printed: list[str] = []
    code = main(
        [
            "--caseworkers", "3", "--cases", "2", "--requests", "260", "--seconds", "60",
            "--writes", "0.5", "--conflict-every", "10", "--json", str(out),
        ],
        say=printed.append,
    )  # fmt: skip
    result = json.loads(out.read_text())["result"]
    assert code == 0, result["error_samples"]
    assert result["errors"] == 0
    assert result["requests"] == 260
    assert result["conflicts"] >= 1, "stale If-Match writes are sent on purpose and counted"
    operations = result["operations"]
    for name in ("open_case", "receive", "assign", *READS):
        assert operations[name]["count"] > 0, name
        assert 0 < operations[name]["p50_ms"] <= operations[name]["p99_ms"]
    assert set(operations) == set(WRITES + READS)
    assert "requests/s" in printed[0]
    assert "p99 ms" in printed[0]
