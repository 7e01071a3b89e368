"""Several API processes and projection workers on one PostgreSQL (issue 11).

Three ``akte serve`` processes (``AKTE_PROJECTIONS_IN_PROCESS=false``) and two
``akte projections run`` workers share one PostgreSQL schema. Clients send commands over
HTTP to all three servers at once; mid-stream the worker that holds the read models is
killed with SIGKILL and started again. Afterwards:

- every acknowledged command is in the log exactly once (each case file's events are
  exactly the acknowledged commands, in order, and nothing else was written);
- read-your-writes held: every worklist read with ``min_position`` from an acknowledged
  write, from a *different* API process, reflected the write, unless it said honestly
  that the views were behind (``X-Akte-Views-Behind``: only while no worker followed);
- the views equal a clean rebuild;
- at no time did both workers hold (and so write) the same read model: PostgreSQL's
  lock table shows which process's connection holds each read model's advisory lock.

Bounded: about 40 s on two loaded cores; every wait has a timeout and every child is
stopped in ``finally``.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Final
from uuid import UUID

import httpx2 as httpx
import psycopg
import pytest

from adapters.bootstrap import build_service
from adapters.http.auth.identity import Role
from adapters.settings import Settings
from adapters.views.store import advisory_lock_key
from benchmarks.cluster import (
    ApiProcess,
    ChildProcess,
    WorkerProcess,
    issue_token,
    stop_all,
    token_issuer,
)
from projections.read_models import READ_MODELS
from projections.worklists import WORKLISTS
from service import AkteService
from tests.conftest import POSTGRES, make_settings
from tests.support.projections import (
    CaseDriver,
    dump,
    rebuilt_dump,
    stored_positions,
    views_for,
)

pytestmark = pytest.mark.postgres

OFFICE: Final = "abh-musterstadt"
CLIENTS: Final = 6
TRAFFIC_SECONDS: Final = 14.0
KILL_AFTER_SECONDS: Final = 4.0
TIMEOUT: Final = httpx.Timeout(20.0)
DUE_ON: Final = (date.today() + timedelta(days=30)).isoformat()
NAMES: Final = tuple(p.name for p in READ_MODELS)


# ----------------------------------------------------------------- lock holders


def _socket_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process ``pid`` has open (from /proc)."""
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def lock_holders(schema: str, workers: dict[str, ChildProcess]) -> dict[str, str]:
    """Per read model, which worker's connection holds its advisory lock now."""
    keys = {advisory_lock_key(schema, name) & 0xFFFF_FFFF_FFFF_FFFF: name for name in NAMES}
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        rows = conn.execute(
            "SELECT (l.classid::bigint << 32) | l.objid::bigint, a.client_port "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1"
        ).fetchall()
    ports = {label: _socket_ports(w.pid) for label, w in workers.items() if w.alive()}
    holders: dict[str, str] = {}
    for key, client_port in rows:
        name = keys.get(key & 0xFFFF_FFFF_FFFF_FFFF)  # PostgreSQL's shift wraps to signed
        if name is None:
            continue  # another test's schema
        owners = [label for label, open_ports in ports.items() if client_port in open_ports]
        assert name not in holders, f"{name} locked twice"
        holders[name] = owners[0] if len(owners) == 1 else "?"
    return holders


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ------------------------------------------------------------------- the clients


@dataclass
class Ack:
    """An acknowledged write: the case file's version before and after, the event."""

    case_id: UUID
    before: int
    after: int
    event: str


