"""Data keys made ahead in batches, so that opening a case file costs no commit of its own
to the key store; on SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, Final
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import OperationalError

from adapters.bootstrap import build_service
from adapters.personal_data.key_store import (
    DEFAULT_RESERVE_SIZE,
    DEVELOPMENT_MASTER_KEY_ID,
    DataKeys,
    KeyStore,
    PostgresKeyStore,
    SqliteKeyStore,
    StoredKey,
)
from adapters.personal_data.mapper import data_keys_of
from adapters.settings import Settings
from domain.case_file import MasterData
from service import AkteService
from service_common import StoreUnavailable
from tests.conftest import FakeClock

OFFICE: Final = "abh-musterstadt"
PERSON: Final = MasterData(
    "Vorrat", "Karla", date(1990, 1, 2), "POL", "P1234567", "Weg 2, Musterstadt"
)


class CountingKeyStore:
    """The service's key store, counting the writes that make keys."""

    def __init__(self, inner: KeyStore) -> None:
        self.inner = inner
        self.single_inserts = 0
        self.batches: list[int] = []

    def insert(self, key: StoredKey, created_at: object) -> bool:
        self.single_inserts += 1
        return self.inner.insert(key, created_at)  # type: ignore[arg-type]

    def insert_many(self, keys: list[StoredKey], created_at: object) -> set[str]:
        self.batches.append(len(keys))
        return self.inner.insert_many(keys, created_at)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def keys_sharing_the_store(keys: DataKeys) -> DataKeys:
    """Another process's view of the same key store: nothing cached."""
    return DataKeys(keys.store, keys.master_keys)


def test_opening_case_files_commits_their_keys_in_batches(
    settings: Settings, clock: FakeClock
) -> None:
    service = build_service(settings, clock=clock)
    try:
        counting = CountingKeyStore(data_keys_of(service).store)
        data_keys_of(service).store = counting  # type: ignore[assignment]
        opened = [
            service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
            for _ in range(2 * DEFAULT_RESERVE_SIZE + 1)
        ]
        assert counting.batches == [DEFAULT_RESERVE_SIZE] * 3
        assert counting.single_inserts == 0
        # Every key is in the store, not only in this process's cache.
        elsewhere = keys_sharing_the_store(data_keys_of(service))
        for case_id in opened:
            elsewhere.for_reading(str(case_id))
    finally:
        service.close()
    reopened = build_service(settings, clock=clock)
    try:
        assert sum(data_keys_of(reopened).status().keys_by_master_key.values()) == len(opened)
        assert all(reopened.get_case(case_id).master_data == PERSON for case_id in opened)
    finally:
        reopened.close()


def test_a_key_made_ahead_is_the_one_its_events_are_sealed_with(
    settings: Settings, clock: FakeClock
) -> None:
    service = build_service(settings, clock=clock)
    try:
        keys = data_keys_of(service)
        owner = keys.new_owner_id()
        # Even if the cache forgot it before the first event, writing finds the stored key.
        keys.forget(str(owner))
        nonce = os.urandom(12)
        sealed = keys.for_writing(str(owner), new=True).encrypt(nonce, b"Vorrat", None)
        assert keys_sharing_the_store(keys).for_reading(str(owner)).decrypt(
            nonce, sealed, None
        ) == (b"Vorrat")
    finally:
        service.close()


