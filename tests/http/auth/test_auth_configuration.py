"""Start-up: the app refuses token settings that cannot be safe or complete."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.bootstrap import build_app
from adapters.http.auth.tokens import AuthConfigurationError
from adapters.settings import Settings
from service import AkteService
from tests.http.auth.identity_provider import JwksServer, oidc_settings


def test_production_refuses_local_tokens(service: AkteService, settings: Settings) -> None:
    production = settings.model_copy(update={"deployment": "production", "auth_mode": "local"})

    with pytest.raises(AuthConfigurationError, match="production"):
        build_app(production, service)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        pytest.param({"oidc_issuer": None}, "AKTE_OIDC_ISSUER", id="issuer"),
        pytest.param({"oidc_audience": ""}, "AKTE_OIDC_AUDIENCE", id="audience"),
        pytest.param({"oidc_jwks_url": None}, "AKTE_OIDC_JWKS_URL", id="jwks-url"),
        pytest.param({"oidc_jwks_url": "file:///etc/keys"}, "AKTE_OIDC_JWKS_URL", id="not-http"),
        pytest.param(
            {"deployment": "production"}, "https", id="production-fetches-keys-over-https"
        ),
    ],
)
def test_incomplete_oidc_settings_refuse_to_start(
    service: AkteService,
    settings: Settings,
    jwks: JwksServer,
    overrides: dict[str, Any],
    named: str,
) -> None:
    with pytest.raises(AuthConfigurationError, match=named):
        build_app(oidc_settings(settings, jwks, **overrides), service)
