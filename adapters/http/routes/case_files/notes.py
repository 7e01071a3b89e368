"""Free-text notes on a case file."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    ExpectedVersion,
    NoteNumber,
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
from adapters.http.schemas.cases import NoteCreate, NotePublic, RecordedPublic

router = APIRouter(prefix="/cases/{case_id}/notes", tags=["notes"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def add_note(
    case_id: CaseId,
    body: NoteCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Add a note; allowed on a closed case file too."""
    recorded = service.add_note(
        case_id, expected_version=expected_version, by=principal.user_id, text=body.text, at=body.at
    )
    return created_response(
        request, response, recorded, route_name="get_note", number_parameter="note_number"
    )


@router.get("/{note_number}", responses=READ_PROBLEMS)
def get_note(
    case_id: CaseId,
    note_number: NoteNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> NotePublic:
    """One note of the case file."""
    case = load_case(service, case_id)
    note = numbered(case.notes, note_number, code="note-not-found", what="note")
    response.headers["ETag"] = etag(case.version)
    return NotePublic.model_validate(note)
