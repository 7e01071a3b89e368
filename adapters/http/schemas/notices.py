"""Request and response bodies of the registration-office notices in triage
(:mod:`adapters.http.routes.registration_notices`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas.lawful import LawfulRequest


class NoticeResolutionCreate(LawfulRequest):
    """Record the notice on a case file of its office, or dismiss it. Who decides is the
    token's subject; there is no field for it."""

    model_config = ConfigDict(extra="forbid")

    resolution: Annotated[
        Literal["recorded_on_case_file", "dismissed"],
        Field(description="`recorded_on_case_file` (with `case_id`) or `dismissed`."),
    ]
    case_id: Annotated[
        UUID | None,
        Field(description="The case file to record the notice on; only with recording."),
    ] = None


class NoticedPersonPublic(BaseModel):
    """The person as the registration office named them (before any change)."""

    surname: str
    given_names: str
    date_of_birth: date
    nationality: str | None
    file_number: str | None


class NoticeChangesPublic(BaseModel):
    """What the notice changes; ``null``: unchanged."""

    address: str | None
    surname: str | None
    given_names: str | None
    nationality: str | None


class RegistrationNoticePublic(BaseModel):
    """A registration-office notice (§ 72 AufenthV) that went to triage, with its personal
    data: reading it is recorded in the read-access log."""

    notice_id: UUID
    office_id: str
    notice_kind: str
    message_id: str
    sender: str
    effective_on: date
    person: NoticedPersonPublic
    changes: NoticeChangesPublic
    reasons: list[str]
    candidate_case_ids: list[UUID]
    resolution: str | None
    case_id: UUID | None
    version: int


class NoticeResolvedPublic(BaseModel):
    notice_id: UUID
    resolution: str
    case_id: UUID | None


__all__ = [
    "NoticeChangesPublic",
    "NoticeResolutionCreate",
    "NoticeResolvedPublic",
    "NoticedPersonPublic",
    "RegistrationNoticePublic",
]
