"""Groups of commands written together (``service.grouped``), on SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import threading
from dataclasses import fields, is_dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError
from eventsourcing.utils import get_topic

from adapters.bootstrap import build_service
from adapters.settings import Settings
from adapters.store.hash_chain import ChainSource, verify_chains
from domain.case_file import CaseFile, MasterData
from domain.errors import InvalidValue
from service import AkteService
from service_common import (
    CaseNotFound,
    ConcurrentModification,
    DuplicateReference,
    StoreUnavailable,
)
from service_idempotency import IdempotencyClaim, idempotency_claim
from service_unit_of_work import GroupConflict
from tests.conftest import FakeClock

OFFICE = "abh-musterstadt"


def person(number: int) -> MasterData:
    return MasterData(
        surname="Beispiel",
        given_names=f"Amal {chr(65 + number)}",
        date_of_birth=date(1990, 1, 1 + number),
        nationality="SYR",
        passport_number=f"N1234567{number}",
    )


def office_work(service: AkteService, prefix: str) -> list[str]:
    """The same commands for each run: three files opened, procedures, documents and
    enough notes on one file to cross the snapshot interval. Returns the references."""
    references = [f"{prefix}-2024-{number}" for number in range(3)]
    versions: dict[UUID, int] = {}
    for number, reference in enumerate(references):
        opened = service.open_case(
            office_id=OFFICE, master_data=person(number), by="sb-01", reference=reference
        )
        versions[opened.case_id] = opened.version
    for case_id in list(versions):
        done = service.receive_procedure(
            case_id,
            expected_version=versions[case_id],
            by="sb-01",
            channel="mail",
            topic="extend_residence_permit",
        )
        assigned = service.assign_procedure(
            case_id,
            expected_version=done.version,
            by="sb-01",
            procedure_number=done.result,
            assignee="sb-02",
        )
        done = service.attach_document(
            case_id,
            expected_version=assigned.version,
            by="sb-02",
            kind="passport-copy",
            sha256=case_id.hex * 2,
            size_bytes=1000,
            media_type="application/pdf",
            page_count=2,
            source="scan",
        )
        versions[case_id] = done.version
    busy = next(iter(versions))
    version = versions[busy]
    for note in range(12):
        noted = service.add_note(busy, expected_version=version, by="sb-02", text=f"n{note}")
        version = noted.version
    service.find_case_by_reference(OFFICE, references[1])
    return references


def normalised_log(service: AkteService, after: int, upto: int, references: list[str]) -> list[Any]:
    """The log between two positions, decoded, with ids and file numbers replaced by the
    order in which they first appear (two runs make different ones)."""
    labels: dict[object, str] = {ref: f"ref{n}" for n, ref in enumerate(references)}

    def label(value: object) -> object:
        if isinstance(value, UUID) or (isinstance(value, str) and value in labels):
            return labels.setdefault(value, f"id{len(labels)}")
        if isinstance(value, dict):
            return {key: label(item) for key, item in sorted(value.items())}
        if isinstance(value, list | tuple):
            return [label(item) for item in value]
        if is_dataclass(value) and not isinstance(value, type):
            return {f.name: label(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, str) and len(value) == 36:
            try:
                return label(UUID(value))  # ids kept as text (the claim's case id)
            except ValueError:
                return value
        if isinstance(value, str) and len(value) == 64:
            try:
                return label(UUID(value[:32]))  # the documents' hashes made from ids
            except ValueError:
                return value
        return value

    notifications = service.recorder.select_notifications(start=after + 1, limit=upto - after)
    return [
        (n.topic, n.originator_version, label(vars(service.mapper.to_domain_event(n))))
        for n in notifications
    ]


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def test_grouped_commands_record_the_same_events_as_ungrouped(
    settings: Settings, clock: FakeClock
) -> None:
    settings.snapshot_interval = 5
    service = build_service(settings, clock=clock)
    try:
        before = head(service)
        plain = office_work(service, "EINZELN")
        middle = head(service)
        with service.grouped(max_events=7) as group:
            grouped = office_work(service, "GRUPPE")
        after = head(service)

        assert after - middle == middle - before  # the same number of events
        assert normalised_log(service, middle, after, grouped) == normalised_log(
            service, before, middle, plain
        )
        # Fewer commits: some 7 events per transaction, instead of one per command.
        commands = 3 + 3 * 3 + 12
        assert 1 < group.transactions <= (after - middle) // 7 + 1 < commands
        report = verify_chains(service.recorder)  # type: ignore[arg-type]
        assert report.ok, report.findings
        assert report.events == after
        # Snapshots were taken for the grouped file as for the other.
        assert service.snapshots is not None
        for references in (plain, grouped):
            case_id = service.find_case_by_reference(OFFICE, references[0])
            taken = [s.originator_version for s in service.snapshots.get(case_id)]
            assert taken == [5, 10, 15]
            assert len(service.get_case(case_id).notes) == 12
    finally:
        service.close()


def test_a_command_sees_what_earlier_commands_of_the_group_changed(
    service: AkteService,
) -> None:
    before = head(service)
    with service.grouped() as group:
        opened = service.open_case(
            office_id=OFFICE, master_data=person(0), by="sb-01", reference="SIEHT-1"
        )
        assert opened.position == 0  # not in the log yet
        assert service.find_case_by_reference(OFFICE, "SIEHT-1") == opened.case_id
        received = service.receive_procedure(
            opened.case_id,
            expected_version=opened.version,
            by="sb-01",
            channel="mail",
            topic="extend_residence_permit",
        )
        assert received.version == 2
        assert [p.number for p in service.get_case(opened.case_id).procedures] == [received.result]
        # A command on the version before is refused, as without the group.
        with pytest.raises(ConcurrentModification):
            service.add_note(opened.case_id, expected_version=1, by="sb-01", text="alt")
        # The same file number twice in one group: refused at once.
        with pytest.raises(DuplicateReference):
            service.open_case(
                office_id=OFFICE, master_data=person(1), by="sb-01", reference="SIEHT-1"
            )
        # Nothing committed yet (a read of the stream itself, not through the service).
        assert list(service.events.get(opened.case_id)) == []
        assert group.pending_events == 3
        assert group.transactions == 0
    assert head(service) == before + 3
    assert group.transactions == 1
    assert service.get_case(opened.case_id).version == 2


def _note_then_fail(case: CaseFile, act: Any) -> None:
    case.add_note(text="half done", act=act)
    raise InvalidValue("text", "refused after the change, for the test")


def test_a_failing_command_leaves_the_earlier_ones_and_records_nothing_itself(
    service: AkteService,
) -> None:
    with service.grouped() as group:
        opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
        first = service.add_note(opened.case_id, expected_version=1, by="sb-01", text="eins")
        with pytest.raises(InvalidValue):
            service.change_case(opened.case_id, first.version, "sb-01", None, _note_then_fail)
        # The next command finds the file as the earlier commands left it.
        second = service.add_note(opened.case_id, expected_version=2, by="sb-01", text="zwei")
        assert second.version == 3
        with pytest.raises(InvalidValue):
            service.change_case(opened.case_id, second.version, "sb-01", None, _note_then_fail)
        pending = group.pending_events
    assert pending > 0
    notes = [note.text for note in service.get_case(opened.case_id).notes]
    assert notes == ["eins", "zwei"]
    assert len(service.case_events(opened.case_id)) == 3


def test_an_exception_leaving_the_group_writes_what_was_accepted_before_it(
    service: AkteService,
) -> None:
    def failing_batch() -> UUID:
        with service.grouped():
            opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
            service.add_note(opened.case_id, expected_version=1, by="sb-01", text="eins")
            service.change_case(opened.case_id, 2, "sb-01", None, _note_then_fail)
        return opened.case_id  # pragma: no cover

    with pytest.raises(InvalidValue):
        failing_batch()
    [case_id] = [
        UUID(str(n.originator_id))
        for n in service.recorder.select_notifications(start=1, limit=100)
        if n.topic == get_topic(CaseFile.Opened)
    ]
    assert [note.text for note in service.get_case(case_id).notes] == ["eins"]
    assert service.case_head_version(case_id) == 2


def test_reading_a_held_files_events_writes_the_group_first(service: AkteService) -> None:
    with service.grouped() as group:
        opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
        assert group.holds(opened.case_id)
        assert len(service.case_events(opened.case_id)) == 1
        assert group.transactions == 1
        assert not group.holds(opened.case_id)
        with pytest.raises(CaseNotFound):
            service.case_events(UUID(int=1))


def test_a_conflict_with_another_writer_records_nothing_of_the_group(
    service: AkteService,
) -> None:
    opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
    other = service.open_case(office_id=OFFICE, master_data=person(1), by="sb-01")

    def group_meeting_another_writer() -> None:
        with service.grouped():
            service.add_note(other.case_id, expected_version=1, by="sb-01", text="gruppe")
            service.add_note(opened.case_id, expected_version=1, by="sb-01", text="gruppe")
            # Another thread is not in the group: it writes at once, at the same version.
            writer = threading.Thread(
                target=service.add_note,
                args=(opened.case_id,),
                kwargs={"expected_version": 1, "by": "sb-02", "text": "anderer"},
            )
            writer.start()
            writer.join()

    with pytest.raises(GroupConflict):
        group_meeting_another_writer()
    assert [n.text for n in service.get_case(opened.case_id).notes] == ["anderer"]
    assert not service.get_case(other.case_id).notes
    report = verify_chains(_chain(service))
    assert report.ok, report.findings


def _chain(service: AkteService) -> ChainSource:
    source: ChainSource = service.recorder  # type: ignore[assignment]
    return source


def test_a_group_inside_a_group_joins_it(service: AkteService) -> None:
    with service.grouped() as outer:
        with service.grouped(max_events=1) as inner:
            service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
        assert inner is outer
        assert outer.pending_events == 2
    assert outer.transactions == 1


def test_no_garbage_collection_runs_while_a_groups_transaction_is_open(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full collection over a bulk writer's heap takes seconds; inside the transaction
    it left the connection idle past PostgreSQL's idle-in-transaction timeout."""
    recorder: Any = service.recorder
    real_insert = recorder.insert_events
    collecting: list[bool] = []

    def insert(stored: Any, **kwargs: Any) -> Any:
        collecting.append(gc.isenabled())
        return real_insert(stored, **kwargs)

    real_snapshots = service._take_snapshots
    snapshotting: list[bool] = []

    def take_snapshots(processing: Any) -> None:
        snapshotting.append(gc.isenabled())
        real_snapshots(processing)

    monkeypatch.setattr(recorder, "insert_events", insert)
    monkeypatch.setattr(service, "_take_snapshots", take_snapshots)
    assert gc.isenabled()
    with service.grouped(max_events=2):
        for number in range(3):
            service.open_case(office_id=OFFICE, master_data=person(number), by="sb-01")
    assert len(collecting) > 1  # the group wrote more than once
    assert not any(collecting)  # and no write with collection on
    assert len(snapshotting) == len(collecting)
    assert not any(snapshotting)  # nor the snapshots' transaction after it
    assert gc.isenabled()  # and on again after each


