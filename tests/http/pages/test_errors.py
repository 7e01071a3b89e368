"""Errors on the public pages are pages: in the visitor's language, with the status and
headers of the problem they replace and a link back; the API's errors stay problems."""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Final

import httpx2 as httpx
import pytest
from babel.dates import format_timedelta
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.datastructures import Headers

from adapters.bootstrap import build_app, build_service
from adapters.http.pages import errors
from adapters.http.pages.errors import PageArea, area_of, error_kind, prefers_html
from adapters.http.pages.site import PAGE_AREAS, page_paths
from adapters.http.pages.translations import translations_for
from adapters.settings import Settings
from service import AkteService
from service_common import StoreUnavailable
from tests.http.pages.test_contact import FIELDS, LIMITS, NO_FILE

PROBLEM: Final = "application/problem+json"
BROWSER_ACCEPT: Final = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
RECEIPT: Final = "KF-00000-00000-00000-00000"
"""Well formed, never given."""
PAGE_LIMIT: Final = (
    LIMITS["contact_form_max_total_bytes"] + LIMITS["contact_form_max_file_bytes"] + 65_536
)
"""The contact page's body limit under :data:`LIMITS`: files, one file more, the fields."""

_addresses = itertools.count(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, AkteService]]:
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path_factory.mktemp("page-errors") / "data",
        rate_limit_contact_form="2/minute",
        rate_limit_lookups="2/minute",
        **LIMITS,  # type: ignore[arg-type]
    )
    service = build_service(settings)
    try:
        yield build_app(settings, service), service
    finally:
        service.close()


@pytest.fixture
def visitor(site: tuple[FastAPI, AkteService]) -> TestClient:
    """A client of an address of its own: the rates count per address."""
    return TestClient(site[0], client=(f"192.0.2.{next(_addresses)}", 40000))


def _main(response: httpx.Response) -> str:
    found = re.search(r"<main\b[^>]*>(.*)</main>", response.text, re.DOTALL)
    assert found is not None, response.text[:500]
    return html.unescape(found.group(1))


def _in(language: str, message: str, **values: object) -> str:
    text = translations_for(language).gettext(message)
    return text % values if values else text


def assert_page(response: httpx.Response, status: int, language: str, heading: str) -> str:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == language
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert response.headers["x-request-id"]
    assert f'<html lang="{language}"' in response.text
    main = _main(response)
    assert f"<h1>{_in(language, heading)}</h1>" in main
    return main


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["type"].endswith("/" + code)


# ----------------------------------------------------------------------- page paths


def test_every_page_route_lies_in_an_area() -> None:
    outside = sorted(path for path in page_paths() if area_of(PAGE_AREAS, path) is None)

    assert outside == []


@pytest.mark.parametrize(
    ("path", "prefix"),
    [
        ("/", "/"),
        ("/contact", "/contact"),
        ("/contact/receipt/x/y", "/contact"),
        ("/booking/status/abc/cancel", "/booking"),
        ("/declaration/nowhere", "/declaration"),
        ("/dev/mailbox/7", "/dev/mailbox"),
        ("/contact-form", None),
        ("/contact-submissions/x", None),
        ("/commitment-declarations/own", None),
        ("/appointments/bookings", None),
        ("/nowhere", None),
        ("/static/akte.css", None),
    ],
)
def test_a_path_is_a_page_path_by_its_areas_prefix_segment_by_segment(
    path: str, prefix: str | None
) -> None:
    area = area_of(PAGE_AREAS, path)

    assert (area.prefix if area is not None else None) == prefix


def test_the_longest_prefix_wins() -> None:
    areas = [PageArea("/a", "start", "/a", "A"), PageArea("/a/b", "contact", "/a/b", "B")]

    assert area_of(areas, "/a/b/c") == areas[1]
    assert area_of(areas, "/a/bc") == areas[0]


