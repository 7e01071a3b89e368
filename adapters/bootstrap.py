"""The composition root: the one place that picks implementations from the settings.

It builds the service over the store the settings name (and an office's shard of it),
the document store, the read models, the token verifier, the ePayment set-up and the
HTTP API; the application, the routes and the commands receive what it built.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    Cipher,
    Compressor,
    EventStore,
    Mapper,
    StoredEvent,
    Transcoder,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from adapters.documents.directory import DirectoryDocumentStore
from adapters.documents.encryption import EncryptedDocumentStore
from adapters.documents.postgres import PostgresDocumentStore
from adapters.documents.store import DocumentStore
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.http.auth.tokens import (
    AuthConfigurationError,
    TokenVerifier,
    check_auth_settings,
    local_token_verifier,
    provider_token_verifier,
)
from adapters.http.pages.booking_status import confirmation_link_template
from adapters.inbox.file_transfers import StoreProofs
from adapters.mail.mailbox import Mailbox, MailboxMailer
from adapters.mail.smtp import SmtpMailer
from adapters.payment.provider import HttpPaymentProvider
from adapters.payment.setup import (
    Payments,
    PaymentSetup,
    PaymentsSwitchedOff,
    setup_problem,
    shared_secret_for,
)
from adapters.personal_data.erasure_journal import FileErasureJournal
from adapters.personal_data.key_store import (
    DEFAULT_CACHE_SECONDS,
    DataKeys,
    InvalidMasterKeys,
    KeyStore,
    MasterKeys,
    PostgresKeyStore,
    SqliteKeyStore,
)
from adapters.personal_data.mapper import PersonalDataMapper, SkippingSnapshotStore, holds_plaintext
from adapters.personal_data.sent_mail import MailboxErasure
from adapters.reference.catalogue import load_catalogue
from adapters.reference.office_holidays import OfficeHolidays
from adapters.settings import Settings
from adapters.settings_sources import read_settings
from adapters.store.failover import FACTORY_TOPIC, TARGET_SESSION_ATTRS
from adapters.store.hash_chain import ChainSource
from adapters.store.kept_history_shelf import KeptHistoryShelf
from adapters.store.migrations import (
    COMPONENTS,
    DOCUMENTS,
    EVENTS,
    KEYS,
    VIEWS,
    Change,
    Component,
    Database,
    PostgresDatabase,
    SqliteDatabase,
    upgrade_all,
)
from adapters.store.recorders import (
    POSTGRES_RECORDER_TOPIC,
    SQLITE_RECORDER_TOPIC,
    bound_store_waits,
)
from adapters.store.snapshot_deletion import RecorderSnapshotDeletion
from adapters.store.transcoding import register_akte_transcodings
from adapters.views.read_models import ReadModels
from adapters.views.replica import ReplicaConnection, ReplicaReads, RoutedViewsStore
from adapters.views.runner import ApplicationEventLog, ProjectionProcess, ProjectionRunner
from adapters.views.store import SQLITE_FILE_NAME, PostgresViewsStore, SqliteViewsStore
from projections.read_models import READ_MODELS
from projections.storage import ViewsStore
from service import AkteService
from service_appointment_mails import AppointmentSetup
from service_common import system_clock
from service_ports import Clock, Mailer

if TYPE_CHECKING:
    # The web stack is imported where the API is built: the other commands need
    # neither it nor its start-up time.
    from fastapi import FastAPI

    from adapters.http.routes.operations import ReadinessCheck
    from adapters.payment.stand_in import StandInServer

_MAX_IDENTIFIER = 63
_payment_logger = logging.getLogger("akte.payment")
_TRANSCODER_TOPICS = {
    "orjson": "adapters.store.transcoding:OrjsonTranscoder",
    "json": "eventsourcing.persistence:JSONTranscoder",
}


def library_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing library's configuration for the chosen store."""
    env = {"TRANSCODER_TOPIC": _TRANSCODER_TOPICS[settings.transcoder]}
    if settings.store == "sqlite":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        env |= {
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            # Every event is chained as it is written (tamper evidence, issue 7).
            "APPLICATION_RECORDER_TOPIC": SQLITE_RECORDER_TOPIC,
            "SQLITE_DBNAME": str(settings.sqlite_path),
            "SQLITE_LOCK_TIMEOUT": "10",
        }
    else:
        env |= {
            # The library's factory, connecting to the primary of several hosts.
            "PERSISTENCE_MODULE": FACTORY_TOPIC,
            "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
            "POSTGRES_HOST": settings.postgres_connection_args["host"],
            "POSTGRES_PORT": settings.postgres_connection_args["port"],
            "POSTGRES_DBNAME": settings.postgres_dbname,
            "POSTGRES_USER": settings.postgres_user,
            "POSTGRES_PASSWORD": settings.postgres_password.get_secret_value(),
            "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.postgres_max_overflow),
            # The library's name for the pool's wait for a connection.
            "POSTGRES_CONNECT_TIMEOUT": str(settings.postgres_pool_timeout_seconds),
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(
                settings.postgres_idle_transaction_timeout_seconds
            ),
        }
        if settings.postgres_schema:
            env["POSTGRES_SCHEMA"] = settings.postgres_schema
        if settings.postgres_failover:
            # Connections to a primary that died are dropped before use (docs "Failover").
            env[TARGET_SESSION_ATTRS] = settings.postgres_connection_args["target_session_attrs"]
            env["POSTGRES_PRE_PING"] = "y"
    # The library looks up "<APPLICATION NAME>_<KEY>" before "<KEY>", in the process
    # environment as well: the service is named "Akte", so our own AKTE_POSTGRES_SCHEMA
    # setting, read raw from the environment, would beat the schema chosen here (an
    # office's shard). Those keys are given in both spellings.
    prefix = f"{AkteService.name.upper()}_"
    return env | {prefix + key: value for key, value in env.items() if key.startswith("POSTGRES_")}


