"""The tamper-evidence benchmark (``bin/bench-audit``) runs end to end at a tiny size.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/performance/audit.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.audit import StoreResult, main, target_line


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
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
        "verify, every link in Python",
        "verify / in Python",
        "CPU µs per event, this process",
        "target: verify >= 100,000 events/s on PostgreSQL: not measured",
    ):
        assert expected in printed
    [store] = json.loads(out.read_text(encoding="utf-8"))["stores"]
    assert store["store"] == "sqlite"
    assert store["events"] >= 2000
    assert [probe["ok"] for probe in store["probes"]] == [True, True]
    assert store["probes"][1]["events"] == store["events"]
    assert all(rate > 0 for rate in store["verify_events_per_second"])
    assert all(rate > 0 for rate in store["verify_python_events_per_second"])
    assert len(store["verify_pair_ratios"]) == 1
    assert store["checked_on_server"] is False  # SQLite has no server to ask
    assert store["service_ratio"] > 0
    assert list(tmp_path.glob("akte-bench-*")) == []  # the temporary stores are removed


def test_the_target_line_says_met_or_missed_for_postgresql() -> None:
    def postgres(*rates: float) -> StoreResult:
        result = StoreResult(store="postgres", commands=1)
        result.verify_events_per_second = list(rates)
        result.load_average = [1.5, 4.0]
        return result

    met = target_line([StoreResult(store="sqlite", commands=1), postgres(90_000, 120_000, 101_000)])
    missed = target_line([postgres(99_000, 120_000, 12_000)])

    assert met == (
        "target: verify >= 100,000 events/s on PostgreSQL: MET "
        "(101,000 events/s, median of 3, load average 1.5..4.0)"
    )
    assert missed.startswith("target: verify >= 100,000 events/s on PostgreSQL: MISSED (99,000")
