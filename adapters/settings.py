"""Deployment settings, read from the environment (prefix ``AKTE_``) or a ``.env`` file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

_RATE = r"\d{1,9}\s*/\s*(second|minute|hour|day)(\s*;\s*\d{1,9}\s*/\s*(second|minute|hour|day))*"


class OfficeServer(NamedTuple):
    """The PostgreSQL server (and database) that holds one office's shard."""

    host: str
    port: int
    dbname: str

    def __str__(self) -> str:
        return f"{self.host}:{self.port}/{self.dbname}"


_OFFICE_SERVER = re.compile(
    r"(?P<office>[a-z0-9][a-z0-9_-]*)=(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])"
    r"(?::(?P<port>\d{1,5}))?(?:/(?P<dbname>[A-Za-z0-9_-]+))?"
)


def parse_office_servers(
    text: str, *, default_port: int, default_dbname: str
) -> dict[str, OfficeServer]:
    """``office=host[:port][/database],...`` as a map; a malformed entry is refused."""
    servers: dict[str, OfficeServer] = {}
    for entry in (part.strip() for part in text.split(",")):
        if not entry:
            continue
        match = _OFFICE_SERVER.fullmatch(entry)
        if match is None:
            msg = (
                f"{entry!r} is not office=host[:port][/database], e.g. abh-b=db2.example:5432/akte"
            )
            raise ValueError(msg)
        port = int(match["port"]) if match["port"] else default_port
        if not 0 < port < 65536:
            msg = f"{entry!r}: the port must be 1 to 65535"
            raise ValueError(msg)
        if match["office"] in servers:
            msg = f"office {match['office']!r} is named twice"
            raise ValueError(msg)
        servers[match["office"]] = OfficeServer(
            match["host"].strip("[]"), port, match["dbname"] or default_dbname
        )
    return servers


def _port_list(text: str) -> tuple[int, ...]:
    """``5432,5433`` as ports; anything else is refused with what was expected."""
    ports: list[int] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part.isdigit() or not 0 < int(part) < 65536:
            msg = "a port 1 to 65535, or a comma list of them, e.g. 5432,5433"
            raise ValueError(msg)
        ports.append(int(part))
    return tuple(ports)