@pytest.mark.parametrize(
    ("accept", "html_first"),
    [
        (BROWSER_ACCEPT, True),
        ("text/html", True),
        ("application/json", False),
        ("*/*", False),
        ("", False),
        ("text/html;q=0.5, application/json", False),
        ("application/problem+json;q=0.2, text/html;q=0.9", True),
        ("text/html;q=0", False),
    ],
)
def test_html_is_preferred_only_when_named_above_json(accept: str, html_first: bool) -> None:
    assert prefers_html(Headers({"accept": accept})) is html_first


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "refused"),
        (404, "not_found"),
        (405, "refused"),
        (413, "too_large"),
        (415, "refused"),
        (429, "too_many"),
        (500, "failed"),
        (503, "unavailable"),
    ],
)
def test_each_status_has_its_kind_of_page(status: int, kind: str) -> None:
    assert error_kind(status) == kind


# ------------------------------------------------------------------ the pages shown


@pytest.mark.parametrize("language", ["uk", "ar", "en"])
def test_an_unknown_page_path_is_a_not_found_page_in_the_visitors_language(
    visitor: TestClient, language: str
) -> None:
    response = visitor.get(f"/contact/receipt/x/y?lang={language}")

    main = assert_page(response, 404, language, "This page does not exist")
    assert '<a href="/contact">' in main  # back to the page
    assert f">{_in(language, 'Write to us')}</a>" in main
    assert '<a href="/">' in main
    assert "receipt/x/y" not in main
    if language == "ar":
        assert '<html lang="ar" dir="rtl">' in response.text


def test_the_language_comes_from_the_cookie_and_the_browser_too(visitor: TestClient) -> None:
    by_browser = visitor.get("/booking/nowhere", headers={"accept-language": "tr-TR,tr;q=0.9"})
    assert_page(by_browser, 404, "tr", "This page does not exist")
    assert '<a href="/booking">' in _main(by_browser)

    visitor.cookies.set("akte_language", "uk")
    assert_page(visitor.get("/booking/nowhere"), 404, "uk", "This page does not exist")


def test_a_page_of_fewer_languages_shows_its_error_in_english(visitor: TestClient) -> None:
    # The declaration pages exist in German and English only.
    response = visitor.get("/declaration/nowhere?lang=uk")

    main = assert_page(response, 404, "en", "This page does not exist")
    assert '<a href="/declaration">' in main


def test_a_method_a_page_does_not_take_keeps_allow(visitor: TestClient) -> None:
    response = visitor.delete("/contact?lang=tr")

    assert_page(response, 405, "tr", "This request cannot be processed")
    assert "GET" in response.headers["allow"]


def test_a_contact_form_over_the_pages_body_limit_is_a_page_stating_the_limits(
    visitor: TestClient, site: tuple[FastAPI, AkteService]
) -> None:
    service = site[1]
    before = service.recorder.max_notification_id() or 0
    large = ("files", ("gross.pdf", b"%PDF" + b"0" * PAGE_LIMIT, "application/pdf"))

    response = visitor.post("/contact?lang=uk", data=FIELDS, files=[large])

    main = assert_page(response, 413, "uk", "What you sent is too large")
    assert response.headers["connection"] == "close"
    limits = _in(
        "uk",
        "You can send at most %(count)s files, each up to %(size)s and all together up to "
        "%(total)s.",
        count=3,
        size="64 KB",
        total="96 KB",
    )
    assert limits in main
    assert _in("uk", "Nothing has been sent to the office.") in main
    assert "gross.pdf" not in main
    assert (service.recorder.max_notification_id() or 0) == before


def test_a_form_without_files_over_its_limit_says_to_shorten_the_entries(
    visitor: TestClient,
) -> None:
    response = visitor.post("/booking/details?lang=de", data={"surname": "x" * 20_000})

    main = assert_page(response, 413, "de", "What you sent is too large")
    assert _in("de", "Go back to the form, shorten your entries and send it again.") in main
    assert "%(count)s" not in main


