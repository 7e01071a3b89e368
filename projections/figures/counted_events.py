"""Which events a figure of the yearly report counts: the drill-down, page by page.

Every figure of :class:`~projections.figures.yearly_report.YearlyReport` names its
:class:`~projections.figures.yearly_report.DrillDown`; :func:`figure_events` lists the
counted facts behind it (rows of the statistics read model), so that an auditor can find
each event and check it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from projections.figures.statistics import FACTS, FactRow
from projections.figures.yearly_report import DrillDown
from projections.paging import (
    DEFAULT_PAGE_SIZE,
    Filter,
    check_limit,
    decode_cursor,
    encode_cursor,
    fetch_page,
)
from projections.projection import TOTALS_COUNT
from projections.storage import ViewsStore

EVENT_ORDER: Final = ("at", "case_id", "figure", "item")


@dataclass(frozen=True)
class CountedEvent:
    """One event a figure counts: enough for an auditor to find it and check it."""

    case_id: str
    reference: str
    figure: str
    event: str
    version: int
    at: datetime
    actor: str
    kind: str
    channel: str
    legal_basis: str
    days: int | None
    amount_cents: int
    customer: str
    """Whom the event served (``c:`` case file, ``p:`` person key, ``d:`` declaration)."""


def _counted(row: FactRow) -> CountedEvent:
    return CountedEvent(
        case_id=row.case_id,
        reference=row.reference,
        figure=row.figure,
        event=row.event,
        version=row.version,
        at=row.at,
        actor=row.actor,
        kind=row.kind,
        channel=row.channel,
        legal_basis=row.legal_basis,
        days=row.days if row.days >= 0 else None,
        amount_cents=row.amount_cents,
        customer=row.customer,
    )


@dataclass(frozen=True)
class CountedEvents:
    items: list[CountedEvent]
    next_cursor: str | None


def figure_events(
    views: ViewsStore,
    office_id: str,
    year: int,
    drill_down: DrillDown,
    *,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    customer: str | None = None,
) -> CountedEvents:
    """The events a figure counts, oldest first, a page at a time (``customer``: only
    those that served this customer, the events behind one line of
    :func:`figure_customers`)."""
    if drill_down.open_at_year_end:
        return _open_at_year_end(views, office_id, year, limit=limit, cursor=cursor)
    filters = [
        Filter("office_id", "=", office_id),
        Filter("year", "=", year),
        Filter("figure", "in", list(drill_down.figures)),
    ]
    if drill_down.kinds:
        filters.append(Filter("kind", "in", list(drill_down.kinds)))
    if drill_down.channels:
        filters.append(Filter("channel", "in", list(drill_down.channels)))
    if drill_down.customers_only:
        filters.append(Filter("customer", ">", ""))
    if customer is not None:
        filters.append(Filter("customer", "=", customer))
    rows, next_cursor = fetch_page(
        views, FACTS, filters=filters, order=EVENT_ORDER, limit=limit, cursor=cursor
    )
    return CountedEvents([_counted(row) for row in rows], next_cursor)


def _open_at_year_end(
    views: ViewsStore, office_id: str, year: int, *, limit: int, cursor: str | None
) -> CountedEvents:
    check_limit(limit)
    types = {column.name: column.type for column in FACTS.schema.columns}
    after = (
        None
        if cursor is None
        else decode_cursor(cursor, FACTS.name, [types[name] for name in EVENT_ORDER])
    )
    with views.reader() as session:
        p = session.param
        table = session.table(FACTS.name)
        columns = FACTS.schema.column_names
        encoders = [session.encoder(types[name]) for name in EVENT_ORDER]
        decoders = [session.decoder(column.type) for column in FACTS.schema.columns]
        params: list[Any] = [office_id, year, year]
        condition = ""
        if after is not None:
            encoded = [
                value if encode is None else encode(value)
                for value, encode in zip(after, encoders, strict=True)
            ]
            condition = f" AND (r.at, r.case_id, r.figure, r.item) > ({p}, {p}, {p}, {p})"
            params.extend(encoded)
        sql = (
            f"SELECT {', '.join('r.' + c for c in columns)} FROM {table} r "
            f"WHERE r.office_id = {p} AND r.figure = 'procedures_received' AND r.year <= {p} "
            f"AND NOT EXISTS (SELECT 1 FROM {table} d WHERE d.case_id = r.case_id "
            "AND d.item = r.item AND d.figure IN ('procedures_processed', "
            f"'procedures_transferred_open') AND d.year <= {p}){condition} "
            f"ORDER BY r.at, r.case_id, r.figure, r.item LIMIT {int(limit) + 1}"
        )
        raw = session.fetch(sql, params)
    rows = [
        FACTS.row([v if f is None or v is None else f(v) for v, f in zip(r, decoders, strict=True)])
        for r in raw
    ]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = (
        encode_cursor(FACTS.name, [getattr(rows[-1], name) for name in EVENT_ORDER])
        if more and rows
        else None
    )
    return CountedEvents([_counted(row) for row in rows], next_cursor)


@dataclass(frozen=True)
class Customer:
    """One customer of the year (see
    :data:`~projections.figures.yearly_report.CUSTOMERS_DEFINITION`) and how many counted
    events served them; :func:`figure_events` with ``customer`` lists those events."""

    customer: str
    """``c:<case file id>``, ``p:<person key>`` (a keyed pseudonym) or ``d:<declaration>``."""
    events: int


@dataclass(frozen=True)
class Customers:
    items: list[Customer]
    next_cursor: str | None


_CUSTOMERS_TABLE: Final = FACTS.totals_schemas[-1].name


def figure_customers(
    views: ViewsStore,
    office_id: str,
    year: int,
    *,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Customers:
    """The distinct customers of ``year``, a page at a time: as many lines as the
    customers figure says (the drill-down of that figure adds up line by line)."""
    check_limit(limit)
    after = None if cursor is None else decode_cursor(cursor, _CUSTOMERS_TABLE, ["text"])
    with views.reader() as session:
        p = session.param
        params: list[Any] = [office_id, year]
        condition = ""
        if after is not None:
            condition = f" AND customer > {p}"
            params.append(after[0])
        raw = session.fetch(
            f"SELECT customer, {TOTALS_COUNT} FROM {session.table(_CUSTOMERS_TABLE)} "
            f"WHERE office_id = {p} AND year = {p} AND customer <> '' "
            f"AND {TOTALS_COUNT} <> 0{condition} ORDER BY customer LIMIT {int(limit) + 1}",
            params,
        )
    items = [Customer(str(customer), int(count)) for customer, count in raw[:limit]]
    more = len(raw) > limit
    next_cursor = encode_cursor(_CUSTOMERS_TABLE, [items[-1].customer]) if more else None
    return Customers(items, next_cursor)
