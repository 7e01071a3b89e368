"""The AsyncAPI 2.6 document of what the outbox publishes, generated from the code.

One channel per kind of aggregate among the chosen events
(``akte.{office}.case-file.{aggregateId}``), one message per event class: the
CloudEvents envelope (:mod:`adapters.outbox.cloudevents`) with ``type`` fixed to the
class and ``data`` holding exactly the fields it publishes, typed from the event class's
annotations (``additionalProperties: false``: a personal field in a message would break
the schema). The docs build writes it as the page "Published events (AsyncAPI)" and as
``reference/asyncapi.json`` (docs/hooks/reference.py); ``akte outbox asyncapi`` prints
it for the configured allow-list.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import types
import typing
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from adapters.inbox.asyncapi import inbox_channels, inbox_messages
from adapters.outbox.cloudevents import (
    CONTENT_TYPE,
    DATA_CONTENT_TYPE,
    DEFAULT_SUBJECT_PREFIX,
    MESSAGE_ID_HEADER,
    SPEC_VERSION,
    Selection,
    aggregate_kind,
    aggregate_name,
    event_type,
    published_fields,
)
from domain.personal import personal_fields

ASYNCAPI_VERSION: Final = "2.6.0"
DOCUMENT_VERSION: Final = "1.0.0"
"""The version of the message contract; raised when a message changes incompatibly."""
_EXAMPLE_URL: Final = "nats://127.0.0.1:4222"


def json_schema(hint: Any) -> dict[str, Any]:
    """A JSON Schema (draft 7, as AsyncAPI 2.6 uses) for values of the type ``hint``."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    origin = typing.get_origin(hint)
    if hint is type(None):
        return {"type": "null"}
    if origin in (types.UnionType, typing.Union):
        return {"anyOf": [json_schema(option) for option in typing.get_args(hint)]}
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin in (list, tuple, set, frozenset, Sequence):
        arguments = [arg for arg in typing.get_args(hint) if arg is not Ellipsis]
        return {"type": "array", "items": json_schema(arguments[0]) if arguments else {}}
    if origin is dict or hint is dict:
        return {"type": "object"}
    if isinstance(hint, type):
        return _class_schema(hint)
    return {}


def _class_schema(hint: type) -> dict[str, Any]:
    simple: list[tuple[type, dict[str, Any]]] = [
        (bool, {"type": "boolean"}),
        (int, {"type": "integer"}),
        (float, {"type": "number"}),
        (str, {"type": "string"}),
        (datetime, {"type": "string", "format": "date-time"}),
        (date, {"type": "string", "format": "date"}),
        (UUID, {"type": "string", "format": "uuid"}),
    ]
    for kind, schema in simple:
        # bool before int, datetime before date: each is a subclass of the next.
        if issubclass(hint, kind):
            return dict(schema)
    if issubclass(hint, enum.Enum):
        return {"enum": [member.value for member in hint]}
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint, include_extras=True)
        names = [item.name for item in dataclasses.fields(hint)]
        return {
            "type": "object",
            "properties": {name: json_schema(hints[name]) for name in names},
            "required": names,
        }
    return {}


def data_schema(event_class: type) -> dict[str, Any]:
    """The schema of a message's ``data``: the fields the outbox publishes, no others."""
    hints = typing.get_type_hints(event_class, include_extras=True)
    names = list(published_fields(event_class))
    return {
        "type": "object",
        "properties": {name: json_schema(hints.get(name, Any)) for name in names},
        "required": names,
        "additionalProperties": False,
    }


def message_schema(event_class: type) -> dict[str, Any]:
    """The schema of a whole message: the CloudEvents envelope of ``event_class``."""
    return {
        "type": "object",
        "required": [
            "specversion",
            "id",
            "source",
            "type",
            "subject",
            "time",
            "datacontenttype",
            "akteversion",
            "data",
        ],
        "properties": {
            "specversion": {"const": SPEC_VERSION},
            "id": {
                "type": "string",
                "description": "Stable per event: <aggregate id>:<version>; de-duplicate by it.",
            },
            "source": {"type": "string", "pattern": "^akte/[A-Za-z0-9_-]+$"},
            "type": {"const": event_type(event_class)},
            "subject": {"type": "string", "description": "The aggregate's id."},
            "time": {
                "type": "string",
                "format": "date-time",
                "description": "When it happened (the business time of the act).",
            },
            "datacontenttype": {"const": DATA_CONTENT_TYPE},
            "akteversion": {
                "type": "integer",
                "minimum": 1,
                "description": "The aggregate's version this event made: orders a case "
                "file's events and shows gaps.",
            },
            "data": data_schema(event_class),
        },
    }


