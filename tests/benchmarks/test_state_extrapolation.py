"""The state extrapolation (``bin/bench-state``): its arithmetic on given points, and a
measurement that goes on after a stop.

No timings: the measured points are given, and the tests check the straight lines, the
scaling to offices and years, the grouping of tables and the printed state; the figures
live in ``docs/performance/state.md``. The last test measures a tiny year on PostgreSQL.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks.harness import PostgresParams
from benchmarks.state_extrapolation import (
    OfficeKind,
    Point,
    bytes_by_kind,
    extrapolate,
    fit,
    main,
    power_fit,
    servers_needed,
    shard_footprint,
)
from projections.read_models import READ_MODELS


def _point(events: int, procedures: int, rebuild: float, events_bytes: int) -> Point:
    return Point(
        scale=procedures / 150_000,
        events=events,
        procedures=procedures,
        simulate_seconds=1.0,
        bytes_by_kind={"events": events_bytes, "read models": 1_000 + events},
        rebuild_seconds={"statistics": rebuild, "workload": rebuild / 2},
        verify_events_per_second=10_000.0,
    )


# Two points on exact lines: 7 events per procedure, 0.001 s and 500 bytes per event
# plus a fixed 2 s and 10,000 bytes.
POINTS = (
    _point(70_000, 10_000, 2 + 70, 10_000 + 500 * 70_000),
    _point(280_000, 40_000, 2 + 280, 10_000 + 500 * 280_000),
)


def test_fit_goes_through_two_points_and_one_point_through_the_origin() -> None:
    line = fit([1.0, 3.0], [5.0, 9.0])
    assert line.slope == pytest.approx(2.0)
    assert line.intercept == pytest.approx(3.0)
    alone = fit([4.0], [10.0])
    assert alone.intercept == 0.0
    assert alone.at(8.0) == pytest.approx(20.0)
    with pytest.raises(ValueError, match="at least one"):
        fit([], [])


def test_power_fit_finds_the_exponent_of_a_figure_that_grows_faster_than_the_events() -> None:
    power = power_fit([100.0, 400.0], [1.0, 16.0])
    assert power.exponent == pytest.approx(2.0)
    assert power.at(800.0) == pytest.approx(64.0)
    assert power_fit([100.0], [3.0]).exponent == 1.0
    state = (OfficeKind("one", 10_000, 1),)
    squared = (
        replace(POINTS[0], rebuild_seconds={"statistics": 1.0, "workload": 1.0}),
        replace(POINTS[1], rebuild_seconds={"statistics": 16.0, "workload": 4.0}),
    )
    estimate = extrapolate(squared, state, years=2)  # 140,000 events: twice the first point
    assert estimate.rebuild_exponents["statistics"] == pytest.approx(2.0)
    assert estimate.offices[0].rebuild_seconds_power["statistics"] == pytest.approx(4.0)
    assert estimate.offices[0].rebuild_seconds_power["workload"] == pytest.approx(2.0)


def test_offices_and_years_scale_every_figure_along_the_lines() -> None:
    state = (OfficeKind("small", 20_000, 3), OfficeKind("large", 300_000, 1))

    estimate = extrapolate(POINTS, state, years=10)

    small, large = estimate.offices
    assert small.events_per_year == pytest.approx(140_000)
    assert small.events == pytest.approx(1_400_000)
    assert large.events == pytest.approx(21_000_000)
    assert estimate.events == pytest.approx(3 * 1_400_000 + 21_000_000)
    assert estimate.events_per_reference_year == pytest.approx(1_050_000)
    assert large.bytes_by_kind["events"] == pytest.approx(10_000 + 500 * 21_000_000)
    assert large.rebuild_seconds["statistics"] == pytest.approx(2 + 21_000)
    assert large.rebuild_seconds["workload"] == pytest.approx(1 + 10_500)
    slowest, seconds = large.slowest_rebuild
    assert slowest == "statistics"
    assert seconds == pytest.approx(21_002.0)
    assert large.rebuild_all_seconds == pytest.approx(21_002 + 10_501)
    assert large.verify_seconds == pytest.approx(2_100)
    assert estimate.bytes == pytest.approx(3 * small.bytes + large.bytes)


def test_more_years_mean_proportionally_more_events() -> None:
    state = (OfficeKind("reference", 150_000, 1),)
    one = extrapolate(POINTS, state, years=1).offices[0]
    ten = extrapolate(POINTS, state, years=10).offices[0]
    assert ten.events == pytest.approx(10 * one.events)


def test_shards_are_packed_onto_servers_largest_first_with_room_for_a_rebuild() -> None:
    state = (OfficeKind("small", 20_000, 4), OfficeKind("large", 300_000, 2))
    estimate = extrapolate(POINTS, state, years=10)
    small, large = estimate.offices
    # A rebuild builds the read models beside the ones in service: counted twice.
    assert shard_footprint(large) == pytest.approx(large.bytes + (1_000 + 21_000_000))

    # Room for one large shard and two small ones per server.
    disk = shard_footprint(large) + 2 * shard_footprint(small) + 1

    assert servers_needed(estimate, disk) == [
        ["large", "small", "small"],
        ["large", "small", "small"],
    ]
    assert len(servers_needed(estimate, shard_footprint(small))) == 6


def test_tables_are_grouped_by_the_part_of_the_state_they_hold() -> None:
    tables = {
        "akte_events": 100,
        "akte_snapshots": 10,
        "akte_event_chain": 20,
        "akte_event_chain_seal": 1,
        "akte_data_keys": 5,
        "akte_master_key_retirements": 1,
        "akte_view_expiring_documents": 7,
        "akte_view_unreviewed_uploads": 3,
        "akte_idempotency_keys": 2,
    }
    assert bytes_by_kind(tables) == {
        "events": 110,
        "hash chain": 21,
        "key store": 6,
        "read models": 10,
        "other": 2,
    }


def test_extrapolate_prints_the_state_from_a_saved_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = {
        "points": [
            {
                "scale": p.scale,
                "events": p.events,
                "procedures": p.procedures,
                "simulate_seconds": p.simulate_seconds,
                "bytes_by_kind": p.bytes_by_kind,
                "rebuild_seconds": p.rebuild_seconds,
                "verify_events_per_second": p.verify_events_per_second,
            }
            for p in POINTS
        ],
        "tables": [{"tables": {"akte_events": p.events, "akte_view_x": 1}} for p in POINTS],
    }
    path = tmp_path / "points.json"
    path.write_text(json.dumps(saved))

    assert main(["extrapolate", str(path), "--years", "10"]) == 0

    printed = capsys.readouterr().out
    assert "40 offices, 10 years" in printed
    assert "70,000, 280,000 events" in printed
    assert "reference office year: 1,050,000 events" in printed
    # The saved tables are grouped again: events as the tables say, not as the points.
    assert "events 0.0 GiB" in printed
    assert "statistics" in printed


def _schema_exists(pg: PostgresParams, schema: str) -> bool:
    with pg.connect() as conn:
        row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone()
    return row is not None


def test_a_run_stopped_after_its_simulation_goes_on_from_the_schema_it_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from projections import generations

    pg = PostgresParams()
    out = tmp_path / "points.json"
    rebuild = generations.rebuild_beside
    calls: list[str] = []

    def rebuild_then_stop(log: Any, writer: Any, projections: Any) -> Any:
        calls.append(projections[0].name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the operator stops the run during its second rebuild
        return rebuild(log, writer, projections)

    monkeypatch.setattr(generations, "rebuild_beside", rebuild_then_stop)
    with pytest.raises(KeyboardInterrupt):
        main(["measure", "--scales", "0.002", "--json", str(out), "--quiet", "--first", "workload"])

    stopped = json.loads(out.read_text())
    partial = stopped["partial"]
    try:
        assert stopped["points"] == []
        assert partial["simulated"]
        assert partial["events"] > 0
        assert partial["verify_events_per_second"] > 0
        assert list(partial["rebuild_seconds"]) == calls[:1] == ["workload"]  # --first
        assert _schema_exists(pg, partial["schema"])  # kept, with its simulated year

        monkeypatch.setattr(generations, "rebuild_beside", rebuild)
        assert main(["measure", "--resume", str(out), "--quiet"]) == 0
        assert not _schema_exists(pg, partial["schema"])  # dropped once complete
    finally:
        with pg.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{partial["schema"]}" CASCADE')

    done = json.loads(out.read_text())
    assert done["partial"] is None
    [point] = done["points"]
    assert point["events"] == partial["events"]  # the same year, not simulated again
    assert set(point["rebuild_seconds"]) == {p.name for p in READ_MODELS}
    assert point["rebuild_seconds"][calls[0]] == partial["rebuild_seconds"][calls[0]]


@pytest.mark.postgres
def test_the_rebuilds_run_without_the_simulating_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As ``akte projections rebuild`` does: every full collection the engine makes walks
    the whole heap, and the simulating service's case cache was 2.9 GB at 10 million
    events."""
    from adapters import bootstrap
    from adapters.settings import Settings
    from projections import generations

    build = bootstrap.build_service
    services: list[tuple[Any, Settings]] = []
    closed: list[Any] = []

    def recorded_build(settings: Settings, **kwargs: Any) -> Any:
        service = build(settings, **kwargs)
        close = service.close

        def recorded_close() -> None:
            closed.append(service)
            close()

        service.close = recorded_close  # type: ignore[method-assign]
        services.append((service, settings))
        return service

    seen: list[tuple[bool, bool, int]] = []

    def rebuild_seen(log: Any, writer: Any, projections: Any) -> Any:
        simulating, _ = services[0]
        rebuilding, settings = services[-1]
        seen.append((rebuilding is not simulating, simulating in closed, settings.case_cache_size))
        return 0

    monkeypatch.setattr(bootstrap, "build_service", recorded_build)
    monkeypatch.setattr(generations, "rebuild_beside", rebuild_seen)
    out = tmp_path / "points.json"
    assert main(["measure", "--scales", "0.002", "--json", str(out), "--quiet"]) == 0

    # Another service, the simulating one closed, and the cache a deployment has.
    assert len(seen) == len(READ_MODELS)
    assert set(seen) == {(True, True, Settings().case_cache_size)}


def test_measure_refuses_an_unknown_read_model_before_it_simulates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "points.json"
    assert main(["measure", "--json", str(out), "--first", "worklod"]) == 2
    assert "worklod" in capsys.readouterr().err
    assert not out.exists()


def test_measure_refuses_a_path_it_cannot_write_before_it_simulates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "missing" / "points.json"
    assert main(["measure", "--scales", "0.002", "--json", str(out)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_a_resume_goes_on_with_the_scales_a_stopped_run_had_left(tmp_path: Path) -> None:
    out = tmp_path / "points.json"
    # As a run of --scales 0.001,0.002 leaves it when stopped while simulating 0.002.
    out.write_text(json.dumps({"points": [], "tables": [], "partial": None, "scales_left": []}))
    assert main(["measure", "--resume", str(out), "--quiet"]) == 2  # nothing left

    out.write_text(
        json.dumps({"points": [], "tables": [], "partial": None, "scales_left": [0.002]})
    )
    assert main(["measure", "--resume", str(out), "--quiet"]) == 0

    done = json.loads(out.read_text())
    assert [point["scale"] for point in done["points"]] == [0.002]
    assert done["scales_left"] == []
