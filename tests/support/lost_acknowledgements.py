"""A fault for the tests of truthful writes: a commit whose acknowledgement is lost,
optionally followed by a store that cannot be read until it is healed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

import psycopg
from eventsourcing.persistence import OperationalError, StoredEvent

from service import AkteService

READS: Final = ("select_events", "find_key", "position_of")
"""What the service reads to find out what became of a write."""


class LostAcknowledgement:
    """Wraps the service's recorder: once armed, the next ``insert_events`` commits, then
    raises what psycopg raises when the connection breaks before the commit is
    acknowledged (passed on as the library's recorders do: ``OperationalError`` from
    ``psycopg.OperationalError``)."""

    def __init__(self, service: AkteService) -> None:
        recorder: Any = service.recorder
        self._recorder = recorder
        self._insert: Callable[..., Sequence[int] | None] = recorder.insert_events
        self._reads = {name: getattr(recorder, name) for name in READS}
        self._armed = False
        self._reads_fail = False
        self.committed = 0
        recorder.insert_events = self._insert_then_break

    def arm(self, *, then_reads_fail: bool = False) -> None:
        self._armed = True
        self._reads_fail = then_reads_fail

    def heal(self) -> None:
        for name, method in self._reads.items():
            setattr(self._recorder, name, method)

    def _insert_then_break(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        ids = self._insert(stored_events, **kwargs)
        if not self._armed:
            return ids
        self._armed = False
        self.committed += 1
        if self._reads_fail:
            for name in READS:
                setattr(self._recorder, name, _refused)
        try:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        except psycopg.OperationalError as error:
            raise OperationalError(str(error)) from error


def _refused(*_args: Any, **_kwargs: Any) -> Any:
    raise OperationalError("connection refused")
