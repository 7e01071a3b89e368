"""Payments in time (issue 19, point 7): a fee counts in the year the payment platform
says it was paid, never before the payment was started. Down to the yearly report's
fee figure; on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest

from adapters.settings import Settings
from domain.commitment_declaration import CommitmentDeclaration
from domain.errors import BusinessTimeBeforeFact
from projections.figures import statistics
from projections.figures.yearly_report import FEE_PAYMENTS, yearly_report
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.service.test_declarations import report, start, submit
from tests.support.declarations import OFFICE, RecordingProvider
from tests.support.projections import engine_for, views_for

BERLIN = ZoneInfo("Europe/Berlin")
FEE_CENTS = 2900


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


def fees(service: AkteService, views: ViewsStore, year: int) -> tuple[float | None, float]:
    """The report's fee figure for ``year``: euros, and how many payments make it up."""
    with engine_for(service, views, [statistics.PROJECTION]) as engine:
        engine.catch_up()
    figure = yearly_report(views, OFFICE, year).figure("commitment_fees_eur")
    return figure.value, figure.breakdowns.get(FEE_PAYMENTS, {}).get("bezahlt", 0)


def started_on_new_year_s_eve(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> tuple[UUID, str]:
    clock.now = datetime(2025, 12, 31, 18, 0, tzinfo=BERLIN)
    declaration_id, _ = submit(service, clock)
    clock.advance(hours=4)  # 22:00 in Berlin, still 2025
    return declaration_id, start(service, declaration_id, provider)


def test_a_payment_started_on_new_year_s_eve_and_paid_on_2_january_counts_in_the_new_year(
    service: AkteService, clock: FakeClock, provider: RecordingProvider, views: ViewsStore
) -> None:
    declaration_id, transaction_id = started_on_new_year_s_eve(service, clock, provider)
    _, paid_at_once = started_on_new_year_s_eve(service, clock, provider)
    paid = datetime(2026, 1, 2, 9, 30, tzinfo=BERLIN)
    clock.now = datetime(2026, 1, 2, 11, 0, tzinfo=BERLIN)  # the platform reports later

    assert report(service, transaction_id, "paid", occurred_at=paid) == "recorded"
    # The other one was paid at 23:50 on New Year's Eve, reported on 2 January too.
    on_eve = datetime(2025, 12, 31, 23, 50, tzinfo=BERLIN)
    assert report(service, paid_at_once, "paid", occurred_at=on_eve) == "recorded"

    fee_paid = service.declarations.declaration_events(declaration_id)[-1]
    assert isinstance(fee_paid, CommitmentDeclaration.FeePaid)
    assert fee_paid.at == paid
    assert fees(service, views, 2025) == (FEE_CENTS / 100, 1)
    assert fees(service, views, 2026) == (FEE_CENTS / 100, 1)


def test_a_paid_report_dated_before_the_start_counts_at_the_start_not_a_year_earlier(
    service: AkteService, clock: FakeClock, provider: RecordingProvider, views: ViewsStore
) -> None:
    clock.now = datetime(2025, 12, 31, 23, 0, tzinfo=BERLIN)
    declaration_id, _ = submit(service, clock)
    clock.advance(minutes=70)  # started at 00:10 on 1 January 2026
    transaction_id = start(service, declaration_id, provider)
    started = clock.now
    clock.now = datetime(2026, 1, 2, 11, 0, tzinfo=BERLIN)

    # A platform whose clock runs behind reports "paid" at 23:55 on New Year's Eve, before
    # the payment was started: that would move the fee into 2025.
    behind = datetime(2025, 12, 31, 23, 55, tzinfo=BERLIN)
    assert report(service, transaction_id, "paid", occurred_at=behind) == "recorded"

    fee_paid = service.declarations.declaration_events(declaration_id)[-1]
    assert isinstance(fee_paid, CommitmentDeclaration.FeePaid)
    assert fee_paid.at == started  # the earliest moment that can be true
    assert fees(service, views, 2025) == (None, 0)  # no fee recorded in 2025
    assert fees(service, views, 2026) == (FEE_CENTS / 100, 1)


def test_the_domain_refuses_a_report_dated_before_the_start(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, transaction_id = started_on_new_year_s_eve(service, clock, provider)
    declaration = service.declarations.get_declaration(declaration_id)
    started = declaration.payment_by_transaction(transaction_id).initiated_at

    # The rule itself, below the service's bound: nothing paid before it was started.
    with pytest.raises(BusinessTimeBeforeFact) as refused:
        declaration.settle_payment(
            transaction_id=transaction_id,
            outcome="paid",
            amount_cents=FEE_CENTS,
            currency="EUR",
            method=None,
            act=service.act("epayment", started - timedelta(hours=1)),
        )
    assert refused.value.field == "occurred_at"


def test_a_paid_report_dated_ahead_of_the_office_s_clock_counts_when_it_is_recorded(
    service: AkteService, clock: FakeClock, provider: RecordingProvider, views: ViewsStore
) -> None:
    _, transaction_id = started_on_new_year_s_eve(service, clock, provider)
    clock.now = datetime(2025, 12, 31, 23, 59, 50, tzinfo=BERLIN)

    # The platform's clock runs ahead into the new year: taken as our "now", 2025.
    report(service, transaction_id, "paid", occurred_at=clock.now + timedelta(seconds=30))

    assert fees(service, views, 2025) == (FEE_CENTS / 100, 1)
    assert fees(service, views, 2026) == (0, 0)
