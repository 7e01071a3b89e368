"""Which language a visitor reads: an explicit choice, else the browser's, else German."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from adapters.http.pages.languages import (
    EVERY_PAGE_LANGUAGES,
    LANGUAGE_COOKIE,
    LANGUAGES,
    chosen_language,
)


def _request(query: str = "", accept: str | None = None, cookie: str | None = None) -> Request:
    headers = []
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{LANGUAGE_COOKIE}={cookie}".encode()))
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": "/",
            "query_string": query.encode(),
            "headers": headers,
        }
    )


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "de"),
        ("", "de"),
        ("fr-FR,fr;q=0.9", "de"),
        ("uk-UA,uk;q=0.9,en;q=0.5", "uk"),
        ("ar", "ar"),
        ("tr-TR", "tr"),
        ("en-GB,en;q=0.9,de;q=0.8", "en"),
        ("de;q=0.5,en;q=0.9", "en"),
        ("fr;q=1,tr;q=0.3", "tr"),
        ("en;q=0,tr", "tr"),
        ("en;q=nonsense,uk", "uk"),
    ],
)
def test_the_browser_preference_picks_an_offered_language(
    accept: str | None, expected: str
) -> None:
    assert chosen_language(_request(accept=accept)).code == expected


def test_an_explicit_choice_wins_over_the_browser_and_the_cookie() -> None:
    request = _request(query="lang=ar", accept="tr", cookie="uk")

    language = chosen_language(request)

    assert language.code == "ar"
    assert language.direction == "rtl"


def test_the_cookie_wins_over_the_browser() -> None:
    assert chosen_language(_request(accept="tr", cookie="uk")).code == "uk"


def test_a_language_the_page_lacks_falls_back_to_english() -> None:
    request = _request(query="lang=tr")

    assert chosen_language(request, EVERY_PAGE_LANGUAGES).code == "en"
    # The browser's wish for a language the page lacks: the default, German.
    assert chosen_language(_request(accept="tr"), EVERY_PAGE_LANGUAGES).code == "de"


def test_unknown_choices_are_ignored() -> None:
    assert chosen_language(_request(query="lang=xx", cookie="<script>")).code == "de"


def test_only_arabic_is_written_right_to_left() -> None:
    assert [code for code, language in LANGUAGES.items() if language.right_to_left] == ["ar"]
