"""The fee figure in the report's formats, read from events: amounts in euros, the
payments behind them counted, and paid and refunded never shown as shares of a sum."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime

from adapters.reports.yearly_report import report_csv, report_html, report_json
from adapters.settings import Settings
from projections.figures import statistics
from projections.figures.yearly_report import FEE_PAYMENTS, yearly_report
from service import AkteService
from tests.conftest import FakeClock
from tests.support import declarations as d
from tests.support.projections import engine_for, views_for


def test_payments_are_counted_not_euros_and_paid_and_refunded_have_no_shares(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    clock.now = datetime(2025, 1, 15, 9, tzinfo=UTC)
    declarations = [d.handed_over(), d.paid(), d.paid()]
    declarations[2].refund_payment(payment_number=None, reason="zurückgezogen", act=d.act())
    for declaration in declarations:
        service.save(declaration)
    with views_for(settings) as views:
        with engine_for(service, views, [statistics.PROJECTION]) as engine:
            engine.catch_up()
        report = yearly_report(views, d.OFFICE, 2024)

    rows = [
        row
        for row in csv.DictReader(io.StringIO(report_csv(report)))
        if row["key"] == "commitment_fees_eur" and row["breakdown"]
    ]
    units = {(row["breakdown"], row["item"]): row["unit"] for row in rows}
    assert units[FEE_PAYMENTS, "bezahlt"] == units[FEE_PAYMENTS, "erstattet"] == "count"
    assert units["Buchung", "bezahlt"] == "eur"
    fees = next(f for f in report_json(report)["figures"] if f["key"] == "commitment_fees_eur")
    assert fees["breakdown_units"] == {"Buchung": "eur", FEE_PAYMENTS: "count"}
    html = report_html(report)
    titles = re.findall(r"<title>((?:bezahlt|erstattet)[^<]*)</title>", html)
    assert titles, "the breakdown charts are on the page"
    assert not [title for title in titles if "%" in title], titles
