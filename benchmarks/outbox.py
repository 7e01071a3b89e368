"""Outbox benchmark: how fast events leave for the broker, beside how fast the log takes
them, and how long an event takes from its commit to a consumer.

Run ``bin/bench-outbox`` (or ``python -m benchmarks.outbox``) from the repository root,
with a NATS server with JetStream at ``--nats-url`` (default ``AKTE_TEST_NATS_URL`` or
``nats://127.0.0.1:4222``)::

    bin/bench-outbox [--stores sqlite,postgres] [--events 20000] [--repeats 3]
                     [--rate 200] [--seconds 30] [--writers 4]
                     [--poll-intervals 0.5,0.05] [--json OUT]

Per store, on a fresh store and a stream of its own (deleted afterwards):

1. the log's own write rate, in the same run: events/s written in bulk
   (``service.save`` of whole case files, transactions of about 500 events) while building
   a log of ``--events`` events, and commands/s through the service (one command, one
   event, one transaction: the harness's command plan);
2. publish throughput: ``OutboxPublisher.publish_pending`` over that log into a new
   stream, in this process, ``--repeats`` times (each to a stream of its own, from
   position 0): events published per second, median; every event of the log's case files
   is of a chosen kind;
3. end-to-end lag under a steady load: commands at ``--rate`` per second for
   ``--seconds`` through the service, sent by ``--writers`` threads on case files of
   their own (as the API's threads would; one thread alone waits for every commit);
   ``akte outbox run`` in its own process (as deployed) publishes them to a NATS
   subscriber in this process. For each event the time from the command's return (its
   commit) to the subscriber's receipt: p50, p99 and max, and the rate achieved. Once
   per ``--poll-intervals`` value: the publisher looks at the log that often when it
   has caught up (0.5 s as deployed).

The machine's load (``/proc/loadavg``) is reported before and after. Not part of the test
suite; the figures live in ``docs/guides/notices-and-applications.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any, Final
from uuid import UUID

import nats
import nats.js.errors
import orjson
from nats.aio.msg import Msg

from adapters.bootstrap import build_service
from adapters.cli.support import positive_int
from adapters.outbox.cloudevents import Selection
from adapters.outbox.position import outbox_positions
from adapters.outbox.publisher import OutboxConfig, OutboxPublisher
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from benchmarks.harness import (
    BY,
    LEGAL_BASIS,
    MASTER_DATA,
    OFFICE_ID,
    STORES,
    TOPIC,
    BenchConfig,
    PostgresParams,
    StoreName,
    add_postgres_arguments,
    command_plan,
    fresh_store,
    machine_info,
    open_in_memory,
    postgres_from,
    postgres_server_version,
    run_service_commands,
    store_names,
    write_json,
)
from benchmarks.projections import settings_env
from domain.acts import Act
from domain.case_file import CaseFile
from service import AkteService

ROOT: Final = Path(__file__).resolve().parents[1]
EVENTS: Final = (
    "CaseFile.Opened,CaseFile.ProcedureReceived,CaseFile.ProcedureAssigned,CaseFile.NoteAdded"
)
"""Every case-file event this benchmark writes is published (the claims of file numbers
are not case-file events and are never published)."""
CASE_EVENTS: Final = 5
BULK_CASES: Final = 100
"""Case files per bulk transaction (about 500 events)."""
LAG_CASES: Final = 20
COMMANDS_FOR_RATE: Final = 2000


@dataclass(frozen=True)
class Config:
    stores: tuple[StoreName, ...] = STORES
    events: int = 20_000
    repeats: int = 3
    rate: float = 200.0
    seconds: float = 30.0
    writers: int = 4
    poll_intervals: tuple[float, ...] = (0.5, 0.05)
    nats_url: str = os.environ.get("AKTE_TEST_NATS_URL", "nats://127.0.0.1:4222")
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    progress: bool = True


@dataclass
class LagRun:
    poll_interval: float
    commands: int
    seconds: float
    received: int
    lags_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def achieved_rate(self) -> float:
        return self.commands / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        ordered = sorted(self.lags_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class StoreResult:
    store: str
    events: int = 0
    bulk_write_events_per_second: float = 0.0
    command_events_per_second: float = 0.0
    publish_events_per_second: list[float] = field(default_factory=list)
    lag_runs: list[LagRun] = field(default_factory=list)

    @property
    def publish_median(self) -> float:
        return statistics.median(self.publish_events_per_second)


def _say(config: Config, text: str) -> None:
    if config.progress:
        print(text, file=sys.stderr, flush=True)


def _load() -> str:
    try:
        return Path("/proc/loadavg").read_text(encoding="utf-8").strip()
    except OSError:
        return "unknown"


# ------------------------------------------------------------------ 1. the log


def _bulk_case(n: int) -> list[Any]:
    """A case file of CASE_EVENTS events (and its file number's claim), in memory."""
    now = datetime.now(tz=UTC)
    act = Act(by=BY, at=now, recorded_at=now)
    case, claim = open_in_memory(act)
    number = case.receive_procedure(
        channel="online_application", topic=TOPIC, legal_basis=LEGAL_BASIS, act=act
    )
    case.assign_procedure(procedure_number=number, assignee=f"sb-{n % 7 + 2:02d}", act=act)
    case.add_note(text=f"Vorsprache {n}: Unterlagen vollständig.", act=act)
    case.add_note(text=f"Rückruf {n} vereinbart.", act=act)
    return [case, claim]


def write_log(service: AkteService, events: int) -> tuple[int, float]:
    """At least ``events`` case-file events in bulk transactions; (events, events/s)."""
    cases = -(-events // CASE_EVENTS)
    written = 0
    began = perf_counter()
    for start in range(0, cases, BULK_CASES):
        batch = [obj for n in range(start, min(cases, start + BULK_CASES)) for obj in _bulk_case(n)]
        service.save(*batch)
        written += sum(1 for obj in batch if isinstance(obj, CaseFile)) * CASE_EVENTS
    return written, written / (perf_counter() - began)


def command_rate(settings: Settings) -> float:
    """Commands (= events) per second through the service, one transaction each."""
    seconds = run_service_commands(settings, command_plan(COMMANDS_FOR_RATE, 20), 20)
    return COMMANDS_FOR_RATE / seconds


# ------------------------------------------------------------------ 2. publishing


async def _delete_stream(url: str, stream: str) -> None:
    client = await nats.connect(url)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):  # never created
            await client.jetstream().delete_stream(stream)
    finally:
        await client.close()


def _stream_names() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]
    return f"AKTE_BENCH_{tag}", f"aktebench{tag}"


