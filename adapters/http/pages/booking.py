"""The guided appointment booking: what a person holds, what for, what they need, when.

Every step is a plain HTML form that works without JavaScript; the answers travel as
query parameters from step to step, so a step can be bookmarked, reloaded or changed:

* ``GET /booking``: "What do you hold now?" (``holds``: a residence card, a
  Fiktionsbescheinigung, a Duldung, an Aufenthaltsgestattung, a visa, nothing), in plain
  words with the German term small.
* ``GET /booking/purpose?holds=…``: the purpose of what is held (``purpose``), in plain
  words with its paragraph small, never asked for by number. The purposes offered are
  the legal bases of the appointment types that take the document held, plus "another
  purpose"; a document no type restricts by legal basis skips this step.
* ``GET /booking/need?holds=…&purpose=…``: "What do you need?" (``need``, the service
  point and the appointment type as ``point:type``): only the types that fit what the
  person holds (:meth:`domain.appointments.ServicePoint.fitting_types`), so a booking on
  the wrong paragraph cannot be chosen.
* ``GET /booking/slots?…&need=…[&week=YYYY-MM-DD]``: the free slots of one week (Monday
  to Sunday, within the booking horizon), a heading per day, same-day slots marked;
  booked out over the whole horizon: said so, with the waitlist offered.
* ``GET``/``POST /booking/details?…&slot=…``: name, given names, date of birth, e-mail
  (typed twice), phone; the proof of work is solved by ``static/booking/proof-of-work.js``
  into the hidden ``nonce`` while the person types. ``GET``/``POST /booking/waitlist``:
  the same form, to join the waitlist. Success: ``303`` to ``/booking/status/{reference}``.

The pages call what ``/appointments/offers``, ``/challenges``, ``/bookings`` and
``/waitlist`` call; public bookings go to the deployment's default office.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.pages.contact import PLAIN_TOPICS
from adapters.http.pages.languages import Language, chosen_language, languages_of
from adapters.http.pages.rendering import render
from adapters.http.pages.translations import translations_for
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from domain.appointments import (
    AppointmentType,
    AppointmentTypeDoesNotFit,
    BookingLimitReached,
    Person,
    ServicePoint,
    Situation,
    SlotNotBookable,
    SlotTaken,
)
from domain.errors import InvalidValue
from domain.values import MAX_EMAIL, require_email, require_lawful_time
from service import AkteService
from service_appointment_mails import AppointmentsNotConfigured, ChallengeRefused, SlotBusy
from service_appointments import MAX_SLOT_DAYS, ServicePointNotFound
from service_common import PUBLIC_APPLICANT

router = APIRouter(include_in_schema=False)

MODULE: Final = "booking"
START_PATH: Final = "/booking"
PURPOSE_PATH: Final = "/booking/purpose"
NEED_PATH: Final = "/booking/need"
SLOTS_PATH: Final = "/booking/slots"
DETAILS_PATH: Final = "/booking/details"
WAITLIST_PATH: Final = "/booking/waitlist"
STATUS_PATH: Final = "/booking/status/{reference}"
"""The booking's own page (:mod:`adapters.http.pages.booking_status`)."""
FORM_URLENCODED: Final = frozenset({"application/x-www-form-urlencoded"})
FORM_MEDIA_TYPES: Final = dict.fromkeys((DETAILS_PATH, WAITLIST_PATH), FORM_URLENCODED)
"""The forms' bodies, accepted beside JSON on these paths."""
BODY_LIMITS: Final = dict.fromkeys((DETAILS_PATH, WAITLIST_PATH), 16_384)
"""Small forms open to anyone (as the API's, see its BODY_LIMITS)."""
OTHER_PURPOSE: Final = "other"
NEED_SEPARATOR: Final = ":"
MAX_NAME: Final = 200
MAX_PHONE: Final = 40
PERSON_FIELDS: Final = ("surname", "given_names", "date_of_birth", "email", "email_again", "phone")
ANSWER_FIELDS: Final = ("holds", "purpose", "need")

