"""A case file's history, its state at a point in time, and what changed in between.

``GET /cases/{case_id}/history``: every event with who, business and recorded time,
legal basis, reason and a German description, filtered by business time, actor and
kind; JSON, or a printable HTML page (``Accept: text/html`` or ``?format=html``). The
personal data in events (old names, free-text reasons, notes ...) is shown to roles
with ``case.history.personal.read`` (auditors); the others see the facts and the names
of the fields withheld.

``GET /cases/{case_id}?as_of=...|version=N|on=YYYY-MM-DD`` (in
:mod:`adapters.http.routes.case_files.cases`) and ``GET /cases/{case_id}/diff`` use
:func:`case_at` here. ``as_of``, ``from`` and ``until`` of the state and the diff are
*recorded* times (see :meth:`service.AkteService.case_version_at`); ``on``, ``from_on``
and ``to_on`` are *business dates*: the file as it stood at the end of that day in the
office's time zone, with every event dated on or before it, whenever it was recorded
(:mod:`service_case_as_of`, :mod:`domain.business_date`). ``?on=`` of the history lists
the events that state is made of.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final, Literal, TypeVar, cast
from uuid import UUID

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import AwareDatetime, BaseModel, Field

from adapters.http.auth.permissions import CaseOffices, Permission, may_in_office
from adapters.http.deps import CaseHistoryReader, CaseId, ServiceDep
from adapters.http.problems import HttpProblem, problem_response
from adapters.http.route_helpers import READ_PROBLEMS
from adapters.http.schemas.cases import MAX_USER_ID
from adapters.http.schemas.lawful import LawfulDate, LawfulTime, Line
from adapters.personal_data.batch_decoding import batch_decoder
from adapters.reports.case_history import (
    DEFAULT_HISTORY_PAGE,
    MAX_HISTORY_PAGE,
    CaseEventSource,
    DecodeBatch,
    build_diff,
    build_history,
    build_history_json,
    check_kinds,
    history_html,
    stored_case_events,
)
from adapters.store.kept_history_shelf import shelf_of
from adapters.views.read_models import ReadModels
from adapters.views.replica import ReplicaEvents
from domain.case_file import CaseFile
from domain.history import HistoryFilter, event_kinds, history_entry, state_changes
from service import AkteService, CaseVersionNotFound
from service_case_as_of import CaseNotOpenedYet
from service_common import CaseNotFound

MAX_VERSION: Final = 2**62
_HTML: Final = "text/html"
T = TypeVar("T")

router = APIRouter(prefix="/cases/{case_id}", tags=["history"])


# ---------------------------------------------------------------- schemas


class HistoryEntryPublic(BaseModel):
    """One event of the history."""

    version: int
    kind: Annotated[str, Field(examples=["ProcedureDecided"])]
    description: Annotated[str, Field(description="What happened, in German.")]
    by: Annotated[str, Field(description="The acting user's id.")]
    at: Annotated[datetime, Field(description="Business time.")]
    recorded_at: Annotated[datetime, Field(description="When the system recorded it.")]
    legal_basis: str | None
    reason: Annotated[
        str | None, Field(description="The free-text reason; personal data, auditors only.")
    ]
    data: dict[str, Any]
    withheld: Annotated[
        list[str], Field(description="Personal fields left out for you (names only).")
    ]


class CaseHistoryPublic(BaseModel):
    """A page of a case file's history, oldest first."""

    case_id: UUID
    reference: str
    office_id: str
    version: Annotated[int, Field(description="The case file's current version.")]
    personal_data_shown: bool
    next_after_version: Annotated[
        int | None,
        Field(description="More entries match: pass this as `after_version` for the next page."),
    ]
    entries: list[HistoryEntryPublic]


class StateChangePublic(BaseModel):
    path: Annotated[str, Field(description="JSON Pointer into the case file's state.")]
    before: Any
    after: Any


