"""A write whose commit went through but whose acknowledgement was lost is answered as
the success it was, found by its idempotency key or by reading its events back; when the
store cannot tell, the answer is "outcome unknown", never a conflict. On PostgreSQL the
library retries a failed insert by itself: its retry finding the write's own events is
not a conflict either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, TypeVar
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError

from domain.case_file import CaseFile
from service import AkteService
from service_appointment_mails import AppointmentRecorded
from service_common import ConcurrentModification, StoreUnavailable
from service_declarations import DeclarationRecorded
from service_erasure_requests import RequestRecorded
from service_idempotency import (
    AlreadyRecorded,
    IdempotencyClaim,
    IdempotencyKeyReused,
    OutcomeUnknown,
    idempotency_claim,
)
from service_intake import (
    CaseOpenedFromSubmission,
    ProcedureFromSubmission,
    SubmissionRecorded,
)
from tests.conftest import FakeClock
from tests.service.test_case_files import event_count, open_case
from tests.service.test_intake import submit as submit_contact_form
from tests.support.appointments import (
    OFFICE,
    POINT,
    STUDENT,
    RecordingMailer,
    local,
    person,
    proof,
    set_up,
)
from tests.support.declarations import submission
from tests.support.lost_acknowledgements import LostAcknowledgement

T = TypeVar("T")


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


def _sealed_claim(key: str) -> IdempotencyClaim:
    """A claim whose outcome is "sealed" reversibly, as the HTTP layer's is with the key."""
    return IdempotencyClaim(
        key=key,
        request_hash="r-1",
        seal=lambda data: data[::-1],
        unseal=lambda data: data[::-1],
    )


def test_a_retry_whose_first_answer_was_lost_returns_the_recorded_outcome(
    service: AkteService,
) -> None:
    case_id, version = open_case(service)
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)
    with idempotency_claim(_sealed_claim("k-1")), pytest.raises(OutcomeUnknown):
        add_note(service, case_id, version)
    fault.heal()
    head = service.recorder.max_notification_id()

    retry = _sealed_claim("k-1")
    with idempotency_claim(retry):
        recorded = add_note(service, case_id, version)
        # A second command of the same request is not run on the strength of the first.
        with pytest.raises(AlreadyRecorded):
            add_note(service, case_id, version + 1, "second")

    assert (recorded.case_id, recorded.version, recorded.result) == (case_id, version + 1, 1)
    assert recorded.position == head
    assert service.recorder.max_notification_id() == head
    assert note_texts(service, case_id) == ["called"]


def test_a_key_recorded_without_a_readable_outcome_is_answered_as_already_recorded(
    service: AkteService,
) -> None:
    case_id, version = open_case(service)
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)
    with idempotency_claim(_sealed_claim("k-1")), pytest.raises(OutcomeUnknown):
        add_note(service, case_id, version)
    fault.heal()

    unreadable = IdempotencyClaim(
        key="k-1", request_hash="r-1", seal=lambda data: data, unseal=lambda _data: None
    )
    with idempotency_claim(unreadable), pytest.raises(AlreadyRecorded) as found:
        add_note(service, case_id, version)

    assert found.value.record.originator_version == version + 1
    assert note_texts(service, case_id) == ["called"]


# ------------------------------------------- the public writes after a lost answer


def _lost_then_retried(service: AkteService, write: Callable[[], T]) -> tuple[T, int]:
    """Runs ``write`` under a key while its commit's acknowledgement is lost and the store
    cannot be read; then again with the same key, the store healed. The retry's outcome,
    and the log's head before the retry."""
    fault = LostAcknowledgement(service)
    fault.arm(then_reads_fail=True)
    with idempotency_claim(_sealed_claim("public-1")), pytest.raises(OutcomeUnknown):
        write()
    fault.heal()
    head = service.recorder.max_notification_id() or 0
    with idempotency_claim(_sealed_claim("public-1")):
        retried = write()
    assert fault.committed == 1
    assert service.recorder.max_notification_id() == head  # nothing recorded again
    return retried, head