def office_schema(settings: Settings, office_id: str) -> str:
    """The PostgreSQL schema of an office's shard: ``<postgres_schema>_<office>``."""
    base = settings.postgres_schema or "akte"
    schema = f"{base}_{office_id}".replace("-", "_").lower()
    if len(schema) > _MAX_IDENTIFIER or not schema.replace("_", "").isalnum():
        msg = f"office {office_id!r}: no valid shard schema name (letters, digits, - and _)"
        raise ValueError(msg)
    return schema


class ShardSettingsError(ValueError):
    """Settings that do not name one office's shard consistently; the message names the
    settings to fix, never a secret."""


class InvalidSettings(ValueError):
    """The environment's settings cannot be used; the message names the setting and the
    rule, never the rejected value (it may be a password)."""


def settings_from_environment(office: str | None = None) -> Settings:
    """The settings of a command-line process: from the environment (``AKTE_*``), and with
    offices as shards those of ``office``'s shard (default ``AKTE_SHARD_OFFICE``)."""
    reading = read_settings()
    if reading.settings is None or reading.problems:
        raise InvalidSettings(_problem_list(reading.problems))
    settings = reading.settings
    if office is not None:
        settings = settings.model_copy(update={"shard_office": office})
    try:
        return shard_settings(settings)
    except ShardSettingsError as error:
        raise InvalidSettings(str(error)) from None


def _problem_list(problems: Sequence[str]) -> str:
    if len(problems) == 1:
        return f"invalid settings: {problems[0]}"
    return f"{len(problems)} problems with the settings: " + "; ".join(problems)


def deployment_problems(settings: Settings) -> list[str]:
    """Every setting a server would refuse, found at start rather than when the first
    request needs it: authentication, master keys, payment and appointment secrets that
    are set but unusable, the files the settings name. Names settings, never their
    values."""
    problems: list[str] = []
    try:
        check_auth_settings(settings)
    except AuthConfigurationError as error:
        problems.append(str(error))
    try:
        master_keys_for(settings)
    except InvalidMasterKeys as error:
        problems.append(str(error))
    # An unset secret switches its feature off (an office without a payment contract, or
    # without online booking, still runs; the server logs what is off). A secret that is
    # set but unusable is a mistake, and found here.
    payment_secret = shared_secret_for(settings)
    payment_problem = setup_problem(settings, payment_secret)
    if payment_secret is not None and payment_problem is not None:
        problems.append(f"payments: {payment_problem}")
    if settings.appointment_secret is not None and appointment_secret(settings) is None:
        problems.append(
            "appointments: AKTE_APPOINTMENT_SECRET must have at least "
            f"{MIN_SECRET_LENGTH} characters in production and not be the development key"
        )
    # Online booking mails a one-click confirmation link: without the public address it
    # would point at 127.0.0.1, which works on nobody's phone.
    if (
        settings.deployment == "production"
        and settings.appointment_secret is not None
        and not (settings.public_base_url or "").startswith("https://")
    ):
        problems.append(
            "appointments: AKTE_PUBLIC_BASE_URL must be the https address people reach "
            "Akte at (the booking mails' confirmation links start with it)"
        )
    if settings.deployment == "production" and settings.mail_delivery == "mailbox":
        problems.append("AKTE_MAIL_DELIVERY=mailbox is for development only")
    for variable, path in (
        ("AKTE_STAFF_FILE", settings.staff_file),
        ("AKTE_RETENTION_RULES_PATH", settings.retention_rules_path),
    ):
        if path is not None and not path.is_file():
            problems.append(f"{variable}: no file at {path}")
    return problems


