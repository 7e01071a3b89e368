"""The what-if replay: what another validity rule would have saved.

``GET /reports/whatif`` replays the event log, read-only, into a scratch read model under
another validity rule (:mod:`adapters.views.whatif_replay`) and answers what it would have
saved, by month, with the cases behind each saved visit and the assumptions beside the
figures (JSON, CSV or HTML like the yearly report). It needs ``report.analysis`` (team
leads and the head of office, own office); it holds file numbers, never personal data.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, require
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import chosen_format, office_in_reach, views_unavailable
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.routes.reports import CSV_MEDIA_TYPE, HTML_MEDIA_TYPE, FormatQuery, OfficeQuery
from adapters.http.routes.worklists import ReadModelsDep
from adapters.http.schemas.lawful import LawfulDate
from adapters.reports import whatif as whatif_formats
from adapters.views.runner import ApplicationEventLog
from adapters.views.whatif_replay import POLICIES, WhatIfError, policy_for, run_whatif
from projections.errors import ProjectionError
from projections.figures.statistics import OFFICE_TIME_ZONE

router = APIRouter(prefix="/reports", tags=["reports"])

Analyst = Annotated[Principal, Depends(require(Permission.REPORT_ANALYSIS))]
DayQuery = Annotated[LawfulDate | None, Query(description="A day (Berlin), YYYY-MM-DD.")]


@router.get(
    "/whatif",
    responses={
        **READ_PROBLEMS,
        200: {
            "description": "What the policy would have saved: JSON, CSV or HTML.",
            "content": {"text/csv": {}, "text/html": {}},
        },
    },
    operation_id="whatif_report",
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
        LawfulDate | None,
        Query(alias="from", description="First day; omitted: 1 January last year."),
    ] = None,
    period_until: Annotated[
        LawfulDate | None,
        Query(alias="until", description="Last day; omitted: 31 December last year."),
    ] = None,
    office_id: OfficeQuery = None,
    format: FormatQuery = None,
) -> Response:
    """Replay the log read-only under another validity rule: what it would have saved."""
    office = office_in_reach(analyst, office_id, Permission.REPORT_ANALYSIS, "analyses")
    service = read_models.service
    last_year = service.clock().astimezone(OFFICE_TIME_ZONE).year - 1
    first = period_from or date(last_year, 1, 1)
    last = period_until or date(last_year, 12, 31)
    # An unknown basis would replay to an empty report: 422 naming the field instead.
    service.catalogue.check_legal_basis("legal_basis", legal_basis)
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
