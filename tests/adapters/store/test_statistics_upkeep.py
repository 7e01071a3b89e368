"""Whether PostgreSQL keeps the event table's statistics, and ``akte serve`` saying so."""

from __future__ import annotations

import logging

import pytest
from psycopg import sql

from adapters.bootstrap import served_app
from adapters.settings import Settings
from adapters.store.statistics_upkeep import autovacuum_problem, read_autovacuum
from service import AkteService


def test_autovacuum_on_for_the_server_and_the_table_is_no_problem() -> None:
    assert autovacuum_problem("on", None) is None
    assert autovacuum_problem("on", ["fillfactor=90"]) is None


def test_autovacuum_off_for_the_server_is_named() -> None:
    problem = autovacuum_problem("off", None)
    assert problem is not None
    assert "autovacuum is off on the PostgreSQL server" in problem
    assert "ANALYZE" in problem


def test_autovacuum_off_for_the_event_table_is_named() -> None:
    problem = autovacuum_problem("on", ["autovacuum_enabled=false"])
    assert problem is not None
    assert "autovacuum is off for the event table" in problem


def _events_table(service: AkteService) -> sql.Composable:
    recorder = service.recorder
    schema = recorder.datastore.schema  # type: ignore[attr-defined]
    return sql.Identifier(schema, recorder.events_table_name)  # type: ignore[attr-defined]


def test_the_reading_is_what_the_server_says(settings: Settings, service: AkteService) -> None:
    if settings.store != "postgres":
        assert read_autovacuum(service.recorder) is None  # nothing to keep on SQLite
        return
    datastore = service.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.execute("SHOW autovacuum")
        server = cursor.fetchone()["autovacuum"]
        cursor.execute(
            sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                _events_table(service)
            )
        )

    reading = read_autovacuum(service.recorder)
    assert reading is not None
    setting, options = reading
    assert setting == server
    assert options is not None
    assert "autovacuum_enabled=false" in options  # beside Akte's own thresholds


def test_akte_serve_warns_when_the_event_tables_statistics_are_not_kept(
    settings: Settings, service: AkteService, caplog: pytest.LogCaptureFixture
) -> None:
    if settings.store == "postgres":
        datastore = service.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=True) as cursor:
            cursor.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    _events_table(service)
                )
            )
    with caplog.at_level(logging.WARNING, logger="akte.store"), served_app(settings, service):
        pass

    warned = [r.getMessage() for r in caplog.records if r.name == "akte.store"]
    if settings.store == "postgres":
        assert len(warned) == 1
        assert "autovacuum is off" in warned[0]
    else:
        assert warned == []  # SQLite keeps no such statistics to lose