Visitor = Annotated[Principal | None, Depends(allow_public(Permission.APPOINTMENT_BOOK))]


def N_(message: str) -> str:  # noqa: N802 - the gettext marker's conventional name
    """Marks a message for extraction; translated when the page is rendered."""
    return message


HELD: Final = (
    ("eat", N_("A residence card (a plastic card with your photo)"), "Aufenthaltstitel (eAT)"),
    ("fiction_certificate", N_("A paper saying your stay is allowed while we decide"),
     "Fiktionsbescheinigung"),
    ("duldung", N_("A paper saying your deportation is suspended"), "Duldung"),
    ("aufenthaltsgestattung", N_("A paper for the time of your asylum procedure"),
     "Aufenthaltsgestattung"),
    ("visa", N_("A visa in your passport"), "Visum"),
    ("none", N_("None of these, or I am not sure"), None),
)  # fmt: skip
"""What a person may hold (:data:`domain.appointments.DocumentHeld`): plain words, and
the German term, as it is printed on the paper, small."""
HELD_CODES: Final = frozenset(code for code, _label, _term in HELD)

PURPOSES: Final = {
    "aufenthg-16a": N_("Vocational training"),
    "aufenthg-16b": N_("Study at a university"),
    "aufenthg-16d": N_("Recognition of a qualification from abroad"),
    "aufenthg-16f": N_("A language course or school"),
    "aufenthg-17": N_("Looking for a training place or a place to study"),
    "aufenthg-18a": N_("Skilled work after vocational training"),
    "aufenthg-18b": N_("Skilled work after a university degree"),
    "aufenthg-18d": N_("Research"),
    "aufenthg-18g": N_("Work with an EU Blue Card"),
    "aufenthg-19c": N_("Other work"),
    "aufenthg-20": N_("Looking for work after studies, training or research in Germany"),
    "aufenthg-20a": N_("Looking for work with the Opportunity Card"),
    "aufenthg-21": N_("Working for yourself"),
    "aufenthg-28-1": N_("Family of a German citizen"),
    "aufenthg-30": N_("Living with your husband or wife"),
    "aufenthg-31": N_("Staying after separating from your husband or wife"),
    "aufenthg-32": N_("A child living with their parents"),
    "aufenthg-33": N_("A child born in Germany"),
    "aufenthg-36": N_("Parents and other family members"),
    "aufenthg-24": N_("Protection after fleeing the war in Ukraine"),
    "aufenthg-25-1": N_("Asylum granted"),
    "aufenthg-25-2-1": N_("Recognised as a refugee"),
    "aufenthg-25-2-2": N_("Subsidiary protection"),
    "aufenthg-25-3": N_("Protection from deportation"),
    "aufenthg-25-4": N_("A short stay for urgent humanitarian or personal reasons"),
    "aufenthg-25-5": N_("Leaving Germany is not possible"),
    "aufenthg-25a": N_("Well-integrated young people"),
    "aufenthg-25b": N_("Lasting integration"),
    "aufenthg-104c": N_("Opportunity right of residence"),
    "aufenthg-9": N_("Staying for good (settlement permit)"),
    "aufenthg-9a": N_("Long-term residence in the EU"),
    "aufenthg-18c-1": N_("Staying for good as a skilled worker"),
    "aufenthg-18c-2": N_("Staying for good with an EU Blue Card"),
    "aufenthg-18c-3": N_("Staying for good as a highly qualified person"),
    "aufenthg-26-3": N_("Staying for good after asylum or refugee protection"),
    "aufenthg-26-4": N_("Staying for good after other humanitarian residence"),
    "aufenthg-28-2": N_("Staying for good as family of a German citizen"),
    "aufenthg-60a": N_("Deportation suspended"),
    "aufenthg-60c": N_("Deportation suspended for vocational training"),
    "aufenthg-60d": N_("Deportation suspended for work"),
    "asylg-55": N_("Staying during the asylum procedure"),
    "aufenthg-81-3-1": N_("You applied for a first permit while your stay was allowed"),
    "aufenthg-81-3-2": N_("You applied late; your deportation is suspended meanwhile"),
    "aufenthg-81-4": N_("You applied in time for a new permit; your old one goes on meanwhile"),
    "aufenthg-6-3": N_("A visa for a long stay (type D)"),
    "aufenthg-7-1-3": N_("A purpose the law does not name elsewhere"),
}
"""Each legal basis as the purpose a person knows; the paragraph is shown small."""

