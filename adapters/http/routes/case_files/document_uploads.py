"""Uploading a document to a case file, and reading a document's content.

Letters from authorities, courts and lawyers arrive with attachments: a caseworker uploads
each attachment here (it is stored, then attached to the case file in one command), then
records the letter with ``POST /cases/{case_id}/correspondence`` naming the attachments'
document numbers.
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from pydantic import AwareDatetime

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    DocumentNumberInCase,
    ExpectedVersion,
    ServiceDep,
    SettingsDep,
)
from adapters.http.route_helpers import (
    READ_PROBLEMS,
    WRITE_PROBLEMS,
    created_response,
    etag,
    load_case,
    numbered,
)
from adapters.http.schemas.cases import MAX_CODE, RecordedPublic
from adapters.http.uploads import (
    CONTENT_RESPONSES,
    UPLOAD_PROBLEMS,
    incoming_upload,
    verified_content,
)

UPLOAD_PATH: Final = "/cases/{case_id}/uploads"

router = APIRouter(prefix="/cases/{case_id}", tags=["documents"])

UploadSource = Literal["mail", "caseworker", "scan"]
"""Where a caseworker's upload came from; ``contact_form`` is the form's alone."""


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    responses={**WRITE_PROBLEMS, **UPLOAD_PROBLEMS},
)
def upload_document(
    case_id: CaseId,
    request: Request,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    file: Annotated[UploadFile, File(description="A PDF, JPEG or PNG; judged by its bytes.")],
    kind: Annotated[
        str,
        Form(
            max_length=MAX_CODE,
            description="The document kind, e.g. `court-decision`, `lawyer-letter`.",
        ),
    ],
    source: Annotated[UploadSource, Form(description="Where the document came from.")] = "mail",
    at: Annotated[
        AwareDatetime | None,
        Form(description="When it arrived at the office (with time zone). Omitted: now."),
    ] = None,
) -> RecordedPublic:
    """Store a document and attach it to the case file; returns its number.

    For a letter's attachments: upload each, then record the letter
    (`POST /cases/{case_id}/correspondence`) with their numbers as `attachment_numbers`.
    A refused upload stores nothing and records nothing.
    """
    incoming = incoming_upload(file, "file", max_bytes=settings.upload_max_file_bytes, kind=kind)
    recorded = service.intake.upload_document(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        document=incoming,
        source=source,
        at=at,
    )
    return created_response(
        request, response, recorded, route_name="get_document", number_parameter="document_number"
    )


@router.get(
    "/documents/{document_number}/content",
    response_class=Response,
    responses={**READ_PROBLEMS, **CONTENT_RESPONSES},
)
def get_document_content(
    case_id: CaseId,
    document_number: DocumentNumberInCase,
    reader: CaseReader,
    service: ServiceDep,
) -> Response:
    """The document's bytes, verified against the hash and size recorded when attached."""
    case = load_case(service, case_id)
    document = numbered(case.documents, document_number, code="document-not-found", what="document")
    return verified_content(
        service.intake.documents,
        sha256=document.sha256,
        size_bytes=document.size_bytes,
        owner=case_id,
        media_type=document.media_type,
        download_name=f"document-{document_number}",
        headers={"ETag": etag(case.version)},
    )
