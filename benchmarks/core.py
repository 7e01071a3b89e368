"""Akte benchmark: what the service costs over the library, snapshots, orjson vs json.

Run ``bin/bench`` (or ``python -m benchmarks.core``) from the repository root::

    bin/bench [--stores sqlite,postgres] [--repeats 5] [--commands 2000] [--json OUT]

It measures, side by side in one run, each figure ``--repeats`` times, interleaving the
variants that are compared (A, B, A, B, ...) so machine noise hits both alike, and reports
medians and ratios (never single timings):

1. commands/s per store: through :class:`AkteService` (each command loads the case file,
   checks the expected version, saves) and through the library's bare ``Application.save``
   of the same domain events on in-memory aggregates (no reads); ratio service/bare,
   target >= 0.60;
2. load time of a case file with 1,000 events, with snapshots (interval 50) and without;
3. OrjsonTranscoder vs the library's JSONTranscoder: encode/decode throughput on real
   event and snapshot states, and service commands/s on SQLite end to end.

Every measurement runs on a fresh store: a SQLite file in a temporary directory, or a
PostgreSQL schema created for it and dropped afterwards. An unreachable PostgreSQL server
skips the PostgreSQL rows with a note.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any, Final, Literal, TypeVar, cast
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Transcoder
from psycopg import sql
from pydantic import SecretStr

from adapters.bootstrap import build_service, library_env
from adapters.cli.support import positive_int
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from adapters.store.transcoding import (
    OrjsonTranscoder,
    json_transcoder,
    orjson_transcoder,
    register_akte_transcodings,
)
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.case_reference import CaseReference
from service import AkteService

StoreName = Literal["sqlite", "postgres"]
TranscoderName = Literal["orjson", "json"]
Op = Literal["note", "receive", "assign"]

R = TypeVar("R")

STORES: Final[tuple[StoreName, ...]] = ("sqlite", "postgres")
TARGET_SERVICE_SHARE: Final = 0.60
"""The service path must keep at least this share of the bare ``Application.save`` rate."""

OFFICE_ID: Final = "abh-musterstadt"
BY: Final = "sb-01"
TOPIC: Final = "extend_residence_permit"
LEGAL_BASIS: Final = "aufenthg-18b"
MASTER_DATA: Final = MasterData(
    surname="Musterfrau",
    given_names="Erika Maria",
    date_of_birth=date(1991, 5, 17),
    nationality="SYR",
    passport_number="N01234567",
    address="Hauptstraße 12, 12345 Musterstadt",
)


def _note_text(n: int) -> str:
    return (
        f"Vorsprache am Schalter ({n}): Antragstellerin legt Reisepass und Meldebescheinigung "
        "vor; Arbeitsvertrag fehlt noch, wird nachgereicht. Rückruf vereinbart."
    )


# ------------------------------------------------------------------- configuration


@dataclass(frozen=True)
class PostgresParams:
    host: str = os.environ.get("AKTE_TEST_POSTGRES_HOST", "127.0.0.1")
    port: int = int(os.environ.get("AKTE_TEST_POSTGRES_PORT", "5432"))
    user: str = os.environ.get("AKTE_TEST_POSTGRES_USER", "postgres")
    dbname: str = os.environ.get("AKTE_TEST_POSTGRES_DBNAME", "test")

    def connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            dbname=self.dbname,
            autocommit=True,
            connect_timeout=3,
        )


@dataclass(frozen=True)
class BenchConfig:
    stores: tuple[StoreName, ...] = STORES
    repeats: int = 5
    commands: int = 2000
    """Commands per measurement of commands/s (sections 1 and 3)."""
    cases: int = 20
    """Case files the commands are spread over, round robin (2000/20: 100 events each)."""
    snapshot_interval: int = 50
    """The service's snapshot interval in section 1 and 3 (the deployment default)."""
    long_case_events: int = 1000
    """Events of the case file whose load time section 2 measures."""
    loads_per_repeat: int = 10
    transcoder_passes: int = 5
    """Passes over all sample states per timed transcoder measurement."""
    postgres: PostgresParams = field(default_factory=PostgresParams)
    tmp_root: Path | None = None
    """Where the SQLite temporary directories go (default: the system's temp dir)."""
    progress: bool = True