# Refusals, in the page's words.
_CHOOSE_HELD: Final = N_("Choose what you hold now.")
_CHOOSE_PURPOSE: Final = N_("Choose what your stay is for.")
_CHOOSE_NEED: Final = N_("Choose one of the appointments offered.")
_CHOOSE_SLOT: Final = N_("Choose a time.")
_REQUIRED: Final = {
    "surname": N_("Enter your family name as in your passport."),
    "given_names": N_("Enter your given names as in your passport."),
    "date_of_birth": N_("Enter your date of birth."),
    "email": N_("Enter your e-mail address: the booking must be confirmed from it."),
    "email_again": N_("Enter your e-mail address a second time."),
}
_INVALID: Final = {
    "surname": N_("Your family name is too long or holds characters we cannot store."),
    "given_names": N_("Your given names are too long or hold characters we cannot store."),
    "date_of_birth": N_("Enter a date of birth between 1900 and today."),
    "email": N_("Enter an e-mail address in the form name@example.org."),
    "phone": N_("Enter a phone number of at most 40 characters, or leave it empty."),
}
_EMAILS_DIFFER: Final = N_("The two e-mail addresses differ. Type the address again.")
_NO_SCRIPT: Final = N_(
    "Your browser did not prepare the booking: it needs JavaScript. "
    "Switch it on, or call us or come to the counter."
)
_CHALLENGE: Final = N_(
    "The security check ran out of time. We have prepared a new one: send the form again."
)
_SLOT_TAKEN: Final = N_("Someone else has just booked this time. Please choose another time.")
_SLOT_GONE: Final = N_("This time can no longer be booked. Please choose another time.")
_SLOT_BUSY: Final = N_("Many people are booking right now. Send the form again in a moment.")
_LIMIT: Final = N_(
    "You already hold as many bookings as one person may. "
    "Cancel one on its status page first, or call us."
)
_NOT_FITTING: Final = N_("This appointment does not fit your answers. Please choose again.")
_REFUSED: Final = N_("We could not take this booking. Please check your answers.")


def _translate(language: Language, message: str, **values: object) -> str:
    text = translations_for(language.code).gettext(message)
    return text % values if values else text


# ------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answers:
    """The answers so far, as the steps carry them."""

    holds: str = ""
    purpose: str = ""
    need: str = ""

    @classmethod
    def of(cls, values: Mapping[str, Any]) -> Answers:
        found = {name: values.get(name) for name in ANSWER_FIELDS}
        return cls(**{k: v[:200] for k, v in found.items() if isinstance(v, str)})

    def query(self, **more: str) -> str:
        pairs = {name: getattr(self, name) for name in ANSWER_FIELDS} | more
        return urlencode({name: value for name, value in pairs.items() if value})

    def hidden(self) -> list[tuple[str, str]]:
        """The answers as hidden fields of the next step's form."""
        return [(name, getattr(self, name)) for name in ANSWER_FIELDS if getattr(self, name)]


@dataclass(frozen=True)
class Choice:
    """An appointment type at a service point, as the person may choose it."""

    point: ServicePoint
    type: AppointmentType

    @property
    def value(self) -> str:
        return f"{self.point.code}{NEED_SEPARATOR}{self.type.code}"


