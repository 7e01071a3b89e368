"""The confirmation flow against a real SMTP server (aiosmtpd on 127.0.0.1, a free port):
lost, re-sent, confirmed late within the hold, lapsed after a reminder. Each leaves its
events; none is silent."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage, Message
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller

from adapters.mail.smtp import SmtpMailer
from service import AkteService
from tests.conftest import FakeClock
from tests.service.test_appointments import NEXT_MONDAY, kinds
from tests.support.appointments import OFFICE, POINT, STUDENT, local, person, proof, set_up


@dataclass
class Inbox:
    """The server's side: what it accepted, and which addresses it refuses (550)."""

    messages: list[Message] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"

    def codes(self) -> list[str]:
        found = []
        for message in self.messages:
            assert isinstance(message, EmailMessage)
            match = re.search(r"Bestätigungscode: (\w+)", message.get_content())
            if match:
                found.append(match.group(1))
        return found


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def mail_service(service: AkteService, smtp: tuple[Inbox, int]) -> AkteService:
    _inbox, port = smtp
    set_up(
        service,
        SmtpMailer(host="127.0.0.1", port=port, sender="termine@abh.example", timeout_seconds=5),
    )
    return service


def book(service: AkteService, *, email_address: str = "ayse@example.org") -> tuple[UUID, str]:
    recorded = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=local(NEXT_MONDAY, 9),
        situation=STUDENT,
        person=person(1, email=email_address),
        proof=proof(service),
        by="public",
    )
    assert recorded.reference is not None
    return recorded.appointment_id, recorded.reference


def test_a_refused_mail_is_recorded_re_sent_and_confirmed_late_within_the_hold(
    mail_service: AkteService, smtp: tuple[Inbox, int], clock: FakeClock
) -> None:
    inbox, _port = smtp
    inbox.refused.add("ayse@example.org")
    appointment_id, reference = book(mail_service)

    assert kinds(mail_service, appointment_id) == ["Booked", "MailQueued", "MailFailed"]
    failed = mail_service.appointments.appointment_events(appointment_id)[-1]
    assert (failed.reason, failed.attempt) == ("smtp-550", 1)  # type: ignore[attr-defined]
    assert inbox.messages == []
    status = mail_service.appointments.booking_status(reference)
    assert status.appointment is not None
    assert [(m.kind, m.status) for m in status.appointment.mails] == [("confirmation", "failed")]

    # The person sees it from their reference, fixes their mailbox and asks again.
    inbox.refused.clear()
    clock.advance(hours=40)
    mail_service.appointments.resend_confirmation(reference)
    assert kinds(mail_service, appointment_id)[3:] == ["ConfirmationMailRequested", "MailSent"]
    assert len(inbox.messages) == 1
    assert inbox.messages[0]["Message-ID"] == f"<{appointment_id}.2@akte>"

    # The reminder is due (24 hours before the hold lapses); the failed first mail is
    # superseded by the new one and not sent twice.
    report = mail_service.appointments.run_appointment_tick()
    assert (report.reminders, report.mails_sent) == (1, 1)
    assert [m["Subject"] for m in inbox.messages] == [
        "Bitte bestätigen Sie Ihren Termin",
        "Erinnerung: Ihr Termin ist noch nicht bestätigt",
    ]

    clock.advance(hours=7, minutes=59)
    mail_service.appointments.confirm_booking(reference, inbox.codes()[0])
    assert mail_service.appointments.booking_status(reference).status == "confirmed"
    assert kinds(mail_service, appointment_id)[-1] == "Confirmed"
    clock.advance(hours=1)
    assert mail_service.appointments.run_appointment_tick().lapses == 0


def test_a_lost_mail_is_tried_again_when_the_server_is_back(
    service: AkteService, smtp: tuple[Inbox, int], clock: FakeClock
) -> None:
    inbox, port = smtp
    down = _free_port()
    set_up(
        service, SmtpMailer(host="127.0.0.1", port=down, sender="t@x.example", timeout_seconds=2)
    )
    appointment_id, reference = book(service)
    assert kinds(service, appointment_id)[-1] == "MailFailed"
    assert service.appointments.appointment_events(appointment_id)[-1].reason == "unreachable"  # type: ignore[attr-defined]

    set_up(
        service, SmtpMailer(host="127.0.0.1", port=port, sender="t@x.example", timeout_seconds=5)
    )
    clock.advance(minutes=5)
    report = service.appointments.run_appointment_tick()
    assert report.mails_sent == 1
    assert kinds(service, appointment_id)[-1] == "MailSent"
    assert inbox.messages[0]["To"] == "ayse@example.org"
    assert service.appointments.booking_status(reference).status == "held"


def test_an_unconfirmed_hold_lapses_after_a_reminder_and_a_bounce_is_recorded(
    mail_service: AkteService, smtp: tuple[Inbox, int], clock: FakeClock
) -> None:
    inbox, _port = smtp
    appointment_id, reference = book(mail_service)
    held_until = mail_service.appointments.get_appointment(appointment_id).held_until
    assert held_until == clock.now + timedelta(hours=48)

    clock.advance(hours=24)
    assert mail_service.appointments.run_appointment_tick().reminders == 1
    assert inbox.messages[-1]["Subject"] == "Erinnerung: Ihr Termin ist noch nicht bestätigt"
    mail_service.appointments.record_mail_bounce(appointment_id, mail_number=2, reason="5.2.2")

    clock.now = held_until - timedelta(seconds=1)
    assert mail_service.appointments.run_appointment_tick().lapses == 0
    clock.now = held_until
    assert mail_service.appointments.run_appointment_tick().lapses == 1

    assert kinds(mail_service, appointment_id) == [
        "Booked",
        "MailQueued",
        "MailSent",
        "MailQueued",
        "MailSent",
        "MailBounced",
        "Lapsed",
        "MailQueued",
        "MailSent",
    ]
    assert [m["Subject"] for m in inbox.messages] == [
        "Bitte bestätigen Sie Ihren Termin",
        "Erinnerung: Ihr Termin ist noch nicht bestätigt",
        "Ihre Terminreservierung ist verfallen",
    ]
    status = mail_service.appointments.booking_status(reference)
    assert status.status == "lapsed"
    assert status.appointment is not None
    assert status.appointment.end_reason == "not_confirmed_in_time"
    with pytest.raises(Exception, match="lapsed"):
        mail_service.appointments.confirm_booking(reference, inbox.codes()[0])
