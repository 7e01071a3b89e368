"""Data protection: erasure with four eyes, subject access, the retention worklist.

| method, path | who (permission) |
|---|---|
| ``POST /cases/{case_id}/erasure-requests`` | team lead of the office, data protection officer (``personal_data.erase``) |
| ``GET /cases/{case_id}/erasure-requests`` | the same: the file's requests with their events |
| ``POST /cases/{case_id}/erasure-requests/{number}/approval`` | data protection officer, not the requester (``personal_data.erase.approve``): carries the erasure out |
| ``POST /cases/{case_id}/erasure-requests/{number}/withdrawal`` | team lead of the office, data protection officer (``personal_data.erase``) |
| ``GET /erasure-requests`` | the same: the pending requests of the offices one reaches |
| ``POST /cases/{case_id}/erasure`` | retired: makes a request as above; ``approved_by`` is refused (422) |
| ``GET /cases/{case_id}/subject-access`` | auditor, data protection officer (``subject_access.read``): JSON or HTML |
| ``GET /retention/due`` | team lead (own office), auditor, data protection officer (``retention.read``) |

Four eyes: the approver is the subject of the token that approves, never a name in a
body; the requester cannot approve (``409 erasure-self-approval``); a role without
``personal_data.erase.approve`` is refused (``403``). The retired route kept its path so
that old clients learn of the new flow: a body naming ``approved_by`` is refused with a
problem pointing to it, one without makes a request (``201``, nothing erased yet).
"""  # noqa: E501

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, may_in_office, require
from adapters.http.deps import CaseId, ServiceDep, SettingsDep
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import OnDay, office_day, views_unavailable
from adapters.http.route_helpers import POSITION_HEADER, READ_PROBLEMS, WRITE_PROBLEMS, etag
from adapters.http.routes.worklists import ReadModelsDep
from adapters.http.schemas.erasure import (
    ErasureApprovalPublic,
    ErasureDecision,
    ErasureRequestCreate,
    ErasureRequestEventPublic,
    ErasureRequestListPublic,
    ErasureRequestPublic,
    LegacyErasureCreate,
)
from adapters.http.schemas.lawful import Line
from adapters.personal_data.retention import load_rules
from adapters.personal_data.subject_access import as_html, subject_access
from domain.erasure import ErasureRequest
from projections.errors import ProjectionError
from projections.worklists.retention_due import due_files
from service import AkteService

Requester = Annotated[Principal, Depends(require(Permission.PERSONAL_DATA_ERASE))]
Approver = Annotated[Principal, Depends(require(Permission.PERSONAL_DATA_ERASE_APPROVE))]
SubjectAccessReader = Annotated[Principal, Depends(require(Permission.SUBJECT_ACCESS_READ))]
RetentionReader = Annotated[Principal, Depends(require(Permission.RETENTION_READ))]
RequestNumber = Annotated[
    int, Path(ge=1, le=1000, description="The erasure request's number on the case file.")
]

router = APIRouter(tags=["data protection"])

_CREATED: Final[dict[int | str, dict[str, Any]]] = {
    201: {
        "description": "The request is recorded; nothing is erased until another person "
        "approves it.",
        "headers": {"Location": {"description": "The file's erasure requests."}},
    },
}


def request_public(service: AkteService, request: ErasureRequest) -> ErasureRequestPublic:
    history = [
        ErasureRequestEventPublic(
            kind=type(event).__name__,  # type: ignore[arg-type]
            by=event.by,
            at=event.at,
            recorded_at=event.timestamp,
            version=event.originator_version,
        )
        for event in service.erasure_requests.events_of(request)
    ]
    return ErasureRequestPublic(
        case_id=request.case_id,
        office_id=request.office_id,
        number=request.number,
        status=request.status,
        legal_ground=request.legal_ground,
        rule_id=request.rule_id,
        case_version=request.case_version,
        requested_by=request.requested_by,
        requested_at=request.requested_at,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        history=history,
    )


def _request_erasure(
    case_id: CaseId,
    *,
    legal_ground: str,
    rule_id: str | None,
    at: Any,
    request: Request,
    response: Response,
    service: AkteService,
    principal: Principal,
) -> ErasureRequestPublic:
    recorded = service.erasure_requests.request(
        case_id, by=principal.user_id, legal_ground=legal_ground, rule_id=rule_id, at=at
    )
    response.status_code = 201
    response.headers["Location"] = str(
        request.url_for("erasure_requests_of_case_file", case_id=str(case_id))
    )
    response.headers[POSITION_HEADER] = str(recorded.position)
    return request_public(service, recorded.request)


