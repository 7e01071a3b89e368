"""The shared form parts (``templates/_form.html.j2``) with the pages' stylesheet, in a real
browser: a form with an error summary, a field in error, radios in error and an optional
text area passes axe-core's WCAG 2.1 A/AA checks in German and Arabic, every control shows
its focus, the summary's links lead to their fields, and nothing is wider than 320 px.
Screenshots: ``test-output/pages/form-parts-*.png``."""

from __future__ import annotations

from typing import Final

import pytest
from playwright.sync_api import Page, expect

from adapters.http.pages.languages import LANGUAGES
from adapters.http.pages.rendering import environment
from tests.support.browser import (
    PageOpener,
    check_accessible,
    horizontal_overflow,
    screenshot,
    tab_through,
)

pytestmark = pytest.mark.browser

FORM: Final = """{% import "_form.html.j2" as form %}
<!doctype html>
<html lang="{{ language.code }}" dir="{{ language.direction }}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Form parts</title><link rel="stylesheet" href="/static/akte.css"></head>
<body><main id="main">
<h1>Form parts</h1>
{{ form.error_summary(errors) }}
<form method="post" action="/" novalidate>
{{ form.input("surname", "Surname", value="Musterfrau", hint="As in your passport",
              errors=errors, autocomplete="family-name") }}
{{ form.input("email", "E-mail address", type="email", hint="For the confirmation",
              autocomplete="email") }}
{{ form.radios("kind", "What do you need?", [("card", "Collect a residence card", None),
               ("permit", "Apply for a residence permit", "Bring your passport")],
               errors=errors) }}
{{ form.textarea("message", "Message", required=False, maxlength=2000) }}
<button type="submit">Send</button>
</form>
</main></body></html>"""
ERRORS: Final = {"surname": "Enter your surname", "kind": "Choose what you need"}


def show_form(page: Page, lang: str) -> None:
    html = environment(lang).from_string(FORM).render(language=LANGUAGES[lang], errors=ERRORS)
    # Served by Akte's origin, so the stylesheet and the pages' rules apply as on a page.
    page.goto("/")
    page.set_content(html)


@pytest.mark.parametrize("lang", ["de", "ar"])
def test_a_form_in_error_is_accessible(page: Page, lang: str) -> None:
    show_form(page, lang)

    expect(page.locator("#surname")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("textbox", name="Surname")).to_have_value("Musterfrau")
    check_accessible(page, f"form parts ({lang})")
    screenshot(page, f"form-parts-{lang}")


def test_every_control_of_a_form_shows_its_focus(page: Page) -> None:
    show_form(page, "de")

    reached = tab_through(page)

    tags = [element["tag"] for element in reached]
    # Summary links, two inputs, the radio group (one stop), the text area, the button.
    assert tags == ["a", "a", "input", "input", "input", "textarea", "button"]
    unfocused = [e for e in reached if e["outline"] == "none" and e["shadow"] == "none"]
    assert not unfocused, f"no visible focus on: {unfocused}"


def test_the_error_summary_links_lead_to_their_fields(page: Page) -> None:
    show_form(page, "de")

    page.get_by_role("link", name="Choose what you need").click()

    assert page.url.endswith("#kind")
    expect(page.locator("#kind")).to_be_in_viewport()


@pytest.mark.parametrize("lang", ["de", "ar"])
def test_a_form_reflows_at_320_css_pixels(open_page: PageOpener, lang: str) -> None:
    page = open_page(width=320, height=640)
    show_form(page, lang)

    assert horizontal_overflow(page) == 0
    screenshot(page, f"form-parts-320px-{lang}")
