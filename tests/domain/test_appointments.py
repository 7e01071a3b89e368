"""Appointment rules after booking: correcting the e-mail address and extending the hold
once (WCAG 2.2.1), and the booked event of version 1 loading without a language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper

from adapters.store.transcoding import register_akte_transcodings
from domain.acts import Act
from domain.appointments import (
    HOLD_EXTENSION_MARGIN,
    MAX_EMAIL_CORRECTIONS,
    Appointment,
    AppointmentStateConflict,
    Booking,
    Waitlist,
    WaitlistEntry,
)
from domain.errors import InvalidValue
from domain.personal import personal_fields
from tests.support.appointments import EXTEND_TYPE, OFFICE, STUDENT, person

BOOKED = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _act(at: datetime) -> Act:
    return Act(by="public", at=at, recorded_at=at)


def _appointment(starts_at: datetime, *, hold: timedelta = 48 * HOUR) -> Appointment:
    held_until = min(BOOKED + hold, starts_at)
    return Appointment.book(
        appointment_id=uuid4(),
        booking=Booking(
            office_id=OFFICE,
            service_point_id=uuid4(),
            slot_id=uuid4(),
            starts_at=starts_at,
            appointment_type=EXTEND_TYPE,
            situation=STUDENT,
            person=person(1),
            person_key="k" * 64,
            held_until=held_until,
            reminder_at=held_until - (held_until - BOOKED) / 2,
            language="en",
        ),
        act=_act(BOOKED),
    )


def test_a_corrected_address_gets_the_confirmation_mail_again() -> None:
    appointment = _appointment(BOOKED + 7 * 24 * HOUR)

    number = appointment.correct_email("right@example.org", _act(BOOKED + HOUR))

    assert number == 2
    assert appointment.person.email == "right@example.org"
    assert [(m.number, m.kind) for m in appointment.mails_to_send] == [(2, "confirmation")]
    event = appointment.pending_events[-1]
    assert isinstance(event, Appointment.EmailCorrected)
    # Encrypted per person and erasable, like the address in Booked.
    assert personal_fields(Appointment.EmailCorrected) == frozenset({"email"})


def test_an_address_is_refused_when_invalid_the_same_too_often_or_not_held() -> None:
    appointment = _appointment(BOOKED + 7 * 24 * HOUR)
    with pytest.raises(InvalidValue):
        appointment.correct_email("no-at-sign", _act(BOOKED))
    with pytest.raises(InvalidValue):
        appointment.correct_email("person1@example.org", _act(BOOKED))
    for n in range(MAX_EMAIL_CORRECTIONS):
        appointment.correct_email(f"p{n}@example.org", _act(BOOKED))
    with pytest.raises(AppointmentStateConflict):
        appointment.correct_email("late@example.org", _act(BOOKED))

    confirmed = _appointment(BOOKED + 7 * 24 * HOUR)
    confirmed.confirm(via="mail_code", act=_act(BOOKED))
    with pytest.raises(AppointmentStateConflict):
        confirmed.correct_email("right@example.org", _act(BOOKED))


def test_the_hold_is_extended_once_by_the_time_asked() -> None:
    appointment = _appointment(BOOKED + 7 * 24 * HOUR)
    lead = appointment.held_until - appointment.reminder_at

    appointment.extend_hold(48 * HOUR, _act(BOOKED + HOUR))

    assert appointment.held_until == BOOKED + 96 * HOUR
    assert appointment.held_until - appointment.reminder_at == lead
    with pytest.raises(AppointmentStateConflict, match="once already"):
        appointment.extend_hold(48 * HOUR, _act(BOOKED + 2 * HOUR))


def test_an_extension_stops_short_of_the_start_and_is_refused_if_nothing_is_gained() -> None:
    starts = BOOKED + 60 * HOUR
    appointment = _appointment(starts)

    appointment.extend_hold(48 * HOUR, _act(BOOKED + HOUR))

    assert appointment.held_until == starts - HOLD_EXTENSION_MARGIN

    close = _appointment(BOOKED + 3 * HOUR, hold=48 * HOUR)  # held until the start
    with pytest.raises(AppointmentStateConflict, match="begins too soon"):
        close.extend_hold(48 * HOUR, _act(BOOKED + HOUR))


def test_a_lapsed_hold_is_not_extended() -> None:
    appointment = _appointment(BOOKED + 7 * 24 * HOUR)

    with pytest.raises(AppointmentStateConflict, match="lapsed"):
        appointment.hold_extension(48 * HOUR, appointment.held_until)


def _as_version_1(event: Any) -> Any:
    """``event`` stored and loaded again as version 1 wrote it: without ``language``."""
    mapper: Mapper[Any] = Mapper(transcoder=JSONTranscoder())
    register_akte_transcodings(mapper.transcoder)  # type: ignore[arg-type]
    stored = mapper.to_stored_event(event)
    state = mapper.transcoder.decode(stored.state)
    assert state.pop("class_version") == 2
    assert state.pop("language") == "en"
    old = type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=mapper.transcoder.encode(state),
    )
    return mapper.to_domain_event(old)


def test_a_booked_event_of_version_1_loads_as_german() -> None:
    event = _appointment(BOOKED + 7 * 24 * HOUR).pending_events[0]

    loaded = _as_version_1(event)

    assert isinstance(loaded, Appointment.Booked)
    assert loaded.language == "de"
    rebuilt = loaded.mutate(None)
    assert isinstance(rebuilt, Appointment)
    assert rebuilt.language == "de"


def _entry(language: str) -> WaitlistEntry:
    act = _act(BOOKED)
    waitlist = Waitlist.start(
        office_id=OFFICE,
        service_point_code="rathaus",
        service_point_id=uuid4(),
        appointment_type=EXTEND_TYPE.code,
        act=act,
    )
    return WaitlistEntry.join(
        entry_id=uuid4(),
        waitlist=waitlist,
        appointment_type=EXTEND_TYPE,
        situation=STUDENT,
        person=person(1),
        person_key="k" * 64,
        reference_sha256="r" * 64,
        case_id=None,
        act=act,
        language=language,
    )


def test_a_waitlist_entry_keeps_the_language_of_its_offer_mails() -> None:
    assert _entry("ar").language == "ar"


def test_a_joined_event_of_version_1_loads_as_german() -> None:
    event = _entry("en").pending_events[0]

    loaded = _as_version_1(event)

    assert isinstance(loaded, WaitlistEntry.Joined)
    assert loaded.language == "de"
    rebuilt = loaded.mutate(None)
    assert isinstance(rebuilt, WaitlistEntry)
    assert rebuilt.language == "de"


def test_check_in_and_attendance_wait_for_the_appointment_s_day() -> None:
    starts = datetime(2024, 3, 28, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    appointment = _appointment(starts)

    for too_early in (BOOKED + HOUR, datetime(2024, 3, 27, 22, 59, tzinfo=UTC)):
        with pytest.raises(AppointmentStateConflict, match="has not begun yet"):
            appointment.check_in(_act(too_early))
    assert appointment.status == "held"
    # Earlier on the day is fine (people come early): 00:30 in Berlin, 23:30 UTC before.
    appointment.check_in(_act(datetime(2024, 3, 27, 23, 30, tzinfo=UTC)))
    appointment.record_attended(_act(datetime(2024, 3, 28, 7, 0, tzinfo=UTC)))
    assert appointment.ended_at is not None
    assert appointment.end_reason == "attended"


def test_attendance_is_refused_before_the_day_even_for_a_checked_in_appointment() -> None:
    appointment = _appointment(BOOKED + 7 * 24 * HOUR)
    appointment.check_in(_act(BOOKED + 7 * 24 * HOUR - HOUR))
    with pytest.raises(AppointmentStateConflict, match="has not begun yet"):
        appointment.record_attended(_act(BOOKED + HOUR))
