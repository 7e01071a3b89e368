"""The legal bases and contact topics the office works with."""

from __future__ import annotations

from fastapi import APIRouter

from adapters.http.deps import PublicCaller, ServiceDep
from adapters.http.route_helpers import PUBLIC_PROBLEMS
from adapters.http.schemas.cases import CataloguePublic, ContactTopicPublic, LegalBasisPublic
from adapters.reference.catalogue import load_catalogue

router = APIRouter(prefix="/catalogue", tags=["catalogue"])


@router.get("", responses=PUBLIC_PROBLEMS)
def get_catalogue(caller: PublicCaller, service: ServiceDep) -> CataloguePublic:
    """The legal basis codes and contact topic codes that commands accept; public."""
    catalogue = load_catalogue()
    return CataloguePublic(
        legal_bases=[
            LegalBasisPublic.model_validate(catalogue.legal_bases[code])
            for code in sorted(catalogue.legal_bases)
        ],
        topics=sorted(catalogue.topics),
        contact_topics=[
            ContactTopicPublic(
                code=topic.code,
                label_de=topic.label_de,
                label=topic.label,
                procedure_kind=topic.procedure_kind,
                legal_bases=list(topic.legal_bases),
            )
            for topic in catalogue.contact_topics.values()
        ],
    )