# --------------------------------------------------------------------- the report


@dataclass(frozen=True)
class Figure:
    key: str
    section: str
    label: str
    unit: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)


@dataclass(frozen=True)
class Ratio:
    key: str
    section: str
    label: str
    numerator: str
    denominator: str
    paired: tuple[float, ...]
    """Per-repeat ratios of the interleaved pairs; ``value`` is their median."""
    target: float | None = None

    @property
    def value(self) -> float:
        return statistics.median(self.paired)

    @property
    def meets_target(self) -> bool | None:
        return None if self.target is None else self.value >= self.target


@dataclass(frozen=True)
class Machine:
    nproc: int
    cpu_model: str
    python: str
    platform: str
    libraries: dict[str, str]
    postgres_server: str | None


@dataclass
class Report:
    machine: Machine
    parameters: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def figure(self, key: str) -> Figure:
        return next(f for f in self.figures if f.key == key)

    def ratio(self, key: str) -> Ratio:
        return next(r for r in self.ratios if r.key == key)

    def to_json(self) -> dict[str, Any]:
        return {
            "machine": asdict(self.machine),
            "parameters": self.parameters,
            "seconds": round(self.seconds, 1),
            "figures": [
                {
                    "key": f.key,
                    "section": f.section,
                    "label": f.label,
                    "unit": f.unit,
                    "median": f.median,
                    "samples": list(f.samples),
                }
                for f in self.figures
            ],
            "ratios": [
                {
                    "key": r.key,
                    "section": r.section,
                    "label": r.label,
                    "numerator": r.numerator,
                    "denominator": r.denominator,
                    "value": r.value,
                    "paired": list(r.paired),
                    "target": r.target,
                    "meets_target": r.meets_target,
                }
                for r in self.ratios
            ],
            "notes": self.notes,
        }


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or "unknown"
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(postgres_server: str | None) -> Machine:
    libraries = {name: _library_version(name) for name in ("eventsourcing", "orjson", "psycopg")}
    libraries["sqlite"] = sqlite3.sqlite_version
    return Machine(
        nproc=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        platform=platform.platform(),
        libraries=libraries,
        postgres_server=postgres_server,
    )


def postgres_server_version(params: PostgresParams) -> tuple[str | None, str | None]:
    """(server version, None) or (None, why PostgreSQL cannot be used)."""
    try:
        with params.connect() as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return None, f"PostgreSQL at {params.host}:{params.port} unreachable: {reason}"
    return (str(row[0]) if row else "?"), None


# ------------------------------------------------------------------------- stores


@contextmanager
def fresh_store(
    store: StoreName,
    config: BenchConfig,
    *,
    transcoder: TranscoderName = "orjson",
    snapshot_interval: int = 50,
) -> Iterator[Settings]:
    """Settings for an empty store that is deleted afterwards."""
    if store == "sqlite":
        with tempfile.TemporaryDirectory(prefix="akte-bench-", dir=config.tmp_root) as tmp:
            yield Settings(
                store="sqlite",
                data_dir=Path(tmp),
                transcoder=transcoder,
                snapshot_interval=snapshot_interval,
            )
        return
    pg = config.postgres
    schema = f"akte_bench_{uuid4().hex[:12]}"
    with pg.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield Settings(
            store="postgres",
            postgres_host=pg.host,
            postgres_port=pg.port,
            postgres_user=pg.user,
            postgres_dbname=pg.dbname,
            postgres_password=SecretStr(""),
            postgres_schema=schema,
            transcoder=transcoder,
            snapshot_interval=snapshot_interval,
        )
    finally:
        with pg.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


class BareApplication(Application[UUID]):
    """The library's plain Application with Akte's transcoder and transcodings."""

    name = "Akte"  # the same table names as the service's

    def construct_transcoder(self) -> Transcoder:
        transcoder = self.factory.transcoder()
        if not isinstance(transcoder, JSONTranscoder | OrjsonTranscoder):
            msg = f"transcoder {type(transcoder).__name__} cannot register transcodings"
            raise TypeError(msg)
        register_akte_transcodings(transcoder)
        return transcoder


