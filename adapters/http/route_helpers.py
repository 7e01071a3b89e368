"""What the routes share: ETags, write responses, reading parts of a case file."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, TypeVar
from uuid import UUID

from fastapi import Request, Response

from adapters.http.problems import HttpProblem
from adapters.http.schemas.cases import ProblemPublic, RecordedPublic
from domain.case_file import CaseFile
from service import AkteService
from service_common import Recorded

T = TypeVar("T")


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


_UNAUTHENTICATED = _problem("The bearer token is missing, expired or invalid.")
_FORBIDDEN = _problem("Your roles do not grant the permission this route needs.")
_UNAVAILABLE = _problem(
    "The event store, or the identity provider's signing keys, are unavailable: "
    "`store-unavailable`, nothing was recorded; `outcome-unknown` (writes), the store failed "
    "while recording and could not tell whether it did: retry with the same Idempotency-Key."
)

PUBLIC_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _problem("A bearer token was sent but is expired or invalid (none is needed)."),
    503: _UNAVAILABLE,
}

READ_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _UNAUTHENTICATED,
    403: _FORBIDDEN,
    404: _problem("No such case file (or part of it) in the offices you may see."),
    422: _problem("A parameter is invalid; `errors` names it."),
    503: _UNAVAILABLE,
}

WRITE_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    400: _problem("If-Match is not a single ETag."),
    401: _UNAUTHENTICATED,
    403: _FORBIDDEN,
    404: _problem("No such case file in your office (or no such part of it)."),
    409: _problem("The case file's state does not allow this; nothing was recorded."),
    412: _problem("If-Match is stale: the case file has changed; nothing was recorded."),
    422: _problem("The input is invalid; `errors` names the fields; nothing was recorded."),
    428: _problem("If-Match is missing."),
    503: _UNAVAILABLE,
}

OPEN_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    status: problem
    for status, problem in WRITE_PROBLEMS.items()
    if status in (401, 403, 409, 422, 503)
}


def etag(version: int) -> str:
    return f'"{version}"'


def load_case(service: AkteService, case_id: UUID) -> CaseFile:
    return service.get_case(case_id)


def numbered(items: Sequence[T], number: int, *, code: str, what: str) -> T:
    """Parts of a case file are numbered from 1 and never removed."""
    if 1 <= number <= len(items):
        return items[number - 1]
    raise HttpProblem(404, code, f"{what} {number} does not exist on this case file")


def legal_basis_if_given(legal_basis: str | None) -> dict[str, str]:
    """Left out, the service's default legal basis applies; it is not repeated here."""
    return {} if legal_basis is None else {"legal_basis": legal_basis}


POSITION_HEADER: Final = "X-Akte-Position"
"""The log position of a write's last event: pass it as ``min_position`` to a worklist
to see the write there (read-your-writes)."""


def note_position(response: Response, position: int | None) -> None:
    """Answer the write's log position; ``None`` (a replay that recorded nothing, e.g. a
    payment report that arrived before) leaves the header out: there is nothing to wait for."""
    if position is not None:
        response.headers[POSITION_HEADER] = str(position)


def recorded_response(response: Response, recorded: Recorded[Any]) -> RecordedPublic:
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    return RecordedPublic(case_id=recorded.case_id, version=recorded.version)


def created_response(
    request: Request,
    response: Response,
    recorded: Recorded[int],
    *,
    route_name: str,
    number_parameter: str,
) -> RecordedPublic:
    """A write that created a numbered part: its number, Location and the new ETag."""
    response.headers["ETag"] = etag(recorded.version)
    response.headers[POSITION_HEADER] = str(recorded.position)
    response.headers["Location"] = str(
        request.url_for(
            route_name, case_id=str(recorded.case_id), **{number_parameter: recorded.result}
        )
    )
    return RecordedPublic(
        case_id=recorded.case_id, version=recorded.version, number=recorded.result
    )
