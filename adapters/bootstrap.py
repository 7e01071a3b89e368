"""The composition root: builds the service from settings. Nothing else constructs it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import psycopg
from psycopg import sql
from pydantic import ValidationError

from adapters.documents import document_store_for
from adapters.mail.setup import appointment_setup_for
from adapters.personal_data.setup import personal_data_for
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from adapters.store.recorders import POSTGRES_RECORDER_TOPIC, SQLITE_RECORDER_TOPIC
from service import AkteService, system_clock

_MAX_IDENTIFIER = 63
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
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "APPLICATION_RECORDER_TOPIC": POSTGRES_RECORDER_TOPIC,
            "POSTGRES_HOST": settings.postgres_host,
            "POSTGRES_PORT": str(settings.postgres_port),
            "POSTGRES_DBNAME": settings.postgres_dbname,
            "POSTGRES_USER": settings.postgres_user,
            "POSTGRES_PASSWORD": settings.postgres_password.get_secret_value(),
            "POSTGRES_POOL_SIZE": str(settings.postgres_pool_size),
            "POSTGRES_MAX_OVERFLOW": str(settings.postgres_max_overflow),
            "POSTGRES_CONNECT_TIMEOUT": "5",
            "POSTGRES_LOCK_TIMEOUT": "5",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "10",
        }
        if settings.postgres_schema:
            env["POSTGRES_SCHEMA"] = settings.postgres_schema
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
    try:
        settings = Settings()
    except ValidationError as error:
        first = error.errors()[0]
        setting = "AKTE_" + "_".join(str(part) for part in first["loc"]).upper()
        raise InvalidSettings(f"invalid setting {setting}: {first['msg']}") from None
    if office is not None:
        settings = settings.model_copy(update={"shard_office": office})
    try:
        return shard_settings(settings)
    except ShardSettingsError as error:
        raise InvalidSettings(str(error)) from None


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
    sharded = settings.model_copy(
        update={"postgres_schema": schema, "default_office_id": office_id}
    )
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
        host=settings.postgres_host,
        port=settings.postgres_port,
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
    rows) when API replicas and workers start at once. SQLite serialises writers itself."""
    if settings.store != "postgres":
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


def _create_shard_schema(settings: Settings) -> None:
    """A shard's schema is made on first use, so adding an office needs no migration."""
    with _connect(settings) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                sql.Identifier(settings.postgres_schema)
            )
        )


def build_service(
    settings: Settings, *, clock: Callable[[], datetime] = system_clock
) -> AkteService:
    """The service over the store of ``settings``; settings of an office's shard
    (:func:`shard_settings`) get the shard's schema created first if it is missing."""
    with _one_setup_at_a_time(settings):
        if settings.shard_applied:
            _create_shard_schema(settings)
        service = AkteService(
            library_env(settings),
            catalogue=load_catalogue(),
            clock=clock,
            snapshot_interval=settings.snapshot_interval,
            case_cache_size=settings.case_cache_size,
            documents=document_store_for(settings),
            personal_data=personal_data_for(settings),
        )
    setup = appointment_setup_for(settings)
    if setup is not None:
        service.configure_appointments(setup)
    return service