# ----------------------------------------------------------------------- workload


@dataclass(frozen=True)
class Step:
    """One command of the plan: on which case file, which command."""

    case: int
    op: Op
    procedure_number: int = 0
    assignee: str = ""


def command_plan(commands: int, cases: int) -> list[Step]:
    """Commands round robin over the case files; per case file, of every five commands
    three add a note, one receives a procedure and one assigns it."""
    steps: list[Step] = []
    counts = [0] * cases
    procedures = [0] * cases
    for i in range(commands):
        case = i % cases
        position = counts[case] % 5
        counts[case] += 1
        if position == 1:
            procedures[case] += 1
            steps.append(Step(case, "receive"))
        elif position == 2:
            assignee = f"sb-{procedures[case] % 7 + 2:02d}"
            steps.append(Step(case, "assign", procedures[case], assignee))
        else:
            steps.append(Step(case, "note"))
    return steps


def _now_act() -> Act:
    now = datetime.now(tz=UTC)
    return Act(by=BY, at=now, recorded_at=now)


def _open_in_memory(act: Act) -> tuple[CaseFile, CaseReference]:
    case_id = uuid4()
    reference = f"{act.at.year}-{case_id.hex[:10].upper()}"
    case = CaseFile.open(
        case_id=case_id,
        office_id=OFFICE_ID,
        reference=reference,
        master_data=MASTER_DATA,
        act=act,
    )
    claim = CaseReference.claim(office_id=OFFICE_ID, reference=reference, case_id=case_id, act=act)
    return case, claim


def run_service_commands(
    settings: Settings,
    plan: Sequence[Step],
    cases: int,
    latencies: list[float] | None = None,
) -> float:
    """Seconds for the plan's commands through the service (opening the cases not timed);
    each command's seconds are appended to ``latencies`` if given."""
    service = build_service(settings)
    try:
        ids: list[UUID] = []
        versions: list[int] = []
        for _ in range(cases):
            opened = service.open_case(office_id=OFFICE_ID, master_data=MASTER_DATA, by=BY)
            ids.append(opened.case_id)
            versions.append(opened.version)
        start = perf_counter()
        for n, step in enumerate(plan):
            began = perf_counter()
            case_id = ids[step.case]
            version = versions[step.case]
            if step.op == "note":
                recorded = service.add_note(
                    case_id, expected_version=version, by=BY, text=_note_text(n)
                ).version
            elif step.op == "receive":
                recorded = service.receive_procedure(
                    case_id,
                    expected_version=version,
                    by=BY,
                    channel="online_application",
                    topic=TOPIC,
                    legal_basis=LEGAL_BASIS,
                ).version
            else:
                recorded = service.assign_procedure(
                    case_id,
                    expected_version=version,
                    by=BY,
                    procedure_number=step.procedure_number,
                    assignee=step.assignee,
                ).version
            versions[step.case] = recorded
            if latencies is not None:
                latencies.append(perf_counter() - began)
        return perf_counter() - start
    finally:
        service.close()


def run_bare_commands(
    settings: Settings,
    plan: Sequence[Step],
    cases: int,
    latencies: list[float] | None = None,
) -> float:
    """Seconds for the same domain events on in-memory aggregates, ``app.save`` each;
    each command's seconds are appended to ``latencies`` if given."""
    app = BareApplication(library_env(settings))
    try:
        aggregates: list[CaseFile] = []
        for _ in range(cases):
            case, claim = _open_in_memory(_now_act())
            app.save(case, claim)
            aggregates.append(case)
        start = perf_counter()
        for n, step in enumerate(plan):
            began = perf_counter()
            case = aggregates[step.case]
            act = _now_act()
            if step.op == "note":
                case.add_note(text=_note_text(n), act=act)
            elif step.op == "receive":
                case.receive_procedure(
                    channel="online_application", topic=TOPIC, legal_basis=LEGAL_BASIS, act=act
                )
            else:
                case.assign_procedure(
                    procedure_number=step.procedure_number, assignee=step.assignee, act=act
                )
            app.save(case)
            if latencies is not None:
                latencies.append(perf_counter() - began)
        return perf_counter() - start
    finally:
        app.close()


