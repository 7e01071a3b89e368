"""The behaviour suite of the application service, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
from datetime import date, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest

from adapters.bootstrap import build_service
from adapters.settings import Settings
from domain.case_file import CaseFile, MasterData
from domain.errors import CaseFileNotActive, InvalidValue, ProcedureStateConflict
from service import AkteService
from service_common import (
    CaseNotFound,
    ConcurrentModification,
    DuplicateReference,
    StoreUnavailable,
)
from tests.conftest import FakeClock


def person() -> MasterData:
    return MasterData(
        surname="Beispiel",
        given_names="Amal",
        date_of_birth=date(1991, 2, 3),
        nationality="SYR",
        passport_number="N12345678",
    )


def open_case(service: AkteService, reference: str | None = None) -> tuple[UUID, int]:
    recorded = service.open_case(
        office_id="abh-musterstadt", master_data=person(), by="sb-01", reference=reference
    )
    return recorded.case_id, recorded.version


def event_count(service: AkteService, case_id: UUID) -> int:
    return len(service.case_events(case_id))


def replay_without_snapshots(service: AkteService, case_id: UUID) -> CaseFile:
    case: CaseFile | None = None
    for event in service.events.get(case_id):
        case = cast(CaseFile.Event, event).mutate(case)
    assert isinstance(case, CaseFile)
    return case


def test_open_and_get_a_case(service: AkteService, clock: FakeClock) -> None:
    case_id, version = open_case(service)
    case = service.get_case(case_id)
    assert version == 1
    assert case.master_data == person()
    assert case.reference.startswith(f"{clock.now.year}-")
    [opened] = service.case_events(case_id)
    assert isinstance(opened, CaseFile.Opened)
    assert (opened.by, opened.at, opened.timestamp) == ("sb-01", clock.now, clock.now)
    assert service.find_case_by_reference("abh-musterstadt", case.reference) == case_id


def test_references_are_unique_per_office(service: AkteService) -> None:
    open_case(service, reference="ABH-2024-1")
    before = service.recorder.max_notification_id()
    with pytest.raises(DuplicateReference):
        open_case(service, reference="ABH-2024-1")
    assert service.recorder.max_notification_id() == before
    other = service.open_case(
        office_id="abh-anderswo", master_data=person(), by="sb-01", reference="ABH-2024-1"
    )
    assert other.version == 1


def test_unknown_case(service: AkteService) -> None:
    with pytest.raises(CaseNotFound):
        service.get_case(uuid4())
    with pytest.raises(CaseNotFound):
        service.case_events(uuid4())
    with pytest.raises(CaseNotFound):
        service.add_note(uuid4(), expected_version=1, by="sb-01", text="x")


def test_business_time_is_recorded_apart_from_recorded_time(
    service: AkteService, clock: FakeClock
) -> None:
    case_id, version = open_case(service)
    clock.advance(days=2)
    yesterday = clock.now - timedelta(days=1)  # back-dated, but after the file's opening
    service.add_note(case_id, expected_version=version, by="sb-02", text="x", at=yesterday)
    note = service.case_events(case_id)[-1]
    assert (note.by, note.at, note.timestamp) == ("sb-02", yesterday, clock.now)


def test_stale_version_is_rejected_and_nothing_is_written(service: AkteService) -> None:
    case_id, version = open_case(service)
    service.add_note(case_id, expected_version=version, by="sb-01", text="first")
    with pytest.raises(ConcurrentModification) as raised:
        service.add_note(case_id, expected_version=version, by="sb-01", text="second")
    assert (raised.value.expected, raised.value.actual) == (1, 2)
    assert event_count(service, case_id) == 2


def test_a_rejected_command_writes_nothing(service: AkteService) -> None:
    case_id, version = open_case(service)
    number = service.receive_procedure(
        case_id,
        expected_version=version,
        by="sb-01",
        channel="contact_form",
        topic="extend_residence_permit",
    )
    version = number.version
    version = service.decide_procedure(
        case_id, expected_version=version, by="sb-01", procedure_number=1, outcome="withdrawn"
    ).version
    with pytest.raises(ProcedureStateConflict):
        service.decide_procedure(
            case_id, expected_version=version, by="sb-01", procedure_number=1, outcome="granted"
        )
    assert service.get_case(case_id).version == version == event_count(service, case_id)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (
            lambda s, c, v: s.receive_procedure(
                c, expected_version=v, by="u", channel="mail", topic="no_such_topic"
            ),
            "topic",
        ),
        (
            lambda s, c, v: s.receive_procedure(
                c,
                expected_version=v,
                by="u",
                channel="mail",
                topic="general_question",
                legal_basis="aufenthg-999",
            ),
            "legal_basis",
        ),
        (
            lambda s, c, v: s.issue_residence_document(
                c,
                expected_version=v,
                by="u",
                kind="duldung",
                legal_basis="aufenthg-16b",
                valid_from=date(2024, 1, 1),
                valid_until=date(2024, 6, 1),
                document_number="D1234567",
            ),
            "legal_basis",
        ),
        (
            lambda s, c, v: s.issue_residence_document(
                c,
                expected_version=v,
                by="u",
                kind="eat",
                legal_basis="aufenthg-16b",
                valid_from=date(2024, 6, 1),
                valid_until=date(2024, 1, 1),
                document_number="Y1234567",
            ),
            "valid_until",
        ),
    ],
)
def test_catalogue_and_validity_checks(service: AkteService, call: Any, field: str) -> None:
    case_id, version = open_case(service)
    with pytest.raises(InvalidValue) as raised:
        call(service, case_id, version)
    assert raised.value.field == field
    assert event_count(service, case_id) == 1


def test_whole_case_history_on_the_store(service: AkteService, clock: FakeClock) -> None:
    """One of every action, then the reloaded case equals a replay of its events."""
    case_id, v = open_case(service)
    s = service
    v = s.correct_master_data(
        case_id,
        expected_version=v,
        by="sb-01",
        corrections={"address": "Neue Straße 2"},
        reason="Umzug",
    ).version
    doc = s.attach_document(
        case_id,
        expected_version=v,
        by="sb-01",
        kind="passport_copy",
        sha256="c" * 64,
        size_bytes=2048,
        media_type="application/pdf",
        page_count=3,
        source="contact_form",
    )
    v = doc.version
    procedure = s.receive_procedure(
        case_id,
        expected_version=v,
        by="sb-01",
        channel="online_application",
        topic="student_permit",
        legal_basis="aufenthg-16b",
    )
    v = procedure.version
    p = procedure.result
    v = s.assign_procedure(
        case_id, expected_version=v, by="tl-01", procedure_number=p, assignee="sb-02"
    ).version
    v = s.request_documents(
        case_id,
        expected_version=v,
        by="sb-02",
        procedure_number=p,
        what=["Immatrikulationsbescheinigung"],
        due_on=clock.now.date() + timedelta(days=14),
    ).version
    fiction = s.issue_fiction_certificate(
        case_id,
        expected_version=v,
        by="sb-02",
        kind="81_4",
        valid_from=clock.now.date(),
        valid_until=clock.now.date() + timedelta(days=90),
        carrier_sheet_number="FB0000001",
        procedure_number=p,
        order_basis="timely_application",
        previous_title_valid_until=clock.now.date() + timedelta(days=10),
    )
    v = s.extend_fiction_certificate(
        case_id,
        expected_version=fiction.version,
        by="sb-02",
        certificate_number=fiction.result,
        valid_until=clock.now.date() + timedelta(days=180),
    ).version
    v = s.decide_procedure(
        case_id,
        expected_version=v,
        by="sb-02",
        procedure_number=p,
        outcome="granted",
        legal_basis="aufenthg-16b",
    ).version  # and, with it, FictionCertificateEnded: the decision ends the fiction
    eat = s.issue_residence_document(
        case_id,
        expected_version=v,
        by="sb-02",
        kind="eat",
        legal_basis="aufenthg-16b",
        valid_from=clock.now.date(),
        valid_until=clock.now.date() + timedelta(days=730),
        document_number="Y00ABC123",
        procedure_number=p,
    )
    r = eat.result
    v = s.order_eat_card(
        case_id, expected_version=eat.version, by="sb-02", residence_document_number=r
    ).version
    v = s.record_eat_card_arrived(
        case_id, expected_version=v, by="sb-02", residence_document_number=r
    ).version
    v = s.hand_over_eat_card(
        case_id, expected_version=v, by="sb-03", residence_document_number=r
    ).version
    v = s.extend_residence_document(
        case_id,
        expected_version=v,
        by="sb-02",
        residence_document_number=r,
        valid_until=clock.now.date() + timedelta(days=1000),
    ).version
    v = s.transfer_eat_to_new_passport(
        case_id,
        expected_version=v,
        by="sb-02",
        residence_document_number=r,
        new_card_number="Y00DEF456",
    ).version
    v = s.close_procedure(case_id, expected_version=v, by="sb-02", procedure_number=p).version
    v = s.issue_integration_course_entitlement(case_id, expected_version=v, by="sb-02").version
    v = s.impose_integration_course_obligation(case_id, expected_version=v, by="sb-02").version
    entry = s.request_entry_consent(case_id, expected_version=v, by="sb-02")
    v = s.give_entry_consent(
        case_id,
        expected_version=entry.version,
        by="sb-02",
        entry_procedure_number=entry.result,
        valid_until=clock.now.date() + timedelta(days=180),
    ).version
    second_entry = s.request_entry_consent(case_id, expected_version=v, by="sb-02")
    v = s.refuse_entry_consent(
        case_id,
        expected_version=second_entry.version,
        by="sb-02",
        entry_procedure_number=second_entry.result,
        reason="Sicherung des Lebensunterhalts nicht nachgewiesen",
    ).version
    inquiry = s.receive_inquiry(case_id, expected_version=v, by="sb-02", kind="civil_registry")
    v = s.answer_inquiry(
        case_id, expected_version=inquiry.version, by="sb-02", inquiry_number=inquiry.result
    ).version
    v = s.record_correspondence(
        case_id,
        expected_version=v,
        by="sb-02",
        direction="received",
        counterpart_kind="lawyer",
        counterpart_name="Kanzlei Beispiel",
        subject="Akteneinsicht",
        attachment_numbers=[doc.result],
    ).version
    v = s.add_note(case_id, expected_version=v, by="sb-02", text="Rückruf erledigt").version
    duldung = s.issue_residence_document(
        case_id,
        expected_version=v,
        by="sb-02",
        kind="duldung",
        legal_basis="aufenthg-60a",
        valid_from=clock.now.date(),
        valid_until=clock.now.date() + timedelta(days=90),
        document_number="D7654321",
    )
    v = s.end_residence_document(
        case_id,
        expected_version=duldung.version,
        by="sb-02",
        residence_document_number=duldung.result,
        end_reason="replaced",
    ).version
    v = s.transfer_to_office(
        case_id, expected_version=v, by="sb-02", to_office_id="abh-anderswo", reason="Umzug"
    ).version
    # A transferred file still takes notes, but no longer a closure.
    v = s.add_note(case_id, expected_version=v, by="sb-02", text="Akte versandt").version
    with pytest.raises(CaseFileNotActive):
        s.close_case(case_id, expected_version=v, by="sb-02", closure_reason="left")

    case = s.get_case(case_id)
    assert case.version == v == event_count(s, case_id)
    assert case == replay_without_snapshots(s, case_id)
    assert case.status == "transferred"
    assert case.residence_documents[0].document_number == "Y00DEF456"
    assert case.fiction_certificates[0].ended_reason == "decision"
    assert case.master_data.address == "Neue Straße 2"
    assert s.get_case(case_id, version=3).documents[0].sha256 == "c" * 64
    assert len(s.get_case(case_id, version=2).documents) == 0


def test_close_case(service: AkteService) -> None:
    case_id, v = open_case(service)
    v = service.close_case(
        case_id, expected_version=v, by="sb-01", closure_reason="naturalised"
    ).version
    assert service.get_case(case_id).status == "closed"
    with pytest.raises(CaseFileNotActive):
        service.receive_procedure(
            case_id, expected_version=v, by="sb-01", channel="mail", topic="general_question"
        )


def test_snapshots_keep_long_files_equal_to_replay(settings: Settings, clock: FakeClock) -> None:
    settings.snapshot_interval = 10
    service = build_service(settings, clock=clock)
    try:
        case_id, v = open_case(service)
        for i in range(34):
            v = service.add_note(case_id, expected_version=v, by="sb-01", text=f"n{i}").version
        assert service.snapshots is not None
        snapshots = list(service.snapshots.get(case_id))
        assert [s.originator_version for s in snapshots] == [10, 20, 30]
        assert service.get_case(case_id) == replay_without_snapshots(service, case_id)
        assert len(service.get_case(case_id).notes) == 34
    finally:
        service.close()


def test_a_new_process_sees_the_same_case(settings: Settings, clock: FakeClock) -> None:
    first = build_service(settings, clock=clock)
    case_id, v = open_case(first)
    first.add_note(case_id, expected_version=v, by="sb-01", text="x")
    state = first.get_case(case_id)
    first.close()
    second = build_service(settings, clock=clock)
    try:
        assert second.get_case(case_id) == state
    finally:
        second.close()


def test_concurrent_writers_one_wins_the_rest_are_told(
    settings: Settings, clock: FakeClock
) -> None:
    """Writers in threads, each with its own service, race on the same version."""
    setup = build_service(settings, clock=clock)
    case_id, version = open_case(setup)
    writers = [build_service(settings, clock=clock) for _ in range(6)]
    barrier = threading.Barrier(len(writers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def write(writer: AkteService, index: int) -> None:
        barrier.wait()
        try:
            writer.add_note(case_id, expected_version=version, by="sb-01", text=f"w{index}")
            outcome = "ok"
        except ConcurrentModification as conflict:
            outcome = f"conflict from {conflict.expected}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=write, args=(w, i)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == [f"conflict from {version}"] * 5 + ["ok"]
        assert event_count(setup, case_id) == 2
    finally:
        for writer in writers:
            writer.close()
        setup.close()


def test_store_failures_are_translated(tmp_path: Any, clock: FakeClock) -> None:
    settings = Settings(store="sqlite", data_dir=tmp_path)
    service = build_service(settings, clock=clock)
    case_id, _ = open_case(service)
    with sqlite3.connect(settings.sqlite_path) as connection:
        connection.execute("DROP TABLE stored_events")
    try:
        with pytest.raises(StoreUnavailable) as raised:
            service.get_case(case_id)
        assert "Beispiel" not in str(raised.value)
    finally:
        service.close()


def test_cached_case_files_stay_correct_across_processes(
    settings: Settings, clock: FakeClock
) -> None:
    """Two services on one store, as two API processes: each caches what it wrote."""
    first = build_service(settings, clock=clock)
    second = build_service(settings, clock=clock)
    try:
        case_id, v1 = open_case(first)
        v2 = first.add_note(case_id, expected_version=v1, by="sb-01", text="a").version
        v3 = second.add_note(case_id, expected_version=v2, by="sb-02", text="b").version
        # first's cached file is at v2; a command expecting v3 makes it reload.
        v4 = first.add_note(case_id, expected_version=v3, by="sb-01", text="c").version
        # second's cached file is at v3 and looks current; its save hits the constraint.
        with pytest.raises(ConcurrentModification) as raised:
            second.add_note(case_id, expected_version=v3, by="sb-02", text="lost?")
        assert (raised.value.expected, raised.value.actual) == (v3, v4)
        # After the conflict, second works from the store again.
        v5 = second.add_note(case_id, expected_version=v4, by="sb-02", text="d").version
        assert [note.text for note in first.get_case(case_id).notes] == ["a", "b", "c", "d"]
        assert v5 == event_count(first, case_id) == 5
    finally:
        first.close()
        second.close()


def test_a_rejected_command_does_not_poison_the_cached_case(service: AkteService) -> None:
    case_id, v = open_case(service)
    with pytest.raises(InvalidValue):
        service.add_note(case_id, expected_version=v, by="sb-01", text=" ")
    v = service.add_note(case_id, expected_version=v, by="sb-01", text="ok").version
    assert v == 2
    assert [note.number for note in service.get_case(case_id).notes] == [1]


def test_paging_past_any_real_version_is_empty_not_an_error(service: AkteService) -> None:
    case_id, _ = open_case(service)
    assert service.case_events(case_id, after_version=2**80) == []


def test_commands_report_the_log_position_of_their_last_event(service: AkteService) -> None:
    opened = service.open_case(office_id="abh-musterstadt", master_data=person(), by="sb-01")
    noted = service.add_note(opened.case_id, expected_version=1, by="sb-01", text="x")
    assert noted.position == service.recorder.max_notification_id()
    assert opened.position < noted.position
