"""What the routes over read models share: whose office a caller may see, the office day
a list is for, waiting for a write to reach the views (read-your-writes), the answer
while views are not built, and the format a report is asked for."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Final

from fastapi import Depends, Query, Request

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, may_in_office
from adapters.http.problems import HttpProblem
from adapters.http.schemas.lawful import LawfulDate
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from adapters.views.replica import read_views_from_replica
from service import AkteService

MAX_WAIT_SECONDS: Final = 2.0
"""How long a read asked with ``min_position`` waits for the views at most."""


def office_in_reach(
    principal: Principal, office_id: str | None, permission: Permission, what: str
) -> str:
    """The office asked for (default: the caller's), if the caller's roles reach it."""
    office = office_id or principal.office_id
    if office is None or not may_in_office(principal, permission, office):
        raise HttpProblem(403, "forbidden", f"your role does not reach this office's {what}")
    return office


OnDay = Annotated[
    LawfulDate | None,
    Query(
        description=(
            "The office day the list is for (YYYY-MM-DD); omitted: today in the office's "
            "time zone (`AKTE_OFFICE_TIME_ZONE`, default Europe/Berlin)."
        ),
    ),
]


def office_day(now: datetime, settings: Settings) -> date:
    """The date in the office at the instant ``now``: at 23:30 UTC in summer, Berlin is
    already on the next day, and so are its worklists."""
    return now.astimezone(settings.office_zone).date()


def day_asked(request: Request, on: OnDay = None) -> date:
    """``?on=`` if given, else the office's today by the service's clock."""
    if on is not None:
        return on
    service: AkteService = request.app.state.service
    settings: Settings = request.app.state.settings
    return office_day(service.clock(), settings)


OfficeDay = Annotated[date, Depends(day_asked)]
"""The day a list is for: ``?on=`` or the office's today (see :func:`day_asked`)."""


def views_behind(read_models: ReadModels, min_position: int | None) -> bool:
    """Wait (bounded) until the views reflect ``min_position``; True if they still do not.

    With a replica, the request's lists are read there when it has ``min_position``
    (or none is asked), else from the primary (:mod:`adapters.views.replica`)."""
    if min_position is None:
        if read_models.replica is not None:
            read_views_from_replica(read_models.replica, None)
        return False
    # Only a write hands out positions; one beyond the log's head never comes, and
    # waiting for it would hold a worker thread for nothing.
    service = read_models.service
    with service.store_errors():  # the primary away: 503, as for any read of the store
        head = service.recorder.max_notification_id() or 0
    if min_position > head:
        raise HttpProblem(422, "invalid-value", "min_position: is beyond the event log")
    if read_models.replica is not None and read_views_from_replica(
        read_models.replica, min_position
    ):
        return False
    return not read_models.wait_until(min_position, MAX_WAIT_SECONDS)


def views_unavailable(subject: str) -> HttpProblem:
    """Not built yet (no runner has followed the log) or the views store is down;
    ``subject`` e.g. "the worklists are"."""
    return HttpProblem(
        503,
        "read-models-unavailable",
        f"{subject} not available yet; try again shortly",
        headers={"Retry-After": "5"},
    )


def chosen_format(request: Request, requested: str | None) -> str:
    """``json``, ``csv`` or ``html``: ``?format=`` if given, else the first of them the
    ``Accept`` header names; ``*/*`` and nothing mean JSON."""
    if requested is not None:
        return requested
    for part in request.headers.get("accept", "").split(","):
        media_type = part.split(";")[0].strip().lower()
        if media_type == "text/csv":
            return "csv"
        if media_type == "text/html":
            return "html"
        if media_type in ("application/json", "application/*", "*/*"):
            return "json"
    return "json"
