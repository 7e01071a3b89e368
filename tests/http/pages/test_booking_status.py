"""The booking status page and what a person does after booking: every state in plain
words, the page's forms (confirm, send again, correct the address, hold longer, cancel),
the mails' one-click link that only a button confirms, and the mails in German and
English."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Final

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.pages.booking_status import confirmation_link_template, mask_email
from adapters.http.pages.languages import LANGUAGES
from adapters.settings import Settings
from service import AkteService
from service_appointment_mails import AppointmentSetup
from service_ports import MailRefused, OutgoingMail
from tests.conftest import FakeClock
from tests.service.test_appointments import NEXT_MONDAY
from tests.support.appointments import (
    EXTEND_TYPE,
    OFFICE,
    POINT,
    RULES,
    SECRET,
    STUDENT,
    TEST_BITS,
    local,
    person,
    proof,
)

BASE: Final = "https://termine.example"
_LINK: Final = re.compile(r"https://termine\.example(/booking/confirm/[^\s?]+)\?lang=(\w+)")


@dataclass
class Mails:
    """Records mails; refuses those to addresses listed in ``refuse``."""

    sent: list[OutgoingMail]
    refuse: set[str]

    def send(self, mail: OutgoingMail) -> None:
        if mail.to in self.refuse:
            raise MailRefused("smtp-550")
        self.sent.append(mail)

    def link_of(self, mail: OutgoingMail) -> str:
        """The path (and language) of a mail's one-click link: how a test follows it."""
        found = _LINK.search(mail.body)
        assert found is not None, mail.body
        return f"{found.group(1)}?lang={found.group(2)}"

    def code_of(self, mail: OutgoingMail) -> str:
        found = re.search(r"(?:Bestätigungscode|Confirmation code): (\w+)", mail.body)
        assert found is not None
        return found.group(1)


@dataclass
class Office:
    http: TestClient
    service: AkteService
    mails: Mails
    clock: FakeClock

    def book(self, n: int = 0, *, language: str = "de", hour: int = 9) -> str:
        recorded = self.service.appointments.book_appointment(
            office_id=OFFICE,
            service_point_code=POINT,
            appointment_type=EXTEND_TYPE.code,
            starts_at=local(NEXT_MONDAY, hour),
            situation=STUDENT,
            person=person(n),
            proof=proof(self.service),
            language=language,
            by="public",
        )
        assert recorded.reference is not None
        return recorded.reference

    def page(self, reference: str, lang: str = "en") -> str:
        response = self.http.get(f"/booking/status/{reference}?lang={lang}")
        assert response.status_code == 200, response.text
        return response.text

    def act(self, reference: str, lang: str = "en", **form: str) -> object:
        return self.http.post(
            f"/booking/status/{reference}?lang={lang}", data=form, follow_redirects=False
        )


@pytest.fixture
def office(tmp_path: Path) -> Iterator[Office]:
    clock = FakeClock()
    settings = Settings(store="sqlite", data_dir=tmp_path / "data", default_office_id=OFFICE)
    service = build_service(settings, clock=clock)
    mails = Mails([], set())
    service.appointments.configure_appointments(
        AppointmentSetup(
            secret=SECRET,
            mailer=mails,
            proof_of_work_bits=TEST_BITS,
            confirmation_link=confirmation_link_template(BASE),
        )
    )
    service.appointments.define_service_point(
        office_id=OFFICE, code=POINT, name="Bürgerbüro Rathaus", rules=RULES,
        types=(EXTEND_TYPE,), by="tl-01",
    )  # fmt: skip
    try:
        with TestClient(build_app(settings, service)) as http:
            yield Office(http, service, mails, clock)
    finally:
        service.close()


def _state(text: str) -> str:
    found = re.search(r'id="state" data-state="(\w+)"', text)
    assert found is not None
    return found.group(1)


def test_a_held_booking_says_in_large_type_it_is_not_confirmed(office: Office) -> None:
    reference = office.book()
    text = office.page(reference)

    assert _state(text) == "held"
    assert '<div class="notice notice--important" id="state"' in text
    assert "Your appointment is NOT YET CONFIRMED" in text
    assert "pe…0@example.org" in text  # the address, masked
    assert "person0@example.org" not in text
    assert "Muster0" not in text
    assert "the booking lapses and the appointment goes to someone else" in text
    # Held for 48 hours from Monday 4 March 09:00 UTC, shown in Berlin time.
    assert "Confirm it by Mar 6, 2024, 10:00:00" in text
    assert 'name="code"' in text
    assert 'name="action" value="resend"' in text
    assert 'name="email"' in text
    assert 'name="action" value="extend"' in text
    assert f'href="/booking/status/{reference}/cancel?lang=en"' in text