def _history_step(case: CaseFile, k: int, act: Act) -> None:
    """The k-th command of a long, realistic case history: procedures run their course."""
    procedure = len(case.procedures)
    position = k % 10
    if position == 0:
        case.receive_procedure(channel="appointment", topic=TOPIC, legal_basis=LEGAL_BASIS, act=act)
    elif position == 1:
        case.assign_procedure(procedure_number=procedure, assignee=f"sb-{k % 5 + 1:02d}", act=act)
    elif position == 2:
        case.request_documents(
            procedure_number=procedure,
            what=["Reisepass", "Meldebescheinigung", "Arbeitsvertrag", "Gehaltsnachweise"],
            due_on=act.at.date() + timedelta(days=28),
            act=act,
        )
    elif position in (3, 4):
        case.attach_document(
            kind="employment_contract" if position == 3 else "passport_copy",
            sha256=hashlib.sha256(f"document {k}".encode()).hexdigest(),
            size_bytes=184_320 + k,
            media_type="application/pdf",
            page_count=4,
            source="contact_form",
            act=act,
        )
    elif position == 5:
        case.record_correspondence(
            direction="sent",
            counterpart_kind="authority",
            counterpart_name="Bundesagentur für Arbeit, Zentrale Auslands- und Fachvermittlung",
            subject="Zustimmung zur Beschäftigung nach § 39 AufenthG, Az. BA-2024-0815",
            attachment_numbers=[len(case.documents)],
            act=act,
        )
    elif position in (6, 9):
        case.add_note(text=_note_text(k), act=act)
    elif position == 7:
        case.decide_procedure(
            procedure_number=procedure,
            outcome="granted",
            legal_basis=LEGAL_BASIS,
            reason=None,
            act=act,
        )
    else:
        case.close_procedure(procedure_number=procedure, act=act)


def build_long_case(app: Application[UUID], events: int, *, save_every: int = 10) -> UUID:
    """Write a case file of ``events`` events through ``app.save`` (so the application
    takes its snapshots as it would in service); returns its id."""
    case, claim = _open_in_memory(_now_act())
    app.save(case, claim)
    for k in range(events - 1):
        _history_step(case, k, _now_act())
        if (k + 1) % save_every == 0:
            app.save(case)
    app.save(case)
    return case.id


# ---------------------------------------------------------------------- sections


def _progress(config: BenchConfig, message: str) -> None:
    if config.progress:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _interleaved(repeats: int, variants: Sequence[Callable[[], R]]) -> list[list[R]]:
    """Run the variants A, B, A, B, ... ``repeats`` times; the samples of each."""
    samples: list[list[R]] = [[] for _ in variants]
    for _ in range(repeats):
        for index, variant in enumerate(variants):
            samples[index].append(variant())
    return samples


def _paired(numerators: Sequence[float], denominators: Sequence[float]) -> tuple[float, ...]:
    return tuple(a / b for a, b in zip(numerators, denominators, strict=True))


def _commands_per_second(
    config: BenchConfig,
    store: StoreName,
    runner: Callable[[Settings, Sequence[Step], int], float],
    plan: Sequence[Step],
    *,
    transcoder: TranscoderName = "orjson",
    case_cache_size: int | None = None,
) -> float:
    with fresh_store(
        store, config, transcoder=transcoder, snapshot_interval=config.snapshot_interval
    ) as settings:
        if case_cache_size is not None:
            settings = settings.model_copy(update={"case_cache_size": case_cache_size})
        return len(plan) / runner(settings, plan, config.cases)


