"""The auditors' trails across case files: actions by actor, per day, and the read log.

Read models (:mod:`projections.audit.audit_actions`,
:mod:`projections.audit.read_access_log`), never replays. Only roles with
``audit.trail.read`` (auditors) may read them, in the offices their role reaches
(auditors: all; ``office_id`` narrows to one). Reading the access log is itself recorded
in it (:mod:`adapters.http.read_log`).

Times: the action trails filter and group by *recorded* time, when the action was
taken in the system (a business time can be back-dated); days are the office's calendar
days (Europe/Berlin). The read log's time is when the read was served.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Final, TypeVar
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import ROLE_GRANTS, Permission, Reach, require
from adapters.http.deps import ServiceDep
from adapters.http.problems import HttpProblem
from adapters.http.read_log import note_read
from adapters.http.read_model_routes import views_behind, views_unavailable
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.routes.worklists import Cursor, MinPosition, ReadModelsDep
from adapters.http.schemas.cases import MAX_CODE, MAX_USER_ID
from adapters.http.schemas.lawful import LawfulDate, LawfulTime, Line
from adapters.views.read_models import ReadModels
from projections.audit import audit_actions, read_access_log
from projections.errors import ProjectionError
from projections.paging import InvalidQuery

T = TypeVar("T")

MAX_PAGE: Final = 500
DEFAULT_PAGE: Final = 100
DEFAULT_DAYS: Final = 30

router = APIRouter(prefix="/audit", tags=["audit"])

AuditReader = Annotated[Principal, Depends(require(Permission.AUDIT_TRAIL_READ))]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")]
OfficeQuery = Annotated[
    Line | None,
    Query(
        max_length=MAX_CODE,
        description="Only this office; omitted: every office your role reaches.",
    ),
]
Actor = Annotated[Line | None, Query(max_length=MAX_USER_ID, description="Only this user id.")]


# ---------------------------------------------------------------- schemas


class ActionPublic(BaseModel):
    """One recorded action on a case file."""

    case_id: str
    office_id: str
    reference: Annotated[str, Field(description="The file number.")]
    version: Annotated[int, Field(description="The event's version in its case file.")]
    kind: Annotated[str, Field(examples=["ProcedureDecided"])]
    by: str
    at: Annotated[datetime, Field(description="Business time.")]
    recorded_at: datetime
    day: Annotated[date, Field(description="The office's calendar day of `recorded_at`.")]


class ActionPagePublic(BaseModel):
    items: list[ActionPublic]
    next_cursor: str | None


class DayCountPublic(BaseModel):
    day: date
    kind: str
    actions: int


class DaysPublic(BaseModel):
    """Actions per office day and event kind; a day's actions are listed by
    `GET /audit/actions` with that day's bounds."""

    first_day: date
    last_day: date
    office_id: str | None
    days: list[DayCountPublic]
    total: int


class ReadPublic(BaseModel):
    """One logged read of a case file's personal data (or of this log)."""

    read_id: str
    case_id: Annotated[str | None, Field(description="The case file read; none: the log.")]
    office_id: str | None
    by: str
    at: datetime
    endpoint: Annotated[str, Field(examples=["GET /cases/{case_id}/history"])]


class ReadPagePublic(BaseModel):
    items: list[ReadPublic]
    next_cursor: str | None


# ------------------------------------------------------------------ helpers


def _office(principal: Principal, office_id: str | None) -> str | None:
    """The office to filter by; ``None``: all (only for roles that reach all)."""
    reaches_all = any(
        Permission.AUDIT_TRAIL_READ in ROLE_GRANTS[role].permissions
        and ROLE_GRANTS[role].reach is Reach.ALL_OFFICES
        for role in principal.roles
    )
    if reaches_all:
        return office_id
    if principal.office_id is None or office_id not in (None, principal.office_id):
        raise HttpProblem(403, "forbidden", "your role does not reach this office's trails")
    return principal.office_id


def _query(
    read_models: ReadModels, response: Response, min_position: int | None, query: Callable[[], T]
) -> T:
    """``query`` once the trails reflect ``min_position`` (bounded wait); if they still
    do not, the answer says so (``X-Akte-Views-Behind``) as every list's does."""
    if views_behind(read_models, min_position):
        response.headers["X-Akte-Views-Behind"] = "true"
    try:
        return query()
    except InvalidQuery as error:
        raise HttpProblem(422, "invalid-value", str(error)) from None
    except ProjectionError:
        raise views_unavailable("the audit trails are") from None


