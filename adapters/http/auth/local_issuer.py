"""Tokens for development and demos, issued by Akte itself (``AKTE_AUTH_MODE=local``).

In local mode there is no identity provider: Akte signs access tokens with an RS256 key
of its own, generated on first use and kept in the data directory (readable by its
owner only). The API verifies them exactly as it verifies a provider's tokens, through
the same verifier and a JSON Web Key Set built from this key. Whoever can read the key
file can act as anyone, which is why a production deployment refuses local mode.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from uuid import uuid4

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from adapters.http.auth.identity import Role

LOCAL_ISSUER: Final = "urn:akte:local-issuer"
LOCAL_AUDIENCE: Final = "akte"
LOCAL_ALGORITHM: Final = "RS256"
DEFAULT_TOKEN_MINUTES: Final = 60
MAX_TOKEN_MINUTES: Final = 24 * 60
_RSA_KEY_BITS: Final = 2048
_OWNER_ONLY: Final = 0o600

OTHER_DEMO_OFFICE: Final = "abh-nachbarstadt"
"""A second office, so that demos and tests can show that offices do not see each other."""


class LocalIssuerKeyError(Exception):
    """The local issuer's key file cannot be used; the message names the file, no key."""


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    roles: tuple[Role, ...]
    office_id: str
    description: str


def demo_users(default_office_id: str) -> dict[str, DemoUser]:
    """The accounts ``akte token`` knows without ``--role``; all but one in the demo office."""
    users = (
        DemoUser("sb-01", (Role.CASEWORKER,), default_office_id, "caseworker"),
        DemoUser("sb-02", (Role.CASEWORKER,), default_office_id, "caseworker"),
        DemoUser("tl-01", (Role.TEAM_LEAD,), default_office_id, "team lead"),
        DemoUser("au-01", (Role.AUDITOR,), default_office_id, "auditor"),
        DemoUser("ho-01", (Role.HEAD_OF_OFFICE,), default_office_id, "head of office"),
        DemoUser(
            "dsb-01", (Role.DATA_PROTECTION_OFFICER,), default_office_id, "data protection officer"
        ),
        DemoUser("sb-91", (Role.CASEWORKER,), OTHER_DEMO_OFFICE, "caseworker of another office"),
    )
    return {user.user_id: user for user in users}


class LocalIssuer:
    """Signs access tokens with the local RS256 key and publishes its public half as a JWKS."""

    def __init__(self, private_key: rsa.RSAPrivateKey) -> None:
        self._private_key = private_key
        public_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        self.key_id = _thumbprint(public_jwk)
        self._public_jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": LOCAL_ALGORITHM,
            "kid": self.key_id,
            "n": public_jwk["n"],
            "e": public_jwk["e"],
        }

    @classmethod
    def load_or_create(cls, path: Path) -> LocalIssuer:
        """The issuer with the key in ``path``; a new key is generated if there is none."""
        if not path.exists():
            _create_key_file(path)
        return cls(_load_key_file(path))

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set, as an identity provider would publish it."""
        return {"keys": [dict(self._public_jwk)]}

    def issue(
        self,
        *,
        user_id: str,
        roles: Iterable[Role],
        office_id: str | None,
        lifetime: timedelta = timedelta(minutes=DEFAULT_TOKEN_MINUTES),
        now: datetime | None = None,
    ) -> str:
        """An access token for ``user_id`` shaped like a Keycloak one (``typ``, ``roles``)."""
        if lifetime <= timedelta(0) or lifetime > timedelta(minutes=MAX_TOKEN_MINUTES):
            msg = f"a token's lifetime must be 1 to {MAX_TOKEN_MINUTES} minutes"
            raise ValueError(msg)
        issued_at = now or datetime.now(tz=UTC)
        claims: dict[str, Any] = {
            "iss": LOCAL_ISSUER,
            "aud": LOCAL_AUDIENCE,
            "sub": user_id,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + lifetime,
            "jti": uuid4().hex,
            "typ": "Bearer",
            "roles": sorted(Role(role).value for role in roles),
        }
        if office_id is not None:
            claims["office"] = office_id
        return jwt.encode(
            claims,
            self._private_key,
            algorithm=LOCAL_ALGORITHM,
            headers={"kid": self.key_id, "typ": "JWT"},
        )


def _thumbprint(jwk: Mapping[str, Any]) -> str:
    """The key's RFC 7638 thumbprint: a key id that changes exactly when the key does."""
    members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
    digest = hashlib.sha256(canonical).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _create_key_file(path: Path) -> None:
    """Write a new key, owner-readable only, without ever exposing a half-written file.

    The key goes to a private temporary file first and is then hard-linked into place,
    which fails if another process (a second ``akte token``, a starting server) got
    there first; its key is then used instead of this one.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_KEY_BITS)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _OWNER_ONLY)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
                file.flush()
                os.fsync(file.fileno())
            with contextlib.suppress(FileExistsError):
                os.link(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
    except OSError as error:
        msg = f"cannot create the local issuer key {path}: {error.strerror or type(error).__name__}"
        raise LocalIssuerKeyError(msg) from None


def _load_key_file(path: Path) -> rsa.RSAPrivateKey:
    try:
        mode = path.stat().st_mode
        if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Like ssh with its keys: a signing key others can read signs for them too.
            msg = f"the local issuer key {path} is accessible to other users; chmod 600 it"
            raise LocalIssuerKeyError(msg)
        pem = path.read_bytes()
    except OSError as error:
        msg = f"cannot read the local issuer key {path}: {error.strerror or type(error).__name__}"
        raise LocalIssuerKeyError(msg) from None
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        msg = f"the local issuer key {path} is not an unencrypted PEM private key"
        raise LocalIssuerKeyError(msg) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        msg = f"the local issuer key {path} is not an RSA key"
        raise LocalIssuerKeyError(msg)
    return key
