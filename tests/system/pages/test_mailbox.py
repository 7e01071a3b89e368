"""The development mailbox in a real browser (German and English): the list and one mail
with its link clickable, each axe-clean. The mail is put into the mailbox directly
(``mail_in_mailbox``); the booking flow sends real ones. Screenshots:
``test-output/pages/mailbox-*.png``."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import MAIL_SUBJECT, check_accessible, screenshot

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("lang", ["de", "en"])
def test_the_mailbox_lists_the_mails_and_shows_one_with_its_link(
    page: Page, mail_in_mailbox: int, lang: str
) -> None:
    page.goto(f"/dev/mailbox?lang={lang}")

    link = page.locator(f"a[href='/dev/mailbox/{mail_in_mailbox}']")
    expect(link).to_have_text(MAIL_SUBJECT)
    check_accessible(page, f"mailbox ({lang})")
    screenshot(page, f"mailbox-list-{lang}")

    link.click()

    expect(page.get_by_role("heading", level=1)).to_have_text(MAIL_SUBJECT)
    check_accessible(page, f"mail ({lang})")
    screenshot(page, f"mailbox-mail-{lang}")
    page.locator("main a[href$='/?from=mail']").click()
    expect(page.locator(".services")).to_be_visible()
