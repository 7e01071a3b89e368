"""The statistics read model and the yearly report read from it.

For any history: the facts and their totals are the same however the log is cut into
batches and however often the read model is rebuilt; the totals equal a count over the
facts; every figure equals a naive count over the raw events; and every drill-down list
adds up to its figure. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given

from adapters.settings import Settings
from projections.engine import ProjectionEngine
from projections.figures import statistics
from projections.figures.counted_events import Customer, figure_customers, figure_events
from projections.figures.statistics import FACTS
from projections.figures.yearly_report import (
    FIGURE_KEYS,
    TRANSLATIONS,
    DrillDown,
    Figure,
    YearlyReport,
    yearly_report,
)
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.projections.test_engine_properties import History, Step, histories, settings_for
from tests.support.appointments import POINT, STUDENT, local, person, proof, set_up
from tests.support.projections import (
    EAT_BASIS,
    OFFICE,
    TOPIC,
    CaseDriver,
    engine_for,
    views_for,
)
from tests.support.statistics_oracle import CHANNELS, KINDS, OUTCOMES, naive_figures

STATISTICS = [statistics.PROJECTION]


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def _rebuilt(service: AkteService, views: ViewsStore, batch_size: int = 5000) -> dict[str, Any]:
    with engine_for(service, views, STATISTICS, batch_size=batch_size) as engine:
        engine.rebuild()
        return engine.dump()


def totals_from_facts(facts: list[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """The four totals tables, counted afresh from the fact rows."""
    columns = FACTS.schema.column_names
    at = {name: index for index, name in enumerate(columns)}
    expected: dict[str, list[tuple[Any, ...]]] = {}
    for totals, schema in zip(FACTS.totals, FACTS.totals_schemas, strict=True):
        counts: Counter[tuple[Any, ...]] = Counter()
        sums: Counter[tuple[Any, ...]] = Counter()
        for row in facts:
            group = tuple(row[at[name]] for name in totals.group_by)
            counts[group] += 1
            for name in totals.sums:
                sums[group] += row[at[name]]
        expected[schema.name] = sorted(
            (*group, count, *((sums[group],) if totals.sums else ()))
            for group, count in counts.items()
        )
    return expected


class StatisticsHistory(History):
    """Generated histories that run over months and years (so facts fall into several
    years, some on either side of midnight in Berlin), kept by the statistics model."""

    def _new_engine(self, batch_size: int) -> ProjectionEngine:
        self._engines.close()
        self._engines = ExitStack()
        return self._engines.enter_context(
            engine_for(self.service, self.views, STATISTICS, batch_size=batch_size)
        )

    def run(self, step: Step) -> None:
        name, pick, a, b = step
        if name == "advance":
            self.clock.advance(days=b * 4, hours=a * 3 + pick)
            return
        super().run(step)

    def check(self) -> None:
        self.engine.catch_up()
        incremental = self.engine.dump()
        facts = incremental[FACTS.name]
        for name, rows in totals_from_facts(facts).items():
            assert incremental[name] == rows, name
        assert _rebuilt(self.service, self.views, batch_size=7) == incremental
        years = sorted({row[5] for row in facts})
        for year in years[-2:]:
            report = yearly_report(self.views, OFFICE, year)
            assert comparable_figures(report_figures(report)) == comparable_figures(
                naive_figures(self.service, OFFICE, year)
            )
            assert_drill_downs_add_up(self.views, report)
        self.engine = self._new_engine(batch_size=3)


def report_figures(report: YearlyReport) -> dict[str, Any]:
    """The report's figures in the shape of the naive oracle's."""
    figure = report.figure

    def count(key: str) -> int:
        return int(figure(key).value or 0)

    documents = figure("residence_documents_issued")
    received = figure("procedures_received")
    processed = figure("procedures_processed")
    # A figure not recorded yet (no event of its kind so far) has no breakdown.
    by_channel = _untranslated(processed.breakdowns.get("Eingangsweg", {}))
    digital = sum(by_channel.get(channel, 0) for channel in ("contact_form", "online_application"))
    share = figure("digital_share").value
    median = figure("days_to_decision_median").value
    p90 = figure("days_to_decision_p90").value
    return {
        "year": report.year,
        "office_id": report.office_id,
        "appointments_served": count("appointments_served"),
        "customers": count("customers"),
        "no_show_rate": figure("no_show_rate").value,
        "residence_documents_issued": {
            "total": count("residence_documents_issued"),
            "by_kind": _all(_untranslated(documents.breakdowns.get("Art", {})), KINDS),
        },
        "fiction_certificates_issued": count("fiction_certificates_issued"),
        "fiction_certificates_extended": count("fiction_certificates_extended"),
        "procedures_received": {
            "total": count("procedures_received"),
            "by_channel": _all(_untranslated(received.breakdowns.get("Eingangsweg", {})), CHANNELS),
        },
        "procedures_processed": {
            "total": count("procedures_processed"),
            "digital": digital,
            "digital_share": None if share is None else share / 100,
            "by_channel": _all(by_channel, CHANNELS),
            "by_outcome": _all(_untranslated(processed.breakdowns.get("Ergebnis", {})), OUTCOMES),
            "by_legal_basis": _untranslated(processed.breakdowns.get("Rechtsgrundlage", {})),
        },
        "entry_procedures": count("entry_procedures"),
        "integration_course_entitlements": count("integration_course_entitlements"),
        "integration_course_obligations": count("integration_course_obligations"),
        "commitment_declarations": count("commitment_declarations"),
        "commitment_fees_cents": round(
            100 * figure("commitment_fees_eur").breakdowns.get("Buchung", {}).get("bezahlt", 0)
        ),
        "civil_registry_inquiries": count("civil_registry_inquiries"),
        "naturalisation_inquiries": count("naturalisation_inquiries"),
        "backlog_at_year_end": count("backlog_at_year_end"),
        "days_to_decision_median": median,
        "days_to_decision_p90": None if p90 is None else int(p90),
    }


def comparable_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The digital share as the report rounds it (one decimal of a percent)."""
    processed = dict(figures["procedures_processed"])
    share = processed["digital_share"]
    processed["digital_share"] = None if share is None else round(100 * share, 1)
    return figures | {"procedures_processed": processed}


