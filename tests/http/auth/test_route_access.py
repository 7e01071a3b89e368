"""Access control over real HTTP: every route of the app answers every kind of caller as
the policy says, on SQLite and PostgreSQL.

The role matrix takes every route of the app and every kind of caller from the tables
in :mod:`tests.http.auth.route_table` and :mod:`tests.http.auth.access_policy`, so a new
route without a row fails the suite. The app runs under uvicorn on a free port, and
every request goes over the wire with httpx2.
"""

from __future__ import annotations

import pytest

from adapters.http.auth.permissions import AllowPublic, RequirePermission, route_accesses
from tests.http.auth.access_policy import CALLERS, OK, OUTCOMES
from tests.http.auth.identity_provider import ProviderKeys
from tests.http.auth.route_table import (
    EVERY_PART,
    PAID,
    PROBLEMS,
    ROUTES,
    Subject,
    app_routes,
    open_case,
    open_declaration,
    open_notice,
    open_submission,
    send,
    subject_for,
    unknown_case_problem,
)
from tests.support.appointment_routes import open_appointment
from tests.support.live_server import ServedApp


def test_every_route_declares_its_access(served: ServedApp) -> None:
    declared = route_accesses(served.app.routes)

    assert declared, "no routes found: has FastAPI changed how it keeps them?"
    for route in declared:
        if route.path.startswith("/cases"):
            assert isinstance(route.access, RequirePermission), f"{route.path} declares none"
        else:
            assert isinstance(route.access, RequirePermission | AllowPublic), route.path


def test_the_route_table_covers_every_route_of_the_app(served: ServedApp) -> None:
    assert app_routes(served.app) == {str(route) for route in ROUTES}


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_every_route_answers_every_caller_as_the_policy_says(
    served: ServedApp, keys: ProviderKeys
) -> None:
    shared_case = open_case(served.service, EVERY_PART)
    shared_declaration = open_declaration(served.service, PAID)
    shared_submission = open_submission(served.service)
    shared_appointment = open_appointment(served.service)
    shared_notice = open_notice(served.service)
    mismatches: list[str] = []
    for route in ROUTES:
        hidden = unknown_case_problem(served, keys, route) if route.on_one else None
        shared: Subject = shared_case
        if route.declaration is not None:
            shared = shared_declaration
        elif route.submission is not None:
            shared = shared_submission
        elif route.appointment is not None:
            shared = shared_appointment
        elif route.notice:
            shared = shared_notice
        for caller in CALLERS:
            expected = OUTCOMES[route.kind][caller] or route.success
            case = subject_for(served.service, route) if route.writes else shared
            before = served.events_recorded()

            response = send(served, route, case, caller.headers(keys))

            where = f"{route} as {caller.name}"
            if response.status_code != expected:
                mismatches.append(f"{where}: expected {expected}, got {response.status_code}")
                continue
            if expected < 400:
                continue
            problem = response.json()
            if served.events_recorded() != before:
                mismatches.append(f"{where}: refused with {expected} but recorded events")
            if expected == 401:
                assert problem["type"] == PROBLEMS + "unauthenticated", where
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
            elif expected == 403:
                assert problem["type"] == PROBLEMS + "forbidden", where
            elif hidden is not None:
                # Not a word more than for a case file that does not exist.
                problem["detail"] = problem["detail"].replace(str(case.id), "<id>")
                assert problem == hidden, where
            else:
                assert problem["type"] == PROBLEMS + "case-not-found", where
    assert not mismatches, "\n".join(mismatches)


def test_refusals_come_before_if_match_and_body_checks(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    declaration = open_declaration(served.service)
    sent = open_submission(served.service)
    before = served.events_recorded()

    for route in ROUTES:
        if not route.writes:
            continue
        subject: Subject = case
        if route.declaration is not None:
            subject = declaration
        elif route.submission is not None:
            subject = sent
        for caller in CALLERS:
            refusal = OUTCOMES[route.kind][caller]
            if refusal == OK:
                continue
            if route.form is not None:
                # Upload routes take multipart bodies only (JSON is 415 before anything).
                response = served.http.post(
                    route.url(subject),
                    files={"unexpected": ("x.txt", b"x", "text/plain")},
                    headers=caller.headers(keys),
                )
            else:
                response = served.http.request(
                    route.method,
                    route.url(subject),
                    json={"unexpected": True},
                    headers=caller.headers(keys),
                )
            assert response.status_code == refusal, f"{route} as {caller.name}: {response.text}"
    assert served.events_recorded() == before
