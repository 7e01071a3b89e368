"""Offices on several PostgreSQL servers: ``AKTE_OFFICE_SERVERS`` puts an office's shard on
a server of its own (a second cluster made by the test), every command for that office
goes there, and ``akte offices`` fans an auditor's reads out over both servers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import psycopg
import pytest
from psycopg import sql

from adapters.bootstrap import (
    ShardSettingsError,
    build_service,
    office_schema,
    open_views_store,
    shard_settings,
)
from adapters.cli.main import main
from adapters.cli.support import EXIT_BROKEN, EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE
from adapters.monitoring.runs import AUDIT_VERIFY, task_runs
from adapters.settings import Settings
from tests.conftest import POSTGRES, postgres_environment
from tests.http.routes.test_worklists import received_procedure
from tests.support.postgres_cluster import Cluster, cluster_tools_problem, temporary_cluster

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.long,
    pytest.mark.skipif(cluster_tools_problem() is not None, reason=str(cluster_tools_problem())),
]

OFFICES = ("abh-a", "abh-b")


@pytest.fixture(scope="module")
def second_server() -> Iterator[Cluster]:
    with temporary_cluster("akte_offices", databases=("akte",)) as cluster:
        yield cluster


@pytest.fixture
def deployment(
    second_server: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """abh-a on the shared server, abh-b on the second one, as the environment says."""
    prefix = f"akte_offices_{uuid.uuid4().hex[:8]}"
    environment = {
        **postgres_environment(tmp_path / "data", prefix),
        "AKTE_SHARD_BY_OFFICE": "true",
        "AKTE_OFFICES": ",".join(OFFICES),
        "AKTE_OFFICE_SERVERS": f"abh-b=127.0.0.1:{second_server.port}/akte",
        "AKTE_SNAPSHOT_INTERVAL": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    base = Settings()
    try:
        yield base
    finally:
        for office_id, conn_kwargs in (
            ("abh-a", dict(POSTGRES)),
            (
                "abh-b",
                {
                    "host": "127.0.0.1",
                    "port": second_server.port,
                    "user": "postgres",
                    "dbname": "akte",
                },
            ),
        ):
            try:
                with psycopg.connect(autocommit=True, **conn_kwargs) as conn:  # type: ignore[arg-type]
                    conn.execute(
                        sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                            sql.Identifier(office_schema(base, office_id))
                        )
                    )
            except psycopg.OperationalError:
                pass  # the test stopped that server


def open_case_in(base: Settings, office_id: str) -> UUID:
    service = build_service(shard_settings(base.model_copy(update={"shard_office": office_id})))
    try:
        case_id, _ = received_procedure(service, office_id)
        return case_id
    finally:
        service.close()


def schemas_on(conn_kwargs: dict[str, object]) -> set[str]:
    with psycopg.connect(autocommit=True, **conn_kwargs) as conn:  # type: ignore[arg-type]
        rows = conn.execute("SELECT nspname FROM pg_namespace").fetchall()
    return {str(row[0]) for row in rows}


def test_an_office_on_its_own_server_keeps_its_shard_there(
    deployment: Settings, second_server: Cluster
) -> None:
    open_case_in(deployment, "abh-a")
    open_case_in(deployment, "abh-b")

    shared = schemas_on(dict(POSTGRES))
    second = schemas_on(
        {"host": "127.0.0.1", "port": second_server.port, "user": "postgres", "dbname": "akte"}
    )
    assert office_schema(deployment, "abh-a") in shared
    assert office_schema(deployment, "abh-a") not in second
    assert office_schema(deployment, "abh-b") in second
    assert office_schema(deployment, "abh-b") not in shared


def test_the_auditors_reads_fan_out_over_both_servers(
    deployment: Settings, second_server: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    in_a = open_case_in(deployment, "abh-a")
    in_b = open_case_in(deployment, "abh-b")

    assert main(["offices", "find", str(in_b), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out) == {"case_id": str(in_b), "offices": ["abh-b"]}
    assert main(["offices", "find", str(in_a), "--json"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["offices"] == ["abh-a"]
    assert main(["offices", "find", str(uuid.uuid4())]) == EXIT_FAILED
    assert "no office that answered holds it" in capsys.readouterr().out

    assert main(["offices", "verify", "--json"]) == EXIT_OK
    verified = json.loads(capsys.readouterr().out)
    assert [office["office_id"] for office in verified] == list(OFFICES)
    assert all(office["verify"]["ok"] for office in verified)
    assert all(office["verify"]["events"] >= 2 for office in verified)
    for office_id in OFFICES:  # each office's verification counts for its monitoring
        views = open_views_store(
            shard_settings(deployment.model_copy(update={"shard_office": office_id}))
        )
        try:
            run = task_runs(views)[AUDIT_VERIFY]
        finally:
            views.close()
        assert (run.last_result, run.runs_ok) == ("ok", 1)
        assert run.last_steps >= 2
    servers = {office["office_id"]: office["server"] for office in verified}
    assert servers["abh-a"] == f"{POSTGRES['host']}:{POSTGRES['port']}/{POSTGRES['dbname']}"
    assert servers["abh-b"] == f"127.0.0.1:{second_server.port}/akte"


def test_a_broken_chain_on_one_server_is_named_with_its_office(
    deployment: Settings, second_server: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    open_case_in(deployment, "abh-a")
    open_case_in(deployment, "abh-b")
    with second_server.connect("akte") as conn:
        conn.execute(
            sql.SQL(
                "UPDATE {}.akte_events SET state = state || '\\x00'::bytea "
                "WHERE notification_id = 1"
            ).format(sql.Identifier(office_schema(deployment, "abh-b")))
        )

    assert main(["offices", "verify"]) == EXIT_BROKEN

    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("abh-a:") and ": intact," in line for line in lines)
    assert any(line.startswith("abh-b:") and "BROKEN" in line for line in lines)


def test_an_unreachable_server_is_named_and_the_other_offices_still_answer(
    deployment: Settings, second_server: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    open_case_in(deployment, "abh-a")
    second_server.stop()
    try:
        assert main(["offices", "status"]) == EXIT_UNAVAILABLE
    finally:
        second_server.start()

    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert any(line.startswith("abh-a:") and "log head" in line for line in lines)
    assert any(line.startswith("abh-b:") and "unavailable" in line for line in lines)
    assert "no answer from office abh-b" in captured.err


def test_an_office_whose_schema_is_not_on_its_server_is_unavailable_and_not_created(
    deployment: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """abh-b's entry names a server its shard was not restored to yet: every read says
    so and fails, instead of making an empty schema there that answers "no files"."""
    case_id = open_case_in(deployment, "abh-b")
    shared = f"{POSTGRES['host']}:{POSTGRES['port']}/{POSTGRES['dbname']}"
    monkeypatch.setenv("AKTE_OFFICE_SERVERS", f"abh-b={shared}")
    schema = office_schema(deployment, "abh-b")
    for command in (
        ["offices", "find", str(case_id)],
        ["offices", "status"],
        ["offices", "verify"],
    ):
        assert main(command) == EXIT_UNAVAILABLE, command
        captured = capsys.readouterr()
        assert f"office abh-b's schema {schema} is not on {shared}" in captured.out, command
    assert schema not in schemas_on(dict(POSTGRES))


def test_a_server_for_an_office_outside_the_deployment_is_refused(deployment: Settings) -> None:
    stray = deployment.model_copy(
        update={"office_servers": "abh-z=db9.example/akte", "shard_office": "abh-a"}
    )
    with pytest.raises(ShardSettingsError, match="abh-z"):
        shard_settings(stray)


def test_a_malformed_office_server_is_refused_with_the_form_it_takes() -> None:
    with pytest.raises(ValueError, match="office=host"):
        Settings(office_servers="abh-b:db2.example")
