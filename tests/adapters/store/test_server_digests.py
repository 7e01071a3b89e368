"""Verify with the server's digests (PostgreSQL): the server recomputes both links of every
event over the same canonical bytes as :func:`link_hash`, and says per window of
notification ids whether all of them check. A log it finds clean is reported without an
event crossing to Python; anything else it finds makes ``verify_chains`` run the checks in
Python, which name the breaks.

Each tampering below is made in raw SQL (as in ``test_hash_chain.py``) and must make the
server's verdict "not clean" at every window size, windows of one id included (every
link then reaches across a window's border), and the report must name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import pytest

from adapters.bootstrap import build_service
from adapters.settings import Settings
from adapters.store.hash_chain import (
    Anchor,
    Break,
    ServerDigestSource,
    VerifyReport,
    WindowCheck,
    verify_chains,
)
from adapters.store.verifier import GENESIS, LOG_TAG, STREAM_TAG, link_hash
from service import AkteService
from tests.adapters.store.test_hash_chain import (
    Placed,
    RawDb,
    at,
    recompute_every_link,
    second_case,
    write_log,
)
from tests.conftest import FakeClock, make_settings

pytestmark = pytest.mark.postgres

WINDOWS = (1, 3, 10_000)


@pytest.fixture
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    return make_settings("postgres", tmp_path, request)


@pytest.fixture
def service(settings: Settings, clock: FakeClock) -> Iterator[AkteService]:
    svc = build_service(settings, clock=clock)
    try:
        yield svc
    finally:
        svc.close()


@pytest.fixture
def raw(settings: Settings) -> Iterator[RawDb]:
    db = RawDb(settings)
    try:
        yield db
    finally:
        db.close()


def source_of(service: AkteService) -> ServerDigestSource:
    recorder = service.recorder
    assert isinstance(recorder, ServerDigestSource)
    return recorder


def windows(service: AkteService, window: int) -> list[WindowCheck]:
    """The server's verdict on every window of ``window`` ids, as verify asks for them."""
    source = source_of(service)
    stop = service.recorder.chain_head()  # type: ignore[attr-defined]
    return [
        source.check_window(after, min(stop, after + window)) for after in range(0, stop, window)
    ]


def verify(service: AkteService, **options: object) -> VerifyReport:
    return verify_chains(service.recorder, **options)  # type: ignore[arg-type]


def test_a_clean_log_is_checked_on_the_server_alone(service: AkteService) -> None:
    write_log(service)
    source = source_of(service)
    assert source.server_digests()

    in_python = verify(service, server_digests=False)
    assert in_python.events == service.recorder.max_notification_id()
    for window in WINDOWS:
        checks = windows(service, window)
        assert all(check.clean for check in checks)
        assert sum(check.events for check in checks) == in_python.events
        assert sum(check.entries for check in checks) == in_python.entries

        report = verify(service, window=window)

        assert report.checked_on_server
        assert report.ok, report.findings
        assert (report.events, report.entries, report.head) == (
            in_python.events,
            in_python.entries,
            in_python.head,
        )
    assert not in_python.checked_on_server
    assert in_python.ok


def test_the_server_builds_the_canonical_bytes_exactly(service: AkteService, raw: RawDb) -> None:
    # Text beyond ASCII: the lengths in the canonical bytes are of its UTF-8 bytes.
    write_log(service, cases=1)
    raw.run(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, 1, ?, ?)",
        [uuid4(), "domain.case_file:Vermerk.Änderung€", "Straße 1 – ½".encode()],
    )
    [(nid, oid, topic, state)] = raw.run(
        "SELECT {nid}, originator_id, topic, state FROM {events} ORDER BY {nid} DESC LIMIT 1"
    )
    [(previous,)] = raw.run("SELECT log_hash FROM {chain} ORDER BY notification_id DESC LIMIT 1")
    key = oid.hex
    raw.run(
        "INSERT INTO {chain} VALUES (?, ?, 1, ?, ?)",
        [
            nid,
            oid,
            link_hash(STREAM_TAG, GENESIS, key, 1, topic, bytes(state)),
            link_hash(LOG_TAG, bytes(previous), key, 1, topic, bytes(state)),
        ],
    )

    for window in WINDOWS:
        assert all(check.clean for check in windows(service, window))
    assert verify(service).checked_on_server
    assert verify(service, server_digests=False).ok


