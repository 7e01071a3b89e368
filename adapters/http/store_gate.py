"""The store gate: requests that work on the stores wait within bounds, the others never.

Every route that reads or writes the stores runs its blocking work in the server's
shared pool of worker threads (40). While the database is away, those calls wait (for a
connection, up to ``AKTE_POSTGRES_POOL_TIMEOUT_SECONDS``); without a gate, enough of them
take every worker thread, and ``/healthz``, ``/metrics``, the catalogue and static files
wait behind them. :class:`StoreGate` (a pure ASGI middleware) therefore

- lets the routes that need no store through untouched (:func:`needs_no_store`);
- answers every other request ``503 store-unavailable`` with ``Retry-After`` at once,
  nothing recorded, while the store probe fails (a probe that is only slow lets the
  requests through: their store calls have deadlines of their own): a probe of its own
  (:class:`PostgresProbe`, one connection with short deadlines, or the SQLite file),
  at most one at a time, its answer reused for half a second and waited for at most
  0.8 s (:class:`adapters.bounded.BoundedCall`); so writes fail fast within a second of
  the store failing and pass again within a second of its return;
- lets at most ``AKTE_STORE_REQUEST_SLOTS`` such requests work at once; the remaining
  worker threads stay free for the routes that need no store. A request that finds no
  slot within the pool timeout is answered 503 as well. A slot counts work, not the
  request: it is given back while the request waits for its client (the body still
  arriving, an answer the client reads slowly) and taken again before the next piece of
  work (:class:`_Slot`), so clients that trickle their bodies hold no slot and cannot
  shut every store route out.

``/readyz`` reads the same probe (:mod:`adapters.http.routes.operations`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

import anyio
import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.bounded import BoundedCall
from adapters.http.problems import problem_response
from adapters.settings import Settings
from service import AkteService

logger = logging.getLogger("akte.store_gate")

PROBE_TIMEOUT: Final = 0.8
"""The longest wait for the store probe. A probe the store refuses closes the gate; one
that only times out does not (a slow store still answers, within its own timeouts)."""
PROBE_MAX_AGE: Final = 0.5
"""A probe's answer is reused this long (seconds)."""
RETRY_AFTER_SECONDS: Final = 2

NO_STORE_PATHS: Final = frozenset(
    {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/favicon.ico"}
)
NO_STORE_PREFIXES: Final = ("/catalogue", "/static/", "/docs-assets/")


def needs_no_store(path: str) -> bool:
    """Routes that answer from memory or files: never held back by the store."""
    return path in NO_STORE_PATHS or path.startswith(NO_STORE_PREFIXES)


class PostgresProbe:
    """One row of the events table over a connection of its own, with short deadlines
    (connect 2 s, statement 0.5 s): the pool's connections may all be busy or broken.
    A new connection each time (at most two a second): none is held between probes, so
    applications that are built and dropped (tests) leave no connection behind."""

    def __init__(self, settings: Settings, schema: str, events_table: str) -> None:
        self._query = sql.SQL("SELECT 1 FROM {}.{} LIMIT 1").format(
            sql.Identifier(schema), sql.Identifier(events_table)
        )
        self._connection_args: dict[str, Any] = {
            # With several hosts: only the primary, whichever it is now, is ready for writes.
            **settings.postgres_connection_args,
            "dbname": settings.postgres_dbname,
            "user": settings.postgres_user,
            "password": settings.postgres_password.get_secret_value(),
            "connect_timeout": 2,
            "options": "-c statement_timeout=500",
            "application_name": "akte-store-probe",
            "autocommit": True,
        }

    def __call__(self) -> None:
        with psycopg.connect(**self._connection_args) as connection:
            connection.execute(self._query)


def store_health(service: AkteService, settings: Settings | None) -> BoundedCall[None]:
    """The store probe of a service: PostgreSQL's own connection, or the SQLite log."""
    probe: Callable[[], None]
    recorder = service.recorder
    if settings is not None and isinstance(recorder, PostgresApplicationRecorder):
        probe = PostgresProbe(settings, recorder.datastore.schema, recorder.events_table_name)
    else:

        def probe() -> None:
            service.recorder.max_notification_id()

    return BoundedCall(probe, timeout=PROBE_TIMEOUT, max_age=PROBE_MAX_AGE, name="store-probe")


class StoreGate:
    """Fails store requests fast while the store is away; caps how many work at once."""

    def __init__(
        self, app: ASGIApp, *, health: BoundedCall[None], slots: int, slot_wait: float
    ) -> None:
        self.app = app
        self.health = health
        self.slot_wait = slot_wait
        self._slots = anyio.Semaphore(slots)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or needs_no_store(scope["path"]):
            await self.app(scope, receive, send)
            return
        outcome = await self.health.call()
        # Only a store that refused is known to be away; a slow answer may be a busy
        # machine, and the store calls have deadlines of their own.
        if not outcome.ok and not outcome.timed_out:
            await _unavailable("the event store is unavailable")(scope, receive, send)
            return
        slot = _Slot(self._slots)
        with anyio.move_on_after(self.slot_wait):
            await slot.take()
        if not slot.held:
            logger.warning("store gate: no free slot within %.1f s", self.slot_wait)
            await _unavailable("the server is busy with the store")(scope, receive, send)
            return
        try:
            await self.app(scope, slot.receiving(receive), slot.sending(send))
        finally:
            slot.give_back()


class _Slot:
    """One request's slot, held while the request works and given back while it waits
    for its client.

    The route's work (its store calls in worker threads, and the code between them) runs
    between the request's reads of its body and its writes of the answer, so the slot is
    held there; every wait on the client (a read of a body that has not arrived, a write
    that the client's slow reading holds up) runs without it. Taken again before the work
    goes on, without a deadline: the request was admitted, and the slots come free as
    fast as the other requests' store calls end (each within its own deadline)."""

    def __init__(self, slots: anyio.Semaphore) -> None:
        self._slots = slots
        self.held = False
        self._body_read = False
        """The body is complete, or the client went away: later reads are no wait for
        the client's body but a listener for its disconnect (a streamed answer's, beside
        the task that sends it), and leave the slot to the work."""

    async def take(self) -> None:
        if self.held:
            return
        await self._slots.acquire()
        if self.held:
            # Another task of the same request (a streamed answer listening for the
            # client's disconnect while it sends) took it meanwhile: one slot a request.
            self._slots.release()
            return
        self.held = True

    def give_back(self) -> None:
        if self.held:
            self.held = False
            self._slots.release()

    def receiving(self, receive: Receive) -> Receive:
        async def receive_without_slot() -> Message:
            if self._body_read:
                return await receive()
            self.give_back()
            message = await receive()
            if message["type"] == "http.disconnect":
                # Nothing more to work for: the answer is not sent anywhere.
                self._body_read = True
                return message
            if not message.get("more_body", False):
                self._body_read = True
            await self.take()
            return message

        return receive_without_slot

    def sending(self, send: Send) -> Send:
        async def send_without_slot(message: Message) -> None:
            if message["type"] != "http.response.body":
                await send(message)  # the start of the answer: buffered, never waits
                return
            last = not message.get("more_body", False)
            self.give_back()
            await send(message)
            if not last:
                # A streamed answer may do more work (and store calls) for its next part.
                await self.take()

        return send_without_slot


def _unavailable(what: str) -> Any:
    return problem_response(
        503,
        "store-unavailable",
        f"{what}; nothing was recorded, try again later (with the same Idempotency-Key)",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
