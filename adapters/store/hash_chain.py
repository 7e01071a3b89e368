"""Tamper evidence: every stored event is chained to the one before it, and ``verify``.

Each recorded event gets a chain entry, written in the same transaction as the event by
the recorders of :mod:`adapters.store.recorders`: its ``stream_hash`` links it to the
previous event of its stream (a case file, a declaration ...), its ``log_hash`` to the
previous event of the whole log, each a :func:`adapters.store.verifier.link_hash` over
the previous hash and the event exactly as stored. Snapshots are not chained: they are
derived from the events and can be thrown away; only the events are the record.

:func:`verify_chains` recomputes both chains from the stored events and reports where they
break, in two streaming passes with memory bounded by the batch size (never by the log):
the log pass in notification order, the stream pass in (stream, version) order. After a
break it continues from the stored hash, so that every independent break is found once.
What a chain can and cannot prove: anyone who can write the database and recompute every
later link can rewrite history so that it verifies again. An anchor, a head printed by
``akte audit verify`` and kept outside the database (the auditor's notes, a ticket, a
letter), defeats that: ``--anchor NID:HASH`` then proves the log up to ``NID`` unchanged.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, NamedTuple, Protocol
from uuid import UUID

from adapters.store.verifier import GENESIS, LOG_TAG, STREAM_TAG, link_hash

DEFAULT_BATCH_SIZE: Final = 10_000
DEFAULT_MAX_FINDINGS: Final = 20
_RAW_CAP: Final = 10_000
"""Breaks kept per pass before classifying: enough for every finding reported."""


class StoredRow(NamedTuple):
    """An event as it is stored, with its place in the log."""

    notification_id: int
    originator_id: str
    """Canonical: a UUID as 32 lowercase hex digits."""
    version: int
    topic: str
    state: bytes


class ChainEntry(NamedTuple):
    notification_id: int
    originator_id: str
    version: int
    stream_hash: bytes
    log_hash: bytes


@dataclass(frozen=True)
class Seal:
    """When the chain was introduced into a store that already held events."""

    sealed_up_to: int
    """Events up to this notification id were chained then, not when they were written."""
    sealed_at: datetime


@dataclass(frozen=True)
class Anchor:
    """A log head recorded outside the database: the chain must still pass through it."""

    notification_id: int
    log_hash: bytes

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """``NID:HEX``, as ``akte audit verify`` prints the head."""
        match = re.fullmatch(r"\s*(\d{1,18}):([0-9a-fA-F]{64})\s*", text)
        if match is None:
            msg = "an anchor is NOTIFICATION_ID:SHA256_HEX, e.g. 1234:9f86d0...(64 hex digits)"
            raise ValueError(msg)
        return cls(int(match.group(1)), bytes.fromhex(match.group(2)))

    def __str__(self) -> str:
        return f"{self.notification_id}:{self.log_hash.hex()}"


def canonical_id(originator_id: UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, UUID) else originator_id


class Chainer:
    """Computes chain entries for events in log order, from the hashes before them."""

    def __init__(self, previous_log: bytes, previous_streams: Mapping[str, bytes]) -> None:
        self.previous_log = previous_log
        self.previous_streams = dict(previous_streams)

    def link(self, rows: Iterable[StoredRow]) -> list[ChainEntry]:
        entries = []
        streams = self.previous_streams
        log = self.previous_log
        for row in rows:
            oid = row.originator_id
            stream = link_hash(
                STREAM_TAG, streams.get(oid, GENESIS), oid, row.version, row.topic, row.state
            )
            log = link_hash(LOG_TAG, log, oid, row.version, row.topic, row.state)
            streams[oid] = stream
            entries.append(ChainEntry(row.notification_id, oid, row.version, stream, log))
        self.previous_log = log
        return entries


class ChainSource(Protocol):
    """What verification and export read from a chained store."""

    def chain_seal(self) -> Seal | None: ...

    def chain_head(self) -> int:
        """The highest notification id among events and chain entries (0: none)."""
        ...

    def last_entry(self) -> ChainEntry | None:
        """The chain entry with the highest notification id: the log's head."""
        ...

    def log_rows(
        self, stop: int, batch_size: int
    ) -> Iterator[tuple[StoredRow | None, ChainEntry | None]]:
        """Events and chain entries paired by notification id, in its order, up to ``stop``."""
        ...

    def stream_rows(
        self, stop: int, batch_size: int
    ) -> Iterator[tuple[StoredRow, ChainEntry | None]]:
        """Events up to ``stop`` in (stream, version) order, each with its chain entry."""
        ...

    def stream_history(
        self, originator_id: UUID
    ) -> list[tuple[StoredRow, ChainEntry | None, ChainEntry | None]]:
        """One stream's events with their chain entries and the log entry before each."""
        ...