@router.post(
    "/cases/{case_id}/erasure-requests",
    status_code=201,
    responses={**WRITE_PROBLEMS, **_CREATED},
    operation_id="request_erasure",
)
def request_erasure(
    case_id: CaseId,
    body: ErasureRequestCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: Requester,
) -> ErasureRequestPublic:
    """Request the erasure of the person's data. Nothing is erased yet: a second person
    with ``personal_data.erase.approve`` approves it with their own token. A file has at
    most one pending request (``409 erasure-request-pending``)."""
    return _request_erasure(
        case_id,
        legal_ground=body.legal_ground,
        rule_id=body.rule_id,
        at=body.at,
        request=request,
        response=response,
        service=service,
        principal=principal,
    )


@router.get(
    "/cases/{case_id}/erasure-requests",
    responses=READ_PROBLEMS,
    operation_id="list_erasure_requests_of_case_file",
)
def erasure_requests_of_case_file(
    case_id: CaseId, service: ServiceDep, principal: Requester
) -> ErasureRequestListPublic:
    """The case file's erasure requests, oldest first, each with its events: who
    requested, who approved or withdrew, when."""
    service.get_case(case_id)  # 404 for an unknown file
    return ErasureRequestListPublic(
        items=[
            request_public(service, request)
            for request in service.erasure_requests.requests_of(case_id)
        ]
    )


@router.post(
    "/cases/{case_id}/erasure-requests/{number}/approval",
    responses=WRITE_PROBLEMS,
    operation_id="approve_erasure",
)
def approve_erasure(
    case_id: CaseId,
    number: RequestNumber,
    response: Response,
    service: ServiceDep,
    principal: Approver,
    body: ErasureDecision | None = None,
) -> ErasureApprovalPublic:
    """Approve another person's erasure request and carry it out: record the approval and
    the erasure, then destroy the keys. Approving one's own request is refused (``409
    erasure-self-approval``), as is a request decided already (``409
    erasure-request-decided``). An approval interrupted before the keys were destroyed is
    completed by approving again."""
    approval = service.erasure_requests.approve(
        case_id, number, by=principal.user_id, at=body.at if body else None
    )
    recorded = approval.erasure
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(approval.position)
    erasure = recorded.result
    return ErasureApprovalPublic(
        case_id=str(case_id),
        version=recorded.version,
        erased_at=erasure.erased_at,
        keys_destroyed=len(erasure.keys_destroyed),
        linked_erased=max(0, len(erasure.keys_destroyed) - 1),
        linked_kept=erasure.linked_kept,
        plaintext_events=erasure.plaintext_events,
        request=request_public(service, approval.request),
    )


@router.post(
    "/cases/{case_id}/erasure-requests/{number}/withdrawal",
    responses=WRITE_PROBLEMS,
    operation_id="withdraw_erasure_request",
)
def withdraw_erasure_request(
    case_id: CaseId,
    number: RequestNumber,
    response: Response,
    service: ServiceDep,
    principal: Requester,
    body: ErasureDecision | None = None,
) -> ErasureRequestPublic:
    """Withdraw a pending request (its requester) or decline it (anyone else allowed to
    request): nothing is erased. Not erasing needs no second person."""
    recorded = service.erasure_requests.withdraw(
        case_id, number, by=principal.user_id, at=body.at if body else None
    )
    response.headers[POSITION_HEADER] = str(recorded.position)
    return request_public(service, recorded.request)


@router.get("/erasure-requests", responses=READ_PROBLEMS, operation_id="list_pending_erasures")
def pending_erasure_requests(
    service: ServiceDep,
    principal: Requester,
    office_id: Annotated[
        Line | None,
        Query(max_length=60, description="The office; omitted: yours (or all, for roles of all)."),
    ] = None,
) -> ErasureRequestListPublic:
    """The pending erasure requests, oldest first: what waits for a second person."""
    office = office_id or principal.office_id
    offices: list[str] | None
    if office is None:
        if not may_in_office(principal, Permission.PERSONAL_DATA_ERASE, "*"):
            raise HttpProblem(403, "forbidden", "your account is not assigned to an office")
        offices = None
    else:
        if not may_in_office(principal, Permission.PERSONAL_DATA_ERASE, office):
            raise HttpProblem(403, "forbidden", "your role does not reach this office")
        offices = [office]
    pending = service.erasure_requests.pending(office_ids=offices)
    return ErasureRequestListPublic(items=[request_public(service, r) for r in pending])


