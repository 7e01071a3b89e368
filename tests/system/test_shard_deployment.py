"""Offices as shards, deployed: one API and one projection worker per office's shard.

Two shard apps on one PostgreSQL server keep each office's events, read models and keys in
the office's own schema; an app refuses tokens and ``office_id`` parameters of other
offices; ``akte projections run --office`` catches up its office's shard only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg import sql

from adapters.bootstrap import (
    ShardSettingsError,
    build_app,
    build_read_models,
    build_service,
    library_env,
    office_schema,
    open_views_store,
    shard_settings,
)
from adapters.http.auth.identity import Principal, Role
from adapters.http.auth.permissions import admit_to_shard
from adapters.http.problems import PROBLEM_TYPE_BASE, HttpProblem
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from adapters.views.runner import ApplicationEventLog
from projections.read_models import READ_MODELS
from projections.status import ProjectionStatus, projection_status
from service import AkteService
from tests.conftest import POSTGRES, FakeClock, bearer
from tests.http.routes.test_worklists import received_procedure

ROOT = Path(__file__).resolve().parents[2]
OFFICES = ("abh-a", "abh-b")
OTHER_OFFICE_SHARD = PROBLEM_TYPE_BASE + "other-office-shard"
WAIT_SECONDS = 20.0
"""A generous bound for a worker to catch up; the tests do not time anything."""


def sharded_base(tmp_path: Path) -> Settings:
    """A sharded deployment's settings, as every process of it reads them."""
    return Settings(
        store="postgres",
        data_dir=tmp_path / "data",
        postgres_host=POSTGRES["host"],
        postgres_port=POSTGRES["port"],
        postgres_user=POSTGRES["user"],
        postgres_dbname=POSTGRES["dbname"],
        postgres_schema=f"akte_shardtest_{uuid.uuid4().hex[:10]}",
        shard_by_office=True,
        offices=",".join(OFFICES),
        snapshot_interval=0,
    )


def for_office(base: Settings, office_id: str) -> Settings:
    return shard_settings(base.model_copy(update={"shard_office": office_id}))


def drop_shard_schemas(base: Settings) -> None:
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        for office_id in OFFICES:
            schema = sql.Identifier(office_schema(base, office_id))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


def tables_by_schema(base: Settings) -> dict[str, set[str]]:
    schemas = [office_schema(base, office_id) for office_id in OFFICES]
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        rows = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables "
            "WHERE table_schema = ANY(%s) OR table_schema = %s",
            (schemas, base.postgres_schema),
        ).fetchall()
    found: dict[str, set[str]] = {}
    for schema, table in rows:
        found.setdefault(schema, set()).add(table)
    return found


def originators_in(schema: str, events_table: str) -> set[UUID]:
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        rows = conn.execute(
            sql.SQL("SELECT DISTINCT originator_id FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(events_table)
            )
        ).fetchall()
    return {UUID(str(row[0])) for row in rows}


def key_owners_in(schema: str) -> set[str]:
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        rows = conn.execute(
            sql.SQL("SELECT owner_id FROM {}.akte_data_keys").format(sql.Identifier(schema))
        ).fetchall()
    return {str(row[0]) for row in rows}


# ------------------------------------------------------------------ without a server


def test_a_shard_process_works_on_its_office_schema_and_office() -> None:
    base = Settings(store="postgres", postgres_schema="akte", shard_by_office=True, offices="a,b")
    shard = shard_settings(base.model_copy(update={"shard_office": "a"}))
    assert (shard.postgres_schema, shard.default_office_id, shard.shard_office) == (
        "akte_a",
        "a",
        "a",
    )
    assert shard_settings(shard) is shard  # applied once, not "akte_a_a"
    assert shard.model_copy().shard_applied
    unsharded = Settings(store="postgres", postgres_schema="akte")
    assert shard_settings(unsharded) is unsharded


