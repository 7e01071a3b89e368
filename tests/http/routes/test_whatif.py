"""The what-if replay over HTTP: its input is checked against the catalogue."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from tests.conftest import bearer

PROBLEMS = "https://akte.example/problems/"
ORDINANCE = {
    "policy": "ordinance-extension",
    "extended_to": "2026-03-04",
    "from": "2024-01-01",
    "until": "2024-12-31",
}


def test_an_unknown_legal_basis_is_refused_naming_the_field(
    client: TestClient, settings: Settings
) -> None:
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)

    unknown = client.get(
        "/reports/whatif", params=ORDINANCE | {"legal_basis": "nope"}, headers=lead
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["type"] == PROBLEMS + "invalid-value"
    assert [e["field"] for e in unknown.json()["errors"]] == ["legal_basis"]

    known = client.get(
        "/reports/whatif", params=ORDINANCE | {"legal_basis": "aufenthg-16b"}, headers=lead
    )
    assert known.status_code == 200, known.text
