"""Tamper evidence on SQLite and PostgreSQL: the hash chains find every edit made directly
in the database, and name the place (stream, version, notification id).

Each test writes a small log through the service, tampers with it in raw SQL as someone
with database access would (changes a byte, deletes, reorders, forges), and runs the same
verification as ``akte audit verify``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest

from adapters.bootstrap import build_service, event_storage_for, library_env
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from adapters.store.hash_chain import Anchor, Break, ChainSource, VerifyReport, verify_chains
from adapters.store.verifier import GENESIS, LOG_TAG, STREAM_TAG, link_hash
from service import AkteService
from tests.conftest import POSTGRES
from tests.service.test_case_files import open_case

NOTES_PER_CASE = 4


@dataclass(frozen=True)
class Placed:
    """One event's place in the log."""

    notification_id: int
    case_id: UUID
    version: int


class RawDb:
    """The store's tables in raw SQL, bypassing the application (the tamperer's view)."""

    def __init__(self, settings: Settings) -> None:
        self.sqlite = settings.store == "sqlite"
        if self.sqlite:
            self._conn: Any = sqlite3.connect(settings.sqlite_path, isolation_level=None)
            self.events, self.nid, self.chain = "stored_events", "rowid", "event_chain"
        else:
            self._conn = psycopg.connect(
                autocommit=True, options=f"-c search_path={settings.postgres_schema}", **POSTGRES
            )
            self.events, self.nid, self.chain = "akte_events", "notification_id", "akte_event_chain"

    def run(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        statement = statement.format(events=self.events, nid=self.nid, chain=self.chain)
        if not self.sqlite:
            statement = statement.replace("?", "%s")
        cursor = self._conn.execute(statement, tuple(params))
        return list(cursor.fetchall()) if cursor.description else []

    def oid(self, case_id: UUID) -> Any:
        return case_id.hex if self.sqlite else case_id

    def state(self, nid: int) -> bytes:
        [(state,)] = self.run("SELECT state FROM {events} WHERE {nid} = ?", [nid])
        return bytes(state)

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def raw(settings: Settings) -> Iterator[RawDb]:
    db = RawDb(settings)
    try:
        yield db
    finally:
        db.close()


def write_log(service: AkteService, cases: int = 3) -> list[Placed]:
    """Case files with notes, their events interleaved in the log."""
    opened = [open_case(service) for _ in range(cases)]
    versions = dict(opened)
    for n in range(NOTES_PER_CASE):
        for case_id in versions:
            versions[case_id] = service.add_note(
                case_id, expected_version=versions[case_id], by="sb-01", text=f"Vermerk {n}"
            ).version
    notifications = service.recorder.select_notifications(start=1, limit=10_000)
    return [
        Placed(n.id, UUID(str(n.originator_id)), n.originator_version)
        for n in notifications
        if n.originator_id in versions
    ]


def verify(service: AkteService, **options: Any) -> VerifyReport:
    source: ChainSource = service.recorder  # type: ignore[assignment]
    return verify_chains(source, **options)


def at(log: list[Placed], case_id: UUID, version: int) -> Placed:
    return next(p for p in log if p.case_id == case_id and p.version == version)


def second_case(log: list[Placed]) -> UUID:
    return list(dict.fromkeys(p.case_id for p in log))[1]


def test_an_untouched_log_verifies_clean(service: AkteService) -> None:
    log = write_log(service)
    head = service.recorder.max_notification_id()

    for batch_size in (3, 10_000):  # paging through the log gives the same answer
        report = verify(service, batch_size=batch_size)

        assert report.ok, report.findings
        assert report.events == report.entries == head
        assert report.head_notification_id == head
        assert report.seal is not None
        assert report.seal.sealed_up_to == 0
    assert len(log) == 3 * (1 + NOTES_PER_CASE)


def test_one_changed_byte_is_found_and_named(service: AkteService, raw: RawDb) -> None:
    log = write_log(service)
    target = at(log, second_case(log), 2)
    state = bytearray(raw.state(target.notification_id))
    state[len(state) // 2] ^= 0x01
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), target.notification_id])

    report = verify(service)

    assert not report.ok
    assert len(report.findings) == 1, "one edit, one finding: the chain resumes after it"
    first = report.first
    assert first is not None
    assert first.kind is Break.CONTENT_CHANGED
    assert (first.notification_id, first.stream, first.version) == (
        target.notification_id,
        target.case_id.hex,
        2,
    )
    assert first.chain == "log+stream"
    assert f"notification {target.notification_id}" in str(first)