def test_the_environment_does_not_move_a_shard_to_the_base_schema() -> None:
    # The library reads AKTE_POSTGRES_SCHEMA (its "<app name>_<key>") from the process
    # environment before the plain key; the shard's own schema must be what it finds.
    base = Settings(store="postgres", postgres_schema="akte", shard_by_office=True, offices="a")
    env = library_env(shard_settings(base.model_copy(update={"shard_office": "a"})))
    assert env["AKTE_POSTGRES_SCHEMA"] == env["POSTGRES_SCHEMA"] == "akte_a"


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"shard_office": None}, "name the office this process serves"),
        ({"shard_office": "c"}, "not one of AKTE_OFFICES"),
        ({"shard_office": "a", "store": "sqlite"}, "needs AKTE_STORE=postgres"),
        ({"shard_office": "a;drop", "offices": ""}, "no valid shard schema name"),
        ({"shard_office": "typo", "offices": ""}, "needs AKTE_OFFICES"),
        ({"shard_office": "a", "offices": "a,b,abh-c,abh_c"}, "would share schema akte_abh_c"),
    ],
)
def test_inconsistent_shard_settings_are_refused(update: dict[str, object], message: str) -> None:
    base = Settings(store="postgres", shard_by_office=True, offices="a,b")
    with pytest.raises(ShardSettingsError, match=message):
        shard_settings(base.model_copy(update=update))


def test_settings_of_one_shard_are_never_moved_to_another() -> None:
    base = Settings(store="postgres", postgres_schema="akte", shard_by_office=True, offices="a,b")
    shard_a = shard_settings(base.model_copy(update={"shard_office": "a"}))
    assert shard_settings(shard_a) is shard_a
    with pytest.raises(ShardSettingsError, match="already point at another office's shard"):
        shard_settings(shard_a.model_copy(update={"shard_office": "b"}))


def principal(office_id: str | None, *roles: Role) -> Principal:
    return Principal(user_id="u-01", roles=frozenset(roles), office_id=office_id)


def test_the_shard_admits_its_own_staff_and_deployment_wide_roles() -> None:
    own = principal("abh-b", Role.CASEWORKER)
    assert admit_to_shard(own, "abh-b") is own
    # Auditors and data protection officers reach every office: on this shard they act
    # in its office, so "your office" defaults mean the one office it holds.
    for wide in (
        principal("abh-a", Role.AUDITOR),
        principal(None, Role.DATA_PROTECTION_OFFICER),
        principal("abh-a", Role.AUDITOR, Role.DATA_PROTECTION_OFFICER),
    ):
        assert admit_to_shard(wide, "abh-b").office_id == "abh-b"


@pytest.mark.parametrize(
    "caller",
    [
        principal("abh-a", Role.CASEWORKER),
        principal("abh-a", Role.HEAD_OF_OFFICE),
        # Its caseworker role would act here for office abh-a.
        principal("abh-a", Role.CASEWORKER, Role.AUDITOR),
        # An office-bound role without an office can act nowhere.
        principal(None, Role.TEAM_LEAD),
        principal("abh-a"),
    ],
)
def test_the_shard_refuses_everyone_else(caller: Principal) -> None:
    with pytest.raises(HttpProblem) as refused:
        admit_to_shard(caller, "abh-b")
    assert (refused.value.status, refused.value.code) == (403, "other-office-shard")
    assert "abh-a" not in refused.value.detail  # names the shard, not the caller's office


# ------------------------------------------------------------------ two shards on one server


@dataclass
class Shard:
    settings: Settings
    service: AkteService
    read_models: ReadModels
    client: TestClient


@pytest.fixture
def base(tmp_path: Path) -> Settings:
    return sharded_base(tmp_path)


@pytest.fixture
def shards(base: Settings) -> Iterator[dict[str, Shard]]:
    """Two offices' API processes, as ``akte serve --office`` builds them."""
    built: dict[str, Shard] = {}
    try:
        for office_id in OFFICES:
            settings = for_office(base, office_id)
            service = build_service(settings, clock=FakeClock())
            read_models = build_read_models(settings, service, follow=True)
            client = TestClient(build_app(settings, service, read_models=read_models))
            built[office_id] = Shard(settings, service, read_models, client)
        yield built
    finally:
        for shard in built.values():
            shard.client.close()
            shard.read_models.close()
            shard.service.close()
        drop_shard_schemas(base)


def caught_up(shard: Shard) -> None:
    head = shard.service.recorder.max_notification_id() or 0
    assert shard.read_models.wait_until(head, WAIT_SECONDS)


