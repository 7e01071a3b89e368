"""Fixtures of the access tests: the identity provider, the stand-in payment platform
and the Akte app served under uvicorn with OIDC tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from adapters.bootstrap import build_app, build_read_models
from adapters.payment.setup import DEVELOPMENT_SHARED_SECRET
from adapters.payment.stand_in import StandInServer
from adapters.settings import Settings
from service import AkteService
from tests.http.auth.identity_provider import JwksServer, ProviderKeys, SigningKey, oidc_settings
from tests.support.live_server import ServedApp


@pytest.fixture(scope="session")
def keys() -> ProviderKeys:
    def rsa_key(kid: str) -> SigningKey:
        return SigningKey(kid, "RS256", rsa.generate_private_key(65537, 2048))

    return ProviderKeys(
        current=rsa_key("key-2024"),
        next=rsa_key("key-2025"),
        stranger=rsa_key("key-stranger"),
        elliptic=SigningKey("key-ec", "ES256", ec.generate_private_key(ec.SECP256R1())),
    )


@pytest.fixture
def jwks(keys: ProviderKeys) -> Iterator[JwksServer]:
    server = JwksServer([keys.current, keys.elliptic])
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInServer]:
    """The stand-in payment platform, where the apps create payments over HTTP."""
    with StandInServer(DEVELOPMENT_SHARED_SECRET.encode()) as server:
        yield server


@pytest.fixture
def serve(
    service: AkteService, settings: Settings, stand_in: StandInServer
) -> Iterator[Callable[[Settings], ServedApp]]:
    started: list[ServedApp] = []
    # As `akte serve` does: a runner in the process keeps the worklists built.
    read_models = build_read_models(settings, service, follow=True)

    def start(app_settings: Settings) -> ServedApp:
        with_payments = app_settings.model_copy(update={"payment_provider_url": stand_in.base_url})
        app = build_app(with_payments, service, read_models=read_models)
        served = ServedApp(app, service)
        served.start()
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.stop()
        read_models.close()


@pytest.fixture
def served(
    serve: Callable[[Settings], ServedApp], settings: Settings, jwks: JwksServer
) -> ServedApp:
    return serve(oidc_settings(settings, jwks))
