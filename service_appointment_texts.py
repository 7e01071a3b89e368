"""The words of the mails to people who book, in German and English.

A booking records the language the person booked in; its mails are written in German
for ``de`` and in English for every other language (the office writes its mails in
these two; the pages also speak Ukrainian, Arabic and Turkish). Plain text, no
template engine: :meth:`service_appointment_mails.AppointmentMails._compose` fills in
the facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class MailFacts:
    """What a mail says, already formatted for the person's language."""

    given_names: str
    surname: str
    appointment_type: str
    when: str
    held_until: str
    code: str
    link: str | None
    """The one-click confirmation page; ``None`` where the deployment sets none."""
    offered_from_waitlist: bool


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


DATE_FORMATS: Final = {"de": "%d.%m.%Y %H:%M", "en": "%d %B %Y, %H:%M"}


def mail_language(language: str) -> str:
    """The language a mail is written in: German or English."""
    return "de" if language == "de" else "en"


def compose_text(kind: str, language: str, facts: MailFacts) -> MailText:
    """The subject and body of a ``confirmation``, ``reminder``, ``lapse_notice`` or
    ``cancellation_notice``."""
    if mail_language(language) == "de":
        return _german(kind, facts)
    return _english(kind, facts)


def _german(kind: str, f: MailFacts) -> MailText:
    greeting = f"Guten Tag {f.given_names} {f.surname},"
    link = (
        f"\n\nOder bestätigen Sie mit einem Klick auf dieser Seite: {f.link}"
        if f.link is not None
        else ""
    )
    if kind == "confirmation":
        opening = (
            "für Sie ist ein Platz auf der Warteliste frei geworden. "
            if f.offered_from_waitlist
            else ""
        )
        subject = "Bitte bestätigen Sie Ihren Termin"
        text = (
            f"{opening}Ihr Termin ({f.appointment_type}) am {f.when} ist für Sie "
            f"reserviert bis {f.held_until}.\n\nBestätigungscode: {f.code}{link}\n\n"
            "Ohne Bestätigung verfällt die Reservierung; Sie erhalten vorher eine "
            "Erinnerung."
        )
    elif kind == "reminder":
        subject = "Erinnerung: Ihr Termin ist noch nicht bestätigt"
        text = (
            f"Ihr Termin am {f.when} ist noch nicht bestätigt. Die Reservierung verfällt "
            f"am {f.held_until}.\n\nBestätigungscode: {f.code}{link}"
        )
    elif kind == "cancellation_notice":
        subject = "Ihr Termin wurde abgesagt"
        text = (
            f"Ihr Termin ({f.appointment_type}) am {f.when} wurde von der "
            "Ausländerbehörde abgesagt. Bitte entschuldigen Sie. Sie können einen neuen "
            "Termin buchen."
        )
    else:
        subject = "Ihre Terminreservierung ist verfallen"
        text = (
            f"Ihr Termin am {f.when} wurde nicht bis {f.held_until} bestätigt; die "
            "Reservierung ist verfallen. Sie können einen neuen Termin buchen."
        )
    return MailText(subject, f"{greeting}\n\n{text}\n")


def _english(kind: str, f: MailFacts) -> MailText:
    greeting = f"Dear {f.given_names} {f.surname},"
    link = f"\n\nOr confirm with one click on this page: {f.link}" if f.link is not None else ""
    if kind == "confirmation":
        opening = (
            "A place has become free for you from the waiting list. "
            if (f.offered_from_waitlist)
            else ""
        )
        subject = "Please confirm your appointment"
        text = (
            f"{opening}Your appointment ({f.appointment_type}) on {f.when} is held for you "
            f"until {f.held_until}.\n\nConfirmation code: {f.code}{link}\n\n"
            "Without confirmation the booking lapses; you will get a reminder before."
        )
    elif kind == "reminder":
        subject = "Reminder: your appointment is not yet confirmed"
        text = (
            f"Your appointment on {f.when} is not confirmed yet. The booking lapses "
            f"on {f.held_until}.\n\nConfirmation code: {f.code}{link}"
        )
    elif kind == "cancellation_notice":
        subject = "Your appointment has been cancelled"
        text = (
            f"Your appointment ({f.appointment_type}) on {f.when} has been cancelled by "
            "the foreigners' office. We apologise. You can book a new appointment."
        )
    else:
        subject = "Your appointment booking has lapsed"
        text = (
            f"Your appointment on {f.when} was not confirmed by {f.held_until}; the "
            "booking has lapsed. You can book a new appointment."
        )
    return MailText(subject, f"{greeting}\n\n{text}\n")
