"""The worklist "deadlines" (projections/worklists/deadlines.py) on SQLite and PostgreSQL,
from histories written through the service; checked against the oracle of
tests/support/projections.py and a rebuild, as the other worklists are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest

from adapters.reference.office_holidays import OfficeHolidays
from adapters.settings import Settings
from projections.figures import statistics
from projections.paging import InvalidQuery
from projections.storage import ViewsStore
from projections.worklists.deadlines import deadlines
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import (
    EAT_BASIS,
    OTHER_OFFICE,
    TOPIC,
    CaseDriver,
    catch_up,
    comparable,
    dump,
    expected_rows,
    rebuilt_dump,
    views_for,
)

TODAY = date(2024, 3, 4)  # the FakeClock's first day, a Monday
BERLIN = OfficeHolidays("BE")


class OneHoliday:
    """A calendar with a single public holiday (besides the weekends)."""

    def __init__(self, day: date) -> None:
        self.day = day

    def is_holiday(self, day: date) -> bool:
        return day == self.day


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def listed(views: ViewsStore, **query: Any) -> list[tuple[str, int, int, date, int]]:
    query.setdefault("today", TODAY)
    query.setdefault("holidays", BERLIN)
    page = deadlines(views, **query)
    return [(d.rule, d.number, d.item, d.ends_on, d.days_left) for d in page.items]


def test_a_page_is_filled_past_the_passed_deadlines_it_leaves_out(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """Periods that passed shortly before today are fetched (their stored end may lie
    before their real one) and left out: the page still holds ``limit`` items, not an
    empty page with a cursor."""
    clock.now = datetime(2024, 2, 5, 9, 0, tzinfo=UTC)
    for _ in range(3):
        CaseDriver.open(service)("request_entry_consent")  # ends in late February
    clock.now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    for _ in range(3):
        CaseDriver.open(service)("request_entry_consent")  # ends in late March
    catch_up(service, views)

    first = deadlines(views, today=TODAY, holidays=BERLIN, within_days=60, limit=2)
    assert len(first.items) == 2
    assert first.next_cursor is not None
    rest = deadlines(
        views, today=TODAY, holidays=BERLIN, within_days=60, limit=2, cursor=first.next_cursor
    )
    assert len(rest.items) == 1
    assert all(not item.passed for item in (*first.items, *rest.items))


def test_deadlines_within_the_window_soonest_first(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    other = CaseDriver.open(service, office_id=OTHER_OFFICE)
    entry = case("request_entry_consent")
    case("request_entry_consent", legal_basis="aufenthg-81a")  # no silence period
    procedure = case("receive_procedure", channel="mail", topic=TOPIC, legal_basis=EAT_BASIS)
    case("request_documents", procedure_number=procedure, what=["Pass"], due_on=date(2024, 3, 15))
    case("request_documents", procedure_number=procedure, what=["Foto"], due_on=date(2024, 4, 30))
    fiction = case(
        "issue_fiction_certificate",
        kind="81_3_1",
        valid_from=date(2024, 3, 1),
        valid_until=date(2024, 3, 20),
        carrier_sheet_number="FB0000001",
        procedure_number=procedure,
    )
    other("request_entry_consent")
    catch_up(service, views)

    assert listed(views, office_id="abh-musterstadt") == [
        ("document-request-due", procedure, 1, date(2024, 3, 15), 11),
        ("fiction-certificate-end", fiction, 0, date(2024, 3, 20), 16),
        ("aufenthv-31-deemed-consent", entry, 0, date(2024, 3, 27), 23),
    ]
    assert [row[0] for row in listed(views, office_id=OTHER_OFFICE)] == [
        "aufenthv-31-deemed-consent"
    ]
    assert listed(views, office_id="abh-musterstadt", within_days=11) == [
        ("document-request-due", procedure, 1, date(2024, 3, 15), 11)
    ]
    (first, *_) = deadlines(views, today=TODAY, holidays=BERLIN, office_id="abh-musterstadt").items
    assert first.provision.startswith("§ 82")
    assert first.passed is False

    # Extending the certificate moves its end; deciding the procedure ends its fiction
    # and its document requests; giving the consent ends the silence period and starts
    # the consent's validity.
    case(
        "extend_fiction_certificate",
        certificate_number=fiction,
        valid_until=date(2024, 3, 29),
    )
    case("give_entry_consent", entry_procedure_number=entry, valid_until=date(2024, 3, 30))
    catch_up(service, views)
    assert listed(views, office_id="abh-musterstadt") == [
        ("document-request-due", procedure, 1, date(2024, 3, 15), 11),
        ("fiction-certificate-end", fiction, 0, date(2024, 3, 29), 25),
        ("entry-consent-validity", entry, 0, date(2024, 3, 30), 26),
    ]
    case("decide_procedure", procedure_number=procedure, outcome="granted", legal_basis=None,
         reason=None)  # fmt: skip
    catch_up(service, views)
    assert listed(views, office_id="abh-musterstadt") == [
        ("entry-consent-validity", entry, 0, date(2024, 3, 30), 26),
    ]
    _check_against_oracle_and_rebuild(service, views, [case, other])


def test_passed_deadlines_and_the_office_holidays(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    entry = case("request_entry_consent")
    procedure = case("receive_procedure", channel="mail", topic=TOPIC, legal_basis=EAT_BASIS)
    case("request_documents", procedure_number=procedure, what=["Pass"], due_on=date(2024, 3, 8))
    catch_up(service, views)
    later = date(2024, 3, 20)

    # Passed ones only when asked for, as far back as asked.
    assert listed(views, today=later, within_days=0) == []
    assert listed(views, today=later, within_days=0, passed_within_days=12) == [
        ("document-request-due", procedure, 1, date(2024, 3, 8), -12)
    ]
    assert listed(views, today=later, within_days=0, passed_within_days=11) == []

    # A holiday on the second Werktag moves the end by a day: with the window closing
    # on the day without it, the deadline is not listed yet.
    holiday = OneHoliday(date(2024, 3, 27))
    assert listed(views, within_days=23, holidays=holiday) == [
        ("document-request-due", procedure, 1, date(2024, 3, 8), 4)
    ]
    assert listed(views, within_days=24, holidays=holiday)[-1] == (
        "aufenthv-31-deemed-consent",
        entry,
        0,
        date(2024, 3, 28),
        24,
    )

    # Once the tick records the deemed consent, the deadline is gone.
    clock.now = clock.now.replace(month=4)
    assert service.deadlines.run_deadline_tick().deemed_consents == 1
    catch_up(service, views)
    assert [row[0] for row in listed(views, today=later, passed_within_days=30)] == [
        "document-request-due"
    ]
    _check_against_oracle_and_rebuild(service, views, [case])


def test_the_window_is_bounded(views: ViewsStore) -> None:
    with pytest.raises(InvalidQuery):
        deadlines(views, today=TODAY, holidays=BERLIN, within_days=-1)
    with pytest.raises(InvalidQuery):
        deadlines(views, today=TODAY, holidays=BERLIN, passed_within_days=5000)


def _check_against_oracle_and_rebuild(
    service: AkteService, views: ViewsStore, cases: list[CaseDriver]
) -> None:
    catch_up(service, views)
    incremental = dump(service, views)
    states = [service.get_case(case.case_id) for case in cases]
    assert comparable(incremental) == expected_rows(states)
    assert rebuilt_dump(service, views) == incremental


def test_the_statistics_count_a_deemed_consent(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    case("request_entry_consent")
    case("request_entry_consent")
    case("give_entry_consent", entry_procedure_number=2, valid_until=date(2024, 9, 1))
    clock.now = clock.now.replace(month=4)
    service.deadlines.run_deadline_tick()

    catch_up(service, views, [statistics.PROJECTION])
    rows = dump(service, views, [statistics.PROJECTION])[statistics.FACTS.name]
    columns = statistics.FACTS.schema.column_names
    facts = [dict(zip(columns, row, strict=True)) for row in rows]
    consents = [f for f in facts if f["figure"] == "entry_consents"]
    assert [(f["item"], f["kind"], f["event"], f["legal_basis"]) for f in consents] == [
        (1, "deemed", "EntryConsentDeemedGiven", "aufenthv-31")
    ]
    assert len([f for f in facts if f["figure"] == "entry_procedures"]) == 2


def test_a_consent_deemed_given_counts_in_the_year_its_period_ended(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """The report's figure counts it "im Jahr, in dem die Frist endete": a period that
    ended in December counts in that year, though the tick notices it in January."""
    clock.now = datetime(2024, 12, 2, 9, 0, tzinfo=UTC)
    case = CaseDriver.open(service)
    case("request_entry_consent")
    clock.now = datetime(2025, 1, 3, 9, 0, tzinfo=UTC)
    assert service.deadlines.run_deadline_tick().deemed_consents == 1

    catch_up(service, views, [statistics.PROJECTION])
    rows = dump(service, views, [statistics.PROJECTION])[statistics.FACTS.name]
    columns = statistics.FACTS.schema.column_names
    [consent] = [
        fact
        for fact in (dict(zip(columns, row, strict=True)) for row in rows)
        if fact["figure"] == "entry_consents"
    ]
    assert (consent["year"], consent["month"]) == (2024, 12)
    assert consent["at"].year == 2025, "the drill-down still shows when it was recorded"
    assert rebuilt_dump(service, views, [statistics.PROJECTION]) == dump(
        service, views, [statistics.PROJECTION]
    )


def test_a_period_moved_by_easter_is_listed_until_its_real_end(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """Requested on Wednesday 6 March 2024: three weeks to Wednesday 27 March, two
    Werktage past Good Friday to Saturday 30 March, and past Sunday and Easter Monday to
    Tuesday 2 April (§ 193 BGB). Its stored earliest end (29 March) must not hide it."""
    clock.now = datetime(2024, 3, 6, 9, 0, tzinfo=UTC)
    case = CaseDriver.open(service)
    entry = case("request_entry_consent")
    catch_up(service, views)
    for today in (date(2024, 3, 30), date(2024, 4, 1), date(2024, 4, 2)):
        assert listed(views, today=today) == [
            (
                "aufenthv-31-deemed-consent",
                entry,
                0,
                date(2024, 4, 2),
                (date(2024, 4, 2) - today).days,
            )
        ], today
    # Passed: listed only as far back as asked.
    assert listed(views, today=date(2024, 4, 5)) == []
    assert listed(views, today=date(2024, 4, 5), passed_within_days=3)[0][3] == date(2024, 4, 2)
    assert listed(views, today=date(2024, 4, 5), passed_within_days=2) == []


def test_a_request_after_midnight_in_germany_starts_the_period_on_that_day(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    clock.now = datetime(2024, 3, 4, 23, 30, tzinfo=UTC)  # Tuesday 5 March, 00:30 in Berlin
    case = CaseDriver.open(service)
    entry = case("request_entry_consent")
    catch_up(service, views)
    assert listed(views, today=date(2024, 3, 5)) == [
        ("aufenthv-31-deemed-consent", entry, 0, date(2024, 3, 28), 23)
    ]
    _check_against_oracle_and_rebuild(service, views, [case])
