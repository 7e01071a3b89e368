"""Applications arrive by the season (more students from August to November, few
between the years), and the year's procedures processed stay exactly the profile's.

Planned only (no store): a tenth of the reference year, some 15,000 procedures, and the
procedures of the year after received in this one (as the simulator writes them), so
every month's arrivals are whole.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date

from adapters.reference.catalogue import load_catalogue
from adapters.simulation.calendar import WorkingCalendar, between_the_years
from adapters.simulation.plans import ProcedurePlan, YearPlanner
from adapters.simulation.profile import load_profile, targets_for

PROFILE = load_profile()
YEAR = 2024
SCALE = 0.1
_EDUCATION = frozenset({"aufenthg-16a", "aufenthg-16b"})


def _planned() -> tuple[WorkingCalendar, list[ProcedurePlan], list[ProcedurePlan]]:
    calendar = WorkingCalendar(YEAR - 2, YEAR + 1)
    planner = YearPlanner(load_catalogue(), calendar)

    def procedures(year: int, *, tail: bool) -> list[ProcedurePlan]:
        target = targets_for(PROFILE, scale=SCALE, years_after_first=year - YEAR)
        plans = planner.plan_year(random.Random(f"arrivals/{year}"), year, target, tail=tail)
        return [plan for plan in plans if isinstance(plan, ProcedurePlan)]

    return calendar, procedures(YEAR, tail=False), procedures(YEAR + 1, tail=True)


def _per_working_day(calendar: WorkingCalendar, days: list[int]) -> dict[int, float]:
    """Arrivals per working day, by month of ``YEAR``."""
    working: Counter[int] = Counter(day.month for day in calendar.days if day.year == YEAR)
    arrived: Counter[int] = Counter(
        calendar.days[day].month for day in days if calendar.days[day].year == YEAR
    )
    return {month: arrived[month] / working[month] for month in range(1, 13)}


def test_applications_arrive_by_season_and_the_year_stays_exact() -> None:
    calendar, year, after = _planned()
    first, last = calendar.span(YEAR)

    # The year's procedures processed: exactly the target, every decision in the year.
    assert len(year) == targets_for(PROFILE, scale=SCALE)["procedures_processed"]
    assert all(first <= plan.decide_day <= last for plan in year)
    assert all(plan.receive_day <= plan.decide_day for plan in year)

    # Arrivals in the year: the year's own and those decided the year after.
    arrivals = [plan for plan in year + after if first <= plan.receive_day <= last]
    rates = _per_working_day(calendar, [plan.receive_day for plan in arrivals])
    mean = sum(rates.values()) / 12
    # Not flat: the busiest month a good third above the quietest, December quiet.
    assert max(rates.values()) >= 1.3 * min(rates.values()), rates
    assert rates[12] < 0.85 * mean, rates
    assert rates[6] > rates[8], rates  # renewals before the summer, fewer while away

    # Between the years (21 December to 2 January) few apply: under two thirds of the
    # other days of December and January.
    quiet = Counter(between_the_years(calendar.days[p.receive_day]) for p in arrivals)
    days_quiet = sum(
        1 for index in range(first, last + 1) if between_the_years(calendar.days[index])
    )
    around = [
        index
        for index in range(first, last + 1)
        if calendar.days[index].month in (1, 12) and not between_the_years(calendar.days[index])
    ]
    around_arrivals = sum(
        1
        for plan in arrivals
        if calendar.days[plan.receive_day].month in (1, 12)
        and not between_the_years(calendar.days[plan.receive_day])
    )
    assert quiet[True] / days_quiet < 0.65 * around_arrivals / len(around), quiet

    # Students come for the winter semester: October at least twice May to July.
    students = [
        p.receive_day for p in arrivals if p.basis in _EDUCATION or p.topic == "student_permit"
    ]
    student_rates = _per_working_day(calendar, students)
    summer = (student_rates[5] + student_rates[6] + student_rates[7]) / 3
    assert student_rates[10] >= 2 * summer, student_rates


def test_between_the_years() -> None:
    assert between_the_years(date(2024, 12, 23))
    assert between_the_years(date(2025, 1, 2))
    assert not between_the_years(date(2024, 12, 20))
    assert not between_the_years(date(2025, 1, 3))
