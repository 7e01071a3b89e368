"""Integration course: entitlement (§44 AufenthG) and obligation (§44a AufenthG)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from adapters.http.deps import CaseId, CaseWriter, ExpectedVersion, ServiceDep
from adapters.http.route_helpers import WRITE_PROBLEMS, legal_basis_if_given, recorded_response
from adapters.http.schemas.cases import IntegrationCourseCreate, RecordedPublic

router = APIRouter(prefix="/cases/{case_id}/integration-course", tags=["integration course"])

OptionalIntegrationCourseBody = Annotated[IntegrationCourseCreate | None, Body()]


@router.post("/entitlements", responses=WRITE_PROBLEMS)
def issue_integration_course_entitlement(
    case_id: CaseId,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: OptionalIntegrationCourseBody = None,
) -> RecordedPublic:
    """Record the person's entitlement to an integration course."""
    body = body or IntegrationCourseCreate()
    recorded = service.issue_integration_course_entitlement(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        at=body.at,
        **legal_basis_if_given(body.legal_basis),
    )
    return recorded_response(response, recorded)


@router.post("/obligations", responses=WRITE_PROBLEMS)
def impose_integration_course_obligation(
    case_id: CaseId,
    response: Response,
    service: ServiceDep,
    principal: CaseWriter,
    expected_version: ExpectedVersion,
    body: OptionalIntegrationCourseBody = None,
) -> RecordedPublic:
    """Oblige the person to attend an integration course."""
    body = body or IntegrationCourseCreate()
    recorded = service.impose_integration_course_obligation(
        case_id,
        expected_version=expected_version,
        by=principal.user_id,
        at=body.at,
        **legal_basis_if_given(body.legal_basis),
    )
    return recorded_response(response, recorded)
