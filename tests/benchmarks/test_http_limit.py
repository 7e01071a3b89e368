"""The HTTP-limit benchmark (``bin/bench-http-limit``): its parts, and one tiny run end to
end so it cannot rot. It checks what it reports, never how fast anything is."""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from benchmarks.harness import PostgresParams
from benchmarks.http_limit import (
    FLOOR_SCHEMA_PREFIX,
    OTHER,
    ROWS,
    _caller_times,
    _self_times,
    by_category,
    categorise,
    cpu_seconds,
    create_floor_table,
    drop_floor_schema,
    main,
    minimal_app,
    postgres_cpu,
    top_callers,
)


def test_work_is_sorted_by_the_file_its_code_is_in() -> None:
    site = "/venv/lib/python3.11/site-packages"
    assert categorise("/work/main/adapters/store/hash_chain.py") == "hash chain"
    assert categorise("/work/main/adapters/store/recorders.py").startswith("store: Akte")
    assert categorise(f"{site}/eventsourcing/persistence.py") == "store: eventsourcing library"
    assert categorise(f"{site}/psycopg/cursor.py") == "store: psycopg driver and pool"
    assert categorise(f"{site}/fastapi/dependencies/utils.py") == "dependency solving (FastAPI)"
    assert categorise(f"{site}/fastapi/encoders.py") == "serialisation (FastAPI encoders)"
    assert categorise(f"{site}/pydantic/main.py") == "validation (pydantic)"
    assert categorise(f"{site}/anyio/to_thread.py").startswith("thread hop")
    assert categorise(f"{site}/uvicorn/protocols/http/h11_impl.py").startswith("HTTP server")
    assert categorise("/work/main/domain/case_file.py") == "domain"
    assert categorise("/usr/lib/python3.11/json/encoder.py") == OTHER
    # Whatever a projection thread runs is read-model work.
    assert categorise(f"[akte-projections]{site}/psycopg/cursor.py").startswith("read models")


def _hash_a_lot() -> str:
    digest = b""
    for n in range(20_000):
        digest = hashlib.sha256(digest + str(n).encode()).digest()
    return digest.hex()


def test_a_builtins_cpu_counts_for_the_python_function_that_called_it() -> None:
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    _hash_a_lot()
    profile.disable()
    functions = _self_times([("MainThread", profile)])
    mine = next(label for label in functions if label.endswith(":_hash_a_lot"))
    assert mine.startswith(__file__)
    assert functions[mine] > 0
    assert not any(label.startswith("<built-in") for label in functions)
    categories = by_category(functions)
    assert categories[OTHER] >= functions[mine]  # tests/ is none of the named kinds


def _calls_the_hashing() -> str:
    return _hash_a_lot()


def test_the_callers_of_a_costly_function_are_named() -> None:
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    _calls_the_hashing()
    profile.disable()
    callers = _caller_times([("MainThread", profile)])
    hashing = next(key for key in callers if key.split(" <- ")[0].endswith(":_hash_a_lot"))
    callee = hashing.split(" <- ")[0]
    found = top_callers(callers, [callee])
    assert [caller.rsplit(":", 1)[1] for caller, _ in found[callee]] == ["_calls_the_hashing"]


def test_cpu_seconds_reads_this_process() -> None:
    before = cpu_seconds(os.getpid())
    _hash_a_lot()
    assert cpu_seconds(os.getpid()) >= before >= 0


async def _call(app: Any, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path}, receive, send)
    start = sent[0]
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return int(start["status"]), headers


async def _lifespan(app: Any, phase: str) -> None:
    messages = [{"type": f"lifespan.{phase}"}]
    answers: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "lifespan.shutdown"}

    async def send(message: dict[str, Any]) -> None:
        answers.append(message)
        if message["type"] == "lifespan.startup.complete":
            raise _Started

    with contextlib.suppress(_Started):
        await app({"type": "lifespan"}, receive, send)
    assert answers[-1]["type"] == f"lifespan.{phase}.complete"


class _Started(Exception):
    """Leaves the lifespan loop after start-up (uvicorn keeps it waiting)."""


def test_the_floor_app_without_a_database_answers_201_and_counts_versions() -> None:
    app = minimal_app(None, "", 1)

    async def scenario() -> list[tuple[int, dict[str, str]]]:
        return [
            await _call(app, "POST", "/aggregates/0/events", b'{"text":"x"}'),
            await _call(app, "POST", "/aggregates/0/events", b'{"text":"x"}'),
            await _call(app, "POST", "/aggregates/1/events", b'{"text":"x"}'),
            await _call(app, "GET", "/healthz"),
        ]

    answers = asyncio.run(scenario())
    assert [status for status, _ in answers] == [201, 201, 201, 200]
    assert [headers["etag"] for _, headers in answers[:3]] == ['"1"', '"2"', '"1"']


