"""A freed seat offered to a person on the waitlist, in a real browser (German and Arabic):
the demo's family-reunion desk is booked out, so the pages offer the waitlist; a person
joins it; a booked person cancels; the appointments' tick runs; the waiting person's
status page then shows the seat offered and held for them, and the development mailbox
holds the offer. Screenshots: ``test-output/pages/booking-waitlist-*.png``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

import pytest
from playwright.sync_api import Page, expect

from adapters.http.pages.translations import translations_for
from adapters.settings import Settings
from adapters.simulation.demo_appointments import BOOKED_OUT_TYPE, FAMILY_POINT, DemoAppointments
from domain.appointments import Appointment
from service_appointments import MAX_SLOT_DAYS
from tests.support.browser import check_accessible, screenshot
from tests.support.live_server import ServedApp

pytestmark = pytest.mark.browser

LANGUAGES: Final = ("de", "ar")
OFFER_SUBJECT: Final = {
    "de": "Bitte bestätigen Sie Ihren Termin",
    "ar": "Please confirm your appointment",
}
"""The offer is a confirmation mail in the language the person joined in: German, else
English (mails are written in those two)."""
OFFER_OPENING: Final = {
    "de": "für Sie ist ein Platz auf der Warteliste frei geworden.",
    "ar": "A place has become free for you from the waiting list.",
}


def a_confirmed_booking(live: ServedApp, office_id: str) -> Appointment:
    """One of the fictitious people's confirmed bookings at the booked-out desk, not of
    today (a seat of today may have begun already: a seat in the past is offered to
    nobody)."""
    appointments = live.service.appointments
    point = appointments.get_service_point(office_id, FAMILY_POINT)
    today = point.local(live.service.clock()).date()
    for offset in range(1, MAX_SLOT_DAYS):
        for appointment in appointments.appointments_of_day(
            office_id=office_id, code=FAMILY_POINT, day=today + timedelta(days=offset)
        ):
            if appointment.status == "confirmed":
                return appointment
    pytest.fail("the demo's family-reunion desk has no confirmed booking left")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_freed_seat_is_offered_to_the_person_on_the_waitlist(
    page: Page,
    live: ServedApp,
    pages_settings: Settings,
    demo_desks: DemoAppointments,
    lang: str,
) -> None:
    gettext = translations_for(lang).gettext
    page.goto(f"/booking?lang={lang}")
    page.locator("input[name=holds][value=visa]").check()
    page.locator("main form button[type=submit]").click()
    if "/booking/purpose" in page.url:
        page.locator("input[name=purpose][value=other]").check()
        page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile("/booking/need"))
    page.locator(f"input[name=need][value='{FAMILY_POINT}:{demo_desks.booked_out_type}']").check()
    page.locator("main form button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/slots"))
    booked_out = page.locator("#booked-out")
    expect(booked_out).to_be_visible()
    expect(page.locator("input[name=slot]")).to_have_count(0)
    check_accessible(page, f"booking: booked out ({lang})")
    screenshot(page, f"booking-waitlist-booked-out-{lang}")
    booked_out.locator("button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/waitlist"))
    check_accessible(page, f"booking: join the waitlist ({lang})")
    screenshot(page, f"booking-waitlist-details-{lang}")
    email = f"warteliste.{lang}@example.org"
    page.locator("#surname").fill("Haddad")
    page.locator("#given_names").fill(f"Samira {lang}")
    page.locator("#date_of_birth").fill("1988-02-29")
    page.locator("#email").fill(email)
    page.locator("#email_again").fill(email)
    expect(page.locator("#booking-form input[name=nonce]")).not_to_have_value("")
    page.locator("#booking-form button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/status/"))
    state = page.locator("#state")
    expect(state).to_have_attribute("data-state", "waiting")
    # The only one waiting: first in line.
    expect(page.locator("main")).to_contain_text(
        gettext("Your place in the line: %(position)s.") % {"position": 1}
    )
    reference = page.url.rsplit("/", 1)[-1].split("?")[0]
    assert live.service.appointments.booking_status(reference).status == "waiting"
    check_accessible(page, f"booking status, waiting ({lang})")
    screenshot(page, f"booking-waitlist-waiting-{lang}")

    # A booked person cancels (as their status page's cancel button does); the tick, which
    # a worker runs every minute, offers freed seats that are still free.
    freed = a_confirmed_booking(live, pages_settings.default_office_id)
    live.service.appointments.cancel_appointment(
        freed.id, expected_version=None, by="public", cancelled_by="person", reason=None
    )
    live.service.appointments.run_appointment_tick()
    page.reload()

    expect(state).to_have_attribute("data-state", "offered")
    expect(page.locator("main")).to_contain_text(
        gettext(
            "A place has become free for you from the waiting list. It is held for you "
            "until you confirm it."
        )
    )
    expect(page.locator("#code")).to_be_visible()
    offered = live.service.appointments.booking_status(reference)
    assert offered.appointment is not None
    assert offered.appointment.status == "held"
    assert offered.appointment.origin == "waitlist"
    assert offered.appointment.slot_id == freed.slot_id
    assert offered.appointment.appointment_type == BOOKED_OUT_TYPE
    check_accessible(page, f"booking status, offered ({lang})")
    screenshot(page, f"booking-waitlist-offered-{lang}")

    page.goto(f"/dev/mailbox?lang={lang}")
    to_this_person = page.locator("main tbody tr").filter(has_text=email)
    expect(to_this_person).to_have_count(1)
    expect(to_this_person).to_contain_text(OFFER_SUBJECT[lang])
    to_this_person.get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(OFFER_SUBJECT[lang])
    expect(page.locator("main")).to_contain_text(OFFER_OPENING[lang])
    expect(page.locator("main a[href*='/booking/confirm/']")).to_have_count(1)
    check_accessible(page, f"offer mail ({lang})")
    screenshot(page, f"booking-waitlist-offer-mail-{lang}")