@dataclass(frozen=True)
class Resolved:
    """The answers checked against what the office offers now."""

    answers: Answers
    purposes: list[str] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    chosen: Choice | None = None

    @property
    def legal_basis(self) -> str | None:
        purpose = self.answers.purpose
        return None if purpose in ("", OTHER_PURPOSE) else purpose

    def situation(self) -> Situation:
        assert self.chosen is not None
        return Situation(self.answers.holds, self.legal_basis, self.chosen.type.topic)  # type: ignore[arg-type]


class _Back(Exception):
    """An answer is missing or no longer fits: the page of that step, with the reason."""

    def __init__(self, step: str, message: str) -> None:
        super().__init__(step)
        self.step = step
        self.message = message


def _purposes(points: list[ServicePoint], holds: str) -> list[str]:
    """The legal bases the types taking ``holds`` are restricted to, in catalogue order."""
    bases = {
        basis
        for point in points
        for t in point.types.values()
        if not t.for_documents or holds in t.for_documents
        for basis in t.legal_bases
    }
    order = list(load_catalogue().legal_bases)
    return sorted(bases, key=lambda code: order.index(code) if code in order else len(order))


def _choices(points: list[ServicePoint], holds: str, purpose: str) -> list[Choice]:
    basis = None if purpose in ("", OTHER_PURPOSE) else purpose
    found = []
    for point in points:
        for topic in sorted({t.topic for t in point.types.values()}):
            situation = Situation(holds, basis, topic)  # type: ignore[arg-type]
            for fitting in point.fitting_types(situation):
                # A person who does not know the purpose of their paper gets only the
                # types open to any legal basis: never one on a paragraph they may lack.
                if purpose == OTHER_PURPOSE and fitting.legal_bases:
                    continue
                found.append(Choice(point, fitting))
    return found


def _resolve(service: AkteService, settings: Settings, answers: Answers, upto: str) -> Resolved:
    """The answers up to step ``upto`` (``purpose``, ``need``, ``chosen``), or :class:`_Back`."""
    points = service.appointments.service_points(settings.default_office_id)
    if answers.holds not in HELD_CODES:
        raise _Back("holds", _CHOOSE_HELD)
    purposes = _purposes(points, answers.holds)
    if not purposes:
        answers = Answers(answers.holds, "", answers.need)
    if upto == "purpose":
        return Resolved(answers, purposes)
    if purposes and answers.purpose not in (*purposes, OTHER_PURPOSE):
        raise _Back("purpose", _CHOOSE_PURPOSE)
    choices = _choices(points, answers.holds, answers.purpose)
    if upto == "need":
        return Resolved(answers, purposes, choices)
    chosen = next((c for c in choices if c.value == answers.need), None)
    if chosen is None:
        raise _Back("need", _CHOOSE_NEED)
    return Resolved(answers, purposes, choices, chosen)


# -------------------------------------------------------------------- steps


def _page(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    errors: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        f"booking/{template}",
        {"errors": errors or {}, **context},
        status_code=status_code,
        offered=languages_of(MODULE),
    )


def _language(request: Request) -> Language:
    return chosen_language(request, languages_of(MODULE))


