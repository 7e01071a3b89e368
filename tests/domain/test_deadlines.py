"""Legal deadlines as data (domain/deadlines.py): every rule names its source, and the
periods are counted across weekends, national and state holidays and year ends, for
offices in Berlin, Bavaria and North Rhine-Westphalia."""

from __future__ import annotations

from datetime import date

import pytest

from adapters.reference.office_holidays import OfficeHolidays, UnknownState
from domain.deadlines import (
    DEEMED_ENTRY_CONSENT,
    RULES,
    RULES_BY_CODE,
    DeadlineRule,
    NoHolidays,
    Unit,
    add,
    has_passed,
)

D = date

# (start = day of the request, state, last day of the silence period of § 31 Abs. 1
# AufenthV: three weeks, then two Werktage (Monday to Saturday), then moved off a
# Saturday, Sunday or holiday to the next working day).
DEEMED_CONSENT_CASES = [
    # An ordinary month: Monday + 3 weeks = Monday, then Tuesday and Wednesday.
    (D(2025, 3, 3), "BE", D(2025, 3, 26)),
    (D(2025, 3, 3), "BY", D(2025, 3, 26)),
    (D(2025, 3, 3), "NW", D(2025, 3, 26)),
    # The second Werktag is a Saturday: the period ends on the Monday after.
    (D(2025, 3, 6), "BE", D(2025, 3, 31)),
    (D(2025, 3, 6), "BY", D(2025, 3, 31)),
    (D(2025, 3, 6), "NW", D(2025, 3, 31)),
    # 8 March 2024 (Friday), Women's Day, a holiday in Berlin only: Berlin skips it and
    # lands on Saturday, moved to Monday; Bavaria and NRW count it.
    (D(2024, 2, 14), "BE", D(2024, 3, 11)),
    (D(2024, 2, 14), "BY", D(2024, 3, 8)),
    (D(2024, 2, 14), "NW", D(2024, 3, 8)),
    # 19 June 2025 (Thursday), Corpus Christi, a holiday in Bavaria and NRW, not Berlin.
    (D(2025, 5, 27), "BE", D(2025, 6, 19)),
    (D(2025, 5, 27), "BY", D(2025, 6, 20)),
    (D(2025, 5, 27), "NW", D(2025, 6, 20)),
    # Christmas: 25 and 26 December are national holidays, Saturday 27 is a Werktag,
    # Sunday is skipped.
    (D(2025, 12, 3), "BE", D(2025, 12, 29)),
    (D(2025, 12, 3), "BY", D(2025, 12, 29)),
    (D(2025, 12, 3), "NW", D(2025, 12, 29)),
    # Across the year end: New Year's Day skipped, the end in the new year.
    (D(2025, 12, 9), "BE", D(2026, 1, 2)),
    (D(2025, 12, 9), "BY", D(2026, 1, 2)),
    (D(2025, 12, 9), "NW", D(2026, 1, 2)),
    # New Year's Day skipped, the second Werktag a Saturday: Monday 5 January.
    (D(2025, 12, 10), "BE", D(2026, 1, 5)),
    (D(2025, 12, 10), "BY", D(2026, 1, 5)),
    (D(2025, 12, 10), "NW", D(2026, 1, 5)),
    # 6 January 2026 (Tuesday), Epiphany, a holiday in Bavaria only.
    (D(2025, 12, 13), "BE", D(2026, 1, 6)),
    (D(2025, 12, 13), "BY", D(2026, 1, 7)),
    (D(2025, 12, 13), "NW", D(2026, 1, 6)),
    # Easter 2025: Good Friday and Easter Monday skipped everywhere.
    (D(2025, 3, 27), "BE", D(2025, 4, 22)),
    (D(2025, 3, 27), "BY", D(2025, 4, 22)),
    (D(2025, 3, 27), "NW", D(2025, 4, 22)),
]


@pytest.mark.parametrize(("start", "state", "last_day"), DEEMED_CONSENT_CASES)
def test_the_silence_period_ends_on_the_day_the_law_says(
    start: date, state: str, last_day: date
) -> None:
    assert DEEMED_ENTRY_CONSENT.ends_on(start, OfficeHolidays(state)) == last_day


@pytest.mark.parametrize(("start", "state", "last_day"), DEEMED_CONSENT_CASES)
def test_holidays_only_ever_make_a_period_longer(start: date, state: str, last_day: date) -> None:
    # The worklist filters on this lower bound before it counts the office's holidays.
    assert DEEMED_ENTRY_CONSENT.earliest_end(start) <= last_day


