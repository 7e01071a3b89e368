"""The head of office's yearly report, and the events behind each of its figures.

``GET /reports/yearly/{year}`` answers as JSON, as CSV (``Accept: text/csv``) or as a
printable HTML page with charts (``Accept: text/html``); ``?format=`` overrides the
``Accept`` header (for a link in a browser). Every figure that counts events links to
``/reports/yearly/{year}/figures/{key}/events``: the counted events, a page at a time,
so an auditor can check any number. Reports hold counts, file numbers and staff ids,
never personal data.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, require
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import (
    chosen_format,
    office_in_reach,
    views_behind,
    views_unavailable,
)
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.routes.worklists import Cursor, Limit, MinPosition, ReadModelsDep
from adapters.http.schemas.lawful import Line
from adapters.reference.catalogue import load_catalogue
from adapters.reference.staff_plan import StaffFileError, staff_plan_for
from adapters.reports import yearly_report as report_formats
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from projections.errors import ProjectionError
from projections.figures.counted_events import CountedEvents, figure_customers, figure_events
from projections.figures.workload import StaffPlan
from projections.figures.yearly_report import (
    FIGURE_KEYS,
    YearlyReport,
    recorded_offices,
    yearly_report,
)
from projections.paging import InvalidQuery
from service import AkteService

CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
HTML_MEDIA_TYPE: Final = "text/html; charset=utf-8"

router = APIRouter(prefix="/reports", tags=["reports"])

ReportReader = Annotated[Principal, Depends(require(Permission.REPORT_READ))]
# Events lie in 1900-2199 (domain.values.LATEST_DAY); a year beyond has nothing to report
# and its next new year (the end of the report's period) is no date Python can make.
Year = Annotated[int, Path(ge=1900, le=2199, description="Calendar year (Berlin time).")]
OfficeQuery = Annotated[
    Line | None,
    Query(
        max_length=60,
        description="The office whose report to show; omitted: yours. Only auditors reach others.",
    ),
]
FormatQuery = Annotated[
    Literal["json", "csv", "html"] | None,
    Query(description="Overrides the Accept header: json, csv or html."),
]


class CountedEventPublic(BaseModel):
    """One event a figure counts."""

    case_id: str
    reference: str
    figure: str
    event: str
    version: int
    at: str
    actor: str
    kind: str
    channel: str
    legal_basis: str
    days: int | None
    amount_cents: int
    customer: str


class CountedEventsPage(BaseModel):
    figure: str
    year: int
    office_id: str
    items: list[CountedEventPublic]
    next_cursor: str | None


def _office(reader: Principal, office_id: str | None) -> str:
    return office_in_reach(reader, office_id, Permission.REPORT_READ, "reports")


def _today(service: AkteService, settings: Settings) -> date:
    """The office's date, by the service's clock."""
    return service.clock().astimezone(ZoneInfo(settings.office_time_zone)).date()


def _check_year(
    read_models: ReadModels, office: str, year: int, since: int | None, today: date
) -> None:
    """A year in the future or before the office's log began has no figures: refused, as
    ``akte report`` refuses it, naming the years there are (an office without any
    recorded figure yet gets its report of "not recorded" for the years up to now)."""
    if year > today.year:
        raise HttpProblem(
            404, "not-found", f"{year} is not recorded: it has not begun (today is {today})"
        )
    try:
        recorded = next(
            (entry for entry in recorded_offices(read_models.views) if entry.office_id == office),
            None,
        )
    except ProjectionError:
        raise views_unavailable("the statistics are") from None
    first = since if since is not None else (None if recorded is None else recorded.first)
    if first is not None and year < first:
        raise HttpProblem(
            404,
            "not-found",
            f"{year} is not recorded for office {office}: its report covers {first}-{today.year}",
        )


def _report(
    read_models: ReadModels,
    office: str,
    year: int,
    min_position: int | None,
    today: date,
    staff: StaffPlan | None = None,
    recorded_since: int | None = None,
) -> tuple[YearlyReport, bool]:
    behind = views_behind(read_models, min_position)
    _check_year(read_models, office, year, recorded_since, today)
    try:
        return (
            yearly_report(
                read_models.views,
                office,
                year,
                staff=staff,
                recorded_since=recorded_since,
                today=today,
            ),
            behind,
        )
    except InvalidQuery as error:
        raise HttpProblem(422, "invalid-value", str(error)) from None
    except ProjectionError:
        raise views_unavailable("the statistics are") from None


@router.get(
    "/yearly/{year}",
    responses={
        **READ_PROBLEMS,
        200: {
            "description": "The report: JSON, CSV or HTML.",
            "content": {"text/csv": {}, "text/html": {}},
        },
    },
    operation_id="yearly_report",
)
def yearly(
    request: Request,
    year: Year,
    reader: ReportReader,
    read_models: ReadModelsDep,
    settings: SettingsDep,
    service: ServiceDep,
    office_id: OfficeQuery = None,
    format: FormatQuery = None,
    min_position: MinPosition = None,
) -> Response:
    """The yearly report: every figure of the published balance and the management's figures."""
    office = _office(reader, office_id)
    try:
        staff = staff_plan_for(settings)
    except StaffFileError as error:
        raise HttpProblem(503, "staff-file-invalid", str(error)) from None
    today = _today(service, settings)
    report, behind = _report(
        read_models, office, year, min_position, today, staff, settings.report_recorded_since
    )
    chosen = chosen_format(request, format)
    headers = {"Vary": "Accept", "X-Akte-Position": str(report.position)}
    if behind:
        headers["X-Akte-Views-Behind"] = "true"
    if chosen == "csv":
        headers["Content-Disposition"] = f'attachment; filename="jahresbericht-{year}.csv"'
        return Response(
            report_formats.report_csv(report), media_type=CSV_MEDIA_TYPE, headers=headers
        )
    if chosen == "html":
        heading = report_formats.report_heading(
            settings,
            load_catalogue(),
            report_formats.appointment_type_labels(service.appointments.service_points(office)),
            today,
        )
        return Response(
            report_formats.report_html(report, heading=heading),
            media_type=HTML_MEDIA_TYPE,
            headers=headers,
        )
    return JSONResponse(report_formats.report_json(report), headers=headers)


