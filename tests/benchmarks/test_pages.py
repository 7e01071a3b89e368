"""The public pages benchmark (``bin/bench-pages``) runs end to end at a tiny size.

It checks that the benchmark measures and reports what it promises, never how fast
anything is (the figures are in the lead's report of issue 18)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.pages import main, public_pages


def test_the_entry_page_of_each_public_service_is_measured() -> None:
    pages = public_pages()

    assert pages[0] == "/"
    assert set(pages) <= {"/", "/booking", "/contact", "/declaration"}


def test_the_benchmark_prints_the_table_and_writes_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "pages.json"

    assert main(["--visitors", "2", "--requests", "3", "--pages", "/", "--json", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "p99 < 50 ms" in printed
    assert "weight < 100 KB" in printed
    assert "/static/akte.css" in printed
    (page,) = json.loads(out.read_text())["pages"]
    assert page["path"] == "/"
    assert page["requests"] == 6
    assert page["errors"] == 0
    assert page["p99_ms"] >= page["p50_ms"] > 0
    assert page["asset_bytes"]["/static/akte.css"] > 1000
    assert page["weight_bytes"] == page["html_bytes"] + page["asset_bytes"]["/static/akte.css"]
    assert page["weight_met"] is True


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_a_page_that_is_not_there_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--visitors", "1", "--requests", "1", "--pages", "/no-such-page"]) == 1