def test_an_unknown_reference_says_what_to_check(office: Office) -> None:
    response = office.http.get("/booking/status/" + "x" * 22 + "?lang=en")

    assert response.status_code == 404
    assert "We cannot find this booking" in response.text
    assert "capital and small letters count" in response.text
    assert "/booking" in response.text


def test_confirming_with_the_mailed_code(office: Office) -> None:
    reference = office.book()
    code = office.mails.code_of(office.mails.sent[0])

    answer = office.act(reference, action="confirm", code=code.lower())

    assert answer.status_code == 303  # type: ignore[attr-defined]
    location = answer.headers["location"]  # type: ignore[attr-defined]
    assert location == f"/booking/status/{reference}?done=confirmed&lang=en"
    text = office.http.get(location).text
    assert _state(text) == "confirmed"
    assert "Thank you. Your appointment is confirmed." in text
    assert 'name="code"' not in text


def test_a_wrong_code_is_refused_with_the_typed_value_kept(office: Office) -> None:
    reference = office.book()

    answer = office.act(reference, action="confirm", code="WRONG123")

    assert answer.status_code == 422  # type: ignore[attr-defined]
    text = answer.text  # type: ignore[attr-defined]
    assert 'class="error-summary"' in text
    assert '<a href="#code">This is not the code from your confirmation mail.' in text
    assert 'id="code-error"' in text
    assert 'value="WRONG123"' in text
    assert office.service.appointments.booking_status(reference).status == "held"


def test_an_empty_code_is_asked_for_in_german(office: Office) -> None:
    reference = office.book()

    answer = office.act(reference, lang="de", action="confirm", code=" ")

    assert answer.status_code == 422  # type: ignore[attr-defined]
    assert "Geben Sie den Code aus Ihrer Bestätigungsmail ein." in answer.text  # type: ignore[attr-defined]


def test_sending_the_mail_again(office: Office) -> None:
    reference = office.book()

    answer = office.act(reference, action="resend")

    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert len(office.mails.sent) == 2
    assert office.mails.code_of(office.mails.sent[1]) == office.mails.code_of(office.mails.sent[0])
    assert (
        "We have sent the confirmation mail again."
        in office.http.get(
            answer.headers["location"]  # type: ignore[attr-defined]
        ).text
    )


def test_a_failed_mail_says_what_to_do_and_a_corrected_address_gets_the_mail(
    office: Office,
) -> None:
    office.mails.refuse.add("person0@example.org")
    reference = office.book()
    text = office.page(reference)
    assert 'data-mail-status="failed"' in text
    assert "Our mail server could not send the Confirmation mail." in text
    assert "correct it, or send the mail again" in text

    refused = office.act(reference, action="correct_email", email="not-an-address")
    assert refused.status_code == 422  # type: ignore[attr-defined]
    assert 'value="not-an-address"' in refused.text  # type: ignore[attr-defined]
    assert 'id="email-error"' in refused.text  # type: ignore[attr-defined]

    answer = office.act(reference, action="correct_email", email="ayse.m@example.org")

    assert answer.status_code == 303  # type: ignore[attr-defined]
    assert [mail.to for mail in office.mails.sent] == ["ayse.m@example.org"]
    text = office.http.get(answer.headers["location"]).text  # type: ignore[attr-defined]
    assert "ay…m@example.org" in text
    assert "We have changed the address" in text


def test_a_bounced_mail_is_shown_with_what_to_do(office: Office) -> None:
    reference = office.book()
    appointment = office.service.appointments.booking_status(reference).appointment
    assert appointment is not None
    office.service.appointments.record_mail_bounce(appointment.id, mail_number=1, reason="5.1.1")

    text = office.page(reference)

    assert 'data-mail-status="bounced"' in text
    assert "came back undelivered" in text
    assert "call the office" in text


def test_the_hold_is_extended_once(office: Office) -> None:
    reference = office.book()

    answer = office.act(reference, action="extend")

    assert answer.status_code == 303  # type: ignore[attr-defined]
    text = office.http.get(answer.headers["location"]).text  # type: ignore[attr-defined]
    assert "Your booking is now held longer." in text
    # 48 hours more: Friday 10:00 in Berlin, still two hours before Monday's slot.
    assert "Confirm it by Mar 8, 2024, 10:00:00" in text
    assert "You have already held your booking longer once." in text
    assert 'value="extend"' not in text

    again = office.act(reference, action="extend")
    assert again.status_code == 422  # type: ignore[attr-defined]
    assert '<a href="#extend">The booking cannot be held longer.' in again.text  # type: ignore[attr-defined]


