"""Per-person data keys for crypto-shredding, wrapped by master keys, in their own store.

Every aggregate that holds personal data (a case file, a commitment declaration, a
contact form submission, an appointment, a waitlist entry) has its own random 256-bit
AES-GCM data key, made when its first personal field is written. The key is stored
*wrapped* (encrypted with AES-GCM under a master key from configuration,
``AKTE_MASTER_KEYS``), in a store apart from the events:

- SQLite: its own database file (``<data_dir>/akte-keys.sqlite3`` by default), so that a
  copy of the event file never holds a key; ``secure_delete`` is on, so a destroyed key
  is overwritten in the file, not just unlinked from its page;
- PostgreSQL: tables ``akte_data_keys``, ``akte_data_key_tombstones`` and
  ``akte_master_key_retirements`` in the application's schema; after a key is destroyed
  the table is vacuumed, so the row's bytes do not linger in a dead tuple.

Destroying a key (erasure) deletes its row and leaves a tombstone with the time of
erasure: readers then know the data was erased on purpose (and show it redacted) rather
than lost (which is an error). A key is never made again for an owner with a tombstone.
Backups of the key store must be kept for a short time only (days, not years), or an
old backup restores the means to read what was erased: see docs "Data protection".

Master keys have ids; the first one configured wraps new keys, the others only unwrap.
:meth:`DataKeys.rotate` re-wraps every data key under the current master key (the key
tables only; no event is rewritten) and records the old ids as retired.

Messages name owner ids (random UUIDs) and key ids, never key material or personal data.
"""

from __future__ import annotations

import base64
import binascii
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Protocol
from uuid import UUID, uuid4

import psycopg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import PersistenceError
from psycopg import sql

from runtime.garbage_collection import collection_paused

KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
DEVELOPMENT_MASTER_KEY_ID: Final = "development"
DEVELOPMENT_MASTER_KEY: Final = b"akte development master key, NOT for production!!"[:KEY_BYTES]
"""Used when no master key is configured, in development only (like the other
development secrets); production refuses to start without ``AKTE_MASTER_KEYS``."""
DEFAULT_CACHE_SIZE: Final = 20_000
_MAX_HANDED_OUT: Final = 10_000
DEFAULT_RESERVE_SIZE: Final = 32
"""Keys made ahead, per process, for new aggregates with personal data: one durable commit
to the key store per this many new case files (etc.) instead of one per file."""
DEFAULT_CACHE_SECONDS: Final = 60.0
"""How long a process trusts a key it has read: after an erasure in another process, this
one may still decrypt that person's data for at most this long (the erasing process
forgets the key at once)."""


class DataKeyError(PersistenceError):
    """Base of the key store's errors: persistence errors, so that the service reports a
    key store it cannot use as it reports an event store it cannot use (503)."""


class DataKeyErased(DataKeyError):
    """The owner's key was destroyed (erasure): its personal data can no longer be read."""

    def __init__(self, owner_id: str) -> None:
        super().__init__(f"the data key of {owner_id} was destroyed (personal data erased)")
        self.owner_id = owner_id


class DataKeyMissing(DataKeyError):
    """Neither a key nor a tombstone: the key store is not the one the events belong to."""

    def __init__(self, owner_id: str) -> None:
        super().__init__(
            f"no data key and no erasure record for {owner_id}: is this the key store of "
            "this event store?"
        )


class MasterKeyUnavailable(DataKeyError):
    def __init__(self, master_key_id: str) -> None:
        super().__init__(
            f"data keys are wrapped with master key {master_key_id!r}, which is not configured "
            "(AKTE_MASTER_KEYS)"
        )


class InvalidMasterKeys(DataKeyError, ValueError):
    """``AKTE_MASTER_KEYS`` is malformed (the message never quotes a key)."""


# ------------------------------------------------------------------ master keys


