"""The tamper-evidence benchmark (``bin/bench-audit``) runs end to end at a tiny size.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/performance/audit.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.audit import main


def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--events", "2000", "--repeats", "1", "--commands", "60"]
    argv += ["--quiet", "--tmp-dir", str(tmp_path), "--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for expected in (
        "service commands/s, chained",
        "service commands/s, unchained",
        "bare save chained / unchained",
        "verify in a fresh process, the whole log",
        "RSS at 4/4 over 1/4 of the log",
        "verify the whole log",
    ):
        assert expected in printed
    [store] = json.loads(out.read_text(encoding="utf-8"))["stores"]
    assert store["store"] == "sqlite"
    assert store["events"] >= 2000
    assert [probe["ok"] for probe in store["probes"]] == [True, True]
    assert store["probes"][1]["events"] == store["events"]
    assert all(rate > 0 for rate in store["verify_events_per_second"])
    assert store["service_ratio"] > 0
    assert list(tmp_path.glob("akte-bench-*")) == []  # the temporary stores are removed
