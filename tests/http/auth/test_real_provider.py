"""Akte in oidc mode against a real, certified OpenID Connect provider.

The provider is node-oidc-provider (``tests/support/oidc_provider/``), started for this
module on 127.0.0.1 and configured as ``docs/operations/authentication.md`` tells an office
to configure its provider: access tokens as JWTs for the audience ``akte``, the roles in a
``roles`` claim, the office in ``office``. Akte is served by uvicorn and knows nothing of the
provider but its issuer, audience and JWKS URL, as in production.

Revocation: Akte checks access tokens offline (signature and expiry), without asking the
provider, so a revoked session ends when its access token expires; the provider keeps
access tokens short. The tests show expiry; the docs say so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import jwt
import pytest

from adapters.settings import Settings
from tests.http.auth.route_table import PERSON, PROBLEMS, open_case, receive_procedure
from tests.support.live_server import ServedApp
from tests.support.real_oidc_provider import (
    MACHINE_CLIENT,
    RealProvider,
    running_provider,
)

pytestmark = pytest.mark.long
"""Starting the provider (and installing it on first use) takes longer than a unit test."""

ACCESS_TOKEN_SECONDS: Final = 60
"""The provider's access token lifetime in these tests."""
LEEWAY_SECONDS: Final = 30
"""Akte's clock-skew leeway (adapters/http/auth/tokens.py CLOCK_SKEW_LEEWAY)."""


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealProvider]:
    log_dir: Path = tmp_path_factory.mktemp("oidc-provider")
    with running_provider(log_dir, access_token_seconds=ACCESS_TOKEN_SECONDS) as started:
        yield started


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite only: what is tested here is the token path, which no store touches."""
    return Settings(store="sqlite", data_dir=tmp_path / "data")


@pytest.fixture
def akte(
    serve: Callable[[Settings], ServedApp], settings: Settings, provider: RealProvider
) -> ServedApp:
    return serve(provider.akte_settings(settings))


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _kid(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


def _assign(akte: ServedApp, token: str) -> int:
    """Assigns a procedure (a team lead's permission); the status code."""
    case = open_case(akte.service, (receive_procedure,))
    response = akte.http.post(
        f"/cases/{case.id}/procedures/1/assignment",
        json={"assignee": "sb-02"},
        headers=_bearer(token) | {"If-Match": f'"{case.version}"'},
    )
    return response.status_code


def test_a_machine_clients_token_is_accepted_with_its_roles(
    akte: ServedApp, provider: RealProvider
) -> None:
    answer = provider.machine_token()
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    claims = _claims(token)
    assert (claims["sub"], claims["aud"], claims["roles"]) == (
        MACHINE_CLIENT,
        "akte",
        ["caseworker"],
    )

    opened = akte.http.post("/cases", json=PERSON, headers=_bearer(token))

    assert opened.status_code == 201, opened.text
    events = akte.service.case_events(UUID(opened.json()["case_id"]))
    assert [event.by for event in events] == [MACHINE_CLIENT]
    # Its role is caseworker, so a team lead's work is refused.
    assert _assign(akte, token) == 403


def test_a_wrong_client_secret_gets_no_token(provider: RealProvider) -> None:
    answer = provider.machine_token(secret="guessed")

    assert answer.status_code == 401
    assert "access_token" not in answer.json()


def test_a_person_signs_in_with_pkce_and_acts_in_their_role(
    akte: ServedApp, provider: RealProvider
) -> None:
    team_lead = provider.person_tokens("tl-01")["access_token"]
    caseworker = provider.person_tokens("sb-01")["access_token"]
    assert _claims(team_lead)["sub"] == "tl-01"

    assert _assign(akte, team_lead) == 200
    assert _assign(akte, caseworker) == 403
    mine = akte.http.get("/cases/by-reference/AZ-NONE", headers=_bearer(caseworker))
    assert mine.status_code == 404
    assert mine.json()["type"] == PROBLEMS + "case-not-found"


def test_the_id_token_is_not_accepted_as_an_access_token(
    akte: ServedApp, provider: RealProvider
) -> None:
    id_token = provider.person_tokens("tl-01")["id_token"]

    response = akte.http.get("/cases/by-reference/AZ-NONE", headers=_bearer(id_token))

    # Its audience is the client (akte-staff), not Akte.
    assert response.status_code == 401


def test_keys_rotated_at_the_provider_are_fetched_and_retired_keys_stop(
    serve: Callable[[Settings], ServedApp], settings: Settings, provider: RealProvider
) -> None:
    # A short key-set cache, so that a retired key is dropped within the test.
    cache_seconds = 1.0
    akte = serve(
        provider.akte_settings(
            settings,
            oidc_jwks_cache_seconds=cache_seconds,
            oidc_jwks_refresh_cooldown_seconds=0,
        )
    )
    before = provider.machine_token().json()["access_token"]
    assert _assign(akte, before) == 403  # verified: the key set is fetched and cached

    new_kid = provider.rotate_keys()
    after = provider.machine_token().json()["access_token"]

    assert _kid(after) == new_kid != _kid(before)
    # An unknown key id makes Akte fetch the key set again, without a restart.
    assert akte.http.post("/cases", json=PERSON, headers=_bearer(after)).status_code == 201
    # The old key is still published, so tokens it signed still count.
    assert akte.http.post("/cases", json=PERSON, headers=_bearer(before)).status_code == 201

    provider.retire_old_keys()
    time.sleep(cache_seconds + 0.5)  # past the cache's lifespan: the next check refetches

    refused = akte.http.post("/cases", json=PERSON, headers=_bearer(before))
    assert refused.status_code == 401
    assert refused.json()["type"] == PROBLEMS + "unauthenticated"
    assert akte.http.post("/cases", json=PERSON, headers=_bearer(after)).status_code == 201


def test_an_expired_token_of_the_provider_is_refused(
    akte: ServedApp, provider: RealProvider
) -> None:
    # Issued by a provider whose clock is behind: expired by more than Akte's leeway.
    provider.set_clock_offset(-(ACCESS_TOKEN_SECONDS + LEEWAY_SECONDS + 30))
    try:
        expired = provider.machine_token().json()["access_token"]
    finally:
        provider.set_clock_offset(0)
    fresh = provider.machine_token().json()["access_token"]
    assert _claims(expired)["exp"] < time.time() - LEEWAY_SECONDS

    refused = akte.http.post("/cases", json=PERSON, headers=_bearer(expired))

    assert refused.status_code == 401
    assert refused.json()["type"] == PROBLEMS + "unauthenticated"
    assert akte.http.post("/cases", json=PERSON, headers=_bearer(fresh)).status_code == 201


def test_an_accepted_token_is_refused_once_it_expires(
    akte: ServedApp, provider: RealProvider
) -> None:
    # Issued so that it expires (with the leeway) a few seconds from now.
    provider.set_clock_offset(-(ACCESS_TOKEN_SECONDS + LEEWAY_SECONDS - 15))
    try:
        token = provider.machine_token().json()["access_token"]
    finally:
        provider.set_clock_offset(0)
    ends = _claims(token)["exp"] + LEEWAY_SECONDS
    assert akte.http.post("/cases", json=PERSON, headers=_bearer(token)).status_code == 201

    time.sleep(max(0.0, ends - time.time()) + 1.5)
    # Akte remembered the verified token; the memory ends with the token.
    refused = akte.http.post("/cases", json=PERSON, headers=_bearer(token))

    assert refused.status_code == 401
    assert refused.json()["type"] == PROBLEMS + "unauthenticated"
