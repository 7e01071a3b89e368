"""The API's own documentation: ``GET /docs`` (Swagger UI), served without any other host.

FastAPI's built-in page loads Swagger UI from a CDN and its favicon from FastAPI's site, so
every reader's address would reach a third party, and the page is blank offline. Akte
serves the Swagger UI files of the ``fastapi-swagger`` package under :data:`ASSETS_PATH`
instead. ReDoc is switched off: no Python package ships it, and one page is enough.

With an OpenID Connect provider and a public client for people
(``AKTE_OIDC_PUBLIC_CLIENT_ID``), staff sign in on the page itself. At start Akte reads the
provider's discovery document; the OpenAPI document then offers the provider's
authorization code flow as the scheme :data:`SIGN_IN_SCHEME`, beside a pasted bearer token
on every operation that takes a token (provider unreachable at start: the scheme names the
discovery document, and Swagger UI reads it in the browser). Swagger UI runs the flow with
PKCE (S256) in a window of its own, which the provider sends back to
:data:`OAUTH2_REDIRECT_PATH`, Swagger UI's redirect page as FastAPI ships it. A link from
elsewhere (the public pages' staff link) goes to :data:`SIGN_IN_PATH` instead, which takes
the same flow in the same window (``api_docs_sign_in.js``): a browser opens a second
window only after a click on the page itself. Either way the browser redeems the code at
the provider's token endpoint; Akte never sees a code or a password, only the access tokens
it checks as always. With the local issuer nothing of this is there: a token of ``akte
token`` is pasted, and :data:`SIGN_IN_PATH` leads to ``/docs``.

Also here: the operation ids (:func:`operation_id`) and the tag descriptions
(:data:`OPENAPI_TAGS`) of the OpenAPI document.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from html import escape
from pathlib import Path
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from adapters.http.auth.permissions import BEARER_SCHEME
from adapters.settings import Settings

DOCS_PATH: Final = "/docs"
OAUTH2_REDIRECT_PATH: Final = "/docs/oauth2-redirect"
SIGN_IN_PATH: Final = "/docs/sign-in"
"""Where a link signs a person in and lands on ``/docs`` (the public pages' staff link):
the provider's login in the same window; with the local issuer, ``/docs`` itself."""
SIGN_IN_SCRIPT_PATH: Final = "/docs/sign-in.js"
SIGN_IN_SCRIPT: Final = Path(__file__).with_name("api_docs_sign_in.js")
"""Where the provider sends the sign-in window back: register
``<Akte's address>/docs/oauth2-redirect`` as a redirect URI of the public client."""
SIGN_IN_SCHEME: Final = "oidc"
"""The OpenAPI security scheme of signing in at the provider (beside ``bearer``)."""
SIGN_IN_SCOPES: Final = ("openid", "akte")
"""What Swagger UI asks the provider for: ``akte`` is the client scope that puts Akte's
audience, roles and office into the access token (deploy/keycloak/akte-realm.json)."""
SIGN_IN_SCOPE_DESCRIPTIONS: Final = {
    "openid": "Sign in (OpenID Connect).",
    "akte": "Act in Akte in your roles and office.",
}
DISCOVERY_PATH: Final = "/.well-known/openid-configuration"
DISCOVERY_TIMEOUT_SECONDS: Final = 5.0
MAX_DISCOVERY_BYTES: Final = 1_048_576
_HTTP: Final = ("https://", "http://")
_logger = logging.getLogger("akte.auth")
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


@dataclass(frozen=True)
class DocsSignIn:
    """Signing in on ``/docs`` at the office's provider: its issuer and public client, and
    its authorization and token endpoints as its discovery document names them."""

    issuer: str
    client_id: str
    authorization_url: str | None = None
    token_url: str | None = None
    """Both ``None`` when the discovery document could not be read at start: Swagger UI
    then reads it itself (``openIdConnect``) and offers every flow the provider lists."""

    @property
    def discovery_url(self) -> str:
        """The provider's discovery document (OpenID Connect Discovery 1.0)."""
        return self.issuer.rstrip("/") + DISCOVERY_PATH

    def security_scheme(self) -> dict[str, Any]:
        description = (
            "Sign in at the office's identity provider: authorization code with PKCE, "
            f"public client `{self.client_id}`."
        )
        if self.authorization_url is None or self.token_url is None:
            return {
                "type": "openIdConnect",
                "openIdConnectUrl": self.discovery_url,
                "description": description + " Choose the flow authorization_code.",
            }
        # One flow, the one people use: the provider's discovery also lists implicit,
        # client credentials and more, which Swagger UI would each offer as a form.
        return {
            "type": "oauth2",
            "description": description,
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": self.authorization_url,
                    "tokenUrl": self.token_url,
                    "scopes": dict(SIGN_IN_SCOPE_DESCRIPTIONS),
                }
            },
        }

    def init_oauth(self) -> dict[str, Any]:
        """Swagger UI's ``initOAuth``: the public client (no secret) and PKCE."""
        return {
            "clientId": self.client_id,
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": " ".join(SIGN_IN_SCOPES),
        }


