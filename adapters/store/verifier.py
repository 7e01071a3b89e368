"""The hash chain's definition, and the verifier that travels inside every case export.

This module is the single source of truth for how a chain link is computed: the recorders
(:mod:`adapters.store.recorders`) and ``akte audit verify`` (:mod:`adapters.store.hash_chain`)
import :func:`link_hash` from here, and ``akte audit export`` copies this very source text
into the exported file. It therefore uses the standard library only and must run as a
script on any Python 3.11+ without Akte installed.

A link is ``SHA-256(tag || previous || u32(len id) || id || u64(version) || u32(len topic)
|| topic || u64(len state) || state)``: big-endian lengths, UTF-8 text, ``previous`` the
32-byte hash of the link before (32 zero bytes for the first), ``tag`` ``b"akte-stream-v1\\0"``
for a stream's chain and ``b"akte-log-v1\\0"`` for the whole log's, ``id`` the originator
id in canonical form (a UUID as 32 lowercase hex digits), ``state`` the bytes exactly as
stored (possibly encrypted: the chain stays checkable after crypto-shredding).

The export format (``akte-case-export/1``) is a JSON object, embedded in the script as
``EXPORT``::

    {"format": "akte-case-export/1", "originator_id": "<32 hex>", "exported_at": "<iso>",
     "events": [{"notification_id": 17, "version": 1, "topic": "...",
                 "state": "<base64 of the stored bytes>",
                 "stream_hash": "<hex>", "log_hash": "<hex>",
                 "log_previous": {"notification_id": 16, "log_hash": "<hex>"} | null}, ...],
     "stream_head": "<hex>", "log_head": {"notification_id": N, "log_hash": "<hex>"},
     "sealed_up_to": 0}

The stream chain (versions 1..n, each link over the one before) proves the case's history
on its own; ``log_previous`` and ``log_hash`` tie each event to its place in the whole log,
so anyone holding the full log can cross-check them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
import sys
from typing import Any, Final

GENESIS: Final = bytes(32)
STREAM_TAG: Final = b"akte-stream-v1\x00"
LOG_TAG: Final = b"akte-log-v1\x00"
EXPORT_FORMAT: Final = "akte-case-export/1"

_U32: Final = struct.Struct(">I")
_U64: Final = struct.Struct(">Q")


def link_hash(
    tag: bytes, previous: bytes, originator_id: str, version: int, topic: str, state: bytes
) -> bytes:
    """The hash of one link: the previous link's hash and the stored event."""
    oid = originator_id.encode()
    top = topic.encode()
    return hashlib.sha256(
        b"".join(
            (
                tag,
                previous,
                _U32.pack(len(oid)),
                oid,
                _U64.pack(version),
                _U32.pack(len(top)),
                top,
                _U64.pack(len(state)),
                state,
            )
        )
    ).digest()


def check_export(export: dict[str, Any]) -> tuple[list[str], str]:
    """The problems of an export (empty: intact) and the stream head it recomputed (hex)."""
    if export.get("format") != EXPORT_FORMAT:
        return [f"unknown format {export.get('format')!r}, expected {EXPORT_FORMAT}"], ""
    originator_id = str(export["originator_id"])
    problems: list[str] = []
    previous = GENESIS
    expected_version = 1
    for event in export["events"]:
        version = int(event["version"])
        place = f"version {version} (notification {event['notification_id']})"
        if event.get("stream_hash") is None or event.get("log_hash") is None:
            problems.append(f"{place}: no chain entry: written around the application")
            expected_version = version + 1
            continue
        try:
            state = base64.b64decode(event["state"], validate=True)
            stored = bytes.fromhex(event["stream_hash"])
            log_stored = bytes.fromhex(event["log_hash"])
        except (binascii.Error, ValueError):
            problems.append(f"{place}: unreadable state or hash")
            break
        if version != expected_version:
            if version > expected_version:
                missing = f"{expected_version}" + (
                    f"..{version - 1}" if version - 1 > expected_version else ""
                )
                problems.append(f"{place}: version {missing} missing before it")
            else:
                problems.append(f"{place}: out of order, expected version {expected_version}")
        computed = link_hash(STREAM_TAG, previous, originator_id, version, event["topic"], state)
        if computed != stored:
            problems.append(
                f"{place}: stream link broken: the event differs from what was chained "
                "when it was written, or an event before it was removed"
            )
        log_previous = event.get("log_previous")
        log_before = GENESIS if log_previous is None else bytes.fromhex(log_previous["log_hash"])
        if link_hash(LOG_TAG, log_before, originator_id, version, event["topic"], state) != (
            log_stored
        ):
            problems.append(f"{place}: log link does not match the event")
        # Continue from the stored hash, so that one altered event is reported once.
        previous = stored
        expected_version = version + 1
    head = previous.hex()
    if export.get("stream_head") not in (None, head):
        problems.append(f"stream head {head} differs from the exported {export['stream_head']}")
    return problems, head


def _readable(state: bytes) -> str:
    try:
        return json.dumps(json.loads(state), ensure_ascii=False, sort_keys=True)
    except ValueError:
        return f"<{len(state)} bytes, not JSON: encrypted or compressed>"


def main(argv: list[str], export: dict[str, Any]) -> int:
    """Verify ``export``; ``--show`` also prints every event. Exit code 0 intact, 1 broken."""
    if "--show" in argv:
        for event in export["events"]:
            state = base64.b64decode(event["state"])
            print(f"v{event['version']} #{event['notification_id']} {event['topic']}")
            print(f"    {_readable(state)}")
    problems, head = check_export(export)
    events = len(export.get("events", ()))
    if problems:
        print(f"BROKEN: case {export.get('originator_id')}, {events} events")
        for problem in problems:
            print(f"  {problem}")
        return 1
    print(f"OK: case {export['originator_id']}, {events} events, versions 1..{events}")
    print(f"stream head {head}")
    log_head = export.get("log_head") or {}
    print(
        f"log head at export: notification {log_head.get('notification_id')} "
        f"{log_head.get('log_hash')}"
    )
    if export.get("sealed_up_to"):
        print(
            f"note: events up to notification {export['sealed_up_to']} were chained when "
            "tamper evidence was introduced, not when they were written"
        )
    print("Compare the stream head with the one the office's system reports for this case.")
    return 0


if __name__ == "__main__":  # pragma: no cover - the exported script's entry point
    sys.exit(main(sys.argv[1:], globals()["EXPORT"]))
