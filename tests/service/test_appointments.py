"""Appointments through the service, on SQLite and PostgreSQL: calendar, the right type,
holds, limits, anti-bot challenges, the tick, the waitlist and the counter."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

import adapters.cli.main as cli
from domain.appointments import (
    AlreadyWaiting,
    Appointment,
    AppointmentStateConflict,
    AppointmentTypeDoesNotFit,
    BookingLimitReached,
    DayHasBookings,
    OpeningHours,
    Situation,
    Slot,
    SlotNotBookable,
    SlotTaken,
    slot_id,
)
from domain.case_file import CaseFile, MasterData
from domain.errors import InvalidValue
from service import AkteService
from service_appointment_mails import BookingNotFound, ChallengeRefused, solve_challenge
from service_ports import MailUnavailable, OutgoingMail
from tests.conftest import FakeClock
from tests.support.appointments import (
    FICTION_HOLDER,
    OFFICE,
    POINT,
    RULES,
    STUDENT,
    TYPES,
    RecordingMailer,
    join_waitlist,
    local,
    person,
    proof,
    set_up,
)

TUESDAY = date(2024, 3, 5)
"""The clock starts on Monday 4 March 2024, 10:00 in Berlin."""
NEXT_MONDAY = date(2024, 3, 11)


def book(
    service: AkteService,
    starts: object,
    *,
    n: int = 0,
    situation: Situation = STUDENT,
    type_code: str = "extend-title",
    email: str | None = None,
) -> tuple[UUID, str]:
    recorded = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type=type_code,
        starts_at=starts,  # type: ignore[arg-type]
        situation=situation,
        person=person(n, email=email),
        proof=proof(service),
        by="public",
    )
    assert recorded.reference is not None
    return recorded.appointment_id, recorded.reference


def kinds(service: AkteService, appointment_id: UUID) -> list[str]:
    return [
        type(event).__name__ for event in service.appointments.appointment_events(appointment_id)
    ]


@pytest.fixture
def mailer(service: AkteService) -> RecordingMailer:
    recording = RecordingMailer()
    set_up(service, recording)
    return recording


def test_a_booking_holds_one_seat_and_sends_its_confirmation_mail(
    service: AkteService, mailer: RecordingMailer
) -> None:
    appointment_id, reference = book(service, local(NEXT_MONDAY, 9))

    assert kinds(service, appointment_id) == ["Booked", "MailQueued", "MailSent"]
    view = service.appointments.booking_status(reference)
    assert view.status == "held"
    assert view.appointment is not None
    assert view.appointment.held_until == service.clock() + timedelta(hours=48)
    slot = service.appointments.get_appointment(appointment_id).slot_id
    assert service.appointments.appointment_events(appointment_id)[0].slot_id == slot  # type: ignore[attr-defined]
    assert [mail.to for mail in mailer.sent] == ["person0@example.org"]
    code = service.appointments.confirmation_code(appointment_id)
    assert code in mailer.sent[0].body
    # The reference is the person's credential: never in the mail, stored only hashed.
    assert reference not in mailer.sent[0].body
    assert reference not in repr(service.appointments.appointment_events(appointment_id))


def test_a_type_that_does_not_fit_is_refused_naming_the_type_that_fits(
    service: AkteService, mailer: RecordingMailer
) -> None:
    with pytest.raises(AppointmentTypeDoesNotFit) as refused:
        book(service, local(NEXT_MONDAY, 9), situation=FICTION_HOLDER, type_code="extend-title")

    assert refused.value.field == "appointment_type"
    assert "book fiction-certificate (Fiktionsbescheinigung verlängern) instead" in str(
        refused.value
    )
    offer = service.appointments.appointment_offer(
        office_id=OFFICE, code=POINT, situation=FICTION_HOLDER
    )
    assert [t.code for t in offer.fitting] == ["fiction-certificate"]
    assert offer.days
    assert all(day.slots for day in offer.days[1:2])
    assert mailer.sent == []


def test_a_known_case_file_proposes_the_type_from_its_expiring_fiction_certificate(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    # The application came while the previous title was valid (until 9 January): the
    # certificate continues that title from the 10th (§ 81 (4) S. 1 AufenthG).
    applied = datetime(2024, 1, 8, 9, 0, tzinfo=UTC)
    opened = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
        by="sb-01",
        at=applied,
    )
    received = service.receive_procedure(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        at=applied,
    )
    service.issue_fiction_certificate(
        opened.case_id,
        expected_version=received.version,
        by="sb-01",
        kind="81_4",
        valid_from=date(2024, 1, 10),
        valid_until=date(2024, 4, 9),
        carrier_sheet_number="F1234567",
        procedure_number=received.result,
        order_basis="timely_application",
        previous_title_valid_until=date(2024, 1, 9),
        at=applied,
    )

    proposals = service.appointments.propose_appointment(opened.case_id, office_id=OFFICE)

    assert len(proposals) == 1
    assert proposals[0].proposal.situation == Situation(
        "fiction_certificate", "aufenthg-81-4", "fiction_certificate"
    )
    assert [t.code for t in proposals[0].fitting[POINT]] == ["fiction-certificate"]


def test_same_day_seats_are_released_on_the_morning_of_the_day(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    starts = local(TUESDAY, 10)
    book(service, starts, n=1)
    with pytest.raises(SlotTaken):
        book(service, starts, n=2)

    clock.now = local(TUESDAY, 6, 59)
    with pytest.raises(SlotTaken):
        book(service, starts, n=2)
    clock.now = local(TUESDAY, 7, 0)
    book(service, starts, n=2)

    with pytest.raises(SlotTaken):
        book(service, starts, n=3)
    slot = service.appointments.get_appointment(book(service, local(TUESDAY, 11), n=4)[0]).slot_id
    assert slot == str(slot_id(OFFICE, POINT, local(TUESDAY, 11)))


@pytest.mark.parametrize(
    ("when", "why"),
    [
        (lambda: local(date(2024, 3, 9), 9), "no slot"),  # a Saturday
        (lambda: local(NEXT_MONDAY, 9, 10), "no slot"),  # off the grid
        (lambda: local(date(2024, 4, 8), 9), "released 28 days ahead"),
        (lambda: local(date(2024, 3, 4), 8), "begun or is over"),
    ],
)
def test_slots_outside_the_calendar_are_refused(
    service: AkteService, mailer: RecordingMailer, when: object, why: str
) -> None:
    with pytest.raises(SlotNotBookable, match=why):
        book(service, when())  # type: ignore[operator]


def test_a_closed_day_has_no_slots(service: AkteService, mailer: RecordingMailer) -> None:
    service.appointments.close_service_point_day(
        office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Betriebsausflug", by="tl-01"
    )
    with pytest.raises(SlotNotBookable, match="closed"):
        book(service, local(NEXT_MONDAY, 9))


GOOD_FRIDAY = date(2024, 3, 29)


def test_a_public_holiday_is_not_offered_nor_booked_online_but_the_office_may_book_it(
    service: AkteService, mailer: RecordingMailer
) -> None:
    """The office's state (Berlin) keeps Good Friday: nothing is offered or booked online
    that day, without a closure recorded; a caseworker who opens the counter anyway
    books it as the office."""
    offer = service.appointments.appointment_offer(
        office_id=OFFICE, code=POINT, situation=STUDENT, from_day=date(2024, 3, 28), days=5
    )
    offered = {day.day: day.slots for day in offer.days}
    assert offered[date(2024, 3, 28)] != []
    assert offered[GOOD_FRIDAY] == []
    assert offered[date(2024, 4, 1)] == []  # Easter Monday, the horizon's last day
    with pytest.raises(SlotNotBookable, match="public holiday"):
        book(service, local(GOOD_FRIDAY, 9))

    at_the_counter = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=local(GOOD_FRIDAY, 9),
        situation=STUDENT,
        person=person(1),
        proof=None,
        origin="office",
        by="sb-01",
    )
    assert at_the_counter.appointment_id is not None


def test_the_person_cannot_cancel_once_the_appointment_has_begun(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    appointment_id, reference = book(service, local(TUESDAY, 9))
    clock.now = local(TUESDAY, 9, 5)
    with pytest.raises(AppointmentStateConflict, match="has begun"):
        service.appointments.cancel_booking(reference)
    assert service.appointments.booking_status(reference).status == "held"
    # The office may still correct its list.
    service.appointments.cancel_appointment(
        appointment_id, expected_version=None, by="sb-01", cancelled_by="office", reason="Irrtum"
    )
    assert service.appointments.booking_status(reference).status == "cancelled"


def test_an_office_cancellation_tells_the_person_without_the_offices_reason(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    appointment_id, reference = book(service, local(NEXT_MONDAY, 9))
    confirmed_id, confirmed_reference = book(service, local(NEXT_MONDAY, 10), n=1)
    service.appointments.confirm_booking(
        confirmed_reference, service.appointments.confirmation_code(confirmed_id)
    )
    already = len(mailer.sent)

    for held_or_confirmed in (appointment_id, confirmed_id):
        service.appointments.cancel_appointment(
            held_or_confirmed, expected_version=None, by="sb-01", reason="Personalausfall Team 3"
        )

    notices = mailer.sent[already:]
    assert [mail.to for mail in notices] == ["person0@example.org", "person1@example.org"]
    assert {mail.subject for mail in notices} == {"Ihr Termin wurde abgesagt"}
    assert "11.03.2024 09:00" in notices[0].body
    assert "Personalausfall" not in notices[0].body  # the office's reason stays inside
    assert kinds(service, appointment_id)[-3:] == ["Cancelled", "MailQueued", "MailSent"]
    assert service.appointments.booking_status(reference).status == "cancelled"


@dataclass
class _MailServerDown:
    """Refuses every mail while ``down``, then passes them to ``inner``."""

    inner: RecordingMailer
    down: bool = False

    def send(self, mail: OutgoingMail) -> None:
        if self.down:
            raise MailUnavailable("the mail server does not answer")
        self.inner.send(mail)


def test_a_notice_that_failed_is_sent_by_a_later_tick_though_the_booking_was_confirmed(
    service: AkteService, clock: FakeClock
) -> None:
    recording = RecordingMailer()
    mail_server = _MailServerDown(recording)
    set_up(service, mail_server)
    appointment_id, reference = book(service, local(NEXT_MONDAY, 9))
    service.appointments.confirm_booking(
        reference, service.appointments.confirmation_code(appointment_id)
    )
    service.appointments.run_appointment_tick()  # the tick's cursor passes the booking
    mail_server.down = True
    service.appointments.cancel_appointment(
        appointment_id, expected_version=None, by="sb-01", reason=None
    )
    assert kinds(service, appointment_id)[-1] == "MailFailed"

    mail_server.down = False
    report = service.appointments.run_appointment_tick()

    assert report.mails_sent == 1
    assert recording.sent[-1].subject == "Ihr Termin wurde abgesagt"
    assert kinds(service, appointment_id)[-1] == "MailSent"
    assert service.appointments.run_appointment_tick().mails_sent == 0  # sent once


def test_no_notice_when_the_person_cancels_or_the_office_corrects_after_the_start(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    _, own = book(service, local(TUESDAY, 9))
    counter_id, _ = book(service, local(TUESDAY, 10), n=1)
    asked_id, _ = book(service, local(TUESDAY, 11), n=2)
    already = len(mailer.sent)

    service.appointments.cancel_booking(own)  # the person knows
    service.appointments.cancel_appointment(  # asked at the counter: the person knows
        asked_id, expected_version=None, by="sb-01", cancelled_by="person", reason=None
    )
    clock.now = local(TUESDAY, 10, 5)
    service.appointments.cancel_appointment(  # a correction of the list once begun
        counter_id, expected_version=None, by="sb-01", reason="Irrtum"
    )
    assert mailer.sent[already:] == []


def test_the_limit_is_per_person_not_per_e_mail_address(
    service: AkteService, mailer: RecordingMailer
) -> None:
    first, reference = book(service, local(NEXT_MONDAY, 9), email="a@example.org")
    book(service, local(NEXT_MONDAY, 10), email="b@example.org")

    with pytest.raises(BookingLimitReached):
        book(service, local(NEXT_MONDAY, 11), email="c@example.org")

    service.appointments.cancel_booking(reference)
    book(service, local(NEXT_MONDAY, 11), email="c@example.org")
    assert service.appointments.get_appointment(first).status == "cancelled"


def test_a_challenge_buys_one_booking_and_must_be_solved(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    def attempt(solved: tuple[str, str]) -> None:
        service.appointments.book_appointment(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            starts_at=local(NEXT_MONDAY, 9),
            situation=STUDENT,
            person=person(7),
            proof=solved,
            by="public",
        )

    solved = proof(service)
    attempt(solved)
    with pytest.raises(ChallengeRefused, match="has been used"):
        attempt(solved)
    challenge = service.appointments.issue_challenge().challenge
    with pytest.raises(ChallengeRefused, match="not one this office issued"):
        attempt((challenge[:-1] + ("0" if challenge[-1] != "0" else "1"), "1"))
    wrong = next(
        str(nonce)
        for nonce in range(1000)
        if solve_challenge(challenge, 4) != str(nonce) and not _solves(challenge, str(nonce))
    )
    with pytest.raises(ChallengeRefused, match="does not solve"):
        attempt((challenge, wrong))
    late = service.appointments.issue_challenge()
    clock.advance(minutes=11)
    with pytest.raises(ChallengeRefused, match="expired"):
        attempt((late.challenge, solve_challenge(late.challenge, late.bits)))


def _solves(challenge: str, nonce: str) -> bool:
    import hashlib

    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return digest[0] >> 4 == 0


def test_confirmation_needs_the_mailed_code_within_the_hold(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    appointment_id, reference = book(service, local(NEXT_MONDAY, 9))
    with pytest.raises(InvalidValue):
        service.appointments.confirm_booking(reference, "WRONGCOD")
    code = service.appointments.confirmation_code(appointment_id)
    clock.advance(hours=47)
    service.appointments.confirm_booking(reference, code.lower())
    assert service.appointments.booking_status(reference).status == "confirmed"
    with pytest.raises(BookingNotFound):
        service.appointments.booking_status("x" * 22)


def test_the_tick_reminds_then_lapses_with_a_reason_and_frees_the_seat(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    appointment_id, reference = book(service, local(NEXT_MONDAY, 9))
    assert service.appointments.run_appointment_tick().reminders == 0

    clock.advance(hours=24)
    report = service.appointments.run_appointment_tick()
    assert (report.reminders, report.lapses) == (1, 0)
    assert service.appointments.run_appointment_tick().reminders == 0  # once only

    clock.advance(hours=24)
    assert service.appointments.run_appointment_tick().lapses == 1
    assert service.appointments.run_appointment_tick().lapses == 0

    events = service.appointments.appointment_events(appointment_id)
    assert [type(e).__name__ for e in events] == [
        "Booked",
        "MailQueued",
        "MailSent",
        "MailQueued",
        "MailSent",
        "Lapsed",
        "MailQueued",
        "MailSent",
    ]
    lapsed = events[5]
    assert isinstance(lapsed, Appointment.Lapsed)
    assert lapsed.reason == "not_confirmed_in_time"
    assert service.appointments.booking_status(reference).status == "lapsed"
    assert [m.subject for m in mailer.sent][1:] == [
        "Erinnerung: Ihr Termin ist noch nicht bestätigt",
        "Ihre Terminreservierung ist verfallen",
    ]
    slot = service.appointments._get(slot_id(OFFICE, POINT, local(NEXT_MONDAY, 9)), Slot)
    assert slot is not None
    assert slot.holders == []
    # The seat is free again, and the limit counts the lapsed booking no more.
    book(service, local(NEXT_MONDAY, 9))


def test_a_freed_seat_goes_to_the_waitlist_in_order(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    starts = local(NEXT_MONDAY, 9)
    _first, reference = book(service, starts, n=1)
    waiting = [
        service.appointments.join_waitlist(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            situation=STUDENT,
            person=person(n),
            proof=proof(service),
            by="public",
        ).reference
        for n in (2, 3)
    ]
    assert waiting[0] is not None
    assert waiting[1] is not None
    assert service.appointments.booking_status(waiting[1]).waitlist_position == 2

    service.appointments.cancel_booking(reference)

    offered = service.appointments.booking_status(waiting[0])
    assert offered.status == "held"
    assert offered.appointment is not None
    assert offered.appointment.origin == "waitlist"
    assert offered.appointment.starts_at == starts
    assert service.appointments.booking_status(waiting[1]).waitlist_position == 1
    # The offer lapses unconfirmed: the next in line gets the seat.
    clock.advance(hours=49)
    service.appointments.run_appointment_tick()
    assert service.appointments.booking_status(waiting[0]).status == "lapsed"
    second = service.appointments.booking_status(waiting[1])
    assert second.status == "held"
    assert second.appointment is not None
    assert second.appointment.starts_at == starts


def join(service: AkteService, n: int, type_code: str = "extend-title") -> str:
    reference = join_waitlist(service, person(n), type_code).reference
    assert reference is not None
    return reference


def test_the_waitlist_hands_out_no_more_than_the_limit_per_person(
    service: AkteService, mailer: RecordingMailer
) -> None:
    """Bookings and places on waitlists together stay within the limit (2 here): the
    list takes a person once, not at the limit, and a person who booked up to it since
    joining is passed over when a seat frees."""
    limit = service.appointments.appointment_setup.bookings_per_person
    assert limit == 2
    join(service, 1)
    with pytest.raises(AlreadyWaiting):
        join(service, 1)
    book(service, local(TUESDAY, 9), n=2)
    book(service, local(TUESDAY, 9, 30), n=2)
    with pytest.raises(BookingLimitReached, match="places on waitlists"):
        join(service, 2)  # two bookings: no place on a list besides

    # Person 1 books once more while waiting: one booking and one place, at the limit.
    book(service, local(TUESDAY, 10), n=1)
    passed_over = join(service, 3)  # a second person in line
    _seat, freed = book(service, local(NEXT_MONDAY, 9), n=4)
    book(service, local(NEXT_MONDAY, 10), n=1)  # person 1: two bookings now
    service.appointments.cancel_booking(freed)

    assert service.appointments.booking_status(passed_over).status == "held"
    assert (
        service.appointments.waitlist_length(
            office_id=OFFICE, code=POINT, appointment_type="extend-title"
        )
        == 0
    )  # person 1 was taken off the list (booked elsewhere), person 3 got the seat


def test_the_offer_from_the_waitlist_is_written_in_the_language_the_person_joined_in(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    starts = local(NEXT_MONDAY, 9)
    _first, reference = book(service, starts, n=1)
    service.appointments.join_waitlist(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        situation=STUDENT,
        person=person(2),
        proof=proof(service),
        by="public",
        language="ar",
    )
    already = len(mailer.sent)

    service.appointments.cancel_booking(reference)

    offers = mailer.sent[already:]
    assert offers
    # Joined on the Arabic pages: mails are German or English, so English, not German.
    assert [mail.subject for mail in offers] == ["Please confirm your appointment"]
    assert offers[-1].to == person(2).email


def test_the_counter_checks_in_retypes_and_records_attendance_on_the_case_file(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    opened = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
        by="sb-01",
    )
    appointment_id, _ = book(service, local(TUESDAY, 9, 30), situation=STUDENT)
    missed, _ = book(service, local(TUESDAY, 10), n=5)
    clock.now = local(TUESDAY, 9, 25)
    today = service.appointments.appointments_of_day(office_id=OFFICE, code=POINT, day=TUESDAY)
    assert [a.id for a in today] == [appointment_id, missed]

    v = service.appointments.link_appointment_to_case(
        appointment_id, expected_version=3, by="sb-01", case_id=opened.case_id
    ).version
    v = service.appointments.check_in_appointment(
        appointment_id, expected_version=v, by="sb-01"
    ).version
    v = service.appointments.retype_appointment(
        appointment_id,
        expected_version=v,
        by="sb-01",
        appointment_type="eat-pickup",
        legal_basis="aufenthg-16b",
        reason=None,
    ).version
    service.appointments.record_attended(appointment_id, expected_version=v, by="sb-01")
    with pytest.raises(AppointmentStateConflict):
        service.appointments.record_no_show(missed, expected_version=3, by="sb-01")
    clock.now = local(TUESDAY, 10, 20)
    service.appointments.record_no_show(missed, expected_version=3, by="sb-01")

    attended = service.appointments.appointment_events(appointment_id)[-1]
    assert isinstance(attended, Appointment.Attended)
    assert (attended.office_id, attended.case_id) == (OFFICE, str(opened.case_id))
    assert attended.appointment_type == "eat-pickup"
    recorded = service.case_events(opened.case_id)[-1]
    assert isinstance(recorded, CaseFile.AppointmentAttendanceRecorded)
    assert (recorded.outcome, recorded.appointment_id) == ("attended", str(appointment_id))
    assert service.appointments.get_appointment(missed).status == "no_show"
    no_show = service.appointments.appointment_events(missed)[-1]
    assert isinstance(no_show, Appointment.NoShow)
    assert no_show.case_id is None
    assert no_show.person_key == service.appointments.get_appointment(missed).person_key


def test_figures_name_the_waitlist_and_the_next_free_slot(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    clock.now = local(date(2024, 3, 15), 11, 45)  # Friday, after the last slot's start
    figures = service.appointments.booking_figures(office_id=OFFICE, code=POINT)
    assert [f.appointment_type for f in figures] == [
        "eat-pickup",
        "extend-title",
        "fiction-certificate",
    ]
    assert figures[0].next_free_slot == local(date(2024, 3, 18), 8)
    assert figures[0].booked_out_days == 3
    assert all(f.waiting == 0 for f in figures)


def test_the_tick_command_prints_what_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AKTE_STORE", "sqlite")

    assert cli.main(["appointments", "tick"]) == 0
    assert cli.main(["appointments", "tick"]) == 0

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines == [lines[0], lines[0]]
    assert lines[0]["lapses"] == 0
    assert cli.main(["appointments", "bounce", "<not-an-id.1@akte>", "--status", "5.1.1"]) == 1


NIGHT_RULES = replace(
    RULES,
    counters=1,
    same_day_counters=0,
    opening_hours=(OpeningHours(7, time(0, 0), time(23, 59, 59)),),
)
"""Sundays round the clock at one counter: the nights the clocks change."""


def _open_sundays(service: AkteService) -> None:
    service.appointments.define_service_point(
        office_id=OFFICE, code=POINT, name="Nachtschalter", rules=NIGHT_RULES, types=TYPES, by="tl"
    )


def test_the_hour_repeated_when_summer_time_ends_is_offered_and_booked_once(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    clock.now = datetime(2024, 10, 21, 9, 0, tzinfo=UTC)
    _open_sundays(service)
    sunday = date(2024, 10, 27)
    point = service.appointments.get_service_point(OFFICE, POINT)
    instants = [s.astimezone(UTC) for s in point.slot_starts(sunday)]
    first = datetime(2024, 10, 27, 0, 0, tzinfo=UTC)  # 02:00 CEST
    second = datetime(2024, 10, 27, 1, 0, tzinfo=UTC)  # 02:00 CET, the clock's second go
    assert first in instants
    assert second not in instants
    assert len(instants) == len(set(instants)) == 47  # 00:00 to 23:00
    book(service, first, n=1)

    with pytest.raises(SlotNotBookable, match="no slot"):
        book(service, second, n=2)
    with pytest.raises(SlotTaken):
        book(service, first, n=3)
    assert service.appointments._get(slot_id(OFFICE, POINT, second), Slot) is None


def test_local_times_skipped_when_summer_time_begins_are_no_slots(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    clock.now = datetime(2024, 3, 25, 9, 0, tzinfo=UTC)
    _open_sundays(service)
    sunday = date(2024, 3, 31)
    point = service.appointments.get_service_point(OFFICE, POINT)
    [offered] = service.appointments.availability(point, from_day=sunday, days=1, now=clock.now)
    night = [start.strftime("%H:%M%z") for start, _ in offered.slots if start.hour < 4]
    assert night == [
        "00:00+0100", "00:30+0100", "01:00+0100", "01:30+0100", "03:00+0200", "03:30+0200"
    ]  # fmt: skip
    instants = [start.astimezone(UTC) for start, _ in offered.slots]
    assert len(instants) == len(set(instants)) == 45
    book(service, datetime(2024, 3, 31, 1, 0, tzinfo=UTC), n=2)  # 03:00 CEST
    [after] = service.appointments.availability(point, from_day=sunday, days=1, now=clock.now)
    assert [free for start, free in after.slots if start.hour == 3] == [0, 1]
    # 02:00 does not exist that night: read as 01:00 UTC it is the same instant as 03:00
    # CEST, the same slot, whose one seat is taken.
    with pytest.raises(SlotTaken):
        book(service, local(sunday, 2, 0), n=1)


def test_a_day_with_bookings_is_closed_only_once_the_office_cancelled_them(
    service: AkteService, mailer: RecordingMailer
) -> None:
    appointment_id, _ = book(service, local(NEXT_MONDAY, 9))
    book(service, local(NEXT_MONDAY, 10), n=1)

    with pytest.raises(DayHasBookings, match="2 booking") as refused:
        service.appointments.close_service_point_day(
            office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Betriebsausflug", by="tl-01"
        )
    assert "/cancellation" in str(refused.value)
    assert NEXT_MONDAY not in service.appointments.get_service_point(OFFICE, POINT).closed_days

    service.appointments.cancel_appointment(
        appointment_id, expected_version=None, by="sb-01", reason="Betriebsausflug"
    )
    with pytest.raises(DayHasBookings, match="1 booking"):
        service.appointments.close_service_point_day(
            office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Betriebsausflug", by="tl-01"
        )


def test_a_booking_that_comes_in_while_the_day_is_being_closed_stops_the_closure(
    service: AkteService, mailer: RecordingMailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    appointments = service.appointments
    checked = appointments._seat_holders
    booked: list[UUID] = []

    def check_then_someone_books(slots: list[Slot]) -> list[Appointment]:
        holders = checked(slots)
        if not booked:  # between the closure's check and its write
            booked.append(book(service, local(NEXT_MONDAY, 9))[0])
        return holders

    monkeypatch.setattr(appointments, "_seat_holders", check_then_someone_books)
    with pytest.raises(DayHasBookings, match="1 booking"):
        appointments.close_service_point_day(
            office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Betriebsausflug", by="tl-01"
        )

    assert NEXT_MONDAY not in appointments.get_service_point(OFFICE, POINT).closed_days
    assert appointments.get_appointment(booked[0]).status == "held"


def test_a_closure_that_comes_in_while_a_seat_is_being_booked_refuses_the_booking(
    service: AkteService, mailer: RecordingMailer, monkeypatch: pytest.MonkeyPatch
) -> None:
    appointments = service.appointments
    counted = appointments._person_bookings
    closed: list[bool] = []

    def count_then_the_office_closes(office_id: str, key: str, act: Any) -> Any:
        bookings = counted(office_id, key, act)
        if not closed:  # after the booking checked the calendar, before it writes
            closed.append(True)
            appointments.close_service_point_day(
                office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Streik", by="tl-01"
            )
        return bookings

    monkeypatch.setattr(appointments, "_person_bookings", count_then_the_office_closes)
    with pytest.raises(SlotNotBookable, match="closed"):
        book(service, local(NEXT_MONDAY, 9))

    monkeypatch.undo()
    assert NEXT_MONDAY in appointments.get_service_point(OFFICE, POINT).closed_days
    appointments.reopen_service_point_day(office_id=OFFICE, code=POINT, day=NEXT_MONDAY, by="tl-01")
    book(service, local(NEXT_MONDAY, 9))  # the slots opened again with the day


def _opening_hours_until(service: AkteService, closes: int) -> None:
    hours = tuple(OpeningHours(day, time(8, 0), time(closes, 0)) for day in range(1, 6))
    service.appointments.define_service_point(
        office_id=OFFICE,
        code=POINT,
        name="Bürgerbüro",
        rules=replace(RULES, opening_hours=hours),
        types=TYPES,
        by="tl-01",
    )


def test_a_slot_closed_under_earlier_opening_hours_is_bookable_once_the_day_is_open(
    service: AkteService, mailer: RecordingMailer
) -> None:
    appointments = service.appointments
    appointments.close_service_point_day(
        office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Umzug", by="tl-01"
    )
    _opening_hours_until(service, 10)  # while the day is closed, the hours get shorter
    appointments.reopen_service_point_day(office_id=OFFICE, code=POINT, day=NEXT_MONDAY, by="tl-01")
    _opening_hours_until(service, 12)  # and longer again: 11:00 was closed with the day

    point = appointments.get_service_point(OFFICE, POINT)
    [day] = appointments.availability(point, from_day=NEXT_MONDAY, days=1, now=service.clock())
    assert dict(day.slots)[local(NEXT_MONDAY, 11)] == 1  # offered
    appointment_id, _ = book(service, local(NEXT_MONDAY, 11))  # and booked

    assert appointments.get_appointment(appointment_id).status == "held"


def test_a_past_day_is_not_closed_and_a_closed_day_opens_again(
    service: AkteService, mailer: RecordingMailer
) -> None:
    with pytest.raises(InvalidValue, match="in the past") as refused:
        service.appointments.close_service_point_day(
            office_id=OFFICE, code=POINT, day=date(2024, 3, 3), reason="x", by="tl-01"
        )
    assert refused.value.field == "day"
    service.appointments.close_service_point_day(
        office_id=OFFICE, code=POINT, day=NEXT_MONDAY, reason="Betriebsausflug", by="tl-01"
    )

    reopened = service.appointments.reopen_service_point_day(
        office_id=OFFICE, code=POINT, day=NEXT_MONDAY, by="tl-01"
    )
    assert NEXT_MONDAY not in reopened.point.closed_days
    assert reopened.position is not None
    again = service.appointments.reopen_service_point_day(
        office_id=OFFICE, code=POINT, day=NEXT_MONDAY, by="tl-01"
    )
    assert again.position is None  # not closed: nothing recorded
    book(service, local(NEXT_MONDAY, 9))


def test_no_reminder_goes_out_for_a_booking_on_a_day_closed_before_the_rule(
    service: AkteService, mailer: RecordingMailer, clock: FakeClock
) -> None:
    book(service, local(NEXT_MONDAY, 9))
    # A closure recorded while the booking stood (as before bookings refused it).
    point = service.appointments.get_service_point(OFFICE, POINT)
    point.close_day(NEXT_MONDAY, "Betriebsausflug", service.appointments._store.act("tl-01", None))
    service.appointments._save(point)
    sent = len(mailer.sent)

    clock.now += timedelta(hours=30)  # the reminder would be due
    report = service.appointments.run_appointment_tick()

    assert report.reminders == 0
    assert len(mailer.sent) == sent
