"""Authentication: bearer tokens (JWT) verified against the issuer's published keys.

In production the office's OpenID Connect provider (e.g. Keycloak) issues the tokens;
in local mode Akte issues them itself (:mod:`adapters.http.auth.local_issuer`). Both take the
same path through :class:`TokenVerifier`:

* the header must name an allowed asymmetric algorithm and a key id (``kid``); ``none``
  and the HMAC algorithms never verify, so a public key cannot be abused as a secret;
* the key comes from the issuer's JSON Web Key Set, fetched through PyJWT's
  ``PyJWKClient`` and cached; a key id not in the cached set triggers one refetch (key
  rotation), at most once per cooldown, so a removed key stops verifying then;
* signature, issuer, audience and expiry (``exp`` required), ``nbf`` and ``iat`` with a
  small leeway for clock skew; a ``typ`` claim, if present, must say ``Bearer``
  (Keycloak marks ID and refresh tokens otherwise).

A client sends the same token with every request until it expires, so the principal of
a token that verified is remembered (:class:`VerifiedTokens`) and the signature check,
the dearest part, is not repeated. A remembered token counts only until its ``exp``
(without the leeway) and only while its issuer still publishes the very key that
verified it; a token that failed is never remembered, so a forged or altered token
always takes the full path.

The principal is built from the verified claims only: ``sub`` (the acting user in every
event), the roles from ``roles`` or Keycloak's ``realm_access.roles``, and ``office``.
Failures raise :class:`InvalidToken` with a fixed reason that quotes no claim value.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWKSetError

from adapters.http.auth.identity import Principal, Role
from adapters.http.auth.local_issuer import LOCAL_AUDIENCE, LOCAL_ISSUER, LocalIssuer
from adapters.http.schemas.cases import MAX_USER_ID
from adapters.settings import Settings
from domain.case_file import require_code
from domain.errors import InvalidValue

ALLOWED_ALGORITHMS: Final = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""Asymmetric signatures only: the verifier holds public keys, never a shared secret."""

CLOCK_SKEW_LEEWAY: Final = timedelta(seconds=30)
JWKS_FETCH_TIMEOUT_SECONDS: Final = 5.0
MAX_TOKEN_LENGTH: Final = 16_384
"""Far above any real access token; longer ones are refused before they are parsed."""

VERIFIED_TOKENS_CACHE_SIZE: Final = 4096
"""Tokens remembered at most: far more than the staff of an office hold at once; about
4 MiB with access tokens of ~1 KiB (64 MiB if every one were as long as allowed)."""

_ACCESS_TOKEN_TYPE: Final = "Bearer"
_REQUIRED_CLAIMS: Final = ("exp", "iss", "aud", "sub")


class InvalidToken(Exception):
    """The bearer token cannot be trusted. ``reason`` is fixed text, safe to show and log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class IdentityProviderUnavailable(Exception):
    """The issuer's signing keys could not be fetched; no token can be checked now."""


class AuthConfigurationError(Exception):
    """The authentication settings are unusable or unsafe; the service refuses to start."""


class SigningKeys(Protocol):
    def signing_key(self, kid: str) -> PyJWK:
        """The issuer's public key with this id; raises :class:`InvalidToken` if unknown."""
        ...


class PublishedSigningKeys:
    """An issuer's JSON Web Key Set, fetched and cached by PyJWT's ``PyJWKClient``.

    The client caches the whole key set for its lifespan. Its per-key cache
    (``cache_keys``) stays off: that LRU cache never expires, so a key the issuer
    removed would go on verifying tokens. An unknown key id forces one refetch, at most
    once per ``refresh_cooldown_seconds`` (counted from the last forced refetch only, so
    a rotation right after a routine fetch is picked up at once).
    """

    def __init__(self, client: PyJWKClient, *, refresh_cooldown_seconds: float) -> None:
        self._client = client
        self._refresh_cooldown = refresh_cooldown_seconds
        self._last_forced_refresh: float | None = None
        self._refresh_lock = threading.Lock()

    def signing_key(self, kid: str) -> PyJWK:
        key = PyJWKClient.match_kid(self._keys(refresh=False), kid)
        if key is None and self._may_refresh():
            key = PyJWKClient.match_kid(self._keys(refresh=True), kid)
        if key is None:
            raise InvalidToken("the token is signed with a key its issuer does not publish")
        return key

    def _may_refresh(self) -> bool:
        with self._refresh_lock:
            now = time.monotonic()
            if (
                self._last_forced_refresh is not None
                and now - self._last_forced_refresh < self._refresh_cooldown
            ):
                return False
            self._last_forced_refresh = now
            return True

    def _keys(self, *, refresh: bool) -> list[PyJWK]:
        try:
            return self._client.get_signing_keys(refresh=refresh)
        except (PyJWKClientError, PyJWKSetError):
            # Unreachable, or it published no usable key: either way nothing can be
            # verified now, which is the provider's trouble, not the caller's token.
            raise IdentityProviderUnavailable from None


