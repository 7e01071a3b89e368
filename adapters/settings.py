"""Deployment settings, read from the environment (prefix ``AKTE_``) or a ``.env`` file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything that differs between a laptop and a production deployment."""

    model_config = SettingsConfigDict(env_prefix="AKTE_", env_file=".env", extra="ignore")

    store: Literal["sqlite", "postgres"] = "sqlite"
    """The embedded SQLite file (default) or a PostgreSQL server."""
    data_dir: Path = Path("var")
    """Where the embedded store keeps its database file."""

    postgres_host: str = "127.0.0.1"
    postgres_port: int = 5432
    postgres_dbname: str = "akte"
    postgres_user: str = "postgres"
    postgres_password: SecretStr = SecretStr("")
    postgres_schema: str = ""
    postgres_pool_size: int = Field(default=5, ge=1)
    postgres_max_overflow: int = Field(default=10, ge=0)

    transcoder: Literal["orjson", "json"] = "orjson"
    snapshot_interval: int = Field(default=50, ge=0)
    """Take a snapshot of a case file every N events (0: never)."""
    case_cache_size: int = Field(default=1000, ge=0)
    """Case files kept in memory for commands (0: load every time)."""

    default_office_id: str = "abh-musterstadt"
    """The office new case files belong to until offices come from the identity provider."""

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "akte.sqlite3"
