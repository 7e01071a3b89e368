"""The projection benchmark (``bin/bench-projections``) runs end to end at a tiny size.

It checks that the benchmark runs and reports what it promises, never how fast anything
is; the figures live in ``docs/performance/projections.md``.
"""

from __future__ import annotations

import json
from pathlib import Path
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from adapters.settings import Settings
from benchmarks.projections import main, write_log
from domain.case_file import CaseFile
from projections.worklists import WORKLISTS
from tests.support.projections import catch_up, comparable, dump, expected_rows, views_for


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_the_benchmark_prints_every_figure_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "result.json"
    argv = ["--stores", "sqlite", "--events", "3000", "--repeats", "1"]
    argv += ["--lag-seconds", "1", "--rate", "50", "--quiet", "--tmp-dir", str(tmp_path)]
    argv += ["--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    for expected in (
        "read log (select + decode)",
        "rebuild all worklists, 1 process",
        "rebuild all worklists, 2 processes",
        "rebuild (1 process) / read",
        "= slowest on its own (",
        "peak RSS, rebuild of",
        "RSS at 4/4 over 1/4 of the log",
        "lag at",
        "target p99 < 1 s",
    ):
        assert expected in printed
    [store] = json.loads(out.read_text(encoding="utf-8"))["stores"]
    assert store["store"] == "sqlite"
    assert store["events"] >= 3000
    assert all(rate > 0 for rate in store["read_events_per_second"])
    assert all(rate > 0 for rate in store["rebuild_events_per_second"])
    alone = store["rebuild_alone_events_per_second"]
    assert sorted(alone) == sorted(projection.name for projection in WORKLISTS)
    assert all(len(rates) == 1 and rates[0] > 0 for rates in alone.values())
    for name in alone:
        assert f"rebuild {name} on its own" in printed
    assert [int(r["until"]) for r in store["peak_rss"]] == [store["events"] // 4, store["events"]]
    assert store["lag"]["commands"] == 50
    assert list(tmp_path.glob("akte-bench-*")) == []  # the temporary store is removed


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_the_generated_log_fills_every_worklist_as_the_oracle_says(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", data_dir=tmp_path, snapshot_interval=0)
    service = build_service(settings)
    try:
        written = write_log(service, 20_000)
        assert written >= 20_000
        with views_for(settings) as views:
            catch_up(service, views)
            rows = dump(service, views)
            registry = rows["unreviewed_uploads_cases"]
            states = [service.get_case(UUID(row[0])) for row in registry]
            assert comparable(rows) == expected_rows(states)
        # The generated log holds case files only: declarations and submissions have
        # read models of their own, which it leaves empty.
        case_file_tables = {
            table.name
            for projection in WORKLISTS
            if CaseFile.Opened in projection.openers
            for table in projection.all_tables
        }
        for table, table_rows in rows.items():
            if table in case_file_tables:
                assert table_rows, f"the benchmark's log leaves {table} empty"
    finally:
        service.close()
