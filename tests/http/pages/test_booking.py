"""The guided booking pages: only fitting appointment types are offered, free slots a
week at a time, the waitlist when booked out, a refused form keeps what was typed, a
booking made through the page exists and leads to its status page, in every language."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Final
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_service
from adapters.http.pages.booking import MODULE
from adapters.http.pages.languages import FALLBACK_LANGUAGE, languages_of
from adapters.http.pages.message_extraction import extracted, read_catalogue
from adapters.settings import Settings
from domain.appointments import AppointmentType, CalendarRules, OpeningHours, Situation
from service import AkteService
from service_appointment_mails import AppointmentSetup, solve_challenge
from tests.conftest import FakeClock
from tests.support.appointments import (
    FICTION_TYPE,
    OFFICE,
    PICKUP_TYPE,
    POINT,
    RULES,
    SECRET,
    TEST_BITS,
    RecordingMailer,
    local,
    person,
    proof,
)

STUDY_TYPE: Final = AppointmentType(
    code="study-extend",
    label_de="Aufenthaltserlaubnis zum Studium verlängern",
    topic="extend_residence_permit",
    procedure_kind="extend_title",
    legal_bases=("aufenthg-16b",),
    for_documents=("eat", "fiction_certificate"),
    duration_minutes=30,
)
WORK_TYPE: Final = AppointmentType(
    code="work-extend",
    label_de="Aufenthaltserlaubnis zur Beschäftigung verlängern",
    topic="extend_residence_permit",
    procedure_kind="extend_title",
    legal_bases=("aufenthg-18b",),
    for_documents=("eat",),
    duration_minutes=30,
)
SMALL_POINT: Final = "nebenstelle"
SMALL_TYPE: Final = AppointmentType(
    code="family-first",
    label_de="Familiennachzug: Erstantrag",
    topic="family_reunion",
    procedure_kind="family_reunion",
    legal_bases=(),
    for_documents=("visa",),
    duration_minutes=30,
)
SMALL_RULES: Final = CalendarRules(
    slot_minutes=30,
    counters=1,
    same_day_counters=0,
    same_day_release=time(7, 0),
    booking_horizon_days=2,
    timezone="Europe/Berlin",
    opening_hours=tuple(OpeningHours(day, time(8, 0), time(8, 30)) for day in range(1, 6)),
    hold_hours=48,
    reminder_hours=24,
)
STUDY: Final = {"holds": "eat", "purpose": "aufenthg-16b", "need": f"{POINT}:study-extend"}
TODAY_10_30: Final = "2024-03-04T10:30:00+01:00"
LANGUAGES: Final = ("de", "en", "uk", "ar", "tr")
PERSON: Final = {
    "surname": "Öztürk-Schmidt",
    "given_names": "Ayşe Nur",
    "date_of_birth": "1991-07-14",
    "email": "ayse@example.org",
    "email_again": "ayse@example.org",
    "phone": "+49 30 1234567",
}


@dataclass
class Site:
    http: TestClient
    service: AkteService
    clock: FakeClock

    def get(self, path: str, answers: dict[str, str] | None = None, **more: str) -> str:
        response = self.http.get(f"{path}?{urlencode({**(answers or {}), **more})}")
        assert response.status_code == 200, response.text
        return response.text

    def details_form(
        self, slot: str = TODAY_10_30, path: str = "/booking/details"
    ) -> dict[str, str]:
        """The hidden fields of the details form, as the browser sends them back."""
        extra = {"slot": slot} if path == "/booking/details" else {}
        page = self.get(path, STUDY if path == "/booking/details" else VISA_FAMILY, **extra)
        return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))

    def solved(self, form: dict[str, str]) -> dict[str, str]:
        bits = int(form["challenge"].split(".")[2])
        return {**form, "nonce": solve_challenge(form["challenge"], bits)}


VISA_FAMILY: Final = {"holds": "visa", "need": f"{SMALL_POINT}:family-first"}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data", default_office_id=OFFICE)
    clock = FakeClock()  # Monday 4 March 2024, 10:00 in Berlin
    service = build_service(settings, clock=clock)
    service.appointments.configure_appointments(
        AppointmentSetup(secret=SECRET, mailer=RecordingMailer(), proof_of_work_bits=TEST_BITS)
    )
    service.appointments.define_service_point(
        office_id=OFFICE, code=POINT, name="Bürgerbüro Rathaus", rules=RULES,
        types=(STUDY_TYPE, WORK_TYPE, PICKUP_TYPE, FICTION_TYPE), by="tl-01",
    )  # fmt: skip
    service.appointments.define_service_point(
        office_id=OFFICE, code=SMALL_POINT, name="Nebenstelle Nord", rules=SMALL_RULES,
        types=(SMALL_TYPE,), by="tl-01",
    )  # fmt: skip
    try:
        with TestClient(build_app(settings, service)) as http:
            yield Site(http, service, clock)
    finally:
        service.close()


def _options(page: str, name: str) -> list[str]:
    return re.findall(rf'name="{name}" value="([^"]*)"', page)


# ---------------------------------------------------------------- fitting types


def test_the_first_step_asks_what_a_person_holds_in_plain_words(site: Site) -> None:
    page = site.get("/booking", lang="en")

    assert _options(page, "holds") == [
        "eat", "fiction_certificate", "duldung", "aufenthaltsgestattung", "visa", "none"
    ]  # fmt: skip
    assert "A residence card (a plastic card with your photo)" in page
    assert "<small>Fiktionsbescheinigung</small>" in page
    assert 'action="/booking/purpose"' in page


def test_purposes_come_from_the_legal_bases_of_the_types_for_the_document(site: Site) -> None:
    page = site.get("/booking/purpose", holds="eat", lang="en")

    assert _options(page, "purpose") == ["aufenthg-16b", "aufenthg-18b", "other"]
    assert "Study at a university <small>§ 16b Abs. 1 AufenthG</small>" in page
    assert "Skilled work after a university degree <small>§ 18b AufenthG</small>" in page

    fiction = site.get("/booking/purpose", holds="fiction_certificate", lang="en")
    assert _options(fiction, "purpose") == [
        "aufenthg-16b", "aufenthg-81-3-1", "aufenthg-81-3-2", "aufenthg-81-4", "other"
    ]  # fmt: skip


def test_a_document_no_type_asks_the_purpose_of_skips_the_question(site: Site) -> None:
    response = site.http.get("/booking/purpose?holds=visa", follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == "/booking/need?holds=visa"


@pytest.mark.parametrize(
    ("answers", "offered"),
    [
        (
            {"holds": "eat", "purpose": "aufenthg-16b"},
            ["rathaus:study-extend", "rathaus:eat-pickup"],
        ),
        (
            {"holds": "eat", "purpose": "aufenthg-18b"},
            ["rathaus:work-extend", "rathaus:eat-pickup"],
        ),
        ({"holds": "eat", "purpose": "other"}, ["rathaus:eat-pickup"]),
        (
            {"holds": "fiction_certificate", "purpose": "aufenthg-81-4"},
            ["rathaus:fiction-certificate"],
        ),
        ({"holds": "visa"}, ["nebenstelle:family-first"]),
        ({"holds": "duldung"}, []),
    ],
)
def test_only_types_that_fit_what_is_held_are_offered(
    site: Site, answers: dict[str, str], offered: list[str]
) -> None:
    page = site.get("/booking/need", answers, lang="en")

    assert sorted(_options(page, "need")) == sorted(offered)
    if not offered:
        assert "No appointment we offer online fits what you hold." in page


def test_a_wrong_paragraph_cannot_be_chosen_even_by_editing_the_address(site: Site) -> None:
    wrong = {"holds": "eat", "purpose": "aufenthg-18b", "need": f"{POINT}:study-extend"}
    response = site.http.get(f"/booking/slots?{urlencode(wrong)}&lang=en")

    assert response.status_code == 422
    assert "Choose one of the appointments offered." in response.text
    assert sorted(_options(response.text, "need")) == ["rathaus:eat-pickup", "rathaus:work-extend"]

    unknown = site.http.get("/booking/need?holds=eat&purpose=aufenthg-18a&lang=en")
    assert unknown.status_code == 422
    assert 'id="purpose"' in unknown.text
    assert "Choose what your stay is for." in unknown.text


# ---------------------------------------------------------------------- slots


def test_slots_come_a_week_at_a_time_with_today_marked(site: Site) -> None:
    page = site.get("/booking/slots", STUDY, lang="en")

    days = re.findall(r'<h3 class="slot-day">([^<]+)', page)
    assert days == [
        "Monday, March 4, 2024 ",
        "Tuesday, March 5, 2024",
        "Wednesday, March 6, 2024",
        "Thursday, March 7, 2024",
    ]  # Friday 8 March is Women's Day, a public holiday in Berlin: nothing is offered
    slots = _options(page, "slot")
    # Today from the next slot on (10:00 has begun), then 8:00 to 11:30 each day.
    assert slots[:3] == [TODAY_10_30, "2024-03-04T11:00:00+01:00", "2024-03-04T11:30:00+01:00"]
    assert slots[3] == "2024-03-05T08:00:00+01:00"
    assert len(slots) == 3 + 3 * 8
    assert not any(slot.startswith("2024-03-08") for slot in slots)
    assert page.count('class="slot slot--today"') == 3
    assert '<span class="tag">today</span>' in page
    assert "10:30\u202fAM" in page  # as CLDR writes it, with a narrow space
    assert 'rel="prev"' not in page
    assert (
        "/booking/slots?holds=eat&amp;purpose=aufenthg-16b&amp;need=rathaus%3Astudy-extend&amp;week=2024-03-11"
        in page
    )

    following = site.get("/booking/slots", STUDY, week="2024-03-13", lang="en")
    assert _options(following, "slot")[0] == "2024-03-11T08:00:00+01:00"
    assert 'class="slot slot--today"' not in following
    assert "week=2024-03-04" in following  # previous week


def test_the_last_week_of_the_horizon_has_no_next_link(site: Site) -> None:
    page = site.get("/booking/slots", STUDY, week="2024-04-01", lang="en")

    # The horizon ends on Monday 1 April 2024, Easter Monday: a public holiday, no slots.
    assert _options(page, "slot") == []
    assert 'rel="next"' not in page
    assert 'rel="prev"' in page


def _book_small_point(site: Site, days: tuple[int, ...]) -> None:
    for n, day in enumerate(days):
        site.service.appointments.book_appointment(
            office_id=OFFICE, service_point_code=SMALL_POINT, appointment_type="family-first",
            starts_at=local(date(2024, 3, day), 8),
            situation=Situation("visa", None, "family_reunion"),
            person=person(n), proof=proof(site.service), by="public",
        )  # fmt: skip


def test_a_booked_out_type_says_so_and_offers_the_waitlist(site: Site) -> None:
    _book_small_point(site, (5, 6))  # every slot of the two days' horizon

    page = site.get("/booking/slots", VISA_FAMILY, lang="en")

    assert _options(page, "slot") == []
    assert "This appointment is booked out for the next 1 week." in page
    assert 'action="/booking/waitlist"' in page
    assert "Join the waitlist" in page
    assert "Nothing is free in this week." not in page


def test_a_full_week_points_to_the_next_free_time(site: Site) -> None:
    # Saturday 9 March: nothing left this week; Monday the 11th is within the horizon.
    site.clock.advance(days=5)

    page = site.get("/booking/slots", VISA_FAMILY, lang="en")

    assert _options(page, "slot") == []
    assert "Nothing is free in this week." in page
    assert "The next free time is on Monday, March 11, 2024." in page
    assert "week=2024-03-11" in page
    assert "booked out" not in page


# -------------------------------------------------------------------- details


def test_the_details_page_summarises_the_slot_and_carries_a_challenge(site: Site) -> None:
    page = site.get("/booking/details", STUDY, slot=TODAY_10_30, lang="en")

    assert "Monday, March 4, 2024, 10:30\u202fAM" in page
    assert "Study at a university" in page
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page))
    assert hidden["slot"] == TODAY_10_30
    assert hidden["need"] == "rathaus:study-extend"
    assert hidden["nonce"] == ""
    assert hidden["challenge"].count(".") == 3
    assert f'data-bits="{TEST_BITS}"' in page
    assert '<script src="/static/booking/proof-of-work.js" defer></script>' in page
    assert "<script>" not in page
    assert 'aria-live="polite"' in page
    assert "<noscript>" in page
    assert "Online booking needs JavaScript." in page
    assert 'action="/booking/details?lang=en"' in page
    assert site.http.get("/static/booking/proof-of-work.js").status_code == 200


@pytest.mark.parametrize("slot", ["9999-12-31T23:30:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_at_the_edge_of_the_calendar_asks_for_a_time_again(site: Site, slot: str) -> None:
    asked = site.http.get(f"/booking/details?{urlencode({**STUDY, 'slot': slot, 'lang': 'en'})}")
    assert asked.status_code == 422, asked.text
    assert asked.headers["content-type"].startswith("text/html")
    assert "Choose a time" in asked.text

    sent = site.http.post(
        "/booking/details?lang=en", data=site.solved(site.details_form()) | PERSON | {"slot": slot}
    )
    assert sent.status_code == 422, sent.text
    assert sent.headers["content-type"].startswith("text/html")
    assert "Choose a time" in sent.text


def test_a_successful_booking_is_recorded_and_leads_to_its_status_page(site: Site) -> None:
    form = site.solved(site.details_form()) | PERSON

    response = site.http.post("/booking/details?lang=tr", data=form, follow_redirects=False)

    assert response.status_code == 303, response.text
    location = urlsplit(response.headers["location"])
    assert location.path.startswith("/booking/status/")
    assert parse_qs(location.query) == {"lang": ["tr"]}
    view = site.service.appointments.booking_status(location.path.rsplit("/", 1)[1])
    assert view.status == "held"
    assert view.appointment is not None
    assert view.appointment.appointment_type == "study-extend"
    assert view.appointment.starts_at == local(date(2024, 3, 4), 10, 30)
    assert view.appointment.person.surname == "Öztürk-Schmidt"
    assert view.appointment.person.phone == "+49 30 1234567"
    assert view.appointment.language == "tr"
    assert view.appointment.holds_legal_basis == "aufenthg-16b"


def test_a_refused_form_keeps_every_typed_value_and_shows_the_summary(site: Site) -> None:
    form = (
        site.solved(site.details_form())
        | PERSON
        | {
            "email_again": "ayse@example.com",
            "given_names": "",
            "date_of_birth": "14.07.1991",
        }
    )

    response = site.http.post("/booking/details?lang=en", data=form)

    assert response.status_code == 422
    page = response.text
    start = page.index('id="error-summary"')
    summary = page[start : page.index("</ul>", start)]
    assert '<a href="#given_names">Enter your given names as in your passport.</a>' in summary
    assert '<a href="#date_of_birth">Enter a date of birth between 1900 and today.</a>' in summary
    assert '<a href="#email_again">The two e-mail addresses differ.' in summary
    assert 'id="email_again-error"' in page
    for name, value in (
        ("surname", "Öztürk-Schmidt"),
        ("date_of_birth", "14.07.1991"),
        ("email", "ayse@example.org"),
        ("email_again", "ayse@example.com"),
        ("phone", "+49 30 1234567"),
    ):
        assert f'name="{name}" type=' in page
        assert re.search(rf'id="{name}" name="{name}" type="\w+" value="{re.escape(value)}"', page)
    assert f'name="slot" value="{TODAY_10_30}"' in page
    assert (
        site.service.appointments.waitlist_length(
            office_id=OFFICE, code=POINT, appointment_type="study-extend"
        )
        == 0
    )


def test_without_the_proof_of_work_the_page_says_what_to_do_instead(site: Site) -> None:
    form = site.details_form() | PERSON  # no script ran: the nonce is empty

    response = site.http.post("/booking/details?lang=en", data=form)

    assert response.status_code == 422
    assert '<a href="#proof">Your browser did not prepare the booking' in response.text
    assert 'value="Öztürk-Schmidt"' in response.text


def test_a_slot_taken_meanwhile_links_back_to_the_free_times(site: Site) -> None:
    form = site.solved(site.details_form()) | PERSON
    for n in range(2):  # both seats of today's 10:30
        site.service.appointments.book_appointment(
            office_id=OFFICE, service_point_code=POINT, appointment_type="study-extend",
            starts_at=local(date(2024, 3, 4), 10, 30),
            situation=Situation("eat", "aufenthg-16b", "extend_residence_permit"),
            person=person(n), proof=proof(site.service), by="public",
        )  # fmt: skip

    response = site.http.post("/booking/details?lang=en", data=form)

    assert response.status_code == 422
    page = response.text
    assert '<a href="#slot">Someone else has just booked this time.' in page
    assert 'id="slot-error"' in page
    assert (
        "/booking/slots?holds=eat&amp;purpose=aufenthg-16b&amp;need=rathaus%3Astudy-extend&amp;week=2024-03-04"
        in page
    )
    assert 'value="ayse@example.org"' in page
    # A fresh challenge: the one sent was not spent, but the script solves anew.
    assert re.search(r'name="challenge" value="[^"]+"', page)


def test_a_spent_challenge_is_refused_with_a_new_one_prepared(site: Site) -> None:
    form = site.solved(site.details_form()) | PERSON
    first = site.http.post("/booking/details", data=form, follow_redirects=False)
    assert first.status_code == 303

    again = site.http.post(
        "/booking/details?lang=en",
        data=form | {"slot": "2024-03-04T11:00:00+01:00", "surname": "Other"},
    )

    assert again.status_code == 422
    assert '<a href="#proof">The security check ran out of time.' in again.text
    new = re.search(r'name="challenge" value="([^"]+)"', again.text)
    assert new is not None
    assert new.group(1) != form["challenge"]


def test_the_person_limit_is_explained(site: Site) -> None:
    for hour in (10, 11):
        form = site.solved(site.details_form(f"2024-03-05T{hour}:00:00+01:00")) | PERSON
        assert (
            site.http.post("/booking/details", data=form, follow_redirects=False).status_code == 303
        )

    form = site.solved(site.details_form("2024-03-06T10:00:00+01:00")) | PERSON
    response = site.http.post("/booking/details?lang=en", data=form)

    assert response.status_code == 422
    assert (
        '<a href="#booking">You already hold as many bookings as one person may.' in response.text
    )


def test_joining_the_waitlist_through_the_page(site: Site) -> None:
    _book_small_point(site, (5, 6))
    form = site.solved(site.details_form(path="/booking/waitlist")) | PERSON
    assert "slot" not in form

    response = site.http.post("/booking/waitlist?lang=en", data=form, follow_redirects=False)

    assert response.status_code == 303, response.text
    reference = urlsplit(response.headers["location"]).path.rsplit("/", 1)[1]
    assert site.service.appointments.booking_status(reference).status == "waiting"
    assert (
        site.service.appointments.waitlist_length(
            office_id=OFFICE, code=SMALL_POINT, appointment_type="family-first"
        )
        == 1
    )


# ------------------------------------------------------------------ languages


PAGES: Final[tuple[tuple[str, dict[str, str]], ...]] = (
    ("/booking", {}),
    ("/booking/purpose", {"holds": "eat"}),
    ("/booking/need", {"holds": "eat", "purpose": "aufenthg-16b"}),
    ("/booking/slots", STUDY),
    ("/booking/details", {**STUDY, "slot": TODAY_10_30}),
    ("/booking/waitlist", VISA_FAMILY),
)


@pytest.mark.long  # 30 cases of 2-4 s: bin/test-long runs them, so bin/test stays under ten minutes
@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("path", "answers"), PAGES)
def test_every_page_renders_in_every_language(
    site: Site, language: str, path: str, answers: dict[str, str]
) -> None:
    page = site.get(path, answers, lang=language)

    direction = "rtl" if language == "ar" else "ltr"
    assert f'<html lang="{language}" dir="{direction}">' in page


def test_the_pages_are_translated(site: Site) -> None:
    german = site.get("/booking/slots", STUDY, lang="de")
    assert "Montag, 4. März 2024" in german
    assert "10:30" in german
    arabic = site.get("/booking", lang="ar")
    assert "A residence card (a plastic card with your photo)" not in arabic


@pytest.mark.parametrize(
    "language", [code for code in languages_of(MODULE) if code != FALLBACK_LANGUAGE]
)
def test_the_booking_catalogues_are_complete(language: str) -> None:
    catalogue = read_catalogue(language, MODULE)
    assert catalogue is not None

    missing = [
        message.id
        for message in extracted()[MODULE]
        if message.id
        and (
            (found := catalogue.get(message.id)) is None
            or not found.string
            or (isinstance(found.string, tuple) and not all(found.string))
            or found.fuzzy
        )
    ]

    assert missing == []
    assert set(languages_of(MODULE)) >= {"de", "uk", "ar", "tr"}
