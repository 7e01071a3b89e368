"""Offices as shards: a backup of one office's shard restores into that office's shard
only; into another office's shard it is refused before anything is written."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from adapters.backup.manifest import read_manifest
from adapters.bootstrap import build_service, office_schema, shard_schema_exists, shard_settings
from adapters.cli.main import main
from adapters.cli.support import EXIT_OK, EXIT_USAGE
from adapters.settings import Settings
from tests.conftest import POSTGRES, postgres_environment
from tests.http.routes.test_worklists import received_procedure

pytestmark = pytest.mark.postgres

OFFICES = ("abh-a", "abh-b")


@pytest.fixture
def deployment(environment: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A sharded deployment on the test server, as the environment says."""
    settings = {
        **postgres_environment(environment / "data", f"akte_shardbackup_{uuid.uuid4().hex[:8]}"),
        "AKTE_SHARD_BY_OFFICE": "true",
        "AKTE_OFFICES": ",".join(OFFICES),
        "AKTE_SNAPSHOT_INTERVAL": "0",
    }
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    base = Settings()
    try:
        yield base
    finally:
        _drop_shard(base, *OFFICES)


def _shard(base: Settings, office_id: str) -> Settings:
    return shard_settings(base.model_copy(update={"shard_office": office_id}))


def _drop_shard(base: Settings, *office_ids: str) -> None:
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        for office_id in office_ids:
            schema = sql.Identifier(office_schema(base, office_id))
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


def test_a_shard_backup_restores_into_its_own_office_only(
    deployment: Settings, environment: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = build_service(_shard(deployment, "abh-a"))
    try:
        received_procedure(service, "abh-a")
    finally:
        service.close()
    dest = environment / "backup"
    assert main(["backup", str(dest), "--office", "abh-a"]) == EXIT_OK
    assert read_manifest(dest).offices == ["abh-a"]
    capsys.readouterr()

    assert main(["restore", str(dest), "--office", "abh-b"]) == EXIT_USAGE

    err = capsys.readouterr().err
    assert "the backup holds office(s) abh-a" in err
    assert "the shard of office abh-b" in err
    assert not shard_schema_exists(_shard(deployment, "abh-b"))

    # Into its own office's shard, emptied (a lost shard), it restores.
    _drop_shard(deployment, "abh-a")
    assert main(["restore", str(dest), "--office", "abh-a"]) == EXIT_OK
