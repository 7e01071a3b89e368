"""The ground truth: what the simulator did, counted per year figure by figure, exactly
as the yearly report must reproduce it, and the result of a run that carries it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from domain.values import (
    DIGITAL_CHANNELS,
    Channel,
    DecisionOutcome,
    ResidenceDocumentKind,
)

RESIDENCE_DOCUMENT_KINDS: Final[tuple[ResidenceDocumentKind, ...]] = (
    "eat",
    "duldung",
    "aufenthaltsgestattung",
)
CHANNELS: Final[tuple[Channel, ...]] = ("appointment", "contact_form", "mail", "online_application")
OUTCOMES: Final[tuple[DecisionOutcome, ...]] = ("granted", "refused", "withdrawn")


@dataclass
class YearTally:
    documents: Counter[str] = field(default_factory=Counter)
    documents_extended: int = 0
    extended_at_visit: Counter[str] = field(default_factory=Counter)
    """Residence documents extended at a booked visit, by kind."""
    documents_transferred: int = 0
    transfers_at_visit: int = 0
    fictions_issued: int = 0
    fictions_extended: int = 0
    fictions_extended_at_visit: int = 0
    received: Counter[str] = field(default_factory=Counter)
    processed_channels: Counter[str] = field(default_factory=Counter)
    processed_outcomes: Counter[str] = field(default_factory=Counter)
    processed_bases: Counter[str] = field(default_factory=Counter)
    days: Counter[int] = field(default_factory=Counter)
    entry_procedures: int = 0
    entry_consents_deemed: int = 0
    entitlements: int = 0
    obligations: int = 0
    declarations: int = 0
    fees_cents: int = 0
    inquiries: Counter[str] = field(default_factory=Counter)
    appointments_served: int = 0
    no_shows: int = 0
    customers: set[str] = field(default_factory=set)
    """Distinct persons served, by the report's identities: ``c:<case file id>``,
    ``p:<person key>`` (served without a case file), ``d:<declaration id>``."""


def _value_at_rank(histogram: Mapping[int, int], rank: int) -> int:
    """The ``rank``-th smallest value (1 the smallest) of the values the histogram counts."""
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value
    raise AssertionError("unreachable: the ranks add up to the count")


def nearest_rank(histogram: Mapping[int, int], percent: int) -> int | None:
    """The smallest value v such that at least ``percent`` % of the values are <= v."""
    count = sum(histogram.values())
    if count == 0:
        return None
    return _value_at_rank(histogram, max(1, -(-percent * count // 100)))


def median(histogram: Mapping[int, int]) -> float | None:
    """The middle value, or the mean of the two middle values for an even count."""
    count = sum(histogram.values())
    if count == 0:
        return None
    lower = _value_at_rank(histogram, (count + 1) // 2)
    upper = _value_at_rank(histogram, count // 2 + 1)
    return (lower + upper) / 2


def figures_of(tally: YearTally, *, year: int, office_id: str, backlog: int) -> dict[str, Any]:
    processed = sum(tally.processed_outcomes.values())
    digital = sum(tally.processed_channels[channel] for channel in DIGITAL_CHANNELS)
    appointments = tally.appointments_served + tally.no_shows
    return {
        "year": year,
        "office_id": office_id,
        "appointments_served": tally.appointments_served,
        "customers": len(tally.customers),
        "no_show_rate": (round(100 * tally.no_shows / appointments, 1) if appointments else None),
        "residence_documents_issued": {
            "total": sum(tally.documents.values()),
            "by_kind": {kind: tally.documents[kind] for kind in RESIDENCE_DOCUMENT_KINDS},
        },
        "residence_documents_extended": tally.documents_extended,
        "residence_documents_transferred": tally.documents_transferred,
        "fiction_certificates_issued": tally.fictions_issued,
        "fiction_certificates_extended": tally.fictions_extended,
        # The visits behind the extensions and transfers: what the what-if can save.
        "extension_visits": {
            "fiction_certificates": tally.fictions_extended_at_visit,
            "residence_documents": {
                kind: tally.extended_at_visit[kind] for kind in RESIDENCE_DOCUMENT_KINDS
            },
            "transfers": tally.transfers_at_visit,
        },
        "procedures_received": {
            "total": sum(tally.received.values()),
            "by_channel": {channel: tally.received[channel] for channel in CHANNELS},
        },
        "procedures_processed": {
            "total": processed,
            "digital": digital,
            "digital_share": digital / processed if processed else None,
            "by_channel": {channel: tally.processed_channels[channel] for channel in CHANNELS},
            "by_outcome": {outcome: tally.processed_outcomes[outcome] for outcome in OUTCOMES},
            "by_legal_basis": {
                basis: tally.processed_bases[basis]
                for basis in sorted(tally.processed_bases)
                if tally.processed_bases[basis]
            },
        },
        "entry_procedures": tally.entry_procedures,
        "entry_consents_deemed": tally.entry_consents_deemed,
        "integration_course_entitlements": tally.entitlements,
        "integration_course_obligations": tally.obligations,
        "commitment_declarations": tally.declarations,
        "commitment_fees_cents": tally.fees_cents,
        "civil_registry_inquiries": tally.inquiries["civil_registry"],
        "naturalisation_inquiries": tally.inquiries["naturalisation"],
        "backlog_at_year_end": backlog,
        "days_to_decision_median": median(tally.days),
        "days_to_decision_p90": nearest_rank(tally.days, 90),
    }


def achieved(truth: Mapping[str, Any]) -> dict[str, int]:
    """A year's ground truth as the target figures (to compare with :func:`targets_for`)."""
    return {
        "appointments_served": truth["appointments_served"],
        "residence_documents_issued": truth["residence_documents_issued"]["total"],
        "fiction_certificates_issued": truth["fiction_certificates_issued"],
        "procedures_processed": truth["procedures_processed"]["total"],
        "entry_procedures": truth["entry_procedures"],
        "integration_course_entitlements": truth["integration_course_entitlements"],
        "integration_course_obligations": truth["integration_course_obligations"],
        "commitment_declarations": truth["commitment_declarations"],
        "civil_registry_inquiries": truth["civil_registry_inquiries"],
        "naturalisation_inquiries": truth["naturalisation_inquiries"],
    }


@dataclass(frozen=True)
class SimulationResult:
    office_id: str
    seed: int
    scale: float
    growth: float
    years: tuple[int, ...]
    targets: dict[int, dict[str, int]]
    truth: dict[int, dict[str, Any]]
    """Per simulated year, every figure as the simulator counted it."""
    commands: int
    events: int
    case_files: int
    seconds: float
    commands_by_kind: dict[str, int]
    staff_plan: dict[str, Any] = field(default_factory=dict)
    """The office's staff plan (the form of ``AKTE_STAFF_FILE``), from the profile's staff."""

    @property
    def commands_per_second(self) -> float:
        return self.commands / self.seconds if self.seconds > 0 else 0.0

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def truth_json(self) -> dict[str, Any]:
        """The ground truth and what it aimed at; the same for the same seed and scale."""
        return {
            "office_id": self.office_id,
            "seed": self.seed,
            "scale": self.scale,
            "growth": self.growth,
            "years": {str(year): self.truth[year] for year in self.years},
            "targets": {str(year): self.targets[year] for year in self.years},
            "staff_plan": self.staff_plan,
        }