Discover = Callable[[str], Mapping[str, Any]]
"""Fetches a discovery document (its URL) as JSON; raises ``OSError`` or ``ValueError``."""


def fetch_discovery(url: str) -> Mapping[str, Any]:
    with urllib.request.urlopen(url, timeout=DISCOVERY_TIMEOUT_SECONDS) as answer:
        document = json.loads(answer.read(MAX_DISCOVERY_BYTES))
    if not isinstance(document, dict):
        raise ValueError("the discovery document is not a JSON object")
    return document


def docs_sign_in(settings: Settings, discover: Discover = fetch_discovery) -> DocsSignIn | None:
    """How ``/docs`` signs people in: at the provider in oidc mode with a public client,
    else not at all (``None``: a token is pasted).

    Reads the provider's discovery document once, at start: an unreachable provider is
    logged and leaves Swagger UI to read it in the browser."""
    if settings.auth_mode != "oidc" or not settings.oidc_issuer:
        return None
    client_id = (settings.oidc_public_client_id or "").strip()
    if not client_id:
        return None
    sign_in = DocsSignIn(issuer=settings.oidc_issuer, client_id=client_id)
    try:
        document = discover(sign_in.discovery_url)
        endpoints = [document.get(name) for name in ("authorization_endpoint", "token_endpoint")]
        if document.get("issuer") != sign_in.issuer:
            raise ValueError("the discovery document names another issuer")
        if not all(isinstance(url, str) and url.startswith(_HTTP) for url in endpoints):
            raise ValueError("the discovery document lacks its authorization or token endpoint")
    except (OSError, ValueError) as error:
        _logger.warning(
            "the identity provider's discovery document could not be read (%s): /docs "
            "leaves it to the browser",
            type(error).__name__ if isinstance(error, OSError) else error,
        )
        return sign_in
    return replace(sign_in, authorization_url=str(endpoints[0]), token_url=str(endpoints[1]))


def with_sign_in(schema: dict[str, Any], sign_in: DocsSignIn | None) -> dict[str, Any]:
    """``schema`` with the provider's sign-in as :data:`SIGN_IN_SCHEME`, offered as an
    alternative wherever a bearer token is: Swagger UI sends a token only to operations
    whose requirements name the scheme it was obtained for."""
    if sign_in is None:
        return schema
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SIGN_IN_SCHEME] = sign_in.security_scheme()
    bearer = BEARER_SCHEME.scheme_name
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            security = operation.get("security")
            if not isinstance(security, list):
                continue
            if any(bearer in requirement for requirement in security) and not any(
                SIGN_IN_SCHEME in requirement for requirement in security
            ):
                security.append({SIGN_IN_SCHEME: list(SIGN_IN_SCOPES)})
    return schema


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


def _with_sign_in_script(page: HTMLResponse, script_tag: str, *, first: bool) -> HTMLResponse:
    """``page`` with the sign-in script: at the start of its body (before Swagger UI's
    redirect script, which it prepares) or at its end (after Swagger UI is set up)."""
    html = bytes(page.body).decode()
    html = (
        html.replace("<body>", "<body>\n" + script_tag, 1)
        if first
        else html.replace("</body>", script_tag + "\n</body>", 1)
    )
    return HTMLResponse(html, status_code=page.status_code)


