"""Concurrent writers over real HTTP: If-Match keeps every acknowledged write, and only those.

Several threads, each with its own HTTP connection and caseworker token, add notes to
one case file. Each reads the ETag and writes with it as If-Match; some deliberately
send a stale one. Afterwards the case file's events are exactly the acknowledged writes,
each at the version its response named, and no rejected write left a trace.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from uuid import UUID

import httpx2 as httpx
import pytest

from adapters.bootstrap import build_app
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from domain.case_file import CaseFile
from service import AkteService
from tests.support.live_server import ServedApp

WRITERS = 6
ATTEMPTS_PER_WRITER = 15
PERSON = {
    "surname": "Beispiel",
    "given_names": "Amal",
    "date_of_birth": "1991-02-03",
    "nationality": "SYR",
    "passport_number": "N12345678",
}


@dataclass
class Outcomes:
    acknowledged: dict[str, int] = field(default_factory=dict)
    """Note text -> the version its 201 response named."""
    rejected: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def served(service: AkteService, settings: Settings) -> Iterator[ServedApp]:
    app = ServedApp(build_app(settings, service), service)
    app.start()
    try:
        yield app
    finally:
        app.stop()


def caseworker_token(settings: Settings, user_id: str) -> str:
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    return issuer.issue(
        user_id=user_id, roles=[Role.CASEWORKER], office_id=settings.default_office_id
    )


def test_stale_if_match_never_loses_or_invents_a_write(
    served: ServedApp, settings: Settings
) -> None:
    opener = {"Authorization": f"Bearer {caseworker_token(settings, 'sb-01')}"}
    opened = served.http.post("/cases", json=PERSON, headers=opener)
    assert opened.status_code == 201, opened.text
    case_url = f"/cases/{opened.json()['case_id']}"
    first_etag = opened.headers["ETag"]
    outcomes = Outcomes()
    start = threading.Barrier(WRITERS)

    def write(writer: int) -> None:
        rng = random.Random(writer)
        headers = {"Authorization": f"Bearer {caseworker_token(settings, f'sb-0{writer}')}"}
        with httpx.Client(base_url=served.base_url, trust_env=False, timeout=10) as http:
            start.wait()
            for attempt in range(ATTEMPTS_PER_WRITER):
                text = f"writer {writer} attempt {attempt}"
                stale = rng.random() < 0.2
                etag = first_etag if stale else http.get(case_url, headers=headers).headers["ETag"]
                response = http.post(
                    f"{case_url}/notes",
                    json={"text": text},
                    headers=headers | {"If-Match": etag},
                )
                with outcomes.lock:
                    if response.status_code == 201:
                        outcomes.acknowledged[text] = response.json()["version"]
                    elif response.status_code == 412:
                        outcomes.rejected.append(text)
                    else:
                        outcomes.unexpected.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(1, WRITERS + 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert outcomes.unexpected == []
    # Both outcomes happened, or the test proved nothing about conflicts.
    assert outcomes.acknowledged
    assert outcomes.rejected
    events = served.service.case_events(UUID(opened.json()["case_id"]))
    recorded = {
        event.text: event.originator_version
        for event in events
        if isinstance(event, CaseFile.NoteAdded)
    }
    assert recorded == outcomes.acknowledged
    assert not set(outcomes.rejected) & set(recorded)
    assert len(events) == 1 + len(outcomes.acknowledged)
