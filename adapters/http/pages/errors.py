"""Errors on the public pages as pages: in the visitor's language, with a way back.

The API answers every error as ``application/problem+json`` (:mod:`adapters.http.problems`),
and so do the layers in front of every route: the body size limit (``413``), the rate
limits (``429``), routing itself (``404``, ``405``), the media type and framing checks,
the store gate (``503``), the last-resort ``500``. A visitor of a public page can read
none of that. :class:`PageErrorPages`, outside all of them, turns a problem answered to a
request for a page path (one of the :class:`PageArea` prefixes, listed once in
:data:`adapters.http.pages.site.PAGE_AREAS`) into a small HTML page in the visitor's
language (:func:`~adapters.http.pages.languages.chosen_language`, among the languages of
the area's page module), with a link back to the page. The status and the problem's
headers (``Retry-After``, ``Allow``, ``Connection: close``, ``X-Request-ID`` ...) are
kept; only the body, its type and length change. A request for no route at all (a
mistyped address) whose ``Accept`` prefers HTML, as a browser's does, gets the page too.

Every other request, the whole JSON API included, gets its problem unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from babel.dates import format_timedelta
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.pages.contact import Limits, megabytes
from adapters.http.pages.languages import chosen_language, languages_of
from adapters.http.pages.rendering import render
from adapters.http.problems import PROBLEM_MEDIA_TYPE

logger = logging.getLogger("akte.http")

TEMPLATE: Final = "error.html.j2"
START_PAGE: Final = "/"
_REPLACED_HEADERS: Final = frozenset({b"content-type", b"content-length"})
_HTML_TYPES: Final = frozenset({"text/html", "application/xhtml+xml"})
_PROBLEM_TYPES: Final = frozenset({"application/json", PROBLEM_MEDIA_TYPE})


@dataclass(frozen=True)
class PageArea:
    """The paths of one service's pages: ``prefix`` and everything below it (segment by
    segment: ``/contact`` holds ``/contact/receipt/x`` but not ``/contact-form``); the
    start page's area ``/`` holds only ``/`` itself."""

    prefix: str
    module: str
    """The page module whose languages the error page offers."""
    home: str
    """Where the error page leads back to."""
    home_label: str
    """The link's text (an English message id of the ``common`` catalogue)."""
    takes_files: bool = False
    """Its forms carry files: a ``413`` states the file limits."""

    def holds(self, path: str) -> bool:
        if self.prefix == START_PAGE:
            return path == START_PAGE
        return path == self.prefix or path.startswith(self.prefix + "/")


def area_of(areas: Sequence[PageArea], path: str) -> PageArea | None:
    """The area ``path`` lies in (the longest prefix wins), or None: not a page path."""
    holding = [area for area in areas if area.holds(path)]
    return max(holding, key=lambda area: len(area.prefix), default=None)


def prefers_html(headers: Headers) -> bool:
    """Whether ``Accept`` names HTML explicitly and above JSON, as a browser's does."""
    best: dict[bool, float] = {}
    for part in headers.get("accept", "").split(",")[:30]:
        media_type, _, parameters = part.partition(";")
        media_type = media_type.strip().lower()
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if media_type in _HTML_TYPES or media_type in _PROBLEM_TYPES:
            html = media_type in _HTML_TYPES
            best[html] = max(best.get(html, 0.0), quality)
    return best.get(True, 0.0) > max(best.get(False, 0.0), 0.0)


def error_kind(status: int) -> str:
    """What the page says, by status: ``not_found``, ``too_large``, ``too_many``,
    ``unavailable``, ``failed`` (other 5xx) or ``refused`` (other 4xx)."""
    if status in (404, 410):
        return "not_found"
    if status == 413:
        return "too_large"
    if status == 429:
        return "too_many"
    if status == 503:
        return "unavailable"
    return "failed" if status >= 500 else "refused"


def _retry_after(headers: Headers) -> int | None:
    value = headers.get("retry-after", "")
    return int(value) if value.isdigit() else None


def error_page(
    scope: Scope,
    area: PageArea,
    status: int,
    problem_headers: Sequence[tuple[bytes, bytes]],
    *,
    file_limits: Limits | None = None,
) -> ASGIApp:
    """The page for a problem answered to a request in ``area``: its status and headers,
    the body a page in the visitor's language."""
    request = Request(scope)
    offered = languages_of(area.module)
    language = chosen_language(request, offered)
    headers = Headers(raw=list(problem_headers))
    kind = error_kind(status)
    seconds = _retry_after(headers)
    limits = file_limits if area.takes_files else None
    context = {
        "kind": kind,
        "area": area,
        "start_page": START_PAGE,
        # Refused before any route ran: whatever the form held was recorded nowhere.
        "not_sent": kind in ("too_large", "too_many") and scope.get("method") == "POST",
        "wait": (
            format_timedelta(timedelta(seconds=seconds), locale=language.locale)
            if seconds is not None
            else None
        ),
        "limits": limits,
        "max_file_size": megabytes(limits.max_file_bytes, language) if limits else None,
        "max_total_size": megabytes(limits.max_total_bytes, language) if limits else None,
    }
    response = render(request, TEMPLATE, context, status_code=status, offered=offered)
    present = {name for name, _value in response.raw_headers}
    response.raw_headers.extend(
        (name, value)
        for name, value in problem_headers
        if name.lower() not in _REPLACED_HEADERS and name.lower() not in present
    )
    return response


class PageErrorPages:
    """Answers the public pages' errors as pages (see the module's description).

    Add it outside every middleware that may answer a problem, so that it sees theirs.
    A problem body is short: it is held until complete and sent as it was should the
    page fail to render.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        areas: Sequence[PageArea],
        file_limits: Limits | None = None,
    ) -> None:
        self.app = app
        self.areas = tuple(areas)
        self.file_limits = file_limits
        self.browsers_area = area_of(self.areas, START_PAGE)

    def _area_for_problem(self, scope: Scope, status: int) -> PageArea | None:
        area = area_of(self.areas, scope["path"])
        if area is not None:
            return area
        # An address that matches no route at all, typed or followed in a browser.
        unrouted = "route" not in scope and "endpoint" not in scope
        if unrouted and status == 404 and prefers_html(Headers(scope=scope)):
            return self.browsers_area
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: tuple[Message, PageArea] | None = None
        body: list[bytes] = []

        async def send_as_page(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                status = message["status"]
                media_type = Headers(raw=message.get("headers", [])).get("content-type", "")
                area = None
                if status >= 400 and media_type.split(";")[0].strip() == PROBLEM_MEDIA_TYPE:
                    area = self._area_for_problem(scope, status)
                if area is None:
                    await send(message)
                else:
                    held = (message, area)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            body.append(message.get("body", b""))
            if not message.get("more_body", False):
                problem, area = held
                await self._answer(scope, receive, send, problem, area, b"".join(body))

        await self.app(scope, receive, send_as_page)

    async def _answer(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        problem: Message,
        area: PageArea,
        body: bytes,
    ) -> None:
        try:
            page = error_page(
                scope,
                area,
                problem["status"],
                problem.get("headers", []),
                file_limits=self.file_limits,
            )
        except Exception as error:  # the problem is still a true answer
            logger.error("error page for %s failed: %s", area.prefix, type(error).__qualname__)
            await send(problem)
            await send({"type": "http.response.body", "body": body})
            return
        await page(scope, receive, send)