@pytest.mark.postgres
def test_each_office_keeps_events_read_models_and_keys_in_its_own_schema(
    base: Settings, shards: dict[str, Shard]
) -> None:
    a, b = shards["abh-a"], shards["abh-b"]
    case_a, _ = received_procedure(a.service, "abh-a")
    case_b, _ = received_procedure(b.service, "abh-b")
    caught_up(a)
    caught_up(b)

    tables = tables_by_schema(base)
    schema_a, schema_b = a.settings.postgres_schema, b.settings.postgres_schema
    assert set(tables) == {schema_a, schema_b}  # nothing in the base schema
    for schema in (schema_a, schema_b):
        assert "akte_data_keys" in tables[schema]
        assert any(table.startswith("akte_view_") for table in tables[schema])
    # The event store's table (read models' tables start with akte_view_).
    [events_table] = [
        table
        for table in tables[schema_a]
        if table.endswith("_events") and not table.startswith("akte_view_")
    ]
    assert case_a in originators_in(schema_a, events_table)
    assert case_a not in originators_in(schema_b, events_table)
    assert case_b in originators_in(schema_b, events_table)
    assert case_b not in originators_in(schema_a, events_table)
    owners_a, owners_b = key_owners_in(schema_a), key_owners_in(schema_b)
    assert owners_a
    assert owners_b
    assert not owners_a & owners_b


@pytest.mark.postgres
def test_worklists_of_a_shard_show_only_its_office(shards: dict[str, Shard]) -> None:
    a, b = shards["abh-a"], shards["abh-b"]
    case_a, _ = received_procedure(a.service, "abh-a")
    for _ in range(2):
        received_procedure(b.service, "abh-b")
    caught_up(a)
    caught_up(b)

    lead_a = bearer(a.settings, "tl-01", Role.TEAM_LEAD, "abh-a")
    listed = a.client.get("/worklists/unassigned-procedures", headers=lead_a)
    assert listed.status_code == 200, listed.text
    assert [item["case_id"] for item in listed.json()["items"]] == [str(case_a)]
    lead_b = bearer(b.settings, "tl-01", Role.TEAM_LEAD, "abh-b")
    listed = b.client.get("/worklists/unassigned-procedures", headers=lead_b)
    assert len(listed.json()["items"]) == 2


@pytest.mark.postgres
def test_a_shard_refuses_tokens_and_offices_of_another_office(shards: dict[str, Shard]) -> None:
    a, b = shards["abh-a"], shards["abh-b"]
    case_b, _ = received_procedure(b.service, "abh-b")
    caseworker_a = bearer(a.settings, "sb-01", Role.CASEWORKER, "abh-a")
    head_b = b.service.recorder.max_notification_id()

    for response in (
        b.client.get(f"/cases/{case_b}", headers=caseworker_a),
        b.client.post("/cases", json={}, headers=caseworker_a),
        b.client.get("/worklists/unassigned-procedures", headers=caseworker_a),
        # The shard's own staff naming another office: that office's data is not here.
        b.client.get(
            "/worklists/unassigned-procedures",
            params={"office_id": "abh-a"},
            headers=bearer(b.settings, "tl-01", Role.TEAM_LEAD, "abh-b"),
        ),
    ):
        assert response.status_code == 403, response.text
        problem = response.json()
        assert problem["type"] == OTHER_OFFICE_SHARD
        assert "abh-b" in problem["detail"]
    assert b.service.recorder.max_notification_id() == head_b  # nothing recorded

    # Still 401 first without a token, and the shard's own office passes as a parameter.
    caught_up(b)
    assert b.client.get(f"/cases/{case_b}").status_code == 401
    caseworker_b = bearer(b.settings, "sb-01", Role.CASEWORKER, "abh-b")
    own = b.client.get(
        "/worklists/unassigned-procedures", params={"office_id": "abh-b"}, headers=caseworker_b
    )
    assert own.status_code == 200, own.text


@pytest.mark.postgres
def test_a_deployment_wide_auditor_reads_any_shard_as_its_office(
    shards: dict[str, Shard],
) -> None:
    b = shards["abh-b"]
    case_b, _ = received_procedure(b.service, "abh-b")
    reference = b.service.get_case(case_b).reference
    auditor_of_a = bearer(b.settings, "pr-01", Role.AUDITOR, "abh-a")

    found = b.client.get(f"/cases/by-reference/{reference}", headers=auditor_of_a)

    assert found.status_code == 200, found.text
    assert found.json()["id"] == str(case_b)


