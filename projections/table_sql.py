"""The SQL the engine reads and writes a read model's tables with, prepared once per table
and dialect, with the column converters of the views store's driver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from projections.projection import Table
from projections.storage import TableSchema, ViewsSession, ViewsWriter


class TableSql:
    """SQL of one table in one dialect, and the column converters, prepared once."""

    def __init__(self, session: ViewsSession, table: Table[Any]) -> None:
        schema = table.schema
        self.table = table
        self.qualified = session.table(schema.name)
        self.columns = schema.column_names
        column_list = ", ".join(self.columns)
        self.select_prefix = f"SELECT {column_list} FROM {self.qualified} WHERE "
        key_positions = [self.columns.index(name) for name in table.key]
        self.key_of_values: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda values: tuple(
            values[i] for i in key_positions
        )
        by_name = {column.name: column for column in schema.columns}
        self.key_columns = tuple(by_name[name] for name in schema.primary_key)
        """The primary key's columns: ``case_id`` and the table's ``key``."""
        self.key_encoders = [session.encoder(column.type) for column in self.key_columns]
        self.key_encode_any = any(self.key_encoders)
        self.encoders = [session.encoder(column.type) for column in schema.columns]
        self.decoders = [session.decoder(column.type) for column in schema.columns]
        self.encode_any = any(self.encoders)
        self.decode_any = any(self.decoders)
        self.totals = [
            TotalsSql(session, schema, totals_schema) for totals_schema in table.totals_schemas
        ]

    def encode(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        if not self.encode_any:
            return values
        return encoded(values, self.encoders)

    def insert(self, writer: ViewsWriter, rows: list[tuple[Any, ...]]) -> None:
        if self.encode_any:
            rows = [encoded(values, self.encoders) for values in rows]
        writer.insert_rows(self.table.name, self.columns, rows)

    def delete_keys(self, writer: ViewsWriter, keys: list[tuple[Any, ...]]) -> None:
        """Delete the rows of these primary keys (``case_id`` and the table's key)."""
        if self.key_encode_any:
            keys = [encoded(key, self.key_encoders) for key in keys]
        condition, params = writer.keys_in(self.key_columns, keys)
        writer.execute(f"DELETE FROM {self.qualified} WHERE {condition}", params)

    def decode(self, values: Sequence[Any]) -> tuple[Any, ...]:
        if not self.decode_any:
            return tuple(values)
        return tuple(
            v if f is None or v is None else f(v)
            for v, f in zip(values, self.decoders, strict=True)
        )


class TotalsSql:
    """The SQL that adds a batch's differences to one totals table."""

    def __init__(self, session: ViewsSession, counted: TableSchema, schema: TableSchema) -> None:
        self.name = schema.name
        self.qualified = session.table(schema.name)
        self.columns = schema.column_names
        counted_names = counted.column_names
        group = schema.primary_key
        sums = self.columns[len(group) + 1 :]
        group_at = [counted_names.index(name) for name in group]
        sums_at = [counted_names.index(name) for name in sums]
        self.group_of: Callable[[tuple[Any, ...]], tuple[Any, ...]] = lambda values: tuple(
            values[i] for i in group_at
        )
        self.sums_of: Callable[[tuple[Any, ...]], tuple[int, ...]] = lambda values: tuple(
            values[i] or 0 for i in sums_at
        )
        self.width = len(sums) + 1
        self.encoders = [session.encoder(column.type) for column in schema.columns[: len(group)]]
        self.decoders = [session.decoder(column.type) for column in schema.columns]
        added = ", ".join(
            f"{name} = {self.qualified}.{name} + excluded.{name}"
            for name in self.columns[len(group) :]
        )
        placeholders = ", ".join(session.param for _ in self.columns)
        self.upsert = (
            f"INSERT INTO {self.qualified} ({', '.join(self.columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(group)}) DO UPDATE SET {added}"
        )

    def add(
        self,
        differences: dict[tuple[Any, ...], list[int]],
        rows: Iterable[tuple[Any, ...]],
        sign: int,
    ) -> None:
        """Count ``rows`` (values of the counted table) into ``differences`` with ``sign``."""
        for values in rows:
            difference = differences.get(group := self.group_of(values))
            if difference is None:
                difference = differences[group] = [0] * self.width
            difference[0] += sign
            for index, amount in enumerate(self.sums_of(values), start=1):
                difference[index] += sign * amount

    def write(self, writer: ViewsWriter, differences: dict[tuple[Any, ...], list[int]]) -> None:
        changes = [
            (*encoded(group, self.encoders), *difference)
            for group, difference in differences.items()
            if any(difference)
        ]
        if changes:
            writer.executemany(self.upsert, changes)

    def decode(self, values: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(
            v if f is None or v is None else f(v)
            for v, f in zip(values, self.decoders, strict=True)
        )


def encoded(
    values: tuple[Any, ...], encoders: Sequence[Callable[[Any], Any] | None]
) -> tuple[Any, ...]:
    return tuple(
        v if f is None or v is None else f(v) for v, f in zip(values, encoders, strict=True)
    )
