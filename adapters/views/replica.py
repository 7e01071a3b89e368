"""Reads from a PostgreSQL streaming replica: worklists, reports and case histories.

A replica (a hot standby made with ``pg_basebackup``, streaming the primary's WAL) holds
the same events and the same read model tables as the primary, a moment later. Reading
the lists, the reports and the histories there takes that work off the server that
takes the writes. Configured with ``AKTE_POSTGRES_REPLICA_HOST`` (and ``_PORT``); unset,
everything is read from the primary as before.

Which server answers a read:

- **Without a position** (``min_position`` not sent): the replica, as far as it has
  replayed. A caseworker's list may be a fraction of a second old, as any list is that
  the projections have not caught up with yet.
- **With a position** (``min_position`` = the ``X-Akte-Position`` a write answered with):
  the replica once it has the write: for a list or a report, once the read models'
  positions *as replicated* reach it; for a history, once the replica's event table holds
  the event. It is waited for at most ``AKTE_POSTGRES_REPLICA_WAIT_SECONDS`` (polling),
  then the read goes to the primary, which waits for its read models as before. So a
  caller never reads older than their own write (read-your-writes).
- **A replica further behind than** ``AKTE_POSTGRES_REPLICA_MAX_LAG_SECONDS`` (its
  replay lag, or for as long as its event position stood still while the primary was
  ahead: a standby of another server, holding a copy of the office from before it
  moved): the primary, until it has caught up. A server that is no standby (promoted,
  split off) answers only while it holds all the primary holds. The lag is the age of its last
  replayed transaction whenever it is not known to hold what the primary holds (WAL
  waiting to be replayed, fewer events than the primary's head, or, with the head
  unknown, no WAL receiver streaming), so a replica whose replication broke is left once
  its data is older than the limit (:attr:`ReplicaState.replay_lag_seconds`).
- **A replica that does not answer** (down, refusing, hanging): the primary. The replica
  is probed at most once a second within a bound (:class:`adapters.bounded.BoundedCall`);
  a replica known to be down is not tried again until a probe finds it back. ``/readyz``
  stays ready and names it; ``akte_replica_up`` says so to Prometheus. The primary's
  head is asked in a probe of its own: a slow primary leaves the replica up, its lag in
  events unknown.

The replica's connections are read-only (``default_transaction_read_only``), with the
primary's connect, pool and statement timeouts. Which store a list reads is decided per
request by :func:`read_views_from_replica` and carried to the views store
(:class:`RoutedViewsStore`) in a context variable: every request runs in a context of its
own (FastAPI's worker threads copy it), so the choice never outlives the request, and
everything else (the projection runner, ``/metrics``, the readiness checks) keeps reading
the primary.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, TypeVar, cast
from uuid import UUID

import psycopg
import psycopg_pool
from psycopg import sql
from psycopg.rows import tuple_row

from adapters.bounded import BoundedCall, Outcome
from adapters.store.failover import follow_primary
from adapters.views.runner import wait_for_position
from adapters.views.store import PostgresViewsStore
from projections.errors import ViewsStoreUnavailable
from projections.projection import Projection
from projections.storage import Dialect, ViewsSession, ViewsStore, ViewsWriter

T = TypeVar("T")

logger = logging.getLogger("akte.replica")

PROBE_TIMEOUT: Final = 0.5
"""The longest wait for the replica's state (a replica that hangs is down after it)."""
PROBE_MAX_AGE: Final = 1.0
"""The replica's state is asked again at most this often (seconds)."""
POLL_INTERVAL: Final = 0.02
"""How often a read that waits for its write asks the replica again (seconds)."""
_EVENTS_POOL_SIZE: Final = 2

Server = Literal["replica", "primary"]


@dataclass
class _Route:
    """One request's choice, and whether its read was counted yet (once per request)."""

    replica: bool
    counted: bool = False


_ROUTE: ContextVar[_Route | None] = ContextVar("akte_replica_route", default=None)