def test_business_time_and_clock_are_kept(service: AkteService, clock: FakeClock) -> None:
    at = datetime(2023, 5, 1, 10, 0, tzinfo=clock.now.tzinfo)
    with service.grouped():
        opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01", at=at)
        clock.advance(minutes=5)
        service.add_note(opened.case_id, expected_version=1, by="sb-01", text="x")
    events = service.case_events(opened.case_id)
    assert events[0].at == at
    assert events[0].timestamp == clock.now - timedelta(minutes=5)
    assert events[1].timestamp == clock.now


def test_a_scan_of_the_log_inside_the_group_finds_what_the_group_did(
    service: AkteService,
) -> None:
    with service.grouped() as group:
        opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
        scanned = service.recorder.select_notifications(
            start=1, limit=10, topics=[get_topic(CaseFile.Opened)]
        )
        assert [UUID(str(n.originator_id)) for n in scanned] == [opened.case_id]
        assert group.transactions == 1


def test_a_refused_save_leaves_no_gap_in_a_held_aggregates_versions(
    service: AkteService,
) -> None:
    """A save refused inside the group (here: with a second creation of an aggregate the
    group already created) takes no event off the other aggregates of that save."""
    with service.grouped():
        opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
        held = service.get_case(opened.case_id)  # the group's copy, version 1
        held.add_note(text="in the refused save", act=service.act("sb-01", None))
        created_twice = CaseFile.open(
            case_id=opened.case_id,
            office_id=OFFICE,
            reference="ZWEIMAL-1",
            master_data=person(1),
            act=service.act("sb-01", None),
        )
        with pytest.raises(IntegrityError):
            service.save(held, created_twice)
        # The next command finds the file as the store will have it: version 1.
        noted = service.add_note(opened.case_id, expected_version=1, by="sb-01", text="zwei")
        assert noted.version == 2

    versions = [event.originator_version for event in service.events.get(opened.case_id)]
    assert versions == [1, 2]
    assert [note.text for note in service.get_case(opened.case_id).notes] == ["zwei"]
    assert verify_chains(_chain(service)).ok


