"""The public pages in a real browser: Debian's Chromium driven by Playwright, with a guard
that no request leaves for another host, axe-core's WCAG checks and screenshots.

Playwright's own browser downloads are never used: :func:`chromium_path` finds the
system's Chromium (``AKTE_CHROMIUM`` overrides), and without one the browser tests are
skipped, saying so, except under ``CI=true``, where that is a failure. axe-core comes
from ``axe-playwright-python``, which evaluates its bundled ``axe.min.js`` in the page
(nothing is fetched, and the page's Content-Security-Policy does not apply to scripts
evaluated through the DevTools protocol).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import (
    BrowserContext,
    ConsoleMessage,
    FilePayload,
    Page,
    Response,
    Route,
    WebError,
)

from adapters.simulation.legacy_scans import make_pdf, make_png

ROOT: Final = Path(__file__).resolve().parents[2]
SCREENSHOTS: Final = ROOT / "test-output" / "pages"
WCAG_AA_TAGS: Final = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
AXE: Final = Axe()
MAIL_SUBJECT: Final = "Ihr Termin am Montag, 7. Dezember 2026: bitte bestätigen"
"""The subject of the mail the ``mail_in_mailbox`` fixture puts into the mailbox."""


class PageOpener(Protocol):
    """The ``open_page`` fixture: a fresh guarded page of a window size and device scale."""

    def __call__(self, *, width: int = ..., height: int = ..., scale: float = ...) -> Page: ...


def chromium_path() -> str:
    """Debian's Chromium, or skip (fail under ``CI=true``) saying how to install it."""
    found = (
        os.environ.get("AKTE_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if found:
        return found
    reason = (
        "Chromium is not installed, so pages and reports are not checked in a browser; "
        "install it with: apt-get install -y chromium"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Guard:
    """Watches one page: every request to an origin not allowed is aborted and kept, and
    so are the page's script errors, console errors (a Content-Security-Policy violation
    is one) and sub-resources that failed (a stylesheet answered 404).

    The pages promise that a visitor's address reaches no third party; a test using
    :func:`guarded_page` fails at teardown if anything was kept, even if its assertions
    passed."""

    allowed: set[str]
    third_party: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def allow(self, base_url: str) -> None:
        """Another origin the test itself started (the payment stand-in)."""
        self.allowed.add(origin_of(base_url))

    def route(self, route: Route) -> None:
        url = route.request.url
        if origin_of(url) in self.allowed:
            route.continue_()
            return
        # Only the origin: the path may carry a reference (no personal data in failures).
        self.third_party.append(origin_of(url))
        route.abort("blockedbyclient")

    def console(self, message: ConsoleMessage) -> None:
        # A main document answered 4xx (a refused form) is logged as a failed load too;
        # a failed sub-resource is caught by `response` with its URL instead.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text}")

    def web_error(self, error: WebError) -> None:
        self.problems.append(f"script error: {error.error}")

    def response(self, response: Response) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            self.problems.append(f"{response.request.resource_type} answered {response.status}")

    def watch(self, context: BrowserContext) -> None:
        """Every page of ``context``, popups included."""
        context.route("**/*", self.route)
        context.on("console", self.console)
        context.on("weberror", self.web_error)
        context.on("response", self.response)

    def verdict(self) -> str | None:
        lines = []
        if self.third_party:
            lines.append(
                "a visitor's address must not reach a third party; requests to: "
                + ", ".join(sorted(set(self.third_party)))
            )
        lines.extend(self.problems)
        return "\n".join(lines) or None


def check_accessible(page: Page, name: str) -> None:
    """axe-core over the page as it is now, WCAG 2.0 and 2.1 levels A and AA; fails with
    one readable line per violation and the elements it concerns."""
    results = AXE.run(
        page,
        options={
            "runOnly": {"type": "tag", "values": list(WCAG_AA_TAGS)},
            "resultTypes": ["violations"],
        },
    )
    violations: list[dict[str, Any]] = results.response["violations"]
    if violations:
        pytest.fail(f"{name}: {len(violations)} accessibility violations\n" + _report(violations))


def _report(violations: list[dict[str, Any]]) -> str:
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"][:5]:
            target = " ".join(str(part) for part in node["target"])
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    {target}: {summary[:300]}")
        if len(violation["nodes"]) > 5:
            lines.append(f"    ... and {len(violation['nodes']) - 5} more")
    return "\n".join(lines)


def screenshot(page: Page, name: str) -> Path:
    """The whole page as a PNG at ``test-output/pages/<name>.png``, for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


FOCUS_STYLE_SCRIPT: Final = """() => {
    const element = document.activeElement;
    if (!element || element === document.body) return null;
    const style = getComputedStyle(element);
    return {
        tag: element.tagName.toLowerCase(),
        href: element.getAttribute('href'),
        id: element.id,
        text: (element.textContent || '').trim().slice(0, 60),
        outline: style.outlineStyle === 'none' ? 'none' : style.outlineWidth,
        shadow: style.boxShadow,
    };
}"""


def tab_through(page: Page, limit: int = 200) -> list[dict[str, str | None]]:
    """Presses Tab from the top of the page until focus leaves the page or comes back
    round; each focused element with its focus styles (outline width or ``none``, box
    shadow)."""
    reached: list[dict[str, str | None]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused: dict[str, str | None] | None = page.evaluate(FOCUS_STYLE_SCRIPT)
        if focused is None or (reached and focused == reached[0]):
            return reached
        reached.append(focused)
    pytest.fail(f"focus did not leave the page after {limit} presses of Tab")


def has_visible_focus(focused: dict[str, str | None]) -> bool:
    """Whether an element :data:`FOCUS_STYLE_SCRIPT` described shows its focus."""
    return focused["outline"] != "none" or focused["shadow"] != "none"


IN_DATE_FIELD_PART_SCRIPT: Final = (
    "() => document.activeElement.matches('input[type=date]:not(:focus-visible)')"
)
"""Focus on a part of a date field Chromium draws itself (its calendar button, the last
Tab stop inside the field): Chromium rings the part, which the field's computed style
cannot show, so :func:`tab_to` does not count it as unfocused."""


def tab_to(page: Page, selector: str, limit: int = 80) -> list[dict[str, str | None]]:
    """Presses Tab until the focused element matches ``selector``; fails if it never does
    or if any element focused on the way (the target included) shows no focus. What was
    focused, in order."""
    reached: list[dict[str, str | None]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        focused: dict[str, str | None] | None = page.evaluate(FOCUS_STYLE_SCRIPT)
        if focused is None:
            continue
        reached.append(focused)
        if not page.evaluate(IN_DATE_FIELD_PART_SCRIPT):
            assert has_visible_focus(focused), f"no visible focus on: {focused}"
        if page.evaluate("s => document.activeElement.matches(s)", selector):
            return reached
    pytest.fail(f"Tab did not reach {selector} in {limit} presses")


def choose_by_arrows(page: Page, name: str, value: str) -> None:
    """In the radio group ``name``, which has the focus: Space checks the focused
    option, then the arrow key moves focus and choice until ``value`` is checked."""
    checked = f"input[type=radio][name='{name}']:checked"
    page.keyboard.press("Space")
    for _ in range(page.locator(f"input[type=radio][name='{name}']").count()):
        if page.locator(checked).get_attribute("value") == value:
            break
        page.keyboard.press("ArrowDown")
    assert page.locator(checked).get_attribute("value") == value, f"{name}={value} not reached"
    focused: dict[str, str | None] | None = page.evaluate(FOCUS_STYLE_SCRIPT)
    assert focused is not None, f"{name}: focus left the radio group"
    assert has_visible_focus(focused), f"no visible focus: {focused}"


def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page is wider than the window (0: no horizontal scroll)."""
    overflow: int = page.evaluate(
        "() => document.scrollingElement.scrollWidth - document.documentElement.clientWidth"
    )
    return overflow


def document_files() -> list[FilePayload]:
    """Two documents a visitor would attach: a two-page PDF and a PNG photo, valid by their
    bytes (the contact form checks what a file is, not what it is called)."""
    return [
        {
            "name": "Reisepass.pdf",
            "mimeType": "application/pdf",
            "buffer": make_pdf(2, marker="pass"),
        },
        {"name": "Foto.png", "mimeType": "image/png", "buffer": make_png("foto")},
    ]