@router.post(
    "/cases/{case_id}/erasure",
    status_code=201,
    responses={**WRITE_PROBLEMS, **_CREATED},
    operation_id="erase_case_file",
    deprecated=True,
)
def erase(
    case_id: CaseId,
    body: LegacyErasureCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: Requester,
) -> ErasureRequestPublic:
    """Retired: erasure takes two people now. Makes an erasure request, as ``POST
    /cases/{case_id}/erasure-requests`` does; nothing is erased until another person
    approves it. A body naming ``approved_by`` is refused (``422 approver-not-accepted``):
    an approver approves with their own token."""
    if body.approved_by is not None:
        raise HttpProblem(
            422,
            "approver-not-accepted",
            "approved_by: an approver is no longer named; request the erasure at POST "
            "/cases/{case_id}/erasure-requests and let a data protection officer approve it "
            "with their own token at .../erasure-requests/{number}/approval",
        )
    return _request_erasure(
        case_id,
        legal_ground=body.legal_ground,
        rule_id=body.rule_id,
        at=body.at,
        request=request,
        response=response,
        service=service,
        principal=principal,
    )


@router.get(
    "/cases/{case_id}/subject-access",
    responses={
        **READ_PROBLEMS,
        200: {
            "description": "Everything held about the person: JSON, or HTML to print.",
            "content": {"application/json": {}, "text/html": {}},
        },
    },
)
def export_subject_access(
    case_id: CaseId,
    service: ServiceDep,
    read_models: ReadModelsDep,
    principal: SubjectAccessReader,
    format: Annotated[Literal["json", "html"], Query(description="json or html")] = "json",
) -> Response:
    """Everything Akte holds about the file's person, decrypted (Art. 15 DSGVO)."""
    export = subject_access(service, read_models.views, case_id, requested_by=principal.user_id)
    if format == "html":
        return HTMLResponse(as_html(export))
    return JSONResponse(export.document)


class DueFilePublic(BaseModel):
    case_id: str
    office_id: str
    reference: str
    rule_id: str
    legal_basis: str
    legal_ground: str
    runs_from: str
    due_on: str
    days_overdue: int


class RetentionDuePublic(BaseModel):
    today: str
    items: list[DueFilePublic]


@router.get("/retention/due", responses=READ_PROBLEMS)
def retention_due(
    service: ServiceDep,
    settings: SettingsDep,
    read_models: ReadModelsDep,
    principal: RetentionReader,
    office_id: Annotated[
        Line | None,
        Query(max_length=60, description="The office; omitted: yours (or all, for roles of all)."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    on: OnDay = None,
) -> RetentionDuePublic:
    """Case files whose retention period has run out and that are not erased yet (on
    `on`, default today in the office's time zone)."""
    office = office_id or principal.office_id
    offices: list[str] | None
    if office is None:
        if not may_in_office(principal, Permission.RETENTION_READ, "*"):
            raise HttpProblem(403, "forbidden", "your account is not assigned to an office")
        offices = None
    else:
        if not may_in_office(principal, Permission.RETENTION_READ, office):
            raise HttpProblem(403, "forbidden", "your role does not reach this office")
        offices = [office]
    today = on or office_day(service.clock(), settings)
    try:
        items = due_files(
            read_models.views,
            load_rules(settings.retention_rules_path),
            today=today,
            office_ids=offices,
            limit=limit,
        )
    except ProjectionError:
        raise views_unavailable("the retention worklist is") from None
    payload: list[dict[str, Any]] = [
        {
            "case_id": item.case_id,
            "office_id": item.office_id,
            "reference": item.reference,
            "rule_id": item.rule_id,
            "legal_basis": item.legal_basis,
            "legal_ground": item.legal_ground,
            "runs_from": item.runs_from.isoformat(),
            "due_on": item.due_on.isoformat(),
            "days_overdue": item.days_overdue,
        }
        for item in items
    ]
    return RetentionDuePublic(
        today=today.isoformat(), items=[DueFilePublic(**entry) for entry in payload]
    )
