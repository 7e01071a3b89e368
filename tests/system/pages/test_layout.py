"""Every public page's first view reflows: no horizontal scroll at 320 CSS pixels (WCAG
1.4.10) nor at 200 % zoom (1.4.4; a 1280 px window at 200 % lays out as 640 CSS pixels
at device scale 2), in a left-to-right and the right-to-left language each offers.
Screenshots: ``test-output/pages/layout-*.png``. (The start page has its own tests.)"""

from __future__ import annotations

import pytest

from tests.support.browser import PageOpener, horizontal_overflow, screenshot

pytestmark = pytest.mark.browser

PAGES = (
    ("contact", "/contact?lang=de"),
    ("contact-ar", "/contact?lang=ar"),
    ("declaration", "/declaration?lang=de"),
    ("mailbox", "/dev/mailbox?lang=de"),
    ("booking", "/booking?lang=de"),
    ("booking-ar", "/booking?lang=ar"),
)
WINDOWS = (("320px", 320, 640, 1), ("200pct", 640, 450, 2))


@pytest.mark.parametrize(
    ("window", "width", "height", "scale"), WINDOWS, ids=[w[0] for w in WINDOWS]
)
@pytest.mark.parametrize(("name", "path"), PAGES, ids=[p[0] for p in PAGES])
@pytest.mark.usefixtures("mail_in_mailbox")  # the mailbox lists it in a table
def test_a_page_reflows_without_horizontal_scrolling(
    open_page: PageOpener, name: str, path: str, window: str, width: int, height: int, scale: int
) -> None:
    page = open_page(width=width, height=height, scale=scale)
    page.goto(path)

    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
    assert horizontal_overflow(page) == 0
    screenshot(page, f"layout-{name}-{window}")
