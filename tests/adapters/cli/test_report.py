"""``akte report YEAR``: catches the statistics up, then writes JSON, CSV or HTML."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from adapters.cli.projections import EXIT_OK, EXIT_USAGE
from adapters.cli.report import add_report_command
from adapters.cli.support import EXIT_EMPTY, EXIT_FAILED
from adapters.settings import Settings
from service import AkteService
from tests.http.routes.test_reports import YEAR, decided_procedures, in_the_next_year  # noqa: F401
from tests.support.browser import chromium_path as chromium
from tests.system.test_projections_crash import child_env


@pytest.fixture
def akte(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> argparse.ArgumentParser:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name, value in child_env(settings).items():
        if name.startswith("AKTE_"):
            monkeypatch.setenv(name, value)
    parser = argparse.ArgumentParser(prog="akte")
    add_report_command(parser.add_subparsers(dest="command", required=True))
    return parser


def run(parser: argparse.ArgumentParser, *argv: str) -> int:
    args = parser.parse_args(list(argv))
    code: int = args.run(args)
    return code


def test_the_report_counts_every_event_up_to_the_head_in_each_format(
    akte: argparse.ArgumentParser,
    service: AkteService,
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    decided_procedures(service, settings.default_office_id, 2)
    assert run(akte, "report", str(YEAR)) == EXIT_OK
    report = json.loads(capsys.readouterr().out)
    figures = {figure["key"]: figure["value"] for figure in report["figures"]}
    assert figures["procedures_processed"] == 2
    assert figures["customers"] == 2

    decided_procedures(service, settings.default_office_id, 1)  # seen by the next run
    out = tmp_path / "bericht.csv"
    assert run(akte, "report", str(YEAR), "--format", "csv", "--out", str(out)) == EXIT_OK
    rows = [
        row
        for row in csv.DictReader(out.open(encoding="utf-8"))
        if row["key"] == "procedures_processed"
    ]
    assert rows
    assert str(out) in capsys.readouterr().err
    html = tmp_path / "bericht.html"
    assert run(akte, "report", str(YEAR), "--format", "html", "--out", str(html)) == EXIT_OK
    assert "<svg" in html.read_text(encoding="utf-8")


def test_a_year_out_of_range_is_one_line_on_stderr(
    akte: argparse.ArgumentParser,
    service: AkteService,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    decided_procedures(service, settings.default_office_id, 1)
    assert run(akte, "report", "12") == EXIT_USAGE
    assert "year" in capsys.readouterr().err


def test_an_empty_store_is_an_error_naming_the_store_not_a_report_of_nulls(
    akte: argparse.ArgumentParser, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(akte, "report", str(YEAR)) == EXIT_EMPTY

    out, err = capsys.readouterr()
    assert out == ""
    assert "holds no events" in err
    where = str(settings.sqlite_path) if settings.store == "sqlite" else settings.postgres_schema
    assert where in err


def test_an_office_without_figures_is_an_error_naming_the_offices_with_data(
    akte: argparse.ArgumentParser,
    service: AkteService,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    decided_procedures(service, settings.default_office_id, 1)

    assert run(akte, "report", str(YEAR), "--office", "abh-nirgendwo") == EXIT_FAILED

    out, err = capsys.readouterr()
    assert out == ""
    assert "abh-nirgendwo" in err
    assert f"offices with data: {settings.default_office_id} ({YEAR}" in err


def test_a_year_without_figures_is_an_error_not_a_report_of_nulls(
    akte: argparse.ArgumentParser,
    service: AkteService,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
) -> None:
    decided_procedures(service, settings.default_office_id, 1)

    assert run(akte, "report", str(YEAR - 3)) == EXIT_FAILED

    out, err = capsys.readouterr()
    assert out == ""
    assert f"no recorded figure in {YEAR - 3}" in err
    assert f"offices with data: {settings.default_office_id} ({YEAR}" in err


def test_a_year_before_the_configured_recording_start_is_an_error(
    akte: argparse.ArgumentParser,
    service: AkteService,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    decided_procedures(service, settings.default_office_id, 1)
    monkeypatch.setenv("AKTE_REPORT_RECORDED_SINCE", str(YEAR + 1))

    assert run(akte, "report", str(YEAR)) == EXIT_FAILED

    assert f"started recording in Akte in {YEAR + 1}" in capsys.readouterr().err


def test_the_report_prints_to_pdf(
    akte: argparse.ArgumentParser,
    service: AkteService,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chromium()  # skips (or fails under CI) without it
    monkeypatch.setenv("AKTE_OFFICE_NAME", "Ausländerbehörde Musterstadt")
    decided_procedures(service, settings.default_office_id, 2)
    out = tmp_path / "bericht.pdf"

    assert run(akte, "report", str(YEAR), "--format", "pdf", "--out", str(out)) == EXIT_OK

    document = pdfium.PdfDocument(out.read_bytes())
    text = document[0].get_textpage().get_text_range()
    assert f"Jahresbericht {YEAR}" in text
    assert "Ausländerbehörde Musterstadt" in text
