"""The public pages' forms carry an idempotency key made when the form is rendered
(adapters/http/pages/rendering.py, adapters/http/idempotency.py): a form sent twice as
it was (a double click, a reload of the answer) is recorded once and both sendings get
the same answer; the form changed and sent again is a new sending.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.idempotency import FORM_FIELD
from adapters.settings import Settings
from service import AkteService
from tests.http.pages.test_contact import FIELDS as CONTACT_FIELDS
from tests.http.pages.test_contact import NO_FILE, pdf
from tests.http.pages.test_declaration import form as declaration_form

KEY: Final = re.compile(rf'<input type="hidden" name="{FORM_FIELD}" value="([0-9a-f]{{32}})">')


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, AkteService]]:
    settings = Settings(
        store="sqlite",
        data_dir=tmp_path_factory.mktemp("double-submit") / "data",
        rate_limit_contact_form=None,
        rate_limit_declarations=None,
        rate_limit_lookups=None,
    )
    service = build_service(settings)
    try:
        with TestClient(build_app(settings, service), follow_redirects=False) as client:
            yield client, service
    finally:
        service.close()


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def form_key(page: str) -> str:
    """The key of the page's first form; every writing form has one, as its first field."""
    found = KEY.search(page)
    assert found is not None, "the form carries no idempotency key"
    return found.group(1)


def test_every_rendering_of_a_form_carries_a_new_key(
    pages: tuple[TestClient, AkteService],
) -> None:
    client, _service = pages
    for path in ("/contact", "/declaration"):
        first, second = client.get(path).text, client.get(path).text
        assert form_key(first) != form_key(second), path
        # The first field of the form, so that it is read before any upload.
        form_start = first.index('<form method="post"')
        first_field = first[first.index("<input", form_start) :]
        assert first_field.startswith(f'<input type="hidden" name="{FORM_FIELD}"'), path


def test_a_contact_form_sent_twice_is_recorded_once_and_answered_alike(
    pages: tuple[TestClient, AkteService],
) -> None:
    client, service = pages
    key = form_key(client.get("/contact").text)
    sent = {FORM_FIELD: key, **CONTACT_FIELDS}
    files = [pdf("letter.pdf")]

    first = client.post("/contact", data=sent, files=files)
    recorded = head(service)
    again = client.post("/contact", data=sent, files=files)

    assert first.status_code == 303, first.text
    assert again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert head(service) == recorded
    receipt = client.get(again.headers["Location"])
    assert receipt.status_code == 200
    assert receipt.headers["Cache-Control"] == "no-store"


def test_a_form_changed_and_sent_again_is_a_new_sending(
    pages: tuple[TestClient, AkteService],
) -> None:
    client, service = pages
    key = form_key(client.get("/contact").text)

    first = client.post("/contact", data={FORM_FIELD: key, **CONTACT_FIELDS}, files=NO_FILE)
    recorded = head(service)
    changed = {FORM_FIELD: key, **CONTACT_FIELDS, "message": "Noch eine Frage."}
    second = client.post("/contact", data=changed, files=NO_FILE)

    assert (first.status_code, second.status_code) == (303, 303), second.text
    assert second.headers["Location"] != first.headers["Location"]
    assert head(service) > recorded


def test_a_declaration_sent_twice_is_recorded_once_and_the_reload_shows_the_same_page(
    pages: tuple[TestClient, AkteService],
) -> None:
    client, service = pages
    key = form_key(client.get("/declaration").text)
    sent = {FORM_FIELD: key, **declaration_form()}

    first = client.post("/declaration", data=sent)
    recorded = head(service)
    client.cookies.clear()
    again = client.post("/declaration", data=sent)

    assert first.status_code == 303, first.text
    assert again.status_code == 303
    # The same declaration: its status page (named by its secret reference) and cookie.
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["set-cookie"] == first.headers["set-cookie"]
    assert again.headers["Cache-Control"] == "no-store"
    assert head(service) == recorded
    status = client.get(again.headers["Location"])
    assert status.status_code == 200


def test_a_form_without_a_key_is_taken_as_it_comes(
    pages: tuple[TestClient, AkteService],
) -> None:
    client, service = pages
    before = head(service)

    first = client.post("/contact", data=CONTACT_FIELDS, files=NO_FILE)
    second = client.post("/contact", data=CONTACT_FIELDS, files=NO_FILE)

    assert (first.status_code, second.status_code) == (303, 303)
    assert first.headers["Location"] != second.headers["Location"]
    assert head(service) > before
