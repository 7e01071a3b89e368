"""The booking's status page, bookmarkable, and what a person does after booking.

``GET /booking/status/{reference}`` says in plain words where the booking stands: held
and NOT YET CONFIRMED (in large type: where the mail went, until when, what happens
otherwise), confirmed, lapsed, cancelled, on the waitlist, or offered a freed seat; and
which mails went out, failed or bounced, with what to do. Its forms post to the same
path, each naming its ``action``: confirm with the mailed code, send the mail again,
correct the e-mail address, hold the booking longer (once), each answered with a 303
back to the page; a refusal shows the page again with the typed value kept. Cancelling
asks first (``GET``/``POST /booking/status/{reference}/cancel``).

The mails carry a one-click link, ``GET /booking/confirm/{appointment_id}/{code}``: it
shows the appointment and one button, because mail scanners fetch links and a fetch
must never confirm; the button posts to the same path. A link mangled on its way (the
id no UUID) shows the same page as an unknown booking, not an error for programs.

The reference is the booking's secret: it is in these paths, so the logs and metrics
name route templates only (:mod:`adapters.http.middleware`) and ``akte serve`` runs
uvicorn without its access log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.pages.languages import (
    LANGUAGE_PARAMETER,
    LANGUAGES,
    chosen_language,
    languages_of,
)
from adapters.http.pages.rendering import render
from adapters.http.pages.translations import translations_for
from domain.appointments import Appointment, Mail, ServicePoint
from domain.errors import DomainError, InvalidValue
from service import AkteService
from service_appointment_mails import BookingNotFound, SlotBusy
from service_appointments import BookingView

router = APIRouter(include_in_schema=False)

Visitor = Annotated[object, Depends(allow_public(Permission.APPOINTMENT_BOOK))]

STATUS_PATH: Final = "/booking/status/{reference}"
CANCEL_PATH: Final = "/booking/status/{reference}/cancel"
CONFIRM_PATH: Final = "/booking/confirm/{appointment_id}/{code}"
DEFAULT_PUBLIC_BASE_URL: Final = "http://127.0.0.1:8000"
"""Where the mails' links lead when ``AKTE_PUBLIC_BASE_URL`` is unset (``akte serve``)."""
FORM_MEDIA_TYPES: Final = dict.fromkeys(
    ("/booking/status", "/booking/confirm"), frozenset({"application/x-www-form-urlencoded"})
)
"""The page forms' bodies, accepted beside JSON on these paths."""
ACTIONS: Final = ("confirm", "resend", "correct_email", "extend")
_DOMAIN: Final = "booking_status"


def _(message: str) -> str:
    """Marks a message for extraction; :func:`_translated` translates it for the page."""
    return message


def _translated(request: Request, errors: dict[str, str] | None) -> dict[str, str]:
    language = chosen_language(request, languages_of(_DOMAIN))
    gettext = translations_for(language.code).gettext
    return {field: gettext(message) for field, message in (errors or {}).items()}


def confirmation_link_template(base_url: str | None) -> str:
    """The mails' one-click link, as :class:`service_appointment_mails.AppointmentSetup`
    takes it: ``{appointment}``, ``{code}`` and ``{language}`` filled in per mail."""
    base = (base_url or DEFAULT_PUBLIC_BASE_URL).rstrip("/")
    return base + "/booking/confirm/{appointment}/{code}?lang={language}"


def mask_email(address: str) -> str:
    """Enough of the address to recognise it (and a typo in its domain), not to read it
    over a shoulder: ``ay…e@example.org``."""
    local, _at, domain = address.rpartition("@")
    shown = local[:1] + "…" if len(local) <= 3 else local[:2] + "…" + local[-1]
    return f"{shown}@{domain}"


@dataclass(frozen=True)
class _Facts:
    """What the page shows of a booking, without its personal data but the masked address."""

    state: str
    view: BookingView
    appointment: Appointment | None
    type_label: str | None
    zone: str
    email: str | None
    extend_until: datetime | None
    reminder_sent: bool

    @property
    def mails(self) -> list[Mail]:
        return list(reversed(self.appointment.mails)) if self.appointment is not None else []

    @property
    def troubled_mails(self) -> list[Mail]:
        return [mail for mail in self.mails if mail.status in ("failed", "bounced")]


