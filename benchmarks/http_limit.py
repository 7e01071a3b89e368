"""How close Akte's HTTP write path is to what this machine can do at all.

Run ``bin/bench-http-limit`` (or ``python -m benchmarks.http_limit``) from the repository
root::

    bin/bench-http-limit [--concurrency 8] [--requests 2000] [--seconds 60]
                         [--repeats 2] [--profile-requests 400] [--json OUT]

One run measures, with the same load generator (``--concurrency`` client threads in this
process, one ``httpx`` client each, as ``benchmarks/loadtest.py`` does) and one after
another, repeated ``--repeats`` times in rounds (A, B, C, A, B, C, ...) so the load of
a shared machine hits every row alike:

a) **floor**: a minimal ASGI app (no framework) under uvicorn, started exactly as
   ``akte serve`` starts uvicorn (one process, the same arguments), answering each POST
   with 201 after one INSERT of an event-sized row and its COMMIT through a psycopg pool:
   the cost of one durable HTTP write on this machine;
b) the same minimal app without the database: the cost of HTTP alone;
c) the library's bare ``Application.save`` and Akte's service (no HTTP), one thread, the
   command plan of ``benchmarks/harness.py``;
d) Akte's real write path: ``POST /cases/{id}/notes`` with a token and ``If-Match``, one
   case file per client thread, against ``akte serve`` on a fresh store.

For each row: commands/s, p50/p99 latency, the server process's CPU per request (utime +
stime from ``/proc/<pid>/stat`` before and after) and this process's (the load
generator's) CPU per request. Akte is reported as a share of the floor (a), and MET or
MISSED against 500 commands/s and p99 under 50 ms.

``--profile-requests N`` (0: off) then starts Akte once more with a CPU profiler in the
server process (``cProfile`` per thread on each thread's own CPU clock, so waiting on
PostgreSQL costs nothing) and reports where the CPU of N note requests goes, by kind
of work (validation, dependency solving, serialisation, store, hash chain, ...).

PostgreSQL: 127.0.0.1:5432, user postgres, database test. ``--pg-*`` (or
``AKTE_TEST_POSTGRES_*``) move the floor and the library rows; Akte's server, started as
``bin/load-test`` starts it, always uses that default. Akte works in a schema
``akte_load_*`` and the floor in a schema ``akte_limit_*``, both dropped afterwards.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx2 as httpx
from psycopg import sql

from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from benchmarks.cluster import (
    ROOT,
    ApiProcess,
    ChildProcess,
    ProcessFailed,
    free_port,
    issue_token,
    stop_all,
)
from benchmarks.harness import (
    BenchConfig,
    PostgresParams,
    add_postgres_arguments,
    command_plan,
    fresh_store,
    postgres_from,
    run_bare_commands,
    run_service_commands,
)
from benchmarks.loadtest import OFFICE, fresh_settings, percentile, served

TARGET_RATE: Final = 500.0
TARGET_P99_MS: Final = 50.0
FLOOR_SCHEMA_PREFIX: Final = "akte_limit_"
STATE_BYTES: Final = 600
"""Size of the floor's stored row payload: about one encrypted note event of Akte."""
NOTE_TEXT: Final = (
    "Vorsprache am Schalter: Antragstellerin legt Reisepass und Meldebescheinigung vor; "
    "Arbeitsvertrag fehlt noch, wird nachgereicht."
)
MINIMAL_APP: Final = "import sys; from benchmarks.http_limit import serve_minimal; serve_minimal()"
PROFILED_AKTE: Final = (
    "import sys; from benchmarks.http_limit import serve_profiled; serve_profiled()"
)
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------------ the floor app


def _floor_table(schema: str) -> sql.Composed:
    return sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier("stored_events"))


def create_floor_table(pg: PostgresParams, schema: str) -> None:
    """A table shaped like the library's stored events (id, originator, version, topic,
    state; a sequence for the notification id, the primary key on the originator)."""
    with pg.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (notification_id bigserial, originator_id uuid NOT NULL, "
                "originator_version bigint NOT NULL, topic text NOT NULL, state bytea, "
                "PRIMARY KEY (originator_id, originator_version))"
            ).format(_floor_table(schema))
        )