@dataclass(frozen=True)
class MasterKeys:
    """The configured master keys by id; ``current_id`` wraps new and re-wrapped keys."""

    keys: Mapping[str, bytes]
    current_id: str

    @classmethod
    def parse(cls, text: str) -> MasterKeys:
        """``id:base64key[,id:base64key...]``: the first is current, the others unwrap only.

        Each key is 32 random bytes in base64 (``python -c "import os, base64;
        print(base64.b64encode(os.urandom(32)).decode())"``).
        """
        keys: dict[str, bytes] = {}
        order: list[str] = []
        for number, part in enumerate(p.strip() for p in text.split(",") if p.strip()):
            key_id, sep, encoded = part.partition(":")
            key_id = key_id.strip()
            if not sep or not key_id or not key_id.replace("-", "").replace("_", "").isalnum():
                msg = f"AKTE_MASTER_KEYS entry {number + 1} must be id:base64key"
                raise InvalidMasterKeys(msg)
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                msg = f"AKTE_MASTER_KEYS key {key_id!r} is not base64"
                raise InvalidMasterKeys(msg) from None
            if len(key) != KEY_BYTES:
                msg = f"AKTE_MASTER_KEYS key {key_id!r} must be {KEY_BYTES} bytes"
                raise InvalidMasterKeys(msg)
            if key_id in keys:
                msg = f"AKTE_MASTER_KEYS names key {key_id!r} twice"
                raise InvalidMasterKeys(msg)
            keys[key_id] = key
            order.append(key_id)
        if not order:
            msg = "AKTE_MASTER_KEYS names no key"
            raise InvalidMasterKeys(msg)
        return cls(keys, order[0])

    @classmethod
    def development(cls) -> MasterKeys:
        return cls({DEVELOPMENT_MASTER_KEY_ID: DEVELOPMENT_MASTER_KEY}, DEVELOPMENT_MASTER_KEY_ID)

    def wrap(self, owner_id: str, data_key: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(NONCE_BYTES)
        master_id = self.current_id
        wrapped = AESGCM(self.keys[master_id]).encrypt(
            nonce, data_key, _wrap_aad(owner_id, master_id)
        )
        return master_id, nonce + wrapped

    def unwrap(self, owner_id: str, master_id: str, wrapped: bytes) -> bytes:
        master = self.keys.get(master_id)
        if master is None:
            raise MasterKeyUnavailable(master_id)
        try:
            return AESGCM(master).decrypt(
                wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_aad(owner_id, master_id)
            )
        except InvalidTag:
            msg = f"the data key of {owner_id} does not unwrap with master key {master_id!r}"
            raise DataKeyError(msg) from None


def _wrap_aad(owner_id: str, master_id: str) -> bytes:
    # Binds a wrapped key to its owner: a row copied to another owner does not unwrap.
    return f"akte-data-key:{owner_id}:{master_id}".encode()


# ------------------------------------------------------------------ storage


@dataclass(frozen=True)
class StoredKey:
    owner_id: str
    master_key_id: str
    wrapped: bytes


class KeyStore(Protocol):
    """Where wrapped data keys and tombstones live (one table each)."""

    def create_tables(self) -> None: ...

    def insert(self, key: StoredKey, created_at: datetime) -> bool:
        """Insert the key unless the owner has one or a tombstone; whether it did."""
        ...

    def insert_many(self, keys: list[StoredKey], created_at: datetime) -> set[str]:
        """Insert the keys in one transaction (one durable commit), each unless its owner
        has one or a tombstone; returns the owners whose key was inserted."""
        ...

    def discard(self, owner_ids: list[str]) -> None:
        """Delete keys that were made ahead and never used (no event names their owner):
        unlike :meth:`destroy`, no tombstone."""
        ...

    def get(self, owner_id: str) -> StoredKey | None: ...

    def lookup(self, owner_id: str) -> StoredKey | datetime | None:
        """The owner's key, else the time it was destroyed, else ``None`` (one query)."""
        ...

    def tombstone(self, owner_id: str) -> datetime | None:
        """When the owner's key was destroyed; ``None``: it was not."""
        ...

    def destroy(self, owner_ids: list[str], erased_at: datetime) -> list[str]:
        """Delete the keys and leave tombstones, in one transaction; returns the owners
        whose key existed."""
        ...

    def keys_wrapped_with_other_than(self, master_key_id: str, limit: int) -> list[StoredKey]: ...

    def rewrap(self, rewrapped: list[StoredKey], previous: Mapping[str, str]) -> int:
        """Replace wrapped keys whose master key id is still ``previous[owner]``."""
        ...

    def retire(self, master_key_ids: list[str], retired_at: datetime) -> None: ...

    def retired(self) -> dict[str, datetime]: ...

    def counts_by_master_key(self) -> dict[str, int]: ...

    def tombstone_count(self) -> int: ...

    def close(self) -> None: ...


class SqliteKeyStore:
    """The key tables in their own SQLite file (not the events' file)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10
        )
        self._connection.execute("PRAGMA secure_delete = ON")
        self._connection.execute("PRAGMA journal_mode = WAL")
        # Whatever this SQLite build's default: a committed key must survive a power cut
        # as surely as the events (in another file) that need it.
        self._connection.execute("PRAGMA synchronous = FULL")

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        # Collection paused: see PostgresKeyStore._transaction.
        with self._lock, collection_paused():
            try:
                cursor = self._connection.cursor()
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
            except sqlite3.Error as error:
                # A persistence error, so the service answers 503 as for the event store.
                msg = f"the key store failed: {type(error).__name__}"
                raise DataKeyError(msg) from None

    def create_tables(self) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS data_keys (owner_id TEXT PRIMARY KEY, "
                "master_key_id TEXT NOT NULL, wrapped_key BLOB NOT NULL, created_at TEXT NOT NULL)"
            )
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS data_key_tombstones (owner_id TEXT PRIMARY KEY, "
                "erased_at TEXT NOT NULL)"
            )
            cursor.execute(
                "CREATE TABLE IF NOT EXISTS master_key_retirements (master_key_id TEXT PRIMARY "
                "KEY, retired_at TEXT NOT NULL)"
            )
            # Schema version 2 of the key store (adapters/store/migrations.py).
            cursor.execute(
                "CREATE INDEX IF NOT EXISTS data_keys_master_key_id ON data_keys (master_key_id)"
            )

    def insert(self, key: StoredKey, created_at: datetime) -> bool:
        return key.owner_id in self.insert_many([key], created_at)

    def insert_many(self, keys: list[StoredKey], created_at: datetime) -> set[str]:
        inserted = set()
        with self._transaction() as cursor:
            for key in keys:
                cursor.execute(
                    "INSERT INTO data_keys (owner_id, master_key_id, wrapped_key, created_at) "
                    "SELECT ?, ?, ?, ? WHERE NOT EXISTS "
                    "(SELECT 1 FROM data_key_tombstones WHERE owner_id = ?) "
                    "ON CONFLICT (owner_id) DO NOTHING",
                    (
                        key.owner_id,
                        key.master_key_id,
                        key.wrapped,
                        created_at.isoformat(),
                        key.owner_id,
                    ),
                )
                if cursor.rowcount:
                    inserted.add(key.owner_id)
        return inserted

    def discard(self, owner_ids: list[str]) -> None:
        with self._transaction() as cursor:
            cursor.executemany(
                "DELETE FROM data_keys WHERE owner_id = ?", [(owner,) for owner in owner_ids]
            )

    def get(self, owner_id: str) -> StoredKey | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT master_key_id, wrapped_key FROM data_keys WHERE owner_id = ?", (owner_id,)
            ).fetchone()
        return None if row is None else StoredKey(owner_id, row[0], bytes(row[1]))

    def lookup(self, owner_id: str) -> StoredKey | datetime | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT k.master_key_id, k.wrapped_key, t.erased_at FROM (SELECT ? AS owner_id) o "
                "LEFT JOIN data_keys k ON k.owner_id = o.owner_id "
                "LEFT JOIN data_key_tombstones t ON t.owner_id = o.owner_id",
                (owner_id,),
            ).fetchone()
        if row[0] is not None:
            return StoredKey(owner_id, row[0], bytes(row[1]))
        return None if row[2] is None else datetime.fromisoformat(row[2])

    def tombstone(self, owner_id: str) -> datetime | None:
        with self._lock:
            row = self._connection.execute(
                "SELECT erased_at FROM data_key_tombstones WHERE owner_id = ?", (owner_id,)
            ).fetchone()
        return None if row is None else datetime.fromisoformat(row[0])

    def destroy(self, owner_ids: list[str], erased_at: datetime) -> list[str]:
        destroyed = []
        with self._transaction() as cursor:
            for owner_id in owner_ids:
                cursor.execute("DELETE FROM data_keys WHERE owner_id = ?", (owner_id,))
                if cursor.rowcount:
                    destroyed.append(owner_id)
                cursor.execute(
                    "INSERT INTO data_key_tombstones (owner_id, erased_at) VALUES (?, ?) "
                    "ON CONFLICT (owner_id) DO NOTHING",
                    (owner_id, erased_at.isoformat()),
                )
        with self._lock:
            # Move the freed pages out of the write-ahead log into the (overwritten) file.
            self._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return destroyed

    def keys_wrapped_with_other_than(self, master_key_id: str, limit: int) -> list[StoredKey]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT owner_id, master_key_id, wrapped_key FROM data_keys "
                "WHERE master_key_id <> ? ORDER BY owner_id LIMIT ?",
                (master_key_id, limit),
            ).fetchall()
        return [StoredKey(row[0], row[1], bytes(row[2])) for row in rows]

    def rewrap(self, rewrapped: list[StoredKey], previous: Mapping[str, str]) -> int:
        changed = 0
        with self._transaction() as cursor:
            for key in rewrapped:
                cursor.execute(
                    "UPDATE data_keys SET master_key_id = ?, wrapped_key = ? "
                    "WHERE owner_id = ? AND master_key_id = ?",
                    (key.master_key_id, key.wrapped, key.owner_id, previous[key.owner_id]),
                )
                changed += cursor.rowcount
        return changed

    def retire(self, master_key_ids: list[str], retired_at: datetime) -> None:
        with self._transaction() as cursor:
            for master_key_id in master_key_ids:
                cursor.execute(
                    "INSERT INTO master_key_retirements (master_key_id, retired_at) "
                    "VALUES (?, ?) ON CONFLICT (master_key_id) DO NOTHING",
                    (master_key_id, retired_at.isoformat()),
                )

    def retired(self) -> dict[str, datetime]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT master_key_id, retired_at FROM master_key_retirements"
            ).fetchall()
        return {row[0]: datetime.fromisoformat(row[1]) for row in rows}

    def counts_by_master_key(self) -> dict[str, int]:
        with self._lock:
            rows = self._connection.execute(
                "SELECT master_key_id, count(*) FROM data_keys GROUP BY master_key_id"
            ).fetchall()
        return {row[0]: int(row[1]) for row in rows}

    def tombstone_count(self) -> int:
        with self._lock:
            row = self._connection.execute("SELECT count(*) FROM data_key_tombstones").fetchone()
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._connection.close()


class PostgresDatastoreLike(Protocol):
    schema: str

    def transaction(self, *, commit: bool = False) -> Any: ...

    def get_connection(self) -> Any: ...


class PostgresKeyStore:
    """The key tables in the application's PostgreSQL schema, through its connection pool."""

    def __init__(self, datastore: PostgresDatastoreLike) -> None:
        self._datastore = datastore
        schema = sql.Identifier(datastore.schema)
        self._keys = sql.SQL("{}.akte_data_keys").format(schema)
        self._tombstones = sql.SQL("{}.akte_data_key_tombstones").format(schema)
        self._retirements = sql.SQL("{}.akte_master_key_retirements").format(schema)

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        """A write transaction with cyclic garbage collection paused. A bulk writer's
        process was seen idle in these short transactions for 8.7 s (between ``SET LOCAL``
        and the ``INSERT``) and once past PostgreSQL's idle-in-transaction timeout: a full
        collection of its heap, triggered inside (runtime.garbage_collection)."""
        with collection_paused(), self._datastore.transaction(commit=True) as cursor:
            yield cursor

    def _run(self, statement: sql.Composable, params: tuple[Any, ...] = ()) -> list[Any]:
        """One statement on a pooled connection (in autocommit mode: one round trip)."""
        with self._datastore.get_connection() as connection:
            cursor = connection.execute(statement, params)
            return list(cursor.fetchall()) if cursor.description else []

    def create_tables(self) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (owner_id text PRIMARY KEY, "
                    "master_key_id text NOT NULL, wrapped_key bytea NOT NULL, "
                    "created_at timestamptz NOT NULL)"
                ).format(self._keys)
            )
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (owner_id text PRIMARY KEY, "
                    "erased_at timestamptz NOT NULL)"
                ).format(self._tombstones)
            )
            cursor.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} (master_key_id text PRIMARY KEY, "
                    "retired_at timestamptz NOT NULL)"
                ).format(self._retirements)
            )
            # Schema version 2 of the key store (adapters/store/migrations.py).
            cursor.execute(
                sql.SQL(
                    "CREATE INDEX IF NOT EXISTS akte_data_keys_master_key_id ON {} (master_key_id)"
                ).format(self._keys)
            )

    def insert(self, key: StoredKey, created_at: datetime) -> bool:
        # Not waiting for this commit to reach the disk is safe: the events that need the
        # key are committed after it, on the same server, and waiting for their commit
        # flushes the write-ahead log up to theirs, this one included. If they never
        # commit, a lost key is one nobody needs.
        with self._transaction() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (owner_id, master_key_id, wrapped_key, created_at) "
                    "SELECT %s, %s, %s, %s WHERE NOT EXISTS "
                    "(SELECT 1 FROM {} WHERE owner_id = %s) ON CONFLICT (owner_id) DO NOTHING"
                ).format(self._keys, self._tombstones),
                (key.owner_id, key.master_key_id, key.wrapped, created_at, key.owner_id),
            )
            return bool(cursor.rowcount)

    def insert_many(self, keys: list[StoredKey], created_at: datetime) -> set[str]:
        # Durable, unlike insert: a reserve is handed out over minutes, and a server crash
        # in that time must not lose keys the process still holds and writes with.
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {} (owner_id, master_key_id, wrapped_key, created_at) "
                    "SELECT k.owner_id, k.master_key_id, k.wrapped_key, %s "
                    "FROM unnest(%s::text[], %s::text[], %s::bytea[]) "
                    "AS k (owner_id, master_key_id, wrapped_key) "
                    "WHERE NOT EXISTS (SELECT 1 FROM {} t WHERE t.owner_id = k.owner_id) "
                    "ON CONFLICT (owner_id) DO NOTHING RETURNING owner_id"
                ).format(self._keys, self._tombstones),
                (
                    created_at,
                    [key.owner_id for key in keys],
                    [key.master_key_id for key in keys],
                    [key.wrapped for key in keys],
                ),
            )
            return {row["owner_id"] for row in cursor.fetchall()}

    def discard(self, owner_ids: list[str]) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                sql.SQL("DELETE FROM {} WHERE owner_id = ANY(%s)").format(self._keys),
                (owner_ids,),
            )

    def lookup(self, owner_id: str) -> StoredKey | datetime | None:
        rows = self._run(
            sql.SQL(
                "SELECT k.master_key_id, k.wrapped_key, t.erased_at FROM (SELECT %s::text AS "
                "owner_id) o LEFT JOIN {} k ON k.owner_id = o.owner_id "
                "LEFT JOIN {} t ON t.owner_id = o.owner_id"
            ).format(self._keys, self._tombstones),
            (owner_id,),
        )
        row = rows[0]
        if row["master_key_id"] is not None:
            return StoredKey(owner_id, row["master_key_id"], bytes(row["wrapped_key"]))
        return None if row["erased_at"] is None else _aware(row["erased_at"])

    def get(self, owner_id: str) -> StoredKey | None:
        rows = self._run(
            sql.SQL("SELECT master_key_id, wrapped_key FROM {} WHERE owner_id = %s").format(
                self._keys
            ),
            (owner_id,),
        )
        if not rows:
            return None
        return StoredKey(owner_id, rows[0]["master_key_id"], bytes(rows[0]["wrapped_key"]))

    def tombstone(self, owner_id: str) -> datetime | None:
        rows = self._run(
            sql.SQL("SELECT erased_at FROM {} WHERE owner_id = %s").format(self._tombstones),
            (owner_id,),
        )
        return None if not rows else _aware(rows[0]["erased_at"])

    def destroy(self, owner_ids: list[str], erased_at: datetime) -> list[str]:
        destroyed: list[str] = []
        with self._transaction() as cursor:
            for owner_id in owner_ids:
                cursor.execute(
                    sql.SQL("DELETE FROM {} WHERE owner_id = %s").format(self._keys), (owner_id,)
                )
                if cursor.rowcount:
                    destroyed.append(owner_id)
                cursor.execute(
                    sql.SQL(
                        "INSERT INTO {} (owner_id, erased_at) VALUES (%s, %s) "
                        "ON CONFLICT (owner_id) DO NOTHING"
                    ).format(self._tombstones),
                    (owner_id, erased_at),
                )
        self._vacuum()
        return destroyed

    def _vacuum(self) -> None:
        # The deleted row's bytes stay in a dead tuple until vacuumed; VACUUM cannot run
        # inside a transaction block, hence a connection in autocommit mode.
        with self._datastore.get_connection() as connection:
            autocommit = connection.autocommit
            connection.autocommit = True
            try:
                connection.execute(sql.SQL("VACUUM {}").format(self._keys))
            finally:
                connection.autocommit = autocommit

    def keys_wrapped_with_other_than(self, master_key_id: str, limit: int) -> list[StoredKey]:
        rows = self._run(
            sql.SQL(
                "SELECT owner_id, master_key_id, wrapped_key FROM {} WHERE master_key_id <> %s "
                "ORDER BY owner_id LIMIT %s"
            ).format(self._keys),
            (master_key_id, limit),
        )
        return [
            StoredKey(row["owner_id"], row["master_key_id"], bytes(row["wrapped_key"]))
            for row in rows
        ]

    def rewrap(self, rewrapped: list[StoredKey], previous: Mapping[str, str]) -> int:
        changed = 0
        with self._transaction() as cursor:
            for key in rewrapped:
                cursor.execute(
                    sql.SQL(
                        "UPDATE {} SET master_key_id = %s, wrapped_key = %s "
                        "WHERE owner_id = %s AND master_key_id = %s"
                    ).format(self._keys),
                    (key.master_key_id, key.wrapped, key.owner_id, previous[key.owner_id]),
                )
                changed += cursor.rowcount
        return changed

    def retire(self, master_key_ids: list[str], retired_at: datetime) -> None:
        with self._transaction() as cursor:
            for master_key_id in master_key_ids:
                cursor.execute(
                    sql.SQL(
                        "INSERT INTO {} (master_key_id, retired_at) VALUES (%s, %s) "
                        "ON CONFLICT (master_key_id) DO NOTHING"
                    ).format(self._retirements),
                    (master_key_id, retired_at),
                )

    def retired(self) -> dict[str, datetime]:
        rows = self._run(
            sql.SQL("SELECT master_key_id, retired_at FROM {}").format(self._retirements)
        )
        return {row["master_key_id"]: _aware(row["retired_at"]) for row in rows}

    def counts_by_master_key(self) -> dict[str, int]:
        rows = self._run(
            sql.SQL("SELECT master_key_id, count(*) AS n FROM {} GROUP BY master_key_id").format(
                self._keys
            )
        )
        return {row["master_key_id"]: int(row["n"]) for row in rows}

    def tombstone_count(self) -> int:
        rows = self._run(sql.SQL("SELECT count(*) AS n FROM {}").format(self._tombstones))
        return int(rows[0]["n"])

    def close(self) -> None:
        """The pool belongs to the application's datastore, which closes it."""


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# ------------------------------------------------------------------ the keys


