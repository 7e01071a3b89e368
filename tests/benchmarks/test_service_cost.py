"""The benchmark (``bin/bench``) runs end to end at tiny sizes, so it cannot rot.

These check that it runs and reports what it promises, never how fast anything is.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from benchmarks import harness
from benchmarks.harness import (
    BenchConfig,
    PostgresParams,
    Report,
)
from benchmarks.service_cost import (
    format_report,
    main,
    run,
)

TINY = BenchConfig(
    stores=("sqlite",),
    repeats=2,
    commands=20,
    cases=2,
    long_case_events=60,  # past one snapshot at the interval of 50
    loads_per_repeat=2,
    transcoder_passes=1,
    progress=False,
)

TRANSCODER_RATIOS = {
    f"transcoder.{kind}.{op}.orjson_over_json"
    for kind in ("events", "snapshots")
    for op in ("encode", "decode", "round_trip")
} | {"transcoder.e2e.sqlite.orjson_over_json"}


def assert_complete(report: Report, stores: tuple[str, ...]) -> None:
    expected_ratios = set(TRANSCODER_RATIOS)
    for store in stores:
        expected_ratios |= {
            f"commands.{store}.service_over_bare",
            f"commands.{store}.uncached_over_bare",
            f"load.{store}.no_snapshots_over_snapshots",
        }
    assert {ratio.key for ratio in report.ratios} == expected_ratios
    for ratio in report.ratios:
        assert ratio.value > 0
        assert len(ratio.paired) >= 1
        for key in (ratio.numerator, ratio.denominator):
            figure = report.figure(key)
            assert figure.median > 0
            assert all(sample > 0 for sample in figure.samples)
    share = report.ratio(f"commands.{stores[0]}.service_over_bare")
    assert share.target == pytest.approx(0.60)
    assert share.meets_target is (share.value >= 0.60)
    assert report.machine.nproc >= 1
    assert report.machine.python


def test_the_benchmark_command_prints_a_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench" / "result.json"
    argv = ["--stores", "sqlite", "--repeats", "2", "--commands", "20", "--cases", "2"]
    argv += ["--events", "60", "--loads", "2", "--passes", "1", "--quiet"]
    argv += ["--tmp-dir", str(tmp_path), "--json", str(out)]

    assert main(argv) == 0

    printed = capsys.readouterr().out
    assert "1. commands/s on sqlite" in printed
    assert "service / bare" in printed
    assert "2. load a case file of 60 events on sqlite" in printed
    assert "3. transcoders" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert {"machine", "parameters", "figures", "ratios", "notes", "seconds"} <= set(data)
    assert data["parameters"]["commands"] == 20
    assert all(figure["median"] > 0 for figure in data["figures"])
    assert all(ratio["value"] > 0 for ratio in data["ratios"])
    assert list(tmp_path.glob("akte-bench-*")) == []  # temporary stores are removed


def test_the_benchmark_reports_every_figure_with_positive_rates(tmp_path: Path) -> None:
    report = run(replace(TINY, tmp_root=tmp_path))

    assert_complete(report, ("sqlite",))
    assert "2. load a case file of 60 events on sqlite" in format_report(report)


def test_an_unreachable_postgresql_skips_its_rows_with_a_note(tmp_path: Path) -> None:
    unreachable = PostgresParams(host="127.0.0.1", port=1)
    config = replace(TINY, stores=("sqlite", "postgres"), postgres=unreachable, tmp_root=tmp_path)

    report = run(config)

    assert_complete(report, ("sqlite",))
    assert any("PostgreSQL rows SKIPPED" in note for note in report.notes)
    assert "NOTE: PostgreSQL rows SKIPPED" in format_report(report)


@pytest.mark.postgres
def test_the_benchmark_runs_on_postgresql_in_a_schema_it_drops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The schemas this run makes, by the ids the harness draws for their names: other
    # benchmarks may make and drop schemas of the same prefix at the same time.
    drawn: list[UUID] = []

    def recording_uuid4() -> UUID:
        drawn.append(uuid4())
        return drawn[-1]

    monkeypatch.setattr(harness, "uuid4", recording_uuid4)
    params = PostgresParams()

    report = run(replace(TINY, stores=("postgres",), postgres=params, tmp_root=tmp_path))

    assert_complete(report, ("postgres",))
    assert report.machine.postgres_server
    ours = {f"akte_bench_{value.hex[:12]}" for value in drawn}
    with params.connect() as conn:
        left = {
            row[0]
            for row in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", [list(ours)]
            )
        }
    assert ours
    assert left == set()
