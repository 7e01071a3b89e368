"""Load test: caseworkers working many case files at once over real HTTP on loopback.

Run ``bin/load-test`` (or ``python -m benchmarks.loadtest``) from the repository root::

    bin/load-test [--store sqlite|postgres] [--servers 1] [--caseworkers 8]
                  [--cases 4] [--requests 4000] [--seconds 60] [--writes 0.3] [--json OUT]

It starts ``akte serve`` (``--servers`` processes; more than one needs PostgreSQL, with a
projection worker process) on a fresh store, or drives a running server (``--url`` with
``--key-file``, the local issuer's key of that server, development only). The load comes
from this process, a separate one: ``--caseworkers`` threads, each a distinct account
with its own token from the local issuer, each working ``--cases`` case files of its own
through their procedures' lives (receive, assign, request documents, decide, close),
and reading in between: the case file, its history, their own worklist, the team's
unassigned procedures. ``--writes`` is the share of writes.

Bounded in count and time: it stops after ``--requests`` requests or ``--seconds``,
whichever comes first. It reports throughput, latency percentiles (p50, p90, p99) per
operation and errors. Deliberate conflicts (one write in 50 is sent with a stale
``If-Match``) must be answered 412 and are counted apart; any other status than the
expected one is an error, and the exit code is 1 if there was any.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import httpx2 as httpx
import psycopg

from adapters.bootstrap import build_service
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from benchmarks.cluster import (
    ApiProcess,
    ChildProcess,
    WorkerProcess,
    issue_token,
    stop_all,
    wait_views_built,
)

StoreName = Literal["sqlite", "postgres"]
OFFICE: Final = "abh-musterstadt"
CONFLICT_EVERY: Final = 50
"""One write in this many is sent with a stale If-Match, on purpose (must be 412)."""
TOPICS: Final = ("extend_residence_permit", "blue_card", "family_reunion", "change_of_address")
CHANNELS: Final = ("contact_form", "appointment", "mail", "online_application")
SCHEMA_PREFIX: Final = "akte_load_"


def percentile(samples: Sequence[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0..1) of ``samples``."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class OperationStats:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    conflicts: int = 0

    def to_json(self) -> dict[str, Any]:
        samples = self.latencies_ms
        return {
            "count": len(samples),
            "p50_ms": round(percentile(samples, 0.50), 2),
            "p90_ms": round(percentile(samples, 0.90), 2),
            "p99_ms": round(percentile(samples, 0.99), 2),
            "errors": self.errors,
            "conflicts": self.conflicts,
        }


@dataclass
class LoadResult:
    seconds: float
    operations: dict[str, OperationStats]
    error_samples: list[str]

    @property
    def requests(self) -> int:
        return sum(len(op.latencies_ms) for op in self.operations.values())

    @property
    def errors(self) -> int:
        return sum(op.errors for op in self.operations.values())

    @property
    def conflicts(self) -> int:
        return sum(op.conflicts for op in self.operations.values())

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    def merged(self, names: Sequence[str]) -> list[float]:
        return [ms for name in names for ms in self.operations[name].latencies_ms]

    def to_json(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "requests_per_second": round(self.throughput, 1),
            "errors": self.errors,
            "conflicts": self.conflicts,
            "operations": {name: op.to_json() for name, op in sorted(self.operations.items())},
            "error_samples": self.error_samples[:10],
        }


WRITES: Final = ("open_case", "receive", "assign", "request_documents", "decide", "close")
READS: Final = ("get_case", "history", "my_worklist", "unassigned_worklist")


@dataclass
class _Case:
    case_id: str
    version: int
    procedure: int = 0
    stage: str = "none"
    """none, received, assigned, requested, decided (then closed: back to none)."""


class _Budget:
    """The run's bounds: a request count and a deadline, shared by all threads."""

    def __init__(self, requests: int, seconds: float) -> None:
        self._left = requests
        self._lock = threading.Lock()
        self.deadline = time.monotonic() + seconds

    def take(self) -> bool:
        with self._lock:
            if self._left <= 0 or time.monotonic() >= self.deadline:
                return False
            self._left -= 1
            return True


