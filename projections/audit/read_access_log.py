"""Audit trail "who read which case file": the read-access log, for auditors.

A row per :class:`domain.read_access.ReadAccess`: the reader, when, which case file (or
none, for reads of this log), its office and the route. The engine keys rows by
aggregate, and each read is an aggregate of its own, so ``case_id`` here is the read's
id and ``file_id`` the case file read.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import datetime

from domain.read_access import ReadAccess
from projections.paging import DEFAULT_PAGE_SIZE, Filter, InvalidQuery, Page, fetch_page
from projections.projection import CaseRows, Projection, Table, handlers, on
from projections.storage import ViewsStore

NAME = "read_access_log"


@dataclass
class ReadRow:
    case_id: str
    """The read's own id (the engine's key), not a case file's."""
    office_id: str
    """The case file's office; empty for reads of the log across all offices."""
    reference: str
    """Always empty: reads carry no file numbers."""
    file_id: str
    """The case file read; empty for reads of the access log."""
    by: str
    at: datetime
    endpoint: str


TABLE = Table(
    f"{NAME}_rows",
    ReadRow,
    indexes=(
        ("file_id", "at", "case_id"),
        ("by", "at", "case_id"),
        ("office_id", "at", "case_id"),
        ("at", "case_id"),
    ),
)
ORDER = ("at", "case_id")


def _opener(event: ReadAccess.Recorded) -> tuple[str, str]:
    return event.office_id or "", ""


def _recorded(case: CaseRows, event: ReadAccess.Recorded) -> None:
    case.put(
        TABLE,
        ReadRow(
            case_id=case.case_id,
            office_id=case.office_id,
            reference="",
            file_id=event.case_id or "",
            by=event.by,
            at=event.at,
            endpoint=event.endpoint,
        ),
    )


PROJECTION = Projection(
    name=NAME,
    tables=(TABLE,),
    handlers=handlers(on(ReadAccess.Recorded, _recorded)),
    active_cases_only=False,
    openers=types.MappingProxyType({ReadAccess.Recorded: _opener}),
)


def reads(
    views: ViewsStore,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: str | None = None,
    by: str | None = None,
    office_id: str | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[ReadRow]:
    """Reads in ``[since, until)`` matching every criterion given, oldest first."""
    if since is not None and until is not None and until <= since:
        raise InvalidQuery("until", "must be after from")
    filters = []
    if since is not None:
        filters.append(Filter("at", ">=", since))
    if until is not None:
        filters.append(Filter("at", "<", until))
    if case_id is not None:
        filters.append(Filter("file_id", "=", case_id))
    if by is not None:
        filters.append(Filter("by", "=", by))
    if office_id is not None:
        filters.append(Filter("office_id", "=", office_id))
    rows, next_cursor = fetch_page(
        views, TABLE, filters=filters, order=ORDER, limit=limit, cursor=cursor
    )
    return Page(rows, next_cursor)
