"""Procedures (Vorgänge): received, assigned, documents requested, decided, closed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    ExpectedVersion,
    ProcedureAssigner,
    ProcedureNumber,
    ServiceDep,
)
from adapters.http.route_helpers import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    created_response,
    etag,
    load_case,
    numbered,
    recorded_response,
)
from adapters.http.schemas.cases import (
    ActionCreate,
    AssignmentCreate,
    DecisionCreate,
    DocumentRequestCreate,
    ProcedureCreate,
    ProcedurePublic,
    RecordedPublic,
)

router = APIRouter(prefix="/cases/{case_id}/procedures", tags=["procedures"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def receive_procedure(
    case_id: CaseId,
    body: ProcedureCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Record a procedure received by contact form, appointment, mail or online application."""
    recorded = service.receive_procedure(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        channel=body.channel,
        topic=body.topic,
        legal_basis=body.legal_basis,
        at=body.at,
    )
    return created_response(
        request, response, recorded, route_name="get_procedure", number_parameter="procedure_number"
    )


@router.get("/{procedure_number}", responses=READ_PROBLEMS)
def get_procedure(
    case_id: CaseId,
    procedure_number: ProcedureNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> ProcedurePublic:
    """One procedure of the case file."""
    case = load_case(service, case_id)
    procedure = numbered(
        case.procedures, procedure_number, code="procedure-not-found", what="procedure"
    )
    response.headers["ETag"] = etag(case.version)
    return ProcedurePublic.model_validate(procedure)


@router.post("/{procedure_number}/assignment", responses=WRITE_PROBLEMS)
def assign_procedure(
    case_id: CaseId,
    procedure_number: ProcedureNumber,
    body: AssignmentCreate,
    response: Response,
    service: ServiceDep,
    assigner: ProcedureAssigner,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Assign or re-assign an open procedure to a caseworker; team leads only."""
    recorded = service.assign_procedure(
        case_id,
        expected_version=expected_version,
        by=assigner.user_id,
        procedure_number=procedure_number,
        assignee=body.assignee,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{procedure_number}/document-requests", responses=WRITE_PROBLEMS)
def request_documents(
    case_id: CaseId,
    procedure_number: ProcedureNumber,
    body: DocumentRequestCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Ask the person for documents by a due date."""
    recorded = service.request_documents(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        procedure_number=procedure_number,
        what=body.what,
        due_on=body.due_on,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{procedure_number}/decision", responses=WRITE_PROBLEMS)
def decide_procedure(
    case_id: CaseId,
    procedure_number: ProcedureNumber,
    body: DecisionCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Decide an open procedure: granted, refused (with a reason) or withdrawn."""
    recorded = service.decide_procedure(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        procedure_number=procedure_number,
        outcome=body.outcome,
        legal_basis=body.legal_basis,
        reason=body.reason,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{procedure_number}/closure", responses=WRITE_PROBLEMS)
def close_procedure(
    case_id: CaseId,
    procedure_number: ProcedureNumber,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: Annotated[ActionCreate | None, Body()] = None,
) -> RecordedPublic:
    """Close a decided procedure."""
    recorded = service.close_procedure(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        procedure_number=procedure_number,
        at=body.at if body else None,
    )
    return recorded_response(response, recorded)
