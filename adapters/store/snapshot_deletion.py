"""Deleting an aggregate's snapshots, in SQL: the library's recorders cannot.

Erasure deletes a case file's snapshots (they were sealed whole with its key), so that
the file is replayed from its redacted events (:mod:`service_data_protection`), and its
kept histories with them; this is
the :class:`service_ports.SnapshotDeletion` port for the library's SQLite and PostgreSQL
snapshot recorders.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.persistence import AggregateRecorder
from psycopg import sql

from adapters.store.kept_history_shelf import KeptHistoryShelf


class RecorderSnapshotDeletion:
    """Deletes from the table of the snapshot recorder it was given."""

    def __init__(self, recorder: AggregateRecorder) -> None:
        self._recorder = recorder

    def delete_snapshots(self, originator_id: UUID) -> int:
        """Deletes the snapshots and, beside them, the kept histories (both are the file
        sealed whole with its key: :mod:`adapters.store.kept_history_shelf`); returns how
        many snapshots there were."""
        KeptHistoryShelf(self._recorder).delete(originator_id)
        recorder: Any = self._recorder
        table = recorder.events_table_name
        datastore = recorder.datastore
        if hasattr(datastore, "schema"):  # PostgreSQL
            statement = sql.SQL("DELETE FROM {}.{} WHERE originator_id = %s").format(
                sql.Identifier(datastore.schema), sql.Identifier(table)
            )
            with datastore.transaction(commit=True) as cursor:
                cursor.execute(statement, (originator_id,))
                return int(cursor.rowcount)
        key = originator_id.hex if datastore.originator_id_type == "uuid" else str(originator_id)
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE originator_id = ?", (key,))
            return int(cursor.sqlite_cursor.rowcount)
