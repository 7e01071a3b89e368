"""The pages' gettext catalogues, read from the ``.po`` files at start.

One catalogue per page module and language (``locales/<language>/LC_MESSAGES/<module>.po``,
edited with Babel's tools, see docs/development/translations.md). They are compiled in
memory when the app starts, so there is no build step and no binary file in the
repository. Message ids are English; a message without a translation shows its id.
"""

from __future__ import annotations

from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Final

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES: Final = Path(__file__).parent / "locales"


def catalogue_files(language: str) -> list[Path]:
    return sorted((LOCALES / language / "LC_MESSAGES").glob("*.po"))


@cache
def translations_for(language: str) -> NullTranslations:
    """Every page module's messages in ``language``, merged into one set of
    translations (message ids are unique across modules: a test checks it)."""
    merged: Translations | None = None
    for path in catalogue_files(language):
        with path.open("rb") as po:
            catalogue = read_po(po, locale=language, domain=path.stem)
        compiled = BytesIO()
        # Fuzzy entries are drafts, not translations: a page shows the English id instead.
        write_mo(compiled, catalogue, use_fuzzy=False)
        compiled.seek(0)
        translations = Translations(compiled, domain="akte")
        if merged is None:
            merged = translations
        else:
            merged.merge(translations)
    return merged if merged is not None else NullTranslations()