class CaseDiffPublic(BaseModel):
    """What changed between two versions (or recorded times, or business dates) of a case
    file, and the events that changed it."""

    case_id: UUID
    from_version: Annotated[
        int,
        Field(
            description=(
                "0: before the file existed. Between business dates: the last event the "
                "earlier state reaches."
            )
        ),
    ]
    to_version: int
    from_on: Annotated[
        date | None,
        Field(description="The earlier business date, for a diff between business dates."),
    ] = None
    to_on: Annotated[
        date | None,
        Field(description="The later business date, for a diff between business dates."),
    ] = None
    changes: list[StateChangePublic]
    events: list[HistoryEntryPublic]


# -------------------------------------------------------------- parameters

AsOf = Annotated[
    LawfulTime | None,
    Query(
        description=(
            "The state as recorded at this time (RFC 3339 with time zone): the last version "
            "recorded at or before it. Recorded time, not business time."
        )
    ),
]
OnDate = Annotated[
    LawfulDate | None,
    Query(
        description=(
            "The state on this business date (YYYY-MM-DD): every event whose business "
            "time lies on or before the end of that day in the office's time zone "
            "(`AKTE_OFFICE_TIME_ZONE`, default Europe/Berlin), in log order, whenever it "
            "was recorded. Events without a business time count at their recorded time."
        )
    ),
]
AtVersion = Annotated[
    int | None,
    Query(ge=0, le=MAX_VERSION, description="The state at this version (1 is the opening)."),
]


def case_at(
    service: AkteService,
    case_id: UUID,
    *,
    as_of: AwareDatetime | None,
    version: int | None,
    on: date | None = None,
) -> CaseFile:
    """The case file now, at ``version``, as recorded at ``as_of`` or as it stood on the
    business date ``on`` (at most one of them)."""
    if sum(given is not None for given in (as_of, version, on)) > 1:
        raise HttpProblem(422, "invalid-value", "as_of, version, on: give at most one of them")
    if on is not None:
        return service.case_as_of.case_on(case_id, on).case
    if version is not None:
        return service.get_case_at_version(case_id, version)
    if as_of is not None:
        return service.get_case_as_of(case_id, as_of)
    return service.get_case(case_id)


def install_history_problems(app: FastAPI) -> None:
    async def version_not_found(request: Request, error: Exception) -> Response:
        return problem_response(
            404, "case-version-not-found", str(error), title="No such version of the case file"
        )

    app.add_exception_handler(CaseVersionNotFound, version_not_found)
    app.add_exception_handler(CaseNotOpenedYet, version_not_found)


# ------------------------------------------------------------------ routes


