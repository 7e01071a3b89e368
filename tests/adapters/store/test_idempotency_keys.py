"""Idempotency keys on SQLite and PostgreSQL: written in the transaction of the events,
so a key is recorded exactly when its events are; expired keys make way; answers stored
for the attempt that recorded the key; positions of stored events found.
"""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain.acts import Act
from domain.case_reference import CaseReference
from service import AkteService
from service_ports import NewKey, StoredAnswer, WriteOutcomes
from tests.conftest import FakeClock


def claim(service: AkteService, reference: str) -> CaseReference:
    act = Act(by="sb-01", at=service.clock(), recorded_at=service.clock())
    return CaseReference.claim(
        office_id="abh-musterstadt", reference=reference, case_id=uuid4(), act=act
    )


def new_key(clock: FakeClock, key_hash: str = "k" * 64, attempt: str = "a1") -> NewKey:
    return NewKey(
        key_hash=key_hash,
        fingerprint="f" * 64,
        attempt=attempt,
        recorded_at=clock.now,
        replaces_before=clock.now - timedelta(hours=24),
    )


def outcomes(service: AkteService) -> WriteOutcomes:
    assert isinstance(service.recorder, WriteOutcomes)
    return service.recorder


def test_a_key_is_recorded_with_the_events_it_came_with(
    service: AkteService, clock: FakeClock
) -> None:
    first, second = claim(service, "AZ-1"), claim(service, "AZ-2")
    recordings = service.save(first, second, idempotency=new_key(clock))

    found = outcomes(service).find_key("k" * 64, clock.now - timedelta(hours=24))

    assert found is not None
    assert (found.fingerprint, found.attempt) == ("f" * 64, "a1")
    assert found.position == max(r.notification.id for r in recordings)
    assert (found.originator_id, found.originator_version) == (second.id.hex, 1)
    assert found.recorded_at == clock.now
    assert found.answer is None
    assert outcomes(service).find_key("x" * 64, clock.now - timedelta(hours=24)) is None


def test_a_live_key_fails_the_whole_write_and_nothing_of_it_is_stored(
    service: AkteService, clock: FakeClock
) -> None:
    service.save(claim(service, "AZ-1"), idempotency=new_key(clock))
    other = claim(service, "AZ-2")
    head = service.recorder.max_notification_id()

    with pytest.raises(IntegrityError):
        service.save(other, idempotency=new_key(clock, attempt="a2"))

    assert service.recorder.max_notification_id() == head
    assert list(service.events.get(other.id)) == []
    found = outcomes(service).find_key("k" * 64, clock.now - timedelta(hours=24))
    assert found is not None
    assert found.attempt == "a1"


def test_an_expired_key_makes_way_and_is_not_found(service: AkteService, clock: FakeClock) -> None:
    service.save(claim(service, "AZ-1"), idempotency=new_key(clock))
    clock.advance(hours=25)

    assert outcomes(service).find_key("k" * 64, clock.now - timedelta(hours=24)) is None
    service.save(claim(service, "AZ-2"), idempotency=new_key(clock, attempt="a2"))

    found = outcomes(service).find_key("k" * 64, clock.now - timedelta(hours=24))
    assert found is not None
    assert found.attempt == "a2"


def test_the_answer_is_stored_for_the_attempt_that_recorded_the_key(
    service: AkteService, clock: FakeClock
) -> None:
    service.save(claim(service, "AZ-1"), idempotency=new_key(clock))
    answer = StoredAnswer(201, (("etag", '"1"'), ("location", "http://x/1")), b'{"a":1}')

    outcomes(service).store_answer("k" * 64, "another-attempt", answer)
    found = outcomes(service).find_key("k" * 64, clock.now - timedelta(hours=1))
    assert found is not None
    assert found.answer is None

    outcomes(service).store_answer("k" * 64, "a1", answer)
    found = outcomes(service).find_key("k" * 64, clock.now - timedelta(hours=1))
    assert found is not None
    assert found.answer == answer


def test_forgetting_deletes_the_keys_recorded_before(
    service: AkteService, clock: FakeClock
) -> None:
    service.save(claim(service, "AZ-1"), idempotency=new_key(clock, key_hash="1" * 64))
    clock.advance(hours=2)
    service.save(claim(service, "AZ-2"), idempotency=new_key(clock, key_hash="2" * 64))

    assert outcomes(service).forget_keys(clock.now - timedelta(hours=1)) == 1

    long_ago = clock.now - timedelta(days=7)
    assert outcomes(service).find_key("1" * 64, long_ago) is None
    assert outcomes(service).find_key("2" * 64, long_ago) is not None


def test_the_position_of_a_stored_event(service: AkteService) -> None:
    reference = claim(service, "AZ-1")
    [recording] = service.save(reference)

    assert outcomes(service).position_of(reference.id, 1) == recording.notification.id
    assert outcomes(service).position_of(reference.id, 2) is None
    assert outcomes(service).position_of(uuid4(), 1) is None
