"""One counted pause of Python's cyclic garbage collector for the whole process.

Two kinds of work pause it:

- the projection engine, while it applies batches: the collector walked its rows cache a
  dozen times per batch (projections/engine.py);
- the store transactions of bulk writers (``service.grouped()``) and of both key stores:
  with a large heap (the simulator's case cache) a full collection takes seconds, and one
  triggered between a transaction's statements leaves the connection idle in that
  transaction, where PostgreSQL's idle-in-transaction timeout (10 s by default) ends it.
  A scale-9 simulation lost its connection so at 3.1 million events; later runs caught the
  key store's session idle for 8.7 and 11.5 s (docs/performance/state.md).

The switch (``gc.disable``, ``gc.freeze``) is process-wide, and both share a process where
the HTTP API on SQLite runs the projection runner as a thread. With a count each, the
pause that ended first turned collection on inside the other. They count here together:
collection resumes when the last pause of any of them ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager


class _CollectionPause:
    """Cyclic garbage collection off while any thread is inside :meth:`paused`.

    When the last of overlapping pauses ends, everything frozen inside them
    (:func:`collect_and_freeze`) is unfrozen, and collection is turned on again if it was
    on before the first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._was_enabled = False

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    gc.unfreeze()
                    if self._was_enabled:
                        gc.enable()

    def collect_and_freeze(self) -> None:
        with self._lock:
            if self._depth == 0:
                # Outside a pause nothing would ever unfreeze what this freezes.
                raise RuntimeError("collect_and_freeze() needs a collection_paused() block")
        gc.collect()
        gc.freeze()


_collection = _CollectionPause()


def collection_paused() -> AbstractContextManager[None]:
    """No automatic cyclic garbage collection inside this block, in any thread of the
    process, until the last overlapping pause ends."""
    return _collection.paused()


def collect_and_freeze() -> None:
    """Collect now, inside a pause, and freeze what survives (``gc.freeze``): later
    collections walk only what came after. Frozen objects are still freed when their last
    reference goes; only garbage in reference cycles among them waits for the end of the
    last pause, which unfreezes them."""
    _collection.collect_and_freeze()
