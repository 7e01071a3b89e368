"""The HTTP interface of Akte: a thin layer over :class:`service.AkteService`.

Reads return the current state of a case file with ``ETag: "<version>"``. Every write is
a ``POST`` on a sub-resource of the case file and needs ``If-Match: "<version>"``, which
becomes the command's expected version; it answers with the new ``ETag``, and with
``201 Created`` plus ``Location`` when it created a numbered part (procedure, document, ...).

Concurrency follows HTTP, more strictly than the issue's "409 stale version": a stale
``If-Match`` is ``412 Precondition Failed`` (with the expected and actual version) and a
missing one ``428 Precondition Required``; ``409 Conflict`` is left to domain rule
violations.

The acting user is TEMPORARILY read from the ``X-Akte-User`` header (required on writes,
``401`` without it) until authentication arrives in its own issue; the header is trusted
as is, so this must not be exposed beyond a trusted network before then.

Errors are ``application/problem+json`` (RFC 9457), see :mod:`adapters.http.problems`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from adapters.http import (
    cases,
    catalogue,
    correspondence,
    documents,
    entry_procedures,
    fiction_certificates,
    inquiries,
    integration_course,
    notes,
    procedures,
    residence_documents,
)
from adapters.http.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from adapters.settings import Settings
from service import AkteService

DESCRIPTION = """\
Case processing for foreigners' offices (Ausländerbehörden).

**Reading** a case file returns `ETag: "<version>"`. **Writing** is a `POST` on a
sub-resource of the case file and needs `If-Match: "<version>"`; a stale version is
answered with `412`, a missing `If-Match` with `428`. Writes answer with the new `ETag`.

**Acting user (TEMPORARY):** until authentication arrives, writes name the acting user
in the `X-Akte-User` header (a pseudonymous account id); without it they fail with `401`.

**Errors** are `application/problem+json` (RFC 9457) with a stable `type` URI; invalid
input lists the offending fields in `errors`.
"""

_GENERATED_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_WRITE_HEADERS = frozenset({"x-akte-user", "if-match"})
_ETAG_HEADER = {
    "description": 'The case file\'s version as an entity tag, e.g. `"7"`.',
    "schema": {"type": "string"},
}
_LOCATION_HEADER = {
    "description": "Where the created part of the case file can be read.",
    "schema": {"type": "string", "format": "uri"},
}


class AkteApi(FastAPI):
    """FastAPI, with the OpenAPI document telling the truth about error bodies and ETags."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = _describe_problems_and_headers(super().openapi())
        return self.openapi_schema


def _describe_problems_and_headers(schema: dict[str, Any]) -> dict[str, Any]:
    # FastAPI documents every error as application/json and adds its own 422 format,
    # which the problem handlers replace.
    problem = {"schema": {"$ref": "#/components/schemas/ProblemPublic"}}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                # Declared optional only so that their absence is a 401/428, not a 422.
                if parameter["in"] == "header" and parameter["name"] in _WRITE_HEADERS:
                    parameter["required"] = True
            for status_code, response in operation.get("responses", {}).items():
                code = int(status_code)
                if code >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: problem}
                elif path.startswith("/cases") and 200 <= code < 300:
                    headers = response.setdefault("headers", {})
                    headers["ETag"] = _ETAG_HEADER
                    if code == 201:
                        headers["Location"] = _LOCATION_HEADER
    components = schema.get("components", {}).get("schemas", {})
    for name in _GENERATED_VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


def create_app(service: AkteService, settings: Settings) -> FastAPI:
    """The API over ``service``; whoever built the service closes it."""
    app = AkteApi(
        title="Akte",
        summary="Event-sourced case processing for German foreigners' offices",
        description=DESCRIPTION,
        # Telemetry logs would carry exception messages, which may quote personal data.
        telemetry={"logs": False},
    )
    app.state.service = service
    app.state.settings = settings
    install_problem_handlers(app)
    for router_module in (
        cases,
        documents,
        procedures,
        residence_documents,
        fiction_certificates,
        integration_course,
        entry_procedures,
        inquiries,
        correspondence,
        notes,
        catalogue,
    ):
        app.include_router(router_module.router)
    return app
