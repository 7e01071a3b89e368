"""Business time of the simulated office.

Working days are Monday to Friday without Germany's nationwide public holidays (the
Easter-based ones computed), office hours lie in Europe/Berlin, and months weigh by how
busy the office is.
"""

from __future__ import annotations

import bisect
import random
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

BERLIN: Final = ZoneInfo("Europe/Berlin")


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm, Meeus 1991)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return date(year, month, day + 1)


def national_holidays(year: int) -> frozenset[date]:
    """Germany's nationwide public holidays of ``year`` (state holidays left out)."""
    easter = easter_sunday(year)
    days = {
        date(year, 1, 1),  # Neujahr
        easter - timedelta(days=2),  # Karfreitag
        easter + timedelta(days=1),  # Ostermontag
        date(year, 5, 1),  # Tag der Arbeit
        easter + timedelta(days=39),  # Christi Himmelfahrt
        easter + timedelta(days=50),  # Pfingstmontag
        date(year, 10, 3),  # Tag der Deutschen Einheit
        date(year, 12, 25),
        date(year, 12, 26),
    }
    if year == 2017:
        days.add(date(2017, 10, 31))  # Reformationstag, nationwide once (500 years)
    return frozenset(days)


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in national_holidays(day.year)


OFFICE_OPENS: Final = 7 * 60 + 45
OFFICE_LAST_START: Final = 15 * 60 + 45
"""Fresh business times lie between 07:45 and 15:45 Berlin time; the steps that follow
on the same day come minutes later, and a file opened for a newcomer minutes before."""

_EPOCH_ORDINAL: Final = date(1970, 1, 1).toordinal()


class WorkingCalendar:
    """The working days of a span of years, with their Berlin UTC offsets."""

    def __init__(self, first_year: int, last_year: int) -> None:
        self.days: list[date] = []
        day = date(first_year, 1, 1)
        end = date(last_year, 12, 31)
        while day <= end:
            if is_working_day(day):
                self.days.append(day)
            day += timedelta(days=1)
        self.ordinals = [day.toordinal() for day in self.days]
        # Daylight saving changes at night, so the offset at noon holds all office day.
        self._day_starts = [
            (day.toordinal() - _EPOCH_ORDINAL) * 86400
            - int(_offset(datetime(day.year, day.month, day.day, 12, tzinfo=BERLIN)))
            for day in self.days
        ]
        self._year_starts = {
            year: int(datetime(year, 1, 1, tzinfo=BERLIN).timestamp())
            for year in range(first_year, last_year + 2)
        }
        self._year_numbers = sorted(self._year_starts)
        self._year_start_times = [self._year_starts[year] for year in self._year_numbers]

    def first_on_or_after(self, day: date) -> int:
        return bisect.bisect_left(self.ordinals, day.toordinal())

    def last_on_or_before(self, day: date) -> int:
        return bisect.bisect_right(self.ordinals, day.toordinal()) - 1

    def span(self, year: int) -> tuple[int, int]:
        """Indices of the first and last working day of ``year``."""
        return (
            self.first_on_or_after(date(year, 1, 1)),
            self.last_on_or_before(date(year, 12, 31)),
        )

    def moment(self, day: int, minute: int) -> int:
        """Epoch seconds of ``minute`` after Berlin midnight on working day ``day``."""
        return self._day_starts[day] + minute * 60

    def year_start(self, year: int) -> int:
        """Epoch seconds of 1 January 00:00 Berlin time."""
        return self._year_starts[year]

    def year_of(self, ts: int) -> int:
        """The Berlin calendar year of a moment."""
        position = bisect.bisect_right(self._year_start_times, ts) - 1
        return self._year_numbers[max(position, 0)]


def _offset(moment: datetime) -> float:
    offset = moment.utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def local_date(ts: int) -> date:
    return datetime.fromtimestamp(ts, BERLIN).date()


def utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


# Months weigh by how busy the office is: before the summer travel season people renew
# and apply; August and the days around Christmas are quiet.
SEASON: Final = (0.0, 0.9, 0.95, 1.0, 1.0, 1.2, 1.3, 1.25, 0.8, 1.1, 1.15, 1.0, 0.75)


# When applications come in (an assumption, not a measured figure; the shape follows the
# calendars that drive them): renewals before the summer travel season (May-June), fewer
# while people travel in August and over Christmas; more again in January, when what
# waited over the holidays comes in.
ARRIVALS: Final = (0.0, 1.05, 1.0, 1.0, 1.0, 1.1, 1.15, 1.05, 0.85, 1.05, 1.05, 1.0, 0.8)
# Students by the academic year: they enter on a national visa for the winter semester
# (which begins on 1 October) and apply for their residence permit in August to November;
# a smaller wave for the summer semester (1 April); few over Christmas and in May-July.
STUDENT_ARRIVALS: Final = (0.0, 0.7, 0.7, 1.0, 1.1, 0.7, 0.7, 0.8, 1.4, 2.0, 2.3, 1.5, 0.6)
QUIET_DAYS: Final = 0.4
"""The weight of a working day between the years (21 December to 2 January) against an
ordinary day of its month: offices run a skeleton service, and few apply."""


def between_the_years(day: date) -> bool:
    return (day.month == 12 and day.day >= 21) or (day.month == 1 and day.day <= 2)


class DayPicker:
    """Draws working days of a year by the season's weights.

    ``lead``: working days before the year that may be drawn too (arrivals whose
    procedure is decided in the year); ``quiet``: the weight of the days between the
    years (:func:`between_the_years`) against their month's."""

    def __init__(
        self,
        calendar: WorkingCalendar,
        year: int,
        season: tuple[float, ...],
        *,
        lead: int = 0,
        quiet: float = 1.0,
    ) -> None:
        self.year_first, self.last = calendar.span(year)
        self.first = self.year_first - lead
        total = 0.0
        self._cumulative: list[float] = []
        for index in range(self.first, self.last + 1):
            day = calendar.days[index]
            total += season[day.month] * (quiet if between_the_years(day) else 1.0)
            self._cumulative.append(total)
        self._total = total

    def draw(self, rng: random.Random) -> int:
        position = bisect.bisect_left(self._cumulative, rng.random() * self._total)
        return self.first + min(position, len(self._cumulative) - 1)
