"""The scan import benchmark (``bin/bench-import``) runs end to end at a tiny size, so it
cannot rot. It checks what the report holds, never how fast anything is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.scan_import import (
    ImportBenchConfig,
    format_report,
    main,
    run,
    sealed_like_the_store,
)


def test_the_benchmark_reports_throughput_per_store(tmp_path: Path) -> None:
    report = run(
        ImportBenchConfig(
            folders=6,
            page_kb=1,
            stores=("sqlite",),
            group_events=(1, 50),
            repeats=2,
            tmp_root=tmp_path,
            progress=False,
        )
    )

    assert [(run.store, run.group_events) for run in report.runs] == [
        ("sqlite", 1),
        ("sqlite", 50),
    ] * 2
    for measured in report.runs:
        assert measured.folders == 6
        assert measured.documents == report.batch["documents"]
        assert measured.megabytes_per_second > 0
        assert measured.rerun_folders_per_second > 0
    text = format_report(report)
    assert "legacy files/s" in text
    assert "MB/s" in text
    assert "sqlite, groups of 50 events (n=2)" in text
    assert "sqlite: grouped (50 events) is" in text


def test_the_command_line_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results" / "import.json"

    assert (
        main(
            [
                "--folders",
                "3",
                "--page-kb",
                "0",
                "--stores",
                "sqlite",
                "--repeats",
                "1",
                "--group-events",
                "5000",
                "--tmp-dir",
                str(tmp_path),
                "--json",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )

    assert "Akte scan import benchmark" in capsys.readouterr().out
    written = json.loads(out.read_text())
    assert written["batch"]["folders"] == 3
    assert len(written["runs"]) == 1


@pytest.mark.postgres
def test_the_bounds_copy_the_same_bytes_plain_and_sealed(tmp_path: Path) -> None:
    report = run(
        ImportBenchConfig(
            folders=4,
            page_kb=2,
            stores=("postgres",),
            group_events=(1, 50),
            repeats=1,
            tmp_root=tmp_path,
            progress=False,
        )
    )

    plain, sealed = report.bounds
    assert (plain.sealed, sealed.sealed) == (False, True)
    assert plain.megabytes == sealed.megabytes == pytest.approx(report.batch["megabytes"], abs=0.1)
    text = format_report(report)
    assert "plain COPY of the same PDF bytes" in text
    assert "hashed twice, sealed (AES-GCM) and COPY" in text
    assert "the sealed bytes allow at most" in text
    assert "the time of the sealed bytes" in text


def test_a_sealed_copy_opens_to_the_same_bytes() -> None:
    data = bytes(range(256)) * 600  # three segments, the last one short
    sealed = sealed_like_the_store(data)
    assert len(sealed) == len(data) + 3 * 16  # a tag per segment
    assert data not in sealed
