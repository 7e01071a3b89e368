"""The erasure journal: every erasure written down apart from the stores, for restores.

Erasure destroys keys in the key store and records an event in the event store; a backup
taken before the erasure holds both as they were, so restoring it alone would bring the
person's data back. The journal is a small append-only file (JSON lines, one erasure a
line: when, the case file, the key owners whose keys were destroyed: ids and a time, no
personal data) at ``AKTE_ERASURE_JOURNAL_PATH`` (default ``<data_dir>/erasure-journal.jsonl``;
in production on storage that is not restored from the same backups, see
docs/operations/backup.md). ``akte backup restore`` reads it and destroys those keys again
(:func:`adapters.backup.restore.restore_backup`).

Each line is appended with one ``write`` to a file opened ``O_APPEND`` and synced before
the keys are destroyed: a crash leaves at most a torn last line, which reading skips.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from service_data_protection import JournalEntry


class JournalError(Exception):
    """The journal cannot be read (the message names the line, never its content)."""


class FileErasureJournal:
    """The journal as a JSON-lines file (the port ``service_data_protection.ErasureJournal``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, entry: JournalEntry) -> None:
        line = json.dumps(
            {
                "erased_at": entry.erased_at.isoformat(),
                "case_id": entry.case_id,
                "owner_ids": list(entry.owner_ids),
            },
            separators=(",", ":"),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, (line + "\n").encode("ascii"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def entries(self) -> list[JournalEntry]:
        """Every erasure written down, oldest first; none if there is no file."""
        return read_journal(self.path)

    def append_missing(self, entries: Iterable[JournalEntry]) -> int:
        """Append the entries this journal lacks (same case file and time); how many."""
        known = {(entry.case_id, entry.erased_at) for entry in self.entries()}
        added = 0
        for entry in entries:
            if (entry.case_id, entry.erased_at) not in known:
                self.append(entry)
                known.add((entry.case_id, entry.erased_at))
                added += 1
        return added


def read_journal(path: Path) -> list[JournalEntry]:
    """The entries of the journal file at ``path`` (none if it does not exist).

    A torn last line (a crash while appending) is skipped; any other unreadable line is a
    :class:`JournalError`: a journal that cannot be read must not be half applied silently.
    """
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as error:
        msg = f"the erasure journal {path} cannot be read ({type(error).__name__})"
        raise JournalError(msg) from None
    lines = text.split("\n")
    torn = lines.pop() if lines else ""  # after the last newline: empty unless torn
    entries: list[JournalEntry] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            entries.append(
                JournalEntry(
                    erased_at=datetime.fromisoformat(data["erased_at"]),
                    case_id=str(data["case_id"]),
                    owner_ids=[str(owner) for owner in data["owner_ids"]],
                )
            )
        except (ValueError, KeyError, TypeError):
            msg = f"line {number} of the erasure journal {path} is not an erasure"
            raise JournalError(msg) from None
    del torn
    return entries
