"""What every Akte benchmark shares: configuration, the report, fresh stores, the command
workload and the command-line helpers.

:mod:`benchmarks.service_cost` (``bin/bench``) is the benchmark these were first written
for; the others (``bin/bench-*``) reuse them: a :class:`BenchConfig`, a :class:`Report`
(:class:`Figure` and :class:`Ratio` entries, the :class:`Machine` it ran on), a
:func:`fresh_store` per measurement (a SQLite file in a temporary directory or a
PostgreSQL schema, deleted afterwards), and the same command plan
(:func:`command_plan`) through the service or the library's bare ``Application``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sqlite3
import statistics
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import metadata
from pathlib import Path
from time import perf_counter
from typing import Any, Final, Literal, cast
from uuid import UUID, uuid4

import psycopg
from eventsourcing.application import Application
from eventsourcing.persistence import JSONTranscoder, Transcoder
from psycopg import sql
from pydantic import SecretStr

from adapters.bootstrap import build_service, library_env
from adapters.settings import Settings
from adapters.store.transcoding import (
    OrjsonTranscoder,
    register_akte_transcodings,
)
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.case_reference import CaseReference
from service import AkteService

StoreName = Literal["sqlite", "postgres"]
TranscoderName = Literal["orjson", "json"]
Op = Literal["note", "receive", "assign"]

STORES: Final[tuple[StoreName, ...]] = ("sqlite", "postgres")

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
        yield schema_settings(
            pg, schema, transcoder=transcoder, snapshot_interval=snapshot_interval
        )
    finally:
        with pg.connect() as conn:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def schema_settings(
    pg: PostgresParams,
    schema: str,
    *,
    transcoder: TranscoderName = "orjson",
    snapshot_interval: int = 50,
) -> Settings:
    """Settings for the store in PostgreSQL schema ``schema`` (which must exist)."""
    return Settings(
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


def simulate_reference_year(
    service: AkteService, scale: float, warn: Callable[[str], None]
) -> None:
    """The reference office year at ``scale`` through ``service``, its commands written in
    groups. Where autovacuum is off the run keeps the log's statistics itself
    (:class:`~adapters.store.statistics_upkeep.GrowingLogStatistics`, after saying so):
    without them every load of a case file became a scan at a few million events."""
    from adapters.simulation.profile import load_profile
    from adapters.simulation.simulator import simulate
    from adapters.store.statistics_upkeep import GrowingLogStatistics
    from benchmarks.simulator import DEFAULT_SEED, DEFAULT_YEAR

    upkeep = GrowingLogStatistics.of(service.recorder)
    if upkeep.problem is not None:
        warn(f"warning: {upkeep.problem}; ANALYZE runs as the log doubles")
    with service.grouped():
        simulate(
            service,
            load_profile(),
            seed=DEFAULT_SEED,
            year=DEFAULT_YEAR,
            scale=scale,
            progress=lambda reached: upkeep.grown(reached.events),
        )


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


def open_in_memory(act: Act) -> tuple[CaseFile, CaseReference]:
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
            case, claim = open_in_memory(_now_act())
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
    case, claim = open_in_memory(_now_act())
    app.save(case, claim)
    for k in range(events - 1):
        _history_step(case, k, _now_act())
        if (k + 1) % save_every == 0:
            app.save(case)
    app.save(case)
    return case.id


# -------------------------------------------------------------------- command line


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
