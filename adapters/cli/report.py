"""``akte report YEAR``: the head of office's yearly report as JSON, CSV or HTML.

The report is read from the statistics read model. Before reading, the command brings
that read model up to the head of the log: it catches up itself when no worker follows
the read model, and otherwise waits (bounded) for the worker to get there.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo

from adapters.cli.progress import ProgressDisplay, projection_progress
from adapters.cli.projections import (
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Stores,
    load_settings,
    open_stores,
)
from adapters.cli.support import EXIT_FAILED, CliFailure, empty_store, open_service
from adapters.reference.catalogue import load_catalogue
from adapters.reference.staff_plan import StaffFileError, staff_plan_for
from adapters.reports import yearly_report as report_formats
from adapters.reports.pdf import PdfUnavailable, html_to_pdf
from adapters.settings import Settings
from adapters.views.runner import wait_for_position
from projections.engine import ProjectionEngine
from projections.errors import ProjectionError
from projections.figures import statistics, workload
from projections.figures.yearly_report import YearlyReport, recorded_offices, yearly_report
from projections.paging import InvalidQuery
from projections.projection import Projection

WORKER_WAIT_SECONDS: Final = 60.0
FORMATS: Final = ("json", "csv", "html", "pdf")


def add_report_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report", help="the yearly report of an office (JSON, CSV, printable HTML or PDF)"
    )
    parser.add_argument("year", type=int, help="calendar year, e.g. 2024")
    parser.add_argument("--format", choices=FORMATS, default="json", help="default: json")
    parser.add_argument("--out", type=Path, help="write to this file instead of stdout")
    parser.add_argument(
        "--office",
        help="the office (default: AKTE_DEFAULT_OFFICE_ID, the office of this deployment)",
    )
    parser.set_defaults(run=run_report)


def run_report(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        office = args.office or settings.default_office_id
        if settings.store == "sqlite" and not settings.sqlite_path.exists():
            raise empty_store(settings, "akte report")  # opening it would create it
        with open_stores(settings) as stores:
            if stores.log.head() == 0:
                raise empty_store(settings, "akte report")
            bring_statistics_up_to_date(stores)
            bring_statistics_up_to_date(stores, workload.PROJECTION)
            try:
                report = yearly_report(
                    stores.views,
                    office,
                    args.year,
                    staff=staff_plan_for(settings),
                    recorded_since=settings.report_recorded_since,
                    today=datetime.now(ZoneInfo(settings.office_time_zone)).date(),
                )
            except StaffFileError as error:
                raise CliFailure(EXIT_USAGE, str(error)) from None
            except InvalidQuery as error:
                raise CliFailure(EXIT_USAGE, str(error)) from None
            check_recorded(stores, office, args.year, settings.report_recorded_since)
    except CliFailure as failure:
        print(f"akte: {failure}", file=sys.stderr)
        return failure.exit_code
    heading = None
    if args.format in ("html", "pdf"):
        heading = page_heading(settings, office)
    if args.format == "pdf":
        return write_pdf(report, heading, args)
    text = render(report, args.format, heading)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text, encoding="utf-8")
        print(f"akte: wrote the {args.year} report to {args.out}", file=sys.stderr)
    return EXIT_OK


def page_heading(settings: Settings, office: str) -> report_formats.ReportHeading:
    """The printed report's heading: the office's name and address, today's date, and the
    German labels of the codes (the catalogue's, and the office's appointment types)."""
    today = datetime.now(ZoneInfo(settings.office_time_zone)).date()
    with open_service(settings) as service:
        points = service.appointments.service_points(office)
    types = report_formats.appointment_type_labels(points)
    return report_formats.report_heading(settings, load_catalogue(), types, today)


def check_recorded(stores: Stores, office: str, year: int, since: int | None) -> None:
    """A report of an office or year without any recorded figure would be all "not
    recorded": most likely a mistyped office or year, so it is an error that names what
    the store does hold."""
    recorded = recorded_offices(stores.views)
    held = ", ".join(str(office_years) for office_years in recorded) or "none"
    of_office = next((entry for entry in recorded if entry.office_id == office), None)
    if of_office is None:
        raise CliFailure(
            EXIT_FAILED,
            f"the store holds no recorded figure of office {office}; offices with data: {held}",
        )
    if since is not None and year < since:
        raise CliFailure(
            EXIT_FAILED,
            f"office {office} started recording in Akte in {since} "
            f"(AKTE_REPORT_RECORDED_SINCE): {year} is not recorded",
        )
    if not of_office.first <= year <= of_office.last:
        raise CliFailure(
            EXIT_FAILED,
            f"office {office} has no recorded figure in {year}; offices with data: {held}",
        )


def write_pdf(
    report: YearlyReport, heading: report_formats.ReportHeading | None, args: argparse.Namespace
) -> int:
    """The printable page as PDF, to ``--out`` (or stdout, as bytes)."""
    try:
        printed = html_to_pdf(report_formats.report_html(report, heading=heading))
    except PdfUnavailable as error:
        print(f"akte: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    if args.out is None:
        sys.stdout.buffer.write(printed)
    else:
        args.out.write_bytes(printed)
        print(f"akte: wrote the {args.year} report to {args.out}", file=sys.stderr)
    return EXIT_OK


def render(
    report: YearlyReport, output_format: str, heading: report_formats.ReportHeading | None = None
) -> str:
    if output_format == "csv":
        return report_formats.report_csv(report)
    if output_format == "html":
        return report_formats.report_html(report, heading=heading)
    return json.dumps(report_formats.report_json(report), ensure_ascii=False, indent=2) + "\n"


def bring_statistics_up_to_date(
    stores: Stores, projection: Projection = statistics.PROJECTION
) -> None:
    """Catch the statistics read model (or ``projection``) up to the log's head (or wait
    for its worker)."""
    head = stores.log.head()
    writer = stores.views.writer()
    try:
        if writer.try_lock(projection.name):
            try:
                engine = ProjectionEngine(stores.log, writer, [projection])
                with ProgressDisplay() as display:
                    progress = projection_progress(display, label=f"{projection.name} caught up")
                    engine.catch_up(until=head, progress=progress)
            finally:
                writer.unlock(projection.name)
            return
    except ProjectionError as error:
        raise CliFailure(EXIT_UNAVAILABLE, str(error)) from None
    finally:
        writer.close()
    # Another process follows the read model: let it get there.
    if not wait_for_position(stores.views, [projection], head, WORKER_WAIT_SECONDS):
        raise CliFailure(
            EXIT_UNAVAILABLE,
            f"the {projection.name} read model is still behind the event log after "
            f"{WORKER_WAIT_SECONDS:.0f} s; see akte projections status",
        )