# ------------------------------------------------------------------ verification


class Break(StrEnum):
    CONTENT_CHANGED = "content_changed"
    """The stored event differs from what was chained when it was written (or was forged
    together with a made-up chain entry)."""
    ORDER_SWAPPED = "order_swapped"
    """Two events of a stream exchanged their contents or versions."""
    EVENT_MISSING = "event_missing"
    """A chain entry without its event: the event was deleted."""
    LINK_MISSING = "link_missing"
    """The chain does not link to the entry before: an event before it was removed with
    its chain entry, or a chain entry was altered."""
    VERSION_GAP = "version_gap"
    """A stream's versions skip one: that event was removed."""
    UNCHAINED_EVENT = "unchained_event"
    """An event without a chain entry: written around the application (forged)."""
    ENTRY_MISMATCH = "entry_mismatch"
    """Event and chain entry at one notification id name different streams or versions."""
    ANCHOR_MISMATCH = "anchor_mismatch"
    """The log no longer passes through a head recorded earlier."""


@dataclass(frozen=True)
class Finding:
    kind: Break
    notification_id: int
    stream: str
    """The originator id (a case file's id): never personal data."""
    version: int
    chain: str
    """``log``, ``stream`` or ``log+stream``: which chain found it."""
    detail: str

    def __str__(self) -> str:
        return (
            f"{self.kind.value} at notification {self.notification_id}, stream {self.stream} "
            f"version {self.version}: {self.detail}"
        )


@dataclass
class VerifyReport:
    events: int = 0
    entries: int = 0
    head_notification_id: int = 0
    head_log_hash: bytes = GENESIS
    seal: Seal | None = None
    anchors: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    more_findings: bool = False
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first(self) -> Finding | None:
        return self.findings[0] if self.findings else None

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def head(self) -> str:
        """``NID:HASH``: keep it outside the database and pass it back as an anchor."""
        return f"{self.head_notification_id}:{self.head_log_hash.hex()}"


class _StreamBreak(NamedTuple):
    row: StoredRow
    previous: bytes
    stored: bytes


class _Raw:
    """Breaks found by the passes, keyed by notification id, bounded in number."""

    def __init__(self) -> None:
        self.findings: dict[int, Finding] = {}
        self.log_breaks: dict[int, tuple[StoredRow, int]] = {}
        self.stream_breaks: dict[int, _StreamBreak] = {}
        self.gaps: dict[int, tuple[StoredRow, int]] = {}
        self.horizon: int | None = None
        """Beyond this notification id, breaks were dropped to bound memory."""

    def _prune(self, table: dict[int, object]) -> None:
        if len(table) <= 2 * _RAW_CAP:
            return
        keep = sorted(table)[:_RAW_CAP]
        cut = keep[-1]
        for key in [key for key in table if key > cut]:
            del table[key]
        self.horizon = cut if self.horizon is None else min(self.horizon, cut)

    def finding(self, finding: Finding) -> None:
        self.findings.setdefault(finding.notification_id, finding)
        self._prune(self.findings)  # type: ignore[arg-type]

    def log_break(self, row: StoredRow, previous_nid: int) -> None:
        self.log_breaks[row.notification_id] = (row, previous_nid)
        self._prune(self.log_breaks)  # type: ignore[arg-type]

    def stream_break(self, brk: _StreamBreak) -> None:
        self.stream_breaks[brk.row.notification_id] = brk
        self._prune(self.stream_breaks)  # type: ignore[arg-type]

    def gap(self, row: StoredRow, expected: int) -> None:
        self.gaps[row.notification_id] = (row, expected)
        self._prune(self.gaps)  # type: ignore[arg-type]


