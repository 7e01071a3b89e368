"""The guided booking done with the keyboard alone, as a person who uses no mouse does it:
Tab to reach, Space and the arrow keys to choose, typing, Enter to go on. From the start
page to the held booking, no click; every element focused on the way shows its focus,
and every page is axe-clean. The proof of work runs in the page's own script.
Screenshots: ``test-output/pages/booking-keyboard-*.png``."""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import check_accessible, choose_by_arrows, screenshot, tab_to
from tests.support.live_server import ServedApp

pytestmark = pytest.mark.browser

SUBMIT = "main form button[type=submit]"


def test_a_booking_is_made_with_the_keyboard_alone(
    page: Page, live: ServedApp, service_point: str
) -> None:
    page.goto("/")
    tab_to(page, "main a[href='/booking']")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile("/booking$"))
    check_accessible(page, "keyboard booking: what you hold")
    tab_to(page, "input[name=holds]")
    choose_by_arrows(page, "holds", "eat")
    screenshot(page, "booking-keyboard-holds")
    tab_to(page, SUBMIT)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile("/booking/purpose"))
    check_accessible(page, "keyboard booking: purpose")
    tab_to(page, "input[name=purpose]")
    choose_by_arrows(page, "purpose", "aufenthg-18b")
    tab_to(page, SUBMIT)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile("/booking/need"))
    check_accessible(page, "keyboard booking: need")
    tab_to(page, "input[name=need]")
    choose_by_arrows(page, "need", f"{service_point}:extend-title")
    tab_to(page, SUBMIT)
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile("/booking/slots"))
    check_accessible(page, "keyboard booking: slots")
    if page.locator("input[name=slot]").count() == 0:
        # Nothing free this week (a weekend, say): the link to the next free week.
        tab_to(page, "#next-free a")
        page.keyboard.press("Enter")
        expect(page.locator("input[name=slot]").first).to_be_attached()
        check_accessible(page, "keyboard booking: slots of the next free week")
    tab_to(page, "input[name=slot]")
    page.keyboard.press("Space")
    slot = page.locator("input[name=slot]:checked").get_attribute("value")
    assert slot, "Space checked no slot"
    screenshot(page, "booking-keyboard-slots")
    tab_to(page, "main form[action='/booking/details'] button[type=submit]")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile("/booking/details"))
    check_accessible(page, "keyboard booking: details")
    email = "keyboard.only@example.org"
    for field, typed in (
        ("#surname", "Tastatur"),
        ("#given_names", "Kerem"),
        # Day and month alike: the field's segments come in the browser's own order.
        ("#date_of_birth", "07071991"),
        ("#email", email),
        ("#email_again", email),
    ):
        tab_to(page, field)
        page.keyboard.type(typed)
    expect(page.locator("#surname")).to_have_value("Tastatur")
    expect(page.locator("#date_of_birth")).to_have_value("1991-07-07")
    expect(page.locator("#email_again")).to_have_value(email)
    tab_to(page, "#booking-form button[type=submit]")
    # The proof-of-work script fills the nonce while the person types.
    expect(page.locator("#booking-form input[name=nonce]")).not_to_have_value("")
    screenshot(page, "booking-keyboard-details")
    page.keyboard.press("Enter")

    expect(page).to_have_url(re.compile("/booking/status/"))
    expect(page.locator("#state")).to_have_attribute("data-state", "held")
    reference = page.url.rsplit("/", 1)[-1].split("?")[0]
    booking = live.service.appointments.booking_status(reference)
    assert booking.status == "held"
    assert booking.appointment is not None
    assert booking.appointment.appointment_type == "extend-title"
    assert booking.appointment.starts_at == datetime.fromisoformat(slot)
    assert booking.appointment.person.email == email
    check_accessible(page, "keyboard booking: status, held")
    screenshot(page, "booking-keyboard-status-held")
    # The status page goes on by keyboard too: its first form's code field is reachable.
    tab_to(page, "#code")
