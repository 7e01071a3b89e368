"""The public doors' limits: a burst from one address gets 429 after the configured rate,
with Retry-After, recording nothing; other addresses go on being served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.pages.errors import area_of
from adapters.http.pages.site import PAGE_AREAS
from adapters.http.pages.translations import translations_for
from adapters.http.rate_limits import DOORS, RateLimiter, client_key
from adapters.settings import Settings
from service import AkteService
from tests.http.pages.test_contact import FIELDS as CONTACT_FIELDS
from tests.http.pages.test_contact import NO_FILE

RATE = 3


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[tuple[FastAPI, AkteService]]:
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path / "data",
        rate_limit_contact_form=f"{RATE}/minute",
        rate_limit_declarations=f"{RATE}/minute",
        rate_limit_challenges=f"{RATE}/minute",
        rate_limit_bookings=f"{RATE}/minute",
        rate_limit_lookups=f"{RATE}/minute",
        rate_limit_failed_logins=f"{RATE}/minute",
    )
    service = build_service(settings)
    try:
        yield build_app(settings, service), service
    finally:
        service.close()


def _from(app: FastAPI, address: str) -> TestClient:
    return TestClient(app, client=(address, 40000))


def _events(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


@pytest.mark.long  # 9 bursts of 2-4 s: bin/test-long runs them, so bin/test stays under ten minutes
@pytest.mark.parametrize(
    ("door", "method", "path", "body"),
    [
        ("contact_form", "POST", "/contact-form", None),
        ("declarations", "POST", "/commitment-declarations", {}),
        ("challenges", "POST", "/appointments/challenges", None),
        ("challenges", "GET", "/booking/details", None),
        ("bookings", "POST", "/appointments/bookings", {}),
        ("lookups", "GET", "/appointments/bookings/own", None),
        ("lookups", "GET", "/commitment-declarations/own", None),
        ("lookups", "POST", "/declaration/pay", None),
        ("lookups", "GET", "/declaration/return", None),
    ],
)
def test_a_burst_from_one_address_is_refused_after_the_rate(
    limited: tuple[FastAPI, AkteService],
    door: str,
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    app, _service = limited
    burst = _from(app, "192.0.2.10")

    answers = [burst.request(method, path, json=body) for _ in range(RATE + 5)]

    statuses = [answer.status_code for answer in answers]
    assert 429 not in statuses[:RATE], statuses
    assert statuses[RATE:] == [429] * 5, statuses
    refused = answers[-1]
    if area_of(PAGE_AREAS, path) is None:
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"].endswith("/rate-limited")
    else:  # a public page: a page in the visitor's language (tests/http/pages/test_errors.py)
        assert refused.headers["content-type"].startswith("text/html")
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    # Another address is served as if nothing happened.
    other = _from(app, "192.0.2.20").request(method, path, json=body)
    assert other.status_code != 429
    metrics = burst.get("/metrics").text
    assert f'akte_rate_limited_total{{door="{door}"}} 5.0' in metrics


def test_a_refused_submission_records_nothing(limited: tuple[FastAPI, AkteService]) -> None:
    app, service = limited
    burst = _from(app, "192.0.2.11")
    for _ in range(RATE):
        burst.post("/appointments/challenges")
    before = _events(service)

    assert burst.post("/appointments/challenges").status_code == 429

    assert _events(service) == before


def test_bad_tokens_are_refused_after_the_rate_and_good_ones_are_not_counted(
    limited: tuple[FastAPI, AkteService],
) -> None:
    app, _service = limited
    guesser = _from(app, "192.0.2.12")
    bad = {"Authorization": "Bearer not-a-token"}

    statuses = [
        guesser.get("/worklists/my-open-procedures", headers=bad).status_code
        for _ in range(RATE + 2)
    ]

    assert statuses == [401] * RATE + [429] * 2
    # Requests without a token are not login attempts: still answered on their merits.
    assert guesser.get("/catalogue").status_code == 200
    assert (
        _from(app, "192.0.2.13").get("/worklists/my-open-procedures", headers=bad).status_code
        == 401
    )


def test_routes_that_are_no_door_are_never_limited(limited: tuple[FastAPI, AkteService]) -> None:
    app, _service = limited
    client = _from(app, "192.0.2.14")

    assert {client.get("/catalogue").status_code for _ in range(RATE * 4)} == {200}
    assert {client.get("/healthz").status_code for _ in range(RATE * 4)} == {200}


def test_an_unset_rate_leaves_its_door_open() -> None:
    limiter = RateLimiter({"contact_form": "1/minute"})

    assert limiter.door_of("POST", "/contact-form") == "contact_form"
    assert limiter.door_of("POST", "/commitment-declarations") is None
    assert limiter.door_of("GET", "/contact-form") is None


def test_several_rates_for_one_door_all_count() -> None:
    limiter = RateLimiter({"lookups": "5/minute;2/second"})

    assert [limiter.hit("lookups", "a") for _ in range(3)] == [True, True, False]
    assert limiter.retry_after("lookups", "a") >= 1


def test_every_door_is_named_after_a_setting() -> None:
    for door in {door.name for door in DOORS} | {"failed_logins"}:
        assert f"rate_limit_{door}" in Settings.model_fields


@pytest.mark.parametrize("rate", ["10", "ten/minute", "10/fortnight", "10/minute;", "-1/day"])
def test_a_mistyped_rate_is_refused_at_start(rate: str) -> None:
    with pytest.raises(ValueError, match="a rate like 10/minute"):
        Settings(rate_limit_contact_form=rate)


@pytest.mark.parametrize(
    ("address", "key"),
    [
        ("192.0.2.10", "192.0.2.10"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:192.0.2.10", "192.0.2.10"),
        ("unknown", "unknown"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_client_counts_by_its_64_network(address: str, key: str) -> None:
    assert client_key(address) == key


def test_addresses_of_one_ipv6_network_share_a_rate_and_another_network_does_not(
    tmp_path: Path,
) -> None:
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path / "data",
        rate_limit_contact_form="2/minute",
        rate_limit_lookups=None,
    )
    service = build_service(settings)
    try:
        app = build_app(settings, service)

        def send(address: str) -> int:
            client = _from(app, address)
            answer = client.post(
                "/contact", data=CONTACT_FIELDS, files=NO_FILE, follow_redirects=False
            )
            return answer.status_code

        # A script choosing a new address of its /64 for each submission.
        same_network = [send(f"2001:db8:1:2::{host:x}") for host in (1, 2, 3)]
        other_network = send("2001:db8:1:3::1")
        before = _events(service)
        refused_again = send("2001:db8:1:2:ffff:ffff:ffff:ffff")
        recorded_after = _events(service)
    finally:
        service.close()

    assert same_network == [303, 303, 429]
    assert other_network == 303
    assert refused_again == 429
    assert recorded_after == before  # refused before the page: nothing recorded


def test_a_page_over_its_rate_is_a_page_in_the_visitors_language(
    limited: tuple[FastAPI, AkteService],
) -> None:
    app, service = limited
    burst = _from(app, "192.0.2.15")
    for _ in range(RATE):
        burst.get("/declaration/return")
    before = _events(service)

    page = burst.get("/booking/status/nothing-here?lang=uk")
    api = burst.get("/appointments/bookings/own?lang=uk", headers={"accept": "text/html"})

    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-language"] == "uk"
    assert 1 <= int(page.headers["Retry-After"]) <= 60
    heading = translations_for("uk").gettext("Too many requests from your connection")
    assert f"<h1>{heading}</h1>" in page.text
    assert '<a href="/booking">' in page.text
    # The API's look-ups count against the same door and stay problems.
    assert api.status_code == 429
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["type"].endswith("/rate-limited")
    assert _events(service) == before


def test_an_ipv4_mapped_address_counts_as_its_ipv4_address() -> None:
    limiter = RateLimiter({"contact_form": "1/minute"})

    assert limiter.hit("contact_form", client_key("192.0.2.30"))
    assert not limiter.hit("contact_form", client_key("::ffff:192.0.2.30"))
    assert limiter.hit("contact_form", client_key("192.0.2.31"))
