"""The AsyncAPI document (adapters/outbox/asyncapi.py), checked against the official
AsyncAPI 2.6.0 JSON Schema.

The schema is the one the AsyncAPI Initiative publishes in its npm package
``@asyncapi/specs`` 6.11.1 (``schemas/2.6.0-without-$id.json``, Apache-2.0), kept in
``tests/fixtures/asyncapi/`` so the test runs offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

import jsonschema
import orjson
import pytest

from adapters.inbox.asyncapi import inbox_messages
from adapters.outbox.asyncapi import asyncapi_document, asyncapi_markdown, message_schema
from adapters.outbox.cloudevents import Selection, known_events, to_message
from domain.case_file import CaseFile
from tests.adapters.outbox.stories import OFFICE, story

SCHEMA: Final = Path(__file__).resolve().parents[2] / "fixtures/asyncapi/asyncapi-2.6.0.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text())
    assert schema["title"] == "AsyncAPI 2.6.0 schema."
    return jsonschema.Draft7Validator(schema)


def _errors(validator: jsonschema.Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(document)]


def test_the_default_document_is_valid_asyncapi_2_6(
    validator: jsonschema.Draft7Validator,
) -> None:
    document = asyncapi_document(Selection.parse(None))
    assert _errors(validator, document) == []
    # With the inbox's channels (messages in, their answers: adapters/inbox/asyncapi.py).
    assert "akte.inbox.{office}.meldebehoerde" in document["channels"]
    assert "MBABH.Anmeldung" in document["components"]["messages"]
    events = asyncapi_document(Selection.parse(None), inbox=False)
    assert list(events["channels"]) == ["akte.{office}.case-file.{aggregateId}"]
    assert sorted(events["components"]["messages"]) == sorted(Selection.parse(None).names)


def test_a_document_of_every_event_class_is_valid(validator: jsonschema.Draft7Validator) -> None:
    everything = Selection.of(known_events())
    document = asyncapi_document(everything, subject_prefix="akte.test")
    assert _errors(validator, document) == []
    assert len(document["components"]["messages"]) == len(everything.classes) + len(
        inbox_messages()
    )


def test_the_schema_check_catches_a_broken_document(
    validator: jsonschema.Draft7Validator,
) -> None:
    document = asyncapi_document(Selection.parse(None))
    channel = next(iter(document["channels"].values()))
    channel["subscribe"]["message"] = {"payload": {}, "not-a-field": 1}
    assert _errors(validator, document)


def test_published_messages_fit_their_schema_and_personal_fields_do_not() -> None:
    case = story(3, "c0ffee")
    chosen: tuple[type, ...] = Selection.parse(None).classes
    for event in case.collect_events():
        if type(event) not in chosen:
            continue
        schema = message_schema(type(event))
        envelope = orjson.loads(to_message(event, str(case.id), office=OFFICE, prefix="a").payload)
        jsonschema.validate(envelope, schema, format_checker=jsonschema.FormatChecker())
        envelope["data"]["surname"] = "Beispiel"
        with pytest.raises(jsonschema.ValidationError, match="surname"):
            jsonschema.validate(envelope, schema)


def test_the_docs_page_lists_each_message_with_its_fields() -> None:
    page = asyncapi_markdown(asyncapi_document(Selection.parse(None)))
    assert "| `akte.{office}.case-file.{aggregateId}` | `CaseFile.Opened` |" in page
    assert "`office_id`, `reference`" in page
    assert "surname" not in page.split("```json")[0].split("Opened")[1].split("\n")[0]
    assert CaseFile.Opened.__qualname__ in page