def test_a_hold_close_to_the_start_cannot_be_extended(office: Office) -> None:
    office.clock.now = local(NEXT_MONDAY, 7)  # same-day seats released, slot at 10:00
    reference = office.book(hour=10)

    text = office.page(reference)

    assert "The appointment begins too soon to hold the booking longer." in text
    assert 'value="extend"' not in text


def test_cancelling_asks_first(office: Office) -> None:
    reference = office.book()

    question = office.http.get(f"/booking/status/{reference}/cancel?lang=en")
    assert question.status_code == 200
    assert "Cancel your booking?" in question.text
    assert office.service.appointments.booking_status(reference).status == "held"

    answer = office.http.post(f"/booking/status/{reference}/cancel?lang=en", follow_redirects=False)

    assert answer.status_code == 303
    text = office.http.get(answer.headers["location"]).text
    assert _state(text) == "cancelled"
    assert "You have cancelled this appointment." in text
    assert "Your booking is cancelled." in text


def test_the_reminder_and_the_lapse_are_shown(office: Office) -> None:
    reference = office.book()
    office.clock.advance(hours=25)
    office.service.appointments.run_appointment_tick()
    text = office.page(reference)
    assert _state(text) == "held"
    assert "We have sent you a reminder" in text
    assert "Reminder mail" in text

    office.clock.advance(hours=24)
    office.service.appointments.run_appointment_tick()
    text = office.page(reference)

    assert _state(text) == "lapsed"
    assert "it was not confirmed in time" in text
    assert "Notice that the booking lapsed" in text
    assert 'name="code"' not in text


def test_an_office_cancellation_is_shown_with_its_notice(office: Office) -> None:
    reference = office.book()
    booked = office.service.appointments.booking_status(reference).appointment
    assert booked is not None
    office.service.appointments.cancel_appointment(
        booked.id, expected_version=None, by="sb-01", reason="Personalausfall"
    )
    text = office.page(reference)

    assert _state(text) == "cancelled"
    assert "Notice that the office cancelled the appointment" in text
    assert "Personalausfall" not in text
    german = office.page(reference, lang="de")
    assert "Mitteilung, dass die Ausländerbehörde den Termin abgesagt hat" in german


def test_the_waitlist_and_an_offered_seat(office: Office) -> None:
    appointments = office.service.appointments
    first = office.book(1)  # the slot's only seat bookable ahead of its day
    waiting = appointments.join_waitlist(
        office_id=OFFICE, service_point_code=POINT, appointment_type=EXTEND_TYPE.code,
        situation=STUDENT, person=person(3), proof=proof(office.service), by="public",
    ).reference  # fmt: skip
    assert waiting is not None
    text = office.page(waiting)
    assert _state(text) == "waiting"
    assert "Your place in the line: 1." in text
    assert "Leave the waiting list" in text

    appointments.cancel_booking(first)
    text = office.page(waiting)

    assert _state(text) == "offered"
    assert "A place has become free for you from the waiting list." in text
    assert "Your appointment is NOT YET CONFIRMED" in text
    offer_mail = office.mails.sent[-1]
    assert offer_mail.to == "person3@example.org"
    assert "Platz auf der Warteliste frei geworden" in offer_mail.body


def test_the_mail_link_shows_one_button_and_only_the_button_confirms(office: Office) -> None:
    reference = office.book()
    link = office.mails.link_of(office.mails.sent[0])
    assert link.endswith("?lang=de")

    shown = office.http.get(link)
    assert shown.status_code == 200
    assert "NICHT BESTÄTIGT" in shown.text
    assert shown.text.count('<button type="submit"') == 1
    # A mail scanner's fetch confirms nothing.
    assert office.service.appointments.booking_status(reference).status == "held"

    pressed = office.http.post(link, follow_redirects=False)

    assert pressed.status_code == 303
    assert office.service.appointments.booking_status(reference).status == "confirmed"
    after = office.http.get(pressed.headers["location"])
    assert _state(after.text) == "confirmed"


def test_a_link_with_a_wrong_code_finds_nothing(office: Office) -> None:
    office.book()
    link = office.mails.link_of(office.mails.sent[0])
    forged = re.sub(r"/(\w{8})\?", "/AAAAAAAA?", link)

    assert office.http.get(forged).status_code == 404
    assert office.http.post(forged).status_code == 404


