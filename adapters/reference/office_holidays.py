"""The office's public holidays: the national ones and those of its state (Land), from
the ``holidays`` library, for counting legal deadlines (:mod:`domain.deadlines`).

Which days are public holidays is state law (each Land's Feiertagsgesetz) and changes
(Berlin added 8 March in 2019); a maintained library follows those changes, so Akte does
not keep its own table. Only statewide public holidays count: days that are holidays in
some municipalities only (Mariä Himmelfahrt in Bavaria, the Augsburger Friedensfest) are
not, because a deadline must not depend on which part of a state an office is in.
"""

from __future__ import annotations

from datetime import date
from typing import Final

import holidays

STATES: Final = frozenset(
    {"BB", "BE", "BW", "BY", "HB", "HE", "HH", "MV", "NI", "NW", "RP", "SH", "SL", "SN", "ST", "TH"}
)
"""The German states by their ISO 3166-2 code without ``DE-``."""


class UnknownState(ValueError):
    def __init__(self, state: str) -> None:
        super().__init__(f"{state!r} is not a German state code, e.g. BE, BY, NW")


class OfficeHolidays:
    """The public holidays at an office in ``state``: a
    :class:`domain.deadlines.HolidayCalendar`."""

    def __init__(self, state: str) -> None:
        if state not in STATES:
            raise UnknownState(state)
        self.state = state
        # Years are filled in as they are asked for; the library keeps them.
        self._days = holidays.country_holidays("DE", subdiv=state)

    def is_holiday(self, day: date) -> bool:
        return day in self._days

    def name(self, day: date) -> str | None:
        """The holiday's (English) name, or None."""
        return self._days.get(day)
