"""Per-person encryption and erasure by key destruction, on SQLite and PostgreSQL.

The proof that erasure erases reads the stored bytes directly (sqlite3 / psycopg), not
through the service: after erasure, neither the event table nor the snapshot table holds
any of the person's names, birth date or passport number, while the same search over a
store written with per-person encryption switched off finds them (so the search would see
plaintext if there were any).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import date
from typing import Any, Final
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from pydantic import SecretStr

from adapters.bootstrap import build_service
from adapters.personal_data.key_store import DataKeyErased, MasterKeys
from adapters.personal_data.mapper import SEALED, data_keys_of
from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.case_file import CaseFile, MasterData
from domain.errors import CaseFileErased, InvalidValue
from domain.history import history_entry
from domain.intake import ContactDetails
from domain.personal import REDACTED_DATE, REDACTED_TEXT, is_redacted
from service import AkteService
from tests.conftest import POSTGRES, FakeClock

SURNAME: Final = "Quexbrandt"
GIVEN_NAMES: Final = "Zyrafina Olwen"
BIRTH: Final = date(1987, 6, 5)
PASSPORT: Final = "Q7Z9X4W2K"
NEW_PASSPORT: Final = "R8Y0V5U3J"
SECRETS: Final = (SURNAME, "Zyrafina", "Olwen", BIRTH.isoformat(), PASSPORT, NEW_PASSPORT)
OFFICE: Final = "abh-musterstadt"
PERSON: Final = MasterData(SURNAME, GIVEN_NAMES, BIRTH, "TUR", PASSPORT, "Weg 1, Musterstadt")


def with_(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


@pytest.fixture
def snapshotting(settings: Settings) -> Settings:
    """Snapshots every 3 events, so that the person's file has several."""
    return with_(settings, snapshot_interval=3)


def open_person(service: AkteService) -> tuple[UUID, int]:
    """A case file whose events and snapshots hold the person's data many times over."""
    opened = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    case_id, version = opened.case_id, opened.version
    for text in (f"{SURNAME} rief an", f"Pass {PASSPORT} vorgelegt", "Termin vereinbart"):
        version = service.add_note(case_id, expected_version=version, by="sb-01", text=text).version
    version = service.correct_master_data(
        case_id,
        expected_version=version,
        by="sb-01",
        corrections={"passport_number": NEW_PASSPORT},
        reason=f"neuer Pass von {GIVEN_NAMES}",
    ).version
    version = service.receive_procedure(
        case_id, expected_version=version, by="sb-01", channel="mail", topic="blue_card"
    ).version
    version = service.issue_residence_document(
        case_id,
        expected_version=version,
        by="sb-01",
        kind="eat",
        legal_basis="aufenthg-18g",
        valid_from=date(2024, 3, 4),
        valid_until=date(2026, 3, 3),
        document_number="Y0000AB12",
        procedure_number=1,
    ).version
    version = service.decide_procedure(
        case_id,
        expected_version=version,
        by="sb-01",
        procedure_number=1,
        outcome="granted",
        reason=f"{SURNAME} erfüllt die Voraussetzungen",
    ).version
    version = service.record_correspondence(
        case_id,
        expected_version=version,
        by="sb-01",
        direction="received",
        counterpart_kind="lawyer",
        counterpart_name="Kanzlei Recht",
        subject=f"Mandantin {SURNAME}, geb. {BIRTH:%d.%m.%Y}",
    ).version
    # A contact form submission by the same person, linked to the file.
    sent = service.intake.submit_contact_form(
        office_id=OFFICE,
        topic="extend_residence_permit",
        message=f"Ich, {GIVEN_NAMES} {SURNAME}, Pass {PASSPORT}, bitte um einen Termin.",
        contact=ContactDetails(SURNAME, GIVEN_NAMES, "zq@example.org", BIRTH),
        files=[],
    )
    service.intake.link_submission_to_case(
        sent.submission_id, expected_version=sent.version, by="sb-01", case_id=case_id
    )
    return case_id, version


# ---------------------------------------------------------------- raw bytes