Progress = Callable[[str, int, int], None]
"""``(pass, events done, events in the log)``."""


def verify_chains(
    source: ChainSource,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_findings: int = DEFAULT_MAX_FINDINGS,
    anchors: Sequence[Anchor] = (),
    progress: Progress | None = None,
) -> VerifyReport:
    """Recompute both chains over the whole log and report the first breaks, in log order."""
    started = time.perf_counter()
    report = VerifyReport(seal=source.chain_seal(), anchors=[str(a) for a in anchors])
    stop = source.chain_head()
    raw = _Raw()
    _log_pass(source, stop, batch_size, anchors, raw, report, progress)
    _stream_pass(source, stop, batch_size, raw, report, progress)
    findings = _classify(raw)
    report.findings = findings[:max_findings]
    report.more_findings = len(findings) > max_findings
    report.seconds = time.perf_counter() - started
    return report


def _log_pass(
    source: ChainSource,
    stop: int,
    batch_size: int,
    anchors: Sequence[Anchor],
    raw: _Raw,
    report: VerifyReport,
    progress: Progress | None,
) -> None:
    expected_anchors = {anchor.notification_id: anchor.log_hash for anchor in anchors}
    previous = GENESIS
    previous_nid = 0
    events = entries = 0
    for event, entry in source.log_rows(stop, batch_size):
        if event is not None:
            events += 1
            if progress is not None and events % batch_size == 0:
                progress("log", events, stop)
        if entry is None:
            assert event is not None
            raw.finding(
                Finding(
                    Break.UNCHAINED_EVENT,
                    event.notification_id,
                    event.originator_id,
                    event.version,
                    "log",
                    "the event has no chain entry: it was written around the application",
                )
            )
            continue
        entries += 1
        nid = entry.notification_id
        if nid in expected_anchors:
            _check_anchor(raw, entry, expected_anchors.pop(nid))
        if event is None:
            raw.finding(
                Finding(
                    Break.EVENT_MISSING,
                    nid,
                    entry.originator_id,
                    entry.version,
                    "log",
                    "the chain entry remains but its event was deleted",
                )
            )
        elif (event.originator_id, event.version) != (entry.originator_id, entry.version):
            raw.finding(
                Finding(
                    Break.ENTRY_MISMATCH,
                    nid,
                    event.originator_id,
                    event.version,
                    "log",
                    f"the event here claims stream {event.originator_id} version "
                    f"{event.version}, but was chained as stream {entry.originator_id} "
                    f"version {entry.version}: events were moved or reordered",
                )
            )
        elif (
            link_hash(
                LOG_TAG, previous, event.originator_id, event.version, event.topic, event.state
            )
            != entry.log_hash
        ):
            raw.log_break(event, previous_nid)
        previous = entry.log_hash
        previous_nid = nid
    for nid, log_hash in expected_anchors.items():
        raw.finding(
            Finding(
                Break.ANCHOR_MISMATCH,
                nid,
                "-",
                0,
                "log",
                f"the anchor {nid}:{log_hash.hex()} is beyond the log's end "
                f"({previous_nid}): events at its end were removed",
            )
        )
    report.events = events
    report.entries = entries
    report.head_notification_id = previous_nid
    report.head_log_hash = previous
    if progress is not None:
        progress("log", events, events)


def _check_anchor(raw: _Raw, entry: ChainEntry, expected: bytes) -> None:
    if entry.log_hash != expected:
        raw.finding(
            Finding(
                Break.ANCHOR_MISMATCH,
                entry.notification_id,
                entry.originator_id,
                entry.version,
                "log",
                f"the log hash here is {entry.log_hash.hex()}, the anchor recorded "
                f"{expected.hex()}: the log up to here was rewritten",
            )
        )


