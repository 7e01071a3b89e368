"""Whether PostgreSQL keeps the planner's statistics of the event table up to date.

Loading an aggregate is the library's ``SELECT ... WHERE originator_id = $1 ORDER BY
originator_version``. Without statistics the planner guesses some 75,000 rows per
aggregate on a table of a few million, and plans a parallel bitmap scan with a sort and
JIT compilation for every load instead of one short index scan: a simulation on a server
with autovacuum off fell from about 110,000 to 34,000 events a minute at 4.6 million
events, and one ``ANALYZE`` brought it back (docs/performance/state.md). Autovacuum
analyzes the table as it grows (the library creates it with an analyze threshold of 1,000
rows and 1 %); with it off (server-wide, or for the table), someone must run ``ANALYZE``
instead. ``akte serve`` says so when it starts; a bulk writer (``akte simulate``, the
benchmarks' simulations) runs ``ANALYZE`` itself as the log grows
(:class:`GrowingLogStatistics`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from psycopg import sql

FIRST_REFRESH_EVENTS: Final = 100_000
"""Events a bulk writer adds before it first refreshes the log's statistics itself, when
autovacuum does not; then again each time its events doubled (a few dozen ``ANALYZE`` over
any run, each reading a sample of at most 30,000 rows per table)."""


def autovacuum_problem(server_autovacuum: str, table_options: list[str] | None) -> str | None:
    """What is wrong with ``autovacuum`` (the server's setting) and the event table's
    storage options, for the statistics of the event table; None if nothing."""
    if server_autovacuum.strip().lower() not in ("on", "true", "1", "yes"):
        return (
            "autovacuum is off on the PostgreSQL server: the event table's statistics are not "
            "kept, and loading a case file can turn into a scan of the whole table; turn it "
            "on, or run ANALYZE on the shard's tables after large writes"
        )
    disabled = {"autovacuum_enabled=false", "autovacuum_enabled=off", "autovacuum_enabled=0"}
    if any(option.strip().lower() in disabled for option in table_options or []):
        return (
            "autovacuum is off for the event table: its statistics are not kept, and loading "
            "a case file can turn into a scan of the whole table; turn it on for the table, "
            "or run ANALYZE on it after large writes"
        )
    return None


def read_autovacuum(recorder: object) -> tuple[str, list[str] | None] | None:
    """The server's ``autovacuum`` setting and the event table's storage options as
    PostgreSQL states them, or None for a store that is not PostgreSQL."""
    datastore: Any = getattr(recorder, "datastore", None)
    schema = getattr(datastore, "schema", None)
    table = getattr(recorder, "events_table_name", None)
    if not schema or not table:
        return None
    with datastore.transaction(commit=False) as cursor:
        cursor.execute("SELECT current_setting('autovacuum') AS autovacuum")
        setting = str(cursor.fetchone()["autovacuum"])
        cursor.execute(
            sql.SQL(
                "SELECT c.reloptions FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = {} AND c.relname = {}"
            ).format(sql.Literal(schema), sql.Literal(table))
        )
        row = cursor.fetchone()
    return setting, (None if row is None else row["reloptions"])


class GrowingLogStatistics:
    """Refreshes the planner statistics of a shard's tables while a bulk writer fills
    them, where autovacuum would not (``problem`` is what :func:`autovacuum_problem` found;
    None: autovacuum does it, and this does nothing). Call :meth:`grown` with the events
    written so far, as often as convenient: ``analyze`` runs after
    :data:`FIRST_REFRESH_EVENTS` and then each time they doubled."""

    def __init__(
        self,
        problem: str | None,
        analyze: Callable[[], None],
        *,
        first_after: int = FIRST_REFRESH_EVENTS,
    ) -> None:
        self.problem = problem
        self._analyze = analyze
        self._first_after = max(1, first_after)
        self._events_at_refresh = 0
        self.refreshes = 0

    @classmethod
    def of(cls, recorder: object, *, first_after: int | None = None) -> GrowingLogStatistics:
        """For the store behind ``recorder``: nothing to do on SQLite or where autovacuum
        is on."""
        reading = read_autovacuum(recorder)
        problem = None if reading is None else autovacuum_problem(*reading)
        return cls(
            problem,
            lambda: analyze_shard(recorder),
            first_after=FIRST_REFRESH_EVENTS if first_after is None else first_after,
        )

    def grown(self, events: int) -> None:
        if self.problem is None:
            return
        if events >= max(self._first_after, 2 * self._events_at_refresh):
            self._analyze()
            self._events_at_refresh = events
            self.refreshes += 1


def analyze_shard(recorder: object) -> None:
    """``ANALYZE`` every table of the shard's schema (events, hash chain, snapshots, keys
    and whatever else grows with them)."""
    datastore: Any = getattr(recorder, "datastore", None)
    schema = getattr(datastore, "schema", None)
    if not schema:
        return
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') ORDER BY c.relname",
            (schema,),
        )
        tables = [row["relname"] for row in cursor.fetchall()]
        for table in tables:
            cursor.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