# (start, amount, unit, state, expected): the units the rules may use.
UNIT_CASES: list[tuple[date, int, Unit, str, date]] = [
    # Calendar days and weeks count every day, holidays and year ends included.
    (D(2025, 12, 24), 10, "calendar_days", "BE", D(2026, 1, 3)),
    (D(2025, 12, 24), 10, "calendar_days", "BY", D(2026, 1, 3)),
    (D(2025, 12, 31), 1, "weeks", "NW", D(2026, 1, 7)),
    (D(2024, 2, 29), 1, "weeks", "BE", D(2024, 3, 7)),
    # Working days: Monday to Friday without holidays. Thursday before Easter 2025: Good
    # Friday and Easter Monday do not count.
    (D(2025, 4, 17), 2, "working_days", "BE", D(2025, 4, 23)),
    (D(2025, 4, 17), 2, "working_days", "BY", D(2025, 4, 23)),
    (D(2025, 4, 17), 2, "working_days", "NW", D(2025, 4, 23)),
    # All Saints' Day 2024 (Friday) counts in Berlin, not in Bavaria or NRW.
    (D(2024, 10, 31), 1, "working_days", "BE", D(2024, 11, 1)),
    (D(2024, 10, 31), 1, "working_days", "BY", D(2024, 11, 4)),
    (D(2024, 10, 31), 1, "working_days", "NW", D(2024, 11, 4)),
    # Werktage include Saturday.
    (D(2024, 11, 1), 1, "werktage", "BE", D(2024, 11, 2)),
    (D(2024, 10, 31), 1, "werktage", "BY", D(2024, 11, 2)),
    # Across the year end: 31 December is a working day, 1 January is not.
    (D(2025, 12, 30), 2, "working_days", "BE", D(2026, 1, 2)),
    (D(2025, 12, 30), 2, "working_days", "NW", D(2026, 1, 2)),
    (D(2026, 1, 2), 1, "working_days", "BY", D(2026, 1, 5)),
    (D(2026, 1, 5), 1, "working_days", "BY", D(2026, 1, 7)),
    (D(2026, 1, 5), 1, "working_days", "BE", D(2026, 1, 6)),
]


@pytest.mark.parametrize(("start", "amount", "unit", "state", "expected"), UNIT_CASES)
def test_each_unit_counts_its_days(
    start: date, amount: int, unit: Unit, state: str, expected: date
) -> None:
    assert add(start, amount, unit, OfficeHolidays(state)) == expected


def test_the_start_day_is_not_counted() -> None:
    assert add(D(2025, 3, 3), 0, "working_days", NoHolidays()) == D(2025, 3, 3)
    assert add(D(2025, 3, 7), 1, "working_days", NoHolidays()) == D(2025, 3, 10)


def test_a_period_has_passed_only_after_its_last_day() -> None:
    assert not has_passed(D(2025, 3, 26), today=D(2025, 3, 26))
    assert has_passed(D(2025, 3, 26), today=D(2025, 3, 27))


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.code)
def test_every_rule_names_its_source_effect_and_calendar(rule: DeadlineRule) -> None:
    assert RULES_BY_CODE[rule.code] is rule
    assert "§" in rule.source.provision
    assert rule.source.wording
    assert rule.source.read_at
    assert rule.effect
    if rule.calendar == "dated":
        assert rule.period == ()
        assert rule.end_field
    else:
        assert rule.period
        assert rule.end_field is None


def test_the_deemed_consent_follows_section_31_aufenthv() -> None:
    rule = DEEMED_ENTRY_CONSENT
    assert rule.source.provision.startswith("§ 31 Abs. 1")
    assert "drei Wochen und zwei Werktage" in rule.source.wording
    assert [(part.amount, part.unit) for part in rule.period] == [(3, "weeks"), (2, "werktage")]
    assert rule.applies("aufenthv-31")
    # The fast-track pre-approval (§ 81a AufenthG) has no deemed consent.
    assert not rule.applies("aufenthg-81a")


def test_a_dated_rule_has_no_period_to_count() -> None:
    with pytest.raises(ValueError, match="dated"):
        RULES_BY_CODE["document-request-due"].ends_on(D(2025, 1, 1), NoHolidays())


def test_an_office_must_be_in_a_german_state() -> None:
    with pytest.raises(UnknownState):
        OfficeHolidays("XX")
    # Mariä Himmelfahrt is a holiday in parts of Bavaria only: it does not count.
    assert not OfficeHolidays("BY").is_holiday(D(2025, 8, 15))
    assert OfficeHolidays("BE").is_holiday(D(2025, 3, 8))
