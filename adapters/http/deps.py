"""Dependencies and shared parameters of the routes, as ``Annotated`` aliases.

The acting user comes from the ``X-Akte-User`` header for now. This is TEMPORARY, until
authentication arrives in its own issue; the header is trusted as is.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, cast
from uuid import UUID

from fastapi import Depends, Header, Path, Request

from adapters.http.problems import HttpProblem
from adapters.http.schemas import MAX_USER_ID
from adapters.settings import Settings
from service import AkteService

_ENTITY_TAG: Final = re.compile(r'^\s*"(\d{1,18})"\s*$')


# These do no blocking work, so they are coroutines and skip the thread pool.


async def get_service(request: Request) -> AkteService:
    return cast(AkteService, request.app.state.service)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def acting_user(
    x_akte_user: Annotated[
        str | None,
        Header(
            description=(
                "TEMPORARY until authentication arrives: the acting user's id "
                "(a pseudonymous account id, never a name). Required on writes."
            ),
        ),
    ] = None,
) -> str:
    # Declared optional so that a missing header is a 401, not a validation error.
    user = (x_akte_user or "").strip()
    if not user:
        raise HttpProblem(
            401,
            "unauthenticated",
            "writes need the acting user's id in the X-Akte-User header",
            headers={"WWW-Authenticate": 'X-Akte-User realm="akte"'},
        )
    if len(user) > MAX_USER_ID:
        raise HttpProblem(
            401,
            "unauthenticated",
            f"the X-Akte-User header must be a user id of at most {MAX_USER_ID} characters",
            headers={"WWW-Authenticate": 'X-Akte-User realm="akte"'},
        )
    return user


async def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            description='The case file\'s ETag as last read, e.g. `"7"`. Required on writes.',
        ),
    ] = None,
) -> int:
    if if_match is None:
        raise HttpProblem(
            428,
            "if-match-required",
            'writes need an If-Match header with the case file\'s ETag, e.g. If-Match: "7"',
        )
    match = _ENTITY_TAG.match(if_match)
    if match is None:
        raise HttpProblem(
            400,
            "malformed-if-match",
            'If-Match must be exactly one ETag of the case file, e.g. If-Match: "7"',
        )
    return int(match.group(1))


ServiceDep = Annotated[AkteService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ActingUser = Annotated[str, Depends(acting_user)]
ExpectedVersion = Annotated[int, Depends(expected_version)]

CaseId = Annotated[UUID, Path(description="The case file's id.")]
DocumentNumberInCase = Annotated[int, Path(ge=1, description="The document's number.")]
ProcedureNumber = Annotated[int, Path(ge=1, description="The procedure's number.")]
ResidenceDocumentNumber = Annotated[
    int, Path(ge=1, description="The residence document's number in the case file.")
]
CertificateNumber = Annotated[int, Path(ge=1, description="The certificate's number.")]
EntryProcedureNumber = Annotated[int, Path(ge=1, description="The entry procedure's number.")]
InquiryNumber = Annotated[int, Path(ge=1, description="The inquiry's number.")]
CorrespondenceNumber = Annotated[int, Path(ge=1, description="The letter's number.")]
NoteNumber = Annotated[int, Path(ge=1, description="The note's number.")]