def test_a_page_over_its_rate_is_a_page_with_retry_after(visitor: TestClient) -> None:
    for _ in range(2):
        visitor.get(f"/contact/receipt/{RECEIPT}")

    response = visitor.get(f"/contact/receipt/{RECEIPT}?lang=uk")

    main = assert_page(response, 429, "uk", "Too many requests from your connection")
    seconds = int(response.headers["retry-after"])
    assert 1 <= seconds <= 60
    wait = format_timedelta(timedelta(seconds=seconds), locale="uk")
    assert _in("uk", "Please try again in %(wait)s.", wait=wait) in main
    assert "Nothing has been sent" not in main  # a look-up sends nothing


def test_a_form_sent_over_its_rate_says_nothing_was_sent(visitor: TestClient) -> None:
    statuses = [
        visitor.post(
            "/contact?lang=ar", data=FIELDS, files=NO_FILE, follow_redirects=False
        ).status_code
        for _ in range(2)
    ]
    assert statuses == [303, 303]

    response = visitor.post("/contact?lang=ar", data=FIELDS, files=NO_FILE)

    main = assert_page(response, 429, "ar", "Too many requests from your connection")
    assert response.headers["retry-after"].isdigit()
    assert _in("ar", "Nothing has been sent to the office.") in main


def test_an_unavailable_store_on_a_page_is_a_page_with_retry_after(
    visitor: TestClient, site: tuple[FastAPI, AkteService], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("the event store failed: OperationalError")

    monkeypatch.setattr(site[1].intake, "find_submission_by_receipt", unavailable)

    response = visitor.get(f"/contact/receipt/{RECEIPT}?lang=en")

    main = assert_page(response, 503, "en", "This service is not available right now")
    assert response.headers["retry-after"] == "5"
    assert "Please try again in 5 seconds." in main


def test_an_unexpected_error_on_a_page_is_a_bare_page(
    visitor: TestClient, site: tuple[FastAPI, AkteService], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Ayşe Yılmaz")

    monkeypatch.setattr(site[1].intake, "find_submission_by_receipt", fail)

    response = visitor.get(f"/contact/receipt/{RECEIPT}?lang=de")

    assert_page(response, 500, "de", "Something went wrong on our side")
    assert "Yılmaz" not in response.text
    assert "RuntimeError" not in response.text


def test_a_page_that_fails_to_render_leaves_the_problem(
    visitor: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise LookupError("no template")

    monkeypatch.setattr(errors, "render", broken)

    assert_problem(visitor.get("/contact/receipt/x/y?lang=uk"), 404, "not-found")


def test_a_mistyped_address_in_a_browser_is_a_not_found_page(visitor: TestClient) -> None:
    response = visitor.get(
        "/nowhere?lang=uk", headers={"accept": BROWSER_ACCEPT, "accept-language": "uk"}
    )

    main = assert_page(response, 404, "uk", "This page does not exist")
    assert '<a href="/">' in main


# ------------------------------------------------------------- the API is unchanged


def test_the_apis_errors_stay_problems_whatever_the_language_or_accept(
    visitor: TestClient,
) -> None:
    browser = {"accept": BROWSER_ACCEPT, "accept-language": "uk"}
    visitor.cookies.set("akte_language", "uk")

    assert_problem(visitor.get("/nowhere?lang=uk"), 404, "not-found")
    assert_problem(visitor.get("/contact-form?lang=uk", headers=browser), 405, "method-not-allowed")
    assert_problem(
        visitor.get("/worklists/my-open-procedures?lang=uk", headers=browser),
        401,
        "unauthenticated",
    )
    too_large = visitor.post(
        "/contact-form?lang=uk",
        data=FIELDS,
        files=[("files", ("gross.pdf", b"%PDF" + b"0" * PAGE_LIMIT, "application/pdf"))],
        headers=browser,
    )
    assert_problem(too_large, 413, "payload-too-large")
    statuses = [
        visitor.post("/contact-form?lang=uk", data={}, headers=browser).status_code
        for _ in range(3)
    ]
    assert statuses[-1] == 429
    refused = visitor.post("/contact-form?lang=uk", data={}, headers=browser)
    assert_problem(refused, 429, "rate-limited")
    assert refused.headers["retry-after"].isdigit()