@dataclass
class ClientLog:
    acks: list[Ack] = field(default_factory=list)
    reads_checked: int = 0
    reads_behind: int = 0
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class Client:
    """A team lead who opens case files, receives, assigns, requests, decides, and
    checks each assignment (and decision) in their caseworker's list on another server."""

    def __init__(
        self, index: int, apis: list[ApiProcess], lead: str, worker_token: str, stop: float
    ) -> None:
        self.index = index
        self.apis = apis
        self.lead = {"Authorization": f"Bearer {lead}"}
        self.caseworker = {"Authorization": f"Bearer {worker_token}"}
        self.assignee = f"sb-mp-{index}"
        self.stop = stop
        self.log = ClientLog()
        self.calls = index
        self.http = httpx.Client(trust_env=False, timeout=TIMEOUT)

    def _api(self) -> str:
        self.calls += 1
        return self.apis[self.calls % len(self.apis)].base_url

    def _post(self, path: str, body: dict[str, Any], version: int | None) -> httpx.Response:
        headers = dict(self.lead)
        if version is not None:
            headers["If-Match"] = f'"{version}"'
        response = self.http.post(self._api() + path, json=body, headers=headers)
        if response.status_code not in (200, 201):
            problem = response.json().get("type", "") if response.content else ""
            msg = f"POST {path.split('/')[-1]}: {response.status_code} {problem}"
            raise AssertionError(msg)
        return response

    def _write(
        self, case_id: UUID, path: str, body: dict[str, Any], version: int, event: str
    ) -> tuple[int, int, httpx.Response]:
        response = self._post(f"/cases/{case_id}{path}", body, version)
        after = int(response.headers["ETag"].strip('"'))
        self.log.acks.append(Ack(case_id, version, after, event))
        return after, int(response.headers["X-Akte-Position"]), response

    def _listed(self, position: int, case_id: UUID, number: int) -> bool | None:
        """Is the procedure on the caseworker's list? None: the list says it is behind."""
        response = self.http.get(
            self._api() + "/worklists/my-open-procedures",
            params={"min_position": position, "limit": 200},
            headers=self.caseworker,
        )
        assert response.status_code == 200, f"worklist: {response.status_code}"
        self.log.reads_checked += 1
        if response.headers.get("X-Akte-Views-Behind") == "true":
            self.log.reads_behind += 1
            return None
        return any(
            item["case_id"] == str(case_id) and item["procedure_number"] == number
            for item in response.json()["items"]
        )

    def run(self) -> None:
        try:
            while time.monotonic() < self.stop:
                self._one_case()
        except (AssertionError, httpx.HTTPError) as error:
            self.log.errors.append(f"client {self.index}: {error}")
        finally:
            self.http.close()

    def _one_case(self) -> None:
        opened = self._post(
            "/cases",
            {
                "surname": "Muster",
                "given_names": "Erika",
                "date_of_birth": "1990-01-01",
                "nationality": "SYR",
                "passport_number": f"P{self.index}{random.randrange(10**8):08d}",
            },
            None,
        )
        case_id = UUID(opened.json()["case_id"])
        version = int(opened.headers["ETag"].strip('"'))
        self.log.acks.append(Ack(case_id, 0, version, "Opened"))
        for _ in range(2):
            procedures = "/procedures"
            version, _, created = self._write(
                case_id,
                procedures,
                {"channel": "mail", "topic": "extend_residence_permit"},
                version,
                "ProcedureReceived",
            )
            number = int(created.json()["number"])
            version, position, _ = self._write(
                case_id,
                f"{procedures}/{number}/assignment",
                {"assignee": self.assignee},
                version,
                "ProcedureAssigned",
            )
            if self._listed(position, case_id, number) is False:
                self.log.violations.append(f"assignment at {position} not listed")
            version, _, _ = self._write(
                case_id,
                f"{procedures}/{number}/document-requests",
                {"what": ["Pass"], "due_on": DUE_ON},
                version,
                "DocumentsRequested",
            )
            version, position, _ = self._write(
                case_id,
                f"{procedures}/{number}/decision",
                {"outcome": "granted"},
                version,
                "ProcedureDecided",
            )
            if self._listed(position, case_id, number) is True:
                self.log.violations.append(f"decision at {position} still listed")


# --------------------------------------------------------------------- the test


@pytest.fixture
def pg_settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    settings = make_settings("postgres", tmp_path, request)
    return settings.model_copy(update={"postgres_pool_size": 4, "postgres_max_overflow": 4})


@pytest.fixture
def children() -> Iterator[list[ChildProcess]]:
    started: list[ChildProcess] = []
    try:
        yield started
    finally:
        stop_all(started)


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_three_api_processes_and_two_workers_lose_and_duplicate_nothing(
    pg_settings: Settings, children: list[ChildProcess], tmp_path: Path
) -> None:
    settings = pg_settings
    schema = settings.postgres_schema
    # The tables exist before several processes start (none races to create them), and
    # the signing key before the servers load it.
    service = build_service(settings)
    issuer = token_issuer(settings)
    logs = tmp_path / "logs"
    try:
        apis = [
            ApiProcess(settings, logs / f"api-{n}.log", projections_in_process="false")
            for n in range(3)
        ]
        # One after another: every process runs the library's CREATE OR REPLACE FUNCTION
        # at start, and PostgreSQL refuses two at once ("tuple concurrently updated").
        for api in apis:
            children.append(api)
            api.start()
            api.wait_ready()
        first = WorkerProcess(settings, logs / "worker-a.log", poll_interval=0.5)
        children.append(first)
        first.start()
        first.wait_following()
        wait_for(lambda: len(stored_positions_of(settings)) == len(NAMES), 60, "views built")
        second = WorkerProcess(settings, logs / "worker-b.log", poll_interval=0.5)
        children.append(second)
        second.start()
        second.wait_following()
        time.sleep(0.5)  # the second worker has tried the locks
        holders = lock_holders(schema, {"a": first, "b": second})
        assert holders == dict.fromkeys(NAMES, "a"), "the second worker holds nothing"

        lead = issue_token(issuer, "tl-mp", [Role.TEAM_LEAD], OFFICE)
        stop = time.monotonic() + TRAFFIC_SECONDS
        clients = [
            Client(
                n,
                apis,
                lead,
                issue_token(issuer, f"sb-mp-{n}", [Role.CASEWORKER], OFFICE),
                stop,
            )
            for n in range(CLIENTS)
        ]
        threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
        for thread in threads:
            thread.start()

        time.sleep(KILL_AFTER_SECONDS)
        first.kill()  # SIGKILL, mid-stream
        killed_at = position_now(service)
        restarted = WorkerProcess(settings, logs / "worker-a2.log", poll_interval=0.5)
        children.append(restarted)
        restarted.start()
        restarted.wait_following()

        for thread in threads:
            thread.join(timeout=TRAFFIC_SECONDS + 60)
            assert not thread.is_alive(), "a client hung"
        errors = [e for c in clients for e in c.log.errors]
        assert errors == [], errors
        head = position_now(service)
        assert head > killed_at, "writes went on after the kill"
        wait_for(
            lambda: min(stored_positions_of(settings).values()) == head, 60, "workers caught up"
        )
        # One of the two live workers took over each read model, never both.
        holders = lock_holders(schema, {"b": second, "a2": restarted})
        assert set(holders) == set(NAMES)
        assert set(holders.values()) <= {"b", "a2"}
        for worker in (second, restarted):
            assert worker.stop() == 0, "the worker stops cleanly on SIGTERM"
        for api in apis:
            api.check_alive()

        logs_of = [c.log for c in clients]
        violations = [v for log in logs_of for v in log.violations]
        assert violations == [], violations
        reads = sum(log.reads_checked for log in logs_of)
        behind = sum(log.reads_behind for log in logs_of)
        assert reads >= 20, "enough traffic to mean something"
        assert behind < reads / 2, "lists were behind only while no worker followed"

        acks = [ack for log in logs_of for ack in log.acks]
        assert_each_ack_once(service, acks)
        print(
            f"\n{len(acks)} acknowledged writes, {reads} list reads ({behind} said behind), "
            f"log head {head}, killed at {killed_at}, taken over by {sorted(set(holders.values()))}"
        )

        with views_for(settings) as views:
            assert min(stored_positions(views).values()) == head
            followed = dump(service, views, READ_MODELS)
            assert rebuilt_dump(service, views, READ_MODELS) == followed
    finally:
        service.close()


