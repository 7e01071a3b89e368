"""A real, certified OpenID Connect provider (node-oidc-provider) for the tests.

:func:`running_provider` starts ``bin/_oidc_provider.sh`` (which installs the pinned
packages with ``npm ci`` on first use) on a free port of 127.0.0.1, waits for its discovery
document and stops it afterwards. :class:`RealProvider` gets tokens the way Akte's clients
do: client credentials for a machine, authorization code with PKCE for a person (through
the provider's own login and consent pages), and drives the provider's test controls (key
rotation, clock). The provider's set-up: ``tests/support/oidc_provider/provider.mjs``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import selectors
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx

from adapters.settings import Settings

ROOT: Final = Path(__file__).resolve().parents[2]
LAUNCHER: Final = ROOT / "bin" / "_oidc_provider.sh"
AUDIENCE: Final = "akte"
MACHINE_CLIENT: Final = "akte-intake"
MACHINE_SECRET: Final = "intake-secret-for-tests-only"
STAFF_CLIENT: Final = "akte-staff"
REDIRECT_URI: Final = "http://127.0.0.1/callback"
"""Registered for ``akte-staff``; never requested, the code is read off the redirect."""
START_TIMEOUT_SECONDS: Final = 300.0
"""The first start installs the packages from the npm registry."""


class ProviderError(AssertionError):
    """The provider did not do what a step of the flow expects."""


@dataclass
class RealProvider:
    issuer: str
    http: httpx.Client
    discovery: dict[str, Any]

    @property
    def jwks_url(self) -> str:
        return str(self.discovery["jwks_uri"])

    def akte_settings(self, settings: Settings, **overrides: Any) -> Settings:
        """``settings`` in oidc mode against this provider, as the docs page sets them."""
        return settings.model_copy(
            update={
                "auth_mode": "oidc",
                "oidc_issuer": self.issuer,
                "oidc_audience": AUDIENCE,
                "oidc_jwks_url": self.jwks_url,
                "oidc_public_client_id": STAFF_CLIENT,
            }
            | overrides
        )

    def machine_token(
        self, client_id: str = MACHINE_CLIENT, secret: str = MACHINE_SECRET
    ) -> httpx.Response:
        """The token endpoint's answer to a client credentials grant."""
        return self.http.post(
            self.discovery["token_endpoint"],
            data={"grant_type": "client_credentials", "scope": "akte"},
            auth=(client_id, secret),
        )

    def person_tokens(self, login: str) -> dict[str, Any]:
        """Signs ``login`` in at the provider (authorization code with PKCE, S256), as a
        browser would, and redeems the code; the token endpoint's answer."""
        verifier = secrets.token_urlsafe(48)
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        state = secrets.token_urlsafe(16)
        with httpx.Client(base_url=self.issuer, trust_env=False, timeout=10) as browser:
            response = browser.get(
                self.discovery["authorization_endpoint"],
                params={
                    "client_id": STAFF_CLIENT,
                    "response_type": "code",
                    "redirect_uri": REDIRECT_URI,
                    "scope": "openid akte",
                    "state": state,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                },
            )
            callback = _sign_in(browser, response, login)
        query = parse_qs(urlsplit(callback).query)
        if query.get("state") != [state] or "code" not in query:
            raise ProviderError(f"the provider redirected without a code: {callback}")
        redeemed = self.http.post(
            self.discovery["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "client_id": STAFF_CLIENT,
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
        )
        if redeemed.status_code != 200:
            raise ProviderError(f"the code was not redeemed: {redeemed.text}")
        tokens: dict[str, Any] = redeemed.json()
        return tokens

    def rotate_keys(self) -> str:
        """A new signing key, published before the old ones; its key id."""
        return str(self._control("rotate")["signing_kid"])

    def retire_old_keys(self) -> None:
        """Publishes the newest key only."""
        self._control("retire")

    def set_clock_offset(self, seconds: int) -> None:
        """The provider's clock runs ``seconds`` off from now on (negative: behind)."""
        self._control("clock", offset=seconds)

    def _control(self, action: str, **params: Any) -> dict[str, Any]:
        response = self.http.post(f"{self.issuer}/-/{action}", params=params)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer


def _sign_in(browser: httpx.Client, response: httpx.Response, login: str) -> str:
    """Follows the provider's redirects and fills in its login and consent forms, until
    it redirects to the client; that redirect's URL."""
    for _ in range(12):
        if response.is_redirect:
            location = response.headers["location"]
            if location.startswith(REDIRECT_URI):
                return str(location)
            response = browser.get(location)
            continue
        form = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
        if response.status_code != 200 or form is None or prompt is None:
            raise ProviderError(f"unexpected page at the provider: {response.status_code}")
        fields = {"prompt": prompt[1]}
        if prompt[1] == "login":
            fields |= {"login": login, "password": "not checked by the test provider"}
        response = browser.post(form[1], data=fields)
    raise ProviderError("the provider did not redirect back to the client")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@contextmanager
def running_provider(
    log_dir: Path, *, access_token_seconds: int = 300, staff_redirect_uris: Sequence[str] = ()
) -> Iterator[RealProvider]:
    """The provider, started on a free port of 127.0.0.1, answering its discovery.

    ``staff_redirect_uris``: more redirect URIs of ``akte-staff`` than :data:`REDIRECT_URI`
    (an Akte's ``/docs/oauth2-redirect`` on its port), and the origins its token endpoint
    answers browsers from."""
    env = os.environ | {
        "PORT": "0",
        "STAFF_REDIRECT_URIS": ",".join([REDIRECT_URI, *staff_redirect_uris]),
        "AKTE_TEST_PROVIDER_CONTROL": "1",
        "ACCESS_TOKEN_TTL_SECONDS": str(access_token_seconds),
        "NODE_NO_WARNINGS": "1",
    }
    log_dir.mkdir(parents=True, exist_ok=True)
    with (log_dir / "oidc-provider.log").open("wb") as log:
        process = subprocess.Popen(
            [str(LAUNCHER)], stdout=subprocess.PIPE, stderr=log, env=env, cwd=ROOT
        )
        try:
            issuer = _announced_issuer(process, log_dir)
            with httpx.Client(trust_env=False, timeout=10) as http:
                yield RealProvider(issuer, http, _discovery(http, issuer))
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _announced_issuer(process: subprocess.Popen[bytes], log_dir: Path) -> str:
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=START_TIMEOUT_SECONDS):
            msg = f"the OpenID provider did not start; see {log_dir / 'oidc-provider.log'}"
            raise ProviderError(msg)
    line = process.stdout.readline()
    if not line:
        msg = f"the OpenID provider exited; see {log_dir / 'oidc-provider.log'}"
        raise ProviderError(msg)
    return str(json.loads(line)["issuer"])


def _discovery(http: httpx.Client, issuer: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        try:
            response = http.get(f"{issuer}/.well-known/openid-configuration")
            if response.status_code == 200:
                document: dict[str, Any] = response.json()
                if document["issuer"] != issuer:
                    raise ProviderError("the discovery document names another issuer")
                return document
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ProviderError("the OpenID provider does not answer its discovery")
        time.sleep(0.1)
