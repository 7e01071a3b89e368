"""Settings read from the environment: PostgreSQL's hosts and ports for failover (one host
as always; several in libpq's form, checked at start)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from adapters.settings import Settings


def _env(monkeypatch: pytest.MonkeyPatch, hosts: str, ports: str) -> Settings:
    monkeypatch.setenv("AKTE_POSTGRES_HOST", hosts)
    monkeypatch.setenv("AKTE_POSTGRES_PORT", ports)
    return Settings(store="postgres")


def test_one_host_and_port_as_before(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _env(monkeypatch, "db.example", "5433")
    assert (settings.postgres_host, settings.postgres_port) == ("db.example", 5433)
    assert not settings.postgres_failover
    assert settings.postgres_connection_args == {"host": "db.example", "port": "5433"}


def test_several_hosts_with_a_port_each(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _env(monkeypatch, "db1.example, db2.example", "5432, 5433")
    assert settings.postgres_hosts == ("db1.example", "db2.example")
    assert settings.postgres_ports == (5432, 5433)
    assert settings.postgres_port == 5432  # the first, for what names one server
    assert settings.postgres_failover
    assert settings.postgres_connection_args == {
        "host": "db1.example,db2.example",
        "port": "5432,5433",
        "target_session_attrs": "read-write",
    }


def test_several_hosts_with_one_port_for_all(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _env(monkeypatch, "db1.example,db2.example,db3.example", "5432")
    assert settings.postgres_ports == (5432, 5432, 5432)
    assert settings.postgres_connection_args["port"] == "5432,5432,5432"


def test_a_copy_for_another_server_drops_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _env(monkeypatch, "db1.example,db2.example", "5432,5433")
    office = settings.model_copy(update={"postgres_host": "db9.example", "postgres_port": 6000})
    assert office.postgres_ports == (6000,)
    assert office.postgres_connection_args == {"host": "db9.example", "port": "6000"}


@pytest.mark.parametrize(
    ("hosts", "ports", "says"),
    [
        ("db1,db2", "5432,5433,5434", "3 ports for 2 hosts"),
        ("db1,db2,db3", "5432,5433", "2 ports for 3 hosts"),
        ("db1,db2", "5432,x", "a comma list of them"),
        ("db1,db2", "5432,70000", "a port 1 to 65535"),
        ("db1,,db2", "5432", "an empty host name"),
    ],
)
def test_a_mismatch_is_refused_at_start_with_a_clear_message(
    monkeypatch: pytest.MonkeyPatch, hosts: str, ports: str, says: str
) -> None:
    monkeypatch.setenv("AKTE_POSTGRES_PASSWORD", "not-in-the-message")
    with pytest.raises(ValidationError) as refused:
        _env(monkeypatch, hosts, ports)
    assert says in str(refused.value)
    assert "not-in-the-message" not in str(refused.value)