def drop_floor_schema(pg: PostgresParams, schema: str) -> None:
    with pg.connect() as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def minimal_app(conninfo: str | None, schema: str, pool_size: int) -> Any:
    """A bare ASGI callable: ``GET /healthz`` 200; ``POST`` anything 201, after one
    INSERT + COMMIT when ``conninfo`` is given. No framework, no validation."""
    from psycopg_pool import AsyncConnectionPool

    pool: AsyncConnectionPool | None = None
    insert = sql.SQL(
        "INSERT INTO {} (originator_id, originator_version, topic, state) "
        "VALUES (%s, %s, %s, %s) RETURNING notification_id"
    ).format(_floor_table(schema))
    versions: dict[bytes, int] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal pool
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if conninfo is not None:
                        pool = AsyncConnectionPool(
                            conninfo, min_size=pool_size, max_size=pool_size, open=False
                        )
                        await pool.open(wait=True)
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if pool is not None:
                        await pool.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] != "POST":
            await _answer(send, 200, b'{"status":"ok"}', b"1")
            return
        # One aggregate per client: the path names it, the version counts up.
        key = scope["path"].encode()
        version = versions.get(key, 0) + 1
        versions[key] = version
        position = 0
        if pool is not None:
            originator = uuid.uuid5(uuid.NAMESPACE_URL, scope["path"])
            state = body.ljust(STATE_BYTES, b" ")
            async with pool.connection() as conn:  # commits on leaving the block
                cursor = await conn.execute(insert, (originator, version, "note_added", state))
                row = await cursor.fetchone()
                position = int(row[0]) if row else 0
        payload = json.dumps({"version": version, "position": position}).encode()
        await _answer(send, 201, payload, str(version).encode())

    return app


