"""The commitment declaration pages in a real browser (German and English, the languages
of these pages): the form, the form refused, and a declaration sent, paid on the
stand-in payment platform's page and shown as paid on the return and status pages, each
axe-clean. The stand-in's own page is a development tool, not checked by axe.
Screenshots: ``test-output/pages/declaration-*.png``."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from adapters.payment.stand_in import StandInServer
from tests.support.browser import Guard, check_accessible, screenshot
from tests.support.live_server import ServedApp

pytestmark = pytest.mark.browser

LANGUAGES = ("de", "en")


def fill_in(page: Page) -> None:
    arrival = date.today() + timedelta(days=60)
    values = {
        "guarantor_surname": "Demir",
        "guarantor_given_names": "Mehmet",
        "guarantor_date_of_birth": "1975-04-12",
        "guarantor_address": "Hauptstraße 12, 12345 Musterstadt",
        "guarantor_nationality": "DEU",
        "guarantor_id_document_number": "L01X00T47",
        "visitor_surname": "Demir",
        "visitor_given_names": "Ayşe",
        "visitor_date_of_birth": "1950-09-30",
        "visitor_nationality": "TUR",
        "visitor_passport_number": "U12345678",
        "stay_from": arrival.isoformat(),
        "stay_until": (arrival + timedelta(days=21)).isoformat(),
        "monthly_net_income": "3200",
    }
    for name, value in values.items():
        page.locator(f"#{name}").fill(value)
    page.locator("input[name=purpose][value=family_visit]").check()
    page.locator("input[name=method][value=visa]").check()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_declaration_form_is_accessible(page: Page, lang: str) -> None:
    page.goto(f"/declaration?lang={lang}")

    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    check_accessible(page, f"declaration form ({lang})")
    screenshot(page, f"declaration-form-{lang}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_refused_declaration_keeps_what_was_typed(page: Page, lang: str) -> None:
    page.goto(f"/declaration?lang={lang}")
    page.locator("#guarantor_surname").fill("Demir")

    page.locator("main form button[type=submit]").click()

    expect(page.locator("#error-summary")).to_be_visible()
    expect(page.locator("#error-summary a[href='#guarantor_given_names']")).to_have_count(1)
    expect(page.locator("#guarantor_given_names-error")).to_be_visible()
    expect(page.locator("#guarantor_surname")).to_have_value("Demir")
    check_accessible(page, f"declaration refused ({lang})")
    screenshot(page, f"declaration-refused-{lang}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_a_declaration_is_sent_paid_and_shown_as_paid(
    page: Page, guard: Guard, stand_in: StandInServer, live: ServedApp, lang: str
) -> None:
    guard.allow(stand_in.base_url)
    page.goto(f"/declaration?lang={lang}")
    fill_in(page)

    page.locator("main form button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(stand_in.base_url) + "/pay/"))
    page.get_by_role("button", name="Pay", exact=True).click()

    # Back at Akte, which knows the outcome from the platform's signed notification.
    expect(page).to_have_url(re.compile(re.escape(live.base_url) + "/declaration/return"))
    expect(page.locator(".notice--success")).to_be_visible()
    check_accessible(page, f"declaration paid ({lang})")
    screenshot(page, f"declaration-paid-{lang}")

    page.locator("#status-link").click()

    expect(page).to_have_url(re.compile("/declaration/status/"))
    reference = page.url.rsplit("/", 1)[-1].split("?")[0]
    declaration = live.service.declarations.get_declaration(
        live.service.declarations.find_declaration_by_reference(reference)
    )
    assert declaration.fee_status == "paid"
    check_accessible(page, f"declaration status ({lang})")
    screenshot(page, f"declaration-status-{lang}")