class Caseworker:
    """One account working its own case files; latencies recorded per operation."""

    def __init__(
        self,
        user_id: str,
        token: str,
        base_urls: Sequence[str],
        *,
        cases: int,
        writes: float,
        seed: int,
        conflict_every: int = CONFLICT_EVERY,
    ) -> None:
        self.user_id = user_id
        self.conflict_every = conflict_every
        self.headers = {"Authorization": f"Bearer {token}"}
        self.base_urls = list(base_urls)
        self.cases_wanted = cases
        self.write_share = writes
        self.rng = random.Random(seed)
        self.cases: list[_Case] = []
        self.stats: dict[str, OperationStats] = {name: OperationStats() for name in WRITES + READS}
        self.error_samples: list[str] = []
        self.writes_sent = 0
        self.last_position = 0
        self.http = httpx.Client(trust_env=False, timeout=httpx.Timeout(30.0))
        self._calls = seed

    # ----------------------------------------------------------- plumbing

    def _url(self, path: str) -> str:
        self._calls += 1
        return self.base_urls[self._calls % len(self.base_urls)] + path

    def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        expect: int,
        json_body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        if_match: int | None = None,
        conflict: bool = False,
    ) -> httpx.Response | None:
        headers = dict(self.headers)
        if if_match is not None:
            headers["If-Match"] = f'"{if_match - 1 if conflict else if_match}"'
        started = time.perf_counter()
        try:
            response = self.http.request(
                method, self._url(path), json=json_body, params=params, headers=headers
            )
        except httpx.HTTPError as error:
            self.stats[operation].errors += 1
            self.error_samples.append(f"{operation}: {type(error).__name__}")
            return None
        elapsed = (time.perf_counter() - started) * 1000
        stats = self.stats[operation]
        stats.latencies_ms.append(elapsed)
        if conflict and response.status_code in (409, 412):
            stats.conflicts += 1
            return None
        if response.status_code != expect:
            stats.errors += 1
            kind = response.json().get("type", "") if response.content else ""
            # The problem type only: details may quote input.
            self.error_samples.append(f"{operation}: {response.status_code} {kind}")
            return None
        return response

    def _write(
        self, case: _Case, operation: str, path: str, body: dict[str, Any] | None, expect: int
    ) -> httpx.Response | None:
        self.writes_sent += 1
        conflict = self.writes_sent % self.conflict_every == 0 and case.version > 1
        response = self._send(
            operation,
            "POST",
            f"/cases/{case.case_id}{path}",
            expect=expect,
            json_body=body,
            if_match=case.version,
            conflict=conflict,
        )
        if response is not None:
            case.version = int(response.headers["ETag"].strip('"'))
            self.last_position = int(response.headers.get("X-Akte-Position", self.last_position))
        return response

    # ----------------------------------------------------------- the work

    def open_case(self) -> None:
        response = self._send(
            "open_case",
            "POST",
            "/cases",
            expect=201,
            json_body={
                "surname": "Muster",
                "given_names": "Erika",
                "date_of_birth": "1990-01-01",
                "nationality": "SYR",
                "passport_number": f"L{uuid.uuid4().hex[:8].upper()}",
            },
        )
        if response is not None:
            body = response.json()
            self.cases.append(_Case(body["case_id"], int(body["version"])))

    def step(self) -> None:
        if len(self.cases) < self.cases_wanted:
            self.open_case()
        elif self.rng.random() < self.write_share:
            self.write_step(self.rng.choice(self.cases))
        else:
            self.read_step(self.rng.choice(self.cases))

    def write_step(self, case: _Case) -> None:
        base = f"/procedures/{case.procedure}"
        if case.stage == "none":
            response = self._write(
                case,
                "receive",
                "/procedures",
                {"channel": self.rng.choice(CHANNELS), "topic": self.rng.choice(TOPICS)},
                201,
            )
            if response is not None:
                case.procedure = int(response.json()["number"])
                case.stage = "received"
        elif case.stage == "received":
            if self._write(case, "assign", f"{base}/assignment", {"assignee": self.user_id}, 200):
                case.stage = "assigned"
        elif case.stage == "assigned":
            due = (date.today() + timedelta(days=self.rng.randint(7, 28))).isoformat()
            body = {"what": ["Pass", "Mietvertrag"], "due_on": due}
            if self._write(case, "request_documents", f"{base}/document-requests", body, 200):
                case.stage = "requested"
        elif case.stage == "requested":
            outcome = self.rng.choice(("granted", "granted", "granted", "withdrawn"))
            if self._write(case, "decide", f"{base}/decision", {"outcome": outcome}, 200):
                case.stage = "decided"
        elif self._write(case, "close", f"{base}/closure", None, 200):
            case.stage = "none"

    def read_step(self, case: _Case) -> None:
        roll = self.rng.random()
        if roll < 0.4:
            self._send("get_case", "GET", f"/cases/{case.case_id}", expect=200)
        elif roll < 0.55:
            self._send(
                "history", "GET", f"/cases/{case.case_id}/history", expect=200, params={"limit": 50}
            )
        elif roll < 0.85:
            self._send(
                "my_worklist",
                "GET",
                "/worklists/my-open-procedures",
                expect=200,
                params={"min_position": self.last_position} if self.last_position else None,
            )
        else:
            self._send("unassigned_worklist", "GET", "/worklists/unassigned-procedures", expect=200)

    def run(self, budget: _Budget) -> None:
        try:
            while budget.take():
                self.step()
        finally:
            self.http.close()


