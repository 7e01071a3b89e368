"""Bearer tokens over real HTTP: what a token must be to be accepted, which claims are
read, and how keys of the identity provider are fetched and rotated.

An identity provider is played by keys generated here and a JWKS served by a real HTTP
server on 127.0.0.1 (:mod:`tests.http.auth.identity_provider`).
"""

from __future__ import annotations

import hashlib
import hmac
import socket
import time
import uuid
from collections.abc import Callable
from typing import Final
from uuid import UUID

from adapters.settings import Settings
from tests.http.auth.access_policy import CASEWORKER
from tests.http.auth.identity_provider import (
    AUDIENCE,
    ISSUER,
    MUSTERSTADT,
    OMIT,
    JwksServer,
    ProviderKeys,
    b64url,
    encode_token,
    make_token,
    oidc_settings,
    token_segments,
)
from tests.http.auth.route_table import PERSON, PROBLEMS, SETUP_USER, open_case, receive_procedure
from tests.support.live_server import ServedApp


def test_roles_are_read_from_a_roles_claim_too(served: ServedApp, keys: ProviderKeys) -> None:
    case = open_case(served.service, (receive_procedure,))
    # A top-level roles claim is what other providers send; it wins over realm_access.
    token = make_token(keys.current, sub="tl-02", realm_roles=["caseworker"], roles=["team_lead"])

    response = served.http.post(
        f"/cases/{case.id}/procedures/1/assignment",
        json={"assignee": "sb-02"},
        headers={"Authorization": f"Bearer {token}", "If-Match": f'"{case.version}"'},
    )

    assert response.status_code == 200, response.text


def test_an_elliptic_curve_key_of_the_provider_verifies(
    served: ServedApp, keys: ProviderKeys
) -> None:
    token = make_token(keys.elliptic)

    response = served.http.get("/cases/by-reference/AZ-NONE", headers=_bearer(token))

    assert response.status_code == 404
    assert response.json()["type"] == PROBLEMS + "case-not-found"


