"""Signing in on ``/docs`` at the office's OpenID provider, without a browser.

With ``AKTE_AUTH_MODE=oidc`` and a public client (``AKTE_OIDC_PUBLIC_CLIENT_ID``) the
OpenAPI document offers the provider's authorization code flow (its endpoints read from
its discovery document, served here by a small HTTP server on 127.0.0.1) beside the bearer
token on every operation that takes one, ``/docs`` starts Swagger UI with the client and
PKCE, and Swagger UI's redirect page and the same-window sign-in are served by Akte. With
the local issuer, or without a public client, ``/docs`` stays as it was. The real provider
and a real browser: ``tests/system/test_api_docs_sign_in_browser.py``.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.routes.api_docs import SIGN_IN_SCHEME
from adapters.settings import Settings
from tests.http.routes.test_api_docs import referenced_urls

CLIENT: Final = "akte-staff"


class Discovery:
    """A provider's discovery document on 127.0.0.1; ``document`` may be changed."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/realms/abh/.well-known/openid-configuration":
                    self.send_error(404)
                    return
                body = json.dumps(owner.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}/realms/abh"
        self.document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/protocol/openid-connect/auth",
            "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
            "grant_types_supported": ["authorization_code", "implicit", "client_credentials"],
        }
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def discovery() -> Iterator[Discovery]:
    server = Discovery()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def akte(tmp_path: Path) -> Callable[..., Any]:
    """``akte(**settings)``: a context with a test client of Akte on those settings."""

    @contextmanager
    def serve(**overrides: Any) -> Iterator[TestClient]:
        settings = Settings(store="sqlite", data_dir=tmp_path / "data", **overrides)
        service = build_service(settings)
        try:
            with TestClient(build_app(settings, service)) as client:
                yield client
        finally:
            service.close()

    return serve


def _oidc(issuer: str, **more: Any) -> dict[str, Any]:
    return {
        "auth_mode": "oidc",
        "oidc_issuer": issuer,
        "oidc_audience": "akte",
        # Never fetched here: no token is checked.
        "oidc_jwks_url": f"{issuer}/protocol/openid-connect/certs",
    } | more


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _takes_a_token(operation: dict[str, Any]) -> bool:
    return any("bearer" in requirement for requirement in operation.get("security", []))


def _sign_in_script(html: str) -> dict[str, str]:
    """The data attributes of the sign-in script's tag in ``html``."""
    tag = re.search(r'<script src="/docs/sign-in\.js"([^>]*)>', html)
    assert tag is not None, html[:2000]
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag[1]))


