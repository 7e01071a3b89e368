"""The API's own documentation: ``GET /docs`` (Swagger UI), served without any other host.

FastAPI's built-in page loads Swagger UI from a CDN and its favicon from FastAPI's site, so
every reader's address would reach a third party, and the page is blank offline. Akte
serves the Swagger UI files of the ``fastapi-swagger`` package under :data:`ASSETS_PATH`
instead. ReDoc is switched off: no Python package ships it, and one page is enough.

Also here: the operation ids (:func:`operation_id`) and the tag descriptions
(:data:`OPENAPI_TAGS`) of the OpenAPI document.
"""

from __future__ import annotations

from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

DOCS_PATH: Final = "/docs"
ASSETS_PATH: Final = "/docs-assets"
# The package's Swagger UI files; nothing else of it (its Python files) is served.
ASSET_PACKAGE: Final = ("fastapi_swagger", "resources")
SCRIPT, STYLESHEET, FAVICON = "swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"
ASSET_NAMES: Final = frozenset({SCRIPT, STYLESHEET, FAVICON})
# Swagger UI's own defaults as FastAPI sets them, plus: no validator badge (it would ask a
# validator on another host), the filter box for a document of 100+ operations, and the
# operation ids shown, the names a generated client gives its methods.
SWAGGER_UI_PARAMETERS: Final = {"validatorUrl": None, "filter": True, "displayOperationId": True}

OPENAPI_TAGS: Final = [
    {"name": "cases", "description": "Open, read, correct, transfer and close case files."},
    {"name": "history", "description": "A case file as it was at a time, and what changed."},
    {"name": "documents", "description": "Documents of a case file: records and uploads."},
    {"name": "procedures", "description": "Applications and their decisions, step by step."},
    {
        "name": "residence documents",
        "description": "Residence titles, Duldungen and Gestattungen; the eAT card's way.",
    },
    {"name": "fiction certificates", "description": "Fiktionsbescheinigungen (§ 81 AufenthG)."},
    {
        "name": "integration course",
        "description": "Entitlements to and obligations of an integration course (§§ 44, 44a).",
    },
    {"name": "entry procedures", "description": "Consent to a visa abroad (§ 31 AufenthV)."},
    {"name": "inquiries", "description": "Questions from other authorities, and the answers."},
    {"name": "correspondence", "description": "Letters sent and received, on the record."},
    {"name": "notes", "description": "Caseworkers' notes on a case file."},
    {"name": "catalogue", "description": "The legal basis and topic codes commands accept."},
    {
        "name": "commitment declarations: applicants",
        "description": "A Verpflichtungserklärung submitted and paid online by the person.",
    },
    {
        "name": "commitment declarations",
        "description": "The office's side of commitment declarations: checks and handover.",
    },
    {"name": "payments", "description": "The payment platform's notifications and return."},
    {"name": "contact form", "description": "The public contact form with file upload."},
    {
        "name": "contact form: triage",
        "description": "Submissions of the contact form: read, link, answer or dismiss.",
    },
    {"name": "worklists", "description": "What waits for the office, one question per list."},
    {"name": "reports", "description": "The yearly report, what-if and workload figures."},
    {"name": "audit", "description": "Who did and who read what, and the log's integrity."},
    {
        "name": "data protection",
        "description": "Erasure, subject access (Art. 15 GDPR) and retention.",
    },
    {
        "name": "appointments: booking",
        "description": "Online booking by the person: offers, holds, confirmation, waitlist.",
    },
    {
        "name": "appointments: office",
        "description": "The office's side of appointments: service points, day lists, check-in.",
    },
    {"name": "operations", "description": "Liveness, readiness and metrics for the operators."},
]


def operation_id(route: APIRoute) -> str:
    """A route's operation id is its function's name (``open_case``), or the
    ``operation_id`` it sets where that name alone would be unclear or taken twice.

    FastAPI's default appends path and method (``open_case_cases_post``): unreadable, and it
    changes whenever a path does, which breaks every client generated from the document.
    """
    return route.name


class _SwaggerAssets(StaticFiles):
    """The Swagger UI files of :data:`ASSET_PACKAGE`; any other name is not found."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        if path not in ASSET_NAMES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def install_api_docs(app: FastAPI) -> None:
    """``GET /docs`` and its assets; the app must be built with ``docs_url=None``."""
    app.mount(ASSETS_PATH, _SwaggerAssets(packages=[ASSET_PACKAGE]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"

    # A plain route, as FastAPI adds its own docs page: not an API operation, so it is
    # neither in the OpenAPI document nor in the access tables.
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Same-origin paths, behind a proxy's path prefix too.
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_PATH}/{SCRIPT}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{STYLESHEET}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    app.add_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)