def test_concurrent_writers_get_distinct_ids_with_stored_keys(
    settings: Settings, clock: FakeClock
) -> None:
    service = build_service(settings, clock=clock)
    handed_out: list[UUID] = []
    lock = threading.Lock()

    def draw(count: int) -> None:
        for _ in range(count):
            owner = data_keys_of(service).new_owner_id()
            with lock:
                handed_out.append(owner)

    try:
        threads = [threading.Thread(target=draw, args=(25,)) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(set(handed_out)) == len(handed_out) == 150
        elsewhere = keys_sharing_the_store(data_keys_of(service))
        for owner in handed_out:
            elsewhere.for_reading(str(owner))
    finally:
        service.close()


def test_without_encryption_no_keys_are_made_ahead(settings: Settings, clock: FakeClock) -> None:
    plain = build_service(
        settings.model_copy(update={"personal_data_encryption": False}), clock=clock
    )
    try:
        plain.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
        assert data_keys_of(plain).status().keys_by_master_key == {}
    finally:
        plain.close()


def test_a_case_file_opened_with_a_key_made_ahead_is_erased_by_destroying_it(
    service: AkteService,
) -> None:
    case = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    erasure = service.data_protection.erase_personal_data(
        case.case_id, expected_version=1, by="dsb-01", legal_ground="dsgvo-17", approved_by="dsb-01"
    ).result
    assert str(case.case_id) in erasure.keys_destroyed
    assert keys_sharing_the_store(data_keys_of(service)).erased_at(str(case.case_id)) is not None


def stored_keys(service: AkteService) -> int:
    return sum(data_keys_of(service).status().keys_by_master_key.values())


def test_refused_requests_leave_no_keys_behind(service: AkteService) -> None:
    from service_appointment_mails import ChallengeRefused
    from tests.support.appointments import (
        OFFICE as APPOINTMENT_OFFICE,
    )
    from tests.support.appointments import (
        POINT,
        STUDENT,
        RecordingMailer,
        local,
        person,
        set_up,
    )

    set_up(service, RecordingMailer())
    opened = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    for _ in range(DEFAULT_RESERVE_SIZE + 8):  # more than one batch's worth
        with pytest.raises(ChallengeRefused):
            service.appointments.book_appointment(
                office_id=APPOINTMENT_OFFICE,
                service_point_code=POINT,
                appointment_type="extend-title",
                starts_at=local(date(2024, 3, 11), 9),
                situation=STUDENT,
                person=person(1),
                proof=("bogus", "1"),
                by="public",
            )
    # Refused before saving: their ids went back into the reserve, no new batch was made.
    assert stored_keys(service) == DEFAULT_RESERVE_SIZE
    data_keys_of(service).release_reserve()
    assert stored_keys(service) == 1
    assert keys_sharing_the_store(data_keys_of(service)).for_reading(str(opened.case_id))


def _collection_inside_transactions(store: KeyStore, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether garbage collection was on as each write transaction of the store began."""
    seen: list[bool] = []
    if isinstance(store, PostgresKeyStore):
        datastore = store._datastore

        class WatchedDatastore:
            schema = datastore.schema

            def get_connection(self) -> Any:
                return datastore.get_connection()

            @contextmanager
            def transaction(self, *, commit: bool = False) -> Iterator[Any]:
                seen.append(gc.isenabled())
                with datastore.transaction(commit=commit) as cursor:
                    yield cursor

        monkeypatch.setattr(store, "_datastore", WatchedDatastore())
    else:
        assert isinstance(store, SqliteKeyStore)
        connection = store._connection

        class WatchedConnection:
            def cursor(self) -> Any:
                seen.append(gc.isenabled())
                return connection.cursor()

            def __getattr__(self, name: str) -> Any:
                return getattr(connection, name)

        monkeypatch.setattr(store, "_connection", WatchedConnection())
    return seen


def test_the_key_stores_write_transactions_pause_garbage_collection(
    service: AkteService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Short transactions, but a full collection of a bulk writer's heap inside one (seconds)
    left it idle past PostgreSQL's idle-in-transaction timeout."""
    keys = data_keys_of(service)
    seen = _collection_inside_transactions(keys.store, monkeypatch)
    keys.release_reserve()  # the next new case file makes a batch: insert_many
    assert gc.isenabled()
    service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    single = StoredKey(str(uuid4()), DEVELOPMENT_MASTER_KEY_ID, b"wrapped" * 8)
    assert keys.store.insert(single, clock.now)
    keys.store.discard([single.owner_id])

    assert len(seen) >= 3  # the batch, the single key, the discard
    assert not any(seen)
    assert gc.isenabled()


def test_a_key_store_that_fails_while_making_keys_is_reported_as_unavailable(
    service: AkteService,
) -> None:
    keys = data_keys_of(service)
    keys.release_reserve()  # the next new case file makes a batch
    working = keys.store

    class Unreachable(CountingKeyStore):
        def insert_many(self, keys: list[StoredKey], created_at: object) -> set[str]:
            raise OperationalError("connection refused")

    keys.store = Unreachable(working)  # type: ignore[assignment]
    try:
        with pytest.raises(StoreUnavailable):
            service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01")
    finally:
        keys.store = working