def _step_page(
    request: Request,
    service: AkteService,
    settings: Settings,
    answers: Answers,
    step: str,
    error: str | None = None,
) -> Response:
    """The page of ``step`` (``holds``, ``purpose``, ``need``), with ``error`` if any."""
    language = _language(request)
    errors = {step: _translate(language, error)} if error else {}
    status_code = 422 if error else 200
    if step == "holds":
        options = [(code, _translate(language, label), term) for code, label, term in HELD]
        return _page(
            request,
            "holds.html.j2",
            {"options": options, "answers": answers},
            errors=errors,
            status_code=status_code,
        )
    resolved = _resolve(service, settings, answers, "purpose" if step == "purpose" else "need")
    if step == "purpose":
        if not resolved.purposes:
            # Nothing to ask: no type for this document depends on its purpose.
            return RedirectResponse(
                f"{NEED_PATH}?{Answers(answers.holds).query(**_lang(request))}", status_code=303
            )
        catalogue = load_catalogue().legal_bases
        options = [
            (
                code,
                _translate(language, PURPOSES[code])
                if code in PURPOSES
                else catalogue[code].label_de,
                catalogue[code].paragraph if code in catalogue else None,
            )
            for code in resolved.purposes
        ]
        options.append(
            (OTHER_PURPOSE, _translate(language, N_("Another purpose, or I do not know")), None)
        )
        return _page(
            request,
            "purpose.html.j2",
            {
                "options": options,
                "answers": resolved.answers,
                "held": _held_label(answers, language),
            },
            errors=errors,
            status_code=status_code,
        )
    several = len({c.point.code for c in resolved.choices}) > 1
    options = [
        (
            choice.value,
            _type_label(choice.type, language),
            choice.type.label_de + (f" · {choice.point.name}" if several else ""),
        )
        for choice in resolved.choices
    ]
    return _page(
        request,
        "need.html.j2",
        {
            "options": options,
            "answers": resolved.answers,
            "held": _held_label(answers, language),
            "purpose": _purpose_label(resolved.answers, language),
        },
        errors=errors,
        status_code=status_code,
    )


def _lang(request: Request) -> dict[str, str]:
    chosen = request.query_params.get("lang")
    return {"lang": chosen} if chosen else {}


def _held_label(answers: Answers, language: Language) -> str:
    for code, label, _term in HELD:
        if code == answers.holds:
            return _translate(language, label)
    return ""


def _purpose_label(answers: Answers, language: Language) -> str:
    if answers.purpose == OTHER_PURPOSE:
        return _translate(language, N_("Another purpose, or I do not know"))
    if answers.purpose in PURPOSES:
        return _translate(language, PURPOSES[answers.purpose])
    return answers.purpose


def _type_label(appointment_type: AppointmentType, language: Language) -> str:
    plain = PLAIN_TOPICS.get(appointment_type.topic)
    return _translate(language, plain) if plain else appointment_type.label_de


def _step(request: Request, service: AkteService, settings: Settings, step: str) -> Response:
    answers = Answers.of(request.query_params)
    try:
        return _step_page(request, service, settings, answers, step)
    except _Back as back:
        return _step_page(request, service, settings, answers, back.step, back.message)