def _message(event_class: type) -> dict[str, Any]:
    withheld = sorted(personal_fields(event_class))
    description = (
        f"`{event_type(event_class)}`. "
        + (
            "Personal fields are not published: " + ", ".join(withheld) + "."
            if withheld
            else "The event has no personal fields."
        )
        + " Who acted (`by`) is not published either."
    )
    doc = (event_class.__doc__ or "").strip()
    generated = doc.startswith(event_class.__name__ + "(")  # the dataclass's signature
    summary = "" if generated else " ".join(doc.split("\n\n")[0].split())
    message: dict[str, Any] = {
        "name": event_class.__qualname__,
        "title": event_class.__qualname__,
        "contentType": CONTENT_TYPE,
        "description": description,
        "headers": {
            "type": "object",
            "required": [MESSAGE_ID_HEADER],
            "properties": {
                MESSAGE_ID_HEADER: {
                    "type": "string",
                    "description": "The CloudEvents id; JetStream drops a repeated one "
                    "within the stream's duplicate window.",
                }
            },
        },
        "payload": message_schema(event_class),
    }
    if summary:
        message["summary"] = summary
    return message


def asyncapi_document(
    selection: Selection,
    *,
    subject_prefix: str = DEFAULT_SUBJECT_PREFIX,
    url: str = _EXAMPLE_URL,
    inbox: bool = True,
) -> dict[str, Any]:
    """The AsyncAPI 2.6 document of the messages the outbox publishes for ``selection``;
    with ``inbox``, also the messages Akte receives and its answers
    (:mod:`adapters.inbox.asyncapi`)."""
    kinds: dict[str, list[type]] = {}
    for event_class in selection.classes:
        kinds.setdefault(aggregate_kind(event_class), []).append(event_class)
    channels: dict[str, Any] = {}
    for kind, classes in kinds.items():
        aggregate = aggregate_name(classes[0])
        channels[f"{subject_prefix}.{{office}}.{kind}.{{aggregateId}}"] = {
            "description": f"The events of one {aggregate}, in the order they happened.",
            "parameters": {
                "office": {
                    "description": "The id of the office the aggregate belongs to "
                    "(the events' source is akte/<office>).",
                    "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]+$"},
                },
                "aggregateId": {
                    "description": f"The {aggregate}'s id (a UUID).",
                    "schema": {"type": "string"},
                },
            },
            "subscribe": {
                "operationId": f"receive{aggregate}Events",
                "summary": f"Akte publishes {aggregate} events here, at least once.",
                "message": {
                    "oneOf": [
                        {"$ref": f"#/components/messages/{event_class.__qualname__}"}
                        for event_class in classes
                    ]
                },
            },
        }
    messages = {
        event_class.__qualname__: _message(event_class) for event_class in selection.classes
    }
    if inbox:
        channels.update(inbox_channels(subject_prefix))
        messages.update(inbox_messages())
    scheme, _, rest = url.partition("://")
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:de:akte:outbox",
        "info": {
            "title": "Akte: events for other systems",
            "version": DOCUMENT_VERSION,
            "description": "Events of a foreigners' office's case files as CloudEvents 1.0 "
            "(structured mode) on NATS JetStream, published at least once and in order per "
            "aggregate. Personal data is never published.",
            "license": {"name": "EUPL-1.2", "url": "https://eupl.eu/1.2/en/"},
        },
        "servers": {
            "broker": {
                "url": rest.rpartition("@")[2] if rest else url,
                "protocol": scheme or "nats",
                "description": "NATS with JetStream (AKTE_OUTBOX_URL).",
            }
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "components": {"messages": messages},
    }


def asyncapi_markdown(document: dict[str, Any]) -> str:
    """A docs page: the channels and messages in short, then the whole document."""
    lines = [
        "# Published events (AsyncAPI)",
        "",
        "What `akte outbox run` publishes with the default allow-list "
        "([events to other systems](../guides/outbox.md)), generated from the code. "
        "The same document as a file: [asyncapi.json](asyncapi.json); "
        "for another allow-list, `akte outbox asyncapi` prints it. It also holds the "
        "messages `akte inbox run` receives and its answers "
        "([notices and applications in](../guides/notices-and-applications.md)).",
        "",
        "| channel | message | published fields |",
        "|---|---|---|",
    ]
    messages = document["components"]["messages"]
    for channel, item in document["channels"].items():
        operation = item.get("subscribe") or item["publish"]
        refs = operation["message"].get("oneOf", [operation["message"]])
        for ref in refs:
            name = ref["$ref"].rsplit("/", 1)[1]
            payload = messages[name]["payload"]["properties"]
            # Events: the fields of their data; messages in and answers: their parts.
            fields = payload["data"]["properties"] if "data" in payload else payload
            shown = ", ".join(f"`{field}`" for field in fields) or "-"
            lines.append(f"| `{channel}` | `{name}` | {shown} |")
    lines += ["", "```json", json.dumps(document, indent=2, ensure_ascii=False), "```", ""]
    return "\n".join(lines)


__all__ = [
    "ASYNCAPI_VERSION",
    "asyncapi_document",
    "asyncapi_markdown",
    "data_schema",
    "json_schema",
    "message_schema",
]