def shard_settings(settings: Settings) -> Settings:
    """The settings of a process that serves one office's shard (``shard_office``): the
    office's own schema on the same server, and that office as the default office (public
    routes, demo users and file-number lookups all mean the one office it holds).

    Unsharded settings come back unchanged; so do settings this function already made.
    Sharded settings (``shard_by_office``) without ``shard_office`` are refused: every
    process of a sharded deployment works on exactly one office's shard, and the base
    schema belongs to none. The schema itself is created by :func:`build_service`."""
    if settings.shard_applied:
        if settings.shard_applied_for != settings.shard_office:
            msg = (
                "these settings already point at another office's shard: start from the "
                "deployment's settings"
            )
            raise ShardSettingsError(msg)
        return settings
    office_id = settings.shard_office
    if office_id is None:
        if settings.shard_by_office:
            msg = (
                "AKTE_SHARD_BY_OFFICE=true: name the office this process serves "
                "(--office or AKTE_SHARD_OFFICE)"
            )
            raise ShardSettingsError(msg)
        return settings
    if settings.store != "postgres":
        msg = "AKTE_SHARD_OFFICE needs AKTE_STORE=postgres"
        raise ShardSettingsError(msg)
    try:
        schema = office_schema(settings, office_id)
    except ValueError as error:
        raise ShardSettingsError(str(error)) from None
    if settings.shard_by_office or settings.office_shards:
        _check_offices(settings, office_id)
    placement: dict[str, object] = {"postgres_schema": schema, "default_office_id": office_id}
    server = settings.office_server_map.get(office_id)
    if server is not None:  # the office's shard lives on a server of its own
        placement |= {
            "postgres_host": server.host,
            "postgres_port": server.port,
            "postgres_dbname": server.dbname,
        }
    sharded = settings.model_copy(update=placement)
    sharded.mark_shard_applied()
    return sharded


def _check_offices(settings: Settings, office_id: str) -> None:
    """The office is one of the deployment's, and no two of those share a schema (a
    typo would otherwise make a new, empty shard; ``abh-a`` and ``abh_a`` one shard)."""
    if not settings.office_shards:
        msg = "AKTE_SHARD_BY_OFFICE=true needs AKTE_OFFICES, the offices of the deployment"
        raise ShardSettingsError(msg)
    if office_id not in settings.office_shards:
        msg = f"office {office_id!r} is not one of AKTE_OFFICES"
        raise ShardSettingsError(msg)
    strangers = sorted(set(settings.office_server_map) - set(settings.office_shards))
    if strangers:
        msg = f"AKTE_OFFICE_SERVERS names offices that are not in AKTE_OFFICES: {strangers}"
        raise ShardSettingsError(msg)
    offices_by_schema: dict[str, str] = {}
    for office in settings.office_shards:
        try:
            schema = office_schema(settings, office)
        except ValueError as error:
            raise ShardSettingsError(str(error)) from None
        other = offices_by_schema.setdefault(schema, office)
        if other != office:
            msg = f"offices {other!r} and {office!r} in AKTE_OFFICES would share schema {schema}"
            raise ShardSettingsError(msg)


def build_office_services(
    settings: Settings, *, clock: Callable[[], datetime] = system_clock
) -> dict[str, AkteService]:
    """Offices as shards (``AKTE_SHARD_BY_OFFICE=true``, ``AKTE_OFFICES=a,b``): one service
    per office, each on its own schema, created if missing. A command for a case file goes
    to its office's service; nothing here routes across offices."""
    if settings.store != "postgres" or not settings.shard_by_office:
        msg = "offices as shards need AKTE_STORE=postgres and AKTE_SHARD_BY_OFFICE=true"
        raise ValueError(msg)
    if not settings.office_shards:
        msg = "AKTE_OFFICES names no office"
        raise ValueError(msg)
    services: dict[str, AkteService] = {}
    try:
        for office_id in settings.office_shards:
            shard = shard_settings(settings.model_copy(update={"shard_office": office_id}))
            services[office_id] = build_service(shard, clock=clock)
    except BaseException:
        for service in services.values():
            service.close()
        raise
    return services


def _connect(settings: Settings) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        **settings.postgres_connection_args,
        dbname=settings.postgres_dbname,
        user=settings.postgres_user,
        password=settings.postgres_password.get_secret_value(),
        autocommit=True,
        connect_timeout=5,
    )


