"""The Keycloak realm export (``deploy/keycloak/akte-realm.json``) fits what Akte reads.

Its realm roles are exactly Akte's roles, and the claims its mappers put in an access token,
shaped as Keycloak shapes them (a dotted claim name is a nested object), are turned by
Akte's verifier into the principal meant: the roles, the office, the audience.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from adapters.http.auth.identity import Role
from adapters.http.auth.tokens import provider_token_verifier
from adapters.http.routes.api_docs import OAUTH2_REDIRECT_PATH
from tests.http.auth.identity_provider import ISSUER, OMIT, JwksServer, ProviderKeys, make_token

REALM_EXPORT: Final = Path(__file__).resolve().parents[3] / "deploy/keycloak/akte-realm.json"
AKTE_SCOPE: Final = "akte"


def _realm() -> dict[str, Any]:
    realm: dict[str, Any] = json.loads(REALM_EXPORT.read_text(encoding="utf-8"))
    return realm


def _mapper(kind: str) -> dict[str, str]:
    scopes = [scope for scope in _realm()["clientScopes"] if scope["name"] == AKTE_SCOPE]
    assert len(scopes) == 1
    mappers = [m for m in scopes[0]["protocolMappers"] if m["protocolMapper"] == kind]
    assert len(mappers) == 1, kind
    config: dict[str, str] = mappers[0]["config"]
    assert config["access.token.claim"] == "true", kind
    return config


def _as_keycloak_puts_it(claim_name: str, value: Any) -> dict[str, Any]:
    """``a.b`` becomes ``{"a": {"b": value}}``, as Keycloak's mappers nest claims."""
    *parents, leaf = claim_name.split(".")
    claim: dict[str, Any] = {leaf: value}
    for parent in reversed(parents):
        claim = {parent: claim}
    return claim


def test_the_realm_roles_are_exactly_aktes_roles() -> None:
    names = [role["name"] for role in _realm()["roles"]["realm"]]

    assert sorted(names) == sorted(role.value for role in Role)


def test_every_client_gets_the_akte_scope_with_its_mappers() -> None:
    clients = _realm()["clients"]

    assert {client["clientId"] for client in clients} == {"akte-staff", "akte-intake"}
    assert all(AKTE_SCOPE in client["defaultClientScopes"] for client in clients)
    staff = next(client for client in clients if client["clientId"] == "akte-staff")
    assert staff["publicClient"] is True
    assert staff["attributes"]["pkce.code.challenge.method"] == "S256"
    assert staff["implicitFlowEnabled"] is False
    assert staff["directAccessGrantsEnabled"] is False
    # People sign in on /docs: Swagger UI's redirect page, and the token endpoint asked
    # from the browser (web origins "+": the origins of the redirect URIs).
    assert staff["redirectUris"]
    assert all(uri.endswith(OAUTH2_REDIRECT_PATH) for uri in staff["redirectUris"])
    assert staff["webOrigins"] == ["+"]


def test_a_token_shaped_by_the_mappers_gives_akte_the_roles_and_office(
    keys: ProviderKeys, jwks: JwksServer
) -> None:
    audience = _mapper("oidc-audience-mapper")["included.custom.audience"]
    roles_claim = _mapper("oidc-usermodel-realm-role-mapper")["claim.name"]
    office_claim = _mapper("oidc-usermodel-attribute-mapper")
    assert office_claim["user.attribute"] == "office"
    verifier = provider_token_verifier(
        issuer=ISSUER,
        audience=audience,
        jwks_url=jwks.url,
        jwks_cache_seconds=60,
        refresh_cooldown_seconds=0,
    )
    # Keycloak adds roles of its own (offline_access ...): Akte ignores them.
    claims = _as_keycloak_puts_it(
        roles_claim, ["default-roles-abh", "offline_access", "team_lead", "auditor"]
    ) | _as_keycloak_puts_it(office_claim["claim.name"], "abh-nachbarstadt")
    # Nothing but what the mappers put there: no default roles or office of the helper.
    fields = {"realm_access": OMIT} | claims
    office = fields.pop("office", OMIT)
    token = make_token(keys.current, aud=audience, office=office, **fields)

    principal = verifier.verify(token)

    assert principal.roles == {Role.TEAM_LEAD, Role.AUDITOR}
    assert principal.office_id == "abh-nachbarstadt"


def test_the_machine_clients_service_account_holds_akte_roles_only() -> None:
    accounts = [user for user in _realm()["users"] if "serviceAccountClientId" in user]

    assert [account["serviceAccountClientId"] for account in accounts] == ["akte-intake"]
    assert set(accounts[0]["realmRoles"]) <= {role.value for role in Role}
    assert accounts[0]["attributes"]["office"] == ["abh-musterstadt"]