def flip_a_byte(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    target = at(log, case_id, 2)
    state = bytearray(raw.state(target.notification_id))
    state[len(state) // 2] ^= 0x01
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [bytes(state), target.notification_id])


def change_the_topic(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    target = at(log, case_id, 3)
    raw.run("UPDATE {events} SET topic = topic || 'x' WHERE {nid} = ?", [target.notification_id])


def alter_a_stream_hash(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    # The log hash does not cover the stream hash: only the stream link finds this.
    target = at(log, case_id, 3)
    raw.run(
        "UPDATE {chain} SET stream_hash = ? WHERE notification_id = ?",
        [bytes(32), target.notification_id],
    )


def alter_a_log_hash(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    target = at(log, case_id, 2)
    raw.run(
        "UPDATE {chain} SET log_hash = ? WHERE notification_id = ?",
        [bytes(32), target.notification_id],
    )


def delete_an_event(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [at(log, case_id, 2).notification_id])


def delete_an_event_with_its_entry(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    target = at(log, case_id, 2)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])
    raw.run("DELETE FROM {chain} WHERE notification_id = ?", [target.notification_id])


def delete_a_version_and_relink_the_log(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    # The log chain recomputed across the hole (stream hashes left as they were): the
    # missing version is found by the stream link alone.
    delete_an_event_with_its_entry(raw, log, case_id)
    rows = raw.run(
        "SELECT {nid}, originator_id, originator_version, topic, state FROM {events} ORDER BY {nid}"
    )
    previous = GENESIS
    for nid, oid, version, topic, state in rows:
        previous = link_hash(LOG_TAG, previous, oid.hex, version, topic, bytes(state))
        raw.run("UPDATE {chain} SET log_hash = ? WHERE notification_id = ?", [previous, nid])


def delete_a_version_and_relink_both_chains(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    # Every link checks again, the stream's over the version before the hole: only the
    # versions' succession shows what is missing.
    delete_an_event_with_its_entry(raw, log, case_id)
    recompute_every_link(raw)


def delete_the_first_version_and_relink_both_chains(
    raw: RawDb, log: list[Placed], case_id: UUID
) -> None:
    # The stream now starts at version 2, linked over the genesis hash like a first one.
    target = at(log, case_id, 1)
    raw.run("DELETE FROM {events} WHERE {nid} = ?", [target.notification_id])
    raw.run("DELETE FROM {chain} WHERE notification_id = ?", [target.notification_id])
    recompute_every_link(raw)


def swap_two_versions(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    a, b = at(log, case_id, 2), at(log, case_id, 3)
    swap = "UPDATE {events} SET originator_version = ? WHERE {nid} = ?"
    raw.run(swap, [-1, a.notification_id])
    raw.run(swap, [2, b.notification_id])
    raw.run(swap, [3, a.notification_id])


def swap_two_contents(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    a, b = at(log, case_id, 2), at(log, case_id, 3)
    state_a, state_b = raw.state(a.notification_id), raw.state(b.notification_id)
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [state_b, a.notification_id])
    raw.run("UPDATE {events} SET state = ? WHERE {nid} = ?", [state_a, b.notification_id])


def forge_an_unchained_event(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    last = max(p.version for p in log if p.case_id == case_id)
    [(topic, state)] = raw.run(
        "SELECT topic, state FROM {events} WHERE {nid} = ?",
        [at(log, case_id, last).notification_id],
    )
    raw.run(
        "INSERT INTO {events} (originator_id, originator_version, topic, state) "
        "VALUES (?, ?, ?, ?)",
        [case_id, last + 1, topic, bytes(state)],
    )


def forge_an_event_with_a_made_up_entry(raw: RawDb, log: list[Placed], case_id: UUID) -> None:
    forge_an_unchained_event(raw, log, case_id)
    last = max(p.version for p in log if p.case_id == case_id)
    [(forged,)] = raw.run("SELECT max({nid}) FROM {events}")
    raw.run(
        "INSERT INTO {chain} VALUES (?, ?, ?, ?, ?)",
        [forged, case_id, last + 1, bytes(range(32)), bytes(range(32, 64))],
    )


def recompute_only_the_stream_of_a_changed_event(
    raw: RawDb, log: list[Placed], case_id: UUID
) -> None:
    # A changed event whose stream chain was recomputed to match: the log link finds it.
    flip_a_byte(raw, log, case_id)
    previous = GENESIS
    for version in range(1, 1 + max(p.version for p in log if p.case_id == case_id)):
        nid = at(log, case_id, version).notification_id
        [(topic, state)] = raw.run("SELECT topic, state FROM {events} WHERE {nid} = ?", [nid])
        previous = link_hash(STREAM_TAG, previous, case_id.hex, version, topic, bytes(state))
        raw.run("UPDATE {chain} SET stream_hash = ? WHERE notification_id = ?", [previous, nid])


TAMPERINGS: dict[str, tuple[Callable[[RawDb, list[Placed], UUID], None], Break]] = {
    "a changed byte": (flip_a_byte, Break.CONTENT_CHANGED),
    "a changed topic": (change_the_topic, Break.CONTENT_CHANGED),
    "an altered stream hash": (alter_a_stream_hash, Break.LINK_MISSING),
    "an altered log hash": (alter_a_log_hash, Break.LINK_MISSING),
    "a deleted event": (delete_an_event, Break.EVENT_MISSING),
    "a deleted event and entry": (delete_an_event_with_its_entry, Break.EVENT_DELETED_WITH_ENTRY),
    "a deleted version, log relinked": (delete_a_version_and_relink_the_log, Break.VERSION_GAP),
    "a deleted version, both relinked": (
        delete_a_version_and_relink_both_chains,
        Break.VERSION_GAP,
    ),
    "the first version deleted, both relinked": (
        delete_the_first_version_and_relink_both_chains,
        Break.VERSION_GAP,
    ),
    "swapped versions": (swap_two_versions, Break.ENTRY_MISMATCH),
    "swapped contents": (swap_two_contents, Break.ORDER_SWAPPED),
    "a forged unchained event": (forge_an_unchained_event, Break.UNCHAINED_EVENT),
    "a forged event and entry": (forge_an_event_with_a_made_up_entry, Break.CONTENT_CHANGED),
    "a stream recomputed": (recompute_only_the_stream_of_a_changed_event, Break.LINK_MISSING),
}


@pytest.mark.parametrize("tampering", TAMPERINGS)
def test_the_server_finds_every_tampering_and_python_names_it(
    service: AkteService, raw: RawDb, tampering: str
) -> None:
    log = write_log(service)
    tamper, expected = TAMPERINGS[tampering]
    tamper(raw, log, second_case(log))

    for window in WINDOWS:
        assert not all(check.clean for check in windows(service, window)), window

    report = verify(service)
    in_python = verify(service, server_digests=False)

    assert not report.checked_on_server
    assert not report.ok
    assert expected in {finding.kind for finding in report.findings}
    assert report.findings == in_python.findings


def test_an_anchor_not_passed_is_named_by_the_checks_in_python(
    service: AkteService, raw: RawDb
) -> None:
    log = write_log(service)
    anchor = Anchor.parse(verify(service).head)
    flip_a_byte(raw, log, second_case(log))
    recompute_every_link(raw)  # verifies again: only the anchor can tell
    assert all(check.clean for check in windows(service, 3))

    report = verify(service, anchors=[anchor])

    assert not report.checked_on_server
    assert [finding.kind for finding in report.findings] == [Break.ANCHOR_MISMATCH]
    passed = verify(service, anchors=[Anchor.parse(verify(service).head)])
    assert passed.checked_on_server
    assert passed.ok


def test_progress_reports_both_chains_to_the_end(service: AkteService) -> None:
    write_log(service)
    events = service.recorder.max_notification_id()
    seen: list[tuple[str, int, int]] = []

    report = verify(service, window=4, progress=lambda *step: seen.append(step))

    assert report.checked_on_server
    assert report.events == events
    assert {phase for phase, _, _ in seen} == {"log", "streams"}
    assert [done for phase, done, _ in seen if phase == "log"][:2] == [4, 8]
    assert seen[-2:] == [("log", events, events), ("streams", events, events)]
