"""The development mailbox page: lists the mails newest first, shows one with its links
clickable, says it is a development tool, and does not exist in production."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.mail.mailbox import MailboxMailer
from adapters.settings import Settings
from service import AkteService
from service_ports import OutgoingMail

_BODY = (
    "Guten Tag,\n\nIhr Code: K7Q2M9XA\nBestätigen Sie unter "
    "http://127.0.0.1:8000/booking/status/r3f?lang=de.\n\n<b>Ihre Ausländerbehörde</b>"
)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[AkteService]:
    built = build_service(Settings(store="sqlite", data_dir=tmp_path / "data"))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def client(service: AkteService, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    with TestClient(build_app(settings, service)) as test_client:
        yield test_client


def _send(service: AkteService, number: int, body: str = _BODY) -> None:
    mailer = service.appointments.appointment_setup.mailer
    assert isinstance(mailer, MailboxMailer)
    mailer.send(
        OutgoingMail(
            to=f"person{number}@example.org",
            subject=f"Terminbestätigung {number}",
            body=body,
            message_id=f"<m{number}@akte>",
        )
    )


def test_the_mailbox_lists_mails_newest_first(client: TestClient, service: AkteService) -> None:
    empty = client.get("/dev/mailbox?lang=de")
    assert empty.status_code == 200
    assert "Noch keine Mails" in empty.text
    assert "Entwicklungswerkzeug" in empty.text

    for number in (1, 2, 3):
        _send(service, number)
    page = client.get("/dev/mailbox?lang=de")

    assert page.status_code == 200
    subjects = re.findall(r'<a href="/dev/mailbox/(\d+)">Terminbestätigung (\d+)</a>', page.text)
    assert subjects == [("3", "3"), ("2", "2"), ("1", "1")]
    assert "person2@example.org" in page.text
    assert "Entwicklungswerkzeug" in page.text


def test_one_mail_with_clickable_links(client: TestClient, service: AkteService) -> None:
    _send(service, 1)

    page = client.get("/dev/mailbox/1", headers={"Accept-Language": "en"})

    assert page.status_code == 200
    assert "Development tool." in page.text
    link = "http://127.0.0.1:8000/booking/status/r3f?lang=de"
    assert f'<a href="{link}">{link}</a>' in page.text.replace("&amp;", "&")
    assert "K7Q2M9XA" in page.text
    # The body is text, never HTML.
    assert "<b>Ihre" not in page.text
    assert "&lt;b&gt;Ihre Ausländerbehörde&lt;/b&gt;" in page.text
    assert "person1@example.org" in page.text


def test_an_unknown_mail_is_not_found(client: TestClient) -> None:
    assert client.get("/dev/mailbox/7").status_code == 404


def test_there_is_no_mailbox_in_production(service: AkteService, tmp_path: Path) -> None:
    _send(service, 1)
    production = Settings(
        store="sqlite",
        data_dir=tmp_path / "data",
        deployment="production",
        auth_mode="oidc",
        oidc_issuer="https://login.example",
        oidc_audience="akte",
        oidc_jwks_url="https://login.example/certs",
    )
    with TestClient(build_app(production, service)) as client:
        assert client.get("/dev/mailbox").status_code == 404
        assert client.get("/dev/mailbox/1").status_code == 404


def test_there_is_no_mailbox_when_mails_go_to_a_mail_server(tmp_path: Path) -> None:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data", mail_delivery="smtp")
    service = build_service(settings)
    try:
        with TestClient(build_app(settings, service)) as client:
            assert client.get("/dev/mailbox").status_code == 404
    finally:
        service.close()
