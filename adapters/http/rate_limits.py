"""Limits on the public doors: how often one client address may knock.

The contact form, commitment declarations, proof-of-work challenges, bookings, look-ups
by a secret reference and failed logins are open to anyone, so a script can flood them.
Each door has a rate per client address (settings ``AKTE_RATE_LIMIT_*``, e.g.
``10/minute``); the request after the rate is answered ``429 Too Many Requests`` with
``Retry-After`` and recorded nowhere, and counted in ``akte_rate_limited_total``.
Bookings are also limited per person by the service (the keyed hash of the person).

Counting uses the ``limits`` library's moving window in this process's memory: a
deployment with several processes multiplies the rates by their number, which is why
the reference nginx configuration (docs "Reverse proxy") limits the same doors in front
of all of them. The client address is the connection's peer; behind a reverse proxy
uvicorn takes it from ``X-Forwarded-For`` of trusted proxies (``--forwarded-allow-ips``).
An IPv6 client counts by its ``/64`` network (:func:`client_key`): a provider hands each
connection a whole ``/64``, so its addresses are one client's, free to vary per request.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from prometheus_client import CollectorRegistry, Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.problems import problem_response

FAILED_LOGINS: Final = "failed_logins"
IPV6_CLIENT_PREFIX: Final = 64
"""The IPv6 network that counts as one client: the prefix a provider assigns to one
connection (RFC 6177), within which a client chooses its own addresses."""


@dataclass(frozen=True)
class Door:
    """A public door: the requests that count against one rate."""

    name: str
    methods: frozenset[str]
    paths: tuple[str, ...] = ()
    """Exact paths."""
    prefixes: tuple[str, ...] = ()
    """Path prefixes (look-ups carry the reference in the path)."""

    def admits(self, method: str, path: str) -> bool:
        return method in self.methods and (path in self.paths or path.startswith(self.prefixes))


DOORS: Final = (
    Door("contact_form", frozenset({"POST"}), paths=("/contact-form", "/contact")),
    Door("declarations", frozenset({"POST"}), paths=("/commitment-declarations", "/declaration")),
    Door("challenges", frozenset({"POST"}), paths=("/appointments/challenges",)),
    # The booking pages issue a challenge each time they show the form.
    Door("challenges", frozenset({"GET"}), paths=("/booking/details", "/booking/waitlist")),
    Door(
        "bookings",
        frozenset({"POST"}),
        paths=(
            "/appointments/bookings",
            "/appointments/waitlist",
            "/booking/details",
            "/booking/waitlist",
        ),
    ),
    Door(
        "lookups",
        frozenset({"GET", "POST"}),
        # The declaration's pay and return pages look it up by its reference too.
        paths=("/declaration/pay", "/declaration/return"),
        prefixes=(
            "/appointments/bookings/own",
            "/commitment-declarations/own",
            "/booking/status/",
            "/booking/confirm/",
            "/declaration/status/",
            # The receipt page tells whether a receipt number exists.
            "/contact/receipt/",
        ),
    ),
)
"""Every limited door; the page of a service counts against the same door as its API."""


def client_key(address: str) -> str:
    """What a client address counts under: an IPv4 address as it is, an IPv6 address as
    its ``/64`` network (every address in it is the same client's), an IPv4-mapped IPv6
    address as the IPv4 address it carries; anything else (no address) as it is."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv4Address):
        return str(parsed)
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, IPV6_CLIENT_PREFIX), strict=False))


class RateLimitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.limited = Counter(
            "akte_rate_limited",
            "Requests answered 429 because their client address exceeded a door's rate.",
            ["door"],
            registry=registry,
        )


class RateLimiter:
    """The rates of the doors and what each client address has used of them."""

    def __init__(self, rates: Mapping[str, str]) -> None:
        self.rates: dict[str, list[RateLimitItem]] = {
            door: parse_many(rate) for door, rate in rates.items()
        }
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self.metrics: RateLimitMetrics | None = None

    def door_of(self, method: str, path: str) -> str | None:
        for door in DOORS:
            if door.name in self.rates and door.admits(method, path):
                return door.name
        return None

    def hit(self, door: str, client: str) -> bool:
        """Counts one request; False: over a rate (the request must be refused)."""
        # Every rate counts the request (no short cut after the first refusal).
        admitted = [self._limiter.hit(rate, door, client) for rate in self.rates[door]]
        return all(admitted)

    def exhausted(self, door: str, client: str) -> bool:
        return not all(self._limiter.test(rate, door, client) for rate in self.rates[door])

    def retry_after(self, door: str, client: str) -> int:
        """Seconds until every rate of the door admits the client again."""
        now = time.time()
        waits = [
            self._limiter.get_window_stats(rate, door, client).reset_time - now
            for rate in self.rates[door]
            if not self._limiter.test(rate, door, client)
        ]
        return max(1, math.ceil(max(waits, default=1.0)))

    def refused(self, door: str) -> None:
        if self.metrics is not None:
            self.metrics.limited.labels(door=door).inc()


class RateLimitMiddleware:
    """Refuses a request over its door's rate before it reaches a route."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = client_key(scope["client"][0]) if scope.get("client") else "unknown"
        method, path = scope["method"], scope["path"]
        door = self.limiter.door_of(method, path)
        if door is not None and not self.limiter.hit(door, client):
            await self._refuse(door, client, scope, receive, send)
            return
        if FAILED_LOGINS not in self.limiter.rates or not _has_bearer(scope):
            await self.app(scope, receive, send)
            return
        # A client that keeps sending bad tokens is refused before its next token is
        # even looked at; a good token costs nothing.
        if self.limiter.exhausted(FAILED_LOGINS, client):
            await self._refuse(FAILED_LOGINS, client, scope, receive, send)
            return

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self.limiter.hit(FAILED_LOGINS, client)
            await send(message)

        await self.app(scope, receive, counting_send)

    async def _refuse(
        self, door: str, client: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.limiter.refused(door)
        seconds = self.limiter.retry_after(door, client)
        response = problem_response(
            429,
            "rate-limited",
            f"too many requests of this kind from your address; try again in {seconds} s",
            title="Too many requests",
            headers={"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)


def _has_bearer(scope: Scope) -> bool:
    return any(
        name == b"authorization" and value[:7].lower() == b"bearer "
        for name, value in scope.get("headers", ())
    )
