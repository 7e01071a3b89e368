"""Every error leaves the API as ``application/problem+json`` (RFC 9457).

The ``type`` of a problem is a stable URI built from a code: the domain error's ``code``
where there is one, otherwise a code of this module. Bodies and log lines never carry
personal data: details come from domain and service messages (which name rules and
numbers only), validation errors name fields but never echo the values sent, and an
unexpected error is logged by its type and stack frames, without its message.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.schemas.cases import FieldErrorPublic, ProblemPublic
from domain.errors import (
    BusinessTimeBeforeFact,
    BusinessTimeInFuture,
    InvalidValue,
    PartNotFound,
    RuleViolation,
)
from service_common import (
    CaseNotFound,
    ConcurrentModification,
    ReferenceNotFound,
    StoreUnavailable,
)

PROBLEM_TYPE_BASE = "https://akte.example/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
STORE_RETRY_AFTER_SECONDS = 5

logger = logging.getLogger("akte.http")

_TITLES = {
    "case-not-found": "Case file not found",
    "stale-version": "The case file has changed",
    "if-match-required": "If-Match required",
    "malformed-if-match": "Malformed If-Match",
    "unauthenticated": "Authentication required",
    "forbidden": "Forbidden",
    "identity-provider-unavailable": "Identity provider unavailable",
    "invalid-value": "Invalid value",
    "business-time-before-fact": "Business time before a recorded fact",
    "store-unavailable": "Event store unavailable",
    "internal-error": "Internal error",
}

# Pydantic puts fragments of the rejected input into these messages (a UUID's
# offending character, the JSON parser's view of the body), so they get fixed texts.
_MESSAGES_WITHOUT_INPUT = {
    "json_invalid": "the body is not valid JSON",
    "uuid_parsing": "Input should be a valid UUID",
    "date_parsing": "Input should be a valid date in the format YYYY-MM-DD",
    "date_from_datetime_parsing": "Input should be a valid date in the format YYYY-MM-DD",
    "datetime_parsing": "Input should be a valid RFC 3339 date-time with a time zone",
    "datetime_from_date_parsing": "Input should be a valid RFC 3339 date-time with a time zone",
    "datetime_object_invalid": "Input should be a valid RFC 3339 date-time with a time zone",
    "value_error": "Input is invalid",
    "assertion_error": "Input is invalid",
}


class HttpProblem(Exception):
    """A problem found by the HTTP layer itself (missing headers, absent sub-resources)."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = dict(headers or {})


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    title: str | None = None,
    errors: Sequence[FieldErrorPublic] | None = None,
    expected_version: int | None = None,
    actual_version: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    problem = ProblemPublic(
        type=PROBLEM_TYPE_BASE + code,
        title=title or _TITLES.get(code) or code.replace("-", " ").capitalize(),
        status=status,
        detail=detail,
        errors=list(errors) if errors is not None else None,
        expected_version=expected_version,
        actual_version=actual_version,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers or {}),
    )


def _route_template(scope: Mapping[str, Any]) -> str:
    """The matched route's path template: concrete paths may carry file numbers."""
    route = scope.get("route")
    return str(getattr(route, "path", "<no route>"))


def _field_name(location: Sequence[int | str], error_type: str) -> str:
    """``("body", "what", 0)`` becomes ``what.0``; the request part is dropped."""
    if error_type == "json_invalid" or len(location) < 2:
        return str(location[0]) if location else "body"
    return ".".join(str(part) for part in location[1:])


def _validation_errors(error: RequestValidationError) -> list[FieldErrorPublic]:
    # Build from loc/type/msg only: pydantic's "input" and "ctx" would echo the values sent.
    return [
        FieldErrorPublic(
            field=_field_name(item.get("loc", ()), item.get("type", "")),
            message=_MESSAGES_WITHOUT_INPUT.get(item.get("type", ""), item.get("msg", "")),
        )
        for item in error.errors()
    ]


def _http_exception_problem(error: StarletteHTTPException) -> JSONResponse:
    """Starlette's own errors (unknown route, method not allowed, unreadable body)."""
    try:
        phrase = HTTPStatus(error.status_code).phrase
    except ValueError:
        phrase = "HTTP error"
    detail = error.detail if isinstance(error.detail, str) else phrase
    return problem_response(
        error.status_code,
        phrase.lower().replace(" ", "-"),
        detail,
        title=phrase,
        headers=error.headers,
    )


async def problem_for_exception(request: Request, error: Exception) -> Response:
    """The problem response for an error the API expects; registered for each such class."""
    if isinstance(error, HttpProblem):
        return problem_response(error.status, error.code, error.detail, headers=error.headers)
    if isinstance(error, CaseNotFound | ReferenceNotFound):
        return problem_response(404, "case-not-found", str(error))
    if isinstance(error, PartNotFound):
        return problem_response(404, error.code, error.message)
    if isinstance(error, ConcurrentModification):
        return problem_response(
            412,
            "stale-version",
            str(error),
            expected_version=error.expected,
            actual_version=error.actual,
            headers={"ETag": f'"{error.actual}"'},
        )
    if isinstance(error, InvalidValue):
        message = error.message.removeprefix(f"{error.field}: ")
        # A business time before a fact (or after the clock) also names that fact.
        timed = isinstance(error, BusinessTimeBeforeFact | BusinessTimeInFuture)
        fact = getattr(error, "fact", None) if timed else None
        return problem_response(
            422,
            error.code,
            error.message,
            errors=[FieldErrorPublic(field=error.field, message=message, fact=fact)],
        )
    if isinstance(error, RuleViolation):
        return problem_response(409, error.code, error.message)
    if isinstance(error, RequestValidationError):
        errors = _validation_errors(error)
        fields = ", ".join(dict.fromkeys(item.field for item in errors))
        return problem_response(
            422, "invalid-value", f"the request has invalid fields: {fields}", errors=errors
        )
    if isinstance(error, StoreUnavailable):
        logger.warning(
            "event store unavailable during %s %s", request.method, _route_template(request.scope)
        )
        return problem_response(
            503,
            "store-unavailable",
            "the event store is unavailable; nothing was recorded, try again later",
            headers={"Retry-After": str(STORE_RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, StarletteHTTPException):
        return _http_exception_problem(error)
    raise error


class UnexpectedErrorsAsProblems:
    """Turns any error no handler expects into a bare 500 problem.

    Starlette's own last-resort handler re-raises after answering, and the server then
    logs the exception with its message, which may quote personal data; this middleware
    answers and logs the type and stack frames only.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_and_note_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_start)
        except Exception as error:
            logger.error(
                "unexpected %s during %s %s\n%s",
                type(error).__qualname__,
                scope.get("method", "?"),
                _route_template(scope),
                "".join(traceback.format_tb(error.__traceback__)),
            )
            if response_started:
                return
            response = problem_response(500, "internal-error", "the request failed unexpectedly")
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    for error_class in (
        HttpProblem,
        CaseNotFound,
        ReferenceNotFound,
        PartNotFound,
        ConcurrentModification,
        InvalidValue,
        RuleViolation,
        RequestValidationError,
        StoreUnavailable,
        StarletteHTTPException,
    ):
        app.add_exception_handler(error_class, problem_for_exception)
    app.add_middleware(UnexpectedErrorsAsProblems)
