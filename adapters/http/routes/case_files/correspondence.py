"""Letters from and to authorities, courts and lawyers."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    CorrespondenceNumber,
    ExpectedVersion,
    ServiceDep,
)
from adapters.http.route_helpers import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    created_response,
    etag,
    load_case,
    numbered,
)
from adapters.http.schemas.cases import CorrespondenceCreate, CorrespondencePublic, RecordedPublic

router = APIRouter(prefix="/cases/{case_id}/correspondence", tags=["correspondence"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def record_correspondence(
    case_id: CaseId,
    body: CorrespondenceCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Record a letter received or sent, with attached documents on file."""
    recorded = service.record_correspondence(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        direction=body.direction,
        counterpart_kind=body.counterpart_kind,
        counterpart_name=body.counterpart_name,
        subject=body.subject,
        attachment_numbers=body.attachment_numbers,
        at=body.at,
    )
    return created_response(
        request,
        response,
        recorded,
        route_name="get_correspondence",
        number_parameter="correspondence_number",
    )


@router.get("/{correspondence_number}", responses=READ_PROBLEMS)
def get_correspondence(
    case_id: CaseId,
    correspondence_number: CorrespondenceNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> CorrespondencePublic:
    """One letter of the case file."""
    case = load_case(service, case_id)
    letter = numbered(
        case.correspondence,
        correspondence_number,
        code="correspondence-not-found",
        what="correspondence",
    )
    response.headers["ETag"] = etag(case.version)
    return CorrespondencePublic.model_validate(letter)
