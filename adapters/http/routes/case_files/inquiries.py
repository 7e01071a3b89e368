"""Inquiries from the civil registry (Standesamt) or the naturalisation authority."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    ExpectedVersion,
    InquiryNumber,
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
from adapters.http.schemas.cases import ActionCreate, InquiryCreate, InquiryPublic, RecordedPublic

router = APIRouter(prefix="/cases/{case_id}/inquiries", tags=["inquiries"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def receive_inquiry(
    case_id: CaseId,
    body: InquiryCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Record an inquiry about the person; allowed on a closed case file too."""
    recorded = service.receive_inquiry(
        case_id, expected_version=expected_version, by=principal.user_id, kind=body.kind, at=body.at
    )
    return created_response(
        request, response, recorded, route_name="get_inquiry", number_parameter="inquiry_number"
    )


@router.get("/{inquiry_number}", responses=READ_PROBLEMS)
def get_inquiry(
    case_id: CaseId,
    inquiry_number: InquiryNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> InquiryPublic:
    """One inquiry of the case file."""
    case = load_case(service, case_id)
    inquiry = numbered(case.inquiries, inquiry_number, code="inquiry-not-found", what="inquiry")
    response.headers["ETag"] = etag(case.version)
    return InquiryPublic.model_validate(inquiry)


@router.post("/{inquiry_number}/answer", responses=WRITE_PROBLEMS)
def answer_inquiry(
    case_id: CaseId,
    inquiry_number: InquiryNumber,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: Annotated[ActionCreate | None, Body()] = None,
) -> RecordedPublic:
    """Record that the inquiry was answered."""
    recorded = service.answer_inquiry(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        inquiry_number=inquiry_number,
        at=body.at if body else None,
    )
    return recorded_response(response, recorded)
