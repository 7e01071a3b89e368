"""The office's appointment lists and figures, from read models (never from replaying
appointments): the day at the counter, holds awaiting confirmation, and how booked out
each type is, now and day by day.

Like the worklists (:mod:`adapters.http.routes.worklists`): pages in a stable order with
``next_cursor``, read-your-writes with ``min_position``, ``503`` while the read models
are not built. Caseworkers and team leads see their office; auditors pass ``office_id``
for any. No personal data in the rows: the appointment's id opens the person's data
(``GET /appointments/{id}``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, require
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import office_day, office_in_reach
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.routes.worklists import (
    DEFAULT_PAGE,
    Cursor,
    Limit,
    MinPosition,
    OfficeQuery,
    ReadModelsDep,
    WorklistPage,
    _page,
)
from adapters.http.schemas.appointments import (
    AppointmentFiguresPublic,
    Code,
    TypeFiguresPublic,
)
from adapters.http.schemas.cases import ProblemPublic
from adapters.http.schemas.lawful import LawfulDate
from adapters.settings import Settings
from domain.appointments import ServicePoint
from projections.appointments import appointment_day, appointment_figures, appointment_holds
from projections.paging import Page
from service import AkteService
from service_appointments import ServicePointNotFound

router = APIRouter(prefix="/appointments", tags=["appointments: office"])

AppointmentReader = Annotated[Principal, Depends(require(Permission.APPOINTMENT_READ))]
ServicePointQuery = Annotated[
    Code | None, Query(description="A service point's code; omitted: all of the office's.")
]
LIST_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    **READ_PROBLEMS,
    404: {"model": ProblemPublic, "description": "No service point with this code in the office."},
}
Status = Literal["held", "confirmed", "checked_in", "attended", "no_show"]
MailStatus = Literal["queued", "sent", "failed", "bounced"]


def _office(principal: Principal, office_id: str | None) -> str:
    return office_in_reach(principal, office_id, Permission.APPOINTMENT_READ, "appointments")


def _points(service: AkteService, office: str, code: str | None) -> list[ServicePoint]:
    points = service.appointments.service_points(office)
    if code is None:
        return points
    chosen = [point for point in points if point.code == code]
    if not chosen:
        raise ServicePointNotFound(code)
    return chosen


def _ids(points: list[ServicePoint]) -> list[str]:
    return [str(point.id) for point in points]


def _today(service: AkteService, settings: Settings, points: list[ServicePoint]) -> date:
    """The service point's local date (its own zone); without one, the office's."""
    now = service.clock()
    return points[0].local(now).date() if points else office_day(now, settings)


def _with_codes(page: WorklistPage, points: list[ServicePoint]) -> WorklistPage:
    codes = {str(point.id): point.code for point in points}
    for item in page.items:
        item["service_point"] = codes.get(str(item["service_point_id"]))
    return page


@router.get("/day", responses=LIST_PROBLEMS, operation_id="appointment_day_list")
def day_list(
    request: Request,
    response: Response,
    principal: AppointmentReader,
    service: ServiceDep,
    settings: SettingsDep,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    service_point: ServicePointQuery = None,
    on: Annotated[
        LawfulDate | None,
        Query(
            description=(
                "The service point's local date (YYYY-MM-DD); omitted: today there (without "
                "service points: in the office's time zone)."
            )
        ),
    ] = None,
    day: Annotated[
        LawfulDate | None,
        Query(deprecated=True, description="The former name of `on`; give one of them."),
    ] = None,
    status: Annotated[list[Status] | None, Query(description="Only these; omitted: all.")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """The day's appointments at the office's service points, in time order: held,
    confirmed, checked in, attended or no-show (cancelled and lapsed ones have left).

    The day is `on` (the service point's local date); omitted: today there."""
    office = _office(principal, office_id)
    points = _points(service, office, service_point)
    if on is not None and day is not None and on != day:
        raise HttpProblem(422, "invalid-value", "day: is the former name of on; give one")
    on = on or day or _today(service, settings, points)
    page = _page(
        request,
        response,
        read_models,
        min_position,
        lambda: appointment_day.appointments_of_day(
            read_models.views,
            office_id=office,
            day=on,
            service_point_ids=None if service_point is None else _ids(points),
            statuses=None if status is None else list(status),
            limit=limit,
            cursor=cursor,
        ),
    )
    return _with_codes(page, points)


@router.get("/holds", responses=LIST_PROBLEMS)
def unconfirmed_holds(
    request: Request,
    response: Response,
    principal: AppointmentReader,
    service: ServiceDep,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    service_point: ServicePointQuery = None,
    mail_status: Annotated[
        list[MailStatus] | None,
        Query(description="Only holds whose confirmation mail is in these states."),
    ] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """Bookings awaiting confirmation, the hold lapsing soonest first: the confirmation
    mail's state (sent, failed, bounced) and whether the reminder went out."""
    office = _office(principal, office_id)
    points = _points(service, office, service_point)
    page = _page(
        request,
        response,
        read_models,
        min_position,
        lambda: appointment_holds.unconfirmed_holds(
            read_models.views,
            office_id=office,
            service_point_ids=None if service_point is None else _ids(points),
            mail_statuses=None if mail_status is None else list(mail_status),
            limit=limit,
            cursor=cursor,
        ),
    )
    return _with_codes(page, points)


@router.get(
    "/figures",
    response_model=AppointmentFiguresPublic,
    responses=LIST_PROBLEMS,
    operation_id="appointment_figures",
)
def figures(
    request: Request,
    response: Response,
    principal: AppointmentReader,
    service: ServiceDep,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    service_point: ServicePointQuery = None,
    min_position: MinPosition = None,
) -> AppointmentFiguresPublic:
    """Now, per service point and appointment type: how many wait, the next free slot,
    and the "booked out for N weeks" figure."""
    office = _office(principal, office_id)
    points = _points(service, office, service_point)
    now = service.clock()
    page = _page(
        request,
        response,
        read_models,
        min_position,
        lambda: Page(
            appointment_figures.current_figures(
                read_models.views,
                points=points,
                now=now,
                holidays=service.appointments.holidays,
            ),
            None,
        ),
    )
    return AppointmentFiguresPublic(
        as_of=now,
        figures=[TypeFiguresPublic.model_validate(item) for item in page.items],
    )


@router.get("/figures/history", responses=LIST_PROBLEMS, operation_id="appointment_figures_history")
def figures_history(
    request: Request,
    response: Response,
    principal: AppointmentReader,
    service: ServiceDep,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    service_point: ServicePointQuery = None,
    appointment_type: Annotated[
        Code | None, Query(alias="type", description="An appointment type's code.")
    ] = None,
    from_day: Annotated[LawfulDate | None, Query(alias="from")] = None,
    until_day: Annotated[LawfulDate | None, Query(alias="until")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """The figures day by day, as the tick recorded them each morning, oldest first:
    waitlist length, next free slot and weeks booked out per service point and type."""
    office = _office(principal, office_id)
    if from_day is not None and until_day is not None and from_day > until_day:
        raise HttpProblem(422, "invalid-value", "from: must not lie after until")
    return _page(
        request,
        response,
        read_models,
        min_position,
        lambda: appointment_figures.availability_history(
            read_models.views,
            office_id=office,
            appointment_type=appointment_type,
            service_point=service_point,
            from_day=from_day,
            until_day=until_day,
            limit=limit,
            cursor=cursor,
        ),
    )