@contextmanager
def _one_setup_at_a_time(settings: Settings) -> Iterator[None]:
    """Serialise creating the store's tables with every other process starting on the same
    PostgreSQL schema: concurrent ``CREATE ... IF NOT EXISTS`` and ``CREATE OR REPLACE
    FUNCTION`` collide in the catalog ("tuple concurrently updated", duplicate pg_type
    rows) when API replicas and workers start at once.

    On SQLite a file lock beside the database does the same: the library creates its
    tables in deferred transactions that read before they write, and a transaction that
    must turn from reader into writer after another process committed fails at once with
    "database is locked" (no busy timeout helps it). ``flock`` also excludes other open
    files of this process, so threads starting services wait for each other as well."""
    if settings.store != "postgres":
        with _sqlite_setup_lock(settings):
            yield
        return
    schema = settings.postgres_schema or "public"
    key = int.from_bytes(
        hashlib.blake2b(f"akte-setup:{schema}".encode(), digest_size=8).digest(),
        "big",
        signed=True,
    )
    with _connect(settings) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@contextmanager
def _sqlite_setup_lock(settings: Settings) -> Iterator[None]:
    """Held while one process (or thread) sets up the SQLite store; the others wait."""
    lock_file = settings.sqlite_path.with_name(settings.sqlite_path.name + ".setup.lock")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        # Closing the file releases the lock, also when the set-up failed.
        os.close(descriptor)


def _create_private_sqlite_files(settings: Settings, *paths: Path) -> None:
    """Create the store's SQLite files that do not exist yet, readable by their owner
    only (as a restore leaves them): they hold personal data, and SQLite itself would
    create them by the umask (0644, readable by every local user under umask 022). Its
    journal and WAL files take the database file's mode. Files that exist keep theirs.
    Nothing on PostgreSQL."""
    if settings.store != "sqlite":
        return
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: never opens (or re-modes) a file another process made meanwhile.
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        # An empty file is an empty SQLite database: the first connection sets it up.
        os.close(descriptor)


def _sqlite_store_files(settings: Settings) -> tuple[Path, ...]:
    """The SQLite files of the store: events, keys, read models."""
    return (settings.sqlite_path, settings.key_store_file, settings.data_dir / SQLITE_FILE_NAME)


def _create_shard_schema(settings: Settings) -> None:
    """A shard's schema is made on first use, so adding an office needs no migration."""
    with _connect(settings) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(settings.postgres_schema)
            )
        )


def shard_schema_exists(settings: Settings) -> bool:
    """Whether the shard's schema is on its server. Readers across the offices ask this
    first: opening a service would create a missing one (as a new office needs), and an
    empty shard would then answer as if the office had no files."""
    with _connect(settings) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (settings.postgres_schema,)
        ).fetchone()
    return found is not None


def schema_targets(
    settings: Settings, connection: psycopg.Connection[tuple[object, ...]] | None
) -> list[tuple[Component, Database]]:
    """Each component of Akte's schema and the store that holds it (the events, keys and
    views files on SQLite; the one schema on PostgreSQL, documents there too if kept
    there). ``connection``: to the PostgreSQL server, when a component lives there."""
    targets: list[tuple[Component, Database]] = []
    if settings.store == "sqlite":
        targets += [
            (EVENTS, SqliteDatabase(settings.sqlite_path)),
            (KEYS, SqliteDatabase(settings.key_store_file)),
            (VIEWS, SqliteDatabase(settings.data_dir / SQLITE_FILE_NAME)),
        ]
    if connection is not None:
        schema = settings.postgres_schema or "public"
        where = (
            f"PostgreSQL at {settings.postgres_servers}, "
            f"database {settings.postgres_dbname}, schema {schema}"
        )
        database = PostgresDatabase(connection, schema, where)
        if settings.store == "postgres":
            targets += [(EVENTS, database), (KEYS, database), (VIEWS, database)]
        if settings.documents_in_postgres:
            targets.append((DOCUMENTS, database))
    return targets


def _migrate(
    settings: Settings,
    *,
    dry_run: bool = False,
    additive_only: bool = False,
    components: Sequence[Component] = COMPONENTS,
) -> list[Change]:
    """:func:`adapters.store.migrations.upgrade_all` over the stores of ``settings``; the
    caller holds the set-up lock."""
    uses_postgres = settings.store == "postgres" or settings.documents_in_postgres
    with ExitStack() as stack:
        connection = stack.enter_context(_connect(settings)) if uses_postgres else None
        known = {component.name: component for component in components}
        targets = [
            (known[component.name], database)
            for component, database in schema_targets(settings, connection)
            if component.name in known
        ]
        for _, database in targets:
            stack.callback(database.close)
        return upgrade_all(
            targets, release=akte_release(), dry_run=dry_run, additive_only=additive_only
        )


def migrate_stores(
    settings: Settings, *, dry_run: bool = False, components: Sequence[Component] = COMPONENTS
) -> list[Change]:
    """``akte migrate``: every pending step of every store, under the set-up lock (so
    concurrent starts and migrations apply each step once)."""
    with _one_setup_at_a_time(settings):
        if not dry_run:
            _create_private_sqlite_files(settings, *_sqlite_store_files(settings))
        if settings.shard_applied and not dry_run:
            _create_shard_schema(settings)
        return _migrate(settings, dry_run=dry_run, components=components)


