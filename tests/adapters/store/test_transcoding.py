"""Events and snapshots survive both transcoders, and each reads what the other wrote."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, Transcoder

from adapters.simulation.case_histories import closed_case, rich_case, taken_over_case
from adapters.store.transcoding import json_transcoder, orjson_transcoder
from domain.case_file import CaseFile

TRANSCODERS = {"orjson": orjson_transcoder, "json": json_transcoder}


def all_events() -> list[Any]:
    return [
        *rich_case().collect_events(),
        *closed_case().collect_events(),
        *taken_over_case().collect_events(),
    ]


def test_the_histories_cover_every_event_class() -> None:
    defined = {
        cls.__name__
        for name, cls in vars(CaseFile).items()
        if isinstance(cls, type)
        and issubclass(cls, CaseFile.Event)
        # The library defines Created on every aggregate; Opened is ours.
        and name not in ("Event", "Created")
    }
    assert defined == {type(event).__name__ for event in all_events()}


@pytest.mark.parametrize("writer", TRANSCODERS)
@pytest.mark.parametrize("reader", TRANSCODERS)
def test_every_event_round_trips(writer: str, reader: str) -> None:
    write = Mapper[Any](transcoder=TRANSCODERS[writer]())
    read = Mapper[Any](transcoder=TRANSCODERS[reader]())
    for event in all_events():
        assert read.to_domain_event(write.to_stored_event(event)) == event


@pytest.mark.parametrize("writer", TRANSCODERS)
@pytest.mark.parametrize("reader", TRANSCODERS)
def test_snapshot_state_round_trips(writer: str, reader: str) -> None:
    case = rich_case()
    case.collect_events()
    write = Mapper[Any](transcoder=TRANSCODERS[writer]())
    read = Mapper[Any](transcoder=TRANSCODERS[reader]())
    snapshot = read.to_domain_event(write.to_stored_event(Snapshot.take(case)))
    assert isinstance(snapshot, Snapshot)
    assert snapshot.mutate(None) == case


def test_both_transcoders_write_the_same_wire_format() -> None:
    orjson_codec: Transcoder = orjson_transcoder()
    json_codec: Transcoder = json_transcoder()
    for event in all_events():
        state = dict(vars(event))
        # The mapper keeps these out of the encoded state.
        del state["originator_id"], state["originator_version"]
        assert json_codec.decode(orjson_codec.encode(state)) == json_codec.decode(
            json_codec.encode(state)
        )


def test_no_event_field_is_a_uuid() -> None:
    """orjson writes a UUID as a plain string that reads back as str, so events hold ids as str."""
    for event in all_events():
        fields = {k: v for k, v in vars(event).items() if k != "originator_id"}
        assert not any(isinstance(value, UUID) for value in fields.values()), type(event)