@router.get(START_PATH, response_class=HTMLResponse, response_model=None)
def booking_start(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """What do you hold now?"""
    return _step_page(request, service, settings, Answers.of(request.query_params), "holds")


@router.get(PURPOSE_PATH, response_class=HTMLResponse, response_model=None)
def booking_purpose(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """What is the paper you hold for?"""
    return _step(request, service, settings, "purpose")


@router.get(NEED_PATH, response_class=HTMLResponse, response_model=None)
def booking_need(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """What do you need? Only what fits."""
    return _step(request, service, settings, "need")


# -------------------------------------------------------------------- slots


@dataclass(frozen=True)
class Week:
    """One week of a type's slots, as the slots page shows it."""

    monday: date
    today: date
    days: list[tuple[date, list[tuple[datetime, int]]]]
    previous: date | None
    next: date | None

    @property
    def any_free(self) -> bool:
        return any(free for _day, slots in self.days for _start, free in slots)


def _week(service: AkteService, settings: Settings, resolved: Resolved, asked: str | None) -> Week:
    assert resolved.chosen is not None
    point = resolved.chosen.point
    today = point.local(service.clock()).date()
    last = today + timedelta(days=point.rules.booking_horizon_days)
    this_monday = today - timedelta(days=today.weekday())
    last_monday = last - timedelta(days=last.weekday())
    monday = this_monday
    if asked:
        try:
            wanted = date.fromisoformat(asked)
        except ValueError:
            wanted = today
        monday = min(max(wanted - timedelta(days=wanted.weekday()), this_monday), last_monday)
    first = max(monday, today)
    offer = service.appointments.appointment_offer(
        office_id=settings.default_office_id,
        code=point.code,
        situation=resolved.situation(),
        from_day=first,
        days=(monday + timedelta(days=7) - first).days,
    )
    if resolved.chosen.type.code not in {t.code for t in offer.fitting}:
        raise _Back("need", _NOT_FITTING)
    return Week(
        monday=monday,
        today=today,
        days=[(day.day, day.slots) for day in offer.days if day.slots],
        previous=monday - timedelta(days=7) if monday > this_monday else None,
        next=monday + timedelta(days=7) if monday < last_monday else None,
    )


def _next_free(service: AkteService, settings: Settings, resolved: Resolved) -> datetime | None:
    """The first free slot within the booking horizon, looked up only when a week is full."""
    assert resolved.chosen is not None
    point = resolved.chosen.point
    today = point.local(service.clock()).date()
    horizon = point.rules.booking_horizon_days
    for offset in range(0, horizon + 1, MAX_SLOT_DAYS):
        offer = service.appointments.appointment_offer(
            office_id=settings.default_office_id,
            code=point.code,
            situation=resolved.situation(),
            from_day=today + timedelta(days=offset),
            days=min(MAX_SLOT_DAYS, horizon + 1 - offset),
        )
        for day in offer.days:
            for start, free in day.slots:
                if free:
                    return start
    return None


@router.get(SLOTS_PATH, response_class=HTMLResponse, response_model=None)
def booking_slots(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """The free slots of one week; booked out: the waitlist."""
    answers = Answers.of(request.query_params)
    try:
        resolved = _resolve(service, settings, answers, "chosen")
        week = _week(service, settings, resolved, request.query_params.get("week"))
    except _Back as back:
        return _step_page(request, service, settings, answers, back.step, back.message)
    return _slots_page(request, service, settings, resolved, week)


def _slots_page(
    request: Request,
    service: AkteService,
    settings: Settings,
    resolved: Resolved,
    week: Week,
    *,
    error: str | None = None,
) -> HTMLResponse:
    assert resolved.chosen is not None
    language = _language(request)
    next_free = None if week.any_free else _next_free(service, settings, resolved)
    horizon = resolved.chosen.point.rules.booking_horizon_days
    return _page(
        request,
        "slots.html.j2",
        {
            "answers": resolved.answers,
            "summary": _summary(resolved, language),
            "week": week,
            "zone": resolved.chosen.point.rules.timezone,
            "next_free": next_free,
            "next_free_week": (
                resolved.chosen.point.local(next_free).date().isoformat() if next_free else ""
            ),
            "booked_out": not week.any_free and next_free is None,
            "horizon_weeks": math.ceil(horizon / 7),
            "selected": request.query_params.get("slot", ""),
        },
        errors={"slot": _translate(language, error)} if error else None,
        status_code=422 if error else 200,
    )


def _summary(resolved: Resolved, language: Language) -> dict[str, str]:
    """The answers so far, in the page's words, for the 'change' links."""
    assert resolved.chosen is not None
    summary = {"held": _held_label(resolved.answers, language)}
    if resolved.answers.purpose:
        summary["purpose"] = _purpose_label(resolved.answers, language)
    summary["need"] = _type_label(resolved.chosen.type, language)
    summary["need_de"] = resolved.chosen.type.label_de
    summary["point"] = resolved.chosen.point.name
    return summary


# ----------------------------------------------------------- details, waitlist


def _slot_of(text: str) -> datetime | None:
    """The slot's start from the form, or None (the page asks for a time again): a time
    with a zone, in the years and offsets the API takes (a time at the edge of the
    calendar would overflow when converted to the office's zone)."""
    try:
        start = datetime.fromisoformat(text)
    except ValueError:
        return None
    if start.tzinfo is None:
        return None
    try:
        require_lawful_time("slot", start)
    except InvalidValue:
        return None
    return start


def _details_page(
    request: Request,
    service: AkteService,
    resolved: Resolved,
    *,
    waitlist: bool,
    slot: datetime | None,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
) -> Response:
    assert resolved.chosen is not None
    language = _language(request)
    try:
        challenge = service.appointments.issue_challenge()
    except AppointmentsNotConfigured:
        return _page(request, "unavailable.html.j2", {}, status_code=503)
    path = WAITLIST_PATH if waitlist else DETAILS_PATH
    hidden = resolved.answers.hidden()
    if slot is not None:
        hidden.append(("slot", slot.isoformat()))
    week = slot.date().isoformat() if slot is not None else ""
    return _page(
        request,
        "details.html.j2",
        {
            "waitlist": waitlist,
            "action": f"{path}?{urlencode({'lang': language.code})}",
            "hidden": hidden,
            "answers": resolved.answers,
            "summary": _summary(resolved, language),
            "slot": slot,
            "zone": resolved.chosen.point.rules.timezone,
            "slots_query": resolved.answers.query(week=week),
            "challenge": challenge,
            "values": values,
            "max_name": MAX_NAME,
            "max_email": MAX_EMAIL,
            "max_phone": MAX_PHONE,
        },
        errors=errors,
        status_code=422 if errors else 200,
    )


def _details_get(
    request: Request, service: AkteService, settings: Settings, *, waitlist: bool
) -> Response:
    answers = Answers.of(request.query_params)
    slot = None if waitlist else _slot_of(request.query_params.get("slot", ""))
    try:
        resolved = _resolve(service, settings, answers, "chosen")
        if not waitlist and slot is None:
            week = _week(service, settings, resolved, request.query_params.get("week"))
            return _slots_page(request, service, settings, resolved, week, error=_CHOOSE_SLOT)
    except _Back as back:
        return _step_page(request, service, settings, answers, back.step, back.message)
    return _details_page(request, service, resolved, waitlist=waitlist, slot=slot, values={})


@router.get(DETAILS_PATH, response_class=HTMLResponse, response_model=None)
def booking_details(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """About you, and the chosen slot summarised."""
    return _details_get(request, service, settings, waitlist=False)


@router.get(WAITLIST_PATH, response_class=HTMLResponse, response_model=None)
def waitlist_details(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """About you, to wait for a freed slot."""
    return _details_get(request, service, settings, waitlist=True)


def _checked_person(values: Mapping[str, str], language: Language) -> dict[str, str]:
    """What the form itself can tell: required fields, the date, the address typed twice."""
    errors = {
        name: _translate(language, message)
        for name, message in _REQUIRED.items()
        if not values[name].strip()
    }
    for name in ("surname", "given_names"):
        if len(values[name]) > MAX_NAME:
            errors[name] = _translate(language, _INVALID[name])
    if values["date_of_birth"].strip():
        try:
            date.fromisoformat(values["date_of_birth"].strip())
        except ValueError:
            errors["date_of_birth"] = _translate(language, _INVALID["date_of_birth"])
    email = values["email"].strip()
    if email:
        try:
            require_email("email", email)
        except InvalidValue:
            errors["email"] = _translate(language, _INVALID["email"])
    again = values["email_again"].strip()
    if "email" not in errors and again and again.casefold() != email.casefold():
        errors["email_again"] = _translate(language, _EMAILS_DIFFER)
    if len(values["phone"].strip()) > MAX_PHONE:
        errors["phone"] = _translate(language, _INVALID["phone"])
    return errors


def _person(values: Mapping[str, str]) -> Person:
    return Person(
        surname=values["surname"].strip(),
        given_names=values["given_names"].strip(),
        date_of_birth=date.fromisoformat(values["date_of_birth"].strip()),
        email=values["email"].strip(),
        phone=values["phone"].strip() or None,
    )


def _refusal(refused: Exception, language: Language) -> dict[str, str]:
    """The field (or part of the page) a refusal of the service belongs to."""
    if isinstance(refused, ChallengeRefused):
        message, where = _CHALLENGE, "proof"
    elif isinstance(refused, SlotTaken):
        message, where = _SLOT_TAKEN, "slot"
    elif isinstance(refused, SlotNotBookable):
        message, where = _SLOT_GONE, "slot"
    elif isinstance(refused, SlotBusy):
        message, where = _SLOT_BUSY, "booking"
    elif isinstance(refused, BookingLimitReached):
        message, where = _LIMIT, "booking"
    elif isinstance(refused, AppointmentTypeDoesNotFit | ServicePointNotFound):
        message, where = _NOT_FITTING, "need"
    elif isinstance(refused, InvalidValue) and refused.field.startswith("person."):
        where = refused.field.removeprefix("person.")
        message = _INVALID.get(where, _REFUSED)
    else:
        message, where = _REFUSED, "booking"
    return {where: _translate(language, message)}


def _submit(
    request: Request,
    service: AkteService,
    settings: Settings,
    form: Mapping[str, str],
    *,
    waitlist: bool,
    by: str,
) -> Response:
    language = _language(request)
    answers = Answers.of(form)
    try:
        resolved = _resolve(service, settings, answers, "chosen")
    except _Back as back:
        return _step_page(request, service, settings, answers, back.step, back.message)
    assert resolved.chosen is not None
    values = {name: form.get(name, "") for name in PERSON_FIELDS}
    slot = None if waitlist else _slot_of(form.get("slot", ""))
    errors = _checked_person(values, language)
    if not waitlist and slot is None:
        errors["slot"] = _translate(language, _CHOOSE_SLOT)
    nonce = form.get("nonce", "").strip()
    if not nonce:
        errors["proof"] = _translate(language, _NO_SCRIPT)
    if not errors:
        proof = (form.get("challenge", ""), nonce)
        try:
            if waitlist:
                recorded = service.appointments.join_waitlist(
                    office_id=settings.default_office_id,
                    service_point_code=resolved.chosen.point.code,
                    appointment_type=resolved.chosen.type.code,
                    situation=resolved.situation(),
                    person=_person(values),
                    proof=proof,
                    by=by,
                    language=language.code,
                )
            else:
                assert slot is not None
                recorded = service.appointments.book_appointment(
                    office_id=settings.default_office_id,
                    service_point_code=resolved.chosen.point.code,
                    appointment_type=resolved.chosen.type.code,
                    starts_at=slot,
                    situation=resolved.situation(),
                    person=_person(values),
                    proof=proof,
                    language=language.code,
                    by=by,
                )
        except (InvalidValue, ChallengeRefused, SlotTaken, SlotNotBookable, SlotBusy,
                BookingLimitReached, ServicePointNotFound) as refused:  # fmt: skip
            errors = _refusal(refused, language)
        except AppointmentsNotConfigured:
            return _page(request, "unavailable.html.j2", {}, status_code=503)
        else:
            status = STATUS_PATH.format(reference=recorded.reference)
            return RedirectResponse(f"{status}?{urlencode({'lang': language.code})}", 303)
    return _details_page(
        request, service, resolved, waitlist=waitlist, slot=slot, values=values, errors=errors
    )


async def _form_values(request: Request) -> dict[str, str]:
    async with request.form(max_files=0, max_fields=30) as form:
        return {name: value for name, value in form.items() if isinstance(value, str)}


@router.post(DETAILS_PATH, response_class=HTMLResponse, response_model=None)
async def book(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """Book the slot; refused: the form again, everything typed kept."""
    form = await _form_values(request)
    by = visitor.user_id if visitor is not None else PUBLIC_APPLICANT
    return await run_in_threadpool(_submit, request, service, settings, form, waitlist=False, by=by)


@router.post(WAITLIST_PATH, response_class=HTMLResponse, response_model=None)
async def join_waitlist(
    request: Request, visitor: Visitor, service: ServiceDep, settings: SettingsDep
) -> Response:
    """Join the waitlist; refused: the form again, everything typed kept."""
    form = await _form_values(request)
    by = visitor.user_id if visitor is not None else PUBLIC_APPLICANT
    return await run_in_threadpool(_submit, request, service, settings, form, waitlist=True, by=by)