class _InProcessJwksClient(PyJWKClient):
    """A ``PyJWKClient`` whose key set is held in memory instead of fetched.

    Local tokens thereby take the very path a provider's tokens take.
    """

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        # The URL is never requested; the client insists on an http(s) one.
        super().__init__("http://local-issuer.invalid/jwks.json")
        self._jwks = dict(jwks)

    def fetch_data(self) -> Any:
        return self._jwks


@dataclass(frozen=True)
class _VerifiedToken:
    principal: Principal
    kid: str
    key: PyJWK
    """The very key object that verified the token (a refetched key set has new ones)."""
    expires_at: float
    """The token's ``exp``, seconds since the epoch."""


class VerifiedTokens:
    """Tokens that verified, with their principals; bounded, least recently used go first.

    Only fully verified tokens are put here, keyed by the whole token string, so a token
    that differs in any character (another signature, claim or header) is not found.
    """

    def __init__(self, *, maxsize: int = VERIFIED_TOKENS_CACHE_SIZE) -> None:
        self._maxsize = maxsize
        self._tokens: OrderedDict[str, _VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._tokens)

    def get(self, token: str) -> _VerifiedToken | None:
        with self._lock:
            verified = self._tokens.get(token)
            if verified is not None:
                self._tokens.move_to_end(token)
            return verified

    def put(self, token: str, verified: _VerifiedToken) -> None:
        with self._lock:
            self._tokens[token] = verified
            self._tokens.move_to_end(token)
            while len(self._tokens) > self._maxsize:
                self._tokens.popitem(last=False)

    def forget(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)