def named(report: VerifyReport) -> list[tuple[Break, int, str, int]]:
    """Every finding as (kind, notification id, stream, version), in report order."""
    return [(f.kind, f.notification_id, f.stream, f.version) for f in report.findings]


def test_a_deleted_event_is_found(service: AkteService, raw: RawDb) -> None:
    log = write_log(service)
    case_id = second_case(log)
    target, after = at(log, case_id, 2), at(log, case_id, 3)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])

    report = verify(service)

    # The stream chain of version 3 breaks too, for the missing version: one cause, told
    # once, as the gap.
    assert named(report) == [
        (Break.EVENT_MISSING, target.notification_id, case_id.hex, 2),
        (Break.VERSION_GAP, after.notification_id, case_id.hex, 3),
    ]


def test_a_deleted_event_and_its_chain_entry_are_found(service: AkteService, raw: RawDb) -> None:
    log = write_log(service)
    case_id = second_case(log)
    target = at(log, case_id, 2)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])
    raw.run("DELETE FROM {chain} WHERE notification_id = ?", [target.notification_id])

    report = verify(service)

    following = min(p.notification_id for p in log if p.notification_id > target.notification_id)
    following_row = next(p for p in log if p.notification_id == following)
    assert named(report) == [
        # The deleted event itself, with the stream and version its gap places there.
        (Break.EVENT_DELETED_WITH_ENTRY, target.notification_id, case_id.hex, 2),
        (Break.LINK_MISSING, following, following_row.case_id.hex, following_row.version),
        (Break.VERSION_GAP, at(log, case_id, 3).notification_id, case_id.hex, 3),
    ]
    deleted, link, gap = report.findings
    assert f"notification {target.notification_id}" in str(deleted)
    assert "deleted together with its chain entry" in deleted.detail
    assert f"{target.notification_id}..{target.notification_id}" in link.detail
    assert "version 2 of this stream is missing" in gap.detail


def test_every_event_deleted_with_its_chain_entry_is_named(
    service: AkteService, raw: RawDb
) -> None:
    log = write_log(service)
    case_id = second_case(log)
    targets = [at(log, case_id, 2), at(log, case_id, 3)]
    for target in targets:
        raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])
        raw.run("DELETE FROM {chain} WHERE notification_id = ?", [target.notification_id])

    report = verify(service)

    deleted = [f for f in report.findings if f.kind is Break.EVENT_DELETED_WITH_ENTRY]
    assert [(f.notification_id, f.stream, f.version) for f in deleted] == [
        (targets[0].notification_id, case_id.hex, 2),
        (targets[1].notification_id, case_id.hex, 3),
    ]
    [gap] = [f for f in report.findings if f.kind is Break.VERSION_GAP]
    assert (gap.notification_id, gap.version) == (at(log, case_id, 4).notification_id, 4)
    assert "version 2..3 of this stream is missing" in gap.detail


def test_a_deletion_next_to_another_break_is_still_named(service: AkteService, raw: RawDb) -> None:
    # The event after the deleted one in the log loses its event too: the log chain
    # cannot be checked across the empty id, yet the stream's gap places the deletion.
    log = write_log(service)
    case_id = second_case(log)
    target = at(log, case_id, 2)
    neighbour = next(p for p in log if p.notification_id > target.notification_id)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])
    raw.run("DELETE FROM {chain} WHERE notification_id = ?", [target.notification_id])
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [neighbour.notification_id])

    report = verify(service)

    assert named(report)[:2] == [
        (Break.EVENT_DELETED_WITH_ENTRY, target.notification_id, case_id.hex, 2),
        (
            Break.EVENT_MISSING,
            neighbour.notification_id,
            neighbour.case_id.hex,
            neighbour.version,
        ),
    ]