def stored_bytes(settings: Settings) -> dict[str, bytes]:
    """Every state in the event and snapshot tables, read past the service."""
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as db:
            events = db.execute("SELECT state FROM stored_events").fetchall()
            snapshots = db.execute("SELECT state FROM stored_snapshots").fetchall()
        whole_file = settings.sqlite_path.read_bytes()
        wal = settings.sqlite_path.with_name(settings.sqlite_path.name + "-wal")
        return {
            "events": b"\n".join(bytes(row[0]) for row in events),
            "snapshots": b"\n".join(bytes(row[0]) for row in snapshots),
            "file": whole_file + (wal.read_bytes() if wal.exists() else b""),
        }
    schema = sql.Identifier(settings.postgres_schema)
    with psycopg.connect(**POSTGRES) as db:
        events = db.execute(sql.SQL("SELECT state FROM {}.akte_events").format(schema)).fetchall()
        snapshots = db.execute(
            sql.SQL("SELECT state FROM {}.akte_snapshots").format(schema)
        ).fetchall()
    return {
        "events": b"\n".join(bytes(row[0]) for row in events),
        "snapshots": b"\n".join(bytes(row[0]) for row in snapshots),
    }


def snapshot_count(settings: Settings) -> int:
    if settings.store == "sqlite":
        with sqlite3.connect(settings.sqlite_path) as db:
            return int(db.execute("SELECT count(*) FROM stored_snapshots").fetchone()[0])
    schema = sql.Identifier(settings.postgres_schema)
    with psycopg.connect(**POSTGRES) as db:
        row = db.execute(sql.SQL("SELECT count(*) FROM {}.akte_snapshots").format(schema))
        return int(row.fetchone()[0])  # type: ignore[index]


def found(stored: dict[str, bytes]) -> dict[str, list[str]]:
    """Which of the person's data each table shows, in any encoding JSON might use."""
    hits: dict[str, list[str]] = {}
    for table, data in stored.items():
        lowered = data.lower()
        hits[table] = [s for s in SECRETS if s.lower().encode() in lowered]
    return hits


def test_after_erasure_the_stored_bytes_hold_none_of_the_persons_data(
    snapshotting: Settings, clock: FakeClock
) -> None:
    service = build_service(snapshotting, clock=clock)
    try:
        case_id, version = open_person(service)
        assert snapshot_count(snapshotting) >= 2
        # Encrypted from the start: not even before erasure is any of it readable.
        assert found(stored_bytes(snapshotting)) == {t: [] for t in stored_bytes(snapshotting)}
        clock.advance(days=1)
        erasure = service.data_protection.erase_personal_data(
            case_id,
            expected_version=version,
            by="dsb-01",
            legal_ground="dsgvo-17",
            approved_by="dsb-01",
        ).result
    finally:
        service.close()

    assert len(erasure.keys_destroyed) == 2  # the file's and the linked submission's
    assert erasure.plaintext_events == 0
    assert erasure.snapshots_deleted >= 2
    assert snapshot_count(snapshotting) == 0
    stored = stored_bytes(snapshotting)
    assert stored["events"].count(SEALED.encode()) >= 8
    assert found(stored) == {table: [] for table in stored}


def test_the_same_search_finds_the_data_in_a_store_written_without_encryption(
    snapshotting: Settings, clock: FakeClock
) -> None:
    plain = with_(snapshotting, personal_data_encryption=False)
    service = build_service(plain, clock=clock)
    try:
        open_person(service)
        assert snapshot_count(plain) >= 2
        stored = stored_bytes(plain)
    finally:
        service.close()

    hits = found(stored)
    assert set(hits["events"]) == set(SECRETS)
    assert {SURNAME, BIRTH.isoformat(), NEW_PASSPORT} <= set(hits["snapshots"])
    assert SEALED.encode() not in stored["events"]


# ------------------------------------------------------------ reading erased


