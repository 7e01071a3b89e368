"""Search every byte a store keeps for a person's values, in every encoding a store,
a JSON encoder or a transport might have written them in.

:func:`needles` turns each value into byte strings: UTF-8 (as given, NFC and NFD,
case-folded), UTF-16 LE and BE, JSON-escaped (``\\uXXXX`` for non-ASCII, as
``json.dumps`` writes by default) and base64 of the UTF-8 at the three byte alignments
(the part of the encoding that does not depend on the neighbouring bytes).

:func:`store_bytes` gathers the bytes: every file below the data directory (SQLite
databases with their ``-wal`` and ``-shm`` files, the key store, the read models, the
documents directory, the mailbox, the erasure journal) and, for PostgreSQL, a
``pg_dump`` of the settings' schema (every table, data included).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from adapters.settings import Settings


def _base64_cores(data: bytes) -> list[bytes]:
    """The base64 text of ``data`` at each of the three alignments it can start at in a
    longer encoded string, trimmed to the characters that depend on ``data`` alone."""
    cores = []
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data)
        start = 4 if offset else 0
        end = ((offset + len(data)) // 3) * 4
        core = encoded[start:end]
        if len(core) >= 8:
            cores.append(core)
    return cores


def needles(value: str) -> dict[str, bytes]:
    """Every encoded form of ``value`` to search for, by a name for the message."""
    forms: dict[str, bytes] = {}
    for norm in ("NFC", "NFD"):
        text = unicodedata.normalize(norm, value)
        for variant, shown in ((text, text), (text.casefold(), text.casefold())):
            forms[f"utf-8 {norm} {shown!r}"] = variant.encode("utf-8")
            forms[f"utf-16-le {norm} {shown!r}"] = variant.encode("utf-16-le")
            forms[f"utf-16-be {norm} {shown!r}"] = variant.encode("utf-16-be")
            escaped = json.dumps(variant, ensure_ascii=True)[1:-1].encode("ascii")
            forms[f"json {norm} {shown!r}"] = escaped
            forms[f"json-lower {norm} {shown!r}"] = escaped.lower()
            for number, core in enumerate(_base64_cores(variant.encode("utf-8"))):
                forms[f"base64/{number} {norm} {shown!r}"] = core
    return forms


def store_bytes(settings: Settings, *, extra: Iterable[Path] = ()) -> dict[str, bytes]:
    """Every file below the data directory (and ``extra`` files or directories), and the
    PostgreSQL schema's dump, by where they came from."""
    found: dict[str, bytes] = {}
    roots = [settings.data_dir, *extra]
    if not settings.documents_in_postgres:
        roots.append(settings.documents_directory)
    for root in roots:
        if root.is_file():
            found[str(root)] = root.read_bytes()
            continue
        for directory, _dirs, files in os.walk(root):
            for name in files:
                path = Path(directory) / name
                found[str(path)] = path.read_bytes()
    if settings.store == "postgres":
        found["pg_dump"] = pg_dump(settings)
    return found


def pg_dump(settings: Settings) -> bytes:
    """The schema's tables, data included, as ``pg_dump`` writes them (plain SQL)."""
    binary = shutil.which("pg_dump") or "/usr/lib/postgresql/15/bin/pg_dump"
    env = dict(os.environ)
    password = settings.postgres_password.get_secret_value()
    if password:
        env["PGPASSWORD"] = password
    done = subprocess.run(
        [
            binary,
            "--host",
            settings.postgres_host,
            "--port",
            str(settings.postgres_port),
            "--username",
            settings.postgres_user,
            "--schema",
            settings.postgres_schema or "public",
            "--no-owner",
            settings.postgres_dbname,
        ],
        capture_output=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert b"COPY " in done.stdout, "the dump holds no table data"
    return done.stdout


def search(stored: dict[str, bytes], values: Iterable[str]) -> list[str]:
    """Where each value shows, in which form: ``["<form> in <where>", ...]``."""
    hits: list[str] = []
    for value in values:
        for form, needle in needles(value).items():
            for where, data in stored.items():
                if needle in data:
                    hits.append(f"{form} in {where}")
    return hits
