"""The office profile: an office's published yearly balance, the counts a simulated
year aims at.

The 2024 balance of a mid-sized city ships with Akte (``reference/office-2024.json``).
Each count is scaled, ``round(count * scale)`` and at least 1 where it is positive, and
grows by ``growth`` per further year.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from domain.values import COMMITMENT_DECLARATION_FEE_CENTS

TARGET_FIGURES: Final = (
    "appointments_served",
    "residence_documents_issued",
    "fiction_certificates_issued",
    "procedures_processed",
    "entry_procedures",
    "integration_course_entitlements",
    "integration_course_obligations",
    "commitment_declarations",
    "civil_registry_inquiries",
    "naturalisation_inquiries",
)
"""The profile's figures the simulator reproduces exactly (after scaling)."""


class SimulationError(Exception):
    """The simulation cannot run as asked (a year in the future, a bad profile)."""


@dataclass(frozen=True)
class OfficeProfile:
    """An office's published yearly balance: the counts a simulated year aims at."""

    year: int
    figures: Mapping[str, int]
    """The target figures (:data:`TARGET_FIGURES`) of the profile's year."""
    staff: int = 26
    source: str = ""
    customers: int | None = None
    """Distinct persons served in the year (the report's definition); the simulator aims
    at it within 2 %. ``None``: a third of the procedures processed."""

    def customer_target(
        self, *, scale: float, years_after_first: int = 0, growth: float = 0.0
    ) -> int:
        """The customers a simulated year aims at (scaled as the target figures)."""
        count = (
            self.customers
            if self.customers is not None
            else round(self.figures["procedures_processed"] / 3)
        )
        return scaled(count, scale * (1.0 + growth) ** years_after_first)

    def staff_target(self, *, scale: float, years_after_first: int = 0, growth: float = 0.0) -> int:
        """The posts of a simulated year: the profile's ``staff`` scaled as the target
        figures (at least one), so that a small-scale office is not staffed for the
        whole city."""
        return scaled(self.staff, scale * (1.0 + growth) ** years_after_first)


def profile_from_json(data: Mapping[str, Any]) -> OfficeProfile:
    """The profile from its JSON form (``reference/office-2024.json``)."""
    missing = [name for name in TARGET_FIGURES if name not in data]
    if missing:
        raise SimulationError(f"the profile lacks the figures {', '.join(missing)}")
    figures: dict[str, int] = {}
    for name in TARGET_FIGURES:
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SimulationError(f"the profile's {name} must be a whole number >= 0")
        figures[name] = value
    fee = data.get("commitment_declaration_fee_eur", COMMITMENT_DECLARATION_FEE_CENTS // 100)
    if fee * 100 != COMMITMENT_DECLARATION_FEE_CENTS:
        # The fee is the law's (§ 47 (1) Nr. 12 AufenthV), assessed by the domain.
        raise SimulationError(
            f"the profile's commitment declaration fee ({fee} EUR) is not the "
            f"{COMMITMENT_DECLARATION_FEE_CENTS // 100} EUR the law sets"
        )
    year = data.get("year")
    if not isinstance(year, int):
        raise SimulationError("the profile must name its year")
    staff = data.get("staff", 26)
    customers = data.get("customers")
    if customers is not None and (
        isinstance(customers, bool) or not isinstance(customers, int) or customers < 0
    ):
        raise SimulationError("the profile's customers must be a whole number >= 0")
    return OfficeProfile(
        year=year,
        figures=figures,
        staff=staff if isinstance(staff, int) and staff >= 2 else 26,
        source=str(data.get("source", "")),
        customers=customers,
    )


def load_profile(path: Path | None = None) -> OfficeProfile:
    """The profile at ``path``; without one, the 2024 balance shipped with Akte."""
    if path is None:
        text = (
            resources.files("adapters")
            .joinpath("reference", "office-2024.json")
            .read_text(encoding="utf-8")
        )
    else:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise SimulationError(f"cannot read the profile {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        raise SimulationError("the profile is not JSON") from None
    if not isinstance(data, dict):
        raise SimulationError("the profile must be a JSON object")
    return profile_from_json(data)


def scaled(count: int, scale: float) -> int:
    """``round(count * scale)``, but at least 1 where ``count`` is positive."""
    if count <= 0:
        return 0
    return max(1, round(count * scale))


def targets_for(
    profile: OfficeProfile, *, scale: float, years_after_first: int = 0, growth: float = 0.0
) -> dict[str, int]:
    """The target figures of a simulated year, ``years_after_first`` after the first."""
    factor = scale * (1.0 + growth) ** years_after_first
    return {name: scaled(profile.figures[name], factor) for name in TARGET_FIGURES}
