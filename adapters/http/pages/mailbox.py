"""The development mailbox: the mails Akte would have sent, readable in the browser.

Outside production, without a mail server, mails go to a directory
(:mod:`adapters.mail.mailbox`); ``GET /dev/mailbox`` lists them newest first and
``GET /dev/mailbox/{number}`` shows one with its links clickable, so that a booking can
be confirmed in a demo. In production, or when the mails go to a mail server, both
answer 404: the page then does not exist.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import HTMLResponse

from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.pages.languages import languages_of
from adapters.http.pages.rendering import render
from adapters.mail.mailbox import Mailbox, StoredMail
from adapters.settings import Settings
from service import AkteService

router = APIRouter(include_in_schema=False)

# Development only (404 otherwise); public like the start page, as a demo has no login.
Visitor = Annotated[object, Depends(allow_public(Permission.CATALOGUE_READ))]

MAILBOX_PATH = "/dev/mailbox"

Line = list[tuple[str, bool]]
"""A line of a mail's body as (text, is_link) pieces."""


def mailbox_of(service: AkteService, settings: Settings) -> Mailbox | None:
    """The mailbox the service's mails go to; ``None`` in production or with SMTP."""
    if settings.deployment == "production" or not service.appointments.configured:
        return None
    mailer = service.appointments.appointment_setup.mailer
    return mailer if isinstance(mailer, Mailbox) else None


def _open_mailbox(service: AkteService, settings: Settings) -> Mailbox:
    mailbox = mailbox_of(service, settings)
    if mailbox is None:
        raise HTTPException(status_code=404)
    return mailbox


def paragraphs(mail: StoredMail) -> list[list[Line]]:
    """The body's paragraphs, each a list of lines, links marked."""
    result: list[list[Line]] = [[]]
    line: Line = []
    for text, is_link in mail.body_parts():
        if is_link:
            line.append((text, True))
            continue
        pieces = text.split("\n")
        for index, piece in enumerate(pieces):
            if index > 0:
                if line:
                    result[-1].append(line)
                elif result[-1]:
                    result.append([])  # an empty line ends the paragraph
                line = []
            if piece:
                line.append((piece, False))
    if line:
        result[-1].append(line)
    return [paragraph for paragraph in result if paragraph]


@router.get(MAILBOX_PATH, response_class=HTMLResponse)
def mailbox_page(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> HTMLResponse:
    mailbox = _open_mailbox(service, settings)
    return render(
        request,
        "mailbox/list.html.j2",
        {"mails": mailbox.mails(), "zone": settings.office_time_zone},
        offered=languages_of("mailbox"),
    )


@router.get(MAILBOX_PATH + "/{number}", response_class=HTMLResponse)
def mail_page(
    request: Request, number: int, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> HTMLResponse:
    mailbox = _open_mailbox(service, settings)
    try:
        mail = mailbox.get(number)
    except KeyError:
        raise HTTPException(status_code=404) from None
    return render(
        request,
        "mailbox/mail.html.j2",
        {"mail": mail, "paragraphs": paragraphs(mail), "zone": settings.office_time_zone},
        offered=languages_of("mailbox"),
    )
