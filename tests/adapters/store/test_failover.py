"""Connections that follow the primary (``adapters/store/failover.py``): with several
hosts the event store's pool connects only to a server that accepts writes, drops dead
connections before use and gives up a background reconnect within bounds; with one host
the connection is what it always was. Failover itself (a primary killed, its standby
promoted) is shown in ``tests/system/test_failover.py``."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import ConnectionPool

from adapters.backup.stores import connect as backup_connection
from adapters.bootstrap import build_read_models, build_service, library_env, open_views_store
from adapters.cli.support import store_location
from adapters.documents.postgres import PostgresDocumentStore
from adapters.http.store_gate import store_health
from adapters.settings import Settings
from adapters.store.failover import (
    FACTORY_TOPIC,
    KEEPALIVES,
    RECONNECT_SECONDS,
    FailoverPostgresFactory,
    follow_primary,
)
from adapters.views.replica import ReplicaConnection, ReplicaEvents
from tests.conftest import POSTGRES
from tests.support.projections import MASTER_DATA


def _pool(settings: Settings) -> Any:
    # Built, not opened: the library's pool connects on first use.
    factory = FailoverPostgresFactory(library_env(settings))
    return factory.datastore.pool


def _several_hosts(monkeypatch: pytest.MonkeyPatch, hosts: str, ports: str) -> None:
    monkeypatch.setenv("AKTE_POSTGRES_HOST", hosts)
    monkeypatch.setenv("AKTE_POSTGRES_PORT", ports)


def test_several_hosts_the_pool_connects_to_the_primary_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _several_hosts(monkeypatch, "db1.example,db2.example", "5432,5433")
    settings = Settings(store="postgres", data_dir=tmp_path)
    env = library_env(settings)
    assert env["PERSISTENCE_MODULE"] == FACTORY_TOPIC
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("db1.example,db2.example", "5432,5433")
    assert env["POSTGRES_PRE_PING"] == "y"
    pool = _pool(settings)
    assert pool.kwargs["host"] == "db1.example,db2.example"
    assert pool.kwargs["port"] == "5432,5433"
    assert pool.kwargs["target_session_attrs"] == "read-write"
    assert {key: pool.kwargs[key] for key in KEEPALIVES} == KEEPALIVES
    # Dead connections are checked for before use, and reconnecting gives up early.
    assert pool._check is not None
    assert pool.reconnect_timeout == RECONNECT_SECONDS


def test_one_host_connects_as_before(tmp_path: Path) -> None:
    settings = Settings(store="postgres", data_dir=tmp_path, postgres_port=5433)
    env = library_env(settings)
    assert (env["POSTGRES_HOST"], env["POSTGRES_PORT"]) == ("127.0.0.1", "5433")
    assert "POSTGRES_PRE_PING" not in env
    pool = _pool(settings)
    assert "target_session_attrs" not in pool.kwargs
    assert "keepalives" not in pool.kwargs
    assert pool._check is None
    # A bounded reconnect helps one server too: writes resume soon after it is back.
    assert pool.reconnect_timeout == RECONNECT_SECONDS


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.postgres
def test_a_host_that_is_down_is_passed_over_by_every_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, postgres_schema: str
) -> None:
    # The first host refuses (nothing listens there); the second is the suite's server.
    host = POSTGRES["host"]
    _several_hosts(monkeypatch, f"{host},{host}", f"{_closed_port()},{POSTGRES['port']}")
    settings = Settings(
        store="postgres",
        data_dir=tmp_path / "data",
        postgres_user=POSTGRES["user"],
        postgres_dbname=POSTGRES["dbname"],
        postgres_schema=postgres_schema,
        postgres_pool_size=1,
        postgres_max_overflow=1,
    )
    service = build_service(settings)
    read_models = build_read_models(settings, service, follow=True)
    try:
        opened = service.open_case(office_id="abh-musterstadt", master_data=MASTER_DATA, by="sb-01")
        assert service.repository.get(opened.case_id).version == opened.version
        assert read_models.wait_until(service.recorder.max_notification_id() or 0, 30)
        with read_models.views.reader() as session:
            assert session.fetch("SELECT 1") == [(1,)]
        assert store_health(service, settings)(cached=False).ok
        with backup_connection(settings) as conn:  # backup and restore connect the same way
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        read_models.close()
        service.close()


class _PoolBuilt(Exception):
    """Stops a pool from being opened once its arguments are seen."""


def _pool_arguments(monkeypatch: pytest.MonkeyPatch, target: str, build: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def record(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise _PoolBuilt

    monkeypatch.setattr(target, record)
    with pytest.raises(_PoolBuilt):
        build()
    return seen


def _replica(host: str) -> ReplicaEvents:
    return ReplicaEvents(
        ReplicaConnection(
            host=host,
            port=5432,
            dbname="akte",
            user="akte",
            password="",
            schema="public",
            events_table="stored_events",
            connect_timeout=2,
            pool_timeout=1.0,
            statement_timeout=0,
        )
    )


@pytest.mark.parametrize("host", ["db1.example,db2.example", "db1.example"])
def test_akte_own_pools_follow_the_primary(monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    # The document store's pool and the replica's event pool reconnect within bounds,
    # and with several hosts check a connection before handing it out.
    documents = PostgresDocumentStore(connection={"host": host, "port": "5432,5433"})
    replica = _replica(host)
    for target, build in (
        ("adapters.documents.postgres.ConnectionPool", documents._open_pool),
        ("psycopg_pool.ConnectionPool", replica._connections),
    ):
        args = _pool_arguments(monkeypatch, target, build)
        assert args["reconnect_timeout"] == RECONNECT_SECONDS
        if "," in host:
            assert args["check"] == ConnectionPool.check_connection
        else:
            assert "check" not in args
    assert follow_primary(host) == {
        "reconnect_timeout": RECONNECT_SECONDS,
        **({"check": ConnectionPool.check_connection} if "," in host else {}),
    }


def test_messages_name_each_host_with_its_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _several_hosts(monkeypatch, "db1.example,db2.example", "5432,5433")
    settings = Settings(store="postgres", data_dir=tmp_path, postgres_dbname="akte")
    assert settings.postgres_servers == "db1.example:5432, db2.example:5433"
    assert store_location(settings).startswith(
        "PostgreSQL at db1.example:5432, db2.example:5433, database akte"
    )
    views = open_views_store(settings)  # nothing connects before the first use
    try:
        assert views.where.startswith("PostgreSQL at db1.example:5432, db2.example:5433,")
    finally:
        views.close()
    one = Settings(store="postgres", data_dir=tmp_path, postgres_host="db1", postgres_port=5433)
    assert one.postgres_servers == "db1:5433"
