"""One registration-office notice in triage: read it, resolve it.

The worklist ``GET /worklists/notice-triage`` lists the notices (§ 72 AufenthV) that no
case file could be matched to for certain, without personal data. A caseworker opens one
here (``GET /registration-notices/{notice_id}``: the person as the registration office
named them and what the notice changes; the read is recorded in the read-access log
before the answer leaves) and records it on the right case file or dismisses it
(``POST /registration-notices/{notice_id}/resolution``). The same rules and roles as
``akte inbox show`` and ``akte inbox resolve``: reading takes ``case.read``, resolving
``case.write``, both in the notice's office (a notice of another office is answered
``404`` as one that does not exist); who decides is the token's subject, never a field of
the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Response

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, may_in_office, require
from adapters.http.deps import ServiceDep
from adapters.http.problems import HttpProblem
from adapters.http.route_helpers import READ_PROBLEMS, WRITE_PROBLEMS, etag, note_position
from adapters.http.schemas.cases import ProblemPublic
from adapters.http.schemas.notices import (
    NoticeChangesPublic,
    NoticedPersonPublic,
    NoticeResolutionCreate,
    NoticeResolvedPublic,
    RegistrationNoticePublic,
)
from domain.registration_notices import RegistrationNotice
from service import AkteService
from service_notices import NoticeNotFound

NOTICE_READ: Final = Permission.CASE_READ
"""A notice in triage holds a person's data as a case file does: read like one."""
NOTICE_RESOLVE: Final = Permission.CASE_WRITE
"""Resolving records the notice on a case file (or dismisses it): a write on case files."""
READ_ENDPOINT: Final = "GET /registration-notices/{notice_id}"


def read_endpoint(notice_id: UUID) -> str:
    """The read-access log's endpoint for a read of one notice: the route with the
    notice's id in it, so that the log names the notice read (see the route)."""
    return READ_ENDPOINT.replace("{notice_id}", str(notice_id))


router = APIRouter(prefix="/registration-notices", tags=["worklists"])

NoticeId = Annotated[UUID, Path(description="The notice's id (from the notice-triage worklist).")]
ReadPermission = Annotated[Principal, Depends(require(NOTICE_READ))]
ResolvePermission = Annotated[Principal, Depends(require(NOTICE_RESOLVE))]


def _not_found(notice_id: UUID) -> HttpProblem:
    return HttpProblem(404, "notice-not-found", str(NoticeNotFound(notice_id)))


def notice_in_reach(
    service: AkteService, principal: Principal, permission: Permission, notice_id: UUID
) -> RegistrationNotice:
    """The notice, if the principal's roles grant ``permission`` in its office; else the
    same ``404`` as for a notice that does not exist."""
    try:
        notice = service.notices.get_notice(notice_id)
    except NoticeNotFound:
        raise _not_found(notice_id) from None
    if not may_in_office(principal, permission, notice.office_id):
        raise _not_found(notice_id)
    return notice


def notice_public(notice: RegistrationNotice) -> RegistrationNoticePublic:
    person, changes = notice.person, notice.changes
    return RegistrationNoticePublic(
        notice_id=notice.id,
        office_id=notice.office_id,
        notice_kind=notice.notice_kind,
        message_id=notice.message_id,
        sender=notice.sender,
        effective_on=notice.effective_on,
        person=NoticedPersonPublic(
            surname=person.surname,
            given_names=person.given_names,
            date_of_birth=person.date_of_birth,
            nationality=person.nationality,
            file_number=person.file_number,
        ),
        changes=NoticeChangesPublic(
            address=changes.address,
            surname=changes.surname,
            given_names=changes.given_names,
            nationality=changes.nationality,
        ),
        reasons=list(notice.reasons),
        candidate_case_ids=[UUID(case_id) for case_id in notice.candidate_case_ids],
        resolution=notice.resolution,
        case_id=None if notice.case_id is None else UUID(notice.case_id),
        version=notice.version,
    )


@dataclass(frozen=True)
class NoticeAccess:
    """Who acts on which notice, once the office check passed."""

    principal: Principal
    notice: RegistrationNotice


# Dependencies rather than checks in the routes: a caller of another office is refused
# before the body is looked at, as on case files (the permission's own dependency).
def _readable(notice_id: NoticeId, principal: ReadPermission, service: ServiceDep) -> NoticeAccess:
    return NoticeAccess(principal, notice_in_reach(service, principal, NOTICE_READ, notice_id))


def _resolvable(
    notice_id: NoticeId, principal: ResolvePermission, service: ServiceDep
) -> NoticeAccess:
    return NoticeAccess(principal, notice_in_reach(service, principal, NOTICE_RESOLVE, notice_id))


NoticeReader = Annotated[NoticeAccess, Depends(_readable)]
NoticeResolver = Annotated[NoticeAccess, Depends(_resolvable)]

_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {
    404: {"model": ProblemPublic, "description": "No such notice in the offices you may see."}
}


_RESOLVE_PROBLEMS: Final = {
    status: problem
    for status, problem in WRITE_PROBLEMS.items()
    if status not in (400, 412, 428)  # no If-Match: a notice is resolved once (409 after)
}


@router.get(
    "/{notice_id}",
    responses={**READ_PROBLEMS, **_NOT_FOUND},
    operation_id="get_registration_notice",
)
def get_registration_notice(
    notice_id: NoticeId, reader: NoticeReader, response: Response, service: ServiceDep
) -> RegistrationNoticePublic:
    """A notice in triage (or resolved) with the person as the registration office named
    them, the changes, the reasons and the candidate files. The read is logged."""
    notice = reader.notice
    # Recorded before the answer leaves: a read the log cannot show is not served (503).
    # An audit must tell which notice (and so whose data) was read: the log's endpoint
    # carries the notice's id, a random UUID that holds no personal data (unlike a
    # file number), and the case file it was recorded on once resolved.
    service.record_read(
        by=reader.principal.user_id,
        endpoint=read_endpoint(notice_id),
        case_id=None if notice.case_id is None else UUID(notice.case_id),
        office_id=notice.office_id,
    )
    response.headers["ETag"] = etag(notice.version)
    response.headers["Cache-Control"] = "no-store"
    return notice_public(notice)


@router.post(
    "/{notice_id}/resolution",
    responses={**_RESOLVE_PROBLEMS, **_NOT_FOUND},
    operation_id="resolve_registration_notice",
)
def resolve_registration_notice(
    notice_id: NoticeId,
    body: NoticeResolutionCreate,
    resolver: NoticeResolver,
    response: Response,
    service: ServiceDep,
) -> NoticeResolvedPublic:
    """Record the notice on a case file of its office (its changes become the file's
    master data) or dismiss it; once. The resolver is the token's subject."""
    position = service.notices.resolve_notice(
        notice_id, by=resolver.principal.user_id, resolution=body.resolution, case_id=body.case_id
    )
    note_position(response, position)
    return NoticeResolvedPublic(
        notice_id=notice_id, resolution=body.resolution, case_id=body.case_id
    )


__all__ = [
    "NOTICE_READ",
    "NOTICE_RESOLVE",
    "notice_in_reach",
    "notice_public",
    "router",
]
