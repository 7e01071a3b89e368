"""Which language a visitor reads: an explicit choice (``?lang=``, kept in a cookie),
else the browser's ``Accept-Language``, else German.

Every page exists in German and English. The booking, status and contact pages also
exist in Ukrainian, Arabic (right to left) and Turkish, the languages of many of the
office's customers; a page without a catalogue for the chosen language is shown in
English, and its language switch says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from babel import Locale, negotiate_locale
from starlette.requests import Request

LANGUAGE_COOKIE: Final = "akte_language"
LANGUAGE_PARAMETER: Final = "lang"
DEFAULT_LANGUAGE: Final = "de"
FALLBACK_LANGUAGE: Final = "en"
"""The language of the message ids: what a page shows where no translation exists."""


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    """The language's own name for itself, as the switch shows it."""
    right_to_left: bool = False

    @property
    def direction(self) -> str:
        return "rtl" if self.right_to_left else "ltr"

    @property
    def locale(self) -> Locale:
        return Locale.parse(self.code)


LANGUAGES: Final = {
    language.code: language
    for language in (
        Language("de", "Deutsch"),
        Language("en", "English"),
        Language("uk", "Українська"),
        Language("ar", "العربية", right_to_left=True),
        Language("tr", "Türkçe"),
    )
}
EVERY_PAGE_LANGUAGES: Final = ("de", "en")
"""Languages every page and mail is written in."""
EVERY_LANGUAGE: Final = tuple(LANGUAGES)
PAGE_LANGUAGES: Final = {
    "common": EVERY_LANGUAGE,
    "start": EVERY_LANGUAGE,
    "booking": EVERY_LANGUAGE,
    "booking_status": EVERY_LANGUAGE,
    "contact": EVERY_LANGUAGE,
}
"""The languages of each page module beyond German and English (a test checks that each
catalogue is complete for them)."""


def languages_of(module: str) -> tuple[str, ...]:
    return PAGE_LANGUAGES.get(module, EVERY_PAGE_LANGUAGES)


def chosen_language(request: Request, offered: tuple[str, ...] = EVERY_LANGUAGE) -> Language:
    """The visitor's language among ``offered``: ``?lang=``, the cookie, the browser's
    preferences, German; a choice the page does not offer falls back to English."""
    for explicit in (
        request.query_params.get(LANGUAGE_PARAMETER),
        request.cookies.get(LANGUAGE_COOKIE),
    ):
        if explicit in LANGUAGES:
            return LANGUAGES[explicit if explicit in offered else FALLBACK_LANGUAGE]
    preferred = _accepted(request.headers.get("accept-language", ""))
    negotiated = negotiate_locale(preferred, list(offered), sep="-") if preferred else None
    return LANGUAGES[negotiated or DEFAULT_LANGUAGE]


def _accepted(header: str) -> list[str]:
    """``Accept-Language`` as language codes, best first (RFC 9110 § 12.5.4)."""
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")[:20]):
        tag, _, parameters = part.strip().partition(";")
        quality = 1.0
        if parameters.strip().startswith("q="):
            try:
                quality = float(parameters.strip()[2:])
            except ValueError:
                continue
        tag = tag.strip().lower()
        if tag and tag != "*" and len(tag) <= 35 and quality > 0:
            weighted.append((-quality, position, tag))
    codes: list[str] = []
    for _, _, tag in sorted(weighted):
        for code in (tag, tag.split("-")[0]):
            if code not in codes:
                codes.append(code)
    return codes
