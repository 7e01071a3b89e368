"""Residence documents: eAT (§78 AufenthG), Duldung and Aufenthaltsgestattung, and eAT cards."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    ExpectedVersion,
    ResidenceDocumentNumber,
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
    PassportTransferCreate,
    RecordedPublic,
    ResidenceDocumentCreate,
    ResidenceDocumentEndCreate,
    ResidenceDocumentExtensionCreate,
    ResidenceDocumentPublic,
)

router = APIRouter(prefix="/cases/{case_id}/residence-documents", tags=["residence documents"])

OptionalActionBody = Annotated[ActionCreate | None, Body()]


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def issue_residence_document(
    case_id: CaseId,
    body: ResidenceDocumentCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Issue an eAT, a Duldung or an Aufenthaltsgestattung on a fitting legal basis."""
    recorded = service.issue_residence_document(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        kind=body.kind,
        legal_basis=body.legal_basis,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        document_number=body.document_number,
        procedure_number=body.procedure_number,
        at=body.at,
    )
    return created_response(
        request,
        response,
        recorded,
        route_name="get_residence_document",
        number_parameter="residence_document_number",
    )


@router.get("/{residence_document_number}", responses=READ_PROBLEMS)
def get_residence_document(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> ResidenceDocumentPublic:
    """One residence document of the case file."""
    case = load_case(service, case_id)
    document = numbered(
        case.residence_documents,
        residence_document_number,
        code="residence-document-not-found",
        what="residence document",
    )
    response.headers["ETag"] = etag(case.version)
    return ResidenceDocumentPublic.model_validate(document)


@router.post("/{residence_document_number}/extensions", responses=WRITE_PROBLEMS)
def extend_residence_document(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    body: ResidenceDocumentExtensionCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Extend a current residence document to a later last day of validity."""
    recorded = service.extend_residence_document(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        residence_document_number=residence_document_number,
        valid_until=body.valid_until,
        reason=body.reason,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{residence_document_number}/card-order", responses=WRITE_PROBLEMS)
def order_eat_card(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: OptionalActionBody = None,
) -> RecordedPublic:
    """Biometrics taken: order the eAT card from the Bundesdruckerei."""
    recorded = service.order_eat_card(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        residence_document_number=residence_document_number,
        at=body.at if body else None,
    )
    return recorded_response(response, recorded)


@router.post("/{residence_document_number}/card-arrival", responses=WRITE_PROBLEMS)
def record_eat_card_arrived(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: OptionalActionBody = None,
) -> RecordedPublic:
    """The ordered eAT card has arrived at the office."""
    recorded = service.record_eat_card_arrived(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        residence_document_number=residence_document_number,
        at=body.at if body else None,
    )
    return recorded_response(response, recorded)


@router.post("/{residence_document_number}/card-handover", responses=WRITE_PROBLEMS)
def hand_over_eat_card(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: OptionalActionBody = None,
) -> RecordedPublic:
    """The arrived eAT card was handed over to the person."""
    recorded = service.hand_over_eat_card(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        residence_document_number=residence_document_number,
        at=body.at if body else None,
    )
    return recorded_response(response, recorded)


@router.post("/{residence_document_number}/passport-transfer", responses=WRITE_PROBLEMS)
def transfer_eat_to_new_passport(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    body: PassportTransferCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Übertrag: the same title on a new card for the person's new passport."""
    recorded = service.transfer_eat_to_new_passport(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        residence_document_number=residence_document_number,
        new_card_number=body.new_card_number,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{residence_document_number}/end", responses=WRITE_PROBLEMS)
def end_residence_document(
    case_id: CaseId,
    residence_document_number: ResidenceDocumentNumber,
    body: ResidenceDocumentEndCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """End a residence document: expired, revoked (with a reason), replaced or departed."""
    recorded = service.end_residence_document(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        residence_document_number=residence_document_number,
        end_reason=body.end_reason,
        reason=body.reason,
        at=body.at,
    )
    return recorded_response(response, recorded)
