"""Dependencies and shared parameters of the routes, as ``Annotated`` aliases.

Each route takes exactly one of the access aliases (``CaseReader``, ``CaseWriter`` ...),
which authenticates the caller and enforces :mod:`adapters.http.auth.permissions`. Writes take the
acting user from it (the verified token's ``sub``), never from the body or a header.
Declare it before ``ExpectedVersion``: FastAPI resolves dependencies in parameter order,
and an unauthenticated or forbidden request must hear 401/403 before anything else.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, cast
from uuid import UUID

from fastapi import Depends, Header, Path, Request

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public, require
from adapters.http.problems import HttpProblem
from adapters.settings import Settings
from service import AkteService

# The ETags this API sends, exactly: ASCII digits without leading zeros (``\d`` would also
# take other scripts' digits, which ``int`` reads; ``"07"`` is no tag the file ever had).
_ENTITY_TAG: Final = re.compile(r'^[ \t]*"(0|[1-9][0-9]{0,17})"[ \t]*$')


# These do no blocking work, so they are coroutines and skip the thread pool.


async def get_service(request: Request) -> AkteService:
    return cast(AkteService, request.app.state.service)


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


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

PublicCaller = Annotated[Principal | None, Depends(allow_public(Permission.CATALOGUE_READ))]
CaseOpener = Annotated[Principal, Depends(require(Permission.CASE_OPEN))]
CaseReader = Annotated[Principal, Depends(require(Permission.CASE_READ))]
CaseHistoryReader = Annotated[Principal, Depends(require(Permission.CASE_HISTORY_READ))]
CaseWriter = Annotated[Principal, Depends(require(Permission.CASE_WRITE))]
ProcedureAssigner = Annotated[Principal, Depends(require(Permission.PROCEDURE_ASSIGN))]
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
