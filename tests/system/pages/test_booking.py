"""The guided booking and its status page in a real browser (German and Arabic): every
step axe-clean, only the appointment types that fit what the person holds offered, the
booking held until confirmed, confirmed through the link of the mail in the development
mailbox, and the status page then saying so. Screenshots:
``test-output/pages/booking-*.png``."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import check_accessible, screenshot
from tests.support.live_server import ServedApp

pytestmark = pytest.mark.browser

LANGUAGES = ("de", "ar")


def choose_first(page: Page, name: str) -> str:
    choice = page.locator(f"input[name={name}]").first
    choice.check()
    return choice.get_attribute("value") or ""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_residence_card_holder_books_the_right_type_and_confirms_by_mail(
    page: Page, live: ServedApp, service_point: str, lang: str
) -> None:
    page.goto(f"/booking?lang={lang}")
    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("html")).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    check_accessible(page, f"booking: what you hold ({lang})")
    screenshot(page, f"booking-holds-{lang}")
    page.locator("input[name=holds][value=eat]").check()
    page.locator("main form button[type=submit]").click()

    if "/booking/purpose" in page.url:
        check_accessible(page, f"booking: purpose ({lang})")
        screenshot(page, f"booking-purpose-{lang}")
        page.locator("input[name=purpose][value='aufenthg-18b']").check()
        page.locator("main form button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/need"))
    needs = page.locator("input[name=need]")
    offered = [needs.nth(i).get_attribute("value") for i in range(needs.count())]
    # What fits a residence card held for work; never the Fiktionsbescheinigung's type.
    assert f"{service_point}:extend-title" in offered
    assert f"{service_point}:fiction-certificate" not in offered
    check_accessible(page, f"booking: need ({lang})")
    screenshot(page, f"booking-need-{lang}")
    page.locator(f"input[name=need][value='{service_point}:extend-title']").check()
    page.locator("main form button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/slots"))
    check_accessible(page, f"booking: slots ({lang})")
    screenshot(page, f"booking-slots-{lang}")
    if page.locator("input[name=slot]").count() == 0:
        # Nothing free this week (a weekend, say): the page links the next free day.
        page.locator("#next-free a").click()
        check_accessible(page, f"booking: slots of the next free week ({lang})")
    choose_first(page, "slot")
    page.locator("main form[action='/booking/details'] button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/details"))
    check_accessible(page, f"booking: details ({lang})")
    screenshot(page, f"booking-details-{lang}")
    email = f"ayse.{lang}@example.org"
    page.locator("#surname").fill("Yılmaz")
    page.locator("#given_names").fill(f"Ayşe {lang}")
    page.locator("#date_of_birth").fill("1991-07-14")
    page.locator("#email").fill(email)
    page.locator("#email_again").fill(email)
    # The proof-of-work script fills the nonce while the person types.
    expect(page.locator("#booking-form input[name=nonce]")).not_to_have_value("")
    page.locator("#booking-form button[type=submit]").click()

    expect(page).to_have_url(re.compile("/booking/status/"))
    status_url = page.url
    reference = status_url.rsplit("/", 1)[-1].split("?")[0]
    booking = live.service.appointments.booking_status(reference)
    assert booking.appointment is not None
    assert booking.appointment.appointment_type == "extend-title"
    assert booking.status == "held"
    check_accessible(page, f"booking status, held ({lang})")
    screenshot(page, f"booking-status-held-{lang}")

    # The confirmation mail, in the development mailbox, and its one-click link.
    page.goto(f"/dev/mailbox?lang={lang}")
    page.locator("main table a").first.click()
    page.locator("main a[href*='/booking/confirm/']").first.click()
    expect(page).to_have_url(re.compile("/booking/confirm/"))
    check_accessible(page, f"booking confirm ({lang})")
    screenshot(page, f"booking-confirm-{lang}")
    page.locator("main form button[type=submit]").click()

    page.goto(status_url)
    assert live.service.appointments.booking_status(reference).status == "confirmed"
    check_accessible(page, f"booking status, confirmed ({lang})")
    screenshot(page, f"booking-status-confirmed-{lang}")
