"""GET /cases/{id}/events (adapters/http/routes/case_files/cases.py): personal fields
only for readers who may see them in the history, named in ``withheld`` otherwise."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from adapters.http.auth.identity import Role
from adapters.settings import Settings
from tests.conftest import bearer

PERSON_BODY = {
    "surname": "Beispiel",
    "given_names": "Amal",
    "date_of_birth": "1991-07-14",
    "nationality": "SYR",
    "passport_number": "N1234567",
}


def test_the_events_withhold_personal_fields_from_those_the_history_withholds_them_from(
    client: TestClient, settings: Settings
) -> None:
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    opened = client.post("/cases", json=PERSON_BODY, headers=caseworker)
    assert opened.status_code == 201, opened.text
    case_id = opened.json()["case_id"]
    corrected = client.post(
        f"/cases/{case_id}/master-data/corrections",
        json={"surname": "Neuname", "reason": "Heirat, Scheidung 2019"},
        headers={**caseworker, "If-Match": opened.headers["ETag"]},
    )
    assert corrected.status_code == 200, corrected.text

    seen = client.get(f"/cases/{case_id}/events", headers=caseworker).json()[-1]
    history = client.get(f"/cases/{case_id}/history", headers=caseworker).json()["entries"][-1]
    assert "reason" in seen["withheld"]
    assert "reason" not in seen["data"]
    assert "Heirat" not in json.dumps(seen)
    assert seen["withheld"] == history["withheld"]

    auditor = bearer(settings, "au-01", Role.AUDITOR)
    full = client.get(f"/cases/{case_id}/events", headers=auditor).json()[-1]
    assert (full["data"]["reason"], full["withheld"]) == ("Heirat, Scheidung 2019", [])