def publish_throughput(service: AkteService, config: Config) -> float:
    """Events/s of one publish of the whole log into a new stream."""
    stream, prefix = _stream_names()
    positions = outbox_positions(service.recorder)
    positions.create_table()
    publisher = OutboxPublisher(
        ApplicationEventLog(service),
        positions,
        OutboxConfig(
            office=OFFICE_ID,
            selection=Selection.parse(EVENTS),
            url=config.nats_url,
            stream=stream,
            subject_prefix=prefix,
        ),
    )

    async def publish() -> tuple[int, float]:
        began = perf_counter()
        try:
            done = await publisher.publish_pending()
        finally:
            await publisher.close()
        return done, perf_counter() - began

    try:
        published, seconds = asyncio.run(publish())
    finally:
        asyncio.run(_delete_stream(config.nats_url, stream))
    return published / seconds


# ------------------------------------------------------------------ 3. lag


class _Receiver:
    """A NATS subscriber in a thread of its own: when each message id arrived."""

    def __init__(self, url: str, subjects: str) -> None:
        self._url = url
        self._subjects = subjects
        self.arrived: dict[str, float] = {}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _Receiver:
        self._thread.start()
        if not self._ready.wait(timeout=30):
            msg = "the benchmark's subscriber did not connect"
            raise RuntimeError(msg)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        self._loop.run_until_complete(self._main())

    async def _main(self) -> None:
        client = await nats.connect(self._url)
        self._stopping = asyncio.Event()

        async def received(msg: Msg) -> None:
            now = time.time()
            envelope = orjson.loads(msg.data)
            self.arrived.setdefault(envelope["id"], now)

        try:
            await client.subscribe(self._subjects, cb=received)
            await client.flush()
            self._ready.set()
            await self._stopping.wait()
        finally:
            await client.close()


def _start_publisher(
    settings: Settings, config: Config, stream: str, prefix: str, poll: float, log: Path
) -> subprocess.Popen[bytes]:
    env = settings_env(settings) | {
        "AKTE_OUTBOX_URL": config.nats_url,
        "AKTE_OUTBOX_STREAM": stream,
        "AKTE_OUTBOX_SUBJECT_PREFIX": prefix,
        "AKTE_OUTBOX_EVENTS": EVENTS,
        "AKTE_JSON_LOGS": "false",
    }
    with log.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "outbox", "run", "--poll-interval", str(poll)],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=output,
        )


class PublisherFailed(RuntimeError):
    """``akte outbox run`` stopped on its own during the lag measurement (its log's end)."""