def test_several_findings_on_one_notification_id_are_all_kept(
    service: AkteService, raw: RawDb
) -> None:
    log = write_log(service)
    case_id = second_case(log)
    deleted, changed = at(log, case_id, 2), at(log, case_id, 3)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [deleted.notification_id])
    state = bytearray(raw.state(changed.notification_id))
    state[len(state) // 2] ^= 0x01
    raw.run(
        "UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), changed.notification_id]
    )

    report = verify(service)

    # Version 3 both follows a missing version and was changed itself: two findings.
    assert named(report) == [
        (Break.EVENT_MISSING, deleted.notification_id, case_id.hex, 2),
        (Break.CONTENT_CHANGED, changed.notification_id, case_id.hex, 3),
        (Break.VERSION_GAP, changed.notification_id, case_id.hex, 3),
    ]


def test_ids_the_database_skipped_are_no_finding(service: AkteService, raw: RawDb) -> None:
    # A rolled-back insert leaves a hole in the notification ids (PostgreSQL's sequence);
    # the log chain links across it, so nothing was deleted there.
    log = write_log(service)
    last = max(p.notification_id for p in log)
    raw.run("UPDATE {events} SET {nid} = ? WHERE {nid} = ?", [last + 5, last])
    raw.run("UPDATE {chain} SET notification_id = ? WHERE notification_id = ?", [last + 5, last])

    report = verify(service)

    assert report.ok, report.findings
    assert report.head_notification_id == last + 5


def test_two_events_with_swapped_contents_are_found(service: AkteService, raw: RawDb) -> None:
    log = write_log(service)
    case_id = second_case(log)
    a, b = at(log, case_id, 2), at(log, case_id, 3)
    state_a, state_b = raw.state(a.notification_id), raw.state(b.notification_id)
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [state_b, a.notification_id])
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [state_a, b.notification_id])

    report = verify(service)

    assert [(f.kind, f.notification_id, f.version) for f in report.findings] == [
        (Break.ORDER_SWAPPED, a.notification_id, 2),
        (Break.ORDER_SWAPPED, b.notification_id, 3),
    ]
    assert all(f.stream == case_id.hex for f in report.findings)


def test_two_events_with_swapped_versions_are_found(service: AkteService, raw: RawDb) -> None:
    log = write_log(service)
    case_id = second_case(log)
    a, b = at(log, case_id, 2), at(log, case_id, 3)
    swap = "UPDATE {events} SET originator_version = ? WHERE {nid} = ?"
    raw.run(swap, [-1, a.notification_id])
    raw.run(swap, [2, b.notification_id])
    raw.run(swap, [3, a.notification_id])

    report = verify(service)

    assert [(f.kind, f.notification_id) for f in report.findings[:2]] == [
        (Break.ENTRY_MISMATCH, a.notification_id),
        (Break.ENTRY_MISMATCH, b.notification_id),
    ]
    first = report.first
    assert first is not None
    assert first.version == 3  # the event now at a's place claims version 3
    assert "chained as stream" in first.detail


def test_a_forged_event_without_chain_entry_is_found(service: AkteService, raw: RawDb) -> None:
    log = write_log(service)
    case_id = second_case(log)
    last = max(p.version for p in log if p.case_id == case_id)
    model = at(log, case_id, last)
    [(topic, state)] = raw.run(
        "SELECT topic, state FROM {events} WHERE {nid} = ?", [model.notification_id]
    )
    raw.run(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        [raw.oid(case_id), last + 1, topic, bytes(state)],
    )

    report = verify(service)

    first = report.first
    assert first is not None
    assert first.kind is Break.UNCHAINED_EVENT
    assert (first.stream, first.version) == (case_id.hex, last + 1)
    assert first.notification_id == service.recorder.max_notification_id()


