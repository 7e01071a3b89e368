"""Data protection: erasure by key destruction, subject access, the retention worklist.

| method, path | who (permission) |
|---|---|
| ``POST /cases/{case_id}/erasure`` | team lead of the office with another person's approval, data protection officer (``personal_data.erase``, ``If-Match``) |
| ``GET /cases/{case_id}/subject-access`` | auditor, data protection officer (``subject_access.read``): JSON or HTML |
| ``GET /retention/due`` | team lead (own office), auditor, data protection officer (``retention.read``) |
"""  # noqa: E501

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, Field

from adapters.http.auth.identity import Principal, Role
from adapters.http.auth.permissions import Permission, may_in_office, require
from adapters.http.deps import CaseId, ExpectedVersion, ServiceDep, SettingsDep
from adapters.http.problems import HttpProblem
from adapters.http.read_model_routes import OnDay, office_day, views_unavailable
from adapters.http.route_helpers import POSITION_HEADER, READ_PROBLEMS, WRITE_PROBLEMS, etag
from adapters.http.routes.worklists import ReadModelsDep
from adapters.personal_data.retention import load_rules
from adapters.personal_data.subject_access import as_html, subject_access
from domain.erasure import ERASURE_GROUNDS
from projections.errors import ProjectionError
from projections.worklists.retention_due import due_files

Eraser = Annotated[Principal, Depends(require(Permission.PERSONAL_DATA_ERASE))]
SubjectAccessReader = Annotated[Principal, Depends(require(Permission.SUBJECT_ACCESS_READ))]
RetentionReader = Annotated[Principal, Depends(require(Permission.RETENTION_READ))]

router = APIRouter(tags=["data protection"])

LegalGround = Literal["aufenthg-91", "aufenthv-68", "dsgvo-17"]
assert set(ERASURE_GROUNDS) == set(LegalGround.__args__)  # type: ignore[attr-defined]
_RULE_ID: Final = r"^[a-z0-9][a-z0-9_-]{1,59}$"


class ErasureCreate(BaseModel):
    legal_ground: Annotated[
        LegalGround,
        Field(description="aufenthg-91 (§ 91 AufenthG), aufenthv-68 (§ 68 AufenthV) or dsgvo-17."),
    ]
    rule_id: Annotated[
        str | None,
        Field(pattern=_RULE_ID, description="The retention rule that made it due, if any."),
    ] = None
    approved_by: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=120,
            pattern=r"^[A-Za-z0-9._@-]+$",
            description="The account id of who approved the erasure. A team lead must name "
            "someone else (four eyes); a data protection officer may leave it out.",
        ),
    ] = None
    at: datetime | None = None


class ErasurePublic(BaseModel):
    """What an erasure did; the case file's new version is also the ETag."""

    case_id: str
    version: int
    erased_at: datetime
    keys_destroyed: int
    linked_erased: int
    linked_kept: Annotated[
        list[str],
        Field(description="Linked commitment declarations: they keep their own key."),
    ]
    plaintext_events: Annotated[
        int,
        Field(
            description="Events written before per-person encryption: key destruction "
            "could not erase their personal data."
        ),
    ]


@router.post("/cases/{case_id}/erasure", responses=WRITE_PROBLEMS, operation_id="erase_case_file")
def erase(
    case_id: CaseId,
    body: ErasureCreate,
    response: Response,
    service: ServiceDep,
    principal: Eraser,
    expected_version: ExpectedVersion,
) -> ErasurePublic:
    """Erase the person's data: record the erasure, then destroy the file's key."""
    approved_by = body.approved_by
    is_officer = Role.DATA_PROTECTION_OFFICER in principal.roles
    if approved_by is None:
        if not is_officer:
            raise HttpProblem(
                422, "invalid-value", "approved_by: a team lead's erasure needs an approver"
            )
        approved_by = principal.user_id
    elif approved_by == principal.user_id and not is_officer:
        raise HttpProblem(
            422, "invalid-value", "approved_by: must be another person than the team lead"
        )
    recorded = service.data_protection.erase_personal_data(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        legal_ground=body.legal_ground,
        rule_id=body.rule_id,
        approved_by=approved_by,
        at=body.at,
    )
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    erasure = recorded.result
    return ErasurePublic(
        case_id=str(case_id),
        version=recorded.version,
        erased_at=erasure.erased_at,
        keys_destroyed=len(erasure.keys_destroyed),
        linked_erased=max(0, len(erasure.keys_destroyed) - 1),
        linked_kept=erasure.linked_kept,
        plaintext_events=erasure.plaintext_events,
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
        str | None,
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