def test_a_declaration_whose_answer_was_lost_gives_its_reference_to_the_retry(
    service: AkteService, clock: FakeClock
) -> None:
    def declare() -> DeclarationRecorded[str]:
        return service.declarations.submit_commitment_declaration(
            office_id="abh-musterstadt", **submission(clock.now.date())
        )

    recorded, head = _lost_then_retried(service, declare)

    assert recorded.position == head
    assert service.declarations.find_declaration_by_reference(recorded.result) == (
        recorded.declaration_id
    )
    assert recorded.version == service.declarations.get_declaration(recorded.declaration_id).version


def test_a_contact_form_whose_answer_was_lost_gives_its_receipt_to_the_retry(
    service: AkteService,
) -> None:
    def send() -> SubmissionRecorded[str]:
        return submit_contact_form(service)

    recorded, head = _lost_then_retried(service, send)

    assert recorded.position == head
    found = service.intake.find_submission_by_receipt(recorded.result)
    assert found == recorded.submission_id
    assert service.intake.get_submission(found).version == recorded.version


def test_a_booking_whose_answer_was_lost_gives_its_reference_to_the_retry(
    service: AkteService,
) -> None:
    mailer = RecordingMailer()
    set_up(service, mailer)
    solved = proof(service)

    def book() -> AppointmentRecorded:
        return service.appointments.book_appointment(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            starts_at=local(date(2024, 3, 11), 9),
            situation=STUDENT,
            person=person(),
            proof=solved,
            by="public",
        )

    recorded, head = _lost_then_retried(service, book)

    assert recorded.position == head
    assert recorded.reference is not None
    view = service.appointments.booking_status(recorded.reference)
    assert view.appointment is not None
    assert view.appointment.id == recorded.appointment_id
    # The first attempt ended before its confirmation mail; the tick sends it.
    assert mailer.sent == []
    service.appointments.run_appointment_tick()
    assert [mail.to for mail in mailer.sent] == ["person0@example.org"]


def test_an_erasure_request_whose_answer_was_lost_is_returned_to_the_retry(
    service: AkteService,
) -> None:
    case_id, _version = open_case(service)

    def request() -> RequestRecorded:
        return service.erasure_requests.request(case_id, by="tl-01", legal_ground="dsgvo-17")

    recorded, head = _lost_then_retried(service, request)

    assert recorded.position == head
    assert recorded.request.number == 1
    assert recorded.request.status == "pending"
    assert [r.number for r in service.erasure_requests.requests_of(case_id)] == [1]


def test_a_waitlist_entry_whose_answer_was_lost_gives_its_reference_to_the_retry(
    service: AkteService,
) -> None:
    set_up(service, RecordingMailer())
    solved = proof(service)

    def join() -> AppointmentRecorded:
        return service.appointments.join_waitlist(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            situation=STUDENT,
            person=person(),
            proof=solved,
            by="public",
        )

    recorded, head = _lost_then_retried(service, join)

    assert recorded.position == head
    assert recorded.reference is not None
    assert service.appointments.booking_status(recorded.reference).waitlist_position == 1


# ------------------------------- results of other types after a lost answer


@pytest.mark.parametrize(
    "result",
    [
        True,
        (2, "zwei"),
        date(2024, 3, 4),
        CaseOpenedFromSubmission(UUID(int=7), "ABH-2024-7", 3),
        ProcedureFromSubmission(UUID(int=7), 2, [1, 2], 5),
    ],
    ids=["bool", "tuple", "date", "case-opened", "procedure"],
)
def test_a_lost_write_s_result_of_another_type_comes_back_as_it_was(
    service: AkteService, result: object
) -> None:
    """Truth values, tuples, dates and the service's result dataclasses are recorded with
    the key typed: the retry returns an equal value of the same type, not a fallback."""
    case_id, version = open_case(service)

    def write() -> Any:
        def command(case: CaseFile, act: Any) -> object:
            case.add_note(text="called", act=act)
            return result

        return service.change_case(case_id, version, "sb-01", None, command)

    retried, head = _lost_then_retried(service, write)

    assert (retried.case_id, retried.version, retried.position) == (case_id, version + 1, head)
    assert type(retried.result) is type(result)
    assert retried.result == result
    assert note_texts(service, case_id) == ["called"]
