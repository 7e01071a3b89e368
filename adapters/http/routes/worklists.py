"""The caseworkers' worklists: one read model per question, one route per read model.

Lists come from the projections (:mod:`projections`), never from replaying case files.
Each page holds at most ``limit`` entries in a stable order; a page that has more after
it carries ``next_cursor`` and a ``Link: <...>; rel="next"`` header.

Read-your-writes: every write answers with ``X-Akte-Position``, the log position of its
last event. A list asked for with ``min_position`` waits (at most
``read_model_routes.MAX_WAIT_SECONDS``) until the read models have processed that
position, so a caseworker who just assigned a procedure sees it in their list at once.
If they have not caught up in time, the list answers anyway and says so in
``X-Akte-Views-Behind: true``.

Every list is for a day: ``?on=YYYY-MM-DD``, or today in the office's time zone
(``AKTE_OFFICE_TIME_ZONE``), never the server's UTC date.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import date
from typing import Annotated, Any, Final, Literal, Protocol, TypeVar

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission
from adapters.http.deps import CaseReader
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import (
    OfficeDay,
    office_in_reach,
    views_behind,
    views_unavailable,
)
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.schemas.lawful import Line
from adapters.views.read_models import ReadModels
from projections.errors import ProjectionError
from projections.paging import InvalidQuery, Page
from projections.storage import ViewsStore
from projections.worklists import (
    commitment_declarations_awaiting_handover,
    deadlines,
    eat_cards_awaiting_handover,
    expiring_documents,
    notice_triage,
    open_procedures_by_assignee,
    overdue_document_requests,
    unassigned_procedures,
    unreviewed_uploads,
    untriaged_submissions,
)

MAX_PAGE: Final = 200
DEFAULT_PAGE: Final = 50

T = TypeVar("T")

router = APIRouter(prefix="/worklists", tags=["worklists"])


def get_read_models(request: Request) -> ReadModels:
    read_models: ReadModels = request.app.state.read_models
    return read_models


ReadModelsDep = Annotated[ReadModels, Depends(get_read_models)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")]
Cursor = Annotated[
    Line | None,
    Query(max_length=500, description="`next_cursor` of the previous page; omitted: first."),
]
MinPosition = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**62,
        description=(
            "Wait (briefly) until the lists reflect the write that answered with this "
            "`X-Akte-Position`."
        ),
    ),
]
OfficeQuery = Annotated[
    Line | None,
    Query(
        max_length=60,
        description="The office whose list to show; omitted: yours. Only auditors reach others.",
    ),
]


class WorklistPage(BaseModel):
    """One page of a worklist."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _office(reader: Principal, office_id: str | None) -> str:
    return office_in_reach(reader, office_id, Permission.CASE_READ, "worklists")


def _page(
    request: Request,
    response: Response,
    read_models: ReadModels,
    min_position: int | None,
    query: Callable[[], Page[T]],
) -> WorklistPage:
    if views_behind(read_models, min_position):
        response.headers["X-Akte-Views-Behind"] = "true"
    try:
        page = query()
    except InvalidQuery as error:
        raise HttpProblem(422, "invalid-value", str(error)) from None
    except ProjectionError:
        raise views_unavailable("the worklists are") from None
    if page.next_cursor is not None:
        next_url = request.url.include_query_params(cursor=page.next_cursor)
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return WorklistPage(
        items=[asdict(item) for item in page.items],  # type: ignore[call-overload]
        next_cursor=page.next_cursor,
    )


