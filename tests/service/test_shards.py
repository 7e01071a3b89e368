"""Offices as shards: each office's events in a PostgreSQL schema of its own (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from adapters.bootstrap import build_office_services, office_schema
from adapters.settings import Settings
from service import AkteService
from service_common import CaseNotFound
from tests.conftest import POSTGRES, make_settings
from tests.support.projections import MASTER_DATA


@pytest.fixture
def sharded(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Settings, dict[str, AkteService]]]:
    base = make_settings("postgres", tmp_path, request)
    settings = base.model_copy(update={"shard_by_office": True, "offices": "abh-a, abh-b"})
    services = build_office_services(settings)
    try:
        yield settings, services
    finally:
        for service in services.values():
            service.close()
        with psycopg.connect(autocommit=True, **POSTGRES) as conn:
            for office in settings.office_shards:
                schema = sql.Identifier(office_schema(settings, office))
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema))


@pytest.mark.postgres
def test_each_office_writes_to_a_schema_of_its_own(
    sharded: tuple[Settings, dict[str, AkteService]],
) -> None:
    settings, services = sharded
    assert set(services) == {"abh-a", "abh-b"}
    a, b = services["abh-a"], services["abh-b"]
    opened = a.open_case(office_id="abh-a", master_data=MASTER_DATA, by="sb-01")
    for _ in range(3):
        b.open_case(office_id="abh-b", master_data=MASTER_DATA, by="sb-01")
    # Each shard has its own log (positions start at 1 in each) and event table.
    assert a.recorder.max_notification_id() == 2  # the case file and its file number
    assert b.recorder.max_notification_id() == 6
    assert a.get_case(opened.case_id).office_id == "abh-a"
    with pytest.raises(CaseNotFound):
        b.get_case(opened.case_id)
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        tables = conn.execute(
            "SELECT table_schema FROM information_schema.tables WHERE table_schema = ANY(%s) "
            "AND table_name LIKE '%%events'",
            ([office_schema(settings, o) for o in settings.office_shards],),
        ).fetchall()
    assert {row[0] for row in tables} == {
        f"{settings.postgres_schema}_abh_a",
        f"{settings.postgres_schema}_abh_b",
    }


def test_sharding_needs_postgres_and_offices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="need AKTE_STORE=postgres"):
        build_office_services(Settings(store="sqlite", data_dir=tmp_path, shard_by_office=True))
    settings = Settings(store="postgres", shard_by_office=True, offices=" ,")
    with pytest.raises(ValueError, match="names no office"):
        build_office_services(settings)
    with pytest.raises(ValueError, match="no valid shard schema"):
        office_schema(settings, "abh a;drop")
