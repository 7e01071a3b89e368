"""Every write route takes ``Idempotency-Key``: sent twice with the same key, a write is
recorded once and the retry hears the first answer.

The write routes and the request that makes each succeed come from the route table of
the access tests (:mod:`tests.http.auth.route_table`), like the positions test beside it.
"""

from __future__ import annotations

import uuid
from typing import Final

import pytest

from tests.http.auth.identity_provider import ProviderKeys
from tests.http.auth.route_table import ROUTES, send, subject_for
from tests.http.auth.test_write_positions import (
    RECORDS_NOTHING,
    _openapi_writes,
    _succeeding_caller,
)
from tests.support.live_server import ServedApp

REPLAYED: Final = ("ETag", "Location", "X-Akte-Position", "Content-Type")


def test_every_write_route_documents_the_header(served: ServedApp) -> None:
    paths = served.app.openapi()["paths"]
    undocumented = [
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method, operation in operations.items()
        if f"{method.upper()} {path}" in _openapi_writes(served)
        and not any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", []))
    ]
    assert undocumented == []


@pytest.mark.long  # 6-9 s: bin/test-long runs it, so bin/test stays under ten minutes
def test_every_write_sent_twice_with_one_key_is_recorded_once(
    served: ServedApp, keys: ProviderKeys
) -> None:
    writes = _openapi_writes(served)
    failures: list[str] = []
    checked = 0
    for route in ROUTES:
        if str(route) not in writes or str(route) in RECORDS_NOTHING:
            continue
        subject = subject_for(served.service, route)
        headers = {
            **_succeeding_caller(route).headers(keys),
            "Idempotency-Key": str(uuid.uuid4()),
        }

        first = send(served, route, subject, headers)
        recorded = served.events_recorded()
        again = send(served, route, subject, headers)

        where = str(route)
        checked += 1
        if first.status_code != route.success:
            failures.append(f"{where}: {first.status_code} {first.text[:200]}")
            continue
        if served.events_recorded() != recorded:
            failures.append(f"{where}: the retry recorded again")
        if again.status_code != first.status_code or again.content != first.content:
            failures.append(f"{where}: the retry answered {again.status_code} {again.text[:200]}")
        for name in REPLAYED:
            if again.headers.get(name) != first.headers.get(name):
                failures.append(f"{where}: {name} {again.headers.get(name)!r}")
    assert checked > 40, checked  # the table reaches the writes at all
    assert not failures, "\n".join(failures)
