"""The encryption benchmark (``bin/bench-encryption``) runs end to end at a tiny size.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/performance/encryption.md``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.encryption import main


def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--repeats", "1", "--commands", "20", "--cases", "4"]
    argv += ["--events", "60", "--loads", "2", "--quiet", "--tmp-dir", str(tmp_path)]
    argv += ["--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for expected in (
        "case files opened",
        "commands (3 of 5 with personal data)",
        "replay of all 60 events, no snapshots",
        "key read and unwrapped each time",
        "load as the service does",
        "encode an event",
        "decode an event",
    ):
        assert expected in printed
    timings = json.loads(out.read_text(encoding="utf-8"))["timings"]
    assert {timing["key"] for timing in timings} == {
        "encryption.sqlite.open",
        "encryption.sqlite.commands",
        "encryption.sqlite.replay",
        "encryption.sqlite.replay_cold",
        "encryption.sqlite.load",
        "encryption.mapper.encode",
        "encryption.mapper.decode",
    }
    assert all(timing["cost_ratio"] > 0 for timing in timings)