@pytest.mark.parametrize(
    ("language", "query", "headers", "heading"),
    [
        ("de", "?lang=de", {}, "Wir finden diese Buchung nicht"),
        ("en", "", {"accept-language": "en-GB,en;q=0.8"}, "We cannot find this booking"),
    ],
    ids=["de", "en"],
)
def test_a_mangled_mail_link_says_what_to_check(
    office: Office, language: str, query: str, headers: dict[str, str], heading: str
) -> None:
    reference = office.book()
    link = office.mails.link_of(office.mails.sent[0]).split("?")[0]
    appointment_id = link.split("/")[3]
    mangled = (
        "/booking/confirm/not-a-uuid/ABCD2345",
        link.replace(appointment_id, appointment_id[:20]),  # cut short by a mail program
        link.replace(appointment_id, appointment_id + "%3E"),  # the mail's bracket kept
    )
    for path in mangled:
        for method in ("GET", "POST"):
            response = office.http.request(method, path + query, headers=headers)

            assert response.status_code == 404, (method, path)
            assert response.headers["content-type"].startswith("text/html")
            assert response.headers["content-language"] == language
            assert f'<html lang="{language}" dir="ltr">' in response.text
            main = re.search(r"<main\b[^>]*>(.*)</main>", response.text, re.DOTALL)
            assert main is not None
            assert f"<h1>{heading}</h1>" in main.group(1)
            assert '<a href="/booking">' in main.group(1)  # where to start again
            assert appointment_id[:20] not in main.group(1)
    assert office.service.appointments.booking_status(reference).status == "held"


@pytest.mark.parametrize(
    ("language", "subject", "words"),
    [
        ("de", "Bitte bestätigen Sie Ihren Termin", "Oder bestätigen Sie mit einem Klick"),
        ("en", "Please confirm your appointment", "Or confirm with one click"),
        ("tr", "Please confirm your appointment", "Or confirm with one click"),
    ],
)
def test_mails_in_the_booking_language_with_the_link(
    office: Office, language: str, subject: str, words: str
) -> None:
    office.book(language=language)

    mail = office.mails.sent[0]

    assert mail.subject == subject
    assert words in mail.body
    assert office.mails.link_of(mail).endswith(f"?lang={language}")


def test_the_reminder_in_english(office: Office) -> None:
    office.book(language="en")
    office.clock.advance(hours=25)
    office.service.appointments.run_appointment_tick()

    reminder = office.mails.sent[-1]

    assert reminder.subject == "Reminder: your appointment is not yet confirmed"
    assert "/booking/confirm/" in reminder.body


@pytest.mark.parametrize("code", list(LANGUAGES))
def test_every_page_in_every_language(office: Office, code: str) -> None:
    reference = office.book()
    link = office.mails.link_of(office.mails.sent[0]).replace("?lang=de", f"?lang={code}")
    pages = [
        office.http.get(f"/booking/status/{reference}?lang={code}"),
        office.http.get(f"/booking/status/{reference}/cancel?lang={code}"),
        office.http.get(link),
        office.http.get(f"/booking/status/{'z' * 22}?lang={code}"),
    ]
    for page in pages:
        assert page.headers["content-language"] == code
        assert f'<html lang="{code}" dir="{LANGUAGES[code].direction}">' in page.text
    assert 'dir="rtl"' in pages[0].text if code == "ar" else 'dir="ltr"' in pages[0].text


def test_the_address_is_masked() -> None:
    assert mask_email("ayse@example.org") == "ay…e@example.org"
    assert mask_email("ab@example.org") == "a…@example.org"


def test_the_page_times_are_the_service_points(office: Office) -> None:
    reference = office.book()
    appointment = office.service.appointments.booking_status(reference).appointment
    assert appointment is not None
    assert appointment.held_until - appointment.booked_at == timedelta(hours=48)


def test_a_form_sent_twice_acts_once(office: Office) -> None:
    """Each form carries its own key (adapters/http/idempotency.py, FORM_FIELD): a double
    click on "send the mail again" sends one mail and answers both clicks alike."""
    reference = office.book()
    page = office.page(reference)
    found = re.search(
        r'name="idempotency_key" value="(\w+)">\s*<input type="hidden" name="action" '
        r'value="resend">',
        page,
    )
    assert found is not None

    first = office.act(reference, idempotency_key=found.group(1), action="resend")
    again = office.act(reference, idempotency_key=found.group(1), action="resend")

    assert first.status_code == again.status_code == 303  # type: ignore[attr-defined]
    assert first.headers["location"] == again.headers["location"]  # type: ignore[attr-defined]
    assert len(office.mails.sent) == 2  # the booking's mail and one sent again
