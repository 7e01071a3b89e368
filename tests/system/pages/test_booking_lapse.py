"""A booking left unconfirmed, in a real browser (German and Arabic): its status page says
it is held, then, after the appointments' tick ran at the reminder time, that a reminder
went out, and after the tick ran past the end of the hold, that the booking lapsed; the
development mailbox holds the reminder and the lapse notice. Time is driven as
``akte appointments tick --now`` drives it (the ``tick_at`` fixture), not patched.
Screenshots: ``test-output/pages/booking-lapse-*.png``."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Final

import pytest
from playwright.sync_api import Page, expect

from adapters.http.pages.translations import translations_for
from domain.appointments import Person, Situation
from service_appointment_texts import MailFacts, compose_text
from service_appointments import MAX_SLOT_DAYS
from service_common import PUBLIC_APPLICANT
from tests.support.appointments import OFFICE, proof
from tests.support.browser import check_accessible, screenshot
from tests.support.live_server import ServedApp
from tests.system.pages.conftest import TickAt

pytestmark = pytest.mark.browser

LANGUAGES = ("de", "ar")
AFTER: Final = timedelta(minutes=1)


def subject(kind: str, language: str) -> str:
    """The subject of the booking's mail of ``kind`` in ``language`` (the mail's own)."""
    facts = MailFacts("", "", "", "", "", "", None, offered_from_waitlist=False)
    return compose_text(kind, language, facts).subject


def book_without_confirming(live: ServedApp, point: str, lang: str) -> str:
    """A booking as the pages make it (a solved challenge, the page's language) at the
    first free time; its reference."""
    appointments = live.service.appointments
    found = appointments.get_service_point(OFFICE, point)
    now = live.service.clock()
    days = appointments.availability(
        found, from_day=found.local(now).date(), days=MAX_SLOT_DAYS, now=now
    )
    starts_at = next(start for day in days for start, free in day.slots if free)
    recorded = appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=point,
        appointment_type="extend-title",
        starts_at=starts_at,
        situation=Situation("eat", "aufenthg-18b", "extend_residence_permit"),
        person=Person("Unbestätigt", f"Lena {lang}", date(1990, 3, 3), lapse_email(lang)),
        proof=proof(live.service),
        language=lang,
        by=PUBLIC_APPLICANT,
    )
    assert recorded.reference is not None
    return recorded.reference


def lapse_email(lang: str) -> str:
    return f"lapse.{lang}@example.org"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_an_unconfirmed_booking_is_reminded_then_lapses(
    page: Page, live: ServedApp, service_point: str, tick_at: TickAt, lang: str
) -> None:
    gettext = translations_for(lang).gettext
    reference = book_without_confirming(live, service_point, lang)
    held = live.service.appointments.booking_status(reference).appointment
    assert held is not None
    status_url = f"/booking/status/{reference}?lang={lang}"
    state = page.locator("#state")
    mails = page.locator("main table tbody tr")

    page.goto(status_url)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    expect(state).to_have_attribute("data-state", "held")
    expect(mails).to_have_count(1)
    expect(mails.first).to_contain_text(gettext("Confirmation mail"))
    expect(page.locator("main")).not_to_contain_text(
        gettext("We have sent you a reminder, because the time to confirm runs out soon.")
    )
    check_accessible(page, f"booking status, held ({lang})")
    screenshot(page, f"booking-lapse-held-{lang}")

    tick_at(held.reminder_at + AFTER)
    page.reload()

    expect(state).to_have_attribute("data-state", "held")
    expect(page.locator("main")).to_contain_text(
        gettext("We have sent you a reminder, because the time to confirm runs out soon.")
    )
    # Newest first: the reminder above the confirmation mail, both sent.
    expect(mails).to_have_count(2)
    expect(mails.nth(0)).to_contain_text(gettext("Reminder mail"))
    expect(mails.nth(0)).to_contain_text(gettext("sent"))
    expect(mails.nth(1)).to_contain_text(gettext("Confirmation mail"))
    check_accessible(page, f"booking status, reminded ({lang})")
    screenshot(page, f"booking-lapse-reminded-{lang}")

    tick_at(held.held_until + AFTER)
    page.reload()

    expect(state).to_have_attribute("data-state", "lapsed")
    expect(state).to_contain_text(gettext("The booking has lapsed: it was not confirmed in time."))
    expect(mails).to_have_count(3)
    expect(mails.nth(0)).to_contain_text(gettext("Notice that the booking lapsed"))
    expect(mails.nth(1)).to_contain_text(gettext("Reminder mail"))
    # Nothing left to do on the page but book again.
    expect(page.locator("#code")).to_have_count(0)
    expect(page.locator("#cancel")).to_have_count(0)
    expect(page.locator("main a[href='/booking']")).to_be_visible()
    assert live.service.appointments.booking_status(reference).status == "lapsed"
    check_accessible(page, f"booking status, lapsed ({lang})")
    screenshot(page, f"booking-lapse-lapsed-{lang}")

    # The development mailbox: the three mails to this address, newest first.
    page.goto(f"/dev/mailbox?lang={lang}")
    to_this_person = page.locator("main tbody tr").filter(has_text=lapse_email(lang))
    expect(to_this_person).to_have_count(3)
    expect(to_this_person.nth(0)).to_contain_text(subject("lapse_notice", lang))
    expect(to_this_person.nth(1)).to_contain_text(subject("reminder", lang))
    expect(to_this_person.nth(2)).to_contain_text(subject("confirmation", lang))
    check_accessible(page, f"mailbox with reminder and lapse notice ({lang})")
    screenshot(page, f"booking-lapse-mailbox-{lang}")

    to_this_person.nth(1).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(subject("reminder", lang))
    # The reminder leads to the one-click confirmation, now of a lapsed booking.
    expect(page.locator("main a[href*='/booking/confirm/']")).to_have_count(1)
    check_accessible(page, f"reminder mail ({lang})")
    screenshot(page, f"booking-lapse-reminder-mail-{lang}")
