"""Bounded waits for calls that may block on a store: a cached, single-flight call with a
deadline.

:class:`BoundedCall` runs a blocking function (a store probe, a query for a metric) in a
thread of its own, one call at a time, and waits for it at most ``timeout`` seconds; an
answer younger than ``max_age`` seconds is given again without calling. So ``/readyz``,
``/metrics`` and the store gate (:mod:`adapters.http.store_gate`) answer within a bound
whatever the store does: a store that refuses connections is known as down at once, one
that hangs after ``timeout``, and a hanging call blocks no request, only its own thread
(a later call waits for that one instead of starting another).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What a call gave: ``value`` when ``ok``, else ``problem`` (an error's type or
    ``"no answer within N s"``, never an error's message). ``at``: ``time.monotonic()``."""

    ok: bool
    value: T | None
    problem: str | None
    at: float
    timed_out: bool = False
    """No answer in time: the call may still succeed (a slow store, a busy machine)."""


class BoundedCall(Generic[T]):
    """``function`` called at most once at a time, waited for at most ``timeout`` s."""

    def __init__(
        self, function: Callable[[], T], *, timeout: float, max_age: float, name: str
    ) -> None:
        self._function = function
        self._timeout = timeout
        self._max_age = max_age
        self._name = name
        self._lock = threading.Lock()
        self._last: Outcome[T] | None = None
        self._in_flight: threading.Event | None = None
        # Async callers wait in threads of their own, not in the server's shared pool.
        self._limiter = anyio.CapacityLimiter(4)

    def fresh(self) -> Outcome[T] | None:
        """The last outcome if it is younger than ``max_age``, without calling."""
        last = self._last
        if last is not None and time.monotonic() - last.at < self._max_age:
            return last
        return None

    def last(self) -> Outcome[T] | None:
        """The last outcome, however old."""
        return self._last

    def __call__(self, *, cached: bool = True) -> Outcome[T]:
        """A fresh outcome: the cached one (unless ``cached`` is False), or a new call's
        (at most ``timeout`` s; joining the call in flight, if one is)."""
        with self._lock:
            fresh = self.fresh() if cached else None
            if fresh is not None:
                return fresh
            done = self._in_flight
            if done is None:
                done = self._in_flight = threading.Event()
                threading.Thread(
                    target=self._run, args=(done,), name=f"akte-{self._name}", daemon=True
                ).start()
        if done.wait(self._timeout):
            last = self._last
            assert last is not None
            return last
        timed_out: Outcome[T] = Outcome(
            False, None, f"no answer within {self._timeout:g} s", time.monotonic(), True
        )
        with self._lock:
            if self._in_flight is done:  # still hanging: later callers hear so at once
                self._last = timed_out
        return timed_out

    async def call(self, *, cached: bool = True) -> Outcome[T]:
        """:meth:`__call__` for the event loop: cached at once, else in a thread."""
        fresh = self.fresh() if cached else None
        if fresh is not None:
            return fresh
        return await anyio.to_thread.run_sync(lambda: self(cached=cached), limiter=self._limiter)

    def _run(self, done: threading.Event) -> None:
        try:
            outcome: Outcome[T] = Outcome(True, self._function(), None, time.monotonic())
        except Exception as error:
            # The type only: a driver's message may quote stored values.
            outcome = Outcome(False, None, type(error).__qualname__, time.monotonic())
        with self._lock:
            self._last = outcome
            self._in_flight = None
        done.set()
