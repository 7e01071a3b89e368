"""The team lead's view of the workload per caseworker.

``GET /reports/workload``: actions and decisions per caseworker and week, the open backlog
per caseworker and its age, the "booked out for N weeks" series, and per post and person
at work where the staff plan is configured. It needs ``report.analysis`` (team leads and
the head of office, own office); it holds staff ids, never personal data.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, require
from adapters.http.deps import SettingsDep
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import office_in_reach, views_unavailable
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.routes.reports import OfficeQuery
from adapters.http.routes.worklists import ReadModelsDep
from adapters.http.schemas.lawful import LawfulDate
from adapters.reference.staff_plan import StaffFileError, staff_plan_for
from projections.errors import ProjectionError
from projections.figures import workload as workload_model
from projections.figures.statistics import OFFICE_TIME_ZONE
from projections.positions import read_positions

DEFAULT_WORKLOAD_WEEKS: Final = 12
MAX_WORKLOAD_DAYS: Final = 2 * 366

router = APIRouter(prefix="/reports", tags=["reports"])

Analyst = Annotated[Principal, Depends(require(Permission.REPORT_ANALYSIS))]


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


@router.get("/workload", responses=READ_PROBLEMS, operation_id="workload_report")
def workload(
    analyst: Analyst,
    read_models: ReadModelsDep,
    settings: SettingsDep,
    period_from: Annotated[
        LawfulDate | None, Query(alias="from", description="First day; omitted: 12 weeks ago.")
    ] = None,
    period_until: Annotated[
        LawfulDate | None, Query(alias="until", description="Last day; omitted: today (Berlin).")
    ] = None,
    office_id: OfficeQuery = None,
) -> WorkloadPublic:
    """The team's workload: per caseworker and week, the backlog and its age, booked-out weeks."""
    office = office_in_reach(analyst, office_id, Permission.REPORT_ANALYSIS, "analyses")
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