def test_the_document_offers_the_providers_authorization_code_flow(
    akte: Callable[..., Any], discovery: Discovery
) -> None:
    with akte(**_oidc(discovery.issuer, oidc_public_client_id=CLIENT)) as client:
        document = client.get("/openapi.json").json()

    schemes = document["components"]["securitySchemes"]
    assert schemes[SIGN_IN_SCHEME]["type"] == "oauth2"
    # One flow only, though the provider lists implicit and client credentials, too.
    flow = schemes[SIGN_IN_SCHEME]["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == f"{discovery.issuer}/protocol/openid-connect/auth"
    assert flow["tokenUrl"] == f"{discovery.issuer}/protocol/openid-connect/token"
    assert set(flow["scopes"]) == {"openid", "akte"}
    assert set(schemes[SIGN_IN_SCHEME]["flows"]) == {"authorizationCode"}
    assert schemes["bearer"]["scheme"] == "bearer"
    # Wherever a pasted token counts, a signed-in one does too; public routes stay open.
    with_token = [op for _p, _m, op in _operations(document) if _takes_a_token(op)]
    assert len(with_token) > 100
    for operation in with_token:
        assert {SIGN_IN_SCHEME: ["openid", "akte"]} in operation["security"]
    catalogue = document["paths"]["/catalogue"]["get"]["security"]
    assert catalogue[0] == {}


def test_the_docs_page_signs_in_with_the_public_client_and_pkce(
    akte: Callable[..., Any], discovery: Discovery
) -> None:
    with akte(**_oidc(discovery.issuer, oidc_public_client_id=CLIENT)) as client:
        page = client.get("/docs").text
        redirect = client.get("/docs/oauth2-redirect")
        script = client.get("/docs/sign-in.js")

    init = re.search(r"ui\.initOAuth\((\{.*?\})\)", page, re.DOTALL)
    assert init is not None, page
    assert json.loads(init[1]) == {
        "clientId": CLIENT,
        "usePkceWithAuthorizationCodeGrant": True,
        "scopes": "openid akte",
    }
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in page
    # Everything the page loads is Akte's own; the provider is asked by the browser only
    # when a person signs in.
    assert all(url.startswith("/") and not url.startswith("//") for url in referenced_urls(page))
    assert _sign_in_script(page)["token-url"] == (
        f"{discovery.issuer}/protocol/openid-connect/token"
    )
    # Swagger UI's redirect page, served by Akte, with the same-window script before it.
    assert redirect.status_code == 200
    assert redirect.headers["content-type"].startswith("text/html")
    assert "window.opener.swaggerUIRedirectOauth2" in redirect.text
    assert redirect.text.index("/docs/sign-in.js") < redirect.text.index("swaggerUIRedirect")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "code_challenge_method: 'S256'" in script.text


def test_the_sign_in_link_starts_at_the_providers_authorization_endpoint(
    akte: Callable[..., Any], discovery: Discovery
) -> None:
    with akte(**_oidc(discovery.issuer, oidc_public_client_id=CLIENT)) as client:
        page = client.get("/docs/sign-in")

    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert _sign_in_script(page.text) == {
        "scheme": SIGN_IN_SCHEME,
        "client-id": CLIENT,
        "scopes": "openid akte",
        "authorization-url": f"{discovery.issuer}/protocol/openid-connect/auth",
        "token-url": f"{discovery.issuer}/protocol/openid-connect/token",
        # After the page's origin: the URI to register at the provider.
        "redirect-path": "/docs/oauth2-redirect",
        "docs-url": "/docs",
    }


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"issuer": "https://elsewhere.example"}, id="another-issuer"),
        pytest.param({"token_endpoint": None}, id="no-token-endpoint"),
        pytest.param({"authorization_endpoint": "javascript:alert(1)"}, id="not-http"),
    ],
)
def test_an_unusable_discovery_document_leaves_discovery_to_the_browser(
    akte: Callable[..., Any], discovery: Discovery, broken: dict[str, Any]
) -> None:
    discovery.document |= broken
    with akte(**_oidc(discovery.issuer, oidc_public_client_id=CLIENT)) as client:
        scheme = client.get("/openapi.json").json()["components"]["securitySchemes"]
        sign_in = client.get("/docs/sign-in", follow_redirects=False)
        redirect = client.get("/docs/oauth2-redirect")

    assert scheme[SIGN_IN_SCHEME] == {
        "type": "openIdConnect",
        "openIdConnectUrl": f"{discovery.issuer}/.well-known/openid-configuration",
        "description": scheme[SIGN_IN_SCHEME]["description"],
    }
    # Swagger UI's own Authorize button still works; the link just opens /docs.
    assert (sign_in.status_code, sign_in.headers["location"]) == (303, "/docs")
    assert redirect.status_code == 200
    assert "/docs/sign-in.js" not in redirect.text


def test_an_unreachable_provider_leaves_discovery_to_the_browser(
    akte: Callable[..., Any], discovery: Discovery
) -> None:
    issuer = discovery.issuer
    discovery.close()  # nothing listens there any more

    with akte(**_oidc(issuer, oidc_public_client_id=CLIENT)) as client:
        scheme = client.get("/openapi.json").json()["components"]["securitySchemes"]

    assert scheme[SIGN_IN_SCHEME]["type"] == "openIdConnect"


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({}, id="local-issuer"),
        pytest.param(_oidc("https://id.example/realms/abh"), id="oidc-without-public-client"),
    ],
)
def test_without_a_public_client_at_a_provider_the_docs_page_is_as_before(
    akte: Callable[..., Any], settings: dict[str, Any]
) -> None:
    with akte(**settings) as client:
        document = client.get("/openapi.json").json()
        page = client.get("/docs").text
        redirect = client.get("/docs/oauth2-redirect")
        script = client.get("/docs/sign-in.js")
        sign_in = client.get("/docs/sign-in", follow_redirects=False)

    assert set(document["components"]["securitySchemes"]) == {"bearer"}
    assert all(
        requirement in ({}, {"bearer": []})
        for _p, _m, operation in _operations(document)
        for requirement in operation.get("security", [])
    )
    assert "initOAuth" not in page
    assert "oauth2RedirectUrl" not in page
    assert "sign-in.js" not in page
    assert len(referenced_urls(page)) == 3
    assert redirect.status_code == 404
    assert script.status_code == 404
    # The public pages' staff link leads to the docs page; a token is pasted there.
    assert (sign_in.status_code, sign_in.headers["location"]) == (303, "/docs")


def test_the_public_pages_link_staff_to_the_sign_in(akte: Callable[..., Any]) -> None:
    with akte() as client:
        start = client.get("/", headers={"Accept-Language": "de"})
        turkish = client.get("/?lang=tr")

    footer = start.text[start.text.index('<footer class="site-footer">') :]
    assert '<a href="/docs/sign-in">Für Mitarbeitende</a>' in footer
    assert '<a href="/docs/sign-in">Personel için</a>' in turkish.text
