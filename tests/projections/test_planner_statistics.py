"""A rebuild leaves its tables with fresh planner statistics (ANALYZE), on both stores."""

from __future__ import annotations

import sqlite3

import psycopg

from adapters.settings import Settings
from adapters.views.store import SQLITE_FILE_NAME, TABLE_PREFIX
from projections.read_models import READ_MODELS
from service import AkteService
from tests.conftest import POSTGRES
from tests.support.projections import MASTER_DATA, engine_for, views_for


def analysed_tables(settings: Settings) -> set[str]:
    """The view tables the store holds planner statistics for."""
    if settings.store == "sqlite":
        connection = sqlite3.connect(settings.data_dir / SQLITE_FILE_NAME)
        try:
            if not connection.execute(
                "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).fetchall():
                return set()
            rows = connection.execute("SELECT DISTINCT tbl FROM sqlite_stat1").fetchall()
        finally:
            connection.close()
        return {row[0] for row in rows}
    with psycopg.connect(**POSTGRES) as server:
        rows = server.execute(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND last_analyze IS NOT NULL",
            (settings.postgres_schema,),
        ).fetchall()
    return {row[0] for row in rows}


def test_a_rebuild_analyses_every_table_it_rebuilt(
    service: AkteService, settings: Settings
) -> None:
    for _ in range(3):
        opened = service.open_case(office_id="abh-a", master_data=MASTER_DATA, by="sb-01")
        service.receive_procedure(
            opened.case_id,
            expected_version=opened.version,
            by="sb-01",
            channel="mail",
            topic="blue_card",
        )
    with views_for(settings) as views, engine_for(service, views, READ_MODELS) as engine:
        assert not analysed_tables(settings) & {TABLE_PREFIX + "unassigned_procedures"}
        engine.rebuild()
    rebuilt = {
        TABLE_PREFIX + schema.name for projection in READ_MODELS for schema in projection.schemas
    }
    if settings.store == "sqlite":
        # SQLite keeps no statistics for an empty table.
        rebuilt = {table for table in rebuilt if has_rows(settings, table)}
        assert TABLE_PREFIX + "unassigned_procedures" in rebuilt
    assert analysed_tables(settings) >= rebuilt


def has_rows(settings: Settings, table: str) -> bool:
    connection = sqlite3.connect(settings.data_dir / SQLITE_FILE_NAME)
    try:
        return bool(connection.execute(f'SELECT 1 FROM "{table}" LIMIT 1').fetchall())
    finally:
        connection.close()
