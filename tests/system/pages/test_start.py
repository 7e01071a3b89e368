"""The start page in a real browser, in each of its five languages: axe-core finds no
WCAG 2.1 A/AA violation, Arabic runs right to left, everything is reachable by keyboard
with a visible focus, it reflows at 320 px and at 200 % zoom, and the language switch
works and is remembered. Screenshots: ``test-output/pages/start-*.png``."""

from __future__ import annotations

from typing import Final

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import (
    PageOpener,
    check_accessible,
    horizontal_overflow,
    screenshot,
    tab_through,
)

pytestmark = pytest.mark.browser

LANGUAGES: Final = ("de", "en", "uk", "ar", "tr")
DESKTOP_WIDTH: Final = 1280
ENGLISH_HEADING: Final = "Online services of the foreigners' office"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_start_page_is_accessible_in_each_language(page: Page, lang: str) -> None:
    page.goto(f"/?lang={lang}")

    html = page.locator("html")
    expect(html).to_have_attribute("lang", lang)
    expect(html).to_have_attribute("dir", "rtl" if lang == "ar" else "ltr")
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_be_visible()
    if lang != "en":
        # Translated, not the English message id shown for a missing translation.
        expect(heading).not_to_have_text(ENGLISH_HEADING)
    for path in ("/booking", "/contact", "/declaration"):
        expect(page.locator(f"main a[href='{path}']")).to_be_visible()
    check_accessible(page, f"start page ({lang})")
    screenshot(page, f"start-{lang}")


def test_the_arabic_start_page_is_mirrored(page: Page) -> None:
    page.goto("/?lang=ar")

    # The services' accent bar is on the start side: the right in Arabic.
    border = page.locator(".service").first.evaluate(
        "e => [getComputedStyle(e).borderRightWidth, getComputedStyle(e).borderLeftWidth]"
    )
    assert border == ["5px", "0px"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_keyboard_reaches_the_skip_link_first_then_every_link_visibly(
    page: Page, lang: str
) -> None:
    page.goto(f"/?lang={lang}")
    links = page.eval_on_selector_all("a[href]", "links => links.map(a => a.getAttribute('href'))")

    reached = tab_through(page)

    assert reached, "Tab focused nothing"
    assert reached[0]["href"] == "#main", f"first focus: {reached[0]}"
    assert [element["href"] for element in reached] == links
    unfocused = [e for e in reached if e["outline"] == "none" and e["shadow"] == "none"]
    assert not unfocused, f"no visible focus on: {unfocused}"


def test_the_skip_link_shows_on_focus_and_moves_focus_to_the_content(page: Page) -> None:
    page.goto("/")
    skip = page.locator(".skip-link")

    page.keyboard.press("Tab")
    box = skip.bounding_box()
    assert box is not None
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= DESKTOP_WIDTH
    page.keyboard.press("Enter")

    assert page.evaluate("document.activeElement.id") == "main"
    assert page.url.endswith("#main")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_start_page_reflows_at_320_css_pixels(open_page: PageOpener, lang: str) -> None:
    page = open_page(width=320, height=640)
    page.goto(f"/?lang={lang}")

    assert page.evaluate("document.scrollingElement.scrollWidth") <= 320
    assert horizontal_overflow(page) == 0
    screenshot(page, f"start-320px-{lang}")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_start_page_works_at_200_percent_zoom(open_page: PageOpener, lang: str) -> None:
    # Browser zoom doubles the device pixels per CSS pixel: a 1280 x 900 window at 200 %
    # lays out as 640 x 450 CSS pixels at device scale 2, media queries and all. (CSS
    # `zoom` would not do: layout width and media queries stay as at 100 %.)
    page = open_page(width=640, height=450, scale=2)
    page.goto(f"/?lang={lang}")

    assert page.evaluate("window.devicePixelRatio") == 2
    assert horizontal_overflow(page) == 0
    boxes = page.eval_on_selector_all(
        "a[href]:not(.skip-link)",
        "links => links.map(a => { const r = a.getBoundingClientRect();"
        " return [r.left, r.right, r.width]; })",
    )
    assert boxes
    assert all(left >= 0 and right <= 640 and width > 0 for left, right, width in boxes)
    screenshot(page, f"start-200pct-{lang}")


def test_the_language_switch_changes_the_language_and_remembers_it(page: Page) -> None:
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "de")
    switch = page.get_by_role("navigation", name="Sprache")

    switch.get_by_role("link", name="English").click()

    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert "lang=en" in page.url
    english_switch = page.get_by_role("navigation", name="Language")
    expect(english_switch.locator("[aria-current]")).to_have_text("English")
    expect(english_switch.get_by_role("link", name="English")).to_have_count(0)
    # Remembered: the same address without ?lang= stays English.
    page.goto("/")
    expect(page.locator("html")).to_have_attribute("lang", "en")

    english_switch.get_by_role("link", name="العربية").click()

    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