class ReplicaUnavailable(Exception):
    """The replica did not answer a read; it is then read from the primary. The message
    names the error's type only (a driver's text may quote stored values)."""


@dataclass(frozen=True)
class ReplicaState:
    """What the replica has replayed, next to the primary's head."""

    in_recovery: bool
    """True for a standby; False when the server is a primary (promoted, or misconfigured)."""
    position: int
    """The highest event position (notification id) the replica holds."""
    primary_position: int | None = None
    """The primary's highest event position, read just after the replica's state (None:
    the primary did not answer in time)."""
    replay_age_seconds: float = 0.0
    """Age of the last transaction the replica replayed (``clock_timestamp() -
    pg_last_xact_replay_timestamp()``; 0 before it replayed any)."""
    replayed_all_received: bool = True
    """The replica has replayed all WAL it received (receive LSN = replay LSN)."""
    receiving: bool = True
    """A WAL receiver runs and streams (``pg_stat_wal_receiver``)."""

    @property
    def lag_events(self) -> int | None:
        """Events the primary holds and the replica has not replayed yet (None: the
        primary's head is unknown)."""
        if self.primary_position is None:
            return None
        return max(self.primary_position - self.position, 0)

    @property
    def replay_lag_seconds(self) -> float:
        """How old the replica's data is taken to be: 0 while it is known to hold what
        the primary holds; else the age of its last replayed transaction.

        "Replayed all it received" alone is no proof: with the WAL receiver disconnected
        (replication broken) nothing more is received, and a stale replica would look
        current forever. So the age counts when WAL waits to be replayed, when the
        replica holds fewer events than the primary, and, with the primary's head
        unknown, when no WAL receiver streams."""
        if not self.in_recovery:
            return 0.0
        if not self.replayed_all_received:
            return self.replay_age_seconds
        lag_events = self.lag_events
        if lag_events is None:
            return 0.0 if self.receiving else self.replay_age_seconds
        return self.replay_age_seconds if lag_events > 0 else 0.0


@dataclass(frozen=True)
class ReplicaConnection:
    """How to reach the replica: the primary's database, schema, role and timeouts."""

    host: str
    port: int
    dbname: str
    user: str
    password: str = field(repr=False)
    schema: str
    events_table: str
    connect_timeout: int
    pool_timeout: float
    statement_timeout: int

    @property
    def where(self) -> str:
        return f"PostgreSQL replica at {self.host}:{self.port}, database {self.dbname}"

    def connect_kwargs(self, application_name: str) -> dict[str, Any]:
        options = "-c TimeZone=UTC -c default_transaction_read_only=on"
        if self.statement_timeout:
            options += f" -c statement_timeout={self.statement_timeout * 1000}"
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.user,
            "connect_timeout": self.connect_timeout,
            "options": options,
            "application_name": application_name[:63],
            # A replica that went away silently is noticed within about 30 s.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        if self.password:
            kwargs["password"] = self.password
        return kwargs

    def views(self) -> PostgresViewsStore:
        """The read model tables as the replica has them (read-only connections)."""
        return PostgresViewsStore(
            host=self.host,
            port=self.port,
            dbname=self.dbname,
            user=self.user,
            password=self.password,
            schema=self.schema,
            connect_timeout=self.connect_timeout,
            pool_timeout=self.pool_timeout,
            read_statement_timeout=self.statement_timeout,
            read_only=True,
        )


RawCaseEvent = tuple[int, str, bytes]
"""Originator version, topic, state (as :mod:`adapters.reports.case_history` reads them)."""


