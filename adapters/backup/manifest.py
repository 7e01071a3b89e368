"""The backup's manifest: what it holds, where from, and a checksum of every file.

Nothing in it names a person: ids of offices and master keys, counts, positions, hashes.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final

MANIFEST_NAME: Final = "manifest.json"
FORMAT: Final = 1
_CHUNK: Final = 1 << 20

# The files of a backup, relative to its directory.
EVENTS_FILE: Final = "events.sqlite3"
KEYS_FILE: Final = "keys.sqlite3"
VIEWS_FILE: Final = "views.sqlite3"
TABLES_DIR: Final = "tables"
DOCUMENTS_DIR: Final = "documents"
SETTINGS_DIR: Final = "settings"


class BackupError(Exception):
    """A backup cannot be taken, read or restored; the message names files and stores."""


class BackupCorrupted(BackupError):
    """A file of the backup is missing or differs from its checksum in the manifest."""


class TargetNotEmpty(BackupError):
    """The store to restore into holds data already."""


@dataclass
class TableCopy:
    """A PostgreSQL table saved with ``COPY ... (FORMAT binary)``."""

    name: str
    columns: list[str]
    rows: int


@dataclass
class Manifest:
    store: str
    """``sqlite`` or ``postgres``: the event store the backup was taken from."""
    document_store: str
    """``directory`` or ``postgres`` (then the documents are tables among ``tables``)."""
    head: int
    """The log's last notification id in the backup: every event up to it is there."""
    head_anchor: str | None
    """``NID:HASH`` of the head (``akte audit verify --anchor``); None: an empty log."""
    counts: dict[str, int]
    offices: list[str]
    settings: dict[str, Any]
    with_views: bool
    schema: str | None = None
    """PostgreSQL: the schema the tables came from."""
    tables: list[TableCopy] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)
    """Every file of the backup but the manifest, relative path: sha256."""
    akte_version: str = ""
    created_at: str = ""
    format: int = FORMAT
    order: list[str] = field(default_factory=list)
    """The steps in the order they were taken (docs/operations/backup.md says why)."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            # Where, not what: the text around the fault is not quoted.
            msg = (
                f"{MANIFEST_NAME} is not valid JSON (line {error.lineno}, column "
                f"{error.colno}: {error.msg}): the backup is corrupted"
            )
            raise BackupCorrupted(msg) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            msg = f"{MANIFEST_NAME} is not a manifest of format {FORMAT}"
            raise BackupCorrupted(msg)
        try:
            tables = [TableCopy(**table) for table in data.pop("tables", [])]
            return cls(**data, tables=tables)
        except TypeError:
            msg = f"{MANIFEST_NAME} lacks fields or has unknown ones"
            raise BackupCorrupted(msg) from None


def akte_version() -> str:
    try:
        return importlib.metadata.version("akte")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def files_below(root: Path) -> Iterator[Path]:
    """Every regular file below ``root``, in a stable order."""
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            yield path


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Checksum every file of the backup into the manifest, then write it (last: a
    backup without a manifest is an unfinished one)."""
    manifest.files = {
        path.relative_to(directory).as_posix(): sha256_of(path)
        for path in files_below(directory)
        if path.name != MANIFEST_NAME or path.parent != directory
    }
    target = directory / MANIFEST_NAME
    partial = directory / (MANIFEST_NAME + ".part")
    partial.write_text(manifest.to_json(), encoding="utf-8")
    partial.replace(target)


def read_manifest(directory: Path) -> Manifest:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        msg = f"{directory} holds no {MANIFEST_NAME}: not a backup, or an unfinished one"
        raise BackupCorrupted(msg)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        msg = f"{MANIFEST_NAME} is not UTF-8 text: the backup is corrupted"
        raise BackupCorrupted(msg) from None
    return Manifest.from_json(text)


def verify_files(
    directory: Path,
    manifest: Manifest,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Check every file against its checksum; raise :class:`BackupCorrupted` naming the
    first file that is missing, changed, or not in the manifest."""
    total = len(manifest.files)
    for done, (name, expected) in enumerate(sorted(manifest.files.items()), start=1):
        path = directory / name
        if not path.is_file():
            msg = f"the backup lacks {name}"
            raise BackupCorrupted(msg)
        if sha256_of(path) != expected:
            msg = f"{name} differs from its checksum in the manifest: the backup is corrupted"
            raise BackupCorrupted(msg)
        if progress is not None:
            progress(done, total)
    listed = set(manifest.files)
    for path in files_below(directory):
        name = path.relative_to(directory).as_posix()
        if name != MANIFEST_NAME and name not in listed:
            msg = f"{name} is not in the manifest: the backup was changed after it was taken"
            raise BackupCorrupted(msg)
