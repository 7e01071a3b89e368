"""``GET /docs`` from Akte alone, and an OpenAPI document whose ids, tags and examples hold.

The page and every file it loads come from Akte (no CDN, no other host); the operation
ids are the readable, stable names of the routes; every tag says what it is about; and
every example in the document is valid against its schema, so a reader who copies one
is not answered with a 422.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import referencing
from fastapi.testclient import TestClient
from referencing.jsonschema import DRAFT202012

from adapters.bootstrap import build_app, build_service
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings

DOCUMENT_URI = "urn:akte:openapi"
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(store="sqlite", data_dir=tmp_path_factory.mktemp("docs") / "data")
    service = build_service(settings)
    try:
        with TestClient(build_app(settings, service)) as test_client:
            yield test_client
    finally:
        service.close()


@pytest.fixture(scope="module")
def document(client: TestClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    found: dict[str, Any] = response.json()
    return found


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]


def referenced_urls(html: str) -> list[str]:
    parser = _References()
    parser.feed(html)
    return parser.urls


# ------------------------------------------------------------------- the page


def test_the_docs_page_loads_nothing_from_another_host(client: TestClient) -> None:
    page = client.get("/docs")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    urls = referenced_urls(page.text)
    assert len(urls) == 3, urls  # script, stylesheet, favicon
    for url in urls:
        assert url.startswith("/"), url
        assert not url.startswith("//"), url
    # Nor in the inline script (the OpenAPI document's address, the validator).
    assert not re.search(r"https?:|//\w", page.text), page.text
    assert "url: '/openapi.json'" in page.text
    assert '"validatorUrl": null' in page.text


def test_every_file_of_the_docs_page_is_served_with_its_type(client: TestClient) -> None:
    for url in referenced_urls(client.get("/docs").text):
        response = client.get(url)

        assert response.status_code == 200, url
        assert response.headers["content-type"].startswith(CONTENT_TYPES[Path(url).suffix]), (
            response.headers["content-type"]
        )
        assert len(response.content) > 100, url
    script = next(u for u in referenced_urls(client.get("/docs").text) if u.endswith(".js"))
    assert b"SwaggerUIBundle" in client.get(script).content


def test_only_the_swagger_ui_files_of_the_package_are_served(client: TestClient) -> None:
    assert client.get("/docs-assets/__init__.py").status_code == 404
    assert client.get("/docs-assets/../__init__.py").status_code == 404
    assert client.get("/docs-assets/").status_code == 404


def test_redoc_is_switched_off(client: TestClient) -> None:
    # It would load ReDoc from a CDN; the one docs page is /docs.
    assert client.get("/redoc").status_code == 404


# ------------------------------------------------------------------- operation ids


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def test_operation_ids_are_the_readable_names_of_the_routes(document: dict[str, Any]) -> None:
    ids = {(path, method): op["operationId"] for path, method, op in operations(document)}

    assert ids["/cases", "post"] == "open_case"
    assert ids["/appointments/bookings", "post"] == "book_appointment"
    assert ids["/commitment-declarations/{declaration_id}/case-link", "post"] == (
        "link_declaration_to_case_file"
    )
    assert ids["/contact-submissions/{submission_id}/case-link", "post"] == (
        "link_submission_to_case_file"
    )
    for (path, method), operation_id in ids.items():
        assert re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", operation_id), operation_id
        # FastAPI's generated ids end in the path and the method: those change with a path.
        assert not operation_id.endswith(f"_{method}"), (path, operation_id)


def test_operation_ids_are_unique(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _path, _method, operation in operations(document)]

    assert len(ids) > 100
    assert sorted(ids) == sorted(set(ids)), sorted({i for i in ids if ids.count(i) > 1})


# ------------------------------------------------------------------- tags


def test_every_tag_is_described_and_used(document: dict[str, Any]) -> None:
    used = {tag for _path, _method, op in operations(document) for tag in op.get("tags", [])}
    described = {tag["name"]: tag.get("description", "") for tag in document["tags"]}

    assert used == set(described)
    for name, description in described.items():
        assert description.strip(), name
    for path, method, operation in operations(document):
        assert operation.get("tags"), (method, path)


# ------------------------------------------------------------------- examples


def examples_with_schemas(document: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every example of the document with the JSON pointer of the schema it must fit.

    Schemas carry ``examples`` (a list) at any depth; media types and parameters carry
    ``example`` or ``examples`` (a map of named examples) beside their ``schema``.
    """

    def walk(node: Any, pointer: str, in_schema: bool) -> Iterator[tuple[str, Any]]:
        if isinstance(node, list):
            for index, item in enumerate(node):
                yield from walk(item, f"{pointer}/{index}", in_schema)
            return
        if not isinstance(node, dict):
            return
        if in_schema and isinstance(node.get("examples"), list):
            for example in node["examples"]:
                yield pointer, example
        if in_schema and "example" in node:
            yield pointer, node["example"]
        if not in_schema and isinstance(node.get("schema"), dict):
            if "example" in node:
                yield f"{pointer}/schema", node["example"]
            for named in (node.get("examples") or {}).values():
                yield f"{pointer}/schema", named["value"]
        for key, value in node.items():
            escaped = key.replace("~", "~0").replace("/", "~1")
            child_in_schema = in_schema or key == "schema" or pointer == "/components/schemas"
            if key in ("examples", "example") and not isinstance(value, dict):
                continue
            yield from walk(value, f"{pointer}/{escaped}", child_in_schema)

    yield from walk(document, "", in_schema=False)


def invalid_examples(document: dict[str, Any]) -> list[str]:
    resource = DRAFT202012.create_resource(document)
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(
        DOCUMENT_URI, resource
    )
    problems = []
    for pointer, example in examples_with_schemas(document):
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#{pointer}"},
            registry=registry,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        problems += [f"{pointer}: {example!r}: {e.message}" for e in validator.iter_errors(example)]
    return problems


def test_every_example_of_the_document_fits_its_schema(document: dict[str, Any]) -> None:
    found = list(examples_with_schemas(document))

    assert len(found) >= 30, found  # the walk reaches the examples at all
    assert invalid_examples(document) == []


def test_an_example_that_does_not_fit_its_schema_is_found() -> None:
    document = {
        "paths": {
            "/x": {
                "post": {
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Thing"},
                                "examples": {"bad": {"value": {"size": "big"}}},
                            }
                        }
                    }
                }
            }
        },
        "components": {
            "schemas": {
                "Thing": {
                    "type": "object",
                    "properties": {
                        "size": {"type": "integer", "examples": [3, "three"]},
                        "day": {"type": "string", "format": "date", "examples": ["31.12."]},
                    },
                }
            }
        },
    }

    problems = invalid_examples(document)

    assert len(problems) == 3, problems
    assert any("'three'" in problem for problem in problems)
    assert any("'31.12.'" in problem for problem in problems)
    assert any("'big'" in problem for problem in problems)


def test_code_examples_are_codes_the_commands_accept(document: dict[str, Any]) -> None:
    """A string schema cannot tell a topic from a legal basis: the catalogue can."""
    catalogue = load_catalogue()
    accepted = {"topic": catalogue.topics, "legal_basis": set(catalogue.legal_bases)}
    checked = 0
    for name, schema in document["components"]["schemas"].items():
        for field, property_schema in schema.get("properties", {}).items():
            if field not in accepted:
                continue
            branches = [property_schema, *property_schema.get("anyOf", [])]
            for example in (e for branch in branches for e in branch.get("examples", [])):
                assert example in accepted[field], (name, field, example)
                checked += 1
    assert checked >= 8
