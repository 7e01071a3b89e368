"""The office each published event belongs to (adapters/outbox/offices.py), without a
broker: the cache filled from created events, the look-up of the others, its bound."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from adapters.outbox.cloudevents import InvalidSubjectToken
from adapters.outbox.offices import AggregateOffices, office_in


@dataclass
class Event:
    originator_version: int
    office_id: str | None = None


class History:
    """Created events by aggregate id; counts the reads."""

    def __init__(self, created: dict[str, Event]) -> None:
        self.created = created
        self.reads: list[str] = []

    def case_history(self, case_id: str, before_version: int) -> Sequence[Any]:
        assert before_version == 2, "only the created event is read"
        self.reads.append(case_id)
        found = self.created.get(case_id)
        return [found] if found is not None else []


def test_a_created_event_names_the_office_of_its_aggregate_later_events_too() -> None:
    history = History({})
    offices = AggregateOffices(history, default="abh-a")
    assert offices.office_of(Event(1, "abh-b"), "case-1") == "abh-b"
    assert offices.office_of(Event(2), "case-1") == "abh-b"
    assert offices.office_of(Event(1, "abh-a"), "case-2") == "abh-a"
    assert offices.office_of(Event(7), "case-2") == "abh-a"
    assert history.reads == []
    assert offices.lookups == 0


def test_an_aggregate_not_seen_created_is_looked_up_once() -> None:
    history = History({"case-1": Event(1, "abh-b"), "case-2": Event(1, "abh-c")})
    offices = AggregateOffices(history, default="abh-a")
    for _ in range(3):
        assert offices.office_of(Event(5), "case-1") == "abh-b"
        assert offices.office_of(Event(6), "case-2") == "abh-c"
    assert history.reads == ["case-1", "case-2"]
    assert offices.lookups == 2


def test_aggregates_of_no_office_go_out_under_the_default_office() -> None:
    history = History({"claim-2": Event(1)})
    offices = AggregateOffices(history, default="abh-a")
    assert offices.office_of(Event(1), "claim-1") == "abh-a"
    assert offices.office_of(Event(2), "claim-1") == "abh-a"
    assert offices.office_of(Event(3), "claim-2") == "abh-a"
    assert offices.office_of(Event(3), "claim-2") == "abh-a"
    # Not in the store at all (cannot happen with a real log): the default, once read.
    assert offices.office_of(Event(4), "gone") == "abh-a"
    assert offices.office_of(Event(5), "gone") == "abh-a"
    assert history.reads == ["claim-2", "gone"]


def test_the_cache_keeps_the_most_recently_used_aggregates_only() -> None:
    history = History({"a": Event(1, "abh-a"), "b": Event(1, "abh-b"), "c": Event(1, "abh-c")})
    offices = AggregateOffices(history, default="abh-x", size=2)
    offices.office_of(Event(2), "a")
    offices.office_of(Event(2), "b")
    offices.office_of(Event(3), "a")  # a used last: b goes first
    offices.office_of(Event(2), "c")
    assert len(offices) == 2
    assert offices.office_of(Event(4), "a") == "abh-a"
    assert history.reads == ["a", "b", "c"]
    assert offices.office_of(Event(4), "b") == "abh-b"
    assert history.reads == ["a", "b", "c", "b"]
    with pytest.raises(ValueError, match="at least one"):
        AggregateOffices(history, default="abh-x", size=0)


def test_an_office_that_cannot_be_a_subject_token_is_refused() -> None:
    offices = AggregateOffices(History({}), default="abh-a")
    with pytest.raises(InvalidSubjectToken, match="aggregate case-1"):
        offices.office_of(Event(1, "abh.b"), "case-1")


def test_office_in_reads_a_text_office_id_only() -> None:
    assert office_in(Event(1, "abh-b")) == "abh-b"
    assert office_in(Event(1, None)) is None
    assert office_in(Event(1, "")) is None