def akte_release() -> str:
    try:
        return importlib.metadata.version("akte")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def build_service(
    settings: Settings, *, clock: Callable[[], datetime] = system_clock
) -> AkteService:
    """The service over the store of ``settings``; settings of an office's shard
    (:func:`shard_settings`) get the shard's schema created first if it is missing."""
    with _one_setup_at_a_time(settings):
        # Before the first connection would create them by the umask.
        _create_private_sqlite_files(settings, *_sqlite_store_files(settings))
        if settings.shard_applied:
            _create_shard_schema(settings)
        # Before any table is made: refuses a store newer than this code, applies the
        # additive steps (docs/operations/upgrades.md).
        _migrate(settings, additive_only=True)
        # Documents are encrypted with their owners' data keys, which the service's key
        # store holds: the store gets them once the service has made it.
        documents = EncryptedDocumentStore(document_store_for(settings))
        service = AkteService(
            library_env(settings),
            catalogue=load_catalogue(),
            clock=clock,
            snapshot_interval=settings.snapshot_interval,
            case_cache_size=settings.case_cache_size,
            idempotency_retention=timedelta(hours=settings.idempotency_key_hours),
            storage=event_storage_for(settings),
            documents=documents,
            appointments=appointment_setup_for(settings),
            holidays=OfficeHolidays(settings.office_state),
            office_zone=settings.office_zone,
        )
        bound_store_waits(
            service.recorder,
            connect_timeout=settings.postgres_connect_timeout_seconds,
            statement_timeout=settings.postgres_statement_timeout_seconds,
            retry_seconds=settings.postgres_pool_timeout_seconds,
        )
        keys = service.data_protection.keys
        assert isinstance(keys, DataKeys)  # AkteEventStorage makes them
        documents.use_keys(keys)
        if hasattr(service.recorder, "stream_history"):
            # Files sent to other offices carry their chain; files taken over are checked.
            chain: ChainSource = service.recorder  # type: ignore[assignment]
            service.file_transfers.use_proofs(StoreProofs(chain))
        service.data_protection.use_erasure_journal(
            FileErasureJournal(settings.erasure_journal_file)
        )
        if settings.mails_to_mailbox and settings.deployment != "production":
            mailbox = Mailbox(settings.mailbox_directory)
            service.data_protection.use_sent_mail(MailboxErasure(mailbox))
        return service


class AkteEventStorage:
    """How the service stores its events (the port ``service_ports.EventStorage``):
    Akte's transcodings, the mapper that seals personal data per person, the snapshot
    store that skips snapshots of erased files, the data keys and snapshot deletion.

    There is always a key store, even with encryption switched off (``encrypt``): what
    was encrypted before must stay readable (and erasable). ``key_store`` is built from
    the application's recorder (PostgreSQL: its connection pool and schema).
    """

    def __init__(
        self,
        *,
        master_keys: MasterKeys,
        encrypt: bool,
        key_store: Callable[[object], KeyStore],
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
    ) -> None:
        self.master_keys = master_keys
        self.encrypt = encrypt
        self.key_store = key_store
        self.cache_seconds = cache_seconds

    @property
    def encrypting(self) -> bool:
        return self.encrypt

    def register_transcodings(self, transcoder: Transcoder) -> None:
        register_akte_transcodings(transcoder)  # type: ignore[arg-type]

    def mapper(
        self, transcoder: Transcoder, compressor: Compressor | None, cipher: Cipher | None
    ) -> Mapper[UUID]:
        return PersonalDataMapper(
            transcoder, compressor=compressor, cipher=cipher, encrypt=self.encrypt
        )

    def snapshot_store(self, mapper: Mapper[UUID], recorder: AggregateRecorder) -> EventStore[UUID]:
        # Kept histories live beside the snapshots (adapters/store/kept_history_shelf.py).
        KeptHistoryShelf(recorder).create_table()
        return SkippingSnapshotStore(mapper=mapper, recorder=recorder)

    def data_keys(
        self, mapper: Mapper[UUID], recorder: ApplicationRecorder, clock: Clock
    ) -> DataKeys | None:
        if not isinstance(mapper, PersonalDataMapper):
            return None
        store = self.key_store(recorder)
        store.create_tables()
        mapper.keys = DataKeys(
            store, self.master_keys, cache_seconds=self.cache_seconds, clock=clock
        )
        return mapper.keys

    def holds_plaintext(self, stored_event: StoredEvent, transcoder: Transcoder) -> bool:
        return holds_plaintext(stored_event, transcoder)

    def snapshot_deletion(self, recorder: AggregateRecorder) -> RecorderSnapshotDeletion:
        return RecorderSnapshotDeletion(recorder)


