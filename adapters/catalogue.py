"""The legal bases and contact topics an office works with, read from shipped data.

``reference/legal-bases.json`` and ``reference/contact-topics.json`` are copies of the
project's checked reference data; ``legal-bases-supplement.json`` adds the paragraphs the
case file needs beyond residence titles (integration course, entry consent).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from domain.errors import InvalidValue

_KINDS_FOR_DOCUMENT = {
    "eat": None,  # any title with "eat": true
    "duldung": {"duldung"},
    "aufenthaltsgestattung": {"aufenthaltsgestattung"},
}


@dataclass(frozen=True)
class LegalBasis:
    code: str
    paragraph: str
    title_kind: str
    label_de: str
    eat: bool


@dataclass(frozen=True)
class Catalogue:
    legal_bases: dict[str, LegalBasis]
    topics: frozenset[str]

    def check_legal_basis(self, field: str, code: str | None) -> None:
        if code is not None and code not in self.legal_bases:
            raise InvalidValue(field, "is not a known legal basis code (see GET /catalogue)")

    def check_topic(self, field: str, code: str) -> None:
        if code not in self.topics:
            raise InvalidValue(field, "is not a known contact topic code (see GET /catalogue)")

    def check_fits_residence_document(self, kind: str, code: str) -> None:
        self.check_legal_basis("legal_basis", code)
        basis = self.legal_bases[code]
        allowed_kinds = _KINDS_FOR_DOCUMENT[kind]
        fits = basis.eat if allowed_kinds is None else basis.title_kind in allowed_kinds
        if not fits:
            raise InvalidValue(
                "legal_basis", f"{basis.paragraph} does not fit a residence document of kind {kind}"
            )


def _read(name: str) -> list[dict[str, Any]]:
    text = resources.files("adapters").joinpath("reference", name).read_text(encoding="utf-8")
    data: list[dict[str, Any]] = json.loads(text)
    return data


def load_catalogue() -> Catalogue:
    bases = _read("legal-bases.json") + _read("legal-bases-supplement.json")
    return Catalogue(
        legal_bases={
            item["code"]: LegalBasis(
                code=item["code"],
                paragraph=item["paragraph"],
                title_kind=item["title_kind"],
                label_de=item["label_de"],
                eat=bool(item["eat"]),
            )
            for item in bases
        },
        topics=frozenset(item["code"] for item in _read("contact-topics.json")),
    )
