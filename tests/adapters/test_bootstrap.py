"""The composition root: it builds every variant the settings can ask for, and what it
builds for is handed over (``create_app`` builds nothing itself). Several processes
starting at once on one empty store (API replicas, workers, a migration run) create the
tables once between them, and none of them fails."""

from __future__ import annotations

import multiprocessing
import os
import stat
import threading
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from adapters.bootstrap import (
    build_app,
    build_read_models,
    build_service,
    document_store_for,
    open_service,
    open_views_store,
    payments_for,
    served_app,
    token_verifier_for,
)
from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.postgres import PostgresDocumentStore
from adapters.http.app import create_app
from adapters.http.auth.local_issuer import LOCAL_AUDIENCE, LOCAL_ISSUER
from adapters.http.auth.tokens import AuthConfigurationError, TokenVerifier
from adapters.payment.provider import HttpPaymentProvider
from adapters.payment.setup import PaymentSetup, PaymentsSwitchedOff
from adapters.settings import Settings
from service import AkteService
from tests.conftest import make_settings
from tests.support.projections import MASTER_DATA

STARTING_AT_ONCE = 6


def test_services_starting_at_once_on_an_empty_store_all_come_up(settings: Settings) -> None:
    started: list[AkteService] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(STARTING_AT_ONCE)

    def start() -> None:
        barrier.wait()
        try:
            started.append(build_service(settings))
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    threads = [threading.Thread(target=start) for _ in range(STARTING_AT_ONCE)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not failures, [repr(failure) for failure in failures]
        assert len(started) == STARTING_AT_ONCE
        opened = started[0].open_case(
            office_id="abh-musterstadt", master_data=MASTER_DATA, by="sb-01"
        )
        assert started[-1].get_case(opened.case_id).reference == opened.result
    finally:
        for service in started:
            service.close()


def _start_and_write(data_dir: str, barrier: Any, outcomes: Any) -> None:
    """In a process of its own: start on the shared store at the barrier, write once."""
    barrier.wait()
    try:
        with open_service(Settings(store="sqlite", data_dir=Path(data_dir))) as service:
            opened = service.open_case(
                office_id="abh-musterstadt", master_data=MASTER_DATA, by="sb-01"
            )
    except BaseException as error:  # reported by the test, with the others
        outcomes.put(repr(error))
    else:
        outcomes.put(f"opened {opened.case_id}")


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_processes_starting_at_once_on_a_fresh_sqlite_store_all_come_up(tmp_path: Path) -> None:
    # Real processes: the set-up lock must hold across processes, not only threads.
    data_dir = tmp_path / "data"
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(STARTING_AT_ONCE)
    outcomes = context.Queue()
    processes = [
        context.Process(target=_start_and_write, args=(str(data_dir), barrier, outcomes))
        for _ in range(STARTING_AT_ONCE)
    ]
    for process in processes:
        process.start()
    try:
        reported = [outcomes.get(timeout=180) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
    assert all(outcome.startswith("opened ") for outcome in reported), reported
    with open_service(Settings(store="sqlite", data_dir=data_dir)) as service:
        for outcome in reported:
            case_id = UUID(outcome.removeprefix("opened "))
            assert service.get_case(case_id).id == case_id


WRITES_EACH = 25


def test_writers_through_two_services_on_one_sqlite_store_wait_for_each_other(
    tmp_path: Path,
) -> None:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    failures: list[BaseException] = []
    opened: list[UUID] = []
    with open_service(settings) as first, open_service(settings) as second:
        barrier = threading.Barrier(2)

        def write(service: AkteService) -> None:
            barrier.wait()
            try:
                for _ in range(WRITES_EACH):
                    result = service.open_case(
                        office_id="abh-musterstadt", master_data=MASTER_DATA, by="sb-01"
                    )
                    opened.append(result.case_id)
            except BaseException as error:  # reported below
                failures.append(error)

        writers = [threading.Thread(target=write, args=(s,)) for s in (first, second)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=120)
        assert not failures, [repr(failure) for failure in failures]
        assert len(set(opened)) == 2 * WRITES_EACH
        for case_id in opened:
            assert first.get_case(case_id).id == case_id


# ------------------------------------------------------------- each variant


def test_documents_go_to_a_directory_or_to_postgresql_as_the_settings_say(
    tmp_path: Path,
) -> None:
    on_disk = document_store_for(Settings(data_dir=tmp_path))
    assert isinstance(on_disk, DirectoryDocumentStore)

    # PostgreSQL connects on first use: building the store needs no server.
    in_postgres = document_store_for(
        Settings(data_dir=tmp_path, store="postgres", postgres_schema="akte_office")
    )
    try:
        assert isinstance(in_postgres, PostgresDocumentStore)
    finally:
        in_postgres.close()

    beside_sqlite = document_store_for(Settings(data_dir=tmp_path, document_store="postgres"))
    try:
        assert isinstance(beside_sqlite, PostgresDocumentStore)
    finally:
        beside_sqlite.close()


def test_tokens_are_verified_locally_or_against_the_identity_provider(tmp_path: Path) -> None:
    local = token_verifier_for(Settings(data_dir=tmp_path))
    assert (local.issuer, local.audience) == (LOCAL_ISSUER, LOCAL_AUDIENCE)

    # The provider's keys are fetched on the first token: building needs no network.
    provider = token_verifier_for(
        Settings(
            data_dir=tmp_path,
            auth_mode="oidc",
            oidc_issuer="https://id.example/realms/abh",
            oidc_audience="akte",
            oidc_jwks_url="https://id.example/realms/abh/certs",
        )
    )
    assert isinstance(provider, TokenVerifier)
    assert (provider.issuer, provider.audience) == ("https://id.example/realms/abh", "akte")


@pytest.mark.parametrize(
    "settings_fields",
    [
        pytest.param({"deployment": "production"}, id="local-tokens-in-production"),
        pytest.param({"auth_mode": "oidc"}, id="oidc-without-its-settings"),
    ],
)
def test_unsafe_authentication_settings_build_no_verifier(
    tmp_path: Path, settings_fields: dict[str, Any]
) -> None:
    with pytest.raises(AuthConfigurationError):
        token_verifier_for(Settings(data_dir=tmp_path, **settings_fields))
    # Refused before the local key file is made.
    assert not Settings(data_dir=tmp_path).local_issuer_key_file.exists()


def test_payments_go_to_the_platform_or_are_switched_off(tmp_path: Path) -> None:
    development = payments_for(Settings(data_dir=tmp_path))
    assert isinstance(development, PaymentSetup)
    assert isinstance(development.provider, HttpPaymentProvider)

    production = Settings(
        data_dir=tmp_path,
        deployment="production",
        auth_mode="oidc",
        public_base_url="https://akte.example",
        payment_provider_url="https://epay.example",
    )
    switched_off = payments_for(production)
    assert switched_off == PaymentsSwitchedOff("AKTE_PAYMENT_SHARED_SECRET is not set")
    configured = production.model_copy(update={"payment_shared_secret": SecretStr("k" * 40)})
    assert isinstance(payments_for(configured), PaymentSetup)


# ------------------------------------------------------------- the HTTP API


def test_create_app_builds_nothing_itself(service: AkteService, settings: Settings) -> None:
    create: Any = create_app  # called as an old caller would, without the built objects
    read_models = build_read_models(settings, service, follow=False)
    try:
        verifier, payments = token_verifier_for(settings), payments_for(settings)
        built = {"token_verifier": verifier, "payments": payments, "read_models": read_models}
        for left_out in built:
            given = {name: value for name, value in built.items() if name != left_out}
            with pytest.raises(TypeError, match=left_out):
                create(service, settings, **given)

        app = create_app(
            service, settings, token_verifier=verifier, payments=payments, read_models=read_models
        )
        assert app.state.token_verifier is verifier
        assert app.state.payments is payments
        assert app.state.read_models is read_models
    finally:
        read_models.close()


def test_build_app_builds_what_the_settings_ask_for(
    service: AkteService, settings: Settings
) -> None:
    app = build_app(settings, service)

    assert isinstance(app.state.token_verifier, TokenVerifier)
    assert isinstance(app.state.payments, PaymentSetup)
    # Without read models given, they are read from the views store, followed elsewhere.
    assert app.state.read_models.runner is None
    app.state.read_models.close()


def test_akte_serve_follows_the_log_in_process_and_stops_with_the_block(
    service: AkteService, settings: Settings
) -> None:
    def following() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("akte-projections")]

    before = set(following())
    in_process = settings.model_copy(update={"projections_in_child_process": False})
    with served_app(in_process, service) as app:
        assert app.state.read_models.runner is not None
        assert set(following()) - before
    assert set(following()) <= before


def test_a_service_opened_for_a_block_is_closed_after_it(settings: Settings) -> None:
    with open_service(settings) as service:
        opened = service.open_case(office_id="abh-musterstadt", master_data=MASTER_DATA, by="sb-01")
    with open_service(settings) as reopened:
        assert reopened.get_case(opened.case_id).reference == opened.result


def test_a_fresh_sqlite_store_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    """As a restored one: the files hold personal data, and the umask would leave them
    readable by every local user."""
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    previous = os.umask(0o022)
    try:
        build_service(settings).close()
        open_views_store(settings).close()
    finally:
        os.umask(previous)

    files = [settings.sqlite_path, settings.key_store_file, settings.data_dir / "views.sqlite3"]
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files} == {
        path.name: 0o600 for path in files
    }


def test_the_modes_of_existing_sqlite_files_are_left_alone(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    build_service(settings).close()
    settings.sqlite_path.chmod(0o640)  # the operator's choice, e.g. for a backup group

    build_service(settings).close()

    assert stat.S_IMODE(settings.sqlite_path.stat().st_mode) == 0o640


@pytest.mark.postgres
def test_the_idle_transaction_timeout_reaches_the_servers_sessions(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A bulk job on a crowded host raises it (a simulation was ended at 3.1 million
    events with the fixed 10 s); every pooled session of the store gets it."""
    settings = make_settings("postgres", tmp_path, request)
    service = build_service(
        settings.model_copy(update={"postgres_idle_transaction_timeout_seconds": 42})
    )
    try:
        datastore = service.recorder.datastore  # type: ignore[attr-defined]
        with datastore.get_connection() as connection:
            [row] = connection.execute("SHOW idle_in_transaction_session_timeout").fetchall()
        assert next(iter(dict(row).values())) == "42s"
    finally:
        service.close()