def bench_commands(config: BenchConfig, store: StoreName, report: Report) -> None:
    plan = command_plan(config.commands, config.cases)
    warmup = command_plan(min(config.commands, 10 * config.cases), config.cases)
    _progress(config, f"{store}: commands/s, service vs bare save (warm-up)")
    _commands_per_second(config, store, run_service_commands, warmup)
    _commands_per_second(config, store, run_bare_commands, warmup)
    _progress(config, f"{store}: commands/s, {config.repeats} x {config.commands} commands each")
    service, bare, uncached = _interleaved(
        config.repeats,
        [
            lambda: _commands_per_second(config, store, run_service_commands, plan),
            lambda: _commands_per_second(config, store, run_bare_commands, plan),
            # Every command loads its case file from the store: the cost of a cache miss.
            lambda: _commands_per_second(
                config, store, run_service_commands, plan, case_cache_size=0
            ),
        ],
    )
    section = f"1. commands/s on {store}"
    report.figures += [
        Figure(
            f"commands.{store}.service",
            section,
            "service (cached case file + version check + save)",
            "cmd/s",
            tuple(service),
        ),
        Figure(
            f"commands.{store}.service_uncached",
            section,
            "service without case cache (load + version check + save)",
            "cmd/s",
            tuple(uncached),
        ),
        Figure(
            f"commands.{store}.bare",
            section,
            "bare Application.save (no reads)",
            "cmd/s",
            tuple(bare),
        ),
    ]
    report.ratios.append(
        Ratio(
            f"commands.{store}.service_over_bare",
            section,
            "service / bare",
            f"commands.{store}.service",
            f"commands.{store}.bare",
            _paired(service, bare),
            target=TARGET_SERVICE_SHARE,
        )
    )
    report.ratios.append(
        Ratio(
            f"commands.{store}.uncached_over_bare",
            section,
            "service without case cache / bare",
            f"commands.{store}.service_uncached",
            f"commands.{store}.bare",
            _paired(uncached, bare),
        )
    )


def bench_load(config: BenchConfig, store: StoreName, report: Report) -> None:
    events = config.long_case_events
    _progress(config, f"{store}: load time of a case file with {events} events")
    with fresh_store(store, config, snapshot_interval=config.snapshot_interval) as settings:
        writer = build_service(settings)
        try:
            case_id = build_long_case(writer, events)
        finally:
            writer.close()
        with_snapshots = build_service(settings)
        without = build_service(settings.model_copy(update={"snapshot_interval": 0}))
        try:
            if with_snapshots.snapshots is None or without.snapshots is not None:
                msg = "snapshot configuration is not what the benchmark expects"
                raise RuntimeError(msg)
            latest = list(with_snapshots.snapshots.get(case_id, desc=True, limit=1))
            for svc in (with_snapshots, without):
                if svc.get_case(case_id).version != events:  # also the warm-up
                    msg = f"the long case file does not have {events} events"
                    raise RuntimeError(msg)

            def timed_load(svc: AkteService) -> Callable[[], float]:
                def load() -> float:
                    start = perf_counter()
                    svc.get_case(case_id)
                    return (perf_counter() - start) * 1000

                return load

            snap, full = _interleaved(
                config.repeats * config.loads_per_repeat,
                [timed_load(with_snapshots), timed_load(without)],
            )
        finally:
            with_snapshots.close()
            without.close()
    section = f"2. load a case file of {events} events on {store}"
    snapshot_version = latest[0].originator_version if latest else 0
    report.figures += [
        Figure(
            f"load.{store}.snapshots",
            section,
            f"with snapshots (interval {config.snapshot_interval}; latest at v{snapshot_version})",
            "ms",
            tuple(snap),
        ),
        Figure(
            f"load.{store}.no_snapshots",
            section,
            f"without snapshots (replays {events} events)",
            "ms",
            tuple(full),
        ),
    ]
    report.ratios.append(
        Ratio(
            f"load.{store}.no_snapshots_over_snapshots",
            section,
            "without / with (speed-up by snapshots)",
            f"load.{store}.no_snapshots",
            f"load.{store}.snapshots",
            _paired(full, snap),
        )
    )


def _state(obj: object) -> dict[str, Any]:
    """What the library's mapper gives the transcoder: the object's state without id and
    version (``Mapper.to_stored_event``)."""
    state = dict(vars(obj))
    state.pop("originator_id", None)
    state.pop("originator_version", None)
    return state