@router.get(
    "/history",
    responses={
        200: {
            "description": "The history as JSON, or as a printable HTML page.",
            "content": {_HTML: {"schema": {"type": "string"}}},
        },
        **READ_PROBLEMS,
    },
    response_model=CaseHistoryPublic,
)
def case_history(
    case_id: CaseId,
    request: Request,
    reader: CaseHistoryReader,
    service: ServiceDep,
    at_from: Annotated[
        LawfulTime | None,
        Query(alias="from", description="Only events whose business time is at or after this."),
    ] = None,
    at_until: Annotated[
        LawfulTime | None,
        Query(alias="until", description="Only events whose business time is before this."),
    ] = None,
    on: Annotated[
        LawfulDate | None,
        Query(
            description=(
                "Only the events the file consisted of on this business date (YYYY-MM-DD): "
                "business time on or before the end of that day in the office's time "
                "zone; the state `GET /cases/{case_id}?on=` shows is made of them."
            )
        ),
    ] = None,
    actor: Annotated[
        Line | None, Query(max_length=MAX_USER_ID, description="Only events by this user id.")
    ] = None,
    kind: Annotated[
        list[Line] | None,
        Query(description="Only events of these kinds (e.g. `ProcedureDecided`); repeatable."),
    ] = None,
    after_version: Annotated[
        int, Query(ge=0, le=MAX_VERSION, description="The page cursor: entries after it.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE)] = DEFAULT_HISTORY_PAGE,
    output: Annotated[
        Literal["json", "html"] | None,
        Query(alias="format", description="Omitted: by the Accept header (JSON unless HTML)."),
    ] = None,
    min_position: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_VERSION,
            description=(
                "Read at least up to the write that answered with this `X-Akte-Position` "
                "(matters where a read replica serves histories)."
            ),
        ),
    ] = None,
) -> Response:
    """The case file's history: every event with who, when, why and what it means."""
    kinds = list(kind or [])
    unknown = check_kinds(kinds, event_kinds())
    if unknown:
        raise HttpProblem(422, "invalid-value", "kind: is not an event kind of a case file")
    if on is not None:
        if at_until is not None:
            raise HttpProblem(422, "invalid-value", "until, on: give at most one of them")
        at_until = service.case_as_of.end_of(on)
    if at_from is not None and at_until is not None and at_until <= at_from:
        field = "until" if on is None else "on"
        raise HttpProblem(422, "invalid-value", f"{field}: must be after from")
    office_id = _case_offices(request).office_of(case_id)
    criteria = HistoryFilter(at_from, at_until, actor, frozenset(kinds))
    with_personal_data = may_in_office(reader, Permission.CASE_HISTORY_PERSONAL_READ, office_id)
    # The events are decoded a batch at a time, exactly as the mapper decodes them.
    decode_batch = batch_decoder(service.mapper)
    if _wants_html(output, request):
        history = _read_events(
            request,
            service,
            min_position,
            decode_batch,
            lambda source: build_history(
                service,
                case_id,
                criteria=criteria,
                with_personal_data=with_personal_data,
                after_version=after_version,
                limit=limit,
                decode_batch=decode_batch,
                source=source,
            ),
        )
        next_url = _next_page_url(request, history.next_after_version)
        page = history_html(history, next_page_url=next_url)
        return HTMLResponse(page, headers=_page_headers(history.version, next_url))
    # JSON is written straight from the events, without an entry object each.
    written = _read_events(
        request,
        service,
        min_position,
        decode_batch,
        lambda source: build_history_json(
            service,
            case_id,
            criteria=criteria,
            with_personal_data=with_personal_data,
            after_version=after_version,
            limit=limit,
            decode_batch=decode_batch,
            source=source,
            kept=request.app.state.kept_histories,
            shelf=shelf_of(service),
        ),
    )
    next_url = _next_page_url(request, written.next_after_version)
    return Response(
        written.body,
        media_type="application/json",
        headers=_page_headers(written.version, next_url),
    )


def _read_events(
    request: Request,
    service: AkteService,
    min_position: int | None,
    decode_batch: DecodeBatch | None,
    build: Callable[[CaseEventSource[Any] | None], T],
) -> T:
    """``build`` over the replica's events when a read replica holds ``min_position``
    (:mod:`adapters.views.replica`), else over the service's store (``None``)."""
    replica = cast(ReadModels, request.app.state.read_models).replica
    if replica is None:
        return build(None)
    if min_position is not None:
        with service.store_errors():  # the primary away: 503, as for any read of the store
            head = service.recorder.max_notification_id() or 0
        if min_position > head:
            raise HttpProblem(422, "invalid-value", "min_position: is beyond the event log")

    def on(events: ReplicaEvents | None) -> T:
        if events is None:
            return build(None)
        return build(stored_case_events(events, service, decode_batch=decode_batch))

    # A file opened a moment ago may not have reached the replica yet: the primary has it.
    return replica.read_events(min_position, on, missing=(CaseNotFound,))


def _next_page_url(request: Request, next_after_version: int | None) -> str | None:
    if next_after_version is None:
        return None
    return str(request.url.include_query_params(after_version=next_after_version))