def test_a_forged_event_with_a_made_up_chain_entry_is_found(
    service: AkteService, raw: RawDb
) -> None:
    log = write_log(service)
    case_id = second_case(log)
    last = max(p.version for p in log if p.case_id == case_id)
    [(topic, state)] = raw.run(
        "SELECT topic, state FROM {events} WHERE {nid} = ?",
        [at(log, case_id, last).notification_id],
    )
    raw.run(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        [raw.oid(case_id), last + 1, topic, bytes(state)],
    )
    forged = service.recorder.max_notification_id()
    raw.run(
        "INSERT INTO {chain} VALUES (?, ?, ?, ?, ?)",
        [forged, raw.oid(case_id), last + 1, bytes(range(32)), bytes(range(32, 64))],
    )

    report = verify(service)

    first = report.first
    assert first is not None
    assert first.kind is Break.CONTENT_CHANGED
    assert (first.notification_id, first.stream, first.version) == (forged, case_id.hex, last + 1)


def test_a_rewrite_with_recomputed_chains_is_caught_by_an_anchor(
    service: AkteService, raw: RawDb
) -> None:
    log = write_log(service)
    anchor = Anchor.parse(verify(service).head)
    target = at(log, second_case(log), 2)
    state = bytearray(raw.state(target.notification_id))
    state[-2] ^= 0x01
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), target.notification_id])
    recompute_every_link(raw)

    # Whoever can write the database and knows the algorithm can rewrite history so that
    # it verifies again: that is what the anchor, kept outside the database, is for.
    assert verify(service).ok
    report = verify(service, anchors=[anchor])

    first = report.first
    assert first is not None
    assert first.kind is Break.ANCHOR_MISMATCH
    assert first.notification_id == anchor.notification_id


def test_a_truncated_log_is_caught_by_an_anchor(service: AkteService, raw: RawDb) -> None:
    write_log(service)
    anchor = Anchor.parse(verify(service).head)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [anchor.notification_id])
    raw.run("DELETE FROM {chain} WHERE notification_id = ?", [anchor.notification_id])

    assert verify(service).ok
    report = verify(service, anchors=[anchor])

    first = report.first
    assert first is not None
    assert first.kind is Break.ANCHOR_MISMATCH
    assert "beyond the log's end" in first.detail


def recompute_every_link(raw: RawDb) -> None:
    rows = raw.run(
        "SELECT {nid}, originator_id, originator_version, topic, state FROM {events} ORDER BY {nid}"
    )
    log, streams = GENESIS, dict[str, bytes]()
    for nid, oid, version, topic, state in rows:
        key = oid.hex if isinstance(oid, UUID) else oid
        stream = link_hash(STREAM_TAG, streams.get(key, GENESIS), key, version, topic, bytes(state))
        log = link_hash(LOG_TAG, log, key, version, topic, bytes(state))
        streams[key] = stream
        raw.run(
            "UPDATE {chain} SET stream_hash = ?, log_hash = ? WHERE notification_id = ?",
            [stream, log, nid],
        )


def test_events_written_before_the_chain_are_sealed_when_it_is_introduced(
    settings: Settings,
) -> None:
    env = {k: v for k, v in library_env(settings).items() if k != "APPLICATION_RECORDER_TOPIC"}
    unchained = AkteService(env, catalogue=load_catalogue(), storage=event_storage_for(settings))
    try:
        write_log(unchained, cases=2)
        before = unchained.recorder.max_notification_id()
    finally:
        unchained.close()

    service = build_service(settings)
    try:
        case_id, version = open_case(service)
        service.add_note(case_id, expected_version=version, by="sb-01", text="danach")
        report = verify(service)
    finally:
        service.close()

    assert report.ok, report.findings
    assert report.seal is not None
    assert report.seal.sealed_up_to == before
    assert report.events == report.entries == before + 3


def test_concurrent_writers_keep_one_valid_log_chain(settings: Settings) -> None:
    # Two services: two connection pools, as two API processes would have.
    services = [build_service(settings), build_service(settings)]
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(service: AkteService) -> None:
        try:
            start.wait()
            case_id, version = open_case(service)
            for n in range(12):
                version = service.add_note(
                    case_id, expected_version=version, by="sb-01", text=f"n{n}"
                ).version
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=write, args=(services[n % 2],)) for n in range(6)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        report = verify(services[0])
    finally:
        for service in services:
            service.close()

    assert report.ok, report.findings
    assert report.events == report.entries == 6 * (2 + 12)