def sample_states(config: BenchConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Event states and snapshot states of a long case file, read back from SQLite."""
    with fresh_store("sqlite", config, snapshot_interval=config.snapshot_interval) as settings:
        service = build_service(settings)
        try:
            case_id = build_long_case(service, config.long_case_events)
            events = [_state(event) for event in service.case_events(case_id)]
            snapshots = (
                [_state(s) for s in service.snapshots.get(case_id)] if service.snapshots else []
            )
        finally:
            service.close()
    return events, snapshots


def _check_transcoders(
    states: Sequence[dict[str, Any]], orjson_tc: Transcoder, json_tc: Transcoder
) -> None:
    """Both transcoders round-trip every state alike and read each other's bytes."""
    for state in states:
        via_orjson = orjson_tc.decode(orjson_tc.encode(state))
        if via_orjson != json_tc.decode(json_tc.encode(state)):
            msg = "orjson and json transcoders decode a state differently"
            raise RuntimeError(msg)
        if json_tc.decode(orjson_tc.encode(state)) != via_orjson:
            msg = "the json transcoder cannot read what the orjson transcoder wrote"
            raise RuntimeError(msg)


def _throughput(
    transcoder: Transcoder, states: Sequence[dict[str, Any]], passes: int
) -> tuple[float, float, float]:
    """(encodes/s, decodes/s, round trips/s) over ``passes`` passes of all states."""
    encode, decode = transcoder.encode, transcoder.decode
    start = perf_counter()
    for _ in range(passes):
        encoded = [encode(state) for state in states]
    encode_seconds = perf_counter() - start
    start = perf_counter()
    for _ in range(passes):
        for data in encoded:
            decode(data)
    decode_seconds = perf_counter() - start
    n = len(states) * passes
    return n / encode_seconds, n / decode_seconds, n / (encode_seconds + decode_seconds)


def bench_transcoders(config: BenchConfig, report: Report) -> None:
    _progress(config, "transcoders: sample states of a long case file")
    events, snapshots = sample_states(config)
    orjson_tc, json_tc = orjson_transcoder(), json_transcoder()
    _check_transcoders(events + snapshots, orjson_tc, json_tc)
    section = "3. transcoders: orjson vs the library's json"
    passes = config.transcoder_passes
    for kind, states in (("events", events), ("snapshots", snapshots)):
        if not states:
            report.notes.append(f"no {kind} to measure the transcoders on")
            continue
        size = {
            name: statistics.mean(len(tc.encode(s)) for s in states)
            for name, tc in (("orjson", orjson_tc), ("json", json_tc))
        }
        _progress(config, f"transcoders: {len(states)} {kind} states x {passes} passes")
        _throughput(orjson_tc, states, 1)  # warm-up
        _throughput(json_tc, states, 1)
        by_orjson, by_json = _interleaved(
            config.repeats,
            [
                partial(_throughput, orjson_tc, states, passes),
                partial(_throughput, json_tc, states, passes),
            ],
        )
        for op_index, op in enumerate(("encode", "decode", "round trip")):
            o = tuple(t[op_index] for t in by_orjson)
            j = tuple(t[op_index] for t in by_json)
            key = f"transcoder.{kind}.{op.replace(' ', '_')}"
            report.figures += [
                Figure(
                    f"{key}.orjson",
                    section,
                    f"{kind} {op}, orjson ({size['orjson']:,.0f} B/state)",
                    "states/s",
                    o,
                ),
                Figure(
                    f"{key}.json",
                    section,
                    f"{kind} {op}, json ({size['json']:,.0f} B/state)",
                    "states/s",
                    j,
                ),
            ]
            report.ratios.append(
                Ratio(
                    f"{key}.orjson_over_json",
                    section,
                    f"{kind} {op}: orjson / json",
                    f"{key}.orjson",
                    f"{key}.json",
                    _paired(o, j),
                )
            )

    plan = command_plan(config.commands, config.cases)
    warmup = command_plan(min(config.commands, 10 * config.cases), config.cases)
    _progress(config, "transcoders: service commands/s on sqlite, orjson vs json (warm-up)")
    transcoders: tuple[TranscoderName, ...] = ("orjson", "json")
    for name in transcoders:
        _commands_per_second(config, "sqlite", run_service_commands, warmup, transcoder=name)
    _progress(config, f"transcoders: {config.repeats} x {config.commands} service commands each")
    with_orjson, with_json = _interleaved(
        config.repeats,
        [
            lambda: _commands_per_second(
                config, "sqlite", run_service_commands, plan, transcoder="orjson"
            ),
            lambda: _commands_per_second(
                config, "sqlite", run_service_commands, plan, transcoder="json"
            ),
        ],
    )
    report.figures += [
        Figure(
            "transcoder.e2e.sqlite.orjson",
            section,
            "service commands on sqlite, orjson",
            "cmd/s",
            tuple(with_orjson),
        ),
        Figure(
            "transcoder.e2e.sqlite.json",
            section,
            "service commands on sqlite, json",
            "cmd/s",
            tuple(with_json),
        ),
    ]
    report.ratios.append(
        Ratio(
            "transcoder.e2e.sqlite.orjson_over_json",
            section,
            "service commands on sqlite: orjson / json",
            "transcoder.e2e.sqlite.orjson",
            "transcoder.e2e.sqlite.json",
            _paired(with_orjson, with_json),
        )
    )


# ------------------------------------------------------------------------- driver


def run(config: BenchConfig) -> Report:
    """Every measurement of the benchmark, as a report."""
    started = perf_counter()
    catalogue = load_catalogue()
    catalogue.check_topic("topic", TOPIC)
    catalogue.check_legal_basis("legal_basis", LEGAL_BASIS)

    stores = list(config.stores)
    server: str | None = None
    notes: list[str] = []
    if "postgres" in stores:
        server, problem = postgres_server_version(config.postgres)
        if problem is not None:
            stores.remove("postgres")
            notes.append(f"PostgreSQL rows SKIPPED: {problem}")
    report = Report(
        machine=machine_info(server),
        parameters={
            "stores": list(config.stores),
            "repeats": config.repeats,
            "commands": config.commands,
            "cases": config.cases,
            "command_mix": "per case: 3/5 add_note, 1/5 receive_procedure, 1/5 assign_procedure",
            "snapshot_interval": config.snapshot_interval,
            "long_case_events": config.long_case_events,
            "loads_per_repeat": config.loads_per_repeat,
            "transcoder_passes": config.transcoder_passes,
            "sqlite_dir": str(config.tmp_root or tempfile.gettempdir()),
            "postgres": f"{config.postgres.user}@{config.postgres.host}:{config.postgres.port}"
            f"/{config.postgres.dbname}",
        },
        notes=notes,
    )
    for store in stores:
        bench_commands(config, store, report)
    for store in stores:
        bench_load(config, store, report)
    bench_transcoders(config, report)
    report.seconds = perf_counter() - started
    return report


def _number(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def format_report(report: Report) -> str:
    m = report.machine
    p = report.parameters
    lines = [
        "Akte benchmark",
        f"machine: {m.cpu_model}, {m.nproc} CPUs; {m.python}; {m.platform}",
        "libraries: "
        + ", ".join(f"{k} {v}" for k, v in m.libraries.items())
        + (f", PostgreSQL server {m.postgres_server}" if m.postgres_server else ""),
        f"parameters: stores={','.join(p['stores'])} repeats={p['repeats']} "
        f"commands={p['commands']} cases={p['cases']} "
        f"snapshot_interval={p['snapshot_interval']} long_case_events={p['long_case_events']}",
        f"command mix: {p['command_mix']}",
        "figures are medians over the repeats (spread: min..max); ratios are medians of the "
        "per-repeat ratios of interleaved runs",
    ]
    sections = list(dict.fromkeys([f.section for f in report.figures]))
    for section in sections:
        lines += ["", section]
        for figure in (f for f in report.figures if f.section == section):
            spread = f"{_number(min(figure.samples))}..{_number(max(figure.samples))}"
            lines.append(
                f"  {figure.label:<56} {_number(figure.median):>10} {figure.unit:<9}"
                f" ({spread}, n={len(figure.samples)})"
            )
        for ratio in (r for r in report.ratios if r.section == section):
            verdict = ""
            if ratio.target is not None:
                met = "MET" if ratio.meets_target else "MISSED"
                verdict = f"  target >= {ratio.target:.2f}: {met}"
            lines.append(f"  = {ratio.label:<54} {ratio.value:>10.2f}x{verdict}")
    if report.notes:
        lines += ["", *(f"NOTE: {note}" for note in report.notes)]
    lines += ["", f"total time: {report.seconds:.0f} s"]
    return "\n".join(lines)


def store_names(text: str) -> tuple[StoreName, ...]:
    """Parse ``--stores``: a comma-separated, non-empty subset of STORES, in the order given."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names or any(name not in STORES for name in names):
        msg = f"stores must be a comma-separated subset of {','.join(STORES)}"
        raise argparse.ArgumentTypeError(msg)
    return cast(tuple[StoreName, ...], names)


def add_postgres_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--pg-host/--pg-port/--pg-user/--pg-dbname``, defaulting to ``PostgresParams()``."""
    pg = PostgresParams()
    parser.add_argument("--pg-host", default=pg.host)
    parser.add_argument("--pg-port", type=int, default=pg.port)
    parser.add_argument("--pg-user", default=pg.user)
    parser.add_argument("--pg-dbname", default=pg.dbname)


def postgres_from(args: argparse.Namespace) -> PostgresParams:
    """The PostgresParams given by the arguments ``add_postgres_arguments`` added."""
    return PostgresParams(
        host=args.pg_host, port=args.pg_port, user=args.pg_user, dbname=args.pg_dbname
    )


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` to ``path`` as indented JSON with a trailing newline, creating parents."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def parse_args(argv: Sequence[str] | None = None) -> tuple[BenchConfig, Path | None]:
    parser = argparse.ArgumentParser(
        prog="bin/bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    defaults = BenchConfig()
    parser.add_argument(
        "--stores", type=store_names, default=defaults.stores, help="default: sqlite,postgres"
    )
    parser.add_argument(
        "--repeats", type=positive_int, default=defaults.repeats, help="default: %(default)s"
    )
    parser.add_argument(
        "--commands",
        type=positive_int,
        default=defaults.commands,
        help="commands per measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--cases",
        type=positive_int,
        default=defaults.cases,
        help="case files the commands go to, round robin (default: %(default)s)",
    )
    parser.add_argument(
        "--events",
        type=positive_int,
        default=defaults.long_case_events,
        help="events of the case file loaded in section 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--loads",
        type=positive_int,
        default=defaults.loads_per_repeat,
        help="loads per repeat in section 2 (default: %(default)s)",
    )
    parser.add_argument(
        "--passes",
        type=positive_int,
        default=defaults.transcoder_passes,
        help="passes over the sample states per transcoder measurement (default: %(default)s)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=positive_int,
        default=defaults.snapshot_interval,
        help="the service's snapshot interval (default: %(default)s)",
    )
    parser.add_argument("--tmp-dir", type=Path, default=None, help="where SQLite files go")
    add_postgres_arguments(parser)
    parser.add_argument(
        "--json", type=Path, default=None, metavar="OUT", help="also write the results as JSON"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    config = BenchConfig(
        stores=args.stores,
        repeats=args.repeats,
        commands=args.commands,
        cases=args.cases,
        snapshot_interval=args.snapshot_interval,
        long_case_events=args.events,
        loads_per_repeat=args.loads,
        transcoder_passes=args.passes,
        postgres=postgres_from(args),
        tmp_root=args.tmp_dir,
        progress=not args.quiet,
    )
    return config, args.json


def main(argv: Sequence[str] | None = None) -> int:
    config, json_out = parse_args(argv)
    report = run(config)
    print(format_report(report))
    if json_out is not None:
        write_json(json_out, report.to_json())
        print(f"\nwritten: {json_out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