def stored_positions_of(settings: Settings) -> dict[str, int]:
    with views_for(settings) as views:
        try:
            return stored_positions(views)
        except Exception:  # not built yet
            return {}


def position_now(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def assert_each_ack_once(service: AkteService, acks: list[Ack]) -> None:
    """Each case file's events are exactly its acknowledged commands, in order, and the
    only other events in the log are the file-number claims of the opened case files."""
    by_case: dict[UUID, list[Ack]] = {}
    for ack in acks:
        by_case.setdefault(ack.case_id, []).append(ack)
    events_of_cases = 0
    for case_id, case_acks in by_case.items():
        case_acks.sort(key=lambda ack: ack.before)
        events = service.case_events(case_id)
        events_of_cases += len(events)
        expected: list[str] = []
        for ack in case_acks:
            assert ack.after == ack.before + 1, "one event per command"
            expected.append(ack.event)
        assert [type(e).__name__ for e in events] == expected
        assert [e.originator_version for e in events] == list(range(1, len(events) + 1))
    notifications = service.recorder.select_notifications(start=1, limit=10**7)
    per_originator = Counter(n.originator_id for n in notifications)
    assert sum(per_originator[case_id] for case_id in by_case) == events_of_cases
    others = len(notifications) - events_of_cases
    assert others == len(by_case), "nothing but one file-number claim per opened case"


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_a_second_worker_takes_only_what_the_first_does_not_hold(
    pg_settings: Settings, children: list[ChildProcess], tmp_path: Path
) -> None:
    """One worker for the worklists, one for every read model: the second follows only
    the others, and takes the worklists over once the first is gone."""
    settings = pg_settings
    schema = settings.postgres_schema
    service = build_service(settings)
    try:
        worklists = [p.name for p in WORKLISTS]
        first = WorkerProcess(settings, tmp_path / "a.log", worklists, poll_interval=0.2)
        children.append(first)
        first.start()
        first.wait_following()
        wait_for(
            lambda: set(lock_holders(schema, {"a": first})) == set(worklists), 30, "first locks"
        )
        second = WorkerProcess(settings, tmp_path / "b.log", poll_interval=0.2)
        children.append(second)
        second.start()
        second.wait_following()
        wait_for(lambda: len(lock_holders(schema, {"a": first})) == len(NAMES), 30, "locks")
        expected = {name: "a" if name in worklists else "b" for name in NAMES}
        position = 0
        for _ in range(3):
            position = CaseDriver.open(service).position
            time.sleep(0.3)
            assert lock_holders(schema, {"a": first, "b": second}) == expected
        wait_for(lambda: min(stored_positions_of(settings).values()) >= position, 30, "views")

        first.kill()
        wait_for(  # the second retries the locks every 5 s
            lambda: lock_holders(schema, {"b": second}) == dict.fromkeys(NAMES, "b"),
            30,
            "take-over",
        )
        position = CaseDriver.open(service).position
        wait_for(lambda: min(stored_positions_of(settings).values()) >= position, 30, "views")
        with views_for(settings) as views:
            assert dump(service, views, READ_MODELS) == rebuilt_dump(service, views, READ_MODELS)
    finally:
        service.close()