# ------------------------------------------------------------------ one worker per shard


def worker_env(base: Settings) -> dict[str, str]:
    """The environment every process of the deployment shares; the office comes apart."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AKTE_")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "AKTE_STORE": "postgres",
        "AKTE_DATA_DIR": str(base.data_dir),
        "AKTE_POSTGRES_HOST": base.postgres_host,
        "AKTE_POSTGRES_PORT": str(base.postgres_port),
        "AKTE_POSTGRES_USER": base.postgres_user,
        "AKTE_POSTGRES_DBNAME": base.postgres_dbname,
        "AKTE_POSTGRES_SCHEMA": base.postgres_schema,
        "AKTE_SHARD_BY_OFFICE": "true",
        "AKTE_OFFICES": base.offices,
    }
    return env


@pytest.mark.postgres
def test_a_projection_worker_catches_up_its_office_shard_only(base: Settings) -> None:
    services: dict[str, AkteService] = {}
    try:
        for office_id in OFFICES:
            services[office_id] = build_service(for_office(base, office_id), clock=FakeClock())
            received_procedure(services[office_id], office_id)
        worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "adapters.cli",
                "projections",
                "run",
                "--office",
                "abh-a",
                "--poll-interval",
                "0.05",
            ],
            cwd=ROOT,
            env=worker_env(base),
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            statuses = _statuses_once_caught_up(for_office(base, "abh-a"), services["abh-a"])
            worker.send_signal(signal.SIGTERM)
            _, err = worker.communicate(timeout=WAIT_SECONDS)
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        assert worker.returncode == 0, err
        assert all(status.built and status.lag_events == 0 for status in statuses)
        assert office_schema(base, "abh-a") in err  # it names the shard it followed

        shard_b = for_office(base, "abh-b")
        views_b = open_views_store(shard_b)
        try:
            untouched = projection_status(
                ApplicationEventLog(services["abh-b"]), views_b, READ_MODELS
            )
        finally:
            views_b.close()
        assert all(status.position == 0 and status.lag_events > 0 for status in untouched)
    finally:
        for service in services.values():
            service.close()
        drop_shard_schemas(base)


def _statuses_once_caught_up(settings: Settings, service: AkteService) -> list[ProjectionStatus]:
    views = open_views_store(settings)
    log = ApplicationEventLog(service)
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            statuses = projection_status(log, views, READ_MODELS)
            done = all(status.built and status.lag_events == 0 for status in statuses)
            if done or time.monotonic() > deadline:
                return list(statuses)
            time.sleep(0.05)
    finally:
        views.close()


def test_every_akte_command_works_on_the_office_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from adapters.cli.main import EXIT_OK, EXIT_USAGE, main

    for key in [key for key in os.environ if key.startswith("AKTE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("AKTE_STORE", "postgres")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AKTE_SHARD_BY_OFFICE", "true")
    monkeypatch.setenv("AKTE_OFFICES", "abh-a,abh-b")
    assert main(["serve"]) == EXIT_USAGE
    assert "name the office this process serves" in capsys.readouterr().err
    assert main(["serve", "--office", "abh-c"]) == EXIT_USAGE
    assert "not one of AKTE_OFFICES" in capsys.readouterr().err
    assert main(["projections", "run", "--office", "abh-c"]) == EXIT_USAGE
    assert "not one of AKTE_OFFICES" in capsys.readouterr().err
    # Every command reads its settings the same way: none runs on the base schema.
    for command in (
        ["audit", "verify"],
        ["documents", "verify"],
        ["simulate", "--seed", "1"],
        ["history", "00000000-0000-4000-8000-000000000000"],
    ):
        assert main(command) != EXIT_OK
        assert "name the office this process serves" in capsys.readouterr().err
    # The shard's office is every command's default office, e.g. the demo users'.
    monkeypatch.setenv("AKTE_SHARD_OFFICE", "abh-b")
    assert main(["token", "sb-01", "--create-key"]) == EXIT_OK
    assert "office abh-b" in capsys.readouterr().err
