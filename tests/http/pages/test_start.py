"""The start page: the public services in every language, nothing from another host."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.pages.languages import LANGUAGES
from adapters.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    settings = Settings(store="sqlite", data_dir=tmp_path_factory.mktemp("start") / "data")
    service = build_service(settings)
    try:
        with TestClient(build_app(settings, service)) as test_client:
            yield test_client
    finally:
        service.close()


@pytest.fixture(autouse=True)
def _no_language_chosen_yet(client: TestClient) -> None:
    # A ?lang= choice is remembered in a cookie; each test starts as a new visitor.
    client.cookies.clear()


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_the_start_page_in_each_language(client: TestClient, code: str) -> None:
    response = client.get(f"/?lang={code}")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-language"] == code
    assert f'<html lang="{code}" dir="{LANGUAGES[code].direction}">' in response.text
    for service in ("/booking", "/contact", "/declaration"):
        assert f'href="{service}"' in response.text


def test_german_by_default_and_in_the_words_of_the_office(client: TestClient) -> None:
    response = client.get("/", headers={"accept-language": "fr"})

    assert "<h1>Online-Dienste der Ausländerbehörde</h1>" in response.text
    assert "Termin buchen" in response.text


def test_the_browser_language_is_taken_and_an_explicit_choice_is_remembered(
    client: TestClient,
) -> None:
    assert (
        client.get("/", headers={"accept-language": "tr-TR,tr"}).headers["content-language"] == "tr"
    )

    chosen = client.get("/?lang=uk")
    assert chosen.cookies.get("akte_language") == "uk"
    assert client.get("/", headers={"accept-language": "tr"}).headers["content-language"] == "uk"


def test_the_switch_links_every_language_and_marks_the_current(client: TestClient) -> None:
    text = client.get("/?lang=en").text

    for code in LANGUAGES:
        if code == "en":
            assert 'aria-current="true" lang="en"' in text
        else:
            assert f'href="/?lang={code}"' in text


def test_nothing_is_loaded_from_another_host(client: TestClient) -> None:
    response = client.get("/")

    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    # Every src and stylesheet href is a path of Akte's own.
    for url in re.findall(r'(?:src|href)="([^"]+)"', response.text):
        assert url.startswith(("/", "#")), url


def test_the_stylesheet_is_served_by_akte(client: TestClient) -> None:
    response = client.get("/static/akte.css")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in response.text


def test_the_api_is_unchanged_beside_the_pages(client: TestClient) -> None:
    assert client.get("/catalogue").headers["content-type"].startswith("application/json")
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_templates_have_no_inline_script_or_style() -> None:
    # The Content-Security-Policy forbids both: a page with either would break quietly.
    templates = Path(__file__).parents[3] / "adapters" / "http" / "pages" / "templates"
    for template in templates.rglob("*.j2"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template
        assert " style=" not in text, template
