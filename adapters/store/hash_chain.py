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
Every break is named where it is, several on one notification id included; an event
deleted together with its chain entry is named at its own, now empty, notification id
(with its stream and version where the stream's missing version fits the place), not
only where the chains break after it.
On PostgreSQL the server recomputes both links first (``sha256`` over the same canonical
bytes, built in SQL), a window of notification ids at a time, two side by side, and
answers per window only "all clean" or not; a log it finds clean is reported as such, and
anything else runs the two passes above, which name the breaks. That trusts the server's
code (its ``sha256``, its text conversion, the query's joins), never its data: a changed
row changes the digest computed from it. ``server_digests=False`` trusts no server code.
What a chain can and cannot prove: anyone who can write the database and recompute every
later link can rewrite history so that it verifies again. An anchor, a head printed by
``akte audit verify`` and kept outside the database (the auditor's notes, a ticket, a
letter), defeats that: ``--anchor NID:HASH`` then proves the log up to ``NID`` unchanged.
"""

from __future__ import annotations

import bisect
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, NamedTuple, Protocol, runtime_checkable
from uuid import UUID

from adapters.store.verifier import GENESIS, LOG_TAG, STREAM_TAG, link_hash

DEFAULT_BATCH_SIZE: Final = 10_000
DEFAULT_MAX_FINDINGS: Final = 20
DEFAULT_WORKERS: Final = 2
"""Windows the server checks side by side (one connection each)."""
DEFAULT_WINDOW: Final = 50_000
"""Notification ids per window the server checks: the wider, the more streams have their
previous version in the same window (at 50,000, 93 in 100 events of the benchmark's
log; the rest look it up by index); the server sorts about 10 MB for one."""
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


class WindowCheck(NamedTuple):
    """What the server found in one window of notification ids (see :func:`verify_chains`)."""

    events: int
    entries: int
    clean: bool
    """Every id holds an event and its chain entry (same stream and version) or neither,
    and both links of every entry check: the log link over the entry before it, the
    stream link over the same stream's previous version, written before it."""


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

    parallel_reads: bool
    """Whether two readers of the store proceed side by side (not on one connection)."""

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


@runtime_checkable
class ServerDigestSource(Protocol):
    """A chained store whose server can recompute the links itself (PostgreSQL's
    ``sha256`` over the same canonical bytes), so that only a verdict per window of
    notification ids comes back instead of every event."""

    def server_digests(self) -> bool:
        """Whether the server builds the canonical bytes exactly as :func:`link_hash`."""
        ...

    def check_window(self, after: int, until: int) -> WindowCheck:
        """Both links of every event with a notification id in ``(after, until]``."""
        ...

    def log_hashes_at(self, notification_ids: Sequence[int], stop: int) -> dict[int, bytes]:
        """The log hashes of the chain entries at these ids, up to ``stop``."""
        ...

    def log_head(self, stop: int) -> tuple[int, bytes] | None:
        """The chain entry with the highest notification id up to ``stop``."""
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
    EVENT_DELETED_WITH_ENTRY = "event_deleted_with_entry"
    """Neither event nor chain entry at this notification id, and the log chain does not
    link across it: the event was deleted together with its chain entry (its stream and
    version named where a stream's missing version fits the place)."""
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
    checked_on_server: bool = False
    """The links were recomputed by the store's server (and all checked), not in Python."""

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


class _Gap(NamedTuple):
    """A stream's versions skip from ``expected - 1`` to ``row.version``."""

    row: StoredRow
    expected: int
    after: int
    """The notification id of the stream's event before the gap (0: none): the missing
    versions were written between it and ``row``."""


class _Absent(NamedTuple):
    """Notification ids ``first..last`` hold neither event nor chain entry, and the log
    chain was not shown to link across them."""

    first: int
    last: int
    broken: bool
    """The log chain breaks right after them (``False``: it could not be checked there,
    the entry after them being broken too)."""


class _Raw:
    """Breaks found by the passes, by notification id, bounded in number."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []
        """Every finding, several on one notification id included."""
        self.log_breaks: dict[int, tuple[StoredRow, int]] = {}
        self.stream_breaks: dict[int, _StreamBreak] = {}
        self.gaps: dict[int, _Gap] = {}
        self.absent: list[_Absent] = []
        self.absent_ids = 0
        self.horizon: int | None = None
        """Beyond this notification id, breaks were dropped to bound memory."""

    def _cut(self, cut: int) -> None:
        self.horizon = cut if self.horizon is None else min(self.horizon, cut)

    def _prune(self, table: dict[int, object]) -> None:
        if len(table) <= 2 * _RAW_CAP:
            return
        keep = sorted(table)[:_RAW_CAP]
        cut = keep[-1]
        for key in [key for key in table if key > cut]:
            del table[key]
        self._cut(cut)

    def finding(self, finding: Finding) -> None:
        self.findings.append(finding)
        if len(self.findings) > 2 * _RAW_CAP:
            self.findings.sort(key=lambda kept: kept.notification_id)
            cut = self.findings[_RAW_CAP - 1].notification_id
            self.findings = [kept for kept in self.findings if kept.notification_id <= cut]
            self._cut(cut)

    def absent_range(self, first: int, last: int, *, broken: bool) -> None:
        """Ids ``first..last`` are empty and the log chain is not shown to link across
        them (bounded in number)."""
        if self.absent_ids >= _RAW_CAP:
            self._cut(first - 1)
            return
        kept = min(last, first + _RAW_CAP - self.absent_ids - 1)
        self.absent.append(_Absent(first, kept, broken))
        self.absent_ids += kept - first + 1
        if kept < last:
            self._cut(kept)

    def log_break(self, row: StoredRow, previous_nid: int) -> None:
        self.log_breaks[row.notification_id] = (row, previous_nid)
        self._prune(self.log_breaks)  # type: ignore[arg-type]

    def stream_break(self, brk: _StreamBreak) -> None:
        self.stream_breaks[brk.row.notification_id] = brk
        self._prune(self.stream_breaks)  # type: ignore[arg-type]

    def gap(self, row: StoredRow, expected: int, after: int) -> None:
        self.gaps[row.notification_id] = _Gap(row, expected, after)
        self._prune(self.gaps)  # type: ignore[arg-type]

    def take_stream_breaks(self, streams: _Raw) -> None:
        """Adopt what the stream pass, run beside the log pass, found."""
        self.stream_breaks = streams.stream_breaks
        self.gaps = streams.gaps
        if streams.horizon is not None:
            self._cut(streams.horizon)


Progress = Callable[[str, int, int], None]
"""``(pass, events done, events in the log)``."""


def verify_chains(
    source: ChainSource,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_findings: int = DEFAULT_MAX_FINDINGS,
    anchors: Sequence[Anchor] = (),
    progress: Progress | None = None,
    server_digests: bool = True,
    workers: int = DEFAULT_WORKERS,
    window: int = DEFAULT_WINDOW,
) -> VerifyReport:
    """Recompute both chains over the whole log and report the first breaks, in log order.

    Where the store's server can recompute the links itself (:class:`ServerDigestSource`,
    PostgreSQL) and ``server_digests`` is on, it does so first, ``workers`` windows of
    ``window`` notification ids side by side: a log that checks there is reported
    clean without an event crossing to Python. Anything else found there (a link that
    does not check, an id with an event but no entry or the other way round, a stream
    version missing, an anchor not passed) runs the checks below in Python over the
    whole log, which name every break exactly as they always have: the server's verdict
    only ever says "clean" or "look closer", never what is wrong.
    ``server_digests=False`` verifies in Python only, trusting no code of the server's.
    """
    started = time.perf_counter()
    report = VerifyReport(seal=source.chain_seal(), anchors=[str(a) for a in anchors])
    stop = source.chain_head()
    if (
        server_digests
        and isinstance(source, ServerDigestSource)
        and source.server_digests()
        and _server_check(source, stop, window, workers, anchors, report, progress)
    ):
        report.seconds = time.perf_counter() - started
        return report
    raw = _Raw()
    streams = _Raw()
    # The two passes read independently: the stream pass runs in a thread beside the log
    # pass, so that one hashes while the other waits for the database (the drivers let go
    # of the interpreter while they wait), nearly halving verify's time.
    # SQLite serialises a store's readers on one connection: there they run one after the
    # other (side by side they took 1.6 times as long).
    if source.parallel_reads:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-streams") as pool:
            stream_pass = pool.submit(_stream_pass, source, stop, batch_size, streams, progress)
            _log_pass(source, stop, batch_size, anchors, raw, report, progress)
            stream_pass.result()
    else:
        _log_pass(source, stop, batch_size, anchors, raw, report, progress)
        _stream_pass(source, stop, batch_size, streams, progress)
    raw.take_stream_breaks(streams)
    findings = _classify(raw)
    report.findings = findings[:max_findings]
    report.more_findings = len(findings) > max_findings
    report.seconds = time.perf_counter() - started
    return report


def _server_check(
    source: ServerDigestSource,
    stop: int,
    window: int,
    workers: int,
    anchors: Sequence[Anchor],
    report: VerifyReport,
    progress: Progress | None,
) -> bool:
    """Whether the server finds the whole log up to ``stop`` clean, every anchor passed;
    fills in ``report`` if so. Windows are checked in order, at most ``2 * workers`` in
    flight (memory stays flat); the first window that is not clean ends the check."""
    events = entries = 0
    windows = ((after, min(stop, after + window)) for after in range(0, stop, window))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify-server") as pool:
        in_flight: deque[Future[WindowCheck]] = deque()
        try:
            for after, until in windows:
                in_flight.append(pool.submit(source.check_window, after, until))
                if len(in_flight) < 2 * workers:
                    continue
                checked = in_flight.popleft().result()
                if not checked.clean:
                    return False
                events, entries = events + checked.events, entries + checked.entries
                _report_both(progress, events, stop)
            while in_flight:
                checked = in_flight.popleft().result()
                if not checked.clean:
                    return False
                events, entries = events + checked.events, entries + checked.entries
                _report_both(progress, events, stop)
        finally:
            for pending in in_flight:
                pending.cancel()
    if anchors:
        found = source.log_hashes_at([anchor.notification_id for anchor in anchors], stop)
        if any(found.get(anchor.notification_id) != anchor.log_hash for anchor in anchors):
            return False
    head = source.log_head(stop)
    report.events = events
    report.entries = entries
    report.head_notification_id, report.head_log_hash = head if head else (0, GENESIS)
    report.checked_on_server = True
    _report_both(progress, events, events)
    return True


def _report_both(progress: Progress | None, done: int, total: int) -> None:
    """The server checks both chains at once: both passes advance together."""
    if progress is not None:
        progress("log", done, total)
        progress("streams", done, total)


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
    last_seen = 0
    # Empty ids since the last link that checked: a link that checks proves that nothing
    # chained was between (the database skipped them); one that breaks, that something was.
    unresolved: list[tuple[int, int]] = []

    def resolve(*, deleted: bool, broken: bool) -> None:
        if deleted:
            for first, last in unresolved:
                raw.absent_range(first, last, broken=broken)
        unresolved.clear()

    events = entries = 0
    for event, entry in source.log_rows(stop, batch_size):
        placed = entry if entry is not None else event
        assert placed is not None, "log_rows pairs an event or an entry at every id"
        here = placed.notification_id
        if here > last_seen + 1:
            unresolved.append((last_seen + 1, here - 1))
            if len(unresolved) > _RAW_CAP:  # unchained events only, for long: bound memory
                resolve(deleted=True, broken=False)
        last_seen = here
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
            resolve(deleted=True, broken=False)
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
            resolve(deleted=True, broken=False)
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
            resolve(deleted=True, broken=True)
            raw.log_break(event, previous_nid)
        else:
            resolve(deleted=False, broken=False)
        previous = entry.log_hash
        previous_nid = nid
    # Empty ids followed only by unchained events: nothing after them could be checked.
    resolve(deleted=True, broken=False)
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
    progress: Progress | None,
) -> None:
    stream: str | None = None
    previous = GENESIS
    expected = 1
    before = 0
    done = 0
    for event, entry in source.stream_rows(stop, batch_size):
        done += 1
        if progress is not None and done % batch_size == 0:
            progress("streams", done, stop)
        if event.originator_id != stream:
            stream = event.originator_id
            previous = GENESIS
            expected = 1
            before = 0
        if event.version != expected:
            raw.gap(event, expected, before)
        expected = event.version + 1
        before = event.notification_id
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
        progress("streams", done, done)


def _classify(raw: _Raw) -> list[Finding]:
    """Name every break, each where it is; several on one notification id are all kept
    (a deleted version and a changed event after it are two findings, not one)."""
    findings = list(raw.findings)
    findings += _deleted_with_entries(raw)
    swapped = _swapped_pairs(raw.stream_breaks)
    for nid, gap in raw.gaps.items():
        row, expected = gap.row, gap.expected
        missing = f"{expected}" if row.version - 1 == expected else f"{expected}..{row.version - 1}"
        if row.version < expected:
            detail = f"version {row.version} comes after version {expected - 1}"
        else:
            detail = f"version {missing} of this stream is missing: the event was deleted"
        findings.append(
            Finding(Break.VERSION_GAP, nid, row.originator_id, row.version, "stream", detail)
        )
    for nid, (row, previous_nid) in raw.log_breaks.items():
        absent_before = nid - previous_nid > 1
        if nid in swapped:
            other = swapped[nid]
            findings.append(
                Finding(
                    Break.ORDER_SWAPPED,
                    nid,
                    row.originator_id,
                    row.version,
                    "log+stream",
                    f"this event's content belongs at version {other.version} (notification "
                    f"{other.notification_id}) and the other way round: two events were swapped",
                )
            )
        elif nid in raw.stream_breaks and not (absent_before and nid in raw.gaps):
            findings.append(
                Finding(
                    Break.CONTENT_CHANGED,
                    nid,
                    row.originator_id,
                    row.version,
                    "log+stream",
                    "the stored event differs from what was chained when it was written "
                    "(changed, or forged with a made-up chain entry)",
                )
            )
        else:
            # Only the log chain breaks (or both, the event before it in the log and in its
            # stream being gone with its entry: named where it was, and as a version gap).
            absent = (
                f" (notification ids {previous_nid + 1}..{nid - 1} are absent)"
                if absent_before
                else ""
            )
            findings.append(
                Finding(
                    Break.LINK_MISSING,
                    nid,
                    row.originator_id,
                    row.version,
                    "log",
                    "the log chain does not link to the entry before it: an event before it "
                    "was removed together with its chain entry, or a chain entry was altered"
                    f"{absent}",
                )
            )
    for nid, brk in raw.stream_breaks.items():
        if nid in raw.log_breaks or nid in raw.gaps:
            continue  # named above: by the log chain, or as the missing version before it
        findings.append(
            Finding(
                Break.LINK_MISSING,
                nid,
                brk.row.originator_id,
                brk.row.version,
                "stream",
                "the stream chain does not link to the version before: its chain entry was altered",
            )
        )
    ordered = sorted(set(findings), key=lambda f: (f.notification_id, _KIND_ORDER[f.kind]))
    if raw.horizon is not None:
        ordered = [f for f in ordered if f.notification_id <= raw.horizon]
    return ordered


_KIND_ORDER: Final = {kind: order for order, kind in enumerate(Break)}


def _deleted_with_entries(raw: _Raw) -> list[Finding]:
    """A finding at every empty notification id across which the log chain does not link,
    with the stream and version of the deleted event where a stream's missing versions
    fit exactly the empty ids between its neighbours."""
    where = {nid: absent for absent in raw.absent for nid in range(absent.first, absent.last + 1)}
    empty = sorted(where)
    named: dict[int, tuple[str, int]] = {}
    # Narrow windows first: a stream's neighbours close together place its missing
    # version best, before a wide window (a stream's first version missing) claims ids.
    gaps = sorted(
        (gap for gap in raw.gaps.values() if gap.row.version > gap.expected),
        key=lambda gap: gap.row.notification_id - gap.after,
    )
    # Versions whose chain entry remains are placed already (``EVENT_MISSING``).
    entry_kept = {(f.stream, f.version) for f in raw.findings if f.kind is Break.EVENT_MISSING}
    for gap in gaps:
        window = empty[
            bisect.bisect_right(empty, gap.after) : bisect.bisect_left(
                empty, gap.row.notification_id
            )
        ]
        places = [nid for nid in window if nid not in named]
        stream = gap.row.originator_id
        versions = [
            version
            for version in range(gap.expected, gap.row.version)
            if (stream, version) not in entry_kept
        ]
        if versions and len(places) == len(versions):
            for nid, version in zip(places, versions, strict=True):
                named[nid] = (gap.row.originator_id, version)
    findings = []
    for nid in empty:
        stream, version = named.get(nid, ("-", 0))
        if nid in named:
            detail = (
                f"version {version} of stream {stream} was written here and deleted "
                "together with its chain entry"
            )
        elif where[nid].broken and where[nid].first == where[nid].last:
            detail = (
                "neither the event nor its chain entry is here, and the log chain does not "
                "link across it: the event was deleted together with its chain entry"
            )
        elif where[nid].broken:
            detail = (
                "neither an event nor a chain entry is here, and the log chain does not link "
                "across these ids: events were deleted with their chain entries (one of "
                "them may also be an id the database skipped)"
            )
        else:
            detail = (
                "neither an event nor a chain entry is here, and the log chain cannot be "
                "checked across it (the entry after it is broken too): an event deleted "
                "with its chain entry, or an id the database skipped"
            )
        findings.append(
            Finding(Break.EVENT_DELETED_WITH_ENTRY, nid, stream, version, "log", detail)
        )
    return findings


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