@dataclass(frozen=True)
class Rotation:
    """What :meth:`DataKeys.rotate` did."""

    current_master_key_id: str
    rewrapped: int
    retired: list[str]
    """Master key ids that no data key is wrapped with any more: remove them from
    ``AKTE_MASTER_KEYS``."""


@dataclass(frozen=True)
class KeyStatus:
    keys_by_master_key: dict[str, int]
    erased: int
    current_master_key_id: str
    retired: dict[str, datetime]


_ERASED: Final = object()


class DataKeys:
    """Data keys by owner: made on first use, unwrapped once and remembered for a while.

    The cache is read without a lock (one dict lookup: the hot path of every event with
    personal data); it forgets the oldest entries first when full.
    """

    def __init__(
        self,
        store: KeyStore,
        master_keys: MasterKeys,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        reserve_size: int = DEFAULT_RESERVE_SIZE,
        clock: Any = None,
    ) -> None:
        self.store = store
        self.master_keys = master_keys
        self._cache: dict[str, tuple[float, object]] = {}
        self._cache_size = cache_size
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._now = clock or (lambda: datetime.now(tz=UTC))
        self._reserve_size = reserve_size
        self._reserve: dict[UUID, AESGCM] = {}
        self._handed_out: dict[str, None] = {}
        """Ids handed out whose aggregate has not been written yet (insertion order)."""
        self._reserve_lock = threading.Lock()

    def _remember(self, owner_id: str, value: object) -> None:
        if self._cache_size <= 0:
            return
        with self._lock:
            cache = self._cache
            cache.pop(owner_id, None)
            cache[owner_id] = (time.monotonic() + self._cache_seconds, value)
            while len(cache) > self._cache_size:
                del cache[next(iter(cache))]

    def forget(self, owner_id: str) -> None:
        with self._lock:
            self._cache.pop(owner_id, None)

    def new_owner_id(self) -> UUID:
        """A random id for a new aggregate with personal data, its key already stored.

        Keys are made ahead in batches of ``reserve_size``, each batch one durable commit,
        so that opening a case file does not wait for a commit of its own to the key store
        (on SQLite a separate file) before its events' commit. A key made ahead and never
        used protects nothing; :meth:`close` deletes those still in reserve.
        """
        with self._reserve_lock:
            if not self._reserve:
                self._refill_reserve()
            owner_id = next(iter(self._reserve))
            cipher = self._reserve.pop(owner_id)
            self._handed_out[str(owner_id)] = None
            while len(self._handed_out) > _MAX_HANDED_OUT:
                # Never given back nor written: forget it (its key stays, unused).
                del self._handed_out[next(iter(self._handed_out))]
        # From the cache, the first event finds its key at once; should it be forgotten
        # first, writing still finds the stored key (see for_writing).
        self._remember(str(owner_id), cipher)
        return owner_id

    def written(self, owner_id: str) -> None:
        """An event of ``owner_id``'s aggregate was encoded to be saved: an id handed out
        for it may be in the store now, so it is never given back."""
        if owner_id in self._handed_out:
            with self._reserve_lock:
                self._handed_out.pop(owner_id, None)

    def give_back_unwritten(self, owner_ids: Iterable[UUID]) -> int:
        """Put ids from :meth:`new_owner_id` back into the reserve whose aggregate was never
        written (the command was refused before it saved anything), so that their keys
        serve the next new aggregates instead of lying unused; returns how many."""
        returned = 0
        with self._reserve_lock:
            for owner_id in owner_ids:
                owner = str(owner_id)
                if owner not in self._handed_out:
                    continue
                del self._handed_out[owner]
                cipher = self._lookup(owner)
                if cipher is not None:
                    self._reserve[owner_id] = cipher
                    returned += 1
        return returned

    def _refill_reserve(self) -> None:
        made: dict[UUID, tuple[bytes, StoredKey]] = {}
        for _ in range(max(1, self._reserve_size)):
            owner_id = uuid4()
            data_key = AESGCM.generate_key(256)
            master_id, wrapped = self.master_keys.wrap(str(owner_id), data_key)
            made[owner_id] = (data_key, StoredKey(str(owner_id), master_id, wrapped))
        stored = self.store.insert_many([key for _, key in made.values()], self._now())
        for owner_id, (data_key, key) in made.items():
            if key.owner_id in stored:
                self._reserve[owner_id] = AESGCM(data_key)
        if not self._reserve:
            msg = "the key store stored none of the keys made ahead"
            raise DataKeyError(msg)

    def for_writing(self, owner_id: str, *, new: bool = False) -> AESGCM:
        """The owner's key, made now if it has none; :class:`DataKeyErased` after erasure.

        ``new``: the owner is being created (its first event), so it has no key yet unless
        one was made ahead (:meth:`new_owner_id`, then it is cached): make one without
        looking first; the clash with a key made ahead is handled like any other."""
        cipher = self._cached(owner_id)
        if cipher is not None:
            return cipher
        if not new:
            cipher = self._lookup(owner_id)
            if cipher is not None:
                return cipher
        data_key = AESGCM.generate_key(256)
        master_id, wrapped = self.master_keys.wrap(owner_id, data_key)
        if self.store.insert(StoredKey(owner_id, master_id, wrapped), self._now()):
            cipher = AESGCM(data_key)
            self._remember(owner_id, cipher)
            return cipher
        # Another writer made one first (theirs counts), or the owner was erased.
        cipher = self._lookup(owner_id)
        if cipher is None:
            raise DataKeyMissing(owner_id)
        return cipher

    def for_reading(self, owner_id: str) -> AESGCM:
        """The owner's key; :class:`DataKeyErased` after erasure, :class:`DataKeyMissing`
        when the store knows nothing of the owner."""
        cipher = self._lookup(owner_id)
        if cipher is None:
            raise DataKeyMissing(owner_id)
        return cipher

    def _cached(self, owner_id: str) -> AESGCM | None:
        entry = self._cache.get(owner_id)
        if entry is not None and entry[0] > time.monotonic():
            remembered = entry[1]
            if remembered is _ERASED:
                raise DataKeyErased(owner_id)
            return remembered  # type: ignore[return-value]
        return None

    def _lookup(self, owner_id: str) -> AESGCM | None:
        cipher = self._cached(owner_id)
        if cipher is not None:
            return cipher
        found = self.store.lookup(owner_id)
        if found is None:
            return None
        if isinstance(found, datetime):
            self._remember(owner_id, _ERASED)
            raise DataKeyErased(owner_id)
        cipher = AESGCM(self.master_keys.unwrap(owner_id, found.master_key_id, found.wrapped))
        self._remember(owner_id, cipher)
        return cipher

    def has_key(self, owner_id: str) -> bool:
        return self.store.get(owner_id) is not None

    def erased_at(self, owner_id: str) -> datetime | None:
        return self.store.tombstone(owner_id)

    def destroy(self, owner_ids: list[str], erased_at: datetime) -> list[str]:
        """Destroy the owners' keys (tombstones stay); returns those that had one."""
        for owner_id in owner_ids:
            self.forget(owner_id)
        destroyed = self.store.destroy(owner_ids, erased_at)
        for owner_id in owner_ids:
            self._remember(owner_id, _ERASED)
        return destroyed

    def rotate(self, *, batch_size: int = 1000) -> Rotation:
        """Re-wrap every data key under the current master key; retire the others."""
        current = self.master_keys.current_id
        before = self.store.counts_by_master_key()
        rewrapped = 0
        while True:
            batch = self.store.keys_wrapped_with_other_than(current, batch_size)
            if not batch:
                break
            fresh = []
            for stored in batch:
                data_key = self.master_keys.unwrap(
                    stored.owner_id, stored.master_key_id, stored.wrapped
                )
                master_id, wrapped = self.master_keys.wrap(stored.owner_id, data_key)
                fresh.append(StoredKey(stored.owner_id, master_id, wrapped))
            changed = self.store.rewrap(fresh, {s.owner_id: s.master_key_id for s in batch})
            rewrapped += changed
        old = sorted(
            (set(before) | set(self.master_keys.keys)) - {current} - set(self.store.retired())
        )
        self.store.retire(old, self._now())
        with self._lock:
            self._cache.clear()
        return Rotation(current, rewrapped, old)

    def status(self) -> KeyStatus:
        return KeyStatus(
            keys_by_master_key=self.store.counts_by_master_key(),
            erased=self.store.tombstone_count(),
            current_master_key_id=self.master_keys.current_id,
            retired=self.store.retired(),
        )

    def release_reserve(self) -> int:
        """Delete the keys made ahead that no aggregate was written with: those still in
        reserve and those handed out but never written (call before the store's
        connections close); returns how many."""
        with self._reserve_lock:
            unused = [str(owner_id) for owner_id in self._reserve]
            unused += list(self._handed_out)
            self._reserve.clear()
            self._handed_out.clear()
        if unused:
            try:
                self.store.discard(unused)
            except (sqlite3.Error, psycopg.Error) as error:
                # The application knows the store's errors only (PersistenceError).
                msg = f"could not delete the unused data keys made ahead: {type(error).__name__}"
                raise DataKeyError(msg) from error
        return len(unused)

    def close(self) -> None:
        self.store.close()