def caseworkers_for(
    issuer: LocalIssuer,
    base_urls: Sequence[str],
    count: int,
    *,
    cases: int,
    writes: float,
    conflict_every: int = CONFLICT_EVERY,
) -> list[Caseworker]:
    """Distinct accounts (``sb-lt-NN``), each a team lead too, so it may assign to itself."""
    workers = []
    for n in range(count):
        user_id = f"sb-lt-{n:02d}"
        token = issue_token(issuer, user_id, [Role.CASEWORKER, Role.TEAM_LEAD], OFFICE)
        workers.append(
            Caseworker(
                user_id,
                token,
                base_urls,
                cases=cases,
                writes=writes,
                seed=1000 + n,
                conflict_every=conflict_every,
            )
        )
    return workers


def run_load(caseworkers: Sequence[Caseworker], *, requests: int, seconds: float) -> LoadResult:
    """Run every caseworker in its own thread until the budget is spent."""
    budget = _Budget(requests, seconds)
    threads = [threading.Thread(target=w.run, args=(budget,), daemon=True) for w in caseworkers]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 120)
    elapsed = time.perf_counter() - started
    operations: dict[str, OperationStats] = {}
    samples: list[str] = []
    for worker in caseworkers:
        samples.extend(worker.error_samples)
        for name, stats in worker.stats.items():
            total = operations.setdefault(name, OperationStats())
            total.latencies_ms.extend(stats.latencies_ms)
            total.errors += stats.errors
            total.conflicts += stats.conflicts
    return LoadResult(elapsed, operations, samples)


# ------------------------------------------------------------------ the servers


@dataclass
class Target:
    """Where the load goes: base URLs and the issuer whose tokens they accept."""

    base_urls: list[str]
    issuer: LocalIssuer
    processes: list[ChildProcess]


def postgres_settings(data_dir: Path, schema: str) -> Settings:
    return Settings(
        store="postgres",
        data_dir=data_dir,
        postgres_host="127.0.0.1",
        postgres_port=5432,
        postgres_user="postgres",
        postgres_dbname="test",
        postgres_schema=schema,
    )


@contextmanager
def fresh_settings(store: StoreName, prefix: str = SCHEMA_PREFIX) -> Iterator[Settings]:
    """Settings for an empty store (a temporary directory; a PostgreSQL schema of our
    own, dropped afterwards)."""
    with tempfile.TemporaryDirectory(prefix="akte-load-") as tmp:
        data_dir = Path(tmp) / "data"
        if store == "sqlite":
            yield Settings(store="sqlite", data_dir=data_dir)
            return
        schema = f"{prefix}{uuid.uuid4().hex[:10]}"
        settings = postgres_settings(data_dir, schema)
        with psycopg.connect(
            host=settings.postgres_host,
            port=settings.postgres_port,
            user=settings.postgres_user,
            dbname=settings.postgres_dbname,
            autocommit=True,
        ) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield settings
        finally:
            with psycopg.connect(
                host=settings.postgres_host,
                port=settings.postgres_port,
                user=settings.postgres_user,
                dbname=settings.postgres_dbname,
                autocommit=True,
            ) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@contextmanager
def served(settings: Settings, servers: int, logs: Path) -> Iterator[Target]:
    """``servers`` API processes on ``settings`` (and, for more than one, a projection
    worker process; one server follows the log itself)."""
    # The tables and the signing key exist before any server starts.
    build_service(settings).close()
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    in_process = "true" if servers == 1 else "false"
    processes: list[ChildProcess] = []
    try:
        for n in range(servers):
            api = ApiProcess(settings, logs / f"api-{n}.log", projections_in_process=in_process)
            processes.append(api)
            api.start()
            api.wait_ready()  # one after another: start-up DDL must not race
        if servers > 1:
            worker = WorkerProcess(settings, logs / "worker.log")
            processes.append(worker)
            worker.start()
            worker.wait_following()
        wait_views_built(settings)
        yield Target(
            [p.base_url for p in processes if isinstance(p, ApiProcess)], issuer, processes
        )
    finally:
        stop_all(processes)


# ------------------------------------------------------------------ reporting


