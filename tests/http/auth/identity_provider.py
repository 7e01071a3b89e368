"""The identity provider the access tests talk to: keys generated here, a JWKS served by a
real HTTP server on 127.0.0.1, and tokens as Keycloak issues them.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from adapters.settings import Settings

ISSUER: Final = "https://id.example/realms/abh"
AUDIENCE: Final = "akte"
MUSTERSTADT: Final = "abh-musterstadt"
"""The office of most accounts of the provider (the ``office`` claim)."""
NACHBARSTADT: Final = "abh-nachbarstadt"


@dataclass(frozen=True)
class SigningKey:
    """A key pair of the test's identity provider."""

    kid: str
    algorithm: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        public_key = self.private_key.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        return jwk | {"kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class ProviderKeys:
    current: SigningKey
    next: SigningKey
    """Published only after a rotation."""
    stranger: SigningKey
    """Never published."""
    elliptic: SigningKey


class JwksServer:
    """The provider's JWKS endpoint: a real HTTP server on 127.0.0.1 that counts fetches."""

    def __init__(self, published: list[SigningKey]) -> None:
        self.published = published
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": [key.public_jwk() for key in owner.published]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/certs"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


OMIT: Final[Any] = object()


def make_token(
    key: SigningKey,
    *,
    sub: Any = "sb-01",
    realm_roles: list[str] | None = None,
    office: Any = MUSTERSTADT,
    kid: str | None = None,
    lifetime: int = 300,
    **claims: Any,
) -> str:
    """A token as Keycloak issues it (roles in ``realm_access``); ``OMIT`` drops a claim."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + lifetime,
        "typ": "Bearer",
        "realm_access": {
            "roles": ["offline_access", *(["caseworker"] if realm_roles is None else realm_roles)]
        },
        "office": office,
    } | claims
    payload = {name: value for name, value in payload.items() if value is not OMIT}
    return jwt.encode(
        payload, key.private_key, algorithm=key.algorithm, headers={"kid": kid or key.kid}
    )


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


def encode_token(header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"


def oidc_settings(settings: Settings, jwks: JwksServer, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "auth_mode": "oidc",
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": jwks.url,
            "oidc_jwks_refresh_cooldown_seconds": 0,
        }
        | overrides
    )
