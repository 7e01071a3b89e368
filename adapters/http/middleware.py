"""Pure ASGI middlewares at the edge of the HTTP interface.

From the outside in (see :func:`add_interface_middlewares`):

* :class:`RequestIdMiddleware` gives every request an id (a sane incoming ``X-Request-ID``
  or a fresh one), answers with it and makes it available to log lines;
* :class:`AccessLogAndMetricsMiddleware` writes one access log line per request and
  records the request metrics;
* :class:`RequestBodyLimitMiddleware` answers ``413`` to bodies above a size limit;
* :class:`RequestMediaTypeMiddleware` answers ``415`` to bodies that are not JSON.

They are plain ASGI callables rather than ``BaseHTTPMiddleware`` so that request and
response bodies keep streaming and no extra task is spawned per request. Log lines and
metric labels name route templates (``/cases/{case_id}/notes``), never concrete paths,
query strings, headers or bodies, which may carry ids and personal data.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Collection, Mapping
from typing import Final, Generic, TypeVar

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.problems import problem_response
from adapters.logging_setup import REQUEST_ID

T = TypeVar("T")

REQUEST_ID_HEADER: Final = "X-Request-ID"
UNROUTED: Final = "<unrouted>"
"""The route label of requests answered before routing (unknown path, 413, 415)."""
DEFAULT_MAX_BODY_BYTES: Final = 1_048_576
JSON_ONLY: Final = frozenset({"application/json"})

_ACCEPTABLE_REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
_METHODS_WITH_BODY: Final = frozenset({"POST", "PUT", "PATCH"})
_WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Anything else is labelled OTHER: clients choose the method, and every distinct label
# value is a time series of its own.
_KNOWN_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_ENTITY_TAG: Final = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')

access_logger = logging.getLogger("akte.access")


# --------------------------------------------------------------------------- helpers


def route_template(scope: Scope) -> str:
    """The template of the route that handled the request, e.g. ``/cases/{case_id}``.

    Routing records the matched route in the scope, so this is known once the inner
    application has run. Routers must carry their prefix themselves
    (``APIRouter(prefix=...)``): FastAPI reports a route included with
    ``include_router(prefix=...)`` by its path without that prefix.
    """
    path = getattr(scope.get("route"), "path", None)
    if isinstance(path, str):
        return path
    # FastAPI records only its own routes; others (the OpenAPI document, the docs page)
    # leave just their endpoint. A path without parameters is its own template.
    if scope.get("endpoint") is not None and not scope.get("path_params"):
        return str(scope["path"])
    return UNROUTED


class PathRules(Generic[T]):
    """A value per path pattern; the most specific pattern matching a path wins.

    A pattern matches a path that starts with it, segment by segment, where a segment
    ``{name}`` matches any one segment: ``/cases/{case_id}/documents`` matches
    ``/cases/0b7…/documents/3/content`` but not ``/cases/0b7…/documents-old``.
    """

    def __init__(self, default: T, by_pattern: Mapping[str, T] | None = None) -> None:
        self.default = default
        rules = [
            (pattern.rstrip("/").count("/"), _pattern_regex(pattern), value)
            for pattern, value in (by_pattern or {}).items()
        ]
        rules.sort(key=lambda rule: rule[0], reverse=True)
        self._rules = [(regex, value) for _depth, regex, value in rules]

    def for_path(self, path: str) -> T:
        for regex, value in self._rules:
            if regex.match(path):
                return value
        return self.default


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    segments = pattern.strip("/").split("/") if pattern.strip("/") else []
    parts = [
        "[^/]+" if segment.startswith("{") and segment.endswith("}") else re.escape(segment)
        for segment in segments
    ]
    return re.compile("".join("/" + part for part in parts) + "(?:/|$)")


def _declared_content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # servers reject these; count the bytes instead


def _has_body(headers: Headers) -> bool:
    """Whether the request comes with a body (HTTP/1.1 framing: a length or chunks)."""
    length = _declared_content_length(headers)
    if length is not None:
        return length > 0
    return "transfer-encoding" in headers


def _media_type(content_type: str) -> str:
    """``application/json; charset=utf-8`` → ``application/json``."""
    return content_type.split(";", 1)[0].strip().lower()


def _version_in(entity_tag: str | None) -> int | None:
    if entity_tag is None:
        return None
    match = _ENTITY_TAG.match(entity_tag)
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- metrics


class HttpMetrics:
    """The request metrics of one application, in its own registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "akte_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "akte_http_request_duration_seconds",
            "Time from receiving a request until its response was sent.",
            ["method", "route"],
            registry=registry,
        )
        self.case_events_written = Counter(
            "akte_case_events_written",
            "Events appended to case files by writes through this process's HTTP interface "
            "(the version change each successful write reports in ETag against If-Match).",
            registry=registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        label = method if method in _KNOWN_METHODS else "OTHER"
        self.requests.labels(method=label, route=route, status=str(status)).inc()
        self.duration.labels(method=label, route=route).observe(seconds)

    def observe_write(self, request_headers: Headers, response: Message) -> None:
        """Counts the events a successful write recorded, from the versions it names.

        A command succeeds only at the version its ``If-Match`` expected, and case file
        versions count events, so the new ``ETag`` minus the ``If-Match`` is the number
        of events written (a new case file starts from version 0).
        """
        if not 200 <= response["status"] < 300:
            return
        new_version = _version_in(Headers(raw=list(response.get("headers", []))).get("etag"))
        if new_version is None:
            return
        expected_version = _version_in(request_headers.get("if-match")) or 0
        if new_version > expected_version:
            self.case_events_written.inc(new_version - expected_version)


# --------------------------------------------------------------------------- middlewares


class RequestIdMiddleware:
    """Every request gets an id: in ``X-Request-ID`` of the response, in
    ``scope["state"]["request_id"]`` (``request.state.request_id``) and on every log line
    written while the request is handled.

    An incoming ``X-Request-ID`` (from a proxy or the client) is kept if it is 1-64
    characters of ``[A-Za-z0-9._-]``; anything else could smuggle text into log lines,
    so it is replaced by a fresh id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = Headers(scope=scope).get(REQUEST_ID_HEADER)
        if incoming is not None and _ACCEPTABLE_REQUEST_ID.fullmatch(incoming):
            request_id = incoming
        else:
            request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_request_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            REQUEST_ID.reset(token)


class AccessLogAndMetricsMiddleware:
    """One INFO line on ``akte.access`` per request, plus the request metrics.

    The line carries request id, method, route template, status and duration in ms as
    fields of their own; never the concrete path, query string, headers or body.
    """

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method: str = scope["method"]
        # What the server answers if the application fails before it starts a response.
        status = 500

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if self.metrics is not None and method in _WRITE_METHODS:
                    self.metrics.observe_write(Headers(scope=scope), message)
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - started
            route = route_template(scope)
            if self.metrics is not None:
                self.metrics.observe_request(method, route, status, seconds)
            duration_ms = round(seconds * 1000, 1)
            access_logger.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                duration_ms,
                extra={
                    "request_id": scope.get("state", {}).get("request_id"),
                    "method": method,
                    "route": route,
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )


class RequestBodyTooLarge(Exception):
    """Raised into the application when a streamed request body passes the limit."""


class RequestBodyLimitMiddleware:
    """Answers ``413`` (problem ``payload-too-large``) to bodies above the limit.

    A declared ``Content-Length`` above the limit is refused before the application is
    called. Bodies without one (chunked), or longer than declared, are counted as they
    stream: the read that passes the limit raises :class:`RequestBodyTooLarge` in the
    application, whatever it answers to that is dropped and the 413 is sent instead.
    FastAPI reads a route's body before it solves dependencies, so the route's code
    does not run. Limits can differ per path pattern (uploads), see :class:`PathRules`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_body_bytes_by_path: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.limits = PathRules(max_body_bytes, max_body_bytes_by_path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_path(scope["path"])
        declared = _declared_content_length(Headers(scope=scope))
        if declared is not None and declared > limit:
            await _payload_too_large(limit)(scope, receive, send)
            return

        received = 0
        exceeded = False
        response_started = False

        async def receive_within_limit() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise RequestBodyTooLarge
            return message

        async def send_unless_exceeded(message: Message) -> None:
            nonlocal response_started
            if exceeded:
                return  # the application's answer to the aborted read
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive_within_limit, send_unless_exceeded)
        except Exception:
            if not exceeded:
                raise
            # Whatever the application raised follows from the aborted read.
        if exceeded and not response_started:
            await _payload_too_large(limit)(scope, receive, send)


def _payload_too_large(limit: int) -> ASGIApp:
    return problem_response(
        413,
        "payload-too-large",
        f"the request body is larger than {limit} bytes",
        title="Payload too large",
        # The rest of the body is not read, so the connection cannot carry another request.
        headers={"Connection": "close"},
    )


class RequestFramingMiddleware:
    """Answers ``400`` (problem ``ambiguous-framing``) and closes the connection when a
    request's body framing is ambiguous: ``Content-Length`` together with
    ``Transfer-Encoding``, ``Content-Length`` given more than once or as a list, or a
    ``Transfer-Encoding`` other than a single ``chunked``.

    A proxy in front may read such a request's end elsewhere than the server does, and
    the bytes between are then answered as a second request ("request smuggling"); RFC
    9112 6.1 says the connection must be closed after such a request. The server (h11)
    already refuses conflicting lengths and unknown codings itself, but serves a request
    with both headers by its chunks and keeps the connection open. ``Connection: close``
    on the answer makes the server close it, so the bytes after it are never read.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _framing_is_ambiguous(scope["headers"]):
            await self.app(scope, receive, send)
            return
        response = problem_response(
            400,
            "ambiguous-framing",
            "the request's length is ambiguous: send either one Content-Length or "
            "Transfer-Encoding: chunked",
            title="Ambiguous request framing",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


def _framing_is_ambiguous(raw_headers: Collection[tuple[bytes, bytes]]) -> bool:
    lengths = [value for name, value in raw_headers if name.lower() == b"content-length"]
    codings = [value for name, value in raw_headers if name.lower() == b"transfer-encoding"]
    if lengths and codings:
        return True
    if len(lengths) > 1 or any(b"," in value for value in lengths):
        return True
    return len(codings) > 1 or any(value.strip().lower() != b"chunked" for value in codings)


class RequestMediaTypeMiddleware:
    """Answers ``415`` (problem ``unsupported-media-type``) to bodies of other types.

    Applies to ``POST``, ``PUT`` and ``PATCH`` requests that have a body; parameters such
    as ``charset`` are ignored. A request without a body (some actions take none) needs
    no content type. The accepted types can differ per path pattern, e.g. multipart for
    upload routes, see :class:`PathRules`; the default is JSON only.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        accepted: Collection[str] = JSON_ONLY,
        accepted_by_path: Mapping[str, Collection[str]] | None = None,
    ) -> None:
        self.app = app
        self.accepted = PathRules(
            frozenset(accepted),
            {pattern: frozenset(types) for pattern, types in (accepted_by_path or {}).items()},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS_WITH_BODY:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if not _has_body(headers):
            await self.app(scope, receive, send)
            return
        accepted = self.accepted.for_path(scope["path"])
        content_type = headers.get("content-type")
        if content_type is not None and _media_type(content_type) in accepted:
            await self.app(scope, receive, send)
            return
        listed = ", ".join(sorted(accepted))
        response = problem_response(
            415,
            "unsupported-media-type",
            f"the request body must be sent as {listed}",
            title="Unsupported media type",
            # RFC 9110 15.5.16 / RFC 5789: tell the client what it may send.
            headers={f"Accept-{scope['method'].capitalize()}": listed},
        )
        await response(scope, receive, send)


def add_interface_middlewares(
    app: FastAPI,
    *,
    metrics: HttpMetrics | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_body_bytes_by_path: Mapping[str, int] | None = None,
    accepted_media_types: Collection[str] = JSON_ONLY,
    accepted_media_types_by_path: Mapping[str, Collection[str]] | None = None,
) -> None:
    """Adds the middlewares, outside every middleware added before.

    The order, from the outside in: request id (so that every answer, including 400,
    413, 415 and 500, carries it), access log and metrics (so that they see those
    answers too), framing (before anything reads the body), body size limit, media
    type; then whatever was added before, such as the problem handlers' middleware.
    """
    # Starlette puts the middleware added last outermost.
    app.add_middleware(
        RequestMediaTypeMiddleware,
        accepted=accepted_media_types,
        accepted_by_path=accepted_media_types_by_path,
    )
    app.add_middleware(
        RequestBodyLimitMiddleware,
        max_body_bytes=max_body_bytes,
        max_body_bytes_by_path=max_body_bytes_by_path,
    )
    app.add_middleware(RequestFramingMiddleware)
    app.add_middleware(AccessLogAndMetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)