@pytest.fixture
def erased(snapshotting: Settings, clock: FakeClock) -> Iterator[tuple[AkteService, UUID]]:
    service = build_service(snapshotting, clock=clock)
    try:
        case_id, version = open_person(service)
        service.data_protection.erase_personal_data(
            case_id,
            expected_version=version,
            by="dsb-01",
            legal_ground="aufenthg-91",
            rule_id="moved-away-10y",
            approved_by="tl-01",
        )
        yield service, case_id
    finally:
        service.close()


def test_an_erased_file_reads_redacted_and_never_fails(
    erased: tuple[AkteService, UUID], snapshotting: Settings, clock: FakeClock
) -> None:
    service, case_id = erased
    # A fresh service: nothing cached from before the erasure.
    fresh = build_service(snapshotting, clock=clock)
    try:
        for reader in (service, fresh):
            case = reader.get_case(case_id)
            assert case.is_erased
            assert case.master_data.surname == REDACTED_TEXT
            assert case.master_data.given_names == REDACTED_TEXT
            assert case.master_data.date_of_birth == REDACTED_DATE
            assert case.master_data.passport_number == REDACTED_TEXT
            assert case.master_data.address == REDACTED_TEXT
            assert [note.text for note in case.notes] == [REDACTED_TEXT] * 3
            assert case.residence_documents[0].document_number == REDACTED_TEXT
            assert case.correspondence[0].subject == REDACTED_TEXT
            # Non-personal facts stay.
            assert case.office_id == OFFICE
            assert case.residence_documents[0].legal_basis == "aufenthg-18g"
            assert case.procedures[0].outcome == "granted"
            # Every version, from the events (the snapshots are gone).
            for version in range(1, case.version + 1):
                assert reader.get_case(case_id, version=version).version == version
            events = reader.case_events(case_id)
            entries = [history_entry(event, with_personal_data=True) for event in events]
            last = entries[-1]
            assert last.kind == "PersonalDataErased"
            assert "§ 91 AufenthG" in last.description
            assert "moved-away-10y" in last.description
            corrected = next(e for e in entries if e.kind == "MasterDataCorrected")
            # Which fields a correction changed is a fact and stays; the values do not.
            assert "Passnummer" in corrected.description
            assert corrected.data["passport_number"] == REDACTED_TEXT
            assert corrected.data["surname"] is None
            rendered = repr(entries) + repr(reader.get_case(case_id).__dict__)
            assert not any(secret in rendered for secret in SECRETS)
            submission = reader.intake.get_submission(
                UUID(events[-1].linked_ids[0])  # type: ignore[attr-defined]
            )
            assert is_redacted(submission.message)
            assert submission.contact.date_of_birth == REDACTED_DATE
    finally:
        fresh.close()


def test_commands_on_an_erased_file_are_refused(erased: tuple[AkteService, UUID]) -> None:
    service, case_id = erased
    version = service.get_case(case_id).version
    with pytest.raises(CaseFileErased, match="erased"):
        service.add_note(case_id, expected_version=version, by="sb-01", text="noch etwas")
    with pytest.raises(CaseFileErased):
        service.receive_inquiry(
            case_id, expected_version=version, by="sb-01", kind="naturalisation"
        )
    with pytest.raises(CaseFileErased):
        service.data_protection.erase_personal_data(
            case_id,
            expected_version=version,
            by="dsb-01",
            legal_ground="dsgvo-17",
            approved_by="dsb-01",
        )
    assert service.get_case(case_id).version == version


def test_an_erasure_names_a_known_legal_ground(service: AkteService) -> None:
    case = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    with pytest.raises(InvalidValue, match="legal_ground"):
        service.data_protection.erase_personal_data(
            case.case_id,
            expected_version=case.version,
            by="dsb-01",
            legal_ground="weil-ich-es-sage",
            approved_by="dsb-01",
        )
    assert not service.get_case(case.case_id).is_erased