class TokenVerifier:
    """Turns a bearer token into a :class:`Principal`, or refuses it."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        signing_keys: SigningKeys,
        algorithms: Collection[str] = ALLOWED_ALGORITHMS,
        leeway: timedelta = CLOCK_SKEW_LEEWAY,
        remembered_tokens: int = VERIFIED_TOKENS_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``remembered_tokens``: how many verified tokens this verifier remembers at most.
        ``clock``: seconds since the epoch, for a remembered token's expiry (the full check
        reads the system clock)."""
        unsafe = {name for name in algorithms if name not in ALLOWED_ALGORITHMS}
        if unsafe:
            msg = f"only asymmetric signature algorithms may verify tokens, not {sorted(unsafe)}"
            raise AuthConfigurationError(msg)
        self.issuer = issuer
        self.audience = audience
        self._signing_keys = signing_keys
        self._algorithms = tuple(algorithms)
        self._leeway = leeway
        # Its own memory: a token remembered here passed this verifier's own audience,
        # issuer and algorithms, and counts for this verifier only.
        self._verified_tokens = VerifiedTokens(maxsize=remembered_tokens)
        self._clock = clock

    @property
    def remembered_count(self) -> int:
        """How many verified tokens are remembered now."""
        return len(self._verified_tokens)

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("the token is too long")
        remembered = self._remembered(token)
        if remembered is not None:
            return remembered
        kid = self._kid_named_in(token)
        key = self._signing_keys.signing_key(kid)
        claims = self._verified_claims(token, key)
        principal = _principal_from(claims)
        expires_at = claims["exp"]
        if isinstance(expires_at, int | float) and expires_at > self._clock():
            self._verified_tokens.put(token, _VerifiedToken(principal, kid, key, expires_at))
        return principal

    def _remembered(self, token: str) -> Principal | None:
        """The principal of a token verified before, if it still holds without a new check."""
        verified = self._verified_tokens.get(token)
        if verified is None:
            return None
        if self._clock() >= verified.expires_at:
            # Past exp the full check decides (the leeway), and it is not remembered again.
            self._verified_tokens.forget(token)
            return None
        try:
            # Raises InvalidToken if the issuer no longer publishes the key (rotation).
            still_published = self._signing_keys.signing_key(verified.kid) is verified.key
        except InvalidToken:
            self._verified_tokens.forget(token)
            raise
        if not still_published:
            # The key set was refetched: check the token against the key published now.
            self._verified_tokens.forget(token)
            return None
        return verified.principal

    def _kid_named_in(self, token: str) -> str:
        # Checked before any key is looked up, so garbage never makes us fetch keys.
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is not a well-formed JWT") from None
        if header.get("alg") not in self._algorithms:
            raise InvalidToken("the token's signature algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no signing key (kid)")
        return kid

    def _verified_claims(self, token: str, key: PyJWK) -> dict[str, Any]:
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(self._algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": list(_REQUIRED_CLAIMS), "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken("the token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken("the token comes from another issuer") from None
        except jwt.MissingRequiredClaimError as error:
            # The claim's name comes from our own list, never from the token.
            raise InvalidToken(f"the token lacks the {error.claim} claim") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.InvalidAlgorithmError:
            raise InvalidToken("the token's algorithm does not fit its signing key") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("the token is invalid") from None
        if claims.get("typ", _ACCESS_TOKEN_TYPE) != _ACCESS_TOKEN_TYPE:
            raise InvalidToken("the token is not an access token")
        return claims


def _principal_from(claims: Mapping[str, Any]) -> Principal:
    return Principal(
        user_id=_subject(claims),
        roles=_roles(claims),
        office_id=_office(claims),
    )


def _subject(claims: Mapping[str, Any]) -> str:
    subject = claims.get("sub")
    if (
        not isinstance(subject, str)
        or not subject.strip()
        or len(subject) > MAX_USER_ID
        or not subject.isprintable()
    ):
        raise InvalidToken("the token's subject is not a usable account id")
    return subject


def _roles(claims: Mapping[str, Any]) -> frozenset[Role]:
    """The roles Akte knows; others (Keycloak's ``offline_access`` ...) are ignored."""
    if "roles" in claims:
        names = claims["roles"]
    else:
        realm_access = claims.get("realm_access", {})
        if not isinstance(realm_access, dict):
            raise InvalidToken("the token's realm_access claim is malformed")
        names = realm_access.get("roles", [])
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise InvalidToken("the token's roles claim is malformed")
    known = {role.value for role in Role}
    return frozenset(Role(name) for name in names if name in known)


def _office(claims: Mapping[str, Any]) -> str | None:
    office = claims.get("office")
    if office is None:
        return None
    if not isinstance(office, str):
        raise InvalidToken("the token's office claim is malformed")
    try:
        require_code("office", office)
    except InvalidValue:
        raise InvalidToken("the token's office claim is malformed") from None
    return office


def check_auth_settings(settings: Settings) -> None:
    """Raise :class:`AuthConfigurationError` for settings that
    :func:`adapters.bootstrap.token_verifier_for` refuses.

    Touches neither the key file nor the network, so commands can check first.
    """
    if settings.auth_mode == "local":
        if settings.deployment == "production":
            msg = (
                "AKTE_AUTH_MODE=local lets anyone with the key file act as anyone; a "
                "production deployment (AKTE_DEPLOYMENT=production) must use "
                "AKTE_AUTH_MODE=oidc with the office's identity provider"
            )
            raise AuthConfigurationError(msg)
        return
    missing = [
        name
        for name, value in (
            ("AKTE_OIDC_ISSUER", settings.oidc_issuer),
            ("AKTE_OIDC_AUDIENCE", settings.oidc_audience),
            ("AKTE_OIDC_JWKS_URL", settings.oidc_jwks_url),
        )
        if not (value and value.strip())
    ]
    if missing:
        msg = f"AKTE_AUTH_MODE=oidc needs {', '.join(missing)}"
        raise AuthConfigurationError(msg)
    jwks_url = settings.oidc_jwks_url or ""
    if not jwks_url.startswith(("https://", "http://")):
        raise AuthConfigurationError("AKTE_OIDC_JWKS_URL must be an http(s) URL")
    if settings.deployment == "production" and not jwks_url.startswith("https://"):
        # Keys fetched in the clear could be swapped on the way.
        raise AuthConfigurationError("AKTE_OIDC_JWKS_URL must use https in production")


def local_token_verifier(issuer: LocalIssuer) -> TokenVerifier:
    """The verifier of Akte's own tokens (local mode): the issuer's keys, held in memory."""
    return TokenVerifier(
        issuer=LOCAL_ISSUER,
        audience=LOCAL_AUDIENCE,
        signing_keys=PublishedSigningKeys(
            _InProcessJwksClient(issuer.jwks()), refresh_cooldown_seconds=0
        ),
    )


def provider_token_verifier(
    *,
    issuer: str,
    audience: str,
    jwks_url: str,
    jwks_cache_seconds: float,
    refresh_cooldown_seconds: float,
) -> TokenVerifier:
    """The verifier of an OpenID Connect provider's tokens, its keys fetched from
    ``jwks_url`` and cached for ``jwks_cache_seconds``."""
    client = PyJWKClient(
        jwks_url,
        cache_keys=False,
        cache_jwk_set=True,
        lifespan=jwks_cache_seconds,
        timeout=JWKS_FETCH_TIMEOUT_SECONDS,
        # PublishedSigningKeys keeps its own cooldown; the client's would also hold
        # back the first refetch after a routine one.
        cooldown_duration=0,
    )
    return TokenVerifier(
        issuer=issuer,
        audience=audience,
        signing_keys=PublishedSigningKeys(
            client, refresh_cooldown_seconds=refresh_cooldown_seconds
        ),
    )
