"""Which events leave Akte through the outbox, and the CloudEvents 1.0 message each becomes.

**The allow-list** (``AKTE_OUTBOX_EVENTS``) names event classes as ``Aggregate.Event``
(``CaseFile.Opened``) or by their stored topic (``domain.case_file:CaseFile.Opened``).
Unset: :data:`DEFAULT_EVENTS`, the life of case files and their procedures: opened,
procedure received, decided and closed, transferred (and a hand-over that came back),
closed. Nothing else leaves Akte
unless an operator names it.

**Personal data never leaves.** A message carries an allow-list of fields too: the
event's own fields less the ones marked ``Personal[...]``
(:func:`domain.personal.personal_fields`) and less who acted (``by``, an employee's
account). The publisher reads events the way read models do, sealed: personal fields
are absent from the event object, and the per-person keys are never opened. Events
written in the clear (encryption switched off) hold their personal fields, so they are
left out by name here, not by their absence. An event class with personal fields is
therefore published *without* those fields (``CaseFile.Opened`` without name, birth
date, nationality, passport and address: office and file number only), never with them.

**The message** (structured mode, ``application/cloudevents+json``)::

    {"specversion": "1.0", "id": "<case id>:<version>", "source": "akte/<office>",
     "type": "de.akte.CaseFile.Opened", "subject": "<case id>",
     "time": "<when it happened>", "datacontenttype": "application/json",
     "akteversion": <version>, "data": {...}}

``id`` is stable: the same event always gets the same id (the aggregate's id and the
version the event made), so a consumer can de-duplicate by it and JetStream does by the
``Nats-Msg-Id`` header that repeats it. ``akteversion`` (an extension attribute) orders a
case file's events and shows a consumer a gap.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, Final

import orjson
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

from domain.personal import personal_fields

SPEC_VERSION: Final = "1.0"
CONTENT_TYPE: Final = "application/cloudevents+json"
DATA_CONTENT_TYPE: Final = "application/json"
TYPE_PREFIX: Final = "de.akte"
DEFAULT_SUBJECT_PREFIX: Final = "akte"
MESSAGE_ID_HEADER: Final = "Nats-Msg-Id"

DEFAULT_EVENTS: Final = (
    "CaseFile.Opened",
    "CaseFile.ProcedureReceived",
    "CaseFile.ProcedureDecided",
    "CaseFile.ProcedureClosed",
    "CaseFile.TransferredToOffice",
    "CaseFile.HandOverReturned",
    "CaseFile.Closed",
)
"""The life of case files and procedures; staff assignments, notes, documents, letters
and everything of the public doors (appointments, declarations, contact form) stay in."""

WITHHELD_HEADER_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "timestamp", "originator_topic", "by"}
)
"""Fields the envelope already carries (id, subject, version, type) and who acted: an
employee's account id is not for other systems."""

_TOKEN: Final = re.compile(r"^[A-Za-z0-9_-]+$")
"""A NATS subject token (no dots, spaces or wildcards)."""


class UnknownEventKind(ValueError):
    """An allow-list entry that names no event class of ``domain/``."""


class InvalidSubjectToken(ValueError):
    """An office or prefix that cannot be part of a NATS subject."""


# ------------------------------------------------------------------ the allow-list


@cache
def known_events() -> dict[str, type[DomainEvent]]:
    """Every concrete event class of ``domain/`` by ``Aggregate.Event``."""
    import domain

    found: dict[str, type[DomainEvent]] = {}
    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and value.__module__ == module.__name__:
                for nested in vars(value).values():
                    if (
                        isinstance(nested, type)
                        and issubclass(nested, DomainEvent)
                        and nested.__qualname__ == f"{value.__qualname__}.{nested.__name__}"
                        and nested.__name__ != "Event"
                    ):
                        found[nested.__qualname__] = nested
    return found