async def _answer(send: Any, status: int, payload: bytes, version: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"etag", b'"' + version + b'"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def serve_minimal() -> None:
    """The floor app's process: uvicorn as ``akte serve`` runs it (adapters/cli/main.py)."""
    import uvicorn

    conninfo = os.environ.get("LIMIT_CONNINFO") or None
    app = minimal_app(
        conninfo, os.environ.get("LIMIT_SCHEMA", ""), int(os.environ.get("LIMIT_POOL", "5"))
    )
    port = int(os.environ["LIMIT_PORT"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


class MinimalProcess(ChildProcess):
    """The floor app on 127.0.0.1 and a free port, with or without the database."""

    def __init__(self, log: Path, *, conninfo: str | None, schema: str, pool_size: int) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AKTE_", "LIMIT_"))}
        env |= {
            "PYTHONPATH": str(ROOT),
            "LIMIT_PORT": str(self.port),
            "LIMIT_SCHEMA": schema,
            "LIMIT_POOL": str(pool_size),
            "LIMIT_CONNINFO": conninfo or "",
        }
        super().__init__([], env, log)

    def start(self) -> None:
        _start(self, MINIMAL_APP)

    def wait_ready(self, timeout: float = 60.0) -> None:
        _wait_ready(self, self.base_url, timeout)


def _start(process: ChildProcess, code: str) -> None:
    process.log.parent.mkdir(parents=True, exist_ok=True)
    with process.log.open("ab") as out:
        process.popen = subprocess.Popen(
            [sys.executable, "-c", code, *process.args],
            cwd=ROOT,
            env=dict(process.env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_ready(process: ChildProcess, base_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, trust_env=False, timeout=2) as client:
        while True:
            process.check_alive()
            try:
                if client.get("/healthz").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise ProcessFailed(f"server not up within {timeout:.0f} s")
            time.sleep(0.1)


# ------------------------------------------------------------------ the profiler

# Where a function's own CPU time goes, by the file its code is in; the first match wins.
CATEGORIES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("hash chain", ("adapters/store/hash_chain.py",)),
    (
        "encryption (personal data)",
        ("adapters/personal_data/", "cryptography/", "eventsourcing/cipher.py", "_cffi"),
    ),
    ("store: Akte adapters (recorders, transcoding)", ("adapters/store/",)),
    ("store: eventsourcing library", ("eventsourcing/",)),
    ("store: psycopg driver and pool", ("psycopg", "psycopg_pool")),
    ("read models (projection code)", ("projections/", "adapters/views/")),
    ("domain", ("/domain/",)),
    ("service", ("/service",)),
    ("validation (pydantic)", ("pydantic",)),
    ("dependency solving (FastAPI)", ("fastapi/dependencies/",)),
    ("serialisation (FastAPI encoders)", ("fastapi/encoders.py",)),
    ("FastAPI routing and responses", ("fastapi/",)),
    ("Akte HTTP adapters (auth, middleware, deps)", ("adapters/http/",)),
    ("token check (JWT)", ("jwt/", "joserfc", "authlib")),
    ("Starlette (middleware, routing)", ("starlette/",)),
    (
        "thread hop and event loop (anyio, asyncio, threads)",
        ("anyio/", "asyncio/", "concurrent/futures/", "threading.py", "queue.py", "selectors.py"),
    ),
    ("HTTP server (uvicorn, h11)", ("uvicorn/", "h11/")),
    ("logging and metrics", ("logging/", "prometheus_client/", "opentelemetry")),
)
OTHER: Final = "other"


PROJECTION_THREADS: Final = "akte-projection"
"""Threads whose names start so follow the log for the read models (``akte serve`` with
projections in process): all their CPU is read-model work, whatever code it runs."""
PROJECTIONS: Final = "read models (projection threads in the server)"


def categorise(filename: str) -> str:
    if filename.startswith(f"[{PROJECTION_THREADS}"):
        return PROJECTIONS
    path = filename.replace("\\", "/")
    for name, needles in CATEGORIES:
        if any(needle in path for needle in needles):
            return name
    return OTHER


def _label(code: Any) -> str:
    if isinstance(code, str):
        return code
    return f"{code.co_filename}:{code.co_name}"


def _self_times(profiles: Sequence[tuple[str, cProfile.Profile]]) -> dict[str, float]:
    """Seconds of own CPU by function (``file:function``). A built-in (C) function's
    time goes to the Python function that called it (``hashlib`` under the hash chain
    is hash chain work); built-ins called from C only are not counted. Functions run by
    projection threads are labelled ``[thread name]file:function``."""
    totals: dict[str, float] = {}
    for thread, profile in profiles:
        prefix = f"[{thread}]" if thread.startswith(PROJECTION_THREADS) else ""
        for entry in profile.getstats():
            if isinstance(entry.code, str):
                continue  # counted through its callers below
            label = prefix + _label(entry.code)
            own = entry.inlinetime + sum(
                sub.inlinetime for sub in entry.calls or () if isinstance(sub.code, str)
            )
            totals[label] = totals.get(label, 0.0) + own
    return totals


CALLED_BY: Final = " <- "


def _caller_times(profiles: Sequence[tuple[str, cProfile.Profile]]) -> dict[str, float]:
    """Seconds spent in each Python function (own and below) per caller, keyed
    ``callee <- caller``: who makes a costly function run."""
    totals: dict[str, float] = {}
    for _, profile in profiles:
        for entry in profile.getstats():
            if isinstance(entry.code, str):
                continue
            caller = _label(entry.code)
            for sub in entry.calls or ():
                if not isinstance(sub.code, str):
                    key = _label(sub.code) + CALLED_BY + caller
                    totals[key] = totals.get(key, 0.0) + sub.totaltime
    return totals


def top_callers(
    callers: dict[str, float], functions: Sequence[str], per_function: int = 3
) -> dict[str, list[tuple[str, float]]]:
    """For each of ``functions``, its callers with the most time, most first."""
    found: dict[str, list[tuple[str, float]]] = {name: [] for name in functions}
    for key, seconds in callers.items():
        callee, caller = key.split(CALLED_BY, 1)
        if callee in found and seconds > 0:
            found[callee].append((caller, seconds))
    return {
        name: sorted(rows, key=lambda row: -row[1])[:per_function] for name, rows in found.items()
    }


def by_category(functions: dict[str, float]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for label, seconds in functions.items():
        category = categorise(label.rsplit(":", 1)[0])
        totals[category] = totals.get(category, 0.0) + seconds
    return totals


_profiles: list[tuple[str, cProfile.Profile]] = []
_profiles_lock = threading.Lock()


def _install_thread_profiles() -> None:
    """Every thread started from now on runs under a profiler of its own, timed by that
    thread's CPU clock (``time.thread_time``), so time spent waiting costs nothing.
    ``_bootstrap_inner``, not ``run``: anyio's worker threads (where FastAPI runs sync
    endpoints) override ``run``."""
    original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]

    def profiled_bootstrap(self: threading.Thread) -> None:
        profile = cProfile.Profile(time.thread_time)
        with _profiles_lock:
            _profiles.append((self.name, profile))
        profile.enable()
        try:
            original(self)
        finally:
            profile.disable()

    threading.Thread._bootstrap_inner = profiled_bootstrap  # type: ignore[attr-defined]


def serve_profiled() -> None:
    """``akte serve`` with a profiler per thread. SIGUSR1 takes a first reading,
    SIGUSR2 a second one and writes their difference, by category, to
    ``$LIMIT_PROFILE_OUT`` (JSON); everything before the first reading (start-up,
    warm-up) is left out."""
    from adapters.cli.main import main

    out = Path(os.environ["LIMIT_PROFILE_OUT"])
    main_profile = cProfile.Profile(time.thread_time)
    with _profiles_lock:
        _profiles.append(("main", main_profile))
    first: dict[str, float] = {}
    first_callers: dict[str, float] = {}

    def reading() -> dict[str, float]:
        with _profiles_lock:
            return _self_times(list(_profiles))

    def callers_reading() -> dict[str, float]:
        with _profiles_lock:
            return _caller_times(list(_profiles))

    def on_first(signum: int, frame: object) -> None:
        first.clear()
        first.update(reading())
        first_callers.clear()
        first_callers.update(callers_reading())
        main_profile.enable()  # signal handlers run in the main thread: the event loop's

    def on_second(signum: int, frame: object) -> None:
        main_profile.disable()
        second = reading()
        diff = {k: second[k] - first.get(k, 0.0) for k in second}
        functions = {k: v for k, v in diff.items() if v > 0}
        top = sorted(functions.items(), key=lambda kv: -kv[1])[:25]
        now = callers_reading()
        callers = {k: v - first_callers.get(k, 0.0) for k, v in now.items()}
        payload = {
            "categories": by_category(functions),
            "top": top,
            "callers": top_callers(callers, [label for label, _ in top[:10]]),
        }
        out.write_text(json.dumps(payload, indent=2))

    signal.signal(signal.SIGUSR1, on_first)
    signal.signal(signal.SIGUSR2, on_second)
    _install_thread_profiles()
    sys.exit(main(sys.argv[1:]))


class ProfiledApiProcess(ApiProcess):
    """``akte serve`` (the same settings as :class:`ApiProcess`) with the profiler."""

    def __init__(self, settings: Settings, log: Path, out: Path, **extra: str) -> None:
        super().__init__(settings, log, **extra)
        self.env = {**self.env, "LIMIT_PROFILE_OUT": str(out)}

    def start(self) -> None:
        _start(self, PROFILED_AKTE)


# ------------------------------------------------------------------ load generator


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far (``/proc/<pid>/stat``, all its threads)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children_cpu_seconds(pid: int) -> float:
    """The same for a process's running children: ``akte serve`` on PostgreSQL runs its
    projection runner as a child process, whose CPU is part of each command's cost."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
            total += sum(cpu_seconds(int(child)) for child in children)
        except OSError:
            continue  # the thread or child ended meanwhile
    return total


def _process_tree(pid: int) -> list[int]:
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return pids


def _ports_to(pid: int, port: int) -> set[int]:
    """Local TCP ports of a process's connections to ``port`` (its PostgreSQL sessions)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            if inode in inodes and int(remote.rsplit(":", 1)[1], 16) == port:
                ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def postgres_cpu(pg: PostgresParams, pid: int) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``pid`` or its children
    (found by client port in ``pg_stat_activity``; the server runs on this machine)."""
    ports: set[int] = set()
    for one in _process_tree(pid):
        try:
            ports |= _ports_to(one, pg.port)
        except OSError:
            continue
    if not ports:
        return {}
    with pg.connect() as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE client_port = ANY(%s)", (sorted(ports),)
        ).fetchall()
    backends: dict[int, float] = {}
    for (backend,) in rows:
        try:
            backends[int(backend)] = cpu_seconds(int(backend))
        except OSError:
            continue  # not readable here: the figure leaves it out
    return backends


@dataclass
class Client:
    """One client thread: a path to POST to, its headers, the version it expects."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    version: int | None = None
    """Sent as If-Match and advanced from each answer's ETag (None: no If-Match)."""


@dataclass
class RowResult:
    row: str
    requests: int
    errors: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    server_cpu_ms: float | None
    """Server CPU per request; None where there is no server (the library rows)."""
    children_cpu_ms: float | None
    """CPU per request of the server's child processes (Akte's projection runner)."""
    postgres_cpu_ms: float | None
    """CPU per request of the PostgreSQL backends serving the server and its children
    (read from /proc in clock ticks of 10 ms: a short run can show 0)."""
    client_cpu_ms: float
    error_samples: list[str] = field(default_factory=list)
    postgres_sessions: int | None = None
    """How many PostgreSQL backends served the server and its children during the run
    (None: not a PostgreSQL row)."""


def drive(
    base_url: str, clients: Sequence[Client], *, requests: int, seconds: float, expect: int = 201
) -> tuple[list[float], int, float, list[str]]:
    """Every client in its own thread POSTing until ``requests`` in all or ``seconds``
    have passed; (latencies in ms, errors, elapsed seconds, error samples)."""
    lock = threading.Lock()
    left = [requests]
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = [0]
    samples: list[str] = []

    def take() -> bool:
        with lock:
            if left[0] <= 0 or time.monotonic() >= deadline:
                return False
            left[0] -= 1
            return True

    def work(client: Client) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=base_url, trust_env=False, timeout=30.0) as http:
            while take():
                headers = dict(client.headers)
                if client.version is not None:
                    headers["If-Match"] = f'"{client.version}"'
                began = time.perf_counter()
                try:
                    response = http.post(client.path, json=client.body, headers=headers)
                except httpx.HTTPError as error:
                    with lock:
                        errors[0] += 1
                        samples.append(type(error).__name__)
                    continue
                mine.append((time.perf_counter() - began) * 1000)
                if response.status_code != expect:
                    with lock:
                        errors[0] += 1
                        samples.append(str(response.status_code))
                    continue
                if client.version is not None:
                    client.version = int(response.headers["ETag"].strip('"'))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(c,), daemon=True) for c in clients]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    return latencies, errors[0], time.perf_counter() - started, samples


def measure_http(
    row: str,
    base_url: str,
    pid: int,
    clients: Sequence[Client],
    *,
    requests: int,
    seconds: float,
    pg: PostgresParams | None = None,
) -> RowResult:
    backends_before = postgres_cpu(pg, pid) if pg is not None else {}
    server_before = cpu_seconds(pid)
    children_before = children_cpu_seconds(pid)
    client_before = time.process_time()
    latencies, errors, elapsed, samples = drive(
        base_url, clients, requests=requests, seconds=seconds
    )
    client_cpu = time.process_time() - client_before
    server_cpu = cpu_seconds(pid) - server_before
    children_cpu = children_cpu_seconds(pid) - children_before
    # A session opened during the run counts from its start.
    backends_after = postgres_cpu(pg, pid) if pg is not None else {}
    backend_cpu = sum(cpu - backends_before.get(b, 0.0) for b, cpu in backends_after.items())
    done = max(len(latencies), 1)
    return RowResult(
        row=row,
        requests=len(latencies),
        errors=errors,
        seconds=elapsed,
        rate=len(latencies) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        server_cpu_ms=server_cpu * 1000 / done,
        children_cpu_ms=children_cpu * 1000 / done,
        postgres_cpu_ms=backend_cpu * 1000 / done if pg is not None else None,
        client_cpu_ms=client_cpu * 1000 / done,
        error_samples=samples[:5],
        postgres_sessions=len(backends_after) if pg is not None else None,
    )


def measure_library(
    row: str,
    runner: Callable[..., float],
    config: BenchConfig,
    commands: int,
) -> RowResult:
    """The command plan through ``runner`` on a fresh PostgreSQL schema, one thread."""
    plan = command_plan(commands, max(1, min(20, commands // 5)))
    latencies: list[float] = []
    with fresh_store("postgres", config) as settings:
        before = time.process_time()
        elapsed = runner(settings, plan, max(1, min(20, commands // 5)), latencies)
        cpu = time.process_time() - before
    ms = [s * 1000 for s in latencies]
    return RowResult(
        row=row,
        requests=len(ms),
        errors=0,
        seconds=elapsed,
        rate=len(ms) / elapsed if elapsed > 0 else 0.0,
        p50_ms=percentile(ms, 0.50),
        p99_ms=percentile(ms, 0.99),
        server_cpu_ms=None,
        children_cpu_ms=None,
        postgres_cpu_ms=None,
        client_cpu_ms=cpu * 1000 / max(len(ms), 1),
    )


# ------------------------------------------------------------------ the run


@dataclass(frozen=True)
class LimitConfig:
    concurrency: int = 8
    requests: int = 2000
    """Requests per HTTP measurement (and commands per library measurement)."""
    seconds: float = 60.0
    """Upper bound of one HTTP measurement."""
    warmup: int = 100
    repeats: int = 2
    profile_requests: int = 400
    postgres: PostgresParams = field(default_factory=PostgresParams)
    progress: bool = True


ROWS: Final = (
    ("floor_db", "a) minimal ASGI app, INSERT + COMMIT"),
    ("floor_http", "b) minimal ASGI app, no database"),
    ("bare_save", "c) library Application.save, no HTTP, 1 thread"),
    ("service", "c') Akte service, no HTTP, 1 thread"),
    ("akte", "d) Akte POST /cases/{id}/notes"),
)


@dataclass
class LimitReport:
    config: dict[str, Any]
    load_before: str
    load_after: str
    rows: dict[str, RowResult]
    """Per row, the repeat with the median rate."""
    samples: dict[str, list[RowResult]]
    profile: dict[str, Any] | None
    """Server CPU seconds over the profiled requests: ``categories`` (by kind of work)
    and ``top`` (the functions with most own CPU); None: not profiled."""
    profile_requests: int
    profile_cpu_ms: float | None
    """Server CPU per request under the profiler (from /proc), for its overhead."""

    @property
    def shares_of_floor(self) -> list[float]:
        """Akte's rate over the floor's, per round (each pair measured a minute apart)."""
        return [
            akte.rate / floor.rate
            for akte, floor in zip(self.samples["akte"], self.samples["floor_db"], strict=True)
        ]

    @property
    def share_of_floor(self) -> float:
        return statistics.median(self.shares_of_floor)

    @property
    def rate_met(self) -> bool:
        return self.rows["akte"].rate >= TARGET_RATE

    @property
    def p99_met(self) -> bool:
        return self.rows["akte"].p99_ms < TARGET_P99_MS

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "load_before": self.load_before,
            "load_after": self.load_after,
            "rows": {k: asdict(v) for k, v in self.rows.items()},
            "samples": {k: [asdict(r) for r in v] for k, v in self.samples.items()},
            "akte_share_of_floor": self.share_of_floor,
            "akte_shares_of_floor_per_round": self.shares_of_floor,
            "targets": {
                "rate": TARGET_RATE,
                "p99_ms": TARGET_P99_MS,
                "rate_met": self.rate_met,
                "p99_met": self.p99_met,
            },
            "profile": self.profile,
            "profile_requests": self.profile_requests,
            "profile_cpu_ms": self.profile_cpu_ms,
        }


def _say(config: LimitConfig, message: str) -> None:
    if config.progress:
        print(f"[http-limit {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _conninfo(pg: PostgresParams) -> str:
    return f"host={pg.host} port={pg.port} user={pg.user} dbname={pg.dbname}"


def _floor_clients(concurrency: int) -> list[Client]:
    return [
        Client(f"/aggregates/{n}/events", {}, {"text": NOTE_TEXT}, version=None)
        for n in range(concurrency)
    ]


def akte_clients(base_url: str, issuer: LocalIssuer, concurrency: int) -> list[Client]:
    """One account and one case file (opened over HTTP) per client thread."""
    clients = []
    with httpx.Client(base_url=base_url, trust_env=False, timeout=30.0) as http:
        for n in range(concurrency):
            token = issue_token(issuer, f"sb-hl-{n:02d}", [Role.CASEWORKER, Role.TEAM_LEAD], OFFICE)
            headers = {"Authorization": f"Bearer {token}"}
            opened = http.post(
                "/cases",
                headers=headers,
                json={
                    "surname": "Muster",
                    "given_names": "Erika",
                    "date_of_birth": "1990-01-01",
                    "nationality": "SYR",
                    "passport_number": f"L{uuid.uuid4().hex[:8].upper()}",
                },
            )
            if opened.status_code != 201:
                raise ProcessFailed(f"opening a case file answered {opened.status_code}")
            body = opened.json()
            clients.append(
                Client(
                    f"/cases/{body['case_id']}/notes",
                    headers,
                    {"text": NOTE_TEXT},
                    version=int(body["version"]),
                )
            )
    return clients


@contextmanager
def floor_servers(
    config: LimitConfig, logs: Path
) -> Iterator[tuple[MinimalProcess, MinimalProcess]]:
    """The floor app with the database (its own schema) and without, both started."""
    schema = f"{FLOOR_SCHEMA_PREFIX}{uuid.uuid4().hex[:10]}"
    create_floor_table(config.postgres, schema)
    pool = Settings().postgres_pool_size  # Akte's default pool size
    with_db = MinimalProcess(
        logs / "floor-db.log", conninfo=_conninfo(config.postgres), schema=schema, pool_size=pool
    )
    without = MinimalProcess(logs / "floor-http.log", conninfo=None, schema="", pool_size=pool)
    try:
        for process in (with_db, without):
            process.start()
            process.wait_ready()
        yield with_db, without
    finally:
        stop_all([with_db, without])
        drop_floor_schema(config.postgres, schema)


def _median_row(results: Sequence[RowResult]) -> RowResult:
    ordered = sorted(results, key=lambda r: r.rate)
    return ordered[(len(ordered) - 1) // 2]


def _profile(config: LimitConfig, logs: Path) -> tuple[dict[str, Any], float]:
    """Start Akte with the profiler, drive ``profile_requests`` notes; (CPU seconds by
    category, server CPU ms per request under the profiler)."""
    out = logs / "profile.json"
    with fresh_settings("postgres") as settings:
        from adapters.bootstrap import build_service

        build_service(settings).close()
        issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
        api = ProfiledApiProcess(
            settings, logs / "api-profiled.log", out, projections_in_process="true"
        )
        try:
            api.start()
            api.wait_ready()
            clients = akte_clients(api.base_url, issuer, config.concurrency)
            drive(api.base_url, clients, requests=config.warmup, seconds=config.seconds)
            assert api.popen is not None
            api.popen.send_signal(signal.SIGUSR1)
            time.sleep(0.5)  # the handler runs when the event loop next wakes
            result = measure_http(
                "akte_profiled",
                api.base_url,
                api.pid,
                clients,
                requests=config.profile_requests,
                seconds=config.seconds,
            )
            api.popen.send_signal(signal.SIGUSR2)
            deadline = time.monotonic() + 30
            while not out.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            profile: dict[str, Any] = json.loads(out.read_text())
        finally:
            stop_all([api])
    return profile, result.server_cpu_ms or 0.0


def run(config: LimitConfig) -> LimitReport:
    load_before = loadavg()
    bench = BenchConfig(postgres=config.postgres, progress=False)
    samples: dict[str, list[RowResult]] = {key: [] for key, _ in ROWS}
    with ExitStack() as stack:
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="akte-limit-")))
        _say(config, "starting the floor apps and akte serve (PostgreSQL)")
        floor_db, floor_http = stack.enter_context(floor_servers(config, logs))
        settings = stack.enter_context(fresh_settings("postgres"))
        target = stack.enter_context(served(settings, 1, logs))
        akte_url = target.base_urls[0]
        akte_pid = target.processes[0].pid
        clients = {
            "floor_db": _floor_clients(config.concurrency),
            "floor_http": _floor_clients(config.concurrency),
            "akte": akte_clients(akte_url, target.issuer, config.concurrency),
        }
        servers = {
            "floor_db": (floor_db.base_url, floor_db.pid),
            "floor_http": (floor_http.base_url, floor_http.pid),
            "akte": (akte_url, akte_pid),
        }
        for key, (url, _) in servers.items():
            drive(url, clients[key], requests=config.warmup, seconds=config.seconds)
        for round_number in range(config.repeats):
            for key, title in ROWS:
                _say(config, f"round {round_number + 1}/{config.repeats}: {title}")
                if key in servers:
                    url, pid = servers[key]
                    result = measure_http(
                        key,
                        url,
                        pid,
                        clients[key],
                        requests=config.requests,
                        seconds=config.seconds,
                        pg=config.postgres,
                    )
                else:
                    runner = run_bare_commands if key == "bare_save" else run_service_commands
                    result = measure_library(key, runner, bench, config.requests)
                samples[key].append(result)
    profile: dict[str, Any] | None = None
    profile_cpu: float | None = None
    if config.profile_requests > 0:
        _say(config, f"profiling akte serve over {config.profile_requests} note requests")
        with tempfile.TemporaryDirectory(prefix="akte-limit-profile-") as tmp:
            profile, profile_cpu = _profile(config, Path(tmp))
    return LimitReport(
        config={k: v for k, v in asdict(config).items() if k != "postgres"},
        load_before=load_before,
        load_after=loadavg(),
        rows={key: _median_row(results) for key, results in samples.items()},
        samples=samples,
        profile=profile,
        profile_requests=config.profile_requests,
        profile_cpu_ms=profile_cpu,
    )


# ------------------------------------------------------------------ reporting


def _short(label: str) -> str:
    """A function's label without the checkout's or the environment's directories."""
    where = label.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
    if "/lib/python3" in where:  # the standard library: its module is enough
        where = where.split("/lib/python3", 1)[1].split("/", 1)[-1]
    return where


def format_report(report: LimitReport) -> str:
    floor = report.rows["floor_db"]
    lines = [
        "HTTP write path against this machine's limit (PostgreSQL; "
        f"{report.config['concurrency']} client threads; medians of "
        f"{report.config['repeats']} rounds)",
        f"load average before {report.load_before}, after {report.load_after}; "
        f"{os.cpu_count()} CPUs",
        "",
        f"{'row':<48}{'cmd/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'srv CPU':>9}{'child':>7}{'pg':>7}"
        f"{'gen CPU':>9}{'x floor':>9}{'errors':>8}",
    ]
    for key, title in ROWS:
        r = report.rows[key]
        server = f"{r.server_cpu_ms:.2f}" if r.server_cpu_ms is not None else "-"
        child = f"{r.children_cpu_ms:.2f}" if r.children_cpu_ms is not None else "-"
        backend = f"{r.postgres_cpu_ms:.2f}" if r.postgres_cpu_ms is not None else "-"
        lines.append(
            f"{title:<48}{r.rate:>8.0f}{r.p50_ms:>9.1f}{r.p99_ms:>9.1f}{server:>9}{child:>7}{backend:>7}"
            f"{r.client_cpu_ms:>9.2f}{r.rate / floor.rate:>9.2f}{r.errors:>8}"
        )
    lines += [
        "(srv CPU: the server process's CPU ms per request; child: its child processes' -",
        " Akte's projection runner; pg: the PostgreSQL sessions serving them; gen CPU: this",
        " process's - the load generator's, or for rows c the library's own - CPU ms per",
        " request)",
        "",
        f"Akte / floor (a): {report.share_of_floor:.2f} (median of the rounds: "
        + ", ".join(f"{share:.2f}" for share in report.shares_of_floor)
        + ")",
        f"Akte {report.rows['akte'].rate:.0f} commands/s against {TARGET_RATE:.0f}: "
        f"{'MET' if report.rate_met else 'MISSED'}; p99 {report.rows['akte'].p99_ms:.1f} ms "
        f"against < {TARGET_P99_MS:.0f} ms: {'MET' if report.p99_met else 'MISSED'}",
    ]
    if report.profile is not None:
        categories: dict[str, float] = report.profile["categories"]
        total = sum(categories.values())
        lines += [
            "",
            f"Where Akte's server CPU goes ({report.profile_requests} profiled note requests; "
            f"{report.profile_cpu_ms or 0:.2f} ms CPU per request under the profiler):",
        ]
        for name, seconds in sorted(categories.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name:<52}{100 * seconds / total:>6.1f} %")
        lines.append("Functions with the most own CPU (built-ins they call included):")
        callers: dict[str, list[tuple[str, float]]] = report.profile.get("callers", {})
        for label, seconds in report.profile["top"][:15]:
            lines.append(f"  {_short(label)[-70:]:<72}{100 * seconds / total:>6.1f} %")
            for caller, below in callers.get(label, []):
                share = 100 * below / total
                lines.append(f"      called by {_short(caller)[-58:]:<60}{share:>6.1f} % in all")
    for key, _ in ROWS:
        if report.rows[key].error_samples:
            lines.append(f"errors in {key}: {', '.join(report.rows[key].error_samples)}")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> tuple[LimitConfig, Path | None]:
    parser = argparse.ArgumentParser(prog="bench-http-limit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--requests", type=int, default=2000, help="per measurement")
    parser.add_argument("--seconds", type=float, default=60.0, help="bound per measurement")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--profile-requests", type=int, default=400, help="0: no profile")
    parser.add_argument("--json", type=Path)
    add_postgres_arguments(parser)
    args = parser.parse_args(argv)
    if args.concurrency < 1 or args.requests < 1 or args.repeats < 1:
        parser.error("--concurrency, --requests and --repeats must be positive")
    config = LimitConfig(
        concurrency=args.concurrency,
        requests=args.requests,
        seconds=args.seconds,
        warmup=args.warmup,
        repeats=args.repeats,
        profile_requests=args.profile_requests,
        postgres=postgres_from(args),
    )
    return config, args.json


def main(argv: Sequence[str] | None = None, *, say: Callable[[str], None] = print) -> int:
    config, json_path = parse_args(argv)
    report = run(config)
    say(format_report(report))
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    return 1 if any(r.errors for r in report.rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