def measure_lag(settings: Settings, config: Config, poll: float) -> LagRun:
    with tempfile.TemporaryDirectory(prefix="akte-bench-outbox-", dir=config.tmp_root) as tmp:
        log = Path(tmp) / "outbox.log"
        run = _measure_lag(settings, config, poll, log)
        if run.received < run.commands:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-5:]
            raise PublisherFailed("\n".join(tail))
        return run


def _measure_lag(settings: Settings, config: Config, poll: float, log: Path) -> LagRun:
    """Commands at ``config.rate``/s for ``config.seconds``; each event's commit-to-consumer
    time. The publisher starts at the head (the log written before is not timed)."""
    service = build_service(settings)
    stream, prefix = _stream_names()
    positions = outbox_positions(service.recorder)
    positions.create_table()
    # Start at the head: what is already in the log is not part of the measurement.
    positions.advance(stream, service.recorder.max_notification_id() or 0)
    cases = [
        service.open_case(office_id=OFFICE_ID, master_data=MASTER_DATA, by=BY)
        for _ in range(max(LAG_CASES, config.writers))
    ]
    positions.advance(stream, service.recorder.max_notification_id() or 0)
    ids: list[UUID] = [opened.case_id for opened in cases]
    versions = [opened.version for opened in cases]
    committed: dict[str, float] = {}
    publisher = _start_publisher(settings, config, stream, prefix, poll, log)
    try:
        with _Receiver(config.nats_url, f"{prefix}.{OFFICE_ID}.>") as receiver:
            # One event through before the clock starts: the publisher's process has
            # started, opened the store and connected (not part of the lag).
            warm = service.add_note(ids[0], expected_version=versions[0], by=BY, text="Start")
            versions[0] = warm.version
            deadline = time.monotonic() + 120
            while f"{ids[0]}:{warm.version}" not in receiver.arrived:
                if time.monotonic() > deadline or publisher.poll() is not None:
                    msg = "the publisher did not publish the first event"
                    raise PublisherFailed(msg)
                time.sleep(0.05)
            total = int(config.rate * config.seconds)
            began = perf_counter()

            def write(writer: int) -> None:
                # Command n is due at began + n / rate; writer w sends the n with
                # n % writers == w, on case files of its own (no version conflicts):
                # one thread alone cannot keep a rate above one commit's round trip.
                for n in range(writer, total, config.writers):
                    wait = began + n / config.rate - perf_counter()
                    if wait > 0:
                        time.sleep(wait)
                    k = writer + config.writers * ((n // config.writers) % per_writer)
                    recorded = service.add_note(
                        ids[k], expected_version=versions[k], by=BY, text=f"Vermerk {n}"
                    )
                    committed[f"{ids[k]}:{recorded.version}"] = time.time()
                    versions[k] = recorded.version

            per_writer = max(1, LAG_CASES // config.writers)
            with ThreadPoolExecutor(config.writers) as pool:
                for done in [pool.submit(write, w) for w in range(config.writers)]:
                    done.result()
            seconds = perf_counter() - began
            deadline = time.monotonic() + 60
            while len(receiver.arrived.keys() & committed.keys()) < len(committed):
                if time.monotonic() > deadline or publisher.poll() is not None:
                    break
                time.sleep(0.05)
            arrived = dict(receiver.arrived)
    finally:
        publisher.send_signal(signal.SIGTERM)
        try:
            publisher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            publisher.kill()
            publisher.wait()
        service.close()
        asyncio.run(_delete_stream(config.nats_url, stream))
    lags = [(arrived[key] - at) * 1000 for key, at in committed.items() if key in arrived]
    return LagRun(poll, len(committed), seconds, len(lags), lags)


# ------------------------------------------------------------------ the run


def run_store(store: StoreName, config: Config) -> StoreResult:
    result = StoreResult(store)
    bench = BenchConfig(postgres=config.postgres, tmp_root=config.tmp_root)
    with fresh_store(store, bench) as settings:
        service = build_service(settings)
        try:
            _say(config, f"{store}: writing a log of {config.events:,} events")
            result.events, result.bulk_write_events_per_second = write_log(service, config.events)
            for repeat in range(config.repeats):
                _say(config, f"{store}: publishing it, repeat {repeat + 1}/{config.repeats}")
                result.publish_events_per_second.append(publish_throughput(service, config))
        finally:
            service.close()
        _say(config, f"{store}: commands/s through the service")
        result.command_events_per_second = command_rate(settings)
        for poll in config.poll_intervals:
            _say(config, f"{store}: lag at {config.rate:g} commands/s, poll {poll:g} s")
            result.lag_runs.append(measure_lag(settings, config, poll))
    return result


def format_report(results: Sequence[StoreResult], load: tuple[str, str]) -> str:
    lines = [f"{'figure':<60}" + "".join(f"{r.store:>14}" for r in results)]

    def row(label: str, values: Sequence[str]) -> None:
        lines.append(f"{label:<60}" + "".join(f"{v:>14}" for v in values))

    row("log events written", [f"{r.events:,}" for r in results])
    row(
        "1. log write rate, bulk (events/s)",
        [f"{r.bulk_write_events_per_second:,.0f}" for r in results],
    )
    row(
        "   log write rate, commands (events/s)",
        [f"{r.command_events_per_second:,.0f}" for r in results],
    )
    row("2. publish throughput (events/s, median)", [f"{r.publish_median:,.0f}" for r in results])
    row(
        "   publish / bulk write",
        [f"{r.publish_median / r.bulk_write_events_per_second:.2f}x" for r in results],
    )
    for index, run in enumerate(results[0].lag_runs if results else []):
        poll = run.poll_interval
        runs = [r.lag_runs[index] for r in results]
        row(f"3. commands/s achieved (poll {poll:g} s)", [f"{x.achieved_rate:,.0f}" for x in runs])
        row("   events received / committed", [f"{x.received}/{x.commands}" for x in runs])
        row("   lag commit -> consumer p50 (ms)", [f"{x.percentile(0.5):,.0f}" for x in runs])
        row("   lag commit -> consumer p99 (ms)", [f"{x.percentile(0.99):,.0f}" for x in runs])
        row(
            "   lag commit -> consumer max (ms)",
            [f"{max(x.lags_ms, default=0):,.0f}" for x in runs],
        )
    lines.append(f"load before: {load[0]}")
    lines.append(f"load after:  {load[1]}")
    return "\n".join(lines)


def to_json(
    results: Sequence[StoreResult], config: Config, load: tuple[str, str]
) -> dict[str, Any]:
    postgres, _ = postgres_server_version(config.postgres)
    return {
        "machine": asdict(machine_info(postgres)),
        "load": {"before": load[0], "after": load[1]},
        "parameters": {
            "events": config.events,
            "repeats": config.repeats,
            "rate": config.rate,
            "writers": config.writers,
            "seconds": config.seconds,
            "poll_intervals": list(config.poll_intervals),
        },
        "stores": [
            {
                "store": r.store,
                "events": r.events,
                "bulk_write_events_per_second": r.bulk_write_events_per_second,
                "command_events_per_second": r.command_events_per_second,
                "publish_events_per_second": r.publish_events_per_second,
                "publish_median": r.publish_median,
                "lag": [
                    {
                        "poll_interval": run.poll_interval,
                        "commands": run.commands,
                        "received": run.received,
                        "achieved_rate": run.achieved_rate,
                        "p50_ms": run.percentile(0.5),
                        "p99_ms": run.percentile(0.99),
                        "max_ms": max(run.lags_ms, default=0.0),
                    }
                    for run in r.lag_runs
                ],
            }
            for r in results
        ],
    }


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        values = ()
    if not values or any(value <= 0 for value in values):
        msg = "a comma-separated list of positive seconds"
        raise argparse.ArgumentTypeError(msg)
    return values


def _positive_float(text: str) -> float:
    return _floats(text)[0]


def parse_args(argv: Sequence[str] | None) -> tuple[Config, Path | None]:
    parser = argparse.ArgumentParser(
        prog="bin/bench-outbox", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = Config()
    parser.add_argument("--stores", type=store_names, default=defaults.stores)
    parser.add_argument("--events", type=positive_int, default=defaults.events)
    parser.add_argument("--repeats", type=positive_int, default=defaults.repeats)
    parser.add_argument("--rate", type=_positive_float, default=defaults.rate)
    parser.add_argument("--seconds", type=_positive_float, default=defaults.seconds)
    parser.add_argument(
        "--writers",
        type=positive_int,
        default=defaults.writers,
        help="threads sending the commands of the lag measurement (default 4)",
    )
    parser.add_argument("--poll-intervals", type=_floats, default=defaults.poll_intervals)
    parser.add_argument("--nats-url", default=defaults.nats_url)
    parser.add_argument("--tmp-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--quiet", action="store_true")
    add_postgres_arguments(parser)
    args = parser.parse_args(argv)
    config = Config(
        stores=args.stores,
        events=args.events,
        repeats=args.repeats,
        rate=args.rate,
        seconds=args.seconds,
        writers=args.writers,
        poll_intervals=args.poll_intervals,
        nats_url=args.nats_url,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    return config, args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, json_path = parse_args(argv)
    before = _load()
    results = [run_store(store, config) for store in config.stores]
    load = (before, _load())
    print(format_report(results, load))
    if json_path is not None:
        write_json(json_path, to_json(results, config, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