def test_an_interrupted_erasure_is_completed_when_asked_again(service: AkteService) -> None:
    case = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    # The erasure event was recorded, then the process died before the key was destroyed.
    service.change_case(
        case.case_id,
        case.version,
        "dsb-01",
        None,
        lambda c, act: c.erase_personal_data(
            legal_ground="dsgvo-17", rule_id=None, approved_by="dsb-01", linked_ids=[], act=act
        ),
    )
    assert service.get_case(case.case_id).master_data.surname == SURNAME
    done = service.data_protection.erase_personal_data(
        case.case_id,
        expected_version=0,
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-01",
    ).result
    assert done.completed_only
    assert done.keys_destroyed == [str(case.case_id)]
    assert service.get_case(case.case_id).master_data.surname == REDACTED_TEXT


def test_completing_an_erasure_destroys_the_keys_it_recorded_as_linked(
    service: AkteService,
) -> None:
    """Records the first attempt found by the master data's person key (a waitlist entry
    joined online) are completed too, although the master data read redacted by then."""
    from tests.support.appointments import join_waitlist, set_up
    from tests.support.appointments import person as waiting

    set_up(service)
    who = waiting(3)
    master = MasterData(who.surname, who.given_names, who.date_of_birth, "TUR", PASSPORT)
    case = service.open_case(office_id=OFFICE, master_data=master, by="sb-01")
    entry = join_waitlist(service, who).appointment_id
    linked = service.data_protection.linked_records(case.case_id).same_person
    assert linked == [str(entry)]
    # Recorded, then only the file's key destroyed before the process died.
    service.change_case(
        case.case_id,
        case.version,
        "dsb-01",
        None,
        lambda c, act: c.erase_personal_data(
            legal_ground="dsgvo-17", rule_id=None, approved_by="dsb-02", linked_ids=linked, act=act
        ),
    )
    keys = data_keys_of(service)
    keys.destroy([str(case.case_id)], service.clock())
    service.uncache_case(case.case_id)
    assert is_redacted(service.get_case(case.case_id).master_data.surname)
    assert service.data_protection.linked_records(case.case_id).waitlist_entries == []

    done = service.data_protection.erase_personal_data(
        case.case_id, expected_version=0, by="dsb-01", legal_ground="dsgvo-17", approved_by="x"
    ).result
    assert done.completed_only
    assert done.keys_destroyed == [str(entry)]
    assert service.repository.get(entry).person.surname == REDACTED_TEXT


def test_a_plain_decoder_still_makes_events_of_the_right_class(service: AkteService) -> None:
    """A reader without the per-person mapper (a projection's fast path) gets the event
    with its non-personal fields; the personal ones are simply not there."""
    from eventsourcing.persistence import Mapper

    case = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    plain = Mapper[UUID](transcoder=service.mapper.transcoder)
    [stored] = service.recorder.select_events(case.case_id)
    event = plain.to_domain_event(stored)
    assert isinstance(event, CaseFile.Opened)
    assert (event.office_id, event.reference) == (OFFICE, case.result)
    assert not hasattr(event, "surname")


def test_switching_encryption_off_keeps_what_was_encrypted_readable(
    settings: Settings, clock: FakeClock
) -> None:
    on = build_service(settings, clock=clock)
    try:
        encrypted = on.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
    finally:
        on.close()
    off = build_service(with_(settings, personal_data_encryption=False), clock=clock)
    try:
        plain = off.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
        assert off.get_case(encrypted).master_data == PERSON
        assert off.get_case(plain).master_data == PERSON
        erasure = off.data_protection.erase_personal_data(
            plain, expected_version=1, by="dsb-01", legal_ground="dsgvo-17", approved_by="dsb-01"
        ).result
        # Written in the clear: the erasure says it could not shred it.
        assert erasure.plaintext_events == 1
        assert erasure.keys_destroyed == []
    finally:
        off.close()


def test_destroyed_keys_are_never_made_again(service: AkteService) -> None:
    case = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    service.data_protection.erase_personal_data(
        case.case_id,
        expected_version=1,
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-01",
    )
    keys = data_keys_of(service)
    keys.forget(str(case.case_id))
    with pytest.raises(DataKeyErased):
        keys.for_writing(str(case.case_id))
    assert keys.erased_at(str(case.case_id)) is not None