class _BlockFailed(Exception):
    pass


def test_a_failing_final_write_leaves_the_blocks_own_error_in_front(
    service: AkteService,
) -> None:
    opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")

    def block_failing_after_a_conflict() -> None:
        with service.grouped():
            service.add_note(opened.case_id, expected_version=1, by="sb-01", text="gruppe")
            writer = threading.Thread(
                target=service.add_note,
                args=(opened.case_id,),
                kwargs={"expected_version": 1, "by": "sb-02", "text": "anderer"},
            )
            writer.start()
            writer.join()
            raise _BlockFailed

    with pytest.raises(_BlockFailed) as raised:
        block_failing_after_a_conflict()
    notes = getattr(raised.value, "__notes__", [])
    assert any("conflicted with another writer" in note for note in notes), notes
    assert [n.text for n in service.get_case(opened.case_id).notes] == ["anderer"]


def test_a_snapshot_taken_already_does_not_make_a_written_group_a_conflict(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    def snapshot_exists(*args: Any, **kwargs: Any) -> None:
        raise IntegrityError("duplicate snapshot")

    monkeypatch.setattr(service, "_take_snapshots", snapshot_exists)
    with service.grouped():
        opened = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
        service.add_note(opened.case_id, expected_version=1, by="sb-01", text="eins")
    assert [n.text for n in service.get_case(opened.case_id).notes] == ["eins"]


def test_a_keyed_command_in_a_group_keeps_its_key_to_its_own_events(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group's earlier commands are written before a command with an idempotency key,
    without the key: when the keyed command's own write then fails, a retry with the same
    key runs it, instead of answering "recorded" with another command's position."""
    first = service.open_case(office_id=OFFICE, master_data=person(0), by="sb-01")
    second = service.open_case(office_id=OFFICE, master_data=person(1), by="sb-01")
    recorder: Any = service.recorder
    real_insert = recorder.insert_events
    writes: list[bool] = []

    def insert(stored: Any, **kwargs: Any) -> Any:
        writes.append(kwargs.get("idempotency") is not None)
        if len(writes) == 2:  # the keyed command's own write: the store goes away
            msg = "connection refused"
            raise OperationalError(msg)
        return real_insert(stored, **kwargs)

    monkeypatch.setattr(recorder, "insert_events", insert)
    claim = IdempotencyClaim(key="k-1", request_hash="r-1")
    with service.grouped():
        service.add_note(first.case_id, expected_version=1, by="sb-01", text="in the group")
        with idempotency_claim(claim), pytest.raises(StoreUnavailable):
            service.add_note(second.case_id, expected_version=1, by="sb-01", text="keyed")
    monkeypatch.setattr(recorder, "insert_events", real_insert)
    assert writes == [False, True]  # the group without the key, then the keyed command
    with idempotency_claim(IdempotencyClaim(key="k-1", request_hash="r-1")):
        again = service.add_note(second.case_id, expected_version=1, by="sb-01", text="keyed")
    assert again.version == 2
    texts = [
        event.text
        for case_id in (first.case_id, second.case_id)
        for event in service.case_events(case_id)
        if isinstance(event, CaseFile.NoteAdded)
    ]
    assert texts == ["in the group", "keyed"]
