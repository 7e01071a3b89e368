"""Mail to the people who book, through the office's SMTP server (standard library).

What the server answers becomes :class:`service_ports.MailRefused` (a code such as
``smtp-550``, never the server's text, which may quote the address) or
:class:`service_ports.MailUnavailable` (no answer, a broken connection, a
temporary 4xx refusal); the service records either as an event and tries again later.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate

from service_ports import MailRefused, MailUnavailable, OutgoingMail


class SmtpMailer:
    """Sends each mail on a connection of its own: bookings are few per second, and a
    fresh connection never inherits a half-broken one."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        timeout_seconds: float,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.timeout_seconds = timeout_seconds
        self.starttls = starttls
        self.username = username
        self.password = password

    def send(self, mail: OutgoingMail) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = mail.message_id
        message.set_content(mail.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_seconds) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as error:
            code = _first_code(error.recipients.values())
            raise _refusal(code) from None
        except smtplib.SMTPResponseException as error:
            raise _refusal(error.smtp_code) from None
        except (TimeoutError, smtplib.SMTPException, OSError):
            raise MailUnavailable("the mail server could not be reached") from None
        if refused:
            raise _refusal(_first_code(refused.values()))


def _first_code(answers: object) -> int:
    for answer in answers:  # type: ignore[attr-defined]
        return int(answer[0])
    return 550


def _refusal(code: int) -> Exception:
    """Permanent refusals are recorded as such; temporary ones (4xx) are tried again."""
    if 400 <= code < 500:
        return MailUnavailable(f"smtp-{code}")
    return MailRefused(f"smtp-{code}")
