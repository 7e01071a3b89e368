"""Entry procedures: pre-approval of a visa (Vorabzustimmung, §31 AufenthV, §81a AufenthG)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    EntryProcedureNumber,
    ExpectedVersion,
    ServiceDep,
)
from adapters.http.route_helpers import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    created_response,
    etag,
    legal_basis_if_given,
    load_case,
    numbered,
    recorded_response,
)
from adapters.http.schemas.cases import (
    EntryConsentCreate,
    EntryProcedureCreate,
    EntryProcedurePublic,
    EntryRefusalCreate,
    RecordedPublic,
)

router = APIRouter(prefix="/cases/{case_id}/entry-procedures", tags=["entry procedures"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def request_entry_consent(
    case_id: CaseId,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: Annotated[EntryProcedureCreate | None, Body()] = None,
) -> RecordedPublic:
    """Record a request for pre-approval of a visa; returns the entry procedure's number."""
    body = body or EntryProcedureCreate()
    recorded = service.request_entry_consent(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        at=body.at,
        **legal_basis_if_given(body.legal_basis),
    )
    return created_response(
        request,
        response,
        recorded,
        route_name="get_entry_procedure",
        number_parameter="entry_procedure_number",
    )


@router.get("/{entry_procedure_number}", responses=READ_PROBLEMS)
def get_entry_procedure(
    case_id: CaseId,
    entry_procedure_number: EntryProcedureNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> EntryProcedurePublic:
    """One entry procedure of the case file."""
    case = load_case(service, case_id)
    procedure = numbered(
        case.entry_procedures,
        entry_procedure_number,
        code="entry-procedure-not-found",
        what="entry procedure",
    )
    response.headers["ETag"] = etag(case.version)
    return EntryProcedurePublic.model_validate(procedure)


@router.post("/{entry_procedure_number}/consent", responses=WRITE_PROBLEMS)
def give_entry_consent(
    case_id: CaseId,
    entry_procedure_number: EntryProcedureNumber,
    body: EntryConsentCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Give the pre-approval, valid until the given day."""
    recorded = service.give_entry_consent(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        entry_procedure_number=entry_procedure_number,
        valid_until=body.valid_until,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{entry_procedure_number}/refusal", responses=WRITE_PROBLEMS)
def refuse_entry_consent(
    case_id: CaseId,
    entry_procedure_number: EntryProcedureNumber,
    body: EntryRefusalCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Refuse the pre-approval, giving the reason."""
    recorded = service.refuse_entry_consent(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        entry_procedure_number=entry_procedure_number,
        reason=body.reason,
        at=body.at,
    )
    return recorded_response(response, recorded)
