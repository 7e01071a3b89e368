"""The outbox benchmark (``bin/bench-outbox``) runs end to end at a tiny size against the
machine's NATS server.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/guides/notices-and-applications.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.outbox import main
from tests.support.outbox import require_nats


@pytest.mark.long  # a server process and a NATS round trip: about 20 s on a busy machine
def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = require_nats()
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--events", "300", "--repeats", "1", "--rate", "50"]
    argv += ["--seconds", "1", "--writers", "3", "--poll-intervals", "0.05", "--nats-url", url]
    argv += ["--quiet", "--tmp-dir", str(tmp_path), "--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for expected in (
        "log write rate, bulk (events/s)",
        "log write rate, commands (events/s)",
        "publish throughput (events/s, median)",
        "lag commit -> consumer p99 (ms)",
        "load before:",
    ):
        assert expected in printed
    result = json.loads(out.read_text(encoding="utf-8"))
    [store] = result["stores"]
    assert store["store"] == "sqlite"
    assert store["events"] >= 300
    assert all(rate > 0 for rate in store["publish_events_per_second"])
    [lag] = store["lag"]
    assert lag["commands"] == 50  # one second at 50/s, shared by the three writers
    assert result["parameters"]["writers"] == 3
    assert lag["received"] == lag["commands"]
    assert 0 < lag["p50_ms"] <= lag["p99_ms"] <= lag["max_ms"]
    assert result["load"]["before"]
    assert list(tmp_path.glob("akte-bench-*")) == []  # the temporary stores are removed