def _page_headers(version: int, next_url: str | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if next_url is not None:
        headers["Link"] = f'<{next_url}>; rel="next"'
    headers["ETag"] = f'"{version}"'
    return headers


def _case_offices(request: Request) -> CaseOffices:
    return cast(CaseOffices, request.app.state.case_offices)


def _wants_html(output: str | None, request: Request) -> bool:
    if output is not None:
        return output == "html"
    accept = request.headers.get("accept", "")
    return _HTML in accept and "application/json" not in accept


@router.get("/diff", responses=READ_PROBLEMS)
def case_diff(
    case_id: CaseId,
    request: Request,
    reader: CaseHistoryReader,
    service: ServiceDep,
    from_version: Annotated[
        int | None,
        Query(
            ge=0,
            le=MAX_VERSION,
            description="From this version (0: before the file); omitted: the one before the end.",
        ),
    ] = None,
    to_version: Annotated[
        int | None, Query(ge=1, le=MAX_VERSION, description="To this version; omitted: now.")
    ] = None,
    recorded_from: Annotated[
        LawfulTime | None,
        Query(alias="from", description="From the state as recorded at this time."),
    ] = None,
    recorded_until: Annotated[
        LawfulTime | None,
        Query(alias="until", description="To the state as recorded at this time."),
    ] = None,
    from_on: Annotated[
        LawfulDate | None,
        Query(
            description=(
                "From the state on this business date (see `on` of `GET /cases/{case_id}`); "
                "omitted with `to_on`: the day before `to_on` (what changed on that day). "
                "Before the file's opening: from before the file."
            )
        ),
    ] = None,
    to_on: Annotated[
        LawfulDate | None,
        Query(
            description=(
                "To the state on this business date; omitted with `from_on`: the office's today."
            )
        ),
    ] = None,
) -> CaseDiffPublic:
    """What changed between two points of a case file (versions, recorded times or
    business dates), and the events in between; without parameters, what its last event
    changed. Between business dates, the events are those dated after the earlier date
    and on or before the later one, in log order."""
    if from_on is not None or to_on is not None:
        if any(p is not None for p in (from_version, to_version, recorded_from, recorded_until)):
            raise HttpProblem(
                422,
                "invalid-value",
                "from_on, to_on: do not mix business dates with versions or recorded times",
            )
        return _diff_on(request, reader, service, case_id, from_on, to_on)
    if from_version is not None and recorded_from is not None:
        raise HttpProblem(422, "invalid-value", "from, from_version: give at most one of them")
    if to_version is not None and recorded_until is not None:
        raise HttpProblem(422, "invalid-value", "until, to_version: give at most one of them")
    if to_version is not None:
        end = to_version
    elif recorded_until is not None:
        # Before the file existed there is nothing to compare: 404 as for the state.
        end = service.get_case_as_of(case_id, recorded_until).version
    else:
        end = service.get_case(case_id).version
    if from_version is not None:
        start = from_version
    elif recorded_from is not None:
        start = service.case_version_at(case_id, recorded_from)
    else:
        start = end - 1
    if end < start:
        raise HttpProblem(422, "invalid-value", "to_version: must not be before from_version")
    office_id = _case_offices(request).office_of(case_id)
    diff = build_diff(
        service,
        case_id,
        from_version=start,
        to_version=end,
        with_personal_data=may_in_office(reader, Permission.CASE_HISTORY_PERSONAL_READ, office_id),
    )
    return CaseDiffPublic(
        case_id=case_id,
        from_version=diff.from_version,
        to_version=diff.to_version,
        changes=[
            StateChangePublic(path=change.path, before=change.before, after=change.after)
            for change in diff.changes
        ],
        events=[
            HistoryEntryPublic.model_validate(entry, from_attributes=True) for entry in diff.entries
        ],
    )


def _diff_on(
    request: Request,
    reader: CaseHistoryReader,
    service: AkteService,
    case_id: UUID,
    from_on: date | None,
    to_on: date | None,
) -> CaseDiffPublic:
    """The diff between the states on two business dates."""
    if to_on is None:
        to_on = service.clock().astimezone(service.case_as_of.zone).date()
    if from_on is None:
        from_on = to_on - timedelta(days=1)
    if to_on < from_on:
        raise HttpProblem(422, "invalid-value", "to_on: must not be before from_on")
    diff = service.case_as_of.diff_on(case_id, from_on, to_on)
    office_id = _case_offices(request).office_of(case_id)
    with_personal_data = may_in_office(reader, Permission.CASE_HISTORY_PERSONAL_READ, office_id)
    before = {} if diff.before is None else diff.before.state()
    return CaseDiffPublic(
        case_id=case_id,
        from_version=0 if diff.before is None else diff.before.case.version,
        to_version=diff.after.case.version,
        from_on=from_on,
        to_on=to_on,
        changes=[
            StateChangePublic(path=change.path, before=change.before, after=change.after)
            for change in state_changes(before, diff.after.state())
        ],
        events=[
            HistoryEntryPublic.model_validate(
                history_entry(event, with_personal_data=with_personal_data), from_attributes=True
            )
            for event in diff.events
        ],
    )
