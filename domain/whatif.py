"""What-if policies: how long papers would have been valid under another rule.

A council asks whether issuing some papers for longer would relieve the office. Akte
answers by replaying the real history under the other rule (``adapters/views/whatif_replay.py`` runs
the replay, ``projections/figures/whatif.py`` keeps its scratch read model and counts). This
module is the rule itself, pure: no I/O, no clock.

A policy says, for a document as it was really issued (:class:`IssuedDocument`), whether
it applies and until when the document would have been valid under it
(:meth:`ValidityPolicy.valid_until`). Everything else is the same for every policy and
lives in :func:`extension_saved`:

* a policy never shortens a document: the validity under it is the later of the real
  one and the policy's;
* an extension is saved when the validity under the policy already covers what the
  extension was for: the date the extension extended to, or, if the document ended
  (a decision, a withdrawal, a departure) before that, the day it ended. Extensions run
  on as they really did: an extension the longer validity does not cover still happens.

A second policy is a few lines: a frozen dataclass with ``key``, ``label``,
``applies_to``, ``valid_until`` and ``assumptions``, see :class:`OrdinanceExtension`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final, Literal, Protocol

DocumentFamily = Literal["fiction_certificate", "residence_document"]

FICTION_CERTIFICATE: Final = "fiction_certificate"
RESIDENCE_DOCUMENT: Final = "residence_document"
MAX_MONTHS: Final = 120


@dataclass(frozen=True)
class IssuedDocument:
    """A paper as it was really issued (no personal data: no document number)."""

    family: DocumentFamily
    kind: str
    """Fiktionsbescheinigung: the §81 paragraph (``81_4``); residence document: ``eat``,
    ``duldung`` or ``aufenthaltsgestattung``."""
    legal_basis: str
    """Residence documents: their legal basis (``aufenthg-24``); certificates: empty."""
    valid_from: date
    valid_until: date
    """The last valid day as issued."""


class ValidityPolicy(Protocol):
    """Another rule for how long papers are issued (see the module docstring)."""

    @property
    def key(self) -> str:
        """The policy's name in URLs and on the command line, e.g. ``fiction-validity``."""
        ...

    @property
    def label(self) -> str:
        """German, for the report's title."""
        ...

    def parameters(self) -> dict[str, str]:
        """The policy's settings, as text (for the result and its formats)."""
        ...

    def applies_to(self, document: IssuedDocument) -> bool: ...

    def valid_until(self, document: IssuedDocument) -> date:
        """The last valid day under the policy (may be earlier than the real one: the
        real one then stands, see :func:`validity_under`)."""
        ...

    def assumptions(self) -> tuple[str, ...]:
        """German sentences on what the policy assumes, printed next to the figures."""
        ...


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day where it is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    for last in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable: every month has 28 days")


def valid_for_months(valid_from: date, months: int) -> date:
    """The last valid day of a paper valid for ``months`` from ``valid_from``."""
    return add_months(valid_from, months) - timedelta(days=1)


def validity_under(policy: ValidityPolicy, document: IssuedDocument) -> date:
    """How long ``document`` would have been valid under ``policy`` (never shorter)."""
    if not policy.applies_to(document):
        return document.valid_until
    return max(document.valid_until, policy.valid_until(document))


def extension_saved(
    policy: ValidityPolicy,
    document: IssuedDocument,
    *,
    extended_to: date,
    ended_on: date | None,
) -> bool:
    """Whether an extension of ``document`` (to ``extended_to``) would not have been
    needed under ``policy``; ``ended_on``: the day the document ended, if it did."""
    if not policy.applies_to(document):
        return False
    covered = validity_under(policy, document)
    if covered >= extended_to:
        return True
    return ended_on is not None and covered >= ended_on


COMMON_ASSUMPTIONS: Final = (
    "Eine Verlängerung gilt als eingespart, wenn das Papier mit der neuen Gültigkeit, "
    "gerechnet ab dem ursprünglichen Gültigkeitsbeginn, bereits bis zu dem Tag gültig "
    "gewesen wäre, bis zu dem die Verlängerung tatsächlich reichte.",
    "Ein Papier, das durch Entscheidung, Rücknahme oder aus anderem Grund vor Ablauf der "
    "längeren Gültigkeit endete, spart jede spätere Verlängerung ein.",
    "Die neue Regel verkürzt nichts: war ein Papier tatsächlich länger gültig, bleibt es "
    "dabei. Verlängerungen, die die längere Gültigkeit nicht abdeckt, finden statt wie "
    "tatsächlich geschehen (gleicher Tag, gleiche Dauer).",
)


@dataclass(frozen=True)
class FictionValidity:
    """Fiktionsbescheinigungen (§ 81 (3), (4) AufenthG), optionally also Duldungen
    (§ 60a AufenthG), issued for ``months`` months instead of what was issued."""

    months: int
    include_duldung: bool = False
    key: str = "fiction-validity"

    def __post_init__(self) -> None:
        if not 1 <= self.months <= MAX_MONTHS:
            msg = f"months must lie between 1 and {MAX_MONTHS}"
            raise ValueError(msg)

    @property
    def label(self) -> str:
        papers = "Fiktionsbescheinigungen"
        if self.include_duldung:
            papers += " und Duldungen"
        return f"{papers} für {self.months} Monate ausgestellt"

    def parameters(self) -> dict[str, str]:
        return {"months": str(self.months), "include_duldung": str(self.include_duldung).lower()}

    def applies_to(self, document: IssuedDocument) -> bool:
        if document.family == FICTION_CERTIFICATE:
            return True
        return self.include_duldung and document.kind == "duldung"

    def valid_until(self, document: IssuedDocument) -> date:
        return valid_for_months(document.valid_from, self.months)

    def assumptions(self) -> tuple[str, ...]:
        which = "Fiktionsbescheinigungen" + (" und Duldungen" if self.include_duldung else "")
        return (
            f"{which} wären für {self.months} Monate ab dem Gültigkeitsbeginn der "
            "ursprünglichen Ausstellung ausgestellt worden (letzter Gültigkeitstag: der Tag "
            "vor demselben Kalendertag nach N Monaten).",
        )


@dataclass(frozen=True)
class OrdinanceExtension:
    """Residence documents on one legal basis (default § 24 AufenthG, temporary
    protection) valid until ``extended_to`` by ordinance, without a visit: their
    extensions (``ResidenceDocumentExtended``) up to that day are saved."""

    extended_to: date
    legal_basis: str = "aufenthg-24"
    key: str = "ordinance-extension"

    @property
    def label(self) -> str:
        return (
            f"Titel nach {self.legal_basis} per Verordnung bis {self.extended_to:%d.%m.%Y} gültig"
        )

    def parameters(self) -> dict[str, str]:
        return {"legal_basis": self.legal_basis, "extended_to": self.extended_to.isoformat()}

    def applies_to(self, document: IssuedDocument) -> bool:
        return document.family == RESIDENCE_DOCUMENT and document.legal_basis == self.legal_basis

    def valid_until(self, document: IssuedDocument) -> date:
        return self.extended_to

    def assumptions(self) -> tuple[str, ...]:
        return (
            f"Aufenthaltsdokumente nach {self.legal_basis} gelten kraft Verordnung bis "
            f"{self.extended_to:%d.%m.%Y}, ohne Vorsprache und ohne neue Karte.",
        )
