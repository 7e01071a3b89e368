"""Fixtures shared by the suite: one behaviour, two stores.

``store`` parametrises a test over the embedded SQLite store and PostgreSQL. Every
PostgreSQL test gets a schema of its own, dropped afterwards, so runs never see each
other's events. Without a reachable server, PostgreSQL tests are skipped and the summary
says so; under ``CI=true`` that is an error instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypedDict

import psycopg
import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_read_models, build_service
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from service import AkteService

# The public doors' rate limits (adapters/http/rate_limits.py) count per client address,
# and every test client comes from the same one: tests of other concerns knock more often
# than a person would. The limits' own tests (tests/http/test_rate_limits.py) set rates
# explicitly, which wins over these.
for _door in (
    "CONTACT_FORM",
    "DECLARATIONS",
    "CHALLENGES",
    "BOOKINGS",
    "LOOKUPS",
    "FAILED_LOGINS",
):
    os.environ.setdefault(f"AKTE_RATE_LIMIT_{_door}", "")


class PostgresTarget(TypedDict):
    host: str
    port: int
    user: str
    dbname: str


POSTGRES = PostgresTarget(
    host=os.environ.get("AKTE_TEST_POSTGRES_HOST", "127.0.0.1"),
    port=int(os.environ.get("AKTE_TEST_POSTGRES_PORT", "5432")),
    user=os.environ.get("AKTE_TEST_POSTGRES_USER", "postgres"),
    dbname=os.environ.get("AKTE_TEST_POSTGRES_DBNAME", "test"),
)
_postgres_problem: str | None = None


def postgres_environment(data_dir: Path, schema: str) -> dict[str, str]:
    """The ``AKTE_*`` variables of a deployment on the test server (a process or a CLI
    reads its settings from them)."""
    return {
        "AKTE_STORE": "postgres",
        "AKTE_DATA_DIR": str(data_dir),
        "AKTE_POSTGRES_HOST": str(POSTGRES["host"]),
        "AKTE_POSTGRES_PORT": str(POSTGRES["port"]),
        "AKTE_POSTGRES_USER": str(POSTGRES["user"]),
        "AKTE_POSTGRES_DBNAME": str(POSTGRES["dbname"]),
        "AKTE_POSTGRES_SCHEMA": schema,
    }


def _probe_postgres() -> str | None:
    try:
        with psycopg.connect(connect_timeout=3, **POSTGRES):
            return None
    except psycopg.Error as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return f"PostgreSQL at {POSTGRES['host']}:{POSTGRES['port']} unreachable: {reason}"


def pytest_configure(config: pytest.Config) -> None:
    global _postgres_problem
    _postgres_problem = _probe_postgres()
    if _postgres_problem and os.environ.get("CI") == "true":
        raise pytest.UsageError(f"CI=true but PostgreSQL tests cannot run: {_postgres_problem}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _postgres_problem is None:
        return
    skip = pytest.mark.skip(reason=_postgres_problem)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _postgres_problem is not None:
        terminalreporter.write_line(
            f"NOTE: PostgreSQL tests were SKIPPED ({_postgres_problem})", yellow=True, bold=True
        )


@dataclass
class FakeClock:
    """A clock the test moves by hand; starts at a fixed business day."""

    now: datetime = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@contextmanager
def fresh_postgres_schema(prefix: str = "akte_test") -> Iterator[str]:
    """An empty schema of its own on the test server, dropped afterwards."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(autocommit=True, **POSTGRES) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield schema
    finally:
        with psycopg.connect(autocommit=True, **POSTGRES) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    with fresh_postgres_schema() as schema:
        yield schema


@contextmanager
def another_deployment(settings: Settings, tmp_path: Path, name: str) -> Iterator[Settings]:
    """Settings for a second deployment beside ``settings`` (another office): a data
    directory of its own and, on PostgreSQL, a schema of its own, dropped afterwards."""
    update: dict[str, object] = {"data_dir": tmp_path / name}
    if settings.store != "postgres":
        yield settings.model_copy(update=update)
        return
    with fresh_postgres_schema(f"akte_test_{name.replace('-', '_')}") as schema:
        yield settings.model_copy(update={**update, "postgres_schema": schema})


def make_settings(store: str, tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if store == "sqlite":
        return Settings(store="sqlite", data_dir=tmp_path / "data")
    schema = request.getfixturevalue("postgres_schema")
    return Settings(
        store="postgres",
        # Keys of the local token issuer live here, even with PostgreSQL as the store.
        data_dir=tmp_path / "data",
        postgres_host=POSTGRES["host"],
        postgres_port=POSTGRES["port"],
        postgres_user=POSTGRES["user"],
        postgres_dbname=POSTGRES["dbname"],
        postgres_schema=schema,
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for a fresh, empty store: SQLite, then PostgreSQL."""
    return make_settings(request.param, tmp_path, request)


@pytest.fixture
def service(settings: Settings, clock: FakeClock) -> Iterator[AkteService]:
    svc = build_service(settings, clock=clock)
    try:
        yield svc
    finally:
        svc.close()


# ------------------------------------------------------------------ HTTP with read models


@pytest.fixture
def read_models(service: AkteService, settings: Settings) -> Iterator[ReadModels]:
    """Read models followed in the process, as ``akte serve`` does by default."""
    models = build_read_models(settings, service, follow=True)
    try:
        yield models
    finally:
        models.close()


@pytest.fixture
def client(
    service: AkteService, settings: Settings, read_models: ReadModels
) -> Iterator[TestClient]:
    with TestClient(build_app(settings, service, read_models=read_models)) as test_client:
        yield test_client


def bearer(
    settings: Settings, user_id: str, role: Role, office: str | None = None
) -> dict[str, str]:
    """A local token for ``user_id`` in ``role`` (the settings' default office)."""
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    token = issuer.issue(
        user_id=user_id, roles=[role], office_id=office or settings.default_office_id
    )
    return {"Authorization": f"Bearer {token}"}
