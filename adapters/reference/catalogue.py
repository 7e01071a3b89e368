"""The legal bases and contact topics an office works with, read from shipped data.

``reference/legal-bases.json`` and ``reference/contact-topics.json`` are copies of the
project's checked reference data; ``legal-bases-supplement.json`` adds the paragraphs the
case file needs beyond residence titles (integration course, entry consent).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
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
class ContactTopic:
    """A topic of the online contact form: which procedure it starts, on which bases."""

    code: str
    label_de: str
    label: str
    procedure_kind: str
    legal_bases: tuple[str, ...]
    """The legal bases a procedure of this topic may rest on; empty: no restriction."""


@dataclass(frozen=True)
class Catalogue:
    legal_bases: dict[str, LegalBasis]
    topics: frozenset[str]
    contact_topics: Mapping[str, ContactTopic] = field(default_factory=dict)

    def check_legal_basis(self, field: str, code: str | None) -> None:
        if code is not None and code not in self.legal_bases:
            raise InvalidValue(field, "is not a known legal basis code (see GET /catalogue)")

    def check_topic(self, field: str, code: str) -> None:
        if code not in self.topics:
            raise InvalidValue(field, "is not a known contact topic code (see GET /catalogue)")

    def procedure_kind_of(self, topic: str) -> str:
        """The kind of procedure a topic starts (the topic itself where none is listed)."""
        known = self.contact_topics.get(topic)
        return known.procedure_kind if known is not None else topic

    def check_fits_topic(self, topic: str, legal_basis: str | None) -> None:
        """A known legal basis, and one the topic's procedures may rest on."""
        self.check_legal_basis("legal_basis", legal_basis)
        known = self.contact_topics.get(topic)
        if legal_basis is None or known is None or not known.legal_bases:
            return
        if legal_basis not in known.legal_bases:
            raise InvalidValue(
                "legal_basis", f"is not a legal basis of topic {topic} (see GET /catalogue)"
            )

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


@functools.cache
def load_catalogue() -> Catalogue:
    """The shipped catalogue, read once per process (it never changes while running).

    The service holds it as its ``service_ports.Catalogue`` (the checks); what lists
    the codes and labels (``GET /catalogue``, the simulator) reads it from here."""
    bases = _read("legal-bases.json") + _read("legal-bases-supplement.json")
    topics = _read("contact-topics.json")
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
        topics=frozenset(item["code"] for item in topics),
        contact_topics={
            item["code"]: ContactTopic(
                code=item["code"],
                label_de=item["label_de"],
                label=item["label"],
                procedure_kind=item["procedure_kind"],
                legal_bases=tuple(item["legal_bases"]),
            )
            for item in topics
        },
    )