def install_api_docs(app: FastAPI, sign_in: DocsSignIn | None = None) -> None:
    """``GET /docs`` and its assets; the app must be built with ``docs_url=None``.

    Also :data:`SIGN_IN_PATH`, and with ``sign_in`` Swagger UI's OAuth2 redirect page at
    :data:`OAUTH2_REDIRECT_PATH` and the sign-in script (the OpenAPI document gets the
    scheme from :func:`with_sign_in`)."""
    app.mount(ASSETS_PATH, _SwaggerAssets(packages=[ASSET_PACKAGE]), name="docs-assets")
    openapi_url = app.openapi_url or "/openapi.json"
    # The same-window sign-in needs the endpoints; without them Swagger UI's button works.
    same_window = sign_in is not None and sign_in.authorization_url is not None

    def script_tag(request: Request) -> str:
        assert sign_in is not None
        root = request.scope.get("root_path", "").rstrip("/")
        data = {
            "scheme": SIGN_IN_SCHEME,
            "client-id": sign_in.client_id,
            "scopes": " ".join(SIGN_IN_SCOPES),
            "authorization-url": sign_in.authorization_url or "",
            "token-url": sign_in.token_url or "",
            # The page's origin goes before it, as with Swagger UI's own redirect URL.
            "redirect-path": root + OAUTH2_REDIRECT_PATH,
            "docs-url": root + DOCS_PATH,
        }
        attributes = " ".join(f'data-{name}="{escape(value)}"' for name, value in data.items())
        return f'<script src="{root}{SIGN_IN_SCRIPT_PATH}" {attributes}></script>'

    # Plain routes, as FastAPI adds its own docs page: not API operations, so they are
    # neither in the OpenAPI document nor in the access tables.
    async def swagger_ui(request: Request) -> HTMLResponse:
        # Same-origin paths, behind a proxy's path prefix too.
        root = request.scope.get("root_path", "").rstrip("/")
        page = get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{root}{ASSETS_PATH}/{SCRIPT}",
            swagger_css_url=f"{root}{ASSETS_PATH}/{STYLESHEET}",
            swagger_favicon_url=f"{root}{ASSETS_PATH}/{FAVICON}",
            # Swagger UI prefixes it with the page's origin.
            oauth2_redirect_url=root + OAUTH2_REDIRECT_PATH if sign_in else None,
            init_oauth=sign_in.init_oauth() if sign_in else None,
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        if not same_window:
            return page
        return _with_sign_in_script(page, script_tag(request), first=False)

    async def sign_in_page(request: Request) -> Response:
        root = request.scope.get("root_path", "").rstrip("/")
        if not same_window:
            return RedirectResponse(root + DOCS_PATH, status_code=303)
        return HTMLResponse(
            '<!doctype html>\n<html lang="de">\n<head><meta charset="utf-8">'
            "<title>Anmelden - Akte</title></head>\n<body>\n"
            "<p>Weiter zur Anmeldung beim Identitätsanbieter des Amts …</p>\n"
            f'<noscript><p>Bitte JavaScript einschalten, oder <a href="{root}{DOCS_PATH}">'
            "zur API-Dokumentation</a>.</p></noscript>\n"
            f"{script_tag(request)}\n</body>\n</html>\n",
            headers={"Cache-Control": "no-store"},
        )

    app.add_route(DOCS_PATH, swagger_ui, methods=["GET"], include_in_schema=False)
    app.add_route(SIGN_IN_PATH, sign_in_page, methods=["GET"], include_in_schema=False)
    if sign_in is None:
        return

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        # Swagger UI's own page (FastAPI's copy): it hands the code to the /docs window
        # that opened the sign-in window, which redeems it with its PKCE verifier.
        page = get_swagger_ui_oauth2_redirect_html()
        if not same_window:
            return page
        return _with_sign_in_script(page, script_tag(request), first=True)

    async def sign_in_script(request: Request) -> FileResponse:
        return FileResponse(SIGN_IN_SCRIPT, media_type="text/javascript")

    app.add_route(OAUTH2_REDIRECT_PATH, oauth2_redirect, methods=["GET"], include_in_schema=False)
    app.add_route(SIGN_IN_SCRIPT_PATH, sign_in_script, methods=["GET"], include_in_schema=False)
