"""The demo's appointment desk: types for several situations with free slots from the
day of loading on, and one type booked out so the waitlist can be shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

from adapters.mail.mailbox import Mailbox
from adapters.simulation.demo_appointments import (
    BOOKED_OUT_TYPE,
    FAMILY_POINT,
    FAMILY_SITUATION,
    MAIN_POINT,
    set_up_demo_appointments,
)
from adapters.simulation.demo_office import DEFAULT_OFFICE_ID, load_demo_office
from domain.appointments import Person, Situation
from service import AkteService
from service_appointment_mails import solve_challenge
from tests.conftest import FakeClock

OFFICE = DEFAULT_OFFICE_ID


def _fitting(service: AkteService, situation: Situation) -> list[str]:
    offer = service.appointments.appointment_offer(
        office_id=OFFICE, code=MAIN_POINT, situation=situation
    )
    return [t.code for t in offer.fitting]


def test_the_main_desk_offers_free_slots_from_today(service: AkteService, clock: FakeClock) -> None:
    set_up_demo_appointments(service, office_id=OFFICE)
    today = clock.now.date()  # a Monday, 10:00 in Berlin

    offer = service.appointments.appointment_offer(
        office_id=OFFICE,
        code=MAIN_POINT,
        situation=Situation("eat", "aufenthg-16b", "extend_residence_permit"),
    )

    assert [t.code for t in offer.fitting] == ["studium-verlaengern"]
    free_today = [start for start, free in offer.days[0].slots if free > 0]
    assert offer.days[0].day == today
    assert free_today
    assert all(start > clock.now for start in free_today)
    assert sum(free for day in offer.days for _start, free in day.slots) > 100
    # Several documents held and legal bases lead to their own types.
    assert _fitting(service, Situation("eat", None, "eat_pickup")) == ["eat-abholen"]
    assert _fitting(service, Situation("duldung", "aufenthg-60a", "extend_gestattung_duldung")) == [
        "duldung"
    ]
    assert _fitting(service, Situation("eat", "aufenthg-16b", "fiction_certificate")) == [
        "fiktionsbescheinigung"
    ]
    # A study permit's extension is not offered to someone on another legal basis.
    assert _fitting(service, Situation("eat", "aufenthg-18b", "extend_residence_permit")) == []


def test_on_a_weekend_the_next_weekday_has_free_slots(
    service: AkteService, clock: FakeClock
) -> None:
    clock.now -= timedelta(days=2)  # Saturday
    set_up_demo_appointments(service, office_id=OFFICE)

    offer = service.appointments.appointment_offer(
        office_id=OFFICE, code=MAIN_POINT, situation=Situation("eat", None, "eat_pickup")
    )

    free = [day.day for day in offer.days if any(free for _start, free in day.slots)]
    assert free[0] == date(2024, 3, 4)


def test_the_family_reunion_type_is_booked_out_and_has_a_waitlist(
    service: AkteService, clock: FakeClock
) -> None:
    summary = set_up_demo_appointments(service, office_id=OFFICE)
    assert summary.booked_out_type == BOOKED_OUT_TYPE
    assert summary.bookings > 0

    appointments = service.appointments
    offer = appointments.appointment_offer(
        office_id=OFFICE, code=FAMILY_POINT, situation=FAMILY_SITUATION, days=8
    )
    assert [t.code for t in offer.fitting] == [BOOKED_OUT_TYPE]
    seats = [free for day in offer.days for _start, free in day.slots]
    assert len(seats) == summary.bookings
    assert set(seats) == {0}
    # The bookings are confirmed: the tick lets none of them lapse into a free seat.
    clock.advance(days=4)
    appointments.run_appointment_tick()
    assert {
        free
        for day in appointments.appointment_offer(
            office_id=OFFICE,
            code=FAMILY_POINT,
            situation=FAMILY_SITUATION,
            from_day=clock.now.date() - timedelta(days=4),
            days=4,
        ).days
        for _start, free in day.slots
    } <= {0}

    appointments.configure_appointments(
        replace(appointments.appointment_setup, proof_of_work_bits=4)
    )
    challenge = appointments.issue_challenge()
    joined = appointments.join_waitlist(
        office_id=OFFICE,
        service_point_code=FAMILY_POINT,
        appointment_type=BOOKED_OUT_TYPE,
        situation=FAMILY_SITUATION,
        person=Person("Beispiel", "Lina", date(1992, 2, 2), "lina@example.org"),
        proof=(challenge.challenge, solve_challenge(challenge.challenge, challenge.bits)),
        by="public",
    )
    assert appointments.booking_status(joined.reference or "").status == "waiting"


def test_the_fictitious_bookings_leave_no_mail_in_the_mailbox(service: AkteService) -> None:
    mailer = service.appointments.appointment_setup.mailer
    assert isinstance(mailer, Mailbox)
    summary = load_demo_office(service, cases=2)

    assert summary.appointments is not None
    assert summary.appointments.service_points == (MAIN_POINT, FAMILY_POINT)
    assert [p.code for p in service.appointments.service_points(OFFICE)] == [
        MAIN_POINT,
        FAMILY_POINT,
    ]
    assert mailer.mails() == []
    assert service.appointments.appointment_setup.mailer is mailer