def _link_next(request: Request, response: Response, next_cursor: str | None) -> None:
    if next_cursor is not None:
        next_url = request.url.include_query_params(cursor=next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'


# ------------------------------------------------------------------ routes


@router.get("/actions", responses=READ_PROBLEMS)
def list_actions(
    request: Request,
    response: Response,
    auditor: AuditReader,
    service: ServiceDep,
    read_models: ReadModelsDep,
    recorded_from: Annotated[
        LawfulTime | None,
        Query(alias="from", description="Recorded at or after this time; omitted: a day ago."),
    ] = None,
    recorded_until: Annotated[
        LawfulTime | None,
        Query(alias="until", description="Recorded before this time; omitted: now."),
    ] = None,
    actor: Actor = None,
    office_id: OfficeQuery = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> ActionPagePublic:
    """Everything done on case files in a time range (by one user: `actor`), in order."""
    office = _office(auditor, office_id)
    until = recorded_until or service.clock()
    since = recorded_from or until - timedelta(days=1)
    page = _query(
        read_models,
        response,
        min_position,
        lambda: audit_actions.actions(
            read_models.views,
            recorded_from=since,
            recorded_until=until,
            by=actor,
            office_id=office,
            limit=limit,
            cursor=cursor,
        ),
    )
    _link_next(request, response, page.next_cursor)
    return ActionPagePublic(
        items=[ActionPublic.model_validate(row, from_attributes=True) for row in page.items],
        next_cursor=page.next_cursor,
    )


@router.get("/days", responses=READ_PROBLEMS)
def actions_per_day(
    response: Response,
    auditor: AuditReader,
    service: ServiceDep,
    read_models: ReadModelsDep,
    from_day: Annotated[
        LawfulDate | None,
        Query(alias="from", description="The first office day; omitted: 30 days up to `until`."),
    ] = None,
    until_day: Annotated[
        LawfulDate | None,
        Query(alias="until", description="The last office day (inclusive); omitted: today."),
    ] = None,
    office_id: OfficeQuery = None,
    min_position: MinPosition = None,
) -> DaysPublic:
    """Actions per office day and event kind, across case files (at most a year at once)."""
    office = _office(auditor, office_id)
    last_day = until_day or audit_actions.office_day(service.clock())
    first_day = from_day or last_day - timedelta(days=DEFAULT_DAYS - 1)
    counts = _query(
        read_models,
        response,
        min_position,
        lambda: audit_actions.actions_per_day(
            read_models.views, first_day=first_day, last_day=last_day, office_id=office
        ),
    )
    return DaysPublic(
        first_day=first_day,
        last_day=last_day,
        office_id=office,
        days=[DayCountPublic(day=c.day, kind=c.kind, actions=c.actions) for c in counts],
        total=sum(c.actions for c in counts),
    )


@router.get("/reads", responses=READ_PROBLEMS)
def list_reads(
    request: Request,
    response: Response,
    auditor: AuditReader,
    read_models: ReadModelsDep,
    case_id: Annotated[UUID | None, Query(description="Only reads of this case file.")] = None,
    actor: Actor = None,
    since: Annotated[
        LawfulTime | None, Query(alias="from", description="Read at or after this time.")
    ] = None,
    until: Annotated[
        LawfulTime | None, Query(alias="until", description="Read before this time.")
    ] = None,
    office_id: OfficeQuery = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> ReadPagePublic:
    """Who read which case file's personal data, when, through which route; oldest first.

    This read is logged too."""
    office = _office(auditor, office_id)
    page = _query(
        read_models,
        response,
        min_position,
        lambda: read_access_log.reads(
            read_models.views,
            since=since,
            until=until,
            case_id=None if case_id is None else str(case_id),
            by=actor,
            office_id=office,
            limit=limit,
            cursor=cursor,
        ),
    )
    note_read(request.state, case_id=case_id, office_id=office)
    _link_next(request, response, page.next_cursor)
    return ReadPagePublic(
        items=[
            ReadPublic(
                read_id=row.case_id,
                case_id=row.file_id or None,
                office_id=row.office_id or None,
                by=row.by,
                at=row.at,
                endpoint=row.endpoint,
            )
            for row in page.items
        ],
        next_cursor=page.next_cursor,
    )
