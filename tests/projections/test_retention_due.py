"""The worklist of case files due for erasure (``projections/worklists/retention_due.py``)
with the shipped rules, on SQLite and PostgreSQL: a period counted as §§ 187, 188 BGB
count it includes its last day, so a file is due the day after it and not on it (§ 68
AufenthV: "zehn Jahre nach Übernahme", "nicht innerhalb von zwei Jahren nach Ablauf der
Geltungsdauer der Zustimmung"); the query's cutoff is the exact inverse of the due day,
also around 29 February; every fact the read model keeps has a rule, naturalisation
included (§ 68 (2) S. 2 with § 67 (1) Nr. 3 AufenthV)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.personal_data.retention import load_rules
from adapters.settings import Settings
from projections.storage import ViewsStore
from projections.worklists import retention_due
from projections.worklists.retention_due import (
    TRIGGERS,
    RetentionRule,
    due_files,
    due_on,
    latest_due_by,
    period_ends_on,
)
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import CaseDriver, catch_up, views_for

ONE_DAY = timedelta(days=1)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def rule(runs_from: str, years: int) -> RetentionRule:
    return RetentionRule(
        id=f"{runs_from}-{years}y".replace("_", "-"),
        label_de="",
        legal_basis="§ 68 AufenthV",
        legal_ground="aufenthv-68",
        runs_from=runs_from,
        period_years=years,
    )


# ------------------------------------------------------------------ counting


@pytest.mark.parametrize(
    ("runs_from", "day", "years", "last_day"),
    [
        # § 187 (1), § 188 (2) BGB: from an event, the event's day is not counted.
        ("transferred", date(2024, 3, 4), 10, date(2034, 3, 4)),
        ("closed_died", date(2024, 3, 4), 5, date(2029, 3, 4)),
        # § 188 (3) BGB: no 29 February in the last year, the period ends on the 28th.
        ("transferred", date(2024, 2, 29), 10, date(2034, 2, 28)),
        ("closed_naturalised", date(2024, 2, 29), 4, date(2028, 2, 29)),
        ("closed_left", date(2022, 2, 28), 10, date(2032, 2, 28)),
        # § 187 (2), § 188 (2) BGB: the consent lapses at the end of its last day; the
        # two years begin the next day and end the day before its anniversary.
        ("entry_consent_lapsed", date(2024, 6, 30), 2, date(2026, 6, 30)),
        ("entry_consent_lapsed", date(2026, 2, 28), 2, date(2028, 2, 29)),
        ("entry_consent_lapsed", date(2024, 2, 28), 2, date(2026, 2, 28)),
        ("entry_consent_lapsed", date(2024, 2, 29), 2, date(2026, 2, 28)),
        ("entry_consent_lapsed", date(2023, 12, 31), 2, date(2025, 12, 31)),
    ],
)
def test_a_period_ends_as_the_bgb_counts_it_and_is_due_the_day_after(
    runs_from: str, day: date, years: int, last_day: date
) -> None:
    assert period_ends_on(runs_from, day, years) == last_day
    assert due_on(rule(runs_from, years), day) == last_day + ONE_DAY


@pytest.mark.parametrize("runs_from", sorted(TRIGGERS))
@pytest.mark.parametrize("years", [1, 2, 4, 5, 10])
def test_the_cutoff_is_the_exact_inverse_of_the_due_day(runs_from: str, years: int) -> None:
    """A file is due on ``today`` exactly if its date is on or before the cutoff: every
    day of eight years, through two leap days."""
    subject = rule(runs_from, years)
    today = date(2030, 1, 1)
    while today <= date(2037, 12, 31):
        cutoff = latest_due_by(subject, today)
        assert cutoff is not None
        assert due_on(subject, cutoff) <= today < due_on(subject, cutoff + ONE_DAY), today
        today += ONE_DAY


def test_the_cutoff_at_the_ends_of_the_calendar() -> None:
    ten_years = rule("transferred", 10)
    assert latest_due_by(ten_years, date(5, 1, 1)) is None
    assert latest_due_by(ten_years, date.max) == date(9989, 12, 30)


# ------------------------------------------------------------ the shipped rules


def test_every_fact_the_read_model_keeps_has_a_shipped_rule() -> None:
    rules = load_rules()
    assert {rule.runs_from for rule in rules} == set(TRIGGERS)
    naturalised = next(rule for rule in rules if rule.runs_from == "closed_naturalised")
    assert (naturalised.id, naturalised.period_years, naturalised.legal_ground) == (
        "naturalised-10y",
        10,
        "aufenthv-68",
    )


def test_a_file_is_due_the_day_after_its_period_ends_not_on_it(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    def on(day: date) -> None:
        clock.now = datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)

    files: dict[str, tuple[CaseDriver, str, date]] = {}

    def expect(name: str, case: CaseDriver, rule_id: str, due: date) -> None:
        files[name] = (case, rule_id, due)

    on(date(2024, 2, 29))
    moved = CaseDriver.open(service)
    moved("transfer_to_office", to_office_id="abh-b")
    expect("moved", moved, "moved-away-10y", date(2034, 3, 1))
    died = CaseDriver.open(service)
    died("close_case", closure_reason="died")
    expect("died", died, "died-5y", date(2029, 3, 1))
    on(date(2024, 3, 4))
    left = CaseDriver.open(service)
    left("close_case", closure_reason="left")
    expect("left", left, "left-germany-10y", date(2034, 3, 5))
    naturalised = CaseDriver.open(service)
    naturalised("close_case", closure_reason="naturalised")
    expect("naturalised", naturalised, "naturalised-10y", date(2034, 3, 5))
    for name, valid_until, due in (
        ("consent", date(2024, 6, 30), date(2026, 7, 1)),
        ("consent-february", date(2026, 2, 28), date(2028, 3, 1)),
    ):
        consent = CaseDriver.open(service)
        consent("request_entry_consent")
        consent("give_entry_consent", entry_procedure_number=1, valid_until=valid_until)
        expect(name, consent, "entry-consent-only-2y", due)
    catch_up(service, views, [retention_due.PROJECTION])
    rules = load_rules()

    def listed(today: date) -> dict[str, tuple[str, date, int]]:
        return {
            item.case_id: (item.rule_id, item.due_on, item.days_overdue)
            for item in due_files(views, rules, today=today)
        }

    for name, (case, rule_id, due) in files.items():
        assert case.id not in listed(due - ONE_DAY), f"{name} is due on the period's last day"
        assert listed(due).get(case.id) == (rule_id, due, 0), name
        assert listed(due + ONE_DAY).get(case.id) == (rule_id, due, 1), name
