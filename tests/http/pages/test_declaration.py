"""The commitment declaration pages, with the stand-in payment platform as a real server:
submit, pay there (the platform notifies Akte), come back, follow the status page."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.pages.languages import LANGUAGES, languages_of
from adapters.http.pages.translations import translations_for
from adapters.payment.setup import DEVELOPMENT_SHARED_SECRET
from adapters.payment.stand_in import StandInServer
from adapters.settings import Settings
from tests.support.declarations import PERSONAL_VALUES
from tests.support.live_server import ServedApp

SECRET: Final = DEVELOPMENT_SHARED_SECRET.encode()
REFERENCE_COOKIE: Final = "akte_declaration"


def form(**changes: str) -> dict[str, str]:
    """A valid form as a browser posts it, the visit a month from today."""
    today = date.today()
    fields = {
        "guarantor_surname": "Beispiel",
        "guarantor_given_names": "Amal",
        "guarantor_date_of_birth": "1980-02-03",
        "guarantor_address": "Hauptstraße 1\n12345 Musterstadt",
        "guarantor_nationality": "deu",
        "guarantor_id_document_number": "L01X00T47",
        "visitor_surname": "Yılmaz",
        "visitor_given_names": "Ayşe Nur",
        "visitor_date_of_birth": "1995-07-14",
        "visitor_nationality": "TUR",
        "visitor_passport_number": "U12345678",
        "purpose": "family_visit",
        "stay_from": (today + timedelta(days=30)).isoformat(),
        "stay_until": (today + timedelta(days=59)).isoformat(),
        "monthly_net_income": "3.200",
        "assets": "",
        "method": "visa",
    }
    return fields | changes


def page_settings(data_dir: object, **changes: object) -> Settings:
    return Settings(
        store="sqlite",
        data_dir=data_dir,  # type: ignore[arg-type]
        rate_limit_declarations=None,
        rate_limit_lookups=None,
        **changes,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInServer]:
    with StandInServer(SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, stand_in: StandInServer
) -> Iterator[ServedApp]:
    settings = page_settings(
        tmp_path_factory.mktemp("declaration-page") / "data",
        payment_provider_url=stand_in.base_url,
    )
    service = build_service(settings)
    app = ServedApp(build_app(settings, service), service)
    app.start()
    try:
        yield app
    finally:
        app.stop()
        service.close()


@pytest.fixture
def browser(served: ServedApp) -> Iterator[httpx.Client]:
    """A browser: keeps cookies, follows no redirect by itself."""
    with httpx.Client(
        base_url=served.base_url, trust_env=False, timeout=10, follow_redirects=False
    ) as client:
        yield client


def submit_and_reach_the_platform(browser: httpx.Client, stand_in: StandInServer) -> str:
    sent = browser.post("/declaration?lang=en", data=form())
    assert sent.status_code == 303, sent.text
    pay_page = sent.headers["location"]
    assert pay_page.startswith(f"{stand_in.base_url}/pay/SI-")
    assert browser.cookies.get(REFERENCE_COOKIE)
    return pay_page


def pay_on_the_platform(browser: httpx.Client, pay_page: str, outcome: str) -> httpx.Response:
    shown = browser.get(pay_page)
    assert shown.status_code == 200
    assert "29,00 EUR" in shown.text
    done = browser.post(pay_page, data={"method": "mastercard", "outcome": outcome})
    assert done.status_code == 303
    return done


def back_at_akte(browser: httpx.Client, served: ServedApp, done: httpx.Response) -> str:
    back = done.headers["location"]
    assert back.startswith(f"{served.base_url}/declaration/return?transaction_id=SI-")
    page = browser.get(urlsplit(back).path + "?" + urlsplit(back).query + "&lang=en")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    return html.unescape(page.text)


def status_link(page: str) -> str:
    found = re.search(r'<a href="(/declaration/status/[^"]+)" id="status-link">', page)
    assert found is not None
    return found.group(1)


def test_the_form_shows_the_fee_and_every_field(browser: httpx.Client) -> None:
    page = browser.get("/declaration", headers={"accept-language": "de"}).text

    assert "Gebühr: 29,00\xa0€" in html.unescape(page)
    assert 'action="/declaration"' in page
    for name in form():
        assert f'name="{name}"' in page


def test_paid_declaration_from_form_to_status_page(
    browser: httpx.Client,
    served: ServedApp,
    stand_in: StandInServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    pay_page = submit_and_reach_the_platform(browser, stand_in)

    page = back_at_akte(browser, served, pay_on_the_platform(browser, pay_page, "paid"))

    assert "Thank you: the fee is paid" in page
    link = status_link(page)
    reference = link.removeprefix("/declaration/status/")
    status = browser.get(link + "?lang=en")
    assert status.status_code == 200
    assert status.headers["cache-control"] == "no-store"
    text = html.unescape(status.text)
    assert "The fee is paid. We are now checking whether your income or assets are enough." in text
    assert "payment received" in text
    assert "Pay the fee" not in text

    # A caseworker checks and sets the pickup appointment: the status page shows it.
    service = served.service
    declaration_id = service.declarations.find_declaration_by_reference(reference)
    version = service.declarations.get_declaration(declaration_id).version
    service.declarations.check_ability_to_pay(
        declaration_id, expected_version=version, by="sb-01", passed=True
    )
    pickup = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
    service.declarations.set_pickup_appointment(
        declaration_id, expected_version=version + 1, by="sb-01", appointment_at=pickup
    )
    german = html.unescape(browser.get(link + "?lang=de").text)
    assert "Ihr Termin zum Unterschreiben und Abholen der Erklärung steht fest." in german
    assert '<p id="pickup">Termin zum Unterschreiben und Abholen:' in german

    # Akte's own logs name the route's template, never the reference or what was typed.
    # (Uvicorn's access log, which shows raw paths, is off under `akte serve`.)
    ours = [record for record in caplog.records if record.name.startswith("akte")]
    logged = "\n".join(record.getMessage() for record in ours)
    assert "/declaration/status/{reference}" in logged
    assert reference not in logged
    assert not [value for value in PERSONAL_VALUES if value in logged]


def test_a_failed_payment_is_said_and_can_be_paid_again(
    browser: httpx.Client, served: ServedApp, stand_in: StandInServer
) -> None:
    pay_page = submit_and_reach_the_platform(browser, stand_in)

    page = back_at_akte(browser, served, pay_on_the_platform(browser, pay_page, "failed"))

    assert "The payment did not go through" in page
    link = status_link(page)
    status = html.unescape(browser.get(link + "?lang=en").text)
    assert "The fee has not been paid yet." in status
    assert "payment failed" in status
    reference = link.removeprefix("/declaration/status/")
    again = browser.post("/declaration/pay", data={"reference": reference, "method": "paypal"})
    assert again.status_code == 303
    second = again.headers["location"]
    assert second.startswith(f"{stand_in.base_url}/pay/SI-")
    assert second != pay_page
    page = back_at_akte(browser, served, pay_on_the_platform(browser, second, "paid"))
    assert "Thank you: the fee is paid" in page


def test_a_refused_form_keeps_what_was_typed(browser: httpx.Client, served: ServedApp) -> None:
    before = served.events_recorded()

    refused = browser.post(
        "/declaration?lang=en",
        data=form(visitor_passport_number="", stay_from="2001-01-01", monthly_net_income="viel"),
    )

    assert refused.status_code == 422
    page = html.unescape(refused.text)
    summary = page[page.index('id="error-summary"') :]
    summary = summary[: summary.index("</div>")]
    assert 'href="#visitor_passport_number"' in summary
    assert 'href="#monthly_net_income"' in summary
    assert 'id="visitor_passport_number-error"' in page
    assert 'value="Yılmaz"' in page
    assert 'value="viel"' in page
    assert ">Hauptstraße 1\n12345 Musterstadt</textarea>" in page
    assert 'name="purpose" value="family_visit" checked' in page
    assert served.events_recorded() == before
    assert REFERENCE_COOKIE not in browser.cookies


def test_a_rule_of_the_service_is_shown_at_its_field(
    browser: httpx.Client, served: ServedApp
) -> None:
    refused = browser.post("/declaration?lang=en", data=form(stay_from="2001-01-01"))

    assert refused.status_code == 422
    assert 'id="stay_from-error"' in refused.text
    assert "it must not lie in the past" in refused.text


def test_an_unknown_reference_is_not_found(browser: httpx.Client) -> None:
    assert browser.get("/declaration/status/" + "A" * 22).status_code == 404
    assert browser.post("/declaration/pay", data={"reference": "A" * 22}).status_code == 404


NOT_FOUND_HEADINGS: Final = {
    "de": "Wir finden diese Verpflichtungserklärung nicht",
    "en": "We cannot find this declaration",
}
# A language asked for in the address, and one only by the browser's preferences.
ASKED: Final = [("de", "?lang=de", {}), ("en", "", {"accept-language": "en-GB,en;q=0.8"})]


def main_of(page: str) -> str:
    found = re.search(r"<main\b[^>]*>(.*)</main>", page, re.DOTALL)
    assert found is not None
    return html.unescape(found.group(1))


def assert_not_found_page(
    response: httpx.Response, language: str, reference: str | None = None
) -> None:
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == language
    assert f'<html lang="{language}" dir="ltr">' in response.text
    main = main_of(response.text)
    assert f"<h1>{NOT_FOUND_HEADINGS[language]}</h1>" in main
    assert '<a href="/declaration">' in main  # where to start again
    assert reference is None or reference not in main


@pytest.mark.parametrize(("language", "query", "headers"), ASKED, ids=["de", "en"])
def test_an_unknown_status_link_shows_a_page_in_the_visitors_language(
    browser: httpx.Client, language: str, query: str, headers: dict[str, str]
) -> None:
    for reference in ("A" * 22, "B" * 200):
        response = browser.get(f"/declaration/status/{reference}{query}", headers=headers)

        assert_not_found_page(response, language, reference)


@pytest.mark.parametrize(("language", "query", "headers"), ASKED, ids=["de", "en"])
def test_paying_for_an_unknown_reference_shows_a_page_in_the_visitors_language(
    browser: httpx.Client, language: str, query: str, headers: dict[str, str]
) -> None:
    for body in ({"reference": "A" * 22, "method": "visa"}, {"reference": "B" * 200}, {}):
        response = browser.post(f"/declaration/pay{query}", data=body, headers=headers)

        assert_not_found_page(response, language, body.get("reference"))
        assert REFERENCE_COOKIE not in response.headers.get("set-cookie", "")
    # The page's language switch leads to the same page, not to an error for programs.
    assert_not_found_page(browser.get(f"/declaration/pay{query}", headers=headers), language)


@pytest.mark.parametrize(("language", "query", "headers"), ASKED, ids=["de", "en"])
def test_the_return_page_with_an_unknown_reference_says_where_to_look(
    browser: httpx.Client, language: str, query: str, headers: dict[str, str]
) -> None:
    for reference in ("A" * 22, "B" * 200):
        browser.cookies.set(REFERENCE_COOKIE, reference, path="/declaration")
        page = browser.get(f"/declaration/return{query}", headers=headers)

        assert page.status_code == 200
        assert page.headers["content-language"] == language
        title = translations_for(language).gettext("Back from the payment")
        assert f"<h1>{title}</h1>" in main_of(page.text)
        assert reference not in page.text
        assert 'id="status-link"' not in page.text


def test_the_return_page_without_the_cookie_says_where_to_look(browser: httpx.Client) -> None:
    page = browser.get("/declaration/return?transaction_id=SI-1&status=paid&lang=en")

    assert page.status_code == 200
    # The platform's "paid" in the address is not taken for a confirmed payment.
    assert "Thank you" not in page.text
    assert "The payment platform tells us the result directly." in page.text


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_the_form_in_every_language(browser: httpx.Client, code: str) -> None:
    response = browser.get(f"/declaration?lang={code}")

    shown = code if code in languages_of("declaration") else "en"
    assert response.status_code == 200
    assert response.headers["content-language"] == shown
    assert f'<html lang="{shown}" dir="{LANGUAGES[shown].direction}">' in response.text
    title = translations_for(shown).gettext("Commitment declaration: invite a visitor")
    assert f"<h1>{title}</h1>" in response.text


def test_payments_switched_off_keep_the_declaration_and_say_so(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    settings = page_settings(
        tmp_path_factory.mktemp("declaration-off") / "data",
        # Not a code: the set-up is refused and payments are switched off.
        payment_provider_name="Not A Code",
    )
    service = build_service(settings)
    try:
        with TestClient(build_app(settings, service), base_url="https://akte.example") as client:
            sent = client.post("/declaration?lang=en", data=form(), follow_redirects=False)
            assert sent.status_code == 303
            location = sent.headers["location"]
            assert location.startswith("/declaration/status/")
            assert "secure" in sent.headers["set-cookie"].lower()
            status = client.get(location + "&lang=en")
            assert "the payment could not be started just now" in status.text
            assert "The fee has not been paid yet." in status.text
    finally:
        service.close()
