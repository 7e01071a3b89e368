"""Management analyses: the what-if replay and the workload per caseworker.

``GET /reports/whatif`` replays the event log, read-only, into a scratch read model under
another validity rule (:mod:`adapters.views.whatif_replay`) and answers what it would have saved, by
month, with the cases behind each saved visit and the assumptions beside the figures
(JSON, CSV or HTML like the yearly report). ``GET /reports/workload`` is the team lead's
view: actions and decisions per caseworker and week, the open backlog per caseworker and
its age, the "booked out for N weeks" series, and per post and person at work where the
staff plan is configured. Both need ``report.analysis`` (team leads and the head of
office, own office); they hold file numbers and staff ids, never personal data.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, require
from adapters.http.deps import SettingsDep
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import chosen_format, office_in_reach, views_unavailable
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.routes.reports import CSV_MEDIA_TYPE, HTML_MEDIA_TYPE, FormatQuery, OfficeQuery
from adapters.http.routes.worklists import ReadModelsDep
from adapters.reference.staff_plan import StaffFileError, staff_plan_for
from adapters.reports import whatif as whatif_formats
from adapters.views.runner import ApplicationEventLog
from adapters.views.whatif_replay import POLICIES, WhatIfError, policy_for, run_whatif
from projections import workload as workload_model
from projections.engine import ProjectionError, read_positions
from projections.statistics import OFFICE_TIME_ZONE

DEFAULT_WORKLOAD_WEEKS: Final = 12
MAX_WORKLOAD_DAYS: Final = 2 * 366

router = APIRouter(prefix="/reports", tags=["reports"])

Analyst = Annotated[Principal, Depends(require(Permission.REPORT_ANALYSIS))]
DayQuery = Annotated[date | None, Query(description="A day (Berlin), YYYY-MM-DD.")]


def _office(analyst: Principal, office_id: str | None) -> str:
    return office_in_reach(analyst, office_id, Permission.REPORT_ANALYSIS, "analyses")


@router.get(
    "/whatif",
    responses={
        **READ_PROBLEMS,
        200: {
            "description": "What the policy would have saved: JSON, CSV or HTML.",
            "content": {"text/csv": {}, "text/html": {}},
        },
    },
)
def whatif(
    request: Request,
    analyst: Analyst,
    read_models: ReadModelsDep,
    policy: Annotated[
        Literal["fiction-validity", "ordinance-extension"],
        Query(description=f"The rule to replay the log under: {', '.join(POLICIES)}."),
    ] = "fiction-validity",
    months: Annotated[
        int, Query(ge=1, le=120, description="fiction-validity: validity in months.")
    ] = 6,
    include_duldung: Annotated[
        bool, Query(description="fiction-validity: Duldungen issued for as long too.")
    ] = False,
    extended_to: DayQuery = None,
    legal_basis: Annotated[
        str | None,
        Query(max_length=40, pattern=r"^[a-z0-9-]+$", description="ordinance-extension."),
    ] = None,
    period_from: Annotated[
        date | None, Query(alias="from", description="First day; omitted: 1 January last year.")
    ] = None,
    period_until: Annotated[
        date | None,
        Query(alias="until", description="Last day; omitted: 31 December last year."),
    ] = None,
    office_id: OfficeQuery = None,
    format: FormatQuery = None,
) -> Response:
    """Replay the log read-only under another validity rule: what it would have saved."""
    office = _office(analyst, office_id)
    service = read_models.service
    last_year = service.clock().astimezone(OFFICE_TIME_ZONE).year - 1
    first = period_from or date(last_year, 1, 1)
    last = period_until or date(last_year, 12, 31)
    try:
        chosen = policy_for(
            policy,
            months=months,
            include_duldung=include_duldung,
            extended_to=extended_to,
            legal_basis=legal_basis,
        )
        run = run_whatif(
            ApplicationEventLog(service),
            chosen,
            office_id=office,
            period_from=first,
            period_until=last,
        )
    except WhatIfError as error:
        raise HttpProblem(422, "invalid-value", str(error)) from None
    except ProjectionError:
        raise views_unavailable("the figures are") from None
    result = run.result
    headers = {"Vary": "Accept", "X-Akte-Position": str(result.position)}
    output = chosen_format(request, format)
    if output == "csv":
        headers["Content-Disposition"] = 'attachment; filename="was-waere-wenn.csv"'
        return Response(
            whatif_formats.whatif_csv(result), media_type=CSV_MEDIA_TYPE, headers=headers
        )
    if output == "html":
        return Response(
            whatif_formats.whatif_html(result), media_type=HTML_MEDIA_TYPE, headers=headers
        )
    return JSONResponse(whatif_formats.whatif_json(result), headers=headers)


class WorkloadWeekPublic(BaseModel):
    week: str
    starts_on: date
    actions: int
    decided: int
    backlog: int
    booked_out_weeks: int | None
    beyond_horizon_days: int
    posts: float | None
    at_work: float | None
    actions_per_post: float | None
    actions_per_person_at_work: float | None


class CaseworkerWeekPublic(BaseModel):
    week: str
    actor: str
    actions: int
    decided: int


class CaseworkerBacklogPublic(BaseModel):
    actor: str
    open: int
    median_age_days: float | None
    oldest_age_days: int | None


class WorkloadPublic(BaseModel):
    office_id: str
    period_from: date
    period_until: date
    position: int
    weeks: list[WorkloadWeekPublic]
    by_caseworker: list[CaseworkerWeekPublic]
    backlog: list[CaseworkerBacklogPublic]
    backlog_age: dict[str, int]
    staff_configured: bool
    notes: list[str]


@router.get("/workload", responses=READ_PROBLEMS)
def workload(
    analyst: Analyst,
    read_models: ReadModelsDep,
    settings: SettingsDep,
    period_from: Annotated[
        date | None, Query(alias="from", description="First day; omitted: 12 weeks ago.")
    ] = None,
    period_until: Annotated[
        date | None, Query(alias="until", description="Last day; omitted: today (Berlin).")
    ] = None,
    office_id: OfficeQuery = None,
) -> WorkloadPublic:
    """The team's workload: per caseworker and week, the backlog and its age, booked-out weeks."""
    office = _office(analyst, office_id)
    today = read_models.service.clock().astimezone(OFFICE_TIME_ZONE).date()
    last = period_until or today
    first = period_from or last - timedelta(weeks=DEFAULT_WORKLOAD_WEEKS) + timedelta(days=1)
    if last < first:
        raise HttpProblem(422, "invalid-value", "until: must not lie before from")
    if (last - first).days >= MAX_WORKLOAD_DAYS:
        raise HttpProblem(
            422, "invalid-value", f"the period may span at most {MAX_WORKLOAD_DAYS} days"
        )
    try:
        staff = staff_plan_for(settings)
    except StaffFileError as error:
        raise HttpProblem(503, "staff-file-invalid", str(error)) from None
    try:
        with read_models.views.reader() as session:
            if not workload_model.built(session):
                raise views_unavailable("the figures are")
            position = next(
                (p.position for p in read_positions(session) if p.name == workload_model.NAME), 0
            )
            figures = workload_model.workload(
                session,
                office_id=office,
                period_from=first,
                period_until=last,
                staff=staff,
                position=position,
            )
    except ProjectionError:
        raise views_unavailable("the figures are") from None
    return WorkloadPublic(
        office_id=figures.office_id,
        period_from=figures.period_from,
        period_until=figures.period_until,
        position=figures.position,
        weeks=[WorkloadWeekPublic(**week.__dict__) for week in figures.weeks],
        by_caseworker=[CaseworkerWeekPublic(**row.__dict__) for row in figures.by_caseworker],
        backlog=[CaseworkerBacklogPublic(**row.__dict__) for row in figures.backlog],
        backlog_age=dict(figures.backlog_age),
        staff_configured=figures.staff_configured,
        notes=list(figures.notes),
    )
