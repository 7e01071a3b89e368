"""Request and response bodies of erasure: the four-eyes request, its approval, and what
an erasure did. The approver is never a body field: it is whoever's token approves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas.cases import BusinessTime
from adapters.http.schemas.lawful import LawfulRequest
from domain.erasure import ERASURE_GROUNDS

LegalGround = Literal["aufenthg-91", "aufenthv-68", "dsgvo-17"]
assert set(ERASURE_GROUNDS) == set(LegalGround.__args__)  # type: ignore[attr-defined]
RULE_ID: Final = r"^[a-z0-9][a-z0-9_-]{1,59}$"

LegalGroundField = Annotated[
    LegalGround,
    Field(description="aufenthg-91 (§ 91 AufenthG), aufenthv-68 (§ 68 AufenthV) or dsgvo-17."),
]
RuleIdField = Annotated[
    str | None,
    Field(pattern=RULE_ID, description="The retention rule that made it due, if any."),
]


class ErasureRequestCreate(LawfulRequest):
    """Ask for an erasure; a second person approves it with their own token."""

    model_config = ConfigDict(extra="forbid")

    legal_ground: LegalGroundField
    rule_id: RuleIdField = None
    at: BusinessTime = None


class ErasureDecision(LawfulRequest):
    """An approval or a withdrawal: who decides is the token's subject."""

    model_config = ConfigDict(extra="forbid")

    at: BusinessTime = None


class LegacyErasureCreate(BaseModel):
    """The body of the retired ``POST /cases/{case_id}/erasure``: it now makes an erasure
    request, and refuses ``approved_by``."""

    legal_ground: LegalGroundField
    rule_id: RuleIdField = None
    approved_by: Annotated[
        str | None,
        Field(
            max_length=120,
            description="No longer accepted (422): the approver approves the request with "
            "their own token at POST /cases/{case_id}/erasure-requests/{number}/approval.",
            json_schema_extra={"deprecated": True},
        ),
    ] = None
    at: BusinessTime = None


class ErasureRequestEventPublic(BaseModel):
    """One event of a request: requested, approved or withdrawn; who and when."""

    kind: Literal["Requested", "Approved", "Withdrawn"]
    by: str
    at: datetime
    recorded_at: datetime
    version: Annotated[int, Field(description="The request's version after this event.")]


class ErasureRequestPublic(BaseModel):
    case_id: str
    office_id: str
    number: Annotated[int, Field(description="The request's number on the case file, from 1.")]
    status: Literal["pending", "approved", "withdrawn"]
    legal_ground: str
    rule_id: str | None
    case_version: Annotated[int, Field(description="The file's version the requester saw.")]
    requested_by: str
    requested_at: datetime
    decided_by: Annotated[
        str | None, Field(description="Who approved or withdrew it; null while pending.")
    ]
    decided_at: datetime | None
    history: list[ErasureRequestEventPublic]


class ErasureRequestListPublic(BaseModel):
    items: list[ErasureRequestPublic]


class ErasurePublic(BaseModel):
    """What an erasure did; the case file's new version is also the ETag."""

    case_id: str
    version: int
    erased_at: datetime
    keys_destroyed: int
    linked_erased: int
    linked_kept: Annotated[
        list[str],
        Field(description="Linked commitment declarations: they keep their own key."),
    ]
    plaintext_events: Annotated[
        int,
        Field(
            description="Events written before per-person encryption: key destruction "
            "could not erase their personal data."
        ),
    ]


class ErasureApprovalPublic(ErasurePublic):
    """The approved request and the erasure it carried out."""

    request: ErasureRequestPublic