def master_keys_for(settings: Settings) -> MasterKeys:
    if settings.master_keys is None:
        if settings.deployment == "production":
            msg = "AKTE_MASTER_KEYS must be set in production (per-person encryption)"
            raise InvalidMasterKeys(msg)
        return MasterKeys.development()
    return MasterKeys.parse(settings.master_keys.get_secret_value())


def event_storage_for(settings: Settings) -> AkteEventStorage:
    """Per-person encryption from settings: master keys, key store, on or off."""
    if settings.store == "sqlite":
        path = settings.key_store_file

        def sqlite_store(recorder: object) -> KeyStore:
            return SqliteKeyStore(path)

        factory: Callable[[object], KeyStore] = sqlite_store
    else:

        def postgres_store(recorder: object) -> KeyStore:
            return PostgresKeyStore(recorder.datastore)  # type: ignore[attr-defined]

        factory = postgres_store
    return AkteEventStorage(
        master_keys=master_keys_for(settings),
        encrypt=settings.personal_data_encryption,
        key_store=factory,
        cache_seconds=settings.key_cache_seconds,
    )


DEVELOPMENT_APPOINTMENT_SECRET: Final = "akte-development-appointment-key-never-use-in-production"
MIN_SECRET_LENGTH: Final = 32


def appointment_secret(settings: Settings) -> bytes | None:
    """The configured secret; the development key outside production; ``None`` where
    production has none (or a short one): bookings then answer 503."""
    configured = settings.appointment_secret
    if configured is not None:
        secret = configured.get_secret_value()
        if settings.deployment == "production" and (
            len(secret) < MIN_SECRET_LENGTH or secret == DEVELOPMENT_APPOINTMENT_SECRET
        ):
            return None
        return secret.encode()
    if settings.deployment == "production":
        return None
    return DEVELOPMENT_APPOINTMENT_SECRET.encode()


def appointment_setup_for(settings: Settings) -> AppointmentSetup | None:
    """The secret and the office's mail server; None: appointments are switched off."""
    secret = appointment_secret(settings)
    if secret is None:
        return None
    return AppointmentSetup(
        secret=secret,
        mailer=mailer_for(settings),
        bookings_per_person=settings.appointment_bookings_per_person,
        proof_of_work_bits=settings.appointment_proof_of_work_bits,
        confirmation_link=confirmation_link_template(settings.public_base_url),
    )


def mailer_for(settings: Settings) -> Mailer:
    """The office's mail server, or the development mailbox (``AKTE_MAIL_DELIVERY``;
    by default in development without ``AKTE_SMTP_HOST``), never in production."""
    if settings.mails_to_mailbox and settings.deployment != "production":
        return MailboxMailer(settings.mailbox_directory, sender=settings.smtp_sender)
    password = settings.smtp_password
    return SmtpMailer(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_sender,
        timeout_seconds=settings.smtp_timeout_seconds,
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password=password.get_secret_value() if password is not None else None,
    )


# ------------------------------------------------------ the service for a block


@contextmanager
def open_service(
    settings: Settings, *, clock: Callable[[], datetime] = system_clock
) -> Iterator[AkteService]:
    """:func:`build_service`, closed when the block ends, however it ends."""
    service = build_service(settings, clock=clock)
    try:
        yield service
    finally:
        service.close()


# ------------------------------------------------------------------ documents


def document_store_for(settings: Settings) -> DocumentStore:
    """The document store backend the settings ask for; PostgreSQL connects on first use.
    (The service stores through :class:`EncryptedDocumentStore` over it.)"""
    if settings.documents_in_postgres:
        connection = {
            **settings.postgres_connection_args,
            "dbname": settings.postgres_dbname,
            "user": settings.postgres_user,
            "password": settings.postgres_password.get_secret_value(),
            "connect_timeout": 5,
        }
        return PostgresDocumentStore(
            connection=connection,
            schema=settings.postgres_schema or None,
            chunk_bytes=settings.document_chunk_bytes,
            pool_size=settings.postgres_pool_size,
        )
    return DirectoryDocumentStore(settings.documents_directory)


# ---------------------------------------------------------------- read models


def open_views_store(settings: Settings) -> ViewsStore:
    """The views store that belongs to the configured event store: a SQLite file of its
    own beside the events, or the events' PostgreSQL schema. A module-level function,
    so rebuild processes and the projection child receive it by name."""
    if settings.store == "sqlite":
        path = settings.data_dir / SQLITE_FILE_NAME
        _create_private_sqlite_files(settings, path)
        return SqliteViewsStore(path)
    return PostgresViewsStore(
        host=settings.postgres_connection_args["host"],
        port=settings.postgres_connection_args["port"],
        target_session_attrs=settings.postgres_connection_args.get("target_session_attrs", ""),
        servers=settings.postgres_servers,
        dbname=settings.postgres_dbname,
        user=settings.postgres_user,
        password=settings.postgres_password.get_secret_value(),
        schema=settings.postgres_schema or "public",
        connect_timeout=settings.postgres_connect_timeout_seconds,
        pool_timeout=settings.postgres_pool_timeout_seconds,
        read_statement_timeout=settings.postgres_statement_timeout_seconds,
    )


