"""The composition root: builds the service from settings. Nothing else constructs it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from adapters.appointments_setup import appointment_setup_for
from adapters.catalogue import load_catalogue
from adapters.chained_recorders import POSTGRES_RECORDER_TOPIC, SQLITE_RECORDER_TOPIC
from adapters.documents import document_store_for
from adapters.settings import Settings
from service import AkteService, system_clock

_TRANSCODER_TOPICS = {
    "orjson": "adapters.transcoding:OrjsonTranscoder",
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
    return env


def build_service(
    settings: Settings, *, clock: Callable[[], datetime] = system_clock
) -> AkteService:
    service = AkteService(
        library_env(settings),
        catalogue=load_catalogue(),
        clock=clock,
        snapshot_interval=settings.snapshot_interval,
        case_cache_size=settings.case_cache_size,
        documents=document_store_for(settings),
    )
    setup = appointment_setup_for(settings)
    if setup is not None:
        service.configure_appointments(setup)
    return service
