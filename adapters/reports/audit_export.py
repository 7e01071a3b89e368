"""``akte audit export``: one case file's history as a self-contained, verifiable script.

The export is a single Python file: the source of :mod:`adapters.store.verifier` (standard
library only, the same code that defines the chain for the recorders) with the case's
stored events, their chain entries and the log entry before each embedded as ``EXPORT``
(format ``akte-case-export/1``, documented in that module). ``python3 FILE`` recomputes
the stream chain and prints ``OK`` and the stream head, or ``BROKEN`` and the first broken
version; ``--show`` also prints the events, decoded where they are readable JSON.

The file holds the case's personal data as stored (base64 of the event states): hand it
over like the case file itself.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from uuid import UUID

from adapters.store import verifier as offline_verifier
from adapters.store.hash_chain import ChainSource, canonical_id
from adapters.store.verifier import EXPORT_FORMAT, GENESIS

_MAIN_GUARD: Final = 'if __name__ == "__main__":'
_HEADER: Final = (
    "#!/usr/bin/env python3\n"
    "# Akte case history export: run `python3 {name}` to verify it offline (standard\n"
    "# library only; add --show to print the events). Contains personal data.\n"
)


class NothingToExport(LookupError):
    """The store holds no events for this id."""


@dataclass(frozen=True)
class CaseExport:
    script: str
    events: int
    stream_head: str


def export_case(source: ChainSource, case_id: UUID, *, name: str = "export.py") -> CaseExport:
    """The verifier script with the case's chained history embedded."""
    history = source.stream_history(case_id)
    if not history:
        raise NothingToExport(str(case_id))
    events: list[dict[str, Any]] = []
    stream_head = GENESIS.hex()
    for row, entry, before in history:
        events.append(
            {
                "notification_id": row.notification_id,
                "version": row.version,
                "topic": row.topic,
                "state": base64.b64encode(row.state).decode("ascii"),
                "stream_hash": None if entry is None else entry.stream_hash.hex(),
                "log_hash": None if entry is None else entry.log_hash.hex(),
                "log_previous": None
                if before is None
                else {"notification_id": before.notification_id, "log_hash": before.log_hash.hex()},
            }
        )
        if entry is not None:
            stream_head = entry.stream_hash.hex()
    head = source.last_entry()
    seal = source.chain_seal()
    export = {
        "format": EXPORT_FORMAT,
        "originator_id": canonical_id(case_id),
        "exported_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "events": events,
        "stream_head": stream_head,
        "log_head": None
        if head is None
        else {"notification_id": head.notification_id, "log_hash": head.log_hash.hex()},
        "sealed_up_to": 0 if seal is None else seal.sealed_up_to,
    }
    return CaseExport(_script(export, name), len(events), stream_head)


def _script(export: dict[str, Any], name: str) -> str:
    source = Path(offline_verifier.__file__).read_text(encoding="utf-8")
    module, guard = source.split(_MAIN_GUARD)
    data = json.dumps(export, indent=1, ensure_ascii=True)
    # Every value is a number, hex, base64, an id or a topic, so this cannot occur;
    # checked anyway, because it would end the raw string early.
    if "'''" in data:  # pragma: no cover
        msg = "export data cannot be embedded"
        raise ValueError(msg)
    return (
        _HEADER.format(name=name)
        + module
        + f"EXPORT: dict[str, Any] = json.loads(\n    r'''\n{data}\n'''\n)\n\n\n"
        + _MAIN_GUARD
        + guard
    )
