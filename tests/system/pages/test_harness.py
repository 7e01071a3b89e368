"""The browser harness catches what it promises to: a request to another host, a Content-
Security-Policy violation, a missing stylesheet and an axe violation each fail a test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext
from playwright.sync_api import Error as PlaywrightError

from tests.support.browser import Guard, check_accessible, origin_of
from tests.support.live_server import ServedApp

pytestmark = pytest.mark.browser


@pytest.fixture
def context(browser: Browser, live: ServedApp) -> Iterator[BrowserContext]:
    """A context of its own, not the guarded ``page``: these pages are meant to fail."""
    opened = browser.new_context(base_url=live.base_url)
    try:
        yield opened
    finally:
        opened.close()


def test_a_request_to_another_host_is_aborted_and_recorded(
    context: BrowserContext, live: ServedApp
) -> None:
    guard = Guard(allowed={origin_of(live.base_url)})
    guard.watch(context)
    page = context.new_page()

    # A navigation: the pages' Content-Security-Policy stops fetches and images from
    # other hosts before they are sent, but not a link followed.
    with pytest.raises(PlaywrightError, match="ERR_BLOCKED_BY_CLIENT"):
        page.goto("http://cdn.example.org/font.woff2?visitor=1")

    assert guard.third_party == ["http://cdn.example.org"]
    verdict = guard.verdict()
    assert verdict is not None
    assert "must not reach a third party" in verdict
    assert "visitor=1" not in verdict


def test_an_allowed_origin_passes_and_a_clean_page_has_no_verdict(
    context: BrowserContext, live: ServedApp
) -> None:
    guard = Guard(allowed={origin_of(live.base_url)})
    guard.watch(context)

    context.new_page().goto("/")

    assert guard.verdict() is None


def test_a_csp_violation_and_a_missing_stylesheet_are_problems(
    context: BrowserContext, live: ServedApp
) -> None:
    guard = Guard(allowed={origin_of(live.base_url)})
    guard.watch(context)
    page = context.new_page()
    page.goto("/")

    # An inline style attribute (refused by the pages' policy) and a stylesheet Akte
    # does not have.
    page.evaluate(
        "() => { document.body.setAttribute('style', 'color: red');"
        " const l = document.createElement('link'); l.rel = 'stylesheet';"
        " l.href = '/static/missing.css'; document.head.append(l);"
        " return new Promise(r => { l.onerror = r; l.onload = r; }); }"
    )

    problems = "\n".join(guard.problems)
    assert "Content Security Policy" in problems
    assert "stylesheet answered 404" in problems


def test_check_accessible_fails_with_the_violations_listed(context: BrowserContext) -> None:
    page = context.new_page()
    page.set_content(
        "<!doctype html><html><head><title>t</title></head>"
        "<body><main><img src='data:image/gif;base64,R0lGODlhAQABAAAAACw='>"
        "<input type='text'></main></body></html>"
    )

    with pytest.raises(pytest.fail.Exception) as failed:
        check_accessible(page, "a bad page")

    message = str(failed.value)
    assert "a bad page" in message
    assert "image-alt" in message
    assert "label" in message
    assert "html-has-lang" in message