def build_read_models(settings: Settings, service: AkteService, *, follow: bool) -> ReadModels:
    """The read models in the views store of ``settings``; with ``follow``, a runner in
    this process keeps them up to date (started here, stopped by ``close()``)."""
    views = open_views_store(settings)
    runner = None
    if follow:
        runner = ProjectionRunner(ApplicationEventLog(service), views, READ_MODELS)
        runner.start()
    replica = replica_reads(settings, service)
    if replica is not None and isinstance(views, PostgresViewsStore):
        # The runner keeps the primary's store; the routes read through the router.
        return ReadModels(
            service=service,
            views=RoutedViewsStore(views, replica),
            projections=READ_MODELS,
            runner=runner,
            replica=replica,
        )
    return ReadModels(service=service, views=views, projections=READ_MODELS, runner=runner)


def replica_reads(settings: Settings, service: AkteService) -> ReplicaReads | None:
    """The streaming replica of ``AKTE_POSTGRES_REPLICA_HOST`` that answers the lists,
    reports and histories (:mod:`adapters.views.replica`), or None (no replica)."""
    recorder = service.recorder
    if (
        settings.store != "postgres"
        or not settings.postgres_replica_host
        or not isinstance(recorder, PostgresApplicationRecorder)
    ):
        return None
    connection = ReplicaConnection(
        host=settings.postgres_replica_host,
        port=settings.postgres_replica_port or settings.postgres_port,
        dbname=settings.postgres_dbname,
        user=settings.postgres_user,
        password=settings.postgres_password.get_secret_value(),
        schema=recorder.datastore.schema or settings.postgres_schema or "public",
        events_table=recorder.events_table_name,
        connect_timeout=settings.postgres_connect_timeout_seconds,
        pool_timeout=settings.postgres_pool_timeout_seconds,
        statement_timeout=settings.postgres_statement_timeout_seconds,
    )
    return ReplicaReads(
        connection,
        primary_position=recorder.max_notification_id,
        projections=READ_MODELS,
        wait_seconds=settings.postgres_replica_wait_seconds,
        max_lag_seconds=settings.postgres_replica_max_lag_seconds,
    )


# ------------------------------------------------------------- authentication


def token_verifier_for(settings: Settings) -> TokenVerifier:
    """The verifier the settings ask for: of Akte's own tokens (local mode) or of the
    office's OpenID Connect provider. Raises
    :class:`adapters.http.auth.tokens.AuthConfigurationError` for unsafe or incomplete
    settings, :class:`adapters.http.auth.local_issuer.LocalIssuerKeyError` for an
    unusable local key file."""
    check_auth_settings(settings)
    if settings.auth_mode == "local":
        return local_token_verifier(LocalIssuer.load_or_create(settings.local_issuer_key_file))
    return provider_token_verifier(
        issuer=settings.oidc_issuer or "",
        audience=settings.oidc_audience or "",
        jwks_url=settings.oidc_jwks_url or "",
        jwks_cache_seconds=settings.oidc_jwks_cache_seconds,
        refresh_cooldown_seconds=settings.oidc_jwks_refresh_cooldown_seconds,
    )


# ------------------------------------------------------------------- payments


def payments_for(settings: Settings) -> Payments:
    """The ePayment set-up the settings ask for, or why payments are switched off (their
    routes then answer 503); the rules are :func:`adapters.payment.setup.setup_problem`."""
    secret = shared_secret_for(settings)
    problem = setup_problem(settings, secret)
    if problem is not None:
        _payment_logger.warning("payments are switched off: %s", problem)
        return PaymentsSwitchedOff(problem)
    assert secret is not None  # setup_problem names a missing key
    return PaymentSetup(
        provider=HttpPaymentProvider(
            name=settings.payment_provider_name,
            base_url=settings.payment_provider_url,
            shared_secret=secret,
            timeout_seconds=settings.payment_timeout_seconds,
        ),
        shared_secret=secret,
        public_base_url=(settings.public_base_url or "").rstrip("/") or None,
    )


