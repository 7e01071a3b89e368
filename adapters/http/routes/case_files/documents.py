"""Documents on file; their bytes live in the document store, addressed by sha256."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    DocumentNumberInCase,
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
from adapters.http.schemas.cases import DocumentCreate, DocumentPublic, RecordedPublic

router = APIRouter(prefix="/cases/{case_id}/documents", tags=["documents"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def attach_document(
    case_id: CaseId,
    body: DocumentCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Attach a document to the case file; returns its number."""
    recorded = service.attach_document(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        kind=body.kind,
        sha256=body.sha256,
        size_bytes=body.size_bytes,
        media_type=body.media_type,
        page_count=body.page_count,
        source=body.source,
        at=body.at,
    )
    return created_response(
        request, response, recorded, route_name="get_document", number_parameter="document_number"
    )


@router.get("/{document_number}", responses=READ_PROBLEMS)
def get_document(
    case_id: CaseId,
    document_number: DocumentNumberInCase,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> DocumentPublic:
    """One document on file."""
    case = load_case(service, case_id)
    document = numbered(case.documents, document_number, code="document-not-found", what="document")
    response.headers["ETag"] = etag(case.version)
    return DocumentPublic.model_validate(document)