def _state_of(view: BookingView) -> str:
    appointment = view.appointment
    if appointment is None:
        return view.status  # waiting, left_waitlist
    if appointment.status == "held" and appointment.origin == "waitlist":
        return "offered"
    return appointment.status


def _facts(service: AkteService, view: BookingView, default_zone: str) -> _Facts:
    appointment = view.appointment
    label, zone, email, extend_until, reminder = None, default_zone, None, None, False
    if appointment is not None:
        point = service.appointments._get(UUID(appointment.service_point_id), ServicePoint)
        if point is not None:
            zone = point.rules.timezone
            known = point.types.get(appointment.appointment_type)
            label = known.label_de if known is not None else None
        if appointment.status == "held":
            email = mask_email(appointment.person.email)
            extend_until = service.appointments.extended_hold_until(appointment)
            reminder = any(
                mail.kind == "reminder" and mail.status == "sent" for mail in appointment.mails
            )
    return _Facts(_state_of(view), view, appointment, label, zone, email, extend_until, reminder)


def _status_page(
    request: Request,
    service: AkteService,
    zone: str,
    reference: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    view = service.appointments.booking_status(reference)
    return render(
        request,
        "booking_status/status.html.j2",
        {
            "facts": _facts(service, view, zone),
            "reference": reference,
            "errors": _translated(request, errors),
            "values": values or {},
            "done": request.query_params.get("done"),
        },
        status_code=status_code,
        offered=languages_of(_DOMAIN),
    )


def _not_found(request: Request) -> HTMLResponse:
    return render(
        request, "booking_status/not_found.html.j2", status_code=404, offered=languages_of(_DOMAIN)
    )


def _with_language(request: Request, url: str) -> str:
    """``url`` in the language the form was posted in (its ``?lang=``, if any)."""
    chosen = request.query_params.get(LANGUAGE_PARAMETER)
    if chosen not in LANGUAGES:
        return url
    return f"{url}{'&' if '?' in url else '?'}{LANGUAGE_PARAMETER}={chosen}"


def _back(request: Request, reference: str, done: str) -> RedirectResponse:
    url = request.url_for("booking_status_page", reference=reference).path
    return RedirectResponse(_with_language(request, f"{url}?done={done}"), status_code=303)


@router.get(STATUS_PATH, response_class=HTMLResponse, name="booking_status_page")
def booking_status_page(
    request: Request,
    reference: str,
    visitor: Visitor,
    service: ServiceDep,
    settings: SettingsDep,
) -> HTMLResponse:
    try:
        return _status_page(request, service, settings.office_time_zone, reference)
    except BookingNotFound:
        return _not_found(request)


@router.post(STATUS_PATH, response_class=HTMLResponse)
def booking_status_action(
    request: Request,
    reference: str,
    visitor: Visitor,
    service: ServiceDep,
    settings: SettingsDep,
    action: Annotated[str, Form(max_length=20)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
    email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """One of the page's forms; a refusal shows the page again with its reason."""
    values = {"code": code, "email": email}
    appointments = service.appointments
    try:
        if action == "confirm" and not code.strip():
            errors = {"code": _("Enter the code from your confirmation mail.")}
        elif action == "confirm":
            appointments.confirm_booking(reference, code)
            return _back(request, reference, "confirmed")
        elif action == "resend":
            appointments.resend_confirmation(reference)
            return _back(request, reference, "resent")
        elif action == "correct_email":
            appointments.correct_booking_email(reference, email.strip())
            return _back(request, reference, "email_corrected")
        elif action == "extend":
            appointments.extend_booking_hold(reference)
            return _back(request, reference, "extended")
        else:
            errors = {"actions": _("Choose one of the buttons on this page.")}
    except BookingNotFound:
        return _not_found(request)
    except (DomainError, SlotBusy) as refused:
        errors = _refusal(action, refused)
    try:
        return _status_page(
            request,
            service,
            settings.office_time_zone,
            reference,
            errors=errors,
            values=values,
            status_code=422,
        )
    except BookingNotFound:
        return _not_found(request)


def _refusal(action: str, refused: Exception) -> dict[str, str]:
    """The field (or button) a refusal belongs to, with a message the page translates."""
    field_error = isinstance(refused, InvalidValue)
    if action == "confirm":
        if field_error:
            return {"code": _("This is not the code from your confirmation mail. Check it.")}
        return {"code": _("The booking can no longer be confirmed with a code.")}
    if action == "correct_email":
        if field_error and "already has" in str(refused):
            return {"email": _("This is the address the booking already has.")}
        if field_error:
            return {"email": _("Enter an e-mail address like name@example.org.")}
        return {"email": _("The address can no longer be changed. Call the office.")}
    if action == "resend":
        return {"resend": _("The mail cannot be sent again. Call the office.")}
    if action == "extend":
        return {"extend": _("The booking cannot be held longer. Confirm it now.")}
    return {"actions": _("Choose one of the buttons on this page.")}


@router.get(CANCEL_PATH, response_class=HTMLResponse)
def cancel_question(
    request: Request,
    reference: str,
    visitor: Visitor,
    service: ServiceDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Asks before cancelling: a cancelled seat goes to the next person at once."""
    try:
        view = service.appointments.booking_status(reference)
    except BookingNotFound:
        return _not_found(request)
    return render(
        request,
        "booking_status/cancel.html.j2",
        {"facts": _facts(service, view, settings.office_time_zone), "reference": reference},
        offered=languages_of(_DOMAIN),
    )


@router.post(CANCEL_PATH, response_class=HTMLResponse)
def cancel(
    request: Request,
    reference: str,
    visitor: Visitor,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    try:
        service.appointments.cancel_booking(reference)
    except BookingNotFound:
        return _not_found(request)
    except (DomainError, SlotBusy):
        return _status_page(
            request,
            service,
            settings.office_time_zone,
            reference,
            errors={"cancel": _("The booking cannot be cancelled any more.")},
            status_code=422,
        )
    return _back(request, reference, "cancelled")


# ------------------------------------------------------------- one-click link


def _appointment_id(text: str) -> UUID:
    """The link's appointment id; a mangled one finds no booking, like a wrong code."""
    try:
        return UUID(text)
    except ValueError:
        raise BookingNotFound from None


def _confirm_page(
    request: Request,
    service: AkteService,
    zone: str,
    appointment_id: str,
    code: str,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    appointment = service.appointments.appointment_by_code(_appointment_id(appointment_id), code)
    view = BookingView(appointment.status, appointment)
    shown = _translated(request, errors)
    return render(
        request,
        "booking_status/confirm.html.j2",
        {"facts": _facts(service, view, zone), "errors": shown},
        status_code=422 if shown else 200,
        offered=languages_of(_DOMAIN),
    )


@router.get(CONFIRM_PATH, response_class=HTMLResponse, name="booking_confirm_page")
def confirm_page(
    request: Request,
    appointment_id: str,
    code: str,
    visitor: Visitor,
    service: ServiceDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """What the mail's link shows: the appointment and one button. Never confirms."""
    try:
        return _confirm_page(request, service, settings.office_time_zone, appointment_id, code)
    except BookingNotFound:
        return _not_found(request)


@router.post(CONFIRM_PATH, response_class=HTMLResponse)
def confirm_by_link(
    request: Request,
    appointment_id: str,
    code: str,
    visitor: Visitor,
    service: ServiceDep,
    settings: SettingsDep,
) -> Response:
    try:
        service.appointments.confirm_by_link(_appointment_id(appointment_id), code)
    except BookingNotFound:
        return _not_found(request)
    except (DomainError, SlotBusy):
        errors = {"confirm": _("The booking can no longer be confirmed with a code.")}
        return _confirm_page(
            request, service, settings.office_time_zone, appointment_id, code, errors=errors
        )
    url = request.url_for("booking_confirm_page", appointment_id=appointment_id, code=code).path
    return RedirectResponse(_with_language(request, url), status_code=303)