class ReplicaEvents:
    """The event table as the replica has it: a case file's events, the replica's
    position, its replay lag. Errors become :class:`ReplicaUnavailable`."""

    def __init__(self, connection: ReplicaConnection) -> None:
        self._connection = connection
        table = sql.SQL("{}.{}").format(
            sql.Identifier(connection.schema), sql.Identifier(connection.events_table)
        )
        self._events = sql.SQL(
            "SELECT originator_version, topic, state FROM {} WHERE originator_id = %s "
            "AND originator_version > %s ORDER BY originator_version LIMIT %s"
        ).format(table)
        self._head = sql.SQL(
            "SELECT max(originator_version) FROM {} WHERE originator_id = %s"
        ).format(table)
        self._has_position = sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE notification_id >= %s)"
        ).format(table)
        # The facts only; what they make of the lag is decided in ReplicaState. The WAL
        # receiver's row exists while it runs; its status is NULL for a role without
        # pg_read_all_stats, which is taken as streaming (the row says it runs).
        self._state = sql.SQL(
            "SELECT pg_is_in_recovery(), (SELECT max(notification_id) FROM {}), "
            "pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn(), "
            "coalesce(extract(epoch FROM "
            "clock_timestamp() - pg_last_xact_replay_timestamp()), 0)::float8, "
            "coalesce((SELECT coalesce(status, 'streaming') = 'streaming' "
            "FROM pg_stat_wal_receiver), false)"
        ).format(table)
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
        self._pool_lock = threading.Lock()

    @property
    def where(self) -> str:
        return self._connection.where

    def _connections(self) -> psycopg_pool.ConnectionPool[psycopg.Connection[Any]]:
        with self._pool_lock:
            if self._pool is None:
                self._pool = psycopg_pool.ConnectionPool(
                    kwargs={
                        **self._connection.connect_kwargs(
                            f"akte-replica-events {self._connection.schema}"
                        ),
                        "autocommit": True,
                    },
                    min_size=0,
                    max_size=_EVENTS_POOL_SIZE,
                    timeout=self._connection.pool_timeout,
                    open=True,
                    **follow_primary(self._connection.host),
                )
            return self._pool

    def _fetch(self, statement: sql.Composed, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        try:
            with (
                self._connections().connection() as connection,
                connection.cursor(row_factory=tuple_row, binary=True) as cursor,
            ):
                cursor.execute(statement, params)
                return cursor.fetchall()
        except (psycopg.Error, psycopg_pool.PoolTimeout) as error:
            msg = f"the replica did not answer: {type(error).__name__}"
            raise ReplicaUnavailable(msg) from None

    def events(self, case_id: UUID, after_version: int, limit: int) -> list[RawCaseEvent]:
        return cast(list[RawCaseEvent], self._fetch(self._events, (case_id, after_version, limit)))

    def head_version(self, case_id: UUID) -> int | None:
        rows = self._fetch(self._head, (case_id,))
        return None if not rows else cast(int | None, rows[0][0])

    def has_position(self, position: int) -> bool:
        """True once the replica holds the event at ``position`` (and so, replaying in
        commit order, everything committed before it)."""
        rows = self._fetch(self._has_position, (position,))
        return bool(rows and rows[0][0])

    def state(self) -> ReplicaState:
        """The replica's own state (without the primary's head)."""
        rows = self._fetch(self._state, ())
        in_recovery, position, replayed_all, age, receiving = rows[0]
        return ReplicaState(
            in_recovery=bool(in_recovery),
            position=int(position or 0),
            replay_age_seconds=float(age or 0.0),
            replayed_all_received=bool(replayed_all),
            receiving=bool(receiving),
        )

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()


class ReplicaReads:
    """Decides, read by read, whether the replica answers (see the module docstring),
    and counts the reads each server answered."""

    def __init__(
        self,
        connection: ReplicaConnection,
        *,
        primary_position: Callable[[], int | None],
        projections: Sequence[Projection],
        wait_seconds: float,
        max_lag_seconds: float = 0.0,
        views: ViewsStore | None = None,
        events: ReplicaEvents | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe_max_age: float = PROBE_MAX_AGE,
    ) -> None:
        self.where = connection.where
        self.views: ViewsStore = views if views is not None else connection.views()
        self.events = events if events is not None else ReplicaEvents(connection)
        self._projections = tuple(projections)
        self.wait_seconds = wait_seconds
        self.max_lag_seconds = max_lag_seconds
        # Two probes: whether the replica is up depends on the replica alone, a slow or
        # down primary only leaves the lag in events unknown.
        self._probe = BoundedCall(
            self.events.state, timeout=PROBE_TIMEOUT, max_age=probe_max_age, name="replica"
        )
        self._head = BoundedCall(
            primary_position, timeout=PROBE_TIMEOUT, max_age=PROBE_MAX_AGE, name="primary-head"
        )
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._served: dict[Server, int] = {"replica": 0, "primary": 0}
        self._clock = clock
        self._last_progress: tuple[int, float] | None = None
        """The replica's event position and when it was first seen there."""

    # ------------------------------------------------------------------ state

    def state(self) -> Outcome[ReplicaState]:
        """The replica's state, at most :data:`PROBE_MAX_AGE` old, within
        :data:`PROBE_TIMEOUT` (not ``ok``: the replica did not answer), with the
        primary's head asked after it (the primary only moves ahead, so the lag is never
        negative for a replica that keeps up), or None if the primary did not answer."""
        outcome = self._probe()
        if not outcome.ok or outcome.value is None:
            return outcome
        head = self._head()
        primary = head.value if head.ok else None
        if primary is None and head.ok:
            primary = 0  # no events yet
        return replace(outcome, value=replace(outcome.value, primary_position=primary))

    def usable(self) -> bool:
        """The replica answered its last probe, is not further behind than
        :attr:`max_lag_seconds`, and no read has failed on it since."""
        with self._lock:
            if time.monotonic() < self._down_until:
                return False
        outcome = self.state()
        return outcome.ok and outcome.value is not None and not self._too_far(outcome.value)

    def _too_far(self, state: ReplicaState) -> bool:
        return self._why_too_far(state) is not None

    def _why_too_far(self, state: ReplicaState) -> str | None:
        """Why the replica may not answer reads without a position now (None: it may).

        Besides its replay lag: a server that is no standby (promoted, split off) gets
        nothing more streamed, so unless it holds all the primary holds (the same server
        after a failover) its copy only grows older; and a standby that replays other
        databases but never this office's events again (a standby of another server,
        holding a copy of the office from before it moved) has a small replay lag
        forever, so it counts as behind once its position stood still, with the primary
        ahead of it, for longer than the lag allowed."""
        if not state.in_recovery and state.lag_events != 0:
            return "not a standby and without the primary's last events"
        if not self.max_lag_seconds:
            return None
        if state.replay_lag_seconds > self.max_lag_seconds:
            return f"replay lag {state.replay_lag_seconds:.3f} s"
        now = self._clock()
        with self._lock:
            last = self._last_progress
            if last is None or last[0] != state.position:
                self._last_progress = last = (state.position, now)
        standing = now - last[1]
        if state.lag_events and standing > self.max_lag_seconds:
            return f"no event of this office replayed for {standing:.0f} s"
        return None

    def failed(self) -> None:
        """A read failed on the replica: reads go to the primary until the next probe
        after :data:`PROBE_MAX_AGE` finds it back."""
        logger.warning("replica: a read failed on %s; reading the primary", self.where)
        with self._lock:
            self._down_until = time.monotonic() + PROBE_MAX_AGE

    def served(self, server: Server) -> None:
        with self._lock:
            self._served[server] += 1

    def served_counts(self) -> dict[Server, int]:
        """Reads answered by each server since the process started."""
        with self._lock:
            return dict(self._served)

    # ---------------------------------------------------------------- routing

    def views_reach(self, min_position: int | None) -> bool:
        """Whether the replica's read models may answer a read asking for
        ``min_position`` (waiting for them at most :attr:`wait_seconds`)."""
        if not self.usable():
            return False
        if min_position is None:
            return True
        try:
            return wait_for_position(self.views, self._projections, min_position, self.wait_seconds)
        except ViewsStoreUnavailable:
            self.failed()
            return False

    def events_reach(self, min_position: int | None) -> bool:
        """Whether the replica's event table may answer a read asking for
        ``min_position`` (waiting for the event at most :attr:`wait_seconds`)."""
        if not self.usable():
            return False
        if min_position is None:
            return True
        deadline = time.monotonic() + self.wait_seconds
        try:
            while not self.events.has_position(min_position):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                time.sleep(min(POLL_INTERVAL, remaining))
        except ReplicaUnavailable:
            self.failed()
            return False
        return True

    def read_events(
        self,
        min_position: int | None,
        read: Callable[[ReplicaEvents | None], T],
        *,
        missing: tuple[type[Exception], ...] = (),
    ) -> T:
        """``read(self.events)`` when the replica holds ``min_position``, else (or when
        it fails, or raises one of ``missing``: something written before the replica
        caught up, such as a case file opened a moment ago) ``read(None)``: the primary."""
        if self.events_reach(min_position):
            try:
                value = read(self.events)
            except ReplicaUnavailable:
                self.failed()
            except missing:
                pass
            else:
                self.served("replica")
                return value
        self.served("primary")
        return read(None)

    # ------------------------------------------------------------- readiness

    def readiness_note(self) -> str:
        """For ``/readyz`` (it never makes the service unready: reads go to the primary)."""
        outcome = self.state()
        if not outcome.ok or outcome.value is None:
            return f"replica unreachable ({outcome.problem}): reading the primary"
        state = outcome.value
        role = "standby" if state.in_recovery else "not a standby"
        behind = "? (primary unknown)" if state.lag_events is None else state.lag_events
        note = (
            f"{role}, {behind} events behind the primary, "
            f"replay lag {state.replay_lag_seconds:.3f} s"
        )
        why = self._why_too_far(state)
        if why is None:
            return note
        if why.startswith("replay lag"):
            return note + ": reading the primary"
        return f"{note}: {why}: reading the primary"

    def close(self) -> None:
        self.views.close()
        self.events.close()


def read_views_from_replica(replica: ReplicaReads, min_position: int | None) -> bool:
    """Sends this request's reads of the views to the replica when it may answer them
    (:meth:`ReplicaReads.views_reach`); True if so. Call it in the request's own context
    (the route's thread), before the lists are read."""
    chosen = replica.views_reach(min_position)
    _ROUTE.set(_Route(replica=chosen))
    return chosen


class RoutedViewsStore:
    """The primary's views store, whose reads go to the replica in a request that
    :func:`read_views_from_replica` sent there. Writes and locks are always the
    primary's; the projection runner is given the primary's store itself."""

    def __init__(self, primary: ViewsStore, replica: ReplicaReads) -> None:
        self.primary = primary
        self.replica = replica

    @property
    def dialect(self) -> Dialect:
        return self.primary.dialect

    @property
    def where(self) -> str:
        return self.primary.where

    def writer(self) -> ViewsWriter:
        return self.primary.writer()

    def reader(self) -> AbstractContextManager[ViewsSession]:
        return self._reading()

    @contextmanager
    def _reading(self) -> Iterator[ViewsSession]:
        route = _ROUTE.get()
        if route is not None and route.replica:
            stack = contextlib.ExitStack()
            try:
                session = stack.enter_context(self.replica.views.reader())
                # A pooled connection to a replica that went away fails here, before
                # the caller's queries, and the read goes to the primary instead.
                session.fetch("SELECT 1")
            except ViewsStoreUnavailable:
                # Handing back a broken connection may fail too; the read goes on.
                with contextlib.suppress(Exception):
                    stack.close()
                self.replica.failed()
                route.replica = False
            else:
                with stack:
                    self._count(route, "replica")
                    yield session
                return
        if route is not None:
            self._count(route, "primary")
        with self.primary.reader() as session:
            yield session

    def _count(self, route: _Route, server: Server) -> None:
        if not route.counted:
            route.counted = True
            self.replica.served(server)

    def close(self) -> None:
        self.primary.close()
        self.replica.close()


__all__ = [
    "ReplicaConnection",
    "ReplicaEvents",
    "ReplicaReads",
    "ReplicaState",
    "ReplicaUnavailable",
    "RoutedViewsStore",
    "read_views_from_replica",
]
