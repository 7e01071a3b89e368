"""Decoding one aggregate's stored events a batch at a time, exactly as
:meth:`PersonalDataMapper.to_domain_event` decodes them one by one.

A long history (thousands of events of one case file, ``GET /cases/{id}/history``)
spends most of its time decoding. Per event, the mapper resolves the topic, finds the id
convertor, looks up the owner's key and makes a ``StoredEvent``; here the topic's class,
id convertor and class version are worked out once per topic and the owner's key once per
batch, from rows as the store returns them (version, topic, state).

Only the common case is done here: an event whose personal data opens with its owner's
key, or that has none. Everything else is the mapper's own code, so it reads exactly as
there: an erased owner's fields read as their redacted stand-ins
(:meth:`PersonalDataMapper._unseal_into`), a missing key or a blob that does not open
raises the mapper's error, and a topic with a part about another person
(:data:`service_data_protection.SEPARATE_PARTS`), a snapshot or a state that does not
decode goes through :meth:`~PersonalDataMapper.to_domain_event` whole. Nothing is kept
between calls but the plans per topic (classes, no data); keys stay in the key store's
own cache, which an erasure clears.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import resolve_topic

from adapters.personal_data.key_store import NONCE_BYTES
from adapters.personal_data.mapper import _FORMAT, SEALED, PersonalDataMapper, _aad
from service_data_protection import SEPARATE_PARTS

StoredRow = tuple[int, str, bytes]
"""Originator version, topic, state: one stored event of the aggregate being decoded."""


@dataclass(frozen=True)
class _TopicPlan:
    """What decoding every event of one topic shares, worked out once per topic."""

    cls: type[Any]
    to_id: Any
    """The library's id convertor for the class (``UUID`` -> the class's id type)."""
    class_version: int


class BatchDecoder:
    """Decodes rows of one aggregate as ``mapper.to_domain_event`` would, one by one."""

    def __init__(self, mapper: PersonalDataMapper) -> None:
        self._mapper = mapper
        self._plans: dict[str, _TopicPlan | None] = {}

    def _plan(self, topic: str) -> _TopicPlan | None:
        """None: the topic is decoded by the mapper, event by event."""
        try:
            return self._plans[topic]
        except KeyError:
            pass
        plan: _TopicPlan | None = None
        if topic not in SEPARATE_PARTS:
            try:
                cls: Any = resolve_topic(topic)
                if isinstance(cls, type) and not issubclass(cls, Snapshot):
                    plan = _TopicPlan(
                        cls=cls,
                        to_id=find_id_convertor(cast(Any, cls), UUID),
                        class_version=getattr(cls, "class_version", 1),
                    )
            except Exception:  # the mapper reports it, with its own error
                plan = None
        self._plans[topic] = plan
        return plan

    def __call__(self, originator_id: UUID, rows: Sequence[StoredRow]) -> list[Any]:
        mapper = self._mapper
        decode_state = mapper.transcoder.decode
        owner = str(originator_id)
        key: AESGCM | None = None
        key_looked_up = False
        events: list[Any] = []
        append = events.append
        plans = self._plans
        for version, topic, stored in rows:
            plan = plans[topic] if topic in plans else self._plan(topic)
            if plan is not None:
                try:
                    state: Any = decode_state(stored)
                except Exception:  # the mapper raises its own error, naming no data
                    state = None
            if plan is None or type(state) is not dict:
                append(mapper.to_domain_event(StoredEvent(originator_id, version, topic, stored)))
                continue
            cls = plan.cls
            sealed = state.pop(SEALED, None)
            if sealed is not None:
                if not key_looked_up:
                    key_looked_up = True
                    try:
                        key = mapper.keys.for_reading(owner)
                    except Exception:  # erased or missing: the mapper decides, below
                        key = None
                values: Any = None
                if key is not None:
                    try:
                        raw = base64.b64decode(sealed)
                        if raw[:1] == _FORMAT:
                            values = decode_state(
                                key.decrypt(
                                    raw[1 : 1 + NONCE_BYTES],
                                    raw[1 + NONCE_BYTES :],
                                    _aad(owner, version),
                                )
                            )
                    except Exception:  # the mapper raises its own error, below
                        values = None
                if type(values) is dict:
                    state.update(values)
                else:
                    stored_event = StoredEvent(originator_id, version, topic, stored)
                    mapper._unseal_into(state, cls, stored_event, sealed, owner)
            state["originator_id"] = plan.to_id(originator_id)
            state["originator_version"] = version
            from_version = state.pop("class_version", 1)
            while from_version < plan.class_version:
                getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
            event = object.__new__(cls)
            object.__setattr__(event, "__dict__", state)
            append(event)
        return events


def batch_decoder(mapper: Mapper[UUID]) -> BatchDecoder | None:
    """A batch decoder for Akte's own mapper as deployed (no library cipher or
    compressor around it); None for any other, which then decodes event by event."""
    if type(mapper) is not PersonalDataMapper or mapper.cipher or mapper.compressor:
        return None
    return BatchDecoder(mapper)