@contextmanager
def demo_payments(
    settings: Settings, *, port: int = 0
) -> Iterator[tuple[Settings, StandInServer | None]]:
    """``akte serve --demo``: the stand-in ePayment platform started on ``port`` (0: a
    free one) and the settings pointing Akte at it, so a declaration can be paid in the
    browser; stopped when the block ends. In production, and where
    ``AKTE_PAYMENT_PROVIDER_URL`` names a platform explicitly, nothing is started: the
    settings come back unchanged, with ``None``."""
    secret = shared_secret_for(settings)
    explicit = "payment_provider_url" in settings.model_fields_set
    if settings.deployment == "production" or explicit or secret is None:
        yield settings, None
        return
    from adapters.payment.stand_in import StandInServer

    with StandInServer(secret, port=port) as stand_in:
        yield settings.model_copy(update={"payment_provider_url": stand_in.base_url}), stand_in


# ------------------------------------------------------------------ the HTTP API


def build_app(
    settings: Settings,
    service: AkteService,
    *,
    read_models: ReadModels | None = None,
    payments: Payments | None = None,
    readiness_checks: Sequence[ReadinessCheck] = (),
) -> FastAPI:
    """The HTTP API over ``service`` with the token verifier and the ePayment set-up the
    settings ask for; whoever built ``service`` and ``read_models`` closes them.

    ``read_models`` omitted: the views store of the settings is read, and no runner in
    this process follows the log (separate ``akte projections run`` workers do).
    ``payments`` replaces the settings' set-up (tests record what the app asks for).
    ``readiness_checks`` join the store and read model checks of ``GET /readyz``.

    Raises what :func:`token_verifier_for` raises, before anything else is built.
    """
    from adapters.http.app import create_app
    from adapters.http.routes.operations import NamedCheck
    from adapters.monitoring.metrics import ReplicaFigures

    token_verifier = token_verifier_for(settings)
    if read_models is None:
        read_models = build_read_models(settings, service, follow=False)
    replica = read_models.replica
    if replica is not None:
        # Named in /readyz, never unready for it: the primary answers its reads.
        note = NamedCheck("replica", replica.readiness_note, informational=True)
        readiness_checks = [*readiness_checks, note]
    app = create_app(
        service,
        settings,
        token_verifier=token_verifier,
        payments=payments if payments is not None else payments_for(settings),
        read_models=read_models,
        readiness_checks=readiness_checks,
    )
    if replica is not None:
        app.state.metrics.registry.register(ReplicaFigures(replica))
    return app


def _warn_of_missing_statistics(service: AkteService) -> None:
    """Say at start when PostgreSQL does not keep the event table's statistics
    (:mod:`adapters.store.statistics_upkeep`); a store that cannot answer says nothing
    here (readiness reports it)."""
    from adapters.store.statistics_upkeep import autovacuum_problem, read_autovacuum

    try:
        reading = read_autovacuum(service.recorder)
    except Exception:  # the store is down: /readyz says so
        return
    problem = None if reading is None else autovacuum_problem(*reading)
    if problem is not None:
        logging.getLogger("akte.store").warning(problem)


@contextmanager
def served_app(settings: Settings, service: AkteService) -> Iterator[FastAPI]:
    """The API of ``akte serve`` with read models kept up to date, stopped and closed
    when the block ends.

    With the embedded store the worklists follow the log in this process; a PostgreSQL
    deployment may run ``akte projections run`` workers instead
    (``projections_in_process=false``). On PostgreSQL the server's own runner is a child
    process (:class:`adapters.views.runner.ProjectionProcess`): a thread would take the
    interpreter (GIL) from the requests.
    """
    from adapters.http.routes.operations import NamedCheck
    from adapters.personal_data.batch_decoding import batch_decoder
    from adapters.reports.history_keeper import HistoryKeeper
    from adapters.store.kept_history_shelf import StepsInLog, shelf_of

    in_child = (
        settings.projections_in_process
        and settings.projections_in_child_process
        and settings.store == "postgres"
    )
    read_models = build_read_models(
        settings, service, follow=settings.projections_in_process and not in_child
    )
    projection_process = ProjectionProcess(settings) if in_child else None
    keeper: HistoryKeeper | None = None
    try:
        if projection_process is not None:
            projection_process.start()
        app = build_app(
            settings,
            service,
            read_models=read_models,
            readiness_checks=(
                [NamedCheck("projection_process", projection_process.problem)]
                if projection_process is not None
                else []
            ),
        )
        _warn_of_missing_statistics(service)
        # Long files' histories written ahead as they grow, kept where the routes look.
        kept, shelf = app.state.kept_histories, shelf_of(service)
        if kept is not None and shelf is not None:
            keeper = HistoryKeeper(service, kept, shelf, batch_decoder(service.mapper))
            keeper.start()
            if settings.history_follow_seconds > 0:
                keeper.follow_log(StepsInLog(service.recorder), settings.history_follow_seconds)
        app.state.history_keeper = keeper
        yield app
    finally:
        if keeper is not None:
            keeper.stop()
        if projection_process is not None:
            projection_process.stop()
        read_models.close()
