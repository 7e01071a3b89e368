"""Fiktionsbescheinigungen (§81 (3), (4) AufenthG) on carrier sheets."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from adapters.http.deps import (
    CaseId,
    CaseReader,
    CaseWriter,
    CertificateNumber,
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
    recorded_response,
)
from adapters.http.schemas.cases import (
    FictionCertificateCreate,
    FictionCertificateEndCreate,
    FictionCertificateExtensionCreate,
    FictionCertificatePublic,
    RecordedPublic,
)

router = APIRouter(prefix="/cases/{case_id}/fiction-certificates", tags=["fiction certificates"])


@router.post("", status_code=status.HTTP_201_CREATED, responses=WRITE_PROBLEMS)
def issue_fiction_certificate(
    case_id: CaseId,
    body: FictionCertificateCreate,
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Issue a Fiktionsbescheinigung on a carrier sheet."""
    recorded = service.issue_fiction_certificate(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        kind=body.kind,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        carrier_sheet_number=body.carrier_sheet_number,
        procedure_number=body.procedure_number,
        order_basis=body.order_basis,
        previous_title_valid_until=body.previous_title_valid_until,
        hardship_reason=body.hardship_reason,
        at=body.at,
    )
    return created_response(
        request,
        response,
        recorded,
        route_name="get_fiction_certificate",
        number_parameter="certificate_number",
    )


@router.get("/{certificate_number}", responses=READ_PROBLEMS)
def get_fiction_certificate(
    case_id: CaseId,
    certificate_number: CertificateNumber,
    reader: CaseReader,
    response: Response,
    service: ServiceDep,
) -> FictionCertificatePublic:
    """One Fiktionsbescheinigung of the case file."""
    case = load_case(service, case_id)
    certificate = numbered(
        case.fiction_certificates,
        certificate_number,
        code="fiction-certificate-not-found",
        what="Fiktionsbescheinigung",
    )
    response.headers["ETag"] = etag(case.version)
    return FictionCertificatePublic.model_validate(certificate)


@router.post("/{certificate_number}/extensions", responses=WRITE_PROBLEMS)
def extend_fiction_certificate(
    case_id: CaseId,
    certificate_number: CertificateNumber,
    body: FictionCertificateExtensionCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """Extend a certificate; after two extensions on a sheet a new carrier sheet is due."""
    recorded = service.extend_fiction_certificate(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        certificate_number=certificate_number,
        valid_until=body.valid_until,
        new_carrier_sheet_number=body.new_carrier_sheet_number,
        at=body.at,
    )
    return recorded_response(response, recorded)


@router.post("/{certificate_number}/end", responses=WRITE_PROBLEMS)
def end_fiction_certificate(
    case_id: CaseId,
    certificate_number: CertificateNumber,
    body: FictionCertificateEndCreate,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
) -> RecordedPublic:
    """End the fiction: the application was decided or withdrawn."""
    recorded = service.end_fiction_certificate(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        certificate_number=certificate_number,
        end_reason=body.end_reason,
        at=body.at,
    )
    return recorded_response(response, recorded)
