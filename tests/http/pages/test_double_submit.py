"""The public pages' forms carry an idempotency key made when the form is rendered
(adapters/http/pages/rendering.py, adapters/http/idempotency.py): a form sent twice as
it was (a double click, a reload of the answer) is recorded once and both sendings get
the same answer; the form changed and sent again is a new sending.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final
from uuid import UUID

import pytest
from eventsourcing.persistence import Recording
from fastapi.testclient import TestClient
from httpx2 import Response

from adapters.bootstrap import build_app, build_service
from adapters.http.idempotency import FORM_FIELD
from adapters.http.pages import contact
from adapters.http.pages.translations import translations_for
from adapters.settings import Settings
from service import AkteService
from service_idempotency import AlreadyRecorded, current_claim
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


# ------------------------------------------- a double click: the second while the first answers


class Race:
    """Two sendings of one form, interleaved as a double click can interleave them: both
    check the key before either records it; the first records it, the second's save then
    fails on it (AlreadyRecorded, the first answer not stored yet). The first is held after
    its commit, before its answer is stored, until ``release_first`` is set."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, service: AkteService, key: str) -> None:
        self.key = key
        self.second_at_save = threading.Event()
        self.first_committed = threading.Event()
        self.second_refused = threading.Event()
        self.release_first = threading.Event()
        self._sendings = 0
        self._lock = threading.Lock()
        self._save = service.writes.save
        monkeypatch.setattr(service.writes, "save", self.save)

    def save(
        self,
        save: Callable[..., list[Recording[UUID]]],
        objs: Sequence[Any],
        kwargs: Mapping[str, Any],
    ) -> list[Recording[UUID]]:
        claim = current_claim()
        if claim is None or not claim.key.startswith(f"{self.key}/"):
            return self._save(save, objs, kwargs)
        with self._lock:
            first = self._sendings == 0
            self._sendings += 1
        if first:
            assert self.second_at_save.wait(WAIT), "the second sending never came to save"
            recordings = self._save(save, objs, kwargs)
            self.first_committed.set()
            assert self.release_first.wait(WAIT), "the first sending was never let go"
            return recordings
        self.second_at_save.set()
        assert self.first_committed.wait(WAIT), "the first sending never committed"
        try:
            return self._save(save, objs, kwargs)
        except AlreadyRecorded:
            self.second_refused.set()
            raise


WAIT: Final = 10.0
"""Seconds a held sending waits for the other at most (only a broken test waits that long)."""


def _send_twice(
    client: TestClient,
    path: str,
    sent: dict[str, str],
    race: Race,
    *,
    hold_first_until: threading.Event,
) -> tuple[Response, Response]:
    answers: dict[str, Response] = {}

    def send(name: str) -> None:
        answers[name] = client.post(path, data=sent, files=NO_FILE)

    # Either may come to save first: the race holds whichever does, so the callers'
    # checks do not depend on which thread it was.
    first = threading.Thread(target=send, args=("first",))
    first.start()
    second = threading.Thread(target=send, args=("second",))
    second.start()
    assert hold_first_until.wait(WAIT)
    race.release_first.set()
    first.join(WAIT)
    second.join(WAIT)
    assert not first.is_alive()
    assert not second.is_alive()
    return answers["first"], answers["second"]


def test_the_second_click_while_the_first_answers_gets_the_same_receipt(
    pages: tuple[TestClient, AkteService], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, service = pages
    key = form_key(client.get("/contact").text)
    race = Race(monkeypatch, service, key)
    before = head(service)

    first, second = _send_twice(
        client,
        "/contact?lang=uk",
        {FORM_FIELD: key, **CONTACT_FIELDS},
        race,
        hold_first_until=race.second_refused,
    )

    assert race.second_refused.is_set()  # the race happened as a double click makes it
    assert first.status_code == 303, first.text
    assert second.status_code == 303, second.text  # not 409 idempotency-key-in-flight
    assert second.headers["Location"] == first.headers["Location"]
    assert head(service) == before + 2  # one submission and its receipt, no duplicate
    assert client.get(second.headers["Location"]).status_code == 200


def test_the_second_click_waits_for_the_first_answer_when_no_receipt_was_recorded_with_the_key(
    pages: tuple[TestClient, AkteService], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, service = pages
    key = form_key(client.get("/contact").text)
    race = Race(monkeypatch, service, key)
    # No outcome with the key: only the first answer, once stored, can tell the receipt.
    monkeypatch.setattr(service.writes, "note", lambda *_args: None)
    asked = threading.Event()
    times_asked: list[object] = []
    ask = contact._asked_again

    def asked_again(*args: Any) -> object:
        found = ask(*args)
        times_asked.append(found)
        asked.set()  # the first may answer now: the second has found it still answering
        return found

    monkeypatch.setattr(contact, "_asked_again", asked_again)
    monkeypatch.setattr(contact, "IN_FLIGHT_POLL_SECONDS", 0.01)

    first, second = _send_twice(
        client, "/contact", {FORM_FIELD: key, **CONTACT_FIELDS}, race, hold_first_until=asked
    )

    assert first.status_code == 303, first.text
    assert second.status_code == 303, second.text
    assert second.headers["Location"] == first.headers["Location"]
    assert len(times_asked) >= 2  # asked again until the first answer was stored


def test_a_second_click_that_waited_in_vain_gets_a_page_in_the_visitors_language(
    pages: tuple[TestClient, AkteService], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, service = pages
    key = form_key(client.get("/contact").text)
    race = Race(monkeypatch, service, key)
    monkeypatch.setattr(service.writes, "note", lambda *_args: None)
    monkeypatch.setattr(contact, "IN_FLIGHT_WAIT_SECONDS", 0.2)
    monkeypatch.setattr(contact, "IN_FLIGHT_POLL_SECONDS", 0.01)
    answers: list[Response] = []
    answered = threading.Event()
    sent = {FORM_FIELD: key, **CONTACT_FIELDS}

    def send() -> None:
        answers.append(client.post("/contact?lang=uk", data=sent, files=NO_FILE))
        answered.set()

    # Which thread reaches the save first is the scheduler's choice: the race names the
    # one it holds "first" by arrival, so the answers are told apart by their status.
    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    # The first to save is held until the other has answered: it waited past its bound.
    assert answered.wait(WAIT), "the sending that waited never answered"
    race.release_first.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()

    assert sorted(answer.status_code for answer in answers) == [303, 409]
    [refused] = [answer for answer in answers if answer.status_code == 409]
    assert refused.headers["content-type"].startswith("text/html")
    assert refused.headers["content-language"] == "uk"
    arrived = translations_for("uk").gettext("Your message has arrived")
    assert arrived != "Your message has arrived"
    assert f"<h1>{arrived}</h1>" in refused.text
    assert 'id="receipt"' not in refused.text