def _stream_pass(
    source: ChainSource,
    stop: int,
    batch_size: int,
    raw: _Raw,
    report: VerifyReport,
    progress: Progress | None,
) -> None:
    stream: str | None = None
    previous = GENESIS
    expected = 1
    done = 0
    for event, entry in source.stream_rows(stop, batch_size):
        done += 1
        if progress is not None and done % batch_size == 0:
            progress("streams", done, report.events)
        if event.originator_id != stream:
            stream = event.originator_id
            previous = GENESIS
            expected = 1
        if event.version != expected:
            raw.gap(event, expected)
        expected = event.version + 1
        if entry is None or (entry.originator_id, entry.version) != (
            event.originator_id,
            event.version,
        ):
            # Reported by the log pass; nothing to link against here.
            if entry is not None:
                previous = entry.stream_hash
            continue
        computed = link_hash(
            STREAM_TAG, previous, event.originator_id, event.version, event.topic, event.state
        )
        if computed != entry.stream_hash:
            raw.stream_break(_StreamBreak(event, previous, entry.stream_hash))
        previous = entry.stream_hash
    if progress is not None:
        progress("streams", done, report.events)


def _classify(raw: _Raw) -> list[Finding]:
    findings = dict(raw.findings)
    swapped = _swapped_pairs(raw.stream_breaks)
    for nid, (row, expected) in raw.gaps.items():
        missing = f"{expected}" if row.version - 1 == expected else f"{expected}..{row.version - 1}"
        if row.version < expected:
            detail = f"version {row.version} comes after version {expected - 1}"
        else:
            detail = f"version {missing} of this stream is missing: the event was deleted"
        findings.setdefault(
            nid, Finding(Break.VERSION_GAP, nid, row.originator_id, row.version, "stream", detail)
        )
    for nid, (row, previous_nid) in raw.log_breaks.items():
        if nid in findings:
            continue
        if nid in swapped:
            other = swapped[nid]
            findings[nid] = Finding(
                Break.ORDER_SWAPPED,
                nid,
                row.originator_id,
                row.version,
                "log+stream",
                f"this event's content belongs at version {other.version} (notification "
                f"{other.notification_id}) and the other way round: two events were swapped",
            )
        elif nid in raw.stream_breaks:
            findings[nid] = Finding(
                Break.CONTENT_CHANGED,
                nid,
                row.originator_id,
                row.version,
                "log+stream",
                "the stored event differs from what was chained when it was written "
                "(changed, or forged with a made-up chain entry)",
            )
        else:
            gap = (
                f" (notification ids {previous_nid + 1}..{nid - 1} are absent)"
                if nid - previous_nid > 1
                else ""
            )
            findings[nid] = Finding(
                Break.LINK_MISSING,
                nid,
                row.originator_id,
                row.version,
                "log",
                "the log chain does not link to the entry before it: an event before it was "
                f"removed together with its chain entry, or a chain entry was altered{gap}",
            )
    for nid, brk in raw.stream_breaks.items():
        findings.setdefault(
            nid,
            Finding(
                Break.LINK_MISSING,
                nid,
                brk.row.originator_id,
                brk.row.version,
                "stream",
                "the stream chain does not link to the version before: its chain entry was altered",
            ),
        )
    ordered = sorted(findings.values(), key=lambda f: f.notification_id)
    if raw.horizon is not None:
        ordered = [f for f in ordered if f.notification_id <= raw.horizon]
    return ordered


def _swapped_pairs(breaks: Mapping[int, _StreamBreak]) -> dict[int, StoredRow]:
    """Breaks whose contents fit each other's places: two events exchanged."""
    by_stream: dict[str, list[_StreamBreak]] = {}
    for brk in breaks.values():
        by_stream.setdefault(brk.row.originator_id, []).append(brk)
    pairs: dict[int, StoredRow] = {}
    for candidates in by_stream.values():
        if len(candidates) > 50:  # bounded work: a mass rewrite is not a swap
            continue
        for a in candidates:
            for b in candidates:
                if a is b or a.row.notification_id in pairs:
                    continue
                if _fits(a.row, b) and _fits(b.row, a):
                    pairs[a.row.notification_id] = b.row
                    pairs[b.row.notification_id] = a.row
    return pairs


def _fits(content: StoredRow, place: _StreamBreak) -> bool:
    return (
        link_hash(
            STREAM_TAG,
            place.previous,
            place.row.originator_id,
            place.row.version,
            content.topic,
            content.state,
        )
        == place.stored
    )
