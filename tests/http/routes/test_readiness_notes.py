"""``/readyz`` names what an informational check says (a read replica's state) without
becoming unready for it: the primary answers the replica's reads."""

from __future__ import annotations

from fastapi.testclient import TestClient

from adapters.bootstrap import build_app
from adapters.http.routes.operations import NamedCheck
from adapters.settings import Settings
from service import AkteService

DOWN = "replica unreachable (OperationalError): reading the primary"


def test_an_informational_check_is_named_and_the_service_stays_ready(
    service: AkteService, settings: Settings
) -> None:
    app = build_app(
        settings,
        service,
        readiness_checks=[NamedCheck("replica", lambda: DOWN, informational=True)],
    )

    with TestClient(app) as client:
        response = client.get("/readyz")

    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"store": "ok", "read_models": "ok", "replica": DOWN}


def test_a_failing_check_beside_it_is_the_only_one_the_problem_names(
    service: AkteService, settings: Settings
) -> None:
    app = build_app(
        settings,
        service,
        readiness_checks=[
            NamedCheck("replica", lambda: DOWN, informational=True),
            NamedCheck("projections", lambda: "12000 events behind"),
        ],
    )

    with TestClient(app) as client:
        response = client.get("/readyz")

    assert response.status_code == 503, response.text
    problem = response.json()
    assert problem["checks"]["replica"] == DOWN
    assert "projections (12000 events behind)" in problem["detail"]
    assert "replica" not in problem["detail"]