def _all(counts: dict[str, int], keys: tuple[str, ...]) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in keys}


_GERMAN = {german: key for key, german in TRANSLATIONS.items()}


def _untranslated(breakdown: Any) -> dict[str, int]:
    return {_GERMAN.get(key, key): int(value) for key, value in breakdown.items()}


def all_counted(
    views: ViewsStore, year: int, drill_down: DrillDown, office: str = OFFICE, limit: int = 3
) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        page = figure_events(views, office, year, drill_down, limit=limit, cursor=cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


def assert_drill_downs_add_up(views: ViewsStore, report: YearlyReport, limit: int = 3) -> None:
    for figure in report.figures:
        if figure.key.startswith("staff_"):
            continue  # from the staff plan, configuration: no events behind it
        if figure.drill_down is None:
            assert figure.value is None, figure.key  # not recorded: nothing to list
            continue
        events = all_counted(views, report.year, figure.drill_down, report.office_id, limit)
        assert len({(e.case_id, e.figure, e.version, e.event) for e in events}) == len(events)
        assert_adds_up(figure, events)
        if figure.key == "customers":
            assert_customers_add_up(views, report, figure, events, limit)


def assert_customers_add_up(
    views: ViewsStore, report: YearlyReport, figure: Figure, events: list[Any], limit: int
) -> None:
    """The customers' drill-down lists as many customers as the figure says, each with
    the events behind it."""
    customers: list[Customer] = []
    cursor = None
    while True:
        page = figure_customers(views, report.office_id, report.year, limit=limit, cursor=cursor)
        customers.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(customers) == figure.value
    assert len({c.customer for c in customers}) == len(customers)
    served = Counter(e.customer for e in events)
    assert {c.customer: c.events for c in customers} == dict(served)
    for customer in sorted(customers, key=lambda c: -c.events)[:3]:
        behind: list[Any] = []
        cursor = None
        while True:
            page_of = figure_events(
                views,
                report.office_id,
                report.year,
                figure.drill_down or DrillDown(()),
                customer=customer.customer,
                limit=limit,
                cursor=cursor,
            )
            behind.extend(page_of.items)
            cursor = page_of.next_cursor
            if cursor is None:
                break
        assert len(behind) == customer.events
        assert {e.customer for e in behind} == {customer.customer}


def assert_adds_up(figure: Figure, events: list[Any]) -> None:
    if figure.key == "customers":
        assert len({e.customer for e in events}) == figure.value
        assert all(e.customer for e in events)
    elif figure.key == "no_show_rate":
        missed = sum(e.figure == "appointment_no_shows" for e in events)
        expected = round(100 * missed / len(events), 1) if events else None
        assert figure.value == expected
    elif figure.unit == "count":
        assert len(events) == figure.value, figure.key
    elif figure.unit == "eur":
        paid = sum(e.amount_cents for e in events if e.figure == "commitment_fees_paid")
        refunded = sum(e.amount_cents for e in events if e.figure == "commitment_fees_refunded")
        assert (paid - refunded) / 100 == figure.value
    elif figure.unit == "days":
        days = sorted(e.days for e in events)
        expected_days: float | None = None
        if days and figure.key.endswith("median"):
            # The true median: the mean of the two middle values for an even count.
            expected_days = (days[(len(days) - 1) // 2] + days[len(days) // 2]) / 2
        elif days:
            rank = max(1, math.ceil(0.9 * len(days)))  # p90: nearest rank
            expected_days = float(days[rank - 1])
        assert figure.value == expected_days, figure.key
    elif figure.unit == "percent":
        assert figure.key == "digital_share"


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_statistics_are_the_same_however_the_history_is_cut_and_rebuilt(
    service: AkteService, views: ViewsStore, clock: FakeClock, settings: Settings
) -> None:
    history = StatisticsHistory(service, views, clock)
    examples = 25 if settings.store == "sqlite" else 12

    @settings_for(examples)
    @given(steps=histories)
    def check_history(steps: list[Step]) -> None:
        history.start_example()
        for step in steps:
            history.run(step)
        history.check()

    try:
        check_history()
    finally:
        history.close()


def test_a_fact_belongs_to_the_year_of_its_business_time_in_berlin(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    clock.now = datetime(2025, 2, 3, 9, tzinfo=UTC)
    case = CaseDriver.open(service, at=datetime(2024, 12, 31, 20, 0, tzinfo=UTC))
    # 23:30 UTC on New Year's Eve is already 00:30 on 1 January in Berlin.
    late = datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    number = case("receive_procedure", channel="mail", topic=TOPIC, at=late)
    case(
        "decide_procedure",
        procedure_number=number,
        outcome="granted",
        reason=None,
        at=datetime(2025, 1, 20, 8, 0, tzinfo=UTC),
    )
    early = datetime(2024, 12, 31, 22, 30, tzinfo=UTC)  # 23:30 in Berlin: still 2024
    case("receive_procedure", channel="mail", topic=TOPIC, at=early)
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    in_2024 = yearly_report(views, OFFICE, 2024)
    in_2025 = yearly_report(views, OFFICE, 2025)
    assert in_2024.figure("procedures_received").value == 1
    assert in_2024.figure("backlog_at_year_end").value == 1
    assert in_2025.figure("procedures_received").value == 1
    assert in_2025.figure("procedures_processed").value == 1
    assert in_2025.figure("days_to_decision_median").value == 19  # 1 Jan to 20 Jan
    assert in_2025.figure("backlog_at_year_end").value == 1
    assert in_2025.figure("backlog_at_year_end").previous == 1
    assert in_2025.figure("procedures_received").by_month == (1.0,) + (0.0,) * 11


def test_a_person_whose_only_visit_moved_their_eat_to_a_new_passport_is_a_customer(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    # Issued in 2024; in 2025 the person only came for the Übertrag to a new passport.
    clock.now = datetime(2024, 5, 6, 9, tzinfo=UTC)
    case = CaseDriver.open(service)
    number = case(
        "issue_residence_document",
        kind="eat",
        legal_basis=EAT_BASIS,
        valid_from=date(2024, 5, 1),
        valid_until=date(2027, 5, 1),
        document_number="Y0000001",
        procedure_number=None,
    )
    clock.now = datetime(2025, 3, 4, 9, tzinfo=UTC)
    case(
        "transfer_eat_to_new_passport", residence_document_number=number, new_card_number="N0000001"
    )
    clock.now = datetime(2026, 2, 3, 9, tzinfo=UTC)
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    report = yearly_report(views, OFFICE, 2025)
    assert report.figure("customers").value == 1
    assert naive_figures(service, OFFICE, 2025)["customers"] == 1


def test_the_median_of_an_even_count_is_the_mean_of_the_two_middle_values(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    clock.now = datetime(2025, 2, 3, 9, tzinfo=UTC)
    received = datetime(2024, 3, 1, 9, tzinfo=UTC)
    for days in (10, 20):
        case = CaseDriver.open(service, at=received)
        number = case("receive_procedure", channel="mail", topic=TOPIC, at=received)
        case(
            "decide_procedure",
            procedure_number=number,
            outcome="granted",
            reason=None,
            at=received + timedelta(days=days),
        )
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    report = yearly_report(views, OFFICE, 2024)
    assert report.figure("days_to_decision_median").value == 15.0  # not the lower, 10
    assert report.figure("days_to_decision_p90").value == 20.0  # p90 stays nearest rank


def test_each_figure_is_recorded_from_its_own_first_event_or_the_configured_start(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    # A resident's file with a procedure of 2014, and one of 2024; nothing decided yet.
    clock.now = datetime(2014, 3, 4, 9, tzinfo=UTC)
    old_file = CaseDriver.open(service)
    old_file("receive_procedure", channel="mail", topic=TOPIC, at=clock.now)
    clock.now = datetime(2024, 5, 6, 9, tzinfo=UTC)
    case = CaseDriver.open(service)
    case("receive_procedure", channel="mail", topic=TOPIC, at=clock.now)
    clock.now = datetime(2025, 6, 3, 9, tzinfo=UTC)
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()

    report = yearly_report(views, OFFICE, 2024)

    received = report.figure("procedures_received")
    assert (received.value, received.previous) == (1, 0)  # recorded since 2014: a real 0
    processed = report.figure("procedures_processed")
    assert (processed.value, processed.previous) == (None, None)  # none decided ever
    configured = yearly_report(views, OFFICE, 2024, recorded_since=2024)
    received = configured.figure("procedures_received")
    # Recording in Akte started in 2024: 2023 is not recorded, not 0 (no +100 %).
    assert (received.value, received.previous) == (1, None)
    assert (
        yearly_report(views, OFFICE, 2014, recorded_since=2024).figure("procedures_received").value
        is None
    )


def test_a_year_before_the_offices_first_event_is_not_recorded_never_zero(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    clock.now = datetime(2025, 2, 3, 9, tzinfo=UTC)
    first_day = datetime(2024, 5, 6, 9, tzinfo=UTC)
    case = CaseDriver.open(service, at=first_day)
    case("receive_procedure", channel="mail", topic=TOPIC, at=first_day)
    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
    before_the_log = yearly_report(views, OFFICE, 2023)
    for figure in before_the_log.figures:
        assert figure.value is None, figure.key  # nothing was recorded then: not 0
        assert figure.by_month is None
        assert figure.drill_down is None
    first = yearly_report(views, OFFICE, 2024)
    received = first.figure("procedures_received")
    assert (received.value, received.previous) == (1, None)
    assert (first.figure("customers").value, first.figure("customers").previous) == (1, None)
    # Recorded from the first event of its own kind: an office whose log holds no
    # appointment yet has not recorded appointments (not: served none).
    assert first.figure("appointments_served").value is None
    assert first.figure("no_show_rate").value is None  # no appointments: no rate
    quiet = yearly_report(views, OFFICE, 2025).figure("procedures_received")
    assert (quiet.value, quiet.previous) == (0, 1)
    assert any("Kundinnen und Kunden" in note for note in first.notes)
    assert tuple(figure.key for figure in first.figures) == FIGURE_KEYS


def test_an_appointment_counts_in_the_year_of_its_day_not_of_its_recording(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """A no-show of 30 December recorded after the holidays, on 2 January, is one of the
    old year's appointments: the report of the new year must not count it."""
    set_up(service)
    clock.now = local(date(2024, 12, 16), 10)
    booked = []
    for n, hour in enumerate((9, 10)):
        recorded = service.appointments.book_appointment(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            starts_at=local(date(2024, 12, 30), hour),
            situation=STUDENT,
            person=person(n),
            proof=proof(service),
            by="public",
        )
        booked.append(recorded.appointment_id)
    missed, attended = booked
    clock.now = local(date(2024, 12, 30), 9, 55)
    version = service.appointments.check_in_appointment(
        attended, expected_version=3, by="sb-01"
    ).version
    service.appointments.record_attended(attended, expected_version=version, by="sb-01")
    clock.now = local(date(2025, 1, 2), 8, 5)
    service.appointments.record_no_show(missed, expected_version=3, by="sb-01")

    with engine_for(service, views, STATISTICS) as engine:
        engine.catch_up()
        facts = engine.dump()[FACTS.name]
    at = {name: index for index, name in enumerate(FACTS.schema.column_names)}
    assert sorted((row[at["figure"]], row[at["year"]], row[at["month"]]) for row in facts) == [
        ("appointment_no_shows", 2024, 12),
        ("appointments_served", 2024, 12),
    ]
    assert yearly_report(views, OFFICE, 2024).figure("no_show_rate").value == 50.0
    assert yearly_report(views, OFFICE, 2025).figure("no_show_rate").value is None
    assert naive_figures(service, OFFICE, 2024)["no_show_rate"] == 50.0
    assert naive_figures(service, OFFICE, 2025)["no_show_rate"] is None