@pytest.mark.postgres
def test_the_floor_app_writes_one_row_per_post_and_commits_it() -> None:
    pg = PostgresParams()
    schema = f"{FLOOR_SCHEMA_PREFIX}{uuid.uuid4().hex[:10]}"
    create_floor_table(pg, schema)
    try:
        conninfo = f"host={pg.host} port={pg.port} user={pg.user} dbname={pg.dbname}"
        app = minimal_app(conninfo, schema, 1)

        async def scenario() -> list[int]:
            await _lifespan(app, "startup")
            try:
                return [
                    (await _call(app, "POST", f"/aggregates/{n % 2}/events", b"{}"))[0]
                    for n in range(3)
                ]
            finally:
                await _lifespan(app, "shutdown")

        assert asyncio.run(scenario()) == [201, 201, 201]
        with pg.connect() as conn:  # another connection: the rows were committed
            query = sql.SQL(
                "SELECT originator_version, octet_length(state) FROM {}.stored_events "
                "ORDER BY notification_id"
            ).format(sql.Identifier(schema))
            rows = conn.execute(query).fetchall()
        assert [version for version, _ in rows] == [1, 1, 2]
        assert all(size >= 600 for _, size in rows)
    finally:
        drop_floor_schema(pg, schema)


def _limit_schemas() -> set[str]:
    with PostgresParams().connect() as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
            (FLOOR_SCHEMA_PREFIX + "%",),
        ).fetchall()
    return {str(row[0]) for row in rows}


@pytest.mark.long
@pytest.mark.postgres
def test_a_tiny_run_reports_every_row_a_ratio_to_the_floor_and_a_profile(
    tmp_path: Path,
) -> None:
    out = tmp_path / "limit.json"
    printed: list[str] = []
    schemas_before = _limit_schemas()
    code = main(
        [
            "--concurrency", "2", "--requests", "200", "--warmup", "4", "--repeats", "1",
            "--profile-requests", "40", "--json", str(out),
        ],
        say=printed.append,
    )  # fmt: skip
    report = json.loads(out.read_text())
    rows = report["rows"]
    assert code == 0, {key: row["error_samples"] for key, row in rows.items()}
    assert set(rows) == {key for key, _ in ROWS}
    for key, row in rows.items():
        assert row["errors"] == 0, key
        assert row["requests"] == 200, key
        assert 0 < row["p50_ms"] <= row["p99_ms"], key
        if key in ("bare_save", "service"):
            assert row["server_cpu_ms"] is None
        else:
            assert row["server_cpu_ms"] > 0, key
    # Every HTTP row's PostgreSQL sessions are found; the app without a database has none.
    # (Counted, not timed: 200 tiny inserts can stay under one 10 ms clock tick.)
    assert rows["floor_db"]["postgres_sessions"] > 0
    assert rows["akte"]["postgres_sessions"] > 0
    assert rows["floor_http"]["postgres_sessions"] == 0
    for key in ("floor_db", "akte", "floor_http"):
        assert rows[key]["postgres_cpu_ms"] >= 0, key
    assert rows["floor_http"]["postgres_cpu_ms"] == 0
    floor = rows["floor_db"]["rate"]
    assert report["akte_share_of_floor"] == pytest.approx(rows["akte"]["rate"] / floor)
    assert report["targets"]["rate_met"] == (rows["akte"]["rate"] >= 500)
    categories = report["profile"]["categories"]
    # The profiled requests ran through the whole stack: HTTP, framework and store.
    for kind in (
        "HTTP server (uvicorn, h11)",
        "dependency solving (FastAPI)",
        "store: psycopg driver and pool",
        "store: eventsourcing library",
        "domain",
    ):
        assert categories.get(kind, 0) > 0, kind
    text = printed[0]
    assert "Akte / floor (a):" in text
    assert ("MET" in text) or ("MISSED" in text)
    assert _limit_schemas() <= schemas_before, "the floor's schema is dropped afterwards"


@pytest.mark.postgres
def test_the_postgresql_session_serving_a_process_is_found_by_its_client_port() -> None:
    pg = PostgresParams()
    with pg.connect() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        backends = postgres_cpu(pg, os.getpid())
    assert row[0] in backends
    assert backends[row[0]] >= 0
