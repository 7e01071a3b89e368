"""Connections that follow the primary: PostgreSQL failover without restarting Akte.

With several hosts in ``AKTE_POSTGRES_HOST`` (the primary and its standbys), every
connection Akte opens names them all, in libpq's multi-host form, with
``target_session_attrs=read-write``: libpq tries the hosts in order and keeps the first
that accepts writes, so a standby (read-only until promoted) is passed over, and after a
promotion the new primary is found by the next connection opened
(:attr:`adapters.settings.Settings.postgres_connection_args`).

What makes a *running* process find it:

- **Broken connections are dropped.** With failover the event store's pool checks a
  connection before handing it out (the library's ``POSTGRES_PRE_PING``, one empty
  round trip), so a request after the primary died gets a fresh connection, not a dead
  one; a connection that breaks in use is discarded by the pool when it comes back.
- **Reconnecting is bounded.** psycopg_pool replaces a lost connection in the background,
  retrying with an exponential backoff for up to five minutes (its
  ``reconnect_timeout``); a pool whose connections are all being retried so waits out the
  backoff (16 s and more after an outage of 20 s) although a primary is back. Akte's pools
  give such a retry up after :data:`RECONNECT_SECONDS`, and the next request that finds
  the pool empty starts a new attempt at once.
- **Dead peers are noticed.** TCP keepalives (and a user timeout) end a connection to a
  host that vanished without closing it, within about 25 s instead of the kernel's
  quarter of an hour; statement deadlines (:func:`adapters.store.recorders.bound_store_waits`)
  run on the server and cannot see that.

The library's factory is used as it is; :class:`FailoverPostgresFactory` only sets these
connection arguments on its pool before the pool opens (the tables are made through it,
so even the first connection must find the primary).
"""

from __future__ import annotations

from typing import Any, Final

from eventsourcing.postgres import PostgresFactory
from psycopg_pool import ConnectionPool

RECONNECT_SECONDS: Final = 2.0
"""How long a pool retries a failed connection in the background before it gives up
(a request then starts a new attempt at once)."""

TARGET_SESSION_ATTRS: Final = "POSTGRES_TARGET_SESSION_ATTRS"
"""The library environment's key for libpq's ``target_session_attrs`` (Akte's own)."""

KEEPALIVES: Final[dict[str, int]] = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
    # Sent data unacknowledged this long (ms) ends the connection too.
    "tcp_user_timeout": 20_000,
}
"""libpq's arguments that notice a host gone without a word (about 25 s at most)."""

FACTORY_TOPIC: Final = "adapters.store.failover:FailoverPostgresFactory"
"""The library's ``PERSISTENCE_MODULE`` for Akte on PostgreSQL."""


def failover_connection_args(target_session_attrs: str) -> dict[str, Any]:
    """The connection arguments that go with ``target_session_attrs`` (empty: none)."""
    if not target_session_attrs:
        return {}
    return {"target_session_attrs": target_session_attrs, **KEEPALIVES}


def bound_reconnects(pool: Any, seconds: float = RECONNECT_SECONDS) -> None:
    """Make ``pool`` (a ``psycopg_pool.ConnectionPool``) give up a background reconnect
    after ``seconds`` instead of its default five minutes of growing backoff."""
    pool.reconnect_timeout = seconds


class FailoverPostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory whose pool connects only to a server that accepts
    writes (``POSTGRES_TARGET_SESSION_ATTRS``, set with several hosts) and reconnects
    within bounds (:func:`bound_reconnects`)."""

    def __init__(self, env: Any) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        if isinstance(pool.kwargs, dict):
            pool.kwargs.update(failover_connection_args(self.env.get(TARGET_SESSION_ATTRS) or ""))
        bound_reconnects(pool)


def several_hosts(host: object) -> bool:
    """True for libpq's multi-host form (``"db1,db2"``)."""
    return "," in str(host or "")


def follow_primary(host: object) -> dict[str, Any]:
    """``psycopg_pool.ConnectionPool`` arguments for a pool of Akte's own connecting to
    ``host``: a bounded background reconnect (:func:`bound_reconnects`) always, and with
    several hosts a check of each connection before it is handed out (after a failover
    the pool holds connections to the old primary, dead or read-only)."""
    args: dict[str, Any] = {"reconnect_timeout": RECONNECT_SECONDS}
    if several_hosts(host):
        args["check"] = ConnectionPool.check_connection
    return args