@router.get("/my-open-procedures", responses=READ_PROBLEMS)
def my_open_procedures(
    request: Request,
    response: Response,
    reader: CaseReader,
    today: OfficeDay,
    read_models: ReadModelsDep,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """My open procedures (assigned to me, not decided), oldest first, with age and due date."""
    office = _office(reader, None)
    return _page(
        request,
        response,
        read_models,
        min_position,
        lambda: open_procedures_by_assignee.open_procedures_by_assignee(
            read_models.views,
            assignee=reader.user_id,
            today=today,
            office_id=office,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.get(
    "/overdue-document-requests",
    responses=READ_PROBLEMS,
    operation_id="overdue_document_requests",
)
def overdue(
    request: Request,
    response: Response,
    reader: CaseReader,
    today: OfficeDay,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    assignee: Annotated[Line | None, Query(max_length=100)] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """Procedures waiting for documents whose due date has passed."""
    office = _office(reader, office_id)
    return _page(
        request,
        response,
        read_models,
        min_position,
        lambda: overdue_document_requests.overdue_document_requests(
            read_models.views,
            today=today,
            office_id=office,
            assignee=assignee,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.get("/expiring-documents", responses=READ_PROBLEMS, operation_id="expiring_documents")
def expiring(
    request: Request,
    response: Response,
    reader: CaseReader,
    today: OfficeDay,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    within_days: Annotated[int, Query(ge=0, le=366)] = expiring_documents.DEFAULT_WITHIN_DAYS,
    kind: Annotated[
        list[Literal["fiction_certificate", "duldung", "aufenthaltsgestattung", "eat"]] | None,
        Query(description="Only these kinds; omitted: all."),
    ] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """Fiktionsbescheinigungen, Duldungen, Gestattungen and eATs expiring within N days."""
    office = _office(reader, office_id)
    return _page(
        request,
        response,
        read_models,
        min_position,
        lambda: expiring_documents.expiring_documents(
            read_models.views,
            today=today,
            within_days=within_days,
            kinds=kind,
            office_id=office,
            limit=limit,
            cursor=cursor,
        ),
    )


@router.get("/deadlines", responses=READ_PROBLEMS, operation_id="deadlines")
def deadlines_within(
    request: Request,
    response: Response,
    reader: CaseReader,
    today: OfficeDay,
    read_models: ReadModelsDep,
    office_id: OfficeQuery = None,
    within_days: Annotated[
        int, Query(ge=0, le=366, description="Deadlines whose last day is at most N days ahead.")
    ] = deadlines.DEFAULT_WITHIN_DAYS,
    passed_within_days: Annotated[
        int,
        Query(ge=0, le=366, description="Also those passed at most N days ago (0: none)."),
    ] = 0,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
    min_position: MinPosition = None,
) -> WorklistPage:
    """Legal deadlines ending within N days (or passed), counted with the office's holidays."""
    office = _office(reader, office_id)
    holidays = read_models.service.deadlines.holidays
    return _page(
        request,
        response,
        read_models,
        min_position,
        lambda: deadlines.deadlines(
            read_models.views,
            today=today,
            holidays=holidays,
            within_days=within_days,
            passed_within_days=passed_within_days,
            office_id=office,
            limit=limit,
            cursor=cursor,
        ),
    )


class OfficeWorklistQuery(Protocol):
    def __call__(
        self,
        views: ViewsStore,
        *,
        today: date,
        office_id: str | None = None,
        limit: int = ...,
        cursor: str | None = None,
    ) -> Page[Any]: ...


def _office_worklist(path: str, summary: str, query: OfficeWorklistQuery) -> None:
    """A worklist whose only filter is the office: the same route, another read model."""

    def route(
        request: Request,
        response: Response,
        reader: CaseReader,
        today: OfficeDay,
        read_models: ReadModelsDep,
        office_id: OfficeQuery = None,
        limit: Limit = DEFAULT_PAGE,
        cursor: Cursor = None,
        min_position: MinPosition = None,
    ) -> WorklistPage:
        office = _office(reader, office_id)
        return _page(
            request,
            response,
            read_models,
            min_position,
            lambda: query(
                read_models.views,
                today=today,
                office_id=office,
                limit=limit,
                cursor=cursor,
            ),
        )

    route.__doc__ = summary
    router.get(path, responses=READ_PROBLEMS, name=path.strip("/").replace("-", "_"))(route)


_office_worklist(
    "/unassigned-procedures",
    "The team's unassigned procedures, oldest first.",
    unassigned_procedures.unassigned_procedures,
)
_office_worklist(
    "/eat-cards-awaiting-handover",
    "eATs ordered or arrived but not yet handed over.",
    eat_cards_awaiting_handover.eat_cards_awaiting_handover,
)
_office_worklist(
    "/unreviewed-uploads",
    "Uploaded documents no caseworker has looked at yet, oldest first.",
    unreviewed_uploads.unreviewed_uploads,
)
_office_worklist(
    "/commitment-declarations-awaiting-handover",
    "Commitment declarations paid but not handed over, oldest payment first.",
    commitment_declarations_awaiting_handover.commitment_declarations_awaiting_handover,
)
_office_worklist(
    "/untriaged-submissions",
    "Contact-form submissions nobody has triaged yet, oldest first.",
    untriaged_submissions.untriaged_submissions,
)
_office_worklist(
    "/notice-triage",
    "Registration-office notices (§ 72 AufenthV) no case file could be matched to for "
    "certain, with the reasons and the candidate files, oldest first.",
    notice_triage.notice_triage,
)
