"""Per-person encryption from settings: master keys, key store, on or off."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from adapters.personal_data.key_store import (
    DEFAULT_CACHE_SECONDS,
    InvalidMasterKeys,
    KeyStore,
    MasterKeys,
    PostgresKeyStore,
    SqliteKeyStore,
)
from adapters.settings import Settings


@dataclass(frozen=True)
class PersonalDataConfig:
    """How the service protects personal data; ``key_store`` is built from the
    application's recorder (PostgreSQL: its connection pool and schema)."""

    master_keys: MasterKeys
    encrypt: bool
    key_store: Callable[[object], KeyStore]
    cache_seconds: float = DEFAULT_CACHE_SECONDS


def master_keys_for(settings: Settings) -> MasterKeys:
    if settings.master_keys is None:
        if settings.deployment == "production":
            msg = "AKTE_MASTER_KEYS must be set in production (per-person encryption)"
            raise InvalidMasterKeys(msg)
        return MasterKeys.development()
    return MasterKeys.parse(settings.master_keys.get_secret_value())


def personal_data_for(settings: Settings) -> PersonalDataConfig:
    """Always a key store, even with encryption switched off: what was encrypted before
    must stay readable (and erasable)."""
    if settings.store == "sqlite":
        path = settings.key_store_file

        def sqlite_store(recorder: object) -> KeyStore:
            return SqliteKeyStore(path)

        factory: Callable[[object], KeyStore] = sqlite_store
    else:

        def postgres_store(recorder: object) -> KeyStore:
            return PostgresKeyStore(recorder.datastore)  # type: ignore[attr-defined]

        factory = postgres_store
    return PersonalDataConfig(
        master_keys=master_keys_for(settings),
        encrypt=settings.personal_data_encryption,
        key_store=factory,
        cache_seconds=settings.key_cache_seconds,
    )
