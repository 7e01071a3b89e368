"""The pages' messages, extracted from the code and templates, and the catalogues kept
in step with them: ``python -m adapters.http.pages.message_extraction [DOMAIN ...]`` adds new
messages to every ``.po`` file (empty, to be translated) and marks vanished ones
obsolete. A test runs the same extraction and fails while a catalogue lacks a
translation its language must have.

A page module ``M`` (``booking``, ``contact`` ...) owns the messages of ``M.py`` and of
``templates/M/``; every other file of this package belongs to ``common``.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po, write_po

from adapters.http.pages.languages import FALLBACK_LANGUAGE, languages_of
from adapters.http.pages.translations import LOCALES

PAGES: Final = Path(__file__).parent
TEMPLATES: Final = PAGES / "templates"
COMMON: Final = "common"
_JINJA_OPTIONS: Final = {"extensions": "jinja2.ext.i18n", "trimmed": "false"}
_KEYWORDS: Final = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None}


def domain_of(path: Path) -> str:
    relative = path.relative_to(PAGES)
    if relative.parts[0] == "templates" and len(relative.parts) > 2:
        return relative.parts[1]
    if relative.suffix == ".py" and (TEMPLATES / relative.stem).is_dir():
        return relative.stem
    return COMMON


def _sources() -> Iterator[Path]:
    yield from sorted(PAGES.glob("*.py"))
    yield from sorted(TEMPLATES.rglob("*.j2"))


def extracted() -> dict[str, Catalog]:
    """Every domain's messages, as found in the sources now."""
    catalogues: dict[str, Catalog] = {}
    for path in _sources():
        method = "python" if path.suffix == ".py" else "jinja2.ext:babel_extract"
        options = {} if path.suffix == ".py" else _JINJA_OPTIONS
        domain = domain_of(path)
        catalogue = catalogues.setdefault(domain, Catalog(domain=domain, project="akte"))
        for line, message, comments, context in extract_from_file(
            method, str(path), keywords=_KEYWORDS, options=options
        ):
            catalogue.add(
                message,
                None,
                [(str(path.relative_to(PAGES)), line)],
                auto_comments=comments,
                context=context,
            )
    return catalogues


def catalogue_path(language: str, domain: str) -> Path:
    return LOCALES / language / "LC_MESSAGES" / f"{domain}.po"


def read_catalogue(language: str, domain: str) -> Catalog | None:
    path = catalogue_path(language, domain)
    if not path.exists():
        return None
    with path.open("rb") as po:
        return read_po(po, locale=language, domain=domain)


def update_catalogues(domains: Collection[str] = ()) -> list[Path]:
    """Bring the catalogues of ``domains`` (all: empty) in step with the sources; returns
    the files written."""
    written = []
    for domain, template in extracted().items():
        if domains and domain not in domains:
            continue
        for language in languages_of(domain):
            if language == FALLBACK_LANGUAGE:
                continue  # the message ids are English
            catalogue = read_catalogue(language, domain) or Catalog(
                locale=language, domain=domain, project="akte"
            )
            catalogue.update(template, no_fuzzy_matching=True)
            catalogue.fuzzy = False
            catalogue.revision_date = datetime.now(UTC)
            path = catalogue_path(language, domain)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("wb") as po:
                write_po(po, catalogue, width=100, omit_header=False, ignore_obsolete=True)
            written.append(path)
    return written


if __name__ == "__main__":
    # python -m adapters.http.pages.message_extraction [DOMAIN ...]
    for path in update_catalogues(sys.argv[1:]):
        sys.stdout.write(f"{path.relative_to(PAGES)}\n")
