"""A person signs in on ``/docs`` at a real OpenID provider, in a real browser.

node-oidc-provider (``tests/support/oidc_provider/``) is started with Akte's
``/docs/oauth2-redirect`` as a redirect URI of its public client ``akte-staff``; Akte runs
in oidc mode against it, knowing its issuer, audience, JWKS and that public client, as in
production. Debian's Chromium, driven by Playwright, does what a caseworker does: opens
``/docs``, clicks *Authorize*, signs in at the provider in the window Swagger UI opens
(authorization code with PKCE), comes back and calls operations with *Try it out*. The
staff link of the public pages leads to the provider's login, too. Screenshots of ``/docs``
before and after signing in go to ``test-output/``.

Marked ``browser`` (Chromium) and ``long`` (it starts the provider, and on first use
installs it): ``bin/test-long`` runs it.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from adapters.bootstrap import build_app, build_read_models, build_service
from adapters.settings import Settings
from service import AkteService
from tests.http.auth.route_table import open_case, receive_procedure
from tests.support.browser import chromium_path, origin_of
from tests.support.real_oidc_provider import RealProvider, running_provider

pytestmark = [pytest.mark.browser, pytest.mark.long]

ROOT: Final = Path(__file__).resolve().parents[2]
OUTPUT: Final = ROOT / "test-output"
CASEWORKER: Final = "sb-01"
TEAM_LEAD: Final = "tl-01"
OFFICE: Final = "abh-musterstadt"


@dataclass
class Akte:
    """Akte under uvicorn on a socket bound before the provider started: the provider
    must know Akte's redirect URI, and Akte the provider's issuer."""

    base_url: str
    service: AkteService


@pytest.fixture(scope="module")
def listening() -> Iterator[socket.socket]:
    bound = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    bound.bind(("127.0.0.1", 0))
    try:
        yield bound
    finally:
        bound.close()


@pytest.fixture(scope="module")
def base_url(listening: socket.socket) -> str:
    return f"http://127.0.0.1:{listening.getsockname()[1]}"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory, base_url: str) -> Iterator[RealProvider]:
    with running_provider(
        tmp_path_factory.mktemp("oidc-provider"),
        staff_redirect_uris=[f"{base_url}/docs/oauth2-redirect"],
    ) as started:
        yield started


@pytest.fixture(scope="module")
def akte(
    tmp_path_factory: pytest.TempPathFactory,
    listening: socket.socket,
    base_url: str,
    provider: RealProvider,
) -> Iterator[Akte]:
    settings = provider.akte_settings(
        Settings(
            store="sqlite",
            data_dir=tmp_path_factory.mktemp("akte") / "data",
            json_logs=False,
            log_level="WARNING",
        )
    )
    service = build_service(settings)
    # As `akte serve` does: the worklists follow the log.
    read_models = build_read_models(settings, service, follow=True)
    app = build_app(settings, service, read_models=read_models)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start within 10 s"
        time.sleep(0.01)
    try:
        yield Akte(base_url, service)
    finally:
        server.should_exit = server.force_exit = True
        thread.join(timeout=10)
        read_models.close()
        service.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    arguments = ["--disable-dev-shm-usage", "--disable-gpu"]
    if os.geteuid() == 0:
        # Chromium's sandbox cannot start as root (containers, CI).
        arguments.append("--no-sandbox")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=executable, headless=True, args=arguments)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Watched:
    """Requests that went to a host other than Akte and the provider, and script errors."""

    allowed: set[str]
    strangers: list[str]
    errors: list[str]


@pytest.fixture
def context(browser: Browser, akte: Akte, provider: RealProvider) -> Iterator[BrowserContext]:
    """A fresh browser context (no cookies, no session at the provider); fails the test
    at teardown if a page of Akte asked a third host for anything or had a script error.
    (The test provider's own login page asks for web fonts: blocked, not counted.)"""
    watched = Watched({origin_of(akte.base_url), origin_of(provider.issuer)}, [], [])
    opened = browser.new_context(viewport={"width": 1280, "height": 900}, locale="de-DE")

    def route(route: Any) -> None:
        if origin_of(route.request.url) in watched.allowed:
            route.continue_()
            return
        if origin_of(route.request.frame.url) == origin_of(akte.base_url):
            watched.strangers.append(origin_of(route.request.url))
        route.abort("blockedbyclient")

    opened.route("**/*", route)
    opened.on("weberror", lambda error: watched.errors.append(str(error.error)))
    # Swagger UI draws the 100+ operations of the document: slow on a busy machine.
    opened.set_default_timeout(60_000)
    try:
        yield opened
    finally:
        opened.close()
    assert watched.strangers == [], "requests left for another host"
    assert watched.errors == [], "script errors"


def _claims(authorization: str) -> dict[str, Any]:
    token = authorization.removeprefix("Bearer ")
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return claims


def _screenshot(page: Page, name: str) -> None:
    OUTPUT.mkdir(exist_ok=True)
    page.screenshot(path=str(OUTPUT / f"{name}.png"), full_page=False)


def _sign_in_at_provider(window: Page, login: str) -> None:
    """The provider's own login and consent forms (node-oidc-provider's development
    interactions; an office's Keycloak shows its own)."""
    window.wait_for_selector("input[name=login]")
    window.fill("input[name=login]", login)
    window.fill("input[name=password]", "not checked by the test provider")
    window.click("button[type=submit]")
    # Consent: the client asks for the scopes openid and akte.
    window.wait_for_selector("button[type=submit]")
    window.click("button[type=submit]")


def _operation(page: Page, method: str, path: str) -> Any:
    return page.locator(f".opblock-{method}:has(.opblock-summary-path[data-path='{path}'])").first


def _try_it_out(page: Page, tag: str, method: str, path: str) -> tuple[str, Request]:
    """Runs the operation with *Try it out*: the status Swagger UI shows, and the request.

    Swagger UI draws the operations of a long document as they scroll into view: the
    filter box (by tag) brings the operation's tag to the top first."""
    page.fill("input.operation-filter-input", tag)
    operation = _operation(page, method, path)
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    with page.expect_request(lambda request: request.url.split("?")[0].endswith(path)) as sent:
        operation.locator("button.execute").click()
    status = operation.locator(".live-responses-table .response .response-col_status")
    status.wait_for()
    status.scroll_into_view_if_needed()
    return status.inner_text().strip(), sent.value


def test_a_caseworker_signs_in_on_the_docs_page_with_pkce_and_calls_the_api(
    context: BrowserContext, akte: Akte, provider: RealProvider
) -> None:
    # A procedure assigned to the caseworker: their own worklist shows it.
    case = open_case(akte.service, (receive_procedure,))
    akte.service.assign_procedure(
        case.id,
        expected_version=case.version,
        by=TEAM_LEAD,
        procedure_number=1,
        assignee=CASEWORKER,
    )
    page = context.new_page()
    page.goto(f"{akte.base_url}/docs")
    page.wait_for_selector(".opblock")
    page.locator(".scheme-container").scroll_into_view_if_needed()
    _screenshot(page, "api-docs-before-sign-in")

    page.click(".auth-wrapper button.authorize")
    dialog = page.locator(".modal-ux")
    dialog.wait_for()
    _screenshot(page, "api-docs-authorize-dialog")
    flow = dialog.locator(".auth-container:has-text('authorizationCode with PKCE')")
    # The public client is filled in (initOAuth); no secret field is needed.
    assert flow.locator("input#client_id_authorizationCode").input_value() == "akte-staff"
    with page.expect_popup() as opened:
        flow.locator("button.authorize").click()
    window = opened.value
    window.wait_for_load_state()
    # The provider's login page: Swagger UI sent the PKCE challenge (S256).
    assert origin_of(window.url) == origin_of(provider.issuer)
    # The provider sends the window back to /docs/oauth2-redirect, which hands the code
    # to this page and closes the window.
    with window.expect_event("close"):
        _sign_in_at_provider(window, CASEWORKER)
    # Swagger UI redeemed the code with its verifier and holds the token now.
    flow.locator("button:has-text('Logout')").wait_for()
    _screenshot(page, "api-docs-after-sign-in")
    dialog.locator("button.close-modal").click()

    status, request = _try_it_out(page, "worklists", "get", "/worklists/my-open-procedures")
    assert status == "200"
    claims = _claims(request.headers["authorization"])
    assert (claims["iss"], claims["sub"], claims["roles"], claims["aud"]) == (
        provider.issuer,
        CASEWORKER,
        ["caseworker"],
        "akte",
    )
    body = _operation(page, "get", "/worklists/my-open-procedures").locator(
        ".live-responses-table tr.response .response-col_description"
    )
    assert str(case.id) in body.inner_text()
    _screenshot(page, "api-docs-signed-in-200")

    # Verifying the log is for auditors and the head of office, not a caseworker.
    status, request = _try_it_out(page, "audit", "get", "/audit/verify")
    assert status == "403"
    assert _claims(request.headers["authorization"])["sub"] == CASEWORKER
    _screenshot(page, "api-docs-signed-in-403")


def test_the_staff_link_of_a_public_page_leads_to_the_providers_login_and_back(
    context: BrowserContext, akte: Akte, provider: RealProvider
) -> None:
    page = context.new_page()
    page.goto(f"{akte.base_url}/")

    page.click("footer >> text=Für Mitarbeitende")

    # The provider's login page, in the same window, asked with PKCE (S256).
    page.wait_for_url(f"{provider.issuer}/**")
    page.wait_for_selector("input[name=login]")
    _screenshot(page, "staff-link-provider-login")
    assert origin_of(page.url) == origin_of(provider.issuer)
    _sign_in_at_provider(page, TEAM_LEAD)
    page.wait_for_url(f"{akte.base_url}/docs")
    # Back on /docs, signed in: the code was redeemed with the verifier of this tab.
    page.locator(".auth-wrapper button.authorize.locked").wait_for()
    _screenshot(page, "staff-link-signed-in")

    status, request = _try_it_out(page, "audit", "get", "/audit/verify")
    claims = _claims(request.headers["authorization"])
    assert (claims["sub"], claims["roles"]) == (TEAM_LEAD, ["team_lead"])
    assert status == "403"  # verifying the log is not a team lead's
    status, request = _try_it_out(page, "worklists", "get", "/worklists/my-open-procedures")
    assert status == "200"
