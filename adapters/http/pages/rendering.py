"""Templates to responses, in the visitor's language, with the pages' security headers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, tzinfo
from functools import cache
from typing import Any, Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.numbers import format_currency
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from adapters.http.pages.languages import (
    LANGUAGE_COOKIE,
    LANGUAGE_PARAMETER,
    LANGUAGES,
    Language,
    chosen_language,
)
from adapters.http.pages.translations import translations_for

SECURITY_HEADERS: Final = {
    # Everything from Akte itself: no third-party script, style, font or image.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
LANGUAGE_COOKIE_SECONDS: Final = 365 * 24 * 3600


@cache
def environment(language_code: str) -> Environment:
    """One Jinja2 environment per language: the gettext functions are the language's."""
    env = Environment(
        loader=PackageLoader("adapters.http.pages", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(  # type: ignore[attr-defined]
        translations_for(language_code), newstyle=True
    )
    language = LANGUAGES[language_code]
    env.filters["day"] = lambda value, zone=None: _day(value, language, zone)
    env.filters["moment"] = lambda value, zone=None: _moment(value, language, zone)
    env.filters["clock"] = lambda value, zone=None: _clock(value, language, zone)
    env.filters["euros"] = lambda cents: format_currency(cents / 100, "EUR", locale=language.locale)
    # Every form that writes carries a new key as its first field, made as it is rendered:
    # sent twice (a double click, a reload of the answer), it is recorded once and the
    # second sending gets the first answer (adapters/http/idempotency.py, FORM_FIELD).
    env.globals["idempotency_key"] = new_form_key
    return env


def new_form_key() -> str:
    """A key for one rendering of a form: random, so it names nobody."""
    return uuid.uuid4().hex


def _zone(zone: str | tzinfo | None) -> tzinfo:
    if zone is None:
        return ZoneInfo("Europe/Berlin")
    return ZoneInfo(zone) if isinstance(zone, str) else zone


def _day(value: date | datetime, language: Language, zone: str | tzinfo | None) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(_zone(zone)).date()
    return format_date(value, format="full", locale=language.locale)


def _moment(value: datetime, language: Language, zone: str | tzinfo | None) -> str:
    return format_datetime(value, format="medium", tzinfo=_zone(zone), locale=language.locale)


def _clock(value: datetime, language: Language, zone: str | tzinfo | None) -> str:
    return format_time(value, format="short", tzinfo=_zone(zone), locale=language.locale)


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    offered: tuple[str, ...] = tuple(LANGUAGES),
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """``template`` in the visitor's language among ``offered`` (see
    :func:`~adapters.http.pages.languages.chosen_language`); an explicit ``?lang=`` is
    remembered in a cookie."""
    language = chosen_language(request, offered)
    page = environment(language.code).get_template(template)
    html = page.render(
        {
            **(context or {}),
            "language": language,
            "languages": [LANGUAGES[code] for code in offered],
            "every_language": list(LANGUAGES.values()),
            "request_path": request.url.path,
            "switch_url": lambda code: _with_language(request, code),
        }
    )
    response = HTMLResponse(
        html, status_code=status_code, headers={**SECURITY_HEADERS, **(headers or {})}
    )
    response.headers["Content-Language"] = language.code
    explicit = request.query_params.get(LANGUAGE_PARAMETER)
    if explicit in LANGUAGES:
        response.set_cookie(
            LANGUAGE_COOKIE,
            explicit,
            max_age=LANGUAGE_COOKIE_SECONDS,
            httponly=True,
            samesite="lax",
        )
    return response


def _with_language(request: Request, code: str) -> str:
    """The same page in another language: its path and query, ``lang`` replaced."""
    query = {**request.query_params, LANGUAGE_PARAMETER: code}
    return f"{request.url.path}?{urlencode(query)}"