class Settings(BaseSettings):
    """Everything that differs between a laptop and a production deployment."""

    model_config = SettingsConfigDict(env_prefix="AKTE_", env_file=".env", extra="ignore")

    store: Literal["sqlite", "postgres"] = "sqlite"
    """The embedded SQLite file (default) or a PostgreSQL server."""
    data_dir: Path = Path("var")
    """Where the embedded store keeps its database file. A relative directory is taken from
    where the command runs and made absolute at once; ``akte serve`` logs it."""

    postgres_host: str = "127.0.0.1"
    """The PostgreSQL server's host name or address (``store=postgres``). For failover, the
    primary and its standbys, comma-separated (``db1.example,db2.example``): Akte then
    connects to whichever of them accepts writes, and again after a promotion (libpq's
    ``target_session_attrs=read-write``; docs "Failover")."""
    postgres_port: int = Field(default=5432, ge=1, le=65535)
    """The PostgreSQL server's port. With several hosts: one port for all, or as many
    ports, comma-separated, in the hosts' order (``5432,5433``); this field then holds
    the first (:attr:`postgres_ports` holds them all)."""
    postgres_dbname: str = "akte"
    """The database; create it once (``createdb akte``), Akte creates its tables."""
    postgres_user: str = "postgres"
    """The role Akte connects as; it creates tables in its schema on first start."""
    postgres_password: SecretStr = SecretStr("")
    """The role's password (empty: none, e.g. trust or peer authentication)."""
    postgres_schema: str = ""
    """The schema of Akte's tables (empty: the role's default, usually ``public``); with
    ``shard_by_office`` the prefix of the offices' schemas (empty: ``akte``)."""
    postgres_pool_size: int = Field(default=5, ge=1)
    """Connections each process keeps open."""
    postgres_max_overflow: int = Field(default=10, ge=0)
    """Connections a process may open beyond the pool under load."""
    postgres_connect_timeout_seconds: int = Field(default=2, ge=2, le=60)
    """How long opening a connection to PostgreSQL may take (libpq counts whole seconds,
    at least 2)."""
    postgres_pool_timeout_seconds: int = Field(default=2, ge=1, le=60)
    """How long a request waits for a free connection of the pool (while the database is
    away: for it to come back) before it is answered 503."""
    postgres_statement_timeout_seconds: int = Field(default=30, ge=0, le=3600)
    """How long one statement may run (0: no limit)."""
    postgres_idle_transaction_timeout_seconds: int = Field(default=10, ge=1, le=3600)
    """How long a transaction may wait for its next statement before the server ends it
    (a crashed or hung writer then holds no locks for long). A bulk job beside other
    busy work (a simulation, an import on a crowded host) may need longer: a simulation
    was once ended so at 3.1 million events, in one of its short transactions."""
    postgres_replica_host: str = ""
    """A streaming replica (hot standby) of ``postgres_host`` that serves worklists,
    reports and case histories (empty: none, everything is read from the primary).
    Same database, schema, user and password as the primary (docs "Read replicas")."""
    postgres_replica_port: int | None = Field(default=None, ge=1, le=65535)
    """The replica's port (empty: ``postgres_port``)."""
    postgres_replica_wait_seconds: float = Field(default=0.5, ge=0.0, le=5.0)
    """How long a read that asks for its own write (``min_position``) waits for the
    replica to replay it before it is read from the primary instead."""
    postgres_replica_max_lag_seconds: float = Field(default=60.0, ge=0.0)
    """A replica whose replay is further behind than this is not read until it catches
    up: every read goes to the primary (0: read it however far behind)."""
    store_request_slots: int = Field(default=32, ge=1, le=36)
    """Requests that may work on the stores at once; the rest of the server's 40 worker
    threads stay free for the routes that need no store (``/healthz``, ``/metrics``,
    the catalogue, static files), whatever the store does."""

    transcoder: Literal["orjson", "json"] = "orjson"
    """How events are encoded: ``orjson`` (faster) or the library's ``json``; the stored
    format is the same, so a store can switch."""
    snapshot_interval: int = Field(default=50, ge=0)
    """Take a snapshot of a case file every N events (0: never)."""
    case_cache_size: int = Field(default=1000, ge=0)
    """Case files kept in memory for commands (0: load every time)."""
    idempotency_key_hours: int = Field(default=24, ge=1, le=24 * 30)
    """How long a write's ``Idempotency-Key`` is kept: a retry with it within this time
    hears the first answer; afterwards the key may be used again."""

    default_office_id: str = "abh-musterstadt"
    """The demo office, the office of the local demo users, and where an auditor without
    an office of its own looks up file numbers."""
    office_name: str | None = Field(default=None, max_length=200)
    """The office's name as the public and the council know it, e.g. "Ausländerbehörde
    Musterstadt": printed at the head of the yearly report (unset: the office id)."""
    office_address: str | None = Field(default=None, max_length=300)
    """The office's postal address, one line, printed under its name in the yearly report."""
    office_time_zone: str = "Europe/Berlin"
    """The office's IANA time zone: what "today" is for the worklists and lists (never the
    server's UTC date), e.g. ``Europe/Berlin``."""
    office_state: str = Field(
        default="BE", pattern=r"^(BB|BE|BW|BY|HB|HE|HH|MV|NI|NW|RP|SH|SL|SN|ST|TH)$"
    )
    """The office's state (Land, ISO 3166-2 without ``DE-``): its public holidays, with
    the national ones, are not working days when legal deadlines are counted."""

    deployment: Literal["development", "production"] = "development"
    """``production`` refuses to start with tokens Akte issues itself (``auth_mode=local``)."""
    auth_mode: Literal["local", "oidc"] = "local"
    """Who issues the bearer tokens: Akte itself for demo users (``local``, development
    only) or the office's OpenID Connect provider (``oidc``, e.g. Keycloak)."""

    oidc_issuer: str | None = None
    """The provider's issuer URL, exactly as tokens carry it in ``iss`` (oidc mode)."""
    oidc_audience: str | None = None
    """The audience tokens must name in ``aud`` to be meant for Akte (oidc mode)."""
    oidc_jwks_url: str | None = None
    """Where the provider publishes its signing keys (JWKS), e.g. Keycloak's
    ``<issuer>/protocol/openid-connect/certs`` (oidc mode)."""
    oidc_jwks_cache_seconds: float = Field(default=300, gt=0)
    """How long the fetched signing keys are trusted before they are fetched again."""
    oidc_jwks_refresh_cooldown_seconds: float = Field(default=30, ge=0)
    """A token signed with an unknown key makes Akte refetch the keys (key rotation), but
    at most once in this many seconds, so forged key ids cannot flood the provider."""
    oidc_public_client_id: str | None = None
    """The provider's public client for people (authorization code with PKCE), e.g.
    ``akte-staff``: set in oidc mode, ``/docs`` and the public pages' staff link sign
    people in at the provider. Unset: ``/docs`` takes a pasted bearer token."""

    local_issuer_key_path: Path | None = None
    """The local issuer's RS256 signing key (local mode).

    Omitted: ``<data_dir>/local-issuer.pem``."""

    history_follow_seconds: float = Field(default=5.0, ge=0, le=3600)
    """How often ``akte serve`` looks in the log for case files that other processes (an
    import, the inbox worker) grew by another 250 events, to keep their histories ahead
    of the first request (as it does at once for files written through it); 0: never."""
    projections_in_process: bool = True
    """``akte serve`` keeps the read models up to date itself; false: separate
    ``akte projections run`` workers do (several API processes on PostgreSQL)."""
    projections_in_child_process: bool = True
    """PostgreSQL: with ``projections_in_process``, ``akte serve`` runs its projection
    runner in a child process (another core) rather than a thread competing with the
    requests for the API's interpreter; false: a thread. SQLite: always a thread."""
    shard_by_office: bool = False
    """PostgreSQL only: each office's events, read models and keys in a schema of its own,
    ``<postgres_schema>_<office>`` (its own event table and table lock), so offices never
    wait for each other's writes. Each ``akte`` process then serves one office's shard
    (``shard_office``); a reverse proxy routes each office's requests to its processes
    (docs "Offices as shards")."""
    offices: str = ""
    """With ``shard_by_office``: the offices, comma-separated, e.g. ``abh-a,abh-b``."""
    office_servers: str = ""
    """With ``shard_by_office``: offices whose shard lives on another PostgreSQL server
    than ``postgres_host``, comma-separated ``office=host[:port][/database]``, e.g.
    ``abh-b=db2.example:5432/akte``; port and database default to ``postgres_port`` and
    ``postgres_dbname``, user and password are ``postgres_user`` and ``postgres_password``.
    Offices not named stay on ``postgres_host`` (docs "Offices as shards")."""
    shard_office: str | None = None
    """The office whose shard this process serves (``akte serve --office``, ``akte
    projections run --office``): its schema, created if missing, and its office as the
    default office; the HTTP API refuses tokens of other offices
    (:func:`adapters.bootstrap.shard_settings`)."""
    json_logs: bool = True
    """One JSON object per log line (for log shippers); false: plain text lines."""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """The lowest level of log lines written."""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted; larger ones are answered 413."""

    payment_provider_url: str = "http://127.0.0.1:8010"
    """The ePayment platform's API, where the office creates payments. The default is the
    local stand-in provider (``python -m adapters.payment.stand_in``), development only."""
    payment_provider_name: str = "stand-in"
    """The platform's code, recorded with every payment (e.g. ``epaybl``)."""
    payment_shared_secret: SecretStr | None = None
    """The HMAC-SHA256 key shared with the platform: it signs its notifications and our
    requests. Unset in development: the stand-in's development key. In production it must
    be set (at least 32 characters): ``akte serve`` refuses to start without it."""
    public_base_url: str | None = None
    """Where the platform and the payer's browser reach Akte from outside (notifications,
    return after paying), e.g. ``https://akte.example``. Unset in development: the base URL
    of the request that starts the payment. In production it must be set, with https.
    The booking mails' one-click confirmation links start with it too (unset in
    development: the address ``akte serve`` listens on; in production with online booking,
    ``akte serve`` refuses to start without it)."""
    payment_timeout_seconds: float = Field(default=10, gt=0, le=60)
    """How long to wait for the platform when creating a payment."""

    document_store: Literal["auto", "directory", "postgres"] = "auto"
    """Where uploaded and scanned documents are kept: a directory on disk, or PostgreSQL
    (several API hosts, one backup of events and documents). ``auto``: PostgreSQL when the
    event store is PostgreSQL, else the directory."""
    documents_dir: Path | None = None
    """The document directory. Omitted: ``<data_dir>/documents``."""
    document_chunk_bytes: int = Field(default=1_048_576, ge=4096, le=16_777_216)
    """PostgreSQL documents are stored and read in chunks of this size."""
    contact_form_max_files: int = Field(default=10, ge=1, le=50)
    """Files one contact form submission may bring."""
    contact_form_max_file_bytes: int = Field(default=10_485_760, ge=1024)
    """The largest file the contact form takes (10 MiB)."""
    contact_form_max_total_bytes: int = Field(default=26_214_400, ge=1024)
    """The largest contact form submission, all files together (25 MiB)."""
    upload_max_file_bytes: int = Field(default=104_857_600, ge=1024)
    """The largest document a caseworker uploads to a case file (100 MiB: whole scans)."""

    mail_delivery: Literal["auto", "smtp", "mailbox"] = "auto"
    """How mails to people who book leave Akte: through the mail server (``smtp``), or
    into the development mailbox (``mailbox``: one file per mail under ``mailbox_dir``,
    read at ``/dev/mailbox``; refused in production). ``auto``: the mailbox in
    development unless ``AKTE_SMTP_HOST`` is set, the mail server in production."""
    mailbox_dir: Path | None = None
    """The development mailbox's directory. Omitted: ``<data_dir>/mailbox``."""
    smtp_host: str = "127.0.0.1"
    """The office's mail server, through which booking confirmations go out."""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    """The mail server's port."""
    smtp_sender: str = "termine@akte.invalid"
    """The From address of the mails to people who book."""
    smtp_starttls: bool = False
    """Switch the connection to TLS with STARTTLS before logging in and sending."""
    smtp_username: str | None = None
    """The mail server login, if it needs one."""
    smtp_password: SecretStr | None = None
    """The password of ``smtp_username``."""
    smtp_timeout_seconds: float = Field(default=10, gt=0, le=120)
    """How long to wait for the mail server; a mail that times out is retried later."""
    appointment_secret: SecretStr | None = None
    """HMAC key of the person keys (booking limit), confirmation codes and anti-bot
    challenges. Unset in development: a fixed development key. In production it must be
    set (32+ characters): ``akte serve`` refuses to start without it."""
    appointment_bookings_per_person: int = Field(default=2, ge=1, le=20)
    """Open bookings one person (by name and birth date, not e-mail) may hold per office."""
    appointment_proof_of_work_bits: int = Field(default=20, ge=0, le=32)
    """Leading zero bits the anti-bot challenge asks for; 0 only in tests."""
    rate_limit_contact_form: str | None = "10/minute"
    """Contact-form submissions (API and page) per client address, as ``N/second``,
    ``N/minute``, ``N/hour`` or ``N/day`` (several: ``10/minute;50/day``); empty: no limit.
    Over the rate: ``429`` with ``Retry-After``."""
    rate_limit_declarations: str | None = "10/minute"
    """Commitment declarations submitted per client address (API and page)."""
    rate_limit_challenges: str | None = "30/minute"
    """Proof-of-work challenges fetched per client address."""
    rate_limit_bookings: str | None = "10/minute"
    """Bookings and waitlist entries per client address (per person: see
    ``AKTE_APPOINTMENT_BOOKINGS_PER_PERSON``)."""
    rate_limit_lookups: str | None = "30/minute"
    """Look-ups by a secret reference (own booking, own declaration, their pages) per
    client address: guessing references is slowed down to nothing."""
    rate_limit_failed_logins: str | None = "60/minute"
    """Requests with a refused bearer token per client address; past it, further
    requests with a token are answered 429 until the window has passed."""
    staff_file: Path | None = None
    """JSON file of posts and people at work per office and month (example:
    ``adapters/reference/staff.json``), for the workload figures per post and per person
    at work. Unset: those figures are not recorded."""
    report_recorded_since: int | None = Field(default=None, ge=1900, le=2199)
    """The year this office started recording its work in Akte: the yearly report shows
    earlier years as "not recorded" (never 0, and no change against them), whatever
    back-dated events the log holds. Unset: each figure from its first event."""

    personal_data_encryption: bool = True
    """Encrypt the personal fields of new events and snapshots with a key per person
    (crypto-shredding, docs "Data protection"). Off: new events are written in the
    clear; encrypted ones written before are still read."""
    metrics_token: SecretStr | None = None
    """A token Prometheus sends as ``Authorization: Bearer <token>`` to read ``/metrics``
    (from anywhere). Unset: ``/metrics`` answers only requests from the machine itself
    (127.0.0.1, ::1) in production, and anyone in development."""
    master_keys: SecretStr | None = None
    """``id:base64key[,id:base64key...]``: the master keys that wrap the data keys; the
    first wraps new keys (and re-wraps them on ``akte keys rotate``), the others are only
    read. Unset in development: a fixed development key. In production it must be set."""
    key_store_path: Path | None = None
    """SQLite only: the key store's own file. Omitted: ``<data_dir>/akte-keys.sqlite3``
    (PostgreSQL keeps the keys in tables of the application's schema)."""
    erasure_journal_path: Path | None = None
    """The erasure journal: one line per erasure (ids and times, no personal data), read
    by ``akte restore`` to erase again what a backup older than the erasure holds.
    Omitted: ``<data_dir>/erasure-journal.jsonl``; in production, storage that the store's
    backups do not overwrite (docs/operations/backup.md)."""
    key_cache_seconds: float = Field(default=60, ge=0, le=3600)
    """How long a process keeps an unwrapped key: after an erasure in another process,
    this one may read the erased person's data for at most this long."""
    retention_rules_path: Path | None = None
    """The retention rules (JSON). Omitted: ``adapters/reference/retention-rules.json``."""

    outbox_url: str = "nats://127.0.0.1:4222"
    """The NATS server (with JetStream) ``akte outbox run`` publishes events to."""
    outbox_stream: str = Field(default="AKTE_EVENTS", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    """The JetStream stream of the published events, created if missing; the outbox's
    position in the events database is kept per stream name."""
    outbox_events: str | None = None
    """The events the outbox publishes, comma-separated as ``Aggregate.Event`` (e.g.
    ``CaseFile.Opened,CaseFile.Closed``) or stored topics. Unset: the life of case files
    and procedures (docs "Events to other systems"); personal fields are never published."""
    outbox_subject_prefix: str = Field(
        default="akte", pattern=r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
    )
    """The first token(s) of the subjects: ``<prefix>.<office>.<aggregate>.<id>``."""
    inbox_portal_base_url: str | None = Field(
        default=None, max_length=500, pattern=r"^https?://[^\s/]+(/[^\s]*)?$"
    )
    """The address below which the state's portal offers attachments of online
    applications sent by reference (``referenz``); ``akte inbox run`` fetches only from
    there. Unset: attachments by reference are returned to the sender."""
    inbox_attachment_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """The longest a referenced attachment's whole transfer may take."""

    _shard_applied_for: str | None = PrivateAttr(default=None)
    """The office whose shard :func:`adapters.bootstrap.shard_settings` pointed these
    settings at, so that applying it again does not append the office to the schema twice
    (a copy for another office is refused there)."""
    _postgres_port_list: tuple[str, tuple[int, ...]] | None = PrivateAttr(default=None)
    """A comma list given as ``postgres_port``, with the hosts it was checked against."""

    @model_validator(mode="wrap")
    @classmethod
    def _several_ports(cls, data: Any, handler: ModelWrapValidatorHandler[Settings]) -> Settings:
        # libpq's form, "5432,5433", does not fit the int field that every caller of one
        # server reads: the field gets the first port (checked in ``_port_or_ports``), the
        # list is kept beside it.
        raw = data.get("postgres_port") if isinstance(data, dict) else None
        settings = handler(data)
        if isinstance(raw, str) and "," in raw:
            settings._postgres_port_list = (settings.postgres_host, _port_list(raw))
        return settings

    @field_validator("postgres_port", mode="before")
    @classmethod
    def _port_or_ports(cls, value: Any, info: ValidationInfo) -> Any:
        if not (isinstance(value, str) and "," in value):
            return value
        ports = _port_list(value)
        host = info.data.get("postgres_host")
        hosts = len(host.split(",")) if isinstance(host, str) else len(ports)
        if len(ports) != hosts:
            msg = (
                f"{len(ports)} ports for {hosts} hosts in postgres_host: give one port "
                "for all hosts, or one per host in the same order"
            )
            raise ValueError(msg)
        return ports[0]

    @field_validator("postgres_host")
    @classmethod
    def _hosts(cls, text: str) -> str:
        hosts = [host.strip() for host in text.split(",")]
        if not all(hosts):
            msg = "an empty host name; several hosts are comma-separated, e.g. db1,db2"
            raise ValueError(msg)
        return ",".join(hosts)

    @property
    def postgres_hosts(self) -> tuple[str, ...]:
        """The PostgreSQL hosts of ``postgres_host``: one, or the primary and its standbys."""
        return tuple(self.postgres_host.split(","))

    @property
    def postgres_ports(self) -> tuple[int, ...]:
        """The port of each of :attr:`postgres_hosts`, in the same order."""
        hosts = self.postgres_hosts
        given = self._postgres_port_list
        # A copy with another host or port (an office's server) drops the list.
        if (
            given is not None
            and given[0] == self.postgres_host
            and given[1][0] == self.postgres_port
        ):
            return given[1]
        return (self.postgres_port,) * len(hosts)

    @property
    def postgres_servers(self) -> str:
        """The servers for messages: ``db1:5432, db2:5433`` (one: ``db1:5432``)."""
        pairs = zip(self.postgres_hosts, self.postgres_ports, strict=True)
        return ", ".join(f"{host}:{port}" for host, port in pairs)

    @property
    def postgres_failover(self) -> bool:
        """Several hosts: connect to the one that accepts writes, whichever it is now."""
        return len(self.postgres_hosts) > 1

    @property
    def postgres_connection_args(self) -> dict[str, Any]:
        """libpq's ``host`` and ``port`` (comma lists with several hosts, then also
        ``target_session_attrs=read-write``), for ``psycopg.connect`` and pools."""
        args: dict[str, Any] = {
            "host": self.postgres_host,
            "port": ",".join(str(port) for port in self.postgres_ports),
        }
        if self.postgres_failover:
            args["target_session_attrs"] = "read-write"
        return args

    @property
    def shard_applied(self) -> bool:
        """Whether these settings already point at an office's shard."""
        return self._shard_applied_for is not None

    @property
    def shard_applied_for(self) -> str | None:
        return self._shard_applied_for

    def mark_shard_applied(self) -> None:
        self._shard_applied_for = self.shard_office

    @property
    def key_store_file(self) -> Path:
        if self.key_store_path is not None:
            return self.key_store_path
        return self.data_dir / "akte-keys.sqlite3"

    @property
    def erasure_journal_file(self) -> Path:
        if self.erasure_journal_path is not None:
            return self.erasure_journal_path
        return self.data_dir / "erasure-journal.jsonl"

    @field_validator("office_servers")
    @classmethod
    def _office_servers(cls, text: str) -> str:
        parse_office_servers(text, default_port=5432, default_dbname="akte")
        return text.strip()

    @property
    def office_server_map(self) -> dict[str, OfficeServer]:
        """Each office named in ``office_servers`` with the server its shard lives on."""
        return parse_office_servers(
            self.office_servers,
            default_port=self.postgres_port,
            default_dbname=self.postgres_dbname,
        )

    @property
    def office_shards(self) -> tuple[str, ...]:
        """The offices of ``offices``, each with a shard of its own when sharding."""
        return tuple(office.strip() for office in self.offices.split(",") if office.strip())

    @field_validator(
        "rate_limit_contact_form",
        "rate_limit_declarations",
        "rate_limit_challenges",
        "rate_limit_bookings",
        "rate_limit_lookups",
        "rate_limit_failed_logins",
    )
    @classmethod
    def _a_rate(cls, rate: str | None) -> str | None:
        if not rate:
            return None
        if not re.fullmatch(_RATE, rate.strip()):
            msg = "a rate like 10/minute (per second, minute, hour or day; several with ;)"
            raise ValueError(msg)
        return rate.strip()

    @property
    def rate_limits(self) -> dict[str, str]:
        """The rate of each public door (adapters/http/rate_limits.py); unset: no limit."""
        rates = {
            "contact_form": self.rate_limit_contact_form,
            "declarations": self.rate_limit_declarations,
            "challenges": self.rate_limit_challenges,
            "bookings": self.rate_limit_bookings,
            "lookups": self.rate_limit_lookups,
            "failed_logins": self.rate_limit_failed_logins,
        }
        return {door: rate for door, rate in rates.items() if rate}

    @field_validator("office_time_zone")
    @classmethod
    def _known_time_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            msg = "not a time zone of the IANA database, e.g. Europe/Berlin"
            raise ValueError(msg) from None
        return name

    @property
    def office_zone(self) -> ZoneInfo:
        """``office_time_zone`` as a zone to convert instants with."""
        return ZoneInfo(self.office_time_zone)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "akte.sqlite3"

    @property
    def local_issuer_key_file(self) -> Path:
        if self.local_issuer_key_path is not None:
            return self.local_issuer_key_path
        return self.data_dir / "local-issuer.pem"

    @property
    def documents_directory(self) -> Path:
        if self.documents_dir is not None:
            return self.documents_dir
        return self.data_dir / "documents"

    @property
    def mailbox_directory(self) -> Path:
        if self.mailbox_dir is not None:
            return self.mailbox_dir
        return self.data_dir / "mailbox"

    @property
    def mails_to_mailbox(self) -> bool:
        """Whether mails go to the development mailbox rather than the mail server."""
        if self.mail_delivery == "auto":
            return self.deployment != "production" and "smtp_host" not in self.model_fields_set
        return self.mail_delivery == "mailbox"

    @property
    def documents_in_postgres(self) -> bool:
        if self.document_store == "auto":
            return self.store == "postgres"
        return self.document_store == "postgres"