@router.get("/yearly/{year}/figures/{key}/events", responses=READ_PROBLEMS)
def counted_events(
    request: Request,
    response: Response,
    year: Year,
    key: Annotated[str, Path(max_length=60, pattern=r"^[a-z0-9_]+$")],
    reader: ReportReader,
    read_models: ReadModelsDep,
    settings: SettingsDep,
    service: ServiceDep,
    office_id: OfficeQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: MinPosition = None,
    customer: Annotated[
        str | None,
        Query(
            max_length=80,
            pattern=r"^[cpd]:[A-Za-z0-9_-]+$",
            description="only the events that served this customer (a line of the "
            "customers list); for the figure customers",
        ),
    ] = None,
) -> CountedEventsPage:
    """The events a figure of the yearly report counts, oldest first (drill-down)."""
    office = _office(reader, office_id)
    if key not in FIGURE_KEYS:
        raise HttpProblem(404, "not-found", f"the yearly report has no figure {key}")
    report, behind = _report(
        read_models,
        office,
        year,
        min_position,
        _today(service, settings),
        recorded_since=settings.report_recorded_since,
    )
    if behind:
        response.headers["X-Akte-Views-Behind"] = "true"
    figure = report.figure(key)
    if figure.drill_down is None:
        raise HttpProblem(404, "not-found", f"{key} is not recorded: there are no events behind it")
    try:
        page: CountedEvents = figure_events(
            read_models.views,
            office,
            year,
            figure.drill_down,
            limit=limit,
            cursor=cursor,
            customer=customer,
        )
    except InvalidQuery as error:
        raise HttpProblem(422, "invalid-value", str(error)) from None
    except ProjectionError:
        raise views_unavailable("the statistics are") from None
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return CountedEventsPage(
        figure=key,
        year=year,
        office_id=office,
        items=[CountedEventPublic(**_public(asdict(item))) for item in page.items],
        next_cursor=page.next_cursor,
    )


class CustomerPublic(BaseModel):
    customer: str
    """``c:<case file id>``, ``p:<keyed pseudonym>`` (no file) or ``d:<declaration id>``."""
    events: int
    """The counted events that served this customer in the year."""


class CustomersPage(BaseModel):
    year: int
    office_id: str
    items: list[CustomerPublic]
    next_cursor: str | None


@router.get("/yearly/{year}/customers", responses=READ_PROBLEMS)
def customers(
    request: Request,
    response: Response,
    year: Year,
    reader: ReportReader,
    read_models: ReadModelsDep,
    settings: SettingsDep,
    service: ServiceDep,
    office_id: OfficeQuery = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> CustomersPage:
    """The distinct customers of the year, one line each with how many counted events
    served them: as many lines as the figure ``customers`` says (its drill-down). The
    events behind one line: ``figures/customers/events?customer=...``."""
    office = _office(reader, office_id)
    if views_behind(read_models, min_position):
        response.headers["X-Akte-Views-Behind"] = "true"
    _check_year(
        read_models, office, year, settings.report_recorded_since, _today(service, settings)
    )
    try:
        page = figure_customers(read_models.views, office, year, limit=limit, cursor=cursor)
    except InvalidQuery as error:
        raise HttpProblem(422, "invalid-value", str(error)) from None
    except ProjectionError:
        raise views_unavailable("the statistics are") from None
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return CustomersPage(
        year=year,
        office_id=office,
        items=[CustomerPublic(customer=item.customer, events=item.events) for item in page.items],
        next_cursor=page.next_cursor,
    )


def _public(item: dict[str, Any]) -> dict[str, Any]:
    item["at"] = item["at"].isoformat()
    return item
