"""The development mailbox: mails kept as numbered files, read back newest first, and
never two mails under one number however many writers there are."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.bootstrap import deployment_problems, mailer_for
from adapters.mail.mailbox import Mailbox, MailboxMailer
from adapters.mail.smtp import SmtpMailer
from adapters.settings import Settings
from service_ports import MailUnavailable, OutgoingMail


def _mail(number: int, body: str = "Guten Tag") -> OutgoingMail:
    return OutgoingMail(
        to=f"p{number}@example.org",
        subject=f"Ihr Termin {number}",
        body=body,
        message_id=f"<a{number}.1@akte>",
    )


def test_sent_mails_are_kept_and_listed_newest_first(tmp_path: Path) -> None:
    moments = iter([datetime(2026, 1, 5, 9, minute, tzinfo=UTC) for minute in range(3)])
    mailer = MailboxMailer(
        tmp_path / "mailbox", sender="termine@akte.invalid", clock=lambda: next(moments)
    )

    for number in range(1, 4):
        mailer.send(_mail(number))

    mailbox = Mailbox(tmp_path / "mailbox")
    assert [mail.number for mail in mailbox.mails()] == [3, 2, 1]
    first = mailbox.get(1)
    assert (first.to, first.subject, first.sender) == (
        "p1@example.org",
        "Ihr Termin 1",
        "termine@akte.invalid",
    )
    assert first.message_id == "<a1.1@akte>"
    assert first.sent_at == datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    assert mailbox.latest_to("p2@example.org") == mailbox.get(2)
    assert mailbox.latest_to("nobody@example.org") is None
    # One JSON file per mail, no temporary file left behind.
    assert sorted(path.name for path in (tmp_path / "mailbox").iterdir()) == [
        "000001.json",
        "000002.json",
        "000003.json",
    ]
    assert json.loads((tmp_path / "mailbox" / "000003.json").read_text())["to"] == "p3@example.org"


def test_an_empty_or_missing_mailbox_lists_nothing(tmp_path: Path) -> None:
    mailbox = Mailbox(tmp_path / "never-written")
    assert mailbox.mails() == []
    with pytest.raises(KeyError):
        mailbox.get(1)


def test_links_in_the_body_are_found(tmp_path: Path) -> None:
    mailer = MailboxMailer(tmp_path, sender="termine@akte.invalid")
    mailer.send(
        _mail(1, "Bestätigen Sie hier: http://127.0.0.1:8000/booking/status/abc?x=1.\nDanke")
    )

    mail = Mailbox(tmp_path).get(1)
    assert mail.links == ["http://127.0.0.1:8000/booking/status/abc?x=1"]
    assert "".join(text for text, _ in mail.body_parts()) == mail.body


def test_concurrent_writers_never_share_a_number(tmp_path: Path) -> None:
    writers = [MailboxMailer(tmp_path, sender="termine@akte.invalid") for _ in range(4)]

    def send(number: int) -> None:
        writers[number % len(writers)].send(_mail(number))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(60)))

    mailbox = Mailbox(tmp_path)
    assert mailbox.numbers() == list(range(1, 61))
    assert sorted(mail.to for mail in mailbox.mails()) == sorted(
        f"p{number}@example.org" for number in range(60)
    )


def test_an_unwritable_mailbox_is_like_an_unreachable_server(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(MailUnavailable):
        MailboxMailer(blocker / "mailbox", sender="termine@akte.invalid").send(_mail(1))


def test_the_mailbox_is_chosen_in_development_without_a_mail_server(tmp_path: Path) -> None:
    development = Settings(data_dir=tmp_path)
    mailer = mailer_for(development)
    assert isinstance(mailer, MailboxMailer)
    assert mailer.directory == tmp_path / "mailbox"

    assert isinstance(mailer_for(Settings(data_dir=tmp_path, smtp_host="mail.example")), SmtpMailer)
    assert isinstance(mailer_for(Settings(data_dir=tmp_path, mail_delivery="smtp")), SmtpMailer)
    explicit = Settings(
        data_dir=tmp_path,
        smtp_host="mail.example",
        mail_delivery="mailbox",
        mailbox_dir=tmp_path / "m",
    )
    assert mailer_for(explicit).directory == tmp_path / "m"  # type: ignore[attr-defined]


def test_production_never_keeps_mails_in_a_mailbox(tmp_path: Path) -> None:
    production = Settings(data_dir=tmp_path, deployment="production")
    assert isinstance(mailer_for(production), SmtpMailer)

    insisting = production.model_copy(update={"mail_delivery": "mailbox"})
    assert isinstance(mailer_for(insisting), SmtpMailer)
    assert "AKTE_MAIL_DELIVERY=mailbox is for development only" in deployment_problems(insisting)