def test_the_acting_user_is_the_tokens_subject_whatever_else_is_sent(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    headers = CASEWORKER.headers(keys) | {"X-Akte-User": "mallory", "If-Match": f'"{case.version}"'}

    noted = served.http.post(f"/cases/{case.id}/notes", json={"text": "mine"}, headers=headers)
    claimed = served.http.post(
        f"/cases/{case.id}/notes",
        json={"text": "not mine", "by": "mallory"},
        headers=headers | {"If-Match": noted.headers["ETag"]},
    )
    opened = served.http.post(
        "/cases", json=PERSON, headers=CASEWORKER.headers(keys) | {"X-Akte-User": "mallory"}
    )

    assert noted.status_code == 201, noted.text
    assert claimed.status_code == 422
    assert claimed.json()["errors"][0]["field"] == "by"
    events = served.service.case_events(case.id)
    assert [event.by for event in events] == [SETUP_USER, "sb-01"]
    assert opened.status_code == 201
    opened_events = served.service.case_events(UUID(opened.json()["case_id"]))
    assert [event.by for event in opened_events] == ["sb-01"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BadToken = Callable[[ProviderKeys], str]


def _none_algorithm(keys: ProviderKeys) -> str:
    header, payload, _ = token_segments(make_token(keys.current, realm_roles=["team_lead"]))
    return encode_token(header | {"alg": "none"}, payload) + "."


def _tampered(keys: ProviderKeys) -> str:
    header, payload, signature = token_segments(
        make_token(keys.current, realm_roles=["caseworker"])
    )
    payload["realm_access"] = {"roles": ["team_lead"]}
    return f"{encode_token(header, payload)}.{signature}"


def _hmac_with_public_key(keys: ProviderKeys) -> str:
    header, payload, _ = token_segments(make_token(keys.current))
    signing_input = encode_token(header | {"alg": "HS256"}, payload)
    digest = hmac.new(keys.current.public_pem(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{b64url(digest.digest())}"


BAD_TOKENS: Final[dict[str, BadToken]] = {
    "expired": lambda keys: make_token(keys.current, lifetime=-120),
    "not-yet-valid": lambda keys: make_token(keys.current, nbf=int(time.time()) + 120),
    "issued-in-the-future": lambda keys: make_token(keys.current, iat=int(time.time()) + 600),
    "wrong-audience": lambda keys: make_token(keys.current, aud="another-service"),
    "wrong-issuer": lambda keys: make_token(keys.current, iss="https://id.example/realms/evil"),
    "unsigned-alg-none": _none_algorithm,
    "tampered-payload": _tampered,
    "signed-by-unknown-key": lambda keys: make_token(keys.stranger),
    "unknown-key-posing-as-known": lambda keys: make_token(keys.stranger, kid=keys.current.kid),
    "hs256-with-public-key-as-secret": _hmac_with_public_key,
    "missing-sub": lambda keys: make_token(keys.current, sub=OMIT),
    "missing-exp": lambda keys: make_token(keys.current, exp=OMIT),
    "sub-not-a-string": lambda keys: make_token(keys.current, sub=42),
    "id-token-not-access-token": lambda keys: make_token(keys.current, typ="ID"),
    "malformed-roles": lambda keys: make_token(keys.current, realm_access={"roles": "team_lead"}),
    "malformed-office": lambda keys: make_token(keys.current, office=["abh-musterstadt"]),
    "not-a-jwt": lambda keys: "not-a-jwt",
}


def test_a_bad_token_is_401_everywhere_and_writes_nothing(
    served: ServedApp, keys: ProviderKeys
) -> None:
    # One app for all kinds: a server per kind would cost more than the requests.
    case = open_case(served.service)
    before = served.events_recorded()
    failures: list[str] = []

    for kind, make_bad_token in BAD_TOKENS.items():
        headers = _bearer(make_bad_token(keys)) | {"If-Match": f'"{case.version}"'}
        responses = {
            "write": served.http.post(
                f"/cases/{case.id}/notes", json={"text": "x"}, headers=headers
            ),
            "open": served.http.post("/cases", json=PERSON, headers=headers),
            "read": served.http.get(f"/cases/{case.id}", headers=headers),
            "public": served.http.get("/catalogue", headers=headers),
        }
        for route, response in responses.items():
            challenge = response.headers.get("WWW-Authenticate", "")
            leaked = [
                value
                for value in ("sb-01", MUSTERSTADT, "another-service", "evil")
                if value in response.text or value in challenge
            ]
            if (
                response.status_code != 401
                or response.headers["content-type"] != "application/problem+json"
                or response.json()["type"] != PROBLEMS + "unauthenticated"
                or 'error="invalid_token"' not in challenge
                or leaked
            ):
                failures.append(f"{kind} on {route}: {response.status_code} {response.text[:200]}")

    assert not failures, "\n".join(failures)
    assert served.events_recorded() == before


def test_a_token_lives_through_its_leeway(served: ServedApp, keys: ProviderKeys) -> None:
    """Clocks drift: a token a few seconds past ``exp`` or before ``nbf`` still counts."""
    token = make_token(keys.current, lifetime=-5, nbf=int(time.time()) + 5)

    assert served.http.get("/cases/by-reference/AZ-NONE", headers=_bearer(token)).status_code == 404


def test_no_token_is_401_with_a_bearer_challenge(served: ServedApp) -> None:
    for headers in ({}, {"Authorization": "Basic c2ItMDE6c2VjcmV0"}, {"Authorization": "Bearer"}):
        response = served.http.get(f"/cases/{uuid.uuid4()}", headers=headers)

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="akte"'
        assert response.json()["type"] == PROBLEMS + "unauthenticated"
    assert served.http.get("/catalogue").status_code == 200


def test_a_rotated_key_is_fetched_and_a_removed_key_refused(
    served: ServedApp, keys: ProviderKeys, jwks: JwksServer
) -> None:
    probe = "/cases/by-reference/AZ-NONE"
    old_token = make_token(keys.current)
    assert served.http.get(probe, headers=_bearer(old_token)).status_code == 404

    jwks.published = [keys.next]
    new_token = make_token(keys.next)

    accepted = served.http.get(probe, headers=_bearer(new_token))
    refused = served.http.get(probe, headers=_bearer(old_token))

    assert accepted.status_code == 404, accepted.text
    assert refused.status_code == 401
    assert jwks.fetches == 3  # the first fetch, then one per unknown key id


def test_made_up_key_ids_do_not_flood_the_identity_provider(
    serve: Callable[[Settings], ServedApp],
    settings: Settings,
    keys: ProviderKeys,
    jwks: JwksServer,
) -> None:
    served = serve(oidc_settings(settings, jwks, oidc_jwks_refresh_cooldown_seconds=30))

    for _ in range(10):
        token = make_token(keys.stranger, kid=uuid.uuid4().hex)
        assert served.http.get("/catalogue", headers=_bearer(token)).status_code == 401

    assert jwks.fetches == 2  # the first fetch and one refetch per cooldown


def test_an_unreachable_identity_provider_is_503_and_writes_nothing(
    serve: Callable[[Settings], ServedApp], settings: Settings, keys: ProviderKeys
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    served = serve(
        settings.model_copy(
            update={
                "auth_mode": "oidc",
                "oidc_issuer": ISSUER,
                "oidc_audience": AUDIENCE,
                "oidc_jwks_url": f"http://127.0.0.1:{port}/certs",
            }
        )
    )
    case = open_case(served.service)
    before = served.events_recorded()

    response = served.http.post(
        f"/cases/{case.id}/notes",
        json={"text": "x"},
        headers=CASEWORKER.headers(keys) | {"If-Match": f'"{case.version}"'},
    )

    assert response.status_code == 503
    assert response.json()["type"] == PROBLEMS + "identity-provider-unavailable"
    assert response.headers["Retry-After"].isdigit()
    assert served.events_recorded() == before
