"""Whether PostgreSQL keeps the event table's statistics, and ``akte serve`` saying so."""

from __future__ import annotations

import logging

import pytest
from psycopg import sql

from adapters.bootstrap import served_app
from adapters.settings import Settings
from adapters.store.statistics_upkeep import (
    GrowingLogStatistics,
    autovacuum_problem,
    read_autovacuum,
)
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


# ------------------------------------------------------------------ bulk writers


def test_a_bulk_writer_analyzes_first_after_the_threshold_then_each_time_it_doubled() -> None:
    analyzed: list[int] = []
    events = 0
    upkeep = GrowingLogStatistics(
        "autovacuum is off", lambda: analyzed.append(events), first_after=100
    )
    for events in range(0, 2_000, 30):
        upkeep.grown(events)
    assert analyzed == [120, 240, 480, 960, 1920]
    assert upkeep.refreshes == 5


def test_a_bulk_writer_leaves_it_to_autovacuum_where_it_is_on() -> None:
    analyzed: list[int] = []
    upkeep = GrowingLogStatistics(None, lambda: analyzed.append(1), first_after=1)
    for events in range(0, 10_000, 100):
        upkeep.grown(events)
    assert analyzed == []


def test_the_bulk_writers_upkeep_reads_the_store(settings: Settings, service: AkteService) -> None:
    upkeep = GrowingLogStatistics.of(service.recorder, first_after=1)
    if settings.store != "postgres":
        assert upkeep.problem is None  # SQLite: nothing to keep
        return
    datastore = service.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(
            sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                _events_table(service)
            )
        )
    upkeep = GrowingLogStatistics.of(service.recorder, first_after=1)
    assert upkeep.problem is not None
    assert "autovacuum is off" in upkeep.problem
    assert _analyzed_tables(service) == set()

    upkeep.grown(1)

    # Every table of the shard, the event table and the hash chain among them.
    analyzed = _analyzed_tables(service)
    assert {service.recorder.events_table_name, "akte_event_chain"} <= analyzed  # type: ignore[attr-defined]


def _analyzed_tables(service: AkteService) -> set[str]:
    datastore = service.recorder.datastore  # type: ignore[attr-defined]
    with datastore.transaction(commit=False) as cursor:
        cursor.execute(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND last_analyze IS NOT NULL",
            (datastore.schema,),
        )
        return {row["relname"] for row in cursor.fetchall()}