@dataclass(frozen=True)
class Selection:
    """The event classes the outbox publishes, in the order they were named."""

    classes: tuple[type[DomainEvent], ...]

    @classmethod
    def parse(cls, text: str | None) -> Selection:
        """``Aggregate.Event`` or topics, comma-separated; empty or ``None``: the default."""
        names = [name.strip() for name in (text or "").split(",") if name.strip()]
        return cls.of(names or DEFAULT_EVENTS)

    @classmethod
    def of(cls, names: Iterable[str]) -> Selection:
        known = known_events()
        by_topic = {get_topic(event_class): event_class for event_class in known.values()}
        chosen: list[type[DomainEvent]] = []
        for name in names:
            event_class = known.get(name) or by_topic.get(name)
            if event_class is None:
                msg = f"no event class {name!r} in domain/ (e.g. CaseFile.Opened)"
                raise UnknownEventKind(msg)
            if event_class not in chosen:
                chosen.append(event_class)
        return cls(tuple(chosen))

    @property
    def topics(self) -> tuple[str, ...]:
        """The stored topics, for reading only these events from the log."""
        return tuple(get_topic(event_class) for event_class in self.classes)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(event_class.__qualname__ for event_class in self.classes)


# ------------------------------------------------------------------ one event


def aggregate_name(event_class: type) -> str:
    """``CaseFile`` for ``CaseFile.Opened``."""
    return event_class.__qualname__.rsplit(".", 1)[0]


def aggregate_kind(event_class: type) -> str:
    """The subject token of the aggregate: ``case-file`` for ``CaseFile.Opened``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", aggregate_name(event_class)).lower()


def event_type(event_class: type) -> str:
    """The CloudEvents ``type``: ``de.akte.CaseFile.Opened``."""
    return f"{TYPE_PREFIX}.{event_class.__qualname__}"


@cache
def published_fields(event_class: type) -> tuple[str, ...]:
    """The fields of ``event_class`` that go into ``data``: its own, without personal ones."""
    if not dataclasses.is_dataclass(event_class):
        return ()
    withheld = WITHHELD_HEADER_FIELDS | personal_fields(event_class)
    return tuple(
        field.name for field in dataclasses.fields(event_class) if field.name not in withheld
    )


def subject_token(value: str, what: str) -> str:
    """``value`` if it can stand between the dots of a NATS subject."""
    if not _TOKEN.match(value):
        msg = f"{what} must be letters, digits, '-' or '_' to be part of a NATS subject"
        raise InvalidSubjectToken(msg)
    return value


def subject_of(prefix: str, office: str, event_class: type, aggregate_id: str) -> str:
    """``<prefix>.<office>.<aggregate kind>.<aggregate id>``."""
    return f"{prefix}.{office}.{aggregate_kind(event_class)}.{aggregate_id}"


def message_id(aggregate_id: str, version: int) -> str:
    """Stable per event: the aggregate's id and the version the event made."""
    return f"{aggregate_id}:{version}"


@dataclass(frozen=True)
class OutboxMessage:
    """One event as it goes to the broker."""

    subject: str
    message_id: str
    payload: bytes


def cloud_event(event: Any, aggregate_id: str, *, office: str) -> dict[str, Any]:
    """The CloudEvents 1.0 envelope of ``event`` with its published fields as ``data``."""
    event_class: type = type(event)
    state = vars(event)
    data = {name: state[name] for name in published_fields(event_class) if name in state}
    version = int(state["originator_version"])
    happened = state.get("at")
    if not isinstance(happened, datetime):
        happened = state["timestamp"]
    return {
        "specversion": SPEC_VERSION,
        "id": message_id(aggregate_id, version),
        "source": f"akte/{office}",
        "type": event_type(event_class),
        "subject": aggregate_id,
        "time": happened,
        "datacontenttype": DATA_CONTENT_TYPE,
        "akteversion": version,
        "data": data,
    }


def to_message(event: Any, aggregate_id: str, *, office: str, prefix: str) -> OutboxMessage:
    """``event`` of the aggregate ``aggregate_id`` (text) as a message for the broker."""
    envelope = cloud_event(event, aggregate_id, office=office)
    return OutboxMessage(
        subject=subject_of(prefix, office, type(event), aggregate_id),
        message_id=envelope["id"],
        payload=orjson.dumps(envelope, default=_json_value),
    )


def _json_value(value: object) -> object:
    """What orjson does not write itself (it writes dates, times, UUIDs, dataclasses)."""
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    msg = f"cannot write {type(value).__name__} as JSON"
    raise TypeError(msg)


__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_EVENTS",
    "DEFAULT_SUBJECT_PREFIX",
    "MESSAGE_ID_HEADER",
    "InvalidSubjectToken",
    "OutboxMessage",
    "Selection",
    "UnknownEventKind",
    "aggregate_kind",
    "aggregate_name",
    "cloud_event",
    "event_type",
    "known_events",
    "message_id",
    "published_fields",
    "subject_of",
    "subject_token",
    "to_message",
]