def format_result(result: LoadResult, title: str) -> str:
    lines = [
        title,
        f"{result.requests:,} requests in {result.seconds:.1f} s: "
        f"{result.throughput:,.0f} requests/s; errors {result.errors}, "
        f"deliberate conflicts (412) {result.conflicts}",
        "",
        f"{'operation':<22}{'count':>8}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}"
        f"{'errors':>8}{'412':>6}",
    ]
    for name in WRITES + READS:
        op = result.operations.get(name)
        if op is None or (not op.latencies_ms and not op.errors):
            continue
        lines.append(
            f"{name:<22}{len(op.latencies_ms):>8,}{percentile(op.latencies_ms, 0.5):>9.1f}"
            f"{percentile(op.latencies_ms, 0.9):>9.1f}{percentile(op.latencies_ms, 0.99):>9.1f}"
            f"{op.errors:>8}{op.conflicts:>6}"
        )
    for kind, names in (("all writes", WRITES), ("all reads", READS)):
        merged = result.merged(names)
        if merged:
            lines.append(
                f"{kind:<22}{len(merged):>8,}{percentile(merged, 0.5):>9.1f}"
                f"{percentile(merged, 0.9):>9.1f}{percentile(merged, 0.99):>9.1f}"
            )
    if result.error_samples:
        lines.append("errors, first few: " + "; ".join(result.error_samples[:5]))
    return "\n".join(lines)


@dataclass
class LoadConfig:
    store: StoreName = "sqlite"
    servers: int = 1
    caseworkers: int = 8
    cases: int = 4
    requests: int = 4000
    seconds: float = 60.0
    writes: float = 0.3
    conflict_every: int = CONFLICT_EVERY
    url: str | None = None
    key_file: Path | None = None


def run(config: LoadConfig) -> tuple[LoadResult, str]:
    with ExitStack() as stack:
        if config.url is not None:
            assert config.key_file is not None
            base_urls = [config.url.rstrip("/")]
            issuer = LocalIssuer.load_or_create(config.key_file)
            where = config.url
        else:
            settings = stack.enter_context(fresh_settings(config.store))
            logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="akte-logs-")))
            target = stack.enter_context(served(settings, config.servers, logs))
            base_urls, issuer = target.base_urls, target.issuer
            where = f"{config.servers} akte serve process(es) on {config.store}"
        workers = caseworkers_for(
            issuer,
            base_urls,
            config.caseworkers,
            cases=config.cases,
            writes=config.writes,
            conflict_every=config.conflict_every,
        )
        result = run_load(workers, requests=config.requests, seconds=config.seconds)
        title = (
            f"Load test: {config.caseworkers} caseworkers x {config.cases} case files, "
            f"{config.writes:.0%} writes, against {where}"
        )
        return result, title
    raise AssertionError("unreachable")  # pragma: no cover


def parse_args(argv: Sequence[str] | None) -> tuple[LoadConfig, Path | None]:
    parser = argparse.ArgumentParser(prog="load-test", description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--servers", type=int, default=1, help="API processes (default 1)")
    parser.add_argument("--caseworkers", type=int, default=8)
    parser.add_argument("--cases", type=int, default=4, help="case files per caseworker")
    parser.add_argument("--requests", type=int, default=4000, help="stop after this many")
    parser.add_argument("--seconds", type=float, default=60.0, help="or after this long")
    parser.add_argument("--writes", type=float, default=0.3, help="share of writes")
    parser.add_argument(
        "--conflict-every",
        type=int,
        default=CONFLICT_EVERY,
        help="send every Nth write of a caseworker with a stale If-Match (default %(default)s)",
    )
    parser.add_argument("--url", help="a running server instead of starting one")
    parser.add_argument("--key-file", type=Path, help="with --url: its local issuer key")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    if args.servers > 1 and args.store != "postgres":
        parser.error("several servers need --store postgres")
    if args.url and not args.key_file:
        parser.error("--url needs --key-file (the server's local issuer key)")
    if not 0 <= args.writes <= 1:
        parser.error("--writes is a share between 0 and 1")
    config = LoadConfig(
        store=args.store,
        servers=args.servers,
        caseworkers=args.caseworkers,
        cases=args.cases,
        requests=args.requests,
        seconds=args.seconds,
        writes=args.writes,
        conflict_every=args.conflict_every,
        url=args.url,
        key_file=args.key_file,
    )
    return config, args.json


def main(argv: Sequence[str] | None = None, *, say: Callable[[str], None] = print) -> int:
    config, json_path = parse_args(argv)
    result, title = run(config)
    say(format_result(result, title))
    if json_path is not None:
        payload = {"title": title, "config": {**vars(config), "key_file": None}} | {
            "result": result.to_json()
        }
        json_path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    return 1 if result.errors else 0


if __name__ == "__main__":
    sys.exit(main())
