"""Every message of every page module is translated into the languages its pages offer.

The extraction is the one translators run (``python -m
adapters.http.pages.message_extraction``); a new message without a translation in a
language its module offers fails here, instead of showing English on a Turkish page.
"""

from __future__ import annotations

import re

import pytest

from adapters.http.pages.languages import FALLBACK_LANGUAGE, languages_of
from adapters.http.pages.message_extraction import extracted, read_catalogue
from adapters.http.pages.translations import translations_for

DOMAINS = sorted(extracted())


def _required() -> list[tuple[str, str]]:
    return [
        (domain, language)
        for domain in DOMAINS
        for language in languages_of(domain)
        if language != FALLBACK_LANGUAGE
    ]


def test_the_pages_have_messages_to_translate() -> None:
    assert "common" in DOMAINS
    assert len(extracted()["common"]) > 10


@pytest.mark.parametrize(("domain", "language"), _required())
def test_every_message_is_translated(domain: str, language: str) -> None:
    catalogue = read_catalogue(language, domain)
    assert catalogue is not None, f"no catalogue {language}/{domain}.po"

    untranslated = [
        message.id
        for message in extracted()[domain]
        if message.id
        and (
            (found := catalogue.get(message.id, message.context)) is None
            or not found.string
            or (isinstance(found.string, tuple) and not all(found.string))
            or found.fuzzy
        )
    ]

    assert untranslated == [], f"{language}/{domain}.po lacks {len(untranslated)}"


def test_message_ids_are_unique_across_modules() -> None:
    # One merged set of translations per language: a message id in two modules would
    # get one module's translation in the other's page.
    seen: dict[str, str] = {}
    clashes = []
    for domain, catalogue in extracted().items():
        for message in catalogue:
            if not message.id:
                continue
            key = message.id if isinstance(message.id, str) else message.id[0]
            if key in seen and seen[key] != domain:
                clashes.append((key, seen[key], domain))
            seen.setdefault(key, domain)
    assert clashes == []


def test_placeholders_survive_translation() -> None:
    broken = []
    for domain, language in _required():
        catalogue = read_catalogue(language, domain)
        assert catalogue is not None
        for message in catalogue:
            if not message.id or not message.string:
                continue
            ids = _texts(message.id)
            strings = _texts(message.string)
            wanted = set().union(*(_placeholders(text) for text in ids))
            for text in strings:
                if _placeholders(text) - wanted or wanted - _placeholders(text) - {"num"}:
                    broken.append((language, domain, ids[0]))
    assert broken == []


def _texts(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    assert isinstance(value, tuple | list)
    return tuple(str(text) for text in value)


def _placeholders(text: str) -> set[str]:
    return set(re.findall(r"%\((\w+)\)s", text))


def test_the_catalogues_compile_into_the_language_of_the_page() -> None:
    assert translations_for("de").gettext("Book an appointment") == "Termin buchen"
    assert translations_for("en").gettext("Book an appointment") == "Book an appointment"
