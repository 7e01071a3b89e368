"""The appointment read models on SQLite and PostgreSQL: the day at the counter, the
unconfirmed holds and the figures (waitlist, next free slot, the daily series). Each
test ends with a rebuild from scratch giving the very same rows as following the log
batch by batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from uuid import UUID

import pytest

from adapters.settings import Settings
from domain.appointments import AppointmentType, AvailabilityObservation, CalendarRules
from domain.appointments import OpeningHours as Hours
from domain.errors import InvalidValue
from projections.appointments import appointment_day, appointment_figures, appointment_holds
from projections.appointments.appointment_day import appointments_of_day
from projections.appointments.appointment_figures import availability_history, current_figures
from projections.appointments.appointment_holds import unconfirmed_holds
from projections.paging import InvalidCursor
from projections.projection import Projection
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.service.test_appointments import NEXT_MONDAY, TUESDAY, book
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
from tests.support.projections import catch_up, dump, rebuilt_dump, views_for

PROJECTIONS: Final[tuple[Projection, ...]] = (
    appointment_day.PROJECTION,
    appointment_holds.PROJECTION,
    appointment_figures.PROJECTION,
)
OTHER: Final = "abh-nachbarstadt"


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


@pytest.fixture
def mailer(service: AkteService) -> RecordingMailer:
    recording = RecordingMailer()
    set_up(service, recording)
    return recording


def follow(service: AkteService, views: ViewsStore) -> None:
    catch_up(service, views, PROJECTIONS)


def check_rebuild(service: AkteService, views: ViewsStore) -> None:
    follow(service, views)
    incremental = dump(service, views, PROJECTIONS)
    assert rebuilt_dump(service, views, PROJECTIONS) == incremental


def ids(page: Any) -> list[str]:
    return [item.appointment_id for item in page.items]


def test_the_day_list_follows_the_counter_and_leaves_out_freed_seats(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer, clock: FakeClock
) -> None:
    early, _ = book(service, local(TUESDAY, 8), n=1)
    late, _ = book(service, local(TUESDAY, 11, 30), n=2)
    cancelled, _ = book(service, local(TUESDAY, 9), n=3)
    other_day, _ = book(service, local(NEXT_MONDAY, 9), n=4)
    follow(service, views)  # incrementally: part of the history first
    service.appointments.cancel_appointment(
        cancelled, expected_version=None, by="sb-01", reason=None
    )
    clock.now = local(TUESDAY, 7, 55)
    version = service.appointments.get_appointment(early).version
    version = service.appointments.check_in_appointment(
        early, expected_version=version, by="sb-01"
    ).version
    service.appointments.record_attended(early, expected_version=version, by="sb-01")
    follow(service, views)

    page = appointments_of_day(views, office_id=OFFICE, day=TUESDAY)
    assert ids(page) == [str(early), str(late)]
    assert [item.status for item in page.items] == ["attended", "held"]
    assert page.items[1].version == service.appointments.get_appointment(late).version
    assert page.items[0].starts_at == local(TUESDAY, 8)
    assert "Muster" not in repr(page)  # no names in the rows
    attended = appointments_of_day(views, office_id=OFFICE, day=TUESDAY, statuses=["attended"])
    assert ids(attended) == [str(early)]
    assert ids(appointments_of_day(views, office_id=OFFICE, day=NEXT_MONDAY)) == [str(other_day)]
    assert appointments_of_day(views, office_id=OTHER, day=TUESDAY).items == []
    check_rebuild(service, views)


def test_the_day_list_pages_in_time_order_without_repeats(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer
) -> None:
    booked = [book(service, local(TUESDAY, 8 + n // 2, 30 * (n % 2)), n=n)[0] for n in range(7)]
    follow(service, views)

    seen: list[str] = []
    cursor = None
    while True:
        page = appointments_of_day(views, office_id=OFFICE, day=TUESDAY, limit=3, cursor=cursor)
        seen += ids(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [str(appointment) for appointment in booked]
    with pytest.raises(InvalidCursor):
        unconfirmed_holds(views, office_id=OFFICE, cursor=page.next_cursor or "bm9wZQ")


def test_unconfirmed_holds_show_the_mail_state_and_leave_when_confirmed_or_lapsed(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer, clock: FakeClock
) -> None:
    first, reference = book(service, local(NEXT_MONDAY, 9), n=1)
    clock.advance(minutes=1)  # the holds lapse one after the other
    bounced, _ = book(service, local(NEXT_MONDAY, 10), n=2)
    service.appointments.record_mail_bounce(bounced, mail_number=1, reason="5.1.1")
    confirmed, confirmed_reference = book(service, local(NEXT_MONDAY, 11), n=3)
    service.appointments.confirm_booking(
        confirmed_reference, service.appointments.confirmation_code(confirmed)
    )
    follow(service, views)

    holds = unconfirmed_holds(views, office_id=OFFICE)
    assert ids(holds) == [str(first), str(bounced)]
    assert [(h.mail_status, h.mail_reason) for h in holds.items] == [
        ("sent", None),
        ("bounced", "5.1.1"),
    ]
    assert holds.items[0].held_until == service.appointments.get_appointment(first).held_until
    only_bounced = unconfirmed_holds(views, office_id=OFFICE, mail_statuses=["bounced"])
    assert ids(only_bounced) == [str(bounced)]
    assert not any(h.reminder_sent for h in holds.items)

    clock.advance(hours=25)  # the reminders are due
    service.appointments.run_appointment_tick()
    follow(service, views)
    reminded = unconfirmed_holds(views, office_id=OFFICE)
    assert [(h.reminder_sent, h.reminder_status) for h in reminded.items] == [
        (True, "sent"),
        (True, "sent"),
    ]
    service.appointments.resend_confirmation(reference)
    follow(service, views)
    assert unconfirmed_holds(views, office_id=OFFICE).items[0].mail_attempts == 1

    clock.advance(hours=24)  # the holds run out
    service.appointments.run_appointment_tick()
    follow(service, views)
    assert unconfirmed_holds(views, office_id=OFFICE).items == []
    check_rebuild(service, views)


def _define_other_office(service: AkteService) -> None:
    service.appointments.define_service_point(
        office_id=OTHER,
        code=POINT,
        name="Bürgerbüro Nachbarstadt",
        rules=CalendarRules(
            slot_minutes=60,
            counters=1,
            same_day_counters=0,
            same_day_release=time(7),
            booking_horizon_days=14,
            timezone="Europe/Berlin",
            opening_hours=(Hours(2, time(8), time(10)),),
            hold_hours=48,
            reminder_hours=24,
        ),
        types=(
            AppointmentType(
                "extend-title",
                "Aufenthaltstitel verlängern",
                "extend_residence_permit",
                "extend_title",
                (),
                ("eat",),
                30,
            ),
        ),
        by="tl-91",
    )


def test_lists_and_figures_of_one_office_never_show_another(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer
) -> None:
    _define_other_office(service)
    mine, _ = book(service, local(TUESDAY, 8), n=1)
    theirs = service.appointments.book_appointment(
        office_id=OTHER,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=local(TUESDAY, 8),
        situation=STUDENT,
        person=person(1),
        proof=None,
        origin="office",
        by="sb-91",
    ).appointment_id
    follow(service, views)

    assert ids(appointments_of_day(views, office_id=OFFICE, day=TUESDAY)) == [str(mine)]
    assert ids(appointments_of_day(views, office_id=OTHER, day=TUESDAY)) == [str(theirs)]
    assert ids(unconfirmed_holds(views, office_id=OTHER)) == [str(theirs)]
    [held] = unconfirmed_holds(views, office_id=OTHER).items
    assert held.origin == "office"
    other_point = service.appointments.get_service_point(OTHER, POINT)
    now = service.clock()
    [figure] = current_figures(views, points=[other_point], now=now)
    # Their only Tuesday seats: 08:00 taken, 09:00 free.
    assert figure.next_free_slot == local(TUESDAY, 9)
    check_rebuild(service, views)


def _fill_day(service: AkteService, day: date, first_n: int) -> int:
    """Book every seat bookable now on ``day`` (one seat per slot is same-day)."""
    n = first_n
    for hour in (8, 9, 10, 11):
        for minute in (0, 30):
            book(service, local(day, hour, minute), n=n)
            n += 1
    return n


def test_the_figures_now_name_the_waitlist_and_the_next_free_slot_as_the_service_does(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer, clock: FakeClock
) -> None:
    n = 0
    # Tuesday to Thursday booked out (but for same-day seats); Friday 8 March is a public
    # holiday in Berlin (Women's Day): nothing is offered then.
    for offset in range(3):
        n = _fill_day(service, TUESDAY + timedelta(days=offset), n)
    service.appointments.join_waitlist(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        situation=STUDENT,
        person=person(900),
        proof=proof(service),
        by="public",
    )
    follow(service, views)

    point = service.appointments.get_service_point(OFFICE, POINT)
    now = service.clock()
    figures = current_figures(
        views, points=[point], now=now, holidays=service.appointments.holidays
    )
    expected = service.appointments.booking_figures(office_id=OFFICE, code=POINT)
    assert [
        (f.appointment_type, f.waiting, f.next_free_slot, f.booked_out_days) for f in figures
    ] == [(e.appointment_type, e.waiting, e.next_free_slot, e.booked_out_days) for e in expected]
    by_type = {f.appointment_type: f for f in figures}
    assert by_type["extend-title"].waiting == 1
    assert by_type["eat-pickup"].waiting == 0
    # Monday 10:00: today's 10:30 still has its same-day seat.
    assert by_type["extend-title"].next_free_slot == local(date(2024, 3, 4), 10, 30)
    clock.now = local(date(2024, 3, 4), 12)  # Monday is over: next Monday it is
    later = current_figures(
        views, points=[point], now=service.clock(), holidays=service.appointments.holidays
    )
    assert later[0].next_free_slot == local(NEXT_MONDAY, 8)
    assert (later[0].booked_out_days, later[0].booked_out_weeks) == (7, 1)
    check_rebuild(service, views)


def test_the_tick_records_the_figures_once_a_day_and_the_series_is_replayable(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer, clock: FakeClock
) -> None:
    clock.now = local(date(2024, 3, 4), 6, 30)  # before the same-day release
    assert service.appointments.run_appointment_tick().observations == 0
    clock.now = local(date(2024, 3, 4), 7, 5)
    assert service.appointments.run_appointment_tick().observations == 3  # one per type
    assert service.appointments.run_appointment_tick().observations == 0  # once a day
    n = 0
    for offset in range(3):  # Tuesday to Thursday; Friday 8 March is a holiday in Berlin
        n = _fill_day(service, TUESDAY + timedelta(days=offset), n)
    clock.now = local(TUESDAY, 13)
    service.appointments.run_appointment_tick()
    clock.now = local(date(2024, 3, 6), 7, 30)
    service.appointments.run_appointment_tick()
    follow(service, views)

    series = availability_history(views, office_id=OFFICE, appointment_type="extend-title")
    assert [(d.day, d.booked_out_days, d.next_free_slot) for d in series.items] == [
        (date(2024, 3, 4), 0, local(date(2024, 3, 4), 8)),
        (TUESDAY, 6, local(NEXT_MONDAY, 8)),
        # Wednesday morning: its same-day seats are released at 07:00.
        (date(2024, 3, 6), 0, local(date(2024, 3, 6), 8)),
    ]
    ranged = availability_history(
        views, office_id=OFFICE, from_day=TUESDAY, until_day=TUESDAY, limit=2
    )
    assert [(d.day, d.appointment_type) for d in ranged.items] == [
        (TUESDAY, "eat-pickup"),
        (TUESDAY, "extend-title"),
    ]
    assert ranged.next_cursor is not None
    rest = availability_history(
        views, office_id=OFFICE, from_day=TUESDAY, until_day=TUESDAY, cursor=ranged.next_cursor
    )
    assert [d.appointment_type for d in rest.items] == ["fiction-certificate"]
    assert availability_history(views, office_id=OTHER).items == []
    observed = service.appointments._get(
        AvailabilityObservation.id_for(OFFICE, POINT, "extend-title", TUESDAY),
        AvailabilityObservation,
    )
    assert observed is not None
    assert observed.day == TUESDAY
    check_rebuild(service, views)


def test_office_bookings_need_no_challenge_and_a_case_file_of_the_office(
    service: AkteService, mailer: RecordingMailer
) -> None:
    recorded = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=datetime(2024, 3, 5, 7, 0, tzinfo=UTC),  # 08:00 in Berlin
        situation=STUDENT,
        person=person(1),
        proof=None,
        origin="office",
        by="sb-01",
    )
    booked = service.appointments.get_appointment(recorded.appointment_id)
    assert (booked.origin, booked.status) == ("office", "held")
    assert booked.starts_at.utcoffset() == timedelta(hours=1)  # the service point's time
    with pytest.raises(InvalidValue, match="case file"):
        service.appointments.book_appointment(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type="extend-title",
            starts_at=local(TUESDAY, 9),
            situation=STUDENT,
            person=person(2),
            proof=None,
            origin="office",
            case_id=UUID(int=7),
            by="sb-01",
        )


def test_an_extended_hold_and_a_corrected_address_show_in_the_unconfirmed_holds(
    service: AkteService, views: ViewsStore, mailer: RecordingMailer, clock: FakeClock
) -> None:
    appointment, reference = book(service, local(NEXT_MONDAY, 9), n=1)
    service.appointments.record_mail_bounce(appointment, mail_number=1, reason="5.1.1")
    follow(service, views)
    assert unconfirmed_holds(views, office_id=OFFICE).items[0].mail_status == "bounced"

    service.appointments.correct_booking_email(reference, "richtig@example.org")
    service.appointments.extend_booking_hold(reference)
    follow(service, views)

    hold = unconfirmed_holds(views, office_id=OFFICE).items[0]
    extended = service.appointments.get_appointment(appointment).held_until
    assert hold.held_until == extended
    assert hold.mail_status in {"queued", "sent"}  # the new mail, not the bounced one
    assert hold.mail_reason is None
    check_rebuild(service, views)
