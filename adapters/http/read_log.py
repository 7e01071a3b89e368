"""The read-access log at the HTTP edge: every answered read of a case file is recorded.

Each ``GET`` of a route on one case file (``/cases/{case_id}`` and everything below it:
state, as-of, history, diff, events, parts, document content), the lookup by file
number, and each read of the access log itself (``/audit/reads``) is recorded as a
:class:`domain.read_access.ReadAccess` event once the route has produced a successful
answer and *before* that answer leaves: who (the verified token's subject), when, which
case file, which route template. A read that cannot be recorded is not served (``503``):
nobody sees personal data the log does not show; a value of the request the log refuses
(an office id with control characters) answers ``422``. Refused and failed reads (401, 403,
404 ...) show nothing and are not recorded.

One rule for a whole subtree rather than a call in each route, so that a route added
under ``/cases/{case_id}`` later is logged without anyone remembering to.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, cast
from uuid import UUID

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import CaseOffices
from adapters.http.middleware import route_template
from adapters.http.problems import STORE_RETRY_AFTER_SECONDS, problem_response
from adapters.http.schemas.cases import FieldErrorPublic
from domain.errors import InvalidValue
from service import AkteService

logger = logging.getLogger("akte.read_log")

CASE_ROUTES: Final = "/cases/{case_id}"
"""This route and every route below it read one case file."""
OTHER_LOGGED_ROUTES: Final = frozenset({"/cases/by-reference/{reference:path}", "/audit/reads"})
READ_METHODS: Final = frozenset({"GET", "HEAD"})

# What routes tell the log when the case file or office is not in the path.
READ_CASE_ID: Final = "read_case_id"
READ_OFFICE_ID: Final = "read_office_id"


def is_logged(method: str, template: str) -> bool:
    """Whether a successful request to this route is a read the log records."""
    if method not in READ_METHODS:
        return False
    return (
        template == CASE_ROUTES
        or template.startswith(CASE_ROUTES + "/")
        or template in OTHER_LOGGED_ROUTES
    )


def note_read(state: Any, *, case_id: UUID | None, office_id: str | None) -> None:
    """For routes without ``{case_id}`` in their path: what the answer is about."""
    setattr(state, READ_CASE_ID, case_id)
    setattr(state, READ_OFFICE_ID, office_id)


@dataclass(frozen=True)
class _Read:
    by: str
    endpoint: str
    case_id: UUID | None
    office_id: str | None
    office_known: bool
    """The route named the office (maybe none); else it is the case file's."""


def _read_of(scope: Scope) -> _Read | None:
    template = route_template(scope)
    method = str(scope["method"])
    if not is_logged(method, template):
        return None
    state: Mapping[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    if not isinstance(principal, Principal):
        return None  # public routes are never logged ones; nothing to name
    case_id = state.get(READ_CASE_ID)
    if case_id is None:
        raw = (scope.get("path_params") or {}).get("case_id")
        try:
            case_id = None if raw is None else UUID(str(raw))
        except ValueError:
            return None  # a malformed id answers 422, never 2xx
    # HEAD is answered by the GET route: the log names the route, not the method.
    return _Read(
        principal.user_id,
        f"GET {template}",
        case_id,
        state.get(READ_OFFICE_ID),
        office_known=READ_OFFICE_ID in state,
    )


class ReadAccessLogMiddleware:
    """Records each logged read before its answer is sent (see the module docstring)."""

    def __init__(self, app: ASGIApp, *, service: AkteService, case_offices: CaseOffices) -> None:
        self.app = app
        self.service = service
        self.case_offices = case_offices

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in READ_METHODS:
            await self.app(scope, receive, send)
            return
        withheld = False

        async def send_once_logged(message: Message) -> None:
            nonlocal withheld
            if withheld:
                return  # the body of an answer replaced by the 503 below
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                read = _read_of(scope)
                if read is not None:
                    try:
                        await run_in_threadpool(self._record, read)
                    except InvalidValue as error:
                        # A value of the request (an office id from the query) the log
                        # refuses: the request's fault, not the store's, and no retry helps.
                        withheld = True
                        refused = problem_response(
                            422,
                            error.code,
                            error.message,
                            errors=[
                                FieldErrorPublic(
                                    field=error.field,
                                    message=error.message.removeprefix(f"{error.field}: "),
                                )
                            ],
                        )
                        await refused(scope, _no_body, send)
                        return
                    except Exception as error:
                        withheld = True
                        # The type only: a database error's message may quote values.
                        logger.warning(
                            "a read of %s could not be logged (%s); it was not served",
                            read.endpoint,
                            type(error).__qualname__,
                        )
                        unavailable = problem_response(
                            503,
                            "store-unavailable",
                            "the read could not be recorded in the access log; try again later",
                            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
                        )
                        await unavailable(scope, _no_body, send)
                        return
            await send(message)

        await self.app(scope, receive, send_once_logged)

    def _record(self, read: _Read) -> None:
        office_id = read.office_id
        # A read about one case file is the file's office's, also where the route named
        # no office (an auditor's search of all offices by case): an audit of that
        # office must find it.
        if read.case_id is not None and (not read.office_known or office_id is None):
            office_id = self.case_offices.office_of(read.case_id)
        self.service.record_read(
            by=read.by, endpoint=read.endpoint, case_id=read.case_id, office_id=office_id
        )


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


def install_read_access_log(app: FastAPI) -> None:
    """Log reads of case files; call after the routers, before the interface middlewares."""
    app.add_middleware(
        cast(Any, ReadAccessLogMiddleware),
        service=app.state.service,
        case_offices=app.state.case_offices,
    )
