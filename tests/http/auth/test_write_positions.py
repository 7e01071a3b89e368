"""Every write answers ``X-Akte-Position``: the log position of its last event, which a
list asked with ``?min_position=`` waits for (read-your-writes).

The write routes come from the OpenAPI document; the request that makes each succeed
comes from the route table of the access tests (:mod:`tests.http.auth.route_table`), so a
new write route without a row there fails here too. It lives beside that table because
it shares the table's live server, tokens and set-up of subjects.
"""

from __future__ import annotations

from typing import Final

import pytest

from tests.http.auth.access_policy import ANONYMOUS, CALLERS, OK, OUTCOMES, Caller
from tests.http.auth.identity_provider import ProviderKeys
from tests.http.auth.route_table import ROUTES, Route, send, subject_for
from tests.support.live_server import ServedApp

WRITE_METHODS: Final = frozenset({"post", "put", "patch", "delete"})
RECORDS_NOTHING: Final[dict[str, str]] = {
    "POST /appointments/challenges": (
        "a proof-of-work challenge is signed, not stored: nothing is recorded, so there is "
        "no position to wait for"
    ),
}
"""Write routes that legitimately record nothing, with the reason."""
WAITING_LIST: Final = "/worklists/unassigned-procedures"


def _openapi_writes(served: ServedApp) -> set[str]:
    paths: dict[str, dict[str, object]] = served.app.openapi()["paths"]
    return {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method in operations
        if method in WRITE_METHODS
    }


def _succeeding_caller(route: Route) -> Caller:
    """Who the route lets write: anyone for a public one (sent without a token)."""
    if route.writer is not None:
        return route.writer
    if route.kind == "public":
        return ANONYMOUS
    return next(caller for caller in CALLERS if OUTCOMES[route.kind][caller] == OK)


def test_every_write_route_of_the_openapi_document_has_an_example(served: ServedApp) -> None:
    writes = _openapi_writes(served)
    examples = {str(route) for route in ROUTES if route.writes}

    assert writes, "no write operations in the OpenAPI document"
    assert writes - examples == set(), "write routes without an example in route_table.ROUTES"
    assert set(RECORDS_NOTHING) <= writes, "an exception names a route that does not exist"


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_every_write_answers_the_position_of_its_last_event(
    served: ServedApp, keys: ProviderKeys
) -> None:
    writes = _openapi_writes(served)
    worklist_reader = next(caller for caller in CALLERS if caller.name == "caseworker")
    failures: list[str] = []
    for route in ROUTES:
        if str(route) not in writes:
            continue
        subject = subject_for(served.service, route)
        before = served.events_recorded()

        response = send(served, route, subject, _succeeding_caller(route).headers(keys))

        where = str(route)
        if response.status_code != route.success:
            failures.append(f"{where}: {response.status_code} {response.text[:200]}")
            continue
        header = response.headers.get("X-Akte-Position")
        if where in RECORDS_NOTHING:
            if header is not None or served.events_recorded() != before:
                failures.append(f"{where}: listed as recording nothing, but it did")
            continue
        if header is None:
            failures.append(f"{where}: no X-Akte-Position")
            continue
        position = int(header)
        if not before < position <= served.events_recorded():
            failures.append(f"{where}: {position} is not a position this write recorded")
            continue
        if position != served.events_recorded():
            failures.append(f"{where}: {position} is not its last event")
        waited = served.http.get(
            WAITING_LIST,
            params={"min_position": position},
            headers=worklist_reader.headers(keys),
        )
        if waited.status_code != 200 or waited.headers.get("X-Akte-Views-Behind") == "true":
            failures.append(f"{where}: the worklists cannot wait for {position}")
    assert not failures, "\n".join(failures)