# ------------------------------------------------------------------ rotation


def test_rotating_the_master_key_keeps_everything_readable(
    snapshotting: Settings, clock: FakeClock
) -> None:
    old = MasterKeys.parse("k2024:" + "A" * 43 + "=")
    new_key = "k2026:" + "B" * 43 + "="
    first = with_(snapshotting, master_keys=SecretStr("k2024:" + "A" * 43 + "="))
    service = build_service(first, clock=clock)
    try:
        case_id, _ = open_person(service)
    finally:
        service.close()
    both = with_(snapshotting, master_keys=SecretStr(f"{new_key},k2024:{'A' * 43}="))
    service = build_service(both, clock=clock)
    try:
        # The keys in use; those made ahead and not used were deleted when it closed.
        assert data_keys_of(service).status().keys_by_master_key == {"k2024": 2}
        rotation = data_keys_of(service).rotate(batch_size=1)
        assert rotation.rewrapped == 2
        assert rotation.retired == ["k2024"]
        status = data_keys_of(service).status()
        assert status.keys_by_master_key == {"k2026": 2}
        assert set(status.retired) == {"k2024"}
        assert data_keys_of(service).rotate().rewrapped == 0
    finally:
        service.close()
    # The old master key is gone from the configuration: everything still reads.
    only_new = with_(snapshotting, master_keys=SecretStr(new_key))
    service = build_service(only_new, clock=clock)
    try:
        case = service.get_case(case_id)
        assert case.master_data.surname == SURNAME
        assert case.master_data.passport_number == NEW_PASSPORT
        assert old.current_id not in data_keys_of(service).status().keys_by_master_key
    finally:
        service.close()


def test_master_keys_are_parsed_strictly() -> None:
    from adapters.personal_data.key_store import InvalidMasterKeys

    for bad in ("", "nokey", "k1:notbase64!", "k1:" + "A" * 20, f"k1:{'A' * 43}=,k1:{'A' * 43}="):
        with pytest.raises(InvalidMasterKeys) as raised:
            MasterKeys.parse(bad)
        assert "AAAA" not in str(raised.value)
    keys = MasterKeys.parse(f"new:{'B' * 43}=, old:{'A' * 43}=")
    assert keys.current_id == "new"
    assert set(keys.keys) == {"new", "old"}


def test_production_refuses_to_start_without_master_keys(settings: Settings) -> None:
    from adapters.bootstrap import event_storage_for
    from adapters.personal_data.key_store import InvalidMasterKeys

    with pytest.raises(InvalidMasterKeys, match="AKTE_MASTER_KEYS"):
        event_storage_for(with_(settings, deployment="production"))


def test_events_decode_however_the_store_hands_back_the_id(service: AkteService) -> None:
    """A UUID, its text, or its hex digits (SQLite's text ids): the same key opens it."""
    from eventsourcing.persistence import StoredEvent

    case = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    [stored] = service.recorder.select_events(case.case_id)
    for originator_id in (case.case_id, str(case.case_id), case.case_id.hex):
        event = service.mapper.to_domain_event(
            StoredEvent(originator_id, stored.originator_version, stored.topic, stored.state)
        )
        assert event.surname == SURNAME  # type: ignore[attr-defined]


def test_read_models_see_events_without_their_personal_data(service: AkteService) -> None:
    """The projection runner's log keeps personal data sealed: read models hold none, and
    what they cannot see they cannot leak (and rebuilds skip the unsealing)."""
    opened = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01")
    log = ApplicationEventLog(service)
    first = log.read(0, 10)
    events = [log.decode(notification) for notification in first]
    case_events = [event for event in events if event.originator_id == opened.case_id]
    assert case_events, "the case file's Opened event is in the log"
    seen = case_events[0]
    assert seen.office_id == "abh-musterstadt"
    assert seen.reference == opened.result
    assert "surname" not in vars(seen)
    assert PERSON.surname not in repr(vars(seen))
    # The service itself still reads the person's data.
    assert service.get_case(opened.case_id).master_data.surname == PERSON.surname
