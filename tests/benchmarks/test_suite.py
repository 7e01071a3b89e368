"""The benchmark suite (``bin/bench-all``) runs end to end at a tiny size, so it cannot rot.

It checks that it runs and reports what it promises, never how fast anything is.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import suite
from benchmarks.harness import (
    PostgresParams,
)

TINY = replace(
    suite.QUICK,
    repeats=1,
    commands=20,
    http_requests=30,
    http_clients=2,
    open_procedures=200,
)


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_commands_and_worklists_sections_report_figures_beside_baselines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(suite, "QUICK", TINY)
    report = suite.run(True, ["sqlite"], ["commands", "worklists"], PostgresParams())
    labels = {row.label for row in report.rows}
    assert "HTTP commands/s (live server, concurrent clients)" in labels
    assert "peak RSS of the API process" in labels
    assert any(label.startswith("worklist first page") for label in labels)
    for row in report.rows:
        assert row.value > 0, row.label
        if row.label != "peak RSS of the API process":
            assert row.baseline is not None, row.label
    service = next(row for row in report.rows if row.label == "service commands/s")
    assert service.status() in ("MET", "MISSED")
    text = suite.format_report(report, "bin/bench-all --quick")
    assert "| commands | service commands/s | sqlite |" in text
    assert "load average" in text


def test_the_table_goes_between_the_readme_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"# A\n\n{suite.BEGIN_MARK}\nold\n{suite.END_MARK}\n\nrest\n")
    suite.write_readme("| new |", readme)
    assert readme.read_text() == f"# A\n\n{suite.BEGIN_MARK}\n| new |\n{suite.END_MARK}\n\nrest\n"


@pytest.mark.postgres
@pytest.mark.long  # a tiny office year simulated twice, a tiny scan import twice
def test_the_bulk_section_reports_both_ways_of_writing_and_the_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(suite, "QUICK", replace(TINY, simulation_scale=0.002, import_folders=4))
    report = suite.run(True, ["postgres"], ["bulk"], PostgresParams())
    rows = {row.label: row for row in report.rows}
    assert rows["one-row INSERT + COMMIT per second (what grouping saves)"].value > 0
    for grouped in ("simulator commands/s, grouped", "scan import legacy files/s, grouped"):
        assert rows[grouped].value > 0
        assert rows[grouped].baseline is not None
    for ratio in (
        "simulator grouped vs one commit per command",
        "scan import grouped vs one transaction per file",
    ):
        assert rows[ratio].status() in ("MET", "MISSED")
    assert any("hashed, sealed and copied" in label for label in rows)
