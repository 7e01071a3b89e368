"""Pages of a worklist: filters, a stable order and an opaque cursor.

Every worklist sorts by columns that are never NULL and end in its table's primary key,
so the order is total and stable. The cursor encodes the sort key of the last row of a
page (keyset pagination): the next page starts strictly after it, so rows are neither
repeated nor skipped while paging, and a row inserted or removed meanwhile only moves
what is still to come. A cursor holds the sort key only (ids, dates, numbers), never
personal data; it names its worklist, so it is refused by any other.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final, Generic, Literal, TypeVar

from domain.errors import InvalidValue
from domain.values import require_lawful_day, require_lawful_time
from projections.projection import Table
from projections.storage import ColumnType, ViewsStore

R = TypeVar("R")
T = TypeVar("T")

DEFAULT_PAGE_SIZE: Final = 50
MAX_PAGE_SIZE: Final = 500


class InvalidQuery(ValueError):
    """A worklist query's parameters are invalid (the caller's fault, e.g. HTTP 422)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}")
        self.parameter = parameter


class InvalidCursor(InvalidQuery):
    def __init__(self) -> None:
        super().__init__("cursor", "is not a cursor of this worklist")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass it as ``cursor`` for the next page; ``None`` on the last page."""


Operator = Literal["=", "<", "<=", ">", ">=", "in"]


@dataclass(frozen=True)
class Filter:
    column: str
    operator: Operator
    value: Any


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidQuery("limit", f"must be between 1 and {MAX_PAGE_SIZE}")


def fetch_page(
    views: ViewsStore,
    table: Table[R],
    *,
    filters: Sequence[Filter],
    order: tuple[str, ...],
    limit: int,
    cursor: str | None,
) -> tuple[list[R], str | None]:
    """Rows of ``table`` matching all ``filters``, in ``order``, after ``cursor``."""
    check_limit(limit)
    types = {column.name: column.type for column in table.schema.columns}
    after = None if cursor is None else decode_cursor(cursor, table.name, [types[c] for c in order])
    with views.reader() as session:
        p = session.param
        conditions: list[str] = []
        params: list[Any] = []

        def encoded(column: str, value: Any) -> Any:
            encoder = session.encoder(types[column])
            return value if encoder is None or value is None else encoder(value)

        for item in filters:
            if item.operator == "in":
                values = list(item.value)
                if not values:
                    return [], None
                conditions.append(f"{item.column} IN ({', '.join(p for _ in values)})")
                params += [encoded(item.column, value) for value in values]
            else:
                conditions.append(f"{item.column} {item.operator} {p}")
                params.append(encoded(item.column, item.value))
        if after is not None:
            conditions.append(f"({', '.join(order)}) > ({', '.join(p for _ in order)})")
            params += [encoded(column, value) for column, value in zip(order, after, strict=True)]
        columns = table.schema.column_names
        statement = f"SELECT {', '.join(columns)} FROM {session.table(table.name)}"
        if conditions:
            statement += " WHERE " + " AND ".join(conditions)
        statement += f" ORDER BY {', '.join(order)} LIMIT {int(limit) + 1}"
        raw_rows = session.fetch(statement, params)
        decoders = [session.decoder(column.type) for column in table.schema.columns]
    rows = [table.row(_decoded(raw, decoders)) for raw in raw_rows]
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor(table.name, [getattr(last, column) for column in order])


def _decoded(raw: Sequence[Any], decoders: Sequence[Callable[[Any], Any] | None]) -> list[Any]:
    return [
        value if decoder is None or value is None else decoder(value)
        for value, decoder in zip(raw, decoders, strict=True)
    ]


_MIN_INTEGER: Final = -(2**63)
_MAX_INTEGER: Final = 2**63 - 1


def encode_cursor(worklist: str, key: Sequence[Any]) -> str:
    values = [v.isoformat() if isinstance(v, date | datetime) else v for v in key]
    text = json.dumps([worklist, values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, worklist: str, types: Sequence[ColumnType]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error):
        raise InvalidCursor from None
    if name != worklist or not isinstance(values, list) or len(values) != len(types):
        raise InvalidCursor
    return [
        _cursor_value(value, column_type) for value, column_type in zip(values, types, strict=True)
    ]


def _cursor_value(value: Any, column_type: ColumnType) -> Any:
    """A cursor's value as the store can compare it, or :class:`InvalidCursor`: a client
    may edit a cursor, so only what a page could have handed out passes (text without NUL
    or lone surrogates, 64-bit integers, dates and times of 1900-2199)."""
    try:
        if column_type == "text" and isinstance(value, str):
            if "\x00" in value:
                raise InvalidCursor
            value.encode("utf-8")  # a lone surrogate raises
            return value
        if column_type == "integer" and isinstance(value, int) and not isinstance(value, bool):
            if not _MIN_INTEGER <= value <= _MAX_INTEGER:
                raise InvalidCursor
            return value
        if column_type == "date" and isinstance(value, str):
            day = date.fromisoformat(value)
            require_lawful_day("cursor", day)
            return day
        if column_type == "timestamp" and isinstance(value, str):
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is not None:
                require_lawful_time("cursor", parsed)
                require_lawful_day("cursor", parsed.astimezone(UTC))
                return parsed
    except (ValueError, UnicodeEncodeError, OverflowError, InvalidValue):
        pass
    raise InvalidCursor


def days_between(earlier: date, later: date) -> int:
    return (later - earlier).days
