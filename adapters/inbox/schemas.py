"""The JSON Schemas of the messages in and out (``adapters/inbox/schemas/*.json``), and
validation against them.

One schema per message type, named after it (``MBABH.Anmeldung.json``,
``Administration.ReturnToSender.json``, ``Portal.Aufenthaltsantrag.json`` ...), and the
shared building blocks in ``xauslaender-basis.json``. The message types and field names
are modelled on XAusländer; the schemas are Akte's own, not certified against the
standard's official XML schemas (docs/guides/notices-and-applications.md).

:func:`problems` names what is wrong as JSON paths and rules (``/person/geburtsdatum:
format``), never the values sent: they are personal data and go back to the sender
only inside the returned message itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from importlib import resources
from typing import Any, Final

from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry, Resource

BASE: Final = "https://schemas.akte.invalid/inbox/"
NOTICE_TYPES: Final = {
    "MBABH.Anmeldung": "anmeldung",
    "MBABH.Abmeldung": "abmeldung",
    "MBABH.AenderungHauptwohnung": "aenderung_hauptwohnung",
    "MBABH.Namensaenderung": "namensaenderung",
    "MBABH.AenderungStaatsangehoerigkeit": "aenderung_staatsangehoerigkeit",
    "MBABH.Tod": "tod",
}
"""The registration office's messages and the kind of notice each is."""
APPLICATION_TYPE: Final = "Portal.Aufenthaltsantrag"
RECEIPT_TYPE: Final = "Portal.Eingangsbestaetigung"
RETURN_TO_SENDER_TYPE: Final = "Administration.ReturnToSender"
FILE_REQUEST_TYPE: Final = "ABH.Aktenanforderung"
FILE_ANSWER_TYPE: Final = "ABH.Aktenuebersendung"
FILE_REFUSAL_TYPE: Final = "ABH.AktenanforderungAbgelehnt"
FILE_TRANSFER_TYPES: Final = (FILE_REQUEST_TYPE, FILE_ANSWER_TYPE, FILE_REFUSAL_TYPE)
"""Case files between offices (:mod:`adapters.inbox.file_transfers`)."""
MESSAGE_TYPES: Final = (
    *NOTICE_TYPES,
    APPLICATION_TYPE,
    RECEIPT_TYPE,
    RETURN_TO_SENDER_TYPE,
    *FILE_TRANSFER_TYPES,
)
_MAX_PROBLEMS: Final = 10


class UnknownMessageType(LookupError):
    """No schema for this message type."""


@cache
def schema_documents() -> dict[str, dict[str, Any]]:
    """Every schema file by its name (without ``.json``)."""
    folder = resources.files("adapters.inbox").joinpath("schemas")
    found: dict[str, dict[str, Any]] = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            found[entry.name.removesuffix(".json")] = json.loads(entry.read_text("utf-8"))
    return found


@cache
def _registry() -> Registry[Any]:
    resources_ = [
        (document["$id"], Resource.from_contents(document))
        for document in schema_documents().values()
    ]
    return Registry[Any]().with_resources(resources_)


@cache
def _end_anchored(pattern: str) -> re.Pattern[str]:
    """``pattern`` with a final ``$`` meaning the end of the text, as in JSON Schema's
    (ECMA-262) patterns: Python's ``$`` also matches before a final line break, which let
    a reply subject ending in a line break pass, which the broker then refuses."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _pattern(
    validator: Draft202012Validator, pattern: str, instance: object, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if isinstance(instance, str) and _end_anchored(pattern).search(instance) is None:
        yield ValidationError(f"does not match {pattern!r}")


_MessageValidator: Final[type[Draft202012Validator]] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _pattern}
)
"""Draft 2020-12, with patterns anchored as JSON Schema means them."""


@cache
def validator(message_type: str) -> Draft202012Validator:
    document = schema_documents().get(message_type)
    if document is None or message_type not in MESSAGE_TYPES:
        raise UnknownMessageType(message_type)
    return _MessageValidator(
        document,
        registry=_registry(),
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def problems(message: object, message_type: str) -> list[str]:
    """What breaks the schema of ``message_type``: paths and rules, no values; empty:
    the message is valid."""
    found = []
    for error in sorted(validator(message_type).iter_errors(message), key=lambda e: e.path):
        path = "/" + "/".join(str(part) for part in error.absolute_path)
        found.append(f"{path}: {error.validator}")
        if len(found) == _MAX_PROBLEMS:
            break
    return found


def fits_definition(value: str, definition: str) -> bool:
    """``value`` fits the pattern of a building block of ``xauslaender-basis.json``
    (``kennung``, ``betreff``): for the parts of a message that broke its schema."""
    schema = schema_documents()["xauslaender-basis"]["$defs"][definition]
    pattern = schema.get("pattern")
    return pattern is None or re.fullmatch(pattern, value) is not None


__all__ = [
    "APPLICATION_TYPE",
    "FILE_ANSWER_TYPE",
    "FILE_REFUSAL_TYPE",
    "FILE_REQUEST_TYPE",
    "FILE_TRANSFER_TYPES",
    "MESSAGE_TYPES",
    "NOTICE_TYPES",
    "RECEIPT_TYPE",
    "RETURN_TO_SENDER_TYPE",
    "UnknownMessageType",
    "fits_definition",
    "inlined_schema",
    "problems",
    "schema_documents",
    "validator",
]


def inlined_schema(message_type: str) -> dict[str, Any]:
    """The schema of ``message_type`` with every ``$ref`` replaced by what it names and
    without ``$schema``/``$id``: one self-contained schema, as an AsyncAPI document's
    message payload (:mod:`adapters.inbox.asyncapi`)."""
    documents = schema_documents()

    def resolve(node: Any, document: dict[str, Any]) -> Any:
        if isinstance(node, list):
            return [resolve(item, document) for item in node]
        if not isinstance(node, dict):
            return node
        reference = node.get("$ref")
        if isinstance(reference, str):
            file_part, _, pointer = reference.partition("#")
            target = documents[file_part.removesuffix(".json")] if file_part else document
            found: Any = target
            for part in pointer.strip("/").split("/"):
                found = found[part]
            rest = {key: value for key, value in node.items() if key != "$ref"}
            return {**resolve(found, target), **resolve(rest, document)}
        return {
            key: resolve(value, document)
            for key, value in node.items()
            if key not in ("$schema", "$id", "$defs")
        }

    resolved: dict[str, Any] = resolve(documents[message_type], documents[message_type])
    return resolved
