"""A write whose commit went through but whose acknowledgement was lost is answered as
the success it was, found by its idempotency key or by reading its events back; when the
store cannot tell, the answer is "outcome unknown", never a conflict. On PostgreSQL the
library retries a failed insert by itself: its retry finding the write's own events is
not a conflict either.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from domain.case_file import CaseFile
from service import AkteService
from service_common import ConcurrentModification, StoreUnavailable
from service_idempotency import (
    AlreadyRecorded,
    IdempotencyClaim,
    IdempotencyKeyReused,
    OutcomeUnknown,
    idempotency_claim,
)
from tests.service.test_case_files import event_count, open_case
from tests.support.lost_acknowledgements import LostAcknowledgement


def add_note(service: AkteService, case_id: UUID, version: int, text: str = "called") -> Any:
    return service.add_note(case_id, expected_version=version, by="sb-01", text=text)


def note_texts(service: AkteService, case_id: UUID) -> list[str]:
    return [e.text for e in service.case_events(case_id) if isinstance(e, CaseFile.NoteAdded)]


def test_a_lost_acknowledgement_without_key_is_found_by_reading_the_events(
    service: AkteService,
) -> None:
    case_id, version = open_case(service)
    fault = LostAcknowledgement(service)
    fault.arm()

    recorded = add_note(service, case_id, version)

    assert fault.committed == 1
    assert recorded.version == version + 1
    assert recorded.position == service.recorder.max_notification_id()
    assert note_texts(service, case_id) == ["called"]
    # The cached file moved on with it: the next write builds on it.
    assert add_note(service, case_id, recorded.version, "again").version == version + 2


def test_a_lost_acknowledgement_with_key_is_found_by_the_key(service: AkteService) -> None:
    case_id, version = open_case(service)
    fault = LostAcknowledgement(service)
    fault.arm()
    claim = IdempotencyClaim(key="k-1", request_hash="r-1")

    with idempotency_claim(claim):
        recorded = add_note(service, case_id, version)

    assert claim.recorded
    assert recorded.version == version + 1
    assert recorded.position == service.recorder.max_notification_id()
    assert note_texts(service, case_id) == ["called"]


def test_when_the_store_cannot_tell_the_outcome_is_unknown_not_a_conflict(
    service: AkteService,
) -> None:
    case_id, version = open_case(service)
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)

    with pytest.raises(OutcomeUnknown):
        add_note(service, case_id, version)

    fault.heal()
    assert note_texts(service, case_id) == ["called"]


def test_a_failure_that_recorded_nothing_says_so(service: AkteService) -> None:
    case_id, version = open_case(service)
    recorder: Any = service.recorder
    real = recorder.insert_events

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        from eventsourcing.persistence import OperationalError

        raise OperationalError("connection refused")

    recorder.insert_events = refuse
    try:
        with pytest.raises(StoreUnavailable) as raised:
            add_note(service, case_id, version)
    finally:
        recorder.insert_events = real

    assert not isinstance(raised.value, OutcomeUnknown)
    assert note_texts(service, case_id) == []


def test_a_real_conflict_stays_a_conflict(service: AkteService) -> None:
    case_id, version = open_case(service)
    add_note(service, case_id, version, "first")
    service.uncache_case(case_id)
    other = service.get_case(case_id, version=version)
    other.add_note(text="second", act=service.act("sb-02", None))

    with pytest.raises(IntegrityError):
        service.save(other)

    assert note_texts(service, case_id) == ["first"]


def test_the_same_key_replays_and_another_request_with_it_is_refused(
    service: AkteService,
) -> None:
    case_id, version = open_case(service)
    with idempotency_claim(IdempotencyClaim(key="k-1", request_hash="r-1")):
        add_note(service, case_id, version)

    with (
        pytest.raises(AlreadyRecorded) as replayed,
        idempotency_claim(IdempotencyClaim(key="k-1", request_hash="r-1")),
    ):
        add_note(service, case_id, version)
    with (
        pytest.raises(IdempotencyKeyReused),
        idempotency_claim(IdempotencyClaim(key="k-1", request_hash="r-2")),
    ):
        add_note(service, case_id, version + 1, "other")

    assert replayed.value.record.originator_version == version + 1
    assert note_texts(service, case_id) == ["called"]
    # Keys belong to the acting user: another's k-1 is a key of its own.
    with idempotency_claim(IdempotencyClaim(key="k-1", request_hash="r-2")):
        service.add_note(case_id, expected_version=version + 1, by="sb-02", text="mine")
    assert event_count(service, case_id) == version + 2


@contextmanager
def commits_lose_their_acknowledgement(service: AkteService) -> Iterator[list[int]]:
    """PostgreSQL: the connection breaks right after an insert's commit, inside the
    library's datastore, so that the library's own retry runs (as in production)."""
    datastore: Any = service.recorder.datastore  # type: ignore[attr-defined]
    real = datastore.get_connection
    broken: list[int] = []
    inserting: list[bool] = []
    recorder: Any = service.recorder
    real_fetch = recorder._fetch_ids_after_insert_events

    def fetch(*args: Any, **kwargs: Any) -> Any:
        inserting.append(True)
        return real_fetch(*args, **kwargs)

    @contextmanager
    def connection() -> Iterator[Any]:
        with real() as conn:
            yield conn
            if inserting and not broken:
                inserting.clear()
                broken.append(1)
                raise psycopg.OperationalError("server closed the connection unexpectedly")

    datastore.get_connection = connection
    recorder._fetch_ids_after_insert_events = fetch
    try:
        yield broken
    finally:
        datastore.get_connection = real
        recorder._fetch_ids_after_insert_events = real_fetch


@pytest.mark.postgres
@pytest.mark.parametrize("settings", ["postgres"], indirect=True)
@pytest.mark.parametrize("with_key", [False, True])
def test_the_librarys_retry_after_a_lost_acknowledgement_is_no_conflict(
    service: AkteService, with_key: bool
) -> None:
    case_id, version = open_case(service)
    claim = IdempotencyClaim(key="k-1", request_hash="r-1")

    with commits_lose_their_acknowledgement(service) as broken:
        if with_key:
            with idempotency_claim(claim):
                recorded = add_note(service, case_id, version)
        else:
            recorded = add_note(service, case_id, version)

    assert broken == [1]
    assert recorded.version == version + 1
    assert note_texts(service, case_id) == ["called"]
    assert claim.recorded is with_key


def test_a_stale_version_is_still_refused_before_saving(service: AkteService) -> None:
    case_id, version = open_case(service)
    add_note(service, case_id, version)
    with pytest.raises(ConcurrentModification):
        add_note(service, case_id, version, "late")


def test_a_twin_that_checked_before_the_first_committed_hears_it_was_recorded(
    service: AkteService,
) -> None:
    case_id, version = open_case(service)
    first = IdempotencyClaim(key="k-1", request_hash="r-1")
    twin = IdempotencyClaim(key="k-1", request_hash="r-1")
    with idempotency_claim(twin):
        service.writes.check("sb-01")  # finds nothing yet: the first has not committed
    with idempotency_claim(first):
        add_note(service, case_id, version)
    service.uncache_case(case_id)

    with idempotency_claim(twin):
        # Its own act sees the key checked already: the save is where it meets the first.
        case = service.get_case(case_id, version=version)
        case.add_note(text="called", act=service.act("sb-01", None))
        with pytest.raises(AlreadyRecorded) as raised:
            service.save(case)

    assert raised.value.record.attempt == first.attempt
    assert not twin.recorded
    assert note_texts(service, case_id) == ["called"]
