"""Appointments over HTTP.

Two audiences, as for commitment declarations:

* the public (:data:`public_router`): sees the service points and the types that fit what
  they hold and want, with free slots; gets a proof-of-work challenge, books (or joins
  the waitlist) and receives a secret reference, which they present in the
  ``X-Booking-Reference`` header to see the booking's state, confirm it with the mailed
  code, have the mail sent again, or cancel. Public bookings go to the deployment's
  default office.
* the office (:data:`router`): the day's list at the counter, one appointment with its
  personal data, and the counter's steps (check-in, attended, no-show, cancelled,
  re-typed, linked to a case file) with ``If-Match``/``ETag`` on the appointment's
  version; team leads configure service points. An appointment of an office the
  caller's role does not reach answers 404 exactly like none.
"""

from __future__ import annotations

from typing import Annotated, Any, Final
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public, home_office, require
from adapters.http.deps import CaseId, ExpectedVersion, ServiceDep, SettingsDep
from adapters.http.problems import problem_response
from adapters.http.route_helpers import note_position
from adapters.http.schemas.appointments import (
    AppointmentCaseLinkCreate,
    AppointmentPublic,
    AppointmentRecordedPublic,
    AppointmentTypePublic,
    BookedPublic,
    BookingCreate,
    BookingStatusPublic,
    CancellationCreate,
    ChallengePublic,
    ClosedDayCreate,
    ConfirmationCreate,
    Held,
    MailPublic,
    OfferPublic,
    OfficeBookedPublic,
    OfficeBookingCreate,
    ProposalPublic,
    RetypeCreate,
    ServicePointCreate,
    ServicePointPublic,
    SituationCreate,
    SituationPublic,
    SlotPublic,
    WaitlistCreate,
)
from adapters.http.schemas.cases import ProblemPublic
from adapters.http.schemas.lawful import LawfulDate, Line
from domain.appointments import (
    Appointment,
    AppointmentType,
    CalendarRules,
    Mail,
    OpeningHours,
    Person,
    ServicePoint,
    Situation,
    parse_time,
)
from service_appointment_mails import (
    AppointmentChanged,
    AppointmentRecorded,
    AppointmentsNotConfigured,
    BookingNotFound,
)
from service_appointments import ServicePointNotFound

REFERENCE_HEADER: Final = "X-Booking-Reference"
BODY_LIMITS: Final = {"/appointments": 16_384}
RETRY_AFTER_SECONDS: Final = 30

public_router = APIRouter(prefix="/appointments", tags=["appointments: booking"])
router = APIRouter(tags=["appointments: office"])

PublicBooker = Annotated[Principal | None, Depends(allow_public(Permission.APPOINTMENT_BOOK))]
AppointmentReader = Annotated[Principal, Depends(require(Permission.APPOINTMENT_READ))]
CounterClerk = Annotated[Principal, Depends(require(Permission.APPOINTMENT_COUNTER))]
Configurer = Annotated[Principal, Depends(require(Permission.APPOINTMENT_CONFIGURE))]
ProposalReader = Annotated[Principal, Depends(require(Permission.CASE_READ))]
AppointmentId = Annotated[UUID, Path(description="The appointment's id (the office's).")]
BookingReference = Annotated[
    str,
    Header(
        alias=REFERENCE_HEADER,
        min_length=16,
        max_length=64,
        description="The secret reference the booking returned.",
    ),
]


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


_BAD_TOKEN = _problem("A bearer token was sent but is expired or invalid (none is needed).")
_UNAVAILABLE = _problem(
    "The event store is unavailable, or bookings are switched off; nothing was recorded."
)
_ETAG = {
    "description": 'The appointment\'s version as an entity tag, e.g. `"7"`.',
    "schema": {"type": "string"},
}
PUBLIC_READ_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _BAD_TOKEN,
    404: _problem("No such service point, or no booking has this reference."),
    422: _problem("A parameter is invalid; `errors` names it."),
    503: _UNAVAILABLE,
}
PUBLIC_WRITE_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _BAD_TOKEN,
    404: _problem("No such service point, or no booking has this reference."),
    409: _problem(
        "Refused, nothing recorded: the slot is fully booked (`slot-taken`) or not bookable, "
        "the person holds as many bookings as allowed, the challenge is not solved or spent, "
        "or the booking's state does not allow it."
    ),
    413: _problem("The body is too large."),
    422: _problem(
        "The input is invalid; `errors` names the fields (an appointment type that does not "
        "fit names the types that do); nothing was recorded."
    ),
    503: _UNAVAILABLE,
}
READ_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _problem("The bearer token is missing, expired or invalid."),
    403: _problem("Your roles do not grant the permission this route needs."),
    404: _problem("No such appointment (or case file) in the offices you may see."),
    422: _problem("A parameter is invalid; `errors` names it."),
    503: _UNAVAILABLE,
}
LIST_PROBLEMS: Final = {code: p for code, p in READ_PROBLEMS.items() if code != 404}
WRITE_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    200: {"headers": {"ETag": _ETAG}},
    400: _problem("If-Match is not a single ETag."),
    401: _problem("The bearer token is missing, expired or invalid."),
    403: _problem("Your roles do not grant the permission this route needs."),
    404: _problem("No such appointment in your office."),
    409: _problem("The appointment's state does not allow this; nothing was recorded."),
    412: _problem("If-Match is stale: the appointment has changed; nothing was recorded."),
    413: _problem("The body is too large."),
    422: _problem("The input is invalid; `errors` names the fields; nothing was recorded."),
    428: _problem("If-Match is missing."),
    503: _UNAVAILABLE,
}
CONFIGURE_PROBLEMS: Final = {
    code: p for code, p in WRITE_PROBLEMS.items() if code not in (200, 400, 412, 428)
}


def _acting_user(caller: Principal | None) -> str:
    return caller.user_id if caller is not None else "public"


def _type_public(t: AppointmentType) -> AppointmentTypePublic:
    return AppointmentTypePublic(
        code=t.code,
        label_de=t.label_de,
        topic=t.topic,
        procedure_kind=t.procedure_kind,
        legal_bases=list(t.legal_bases),
        for_documents=list(t.for_documents),
        duration_minutes=t.duration_minutes,
    )


def _point_public(point: ServicePoint) -> ServicePointPublic:
    rules = point.rules
    return ServicePointPublic(
        code=point.code,
        name=point.name,
        slot_minutes=rules.slot_minutes,
        counters=rules.counters,
        same_day_counters=rules.same_day_counters,
        same_day_release=f"{rules.same_day_release:%H:%M}",
        booking_horizon_days=rules.booking_horizon_days,
        timezone=rules.timezone,
        opening_hours=[hours.encode() for hours in rules.opening_hours],
        hold_hours=rules.hold_hours,
        closed_days=sorted(point.closed_days),
        types=[_type_public(t) for t in sorted(point.types.values(), key=lambda t: t.code)],
    )


def _mails(mails: list[Mail]) -> list[MailPublic]:
    return [
        MailPublic(number=m.number, kind=m.kind, status=m.status, attempts=m.attempts)
        for m in mails
    ]


def _situation(body: SituationCreate) -> Situation:
    return Situation(body.holds, body.holds_legal_basis, body.wants)


def _person(body: BookingCreate | WaitlistCreate | OfficeBookingCreate) -> Person:
    p = body.person
    return Person(p.surname, p.given_names, p.date_of_birth, p.email, p.phone)


def _recorded(response: Response, recorded: AppointmentRecorded) -> AppointmentRecordedPublic:
    response.headers["ETag"] = f'"{recorded.version}"'
    note_position(response, recorded.position)
    return AppointmentRecordedPublic(
        appointment_id=recorded.appointment_id, version=recorded.version
    )


# --------------------------------------------------------------------- public


@public_router.get(
    "/service-points", response_model=list[ServicePointPublic], responses=PUBLIC_READ_PROBLEMS
)
def list_service_points(
    caller: PublicBooker, service: ServiceDep, settings: SettingsDep
) -> list[ServicePointPublic]:
    """The office's service points: opening hours, closed days and appointment types."""
    return [
        _point_public(point)
        for point in service.appointments.service_points(settings.default_office_id)
    ]


@public_router.get(
    "/offers",
    response_model=OfferPublic,
    responses=PUBLIC_READ_PROBLEMS,
    operation_id="list_appointment_offers",
)
def offers(
    caller: PublicBooker,
    service: ServiceDep,
    settings: SettingsDep,
    service_point: Annotated[
        str | None,
        Query(min_length=2, max_length=60, description="Omitted: the office's first."),
    ] = None,
    holds: Held = "none",
    wants: Annotated[Line | None, Query(min_length=2, max_length=60)] = None,
    holds_legal_basis: Annotated[Line | None, Query(min_length=2, max_length=60)] = None,
    from_day: LawfulDate | None = None,
    days: Annotated[int, Query(ge=1, le=14)] = 7,
) -> OfferPublic:
    """The appointment types that fit what the person holds and wants, and free slots."""
    office = settings.default_office_id
    if service_point is None:
        points = service.appointments.service_points(office)
        if not points:
            raise ServicePointNotFound("(none)")
        service_point = points[0].code
    if wants is None:
        # Not answered yet: every type the document held allows, without slots.
        point = service.appointments.get_service_point(office, service_point)
        fitting = [
            t
            for t in sorted(point.types.values(), key=lambda t: t.code)
            if t.fits(Situation(holds, holds_legal_basis, t.topic))
        ]
        return OfferPublic(
            service_point=point.code,
            fitting_types=[_type_public(t) for t in fitting],
            slots=[],
        )
    offer = service.appointments.appointment_offer(
        office_id=office,
        code=service_point,
        situation=Situation(holds, holds_legal_basis, wants),
        from_day=from_day,
        days=days,
    )
    return OfferPublic(
        service_point=offer.service_point.code,
        fitting_types=[_type_public(t) for t in offer.fitting],
        slots=[
            SlotPublic(starts_at=start, free=free)
            for day in offer.days
            for start, free in day.slots
        ],
    )


@public_router.post(
    "/challenges",
    status_code=status.HTTP_201_CREATED,
    response_model=ChallengePublic,
    responses=PUBLIC_READ_PROBLEMS,
)
def issue_challenge(caller: PublicBooker, service: ServiceDep) -> ChallengePublic:
    """A proof-of-work challenge: solve it, then book with it (one booking each)."""
    challenge = service.appointments.issue_challenge()
    return ChallengePublic(
        challenge=challenge.challenge, bits=challenge.bits, expires_at=challenge.expires_at
    )


@public_router.post(
    "/bookings",
    status_code=status.HTTP_201_CREATED,
    response_model=BookedPublic,
    responses=PUBLIC_WRITE_PROBLEMS,
    operation_id="book_appointment",
)
def book(
    caller: PublicBooker,
    service: ServiceDep,
    settings: SettingsDep,
    body: BookingCreate,
    response: Response,
) -> BookedPublic:
    """Book a slot; it is held until confirmed with the code of the confirmation mail."""
    recorded = service.appointments.book_appointment(
        office_id=settings.default_office_id,
        service_point_code=body.service_point,
        appointment_type=body.appointment_type,
        starts_at=body.starts_at,
        situation=_situation(body.situation),
        person=_person(body),
        proof=(body.proof.challenge, body.proof.nonce),
        language=body.language,
        by=_acting_user(caller),
    )
    appointment = service.appointments.get_appointment(recorded.appointment_id)
    note_position(response, recorded.position)
    return BookedPublic(
        reference=recorded.reference or "",
        status=appointment.status,
        held_until=appointment.held_until,
        starts_at=appointment.starts_at,
    )


@public_router.post(
    "/waitlist",
    status_code=status.HTTP_201_CREATED,
    response_model=BookedPublic,
    responses=PUBLIC_WRITE_PROBLEMS,
)
def join_waitlist(
    caller: PublicBooker,
    service: ServiceDep,
    settings: SettingsDep,
    body: WaitlistCreate,
    response: Response,
) -> BookedPublic:
    """Wait for a freed slot of a booked-out type; offers come in order, by mail."""
    recorded = service.appointments.join_waitlist(
        office_id=settings.default_office_id,
        service_point_code=body.service_point,
        appointment_type=body.appointment_type,
        situation=_situation(body.situation),
        person=_person(body),
        proof=(body.proof.challenge, body.proof.nonce),
        by=_acting_user(caller),
        language=body.language,
    )
    note_position(response, recorded.position)
    return BookedPublic(reference=recorded.reference or "", status="waiting")


@public_router.get(
    "/bookings/own",
    response_model=BookingStatusPublic,
    responses=PUBLIC_READ_PROBLEMS,
    operation_id="get_own_booking",
)
def own_booking(
    caller: PublicBooker, service: ServiceDep, reference: BookingReference
) -> BookingStatusPublic:
    """The state of one's booking: held until when, mails sent or failed, ended why."""
    view = service.appointments.booking_status(reference)
    appointment = view.appointment
    if appointment is None:
        return BookingStatusPublic(status=view.status, waitlist_position=view.waitlist_position)
    point = service.appointments._get(UUID(appointment.service_point_id), ServicePoint)
    return BookingStatusPublic(
        status=view.status,
        service_point=point.code if point is not None else None,
        appointment_type=appointment.appointment_type,
        starts_at=appointment.starts_at,
        held_until=appointment.held_until if appointment.status == "held" else None,
        end_reason=appointment.end_reason,
        mails=_mails(appointment.mails),
    )


@public_router.post(
    "/bookings/own/confirmation",
    response_model=BookingStatusPublic,
    responses=PUBLIC_WRITE_PROBLEMS,
    operation_id="confirm_own_booking",
)
def confirm(
    caller: PublicBooker,
    service: ServiceDep,
    reference: BookingReference,
    body: ConfirmationCreate,
    response: Response,
) -> BookingStatusPublic:
    """Confirm the booking with the code of the confirmation mail, before the hold lapses."""
    note_position(response, service.appointments.confirm_booking(reference, body.code).position)
    return own_booking(caller, service, reference)


@public_router.post(
    "/bookings/own/confirmation-mail",
    response_model=BookingStatusPublic,
    responses=PUBLIC_WRITE_PROBLEMS,
)
def resend_confirmation(
    caller: PublicBooker, service: ServiceDep, reference: BookingReference, response: Response
) -> BookingStatusPublic:
    """Send the confirmation mail again (same code); the answer shows how it went."""
    note_position(response, service.appointments.resend_confirmation(reference).position)
    return own_booking(caller, service, reference)


@public_router.post(
    "/bookings/own/cancellation",
    response_model=BookingStatusPublic,
    responses=PUBLIC_WRITE_PROBLEMS,
    operation_id="cancel_own_booking",
)
def cancel_own(
    caller: PublicBooker, service: ServiceDep, reference: BookingReference, response: Response
) -> BookingStatusPublic:
    """Cancel one's booking (or leave the waitlist); the slot goes to the next in line."""
    note_position(response, service.appointments.cancel_booking(reference).position)
    return own_booking(caller, service, reference)


# --------------------------------------------------------------------- office


@router.post(
    "/appointments/service-points",
    response_model=ServicePointPublic,
    responses=CONFIGURE_PROBLEMS,
)
def configure_service_point(
    principal: Configurer, service: ServiceDep, body: ServicePointCreate, response: Response
) -> ServicePointPublic:
    """Define a service point of your office, or change its calendar and types."""
    rules = CalendarRules(
        slot_minutes=body.slot_minutes,
        counters=body.counters,
        same_day_counters=body.same_day_counters,
        same_day_release=parse_time("same_day_release", body.same_day_release),
        booking_horizon_days=body.booking_horizon_days,
        timezone=body.timezone,
        opening_hours=tuple(OpeningHours.parse(text) for text in body.opening_hours),
        hold_hours=body.hold_hours,
        reminder_hours=body.reminder_hours,
    )
    types = [
        AppointmentType(
            code=t.code,
            label_de=t.label_de,
            topic=t.topic,
            procedure_kind=t.procedure_kind,
            legal_bases=tuple(t.legal_bases),
            for_documents=tuple(t.for_documents),
            duration_minutes=t.duration_minutes,
        )
        for t in body.types
    ]
    recorded = service.appointments.define_service_point(
        office_id=home_office(principal),
        code=body.code,
        name=body.name,
        rules=rules,
        types=types,
        by=principal.user_id,
    )
    note_position(response, recorded.position)
    return _point_public(recorded.point)


@router.post(
    "/appointments/service-points/{code}/closed-days",
    response_model=ServicePointPublic,
    responses=CONFIGURE_PROBLEMS,
    operation_id="close_service_point_day",
)
def close_day(
    principal: Configurer,
    service: ServiceDep,
    code: Annotated[str, Path(min_length=2, max_length=60)],
    body: ClosedDayCreate,
    response: Response,
) -> ServicePointPublic:
    """Close a service point on a day, today or later (`422` for a past day). Refused
    with `409 day-has-bookings` while bookings hold seats that day: cancel each first
    (`POST /appointments/{id}/cancellation`, which mails the person)."""
    recorded = service.appointments.close_service_point_day(
        office_id=home_office(principal),
        code=code,
        day=body.day,
        reason=body.reason,
        by=principal.user_id,
    )
    note_position(response, recorded.position)
    return _point_public(recorded.point)


@router.delete(
    "/appointments/service-points/{code}/closed-days/{day}",
    response_model=ServicePointPublic,
    responses=CONFIGURE_PROBLEMS,
    operation_id="reopen_service_point_day",
)
def reopen_day(
    principal: Configurer,
    service: ServiceDep,
    code: Annotated[str, Path(min_length=2, max_length=60)],
    day: Annotated[LawfulDate, Path(description="The closed day, `YYYY-MM-DD`.")],
    response: Response,
) -> ServicePointPublic:
    """Open a closed day again: its slots are offered as before. Idempotent: a day that
    is not closed stays open, `200` with nothing recorded."""
    recorded = service.appointments.reopen_service_point_day(
        office_id=home_office(principal), code=code, day=day, by=principal.user_id
    )
    note_position(response, recorded.position)
    return _point_public(recorded.point)


OFFICE_BOOKING_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    201: {"headers": {"ETag": _ETAG}},
    401: _problem("The bearer token is missing, expired or invalid."),
    403: _problem("Your roles do not grant the permission this route needs."),
    404: _problem("No such service point in your office."),
    409: _problem(
        "Refused, nothing recorded: the slot is fully booked (`slot-taken`) or not bookable, "
        "or the person holds as many bookings as allowed."
    ),
    413: _problem("The body is too large."),
    422: _problem(
        "The input is invalid; `errors` names the fields (an appointment type that does not "
        "fit names the types that do; a case file not of your office); nothing was recorded."
    ),
    503: _UNAVAILABLE,
}


@router.post(
    "/appointments/office-bookings",
    status_code=status.HTTP_201_CREATED,
    response_model=OfficeBookedPublic,
    responses=OFFICE_BOOKING_PROBLEMS,
)
def book_for_person(
    principal: CounterClerk, service: ServiceDep, body: OfficeBookingCreate, response: Response
) -> OfficeBookedPublic:
    """Book for a person, at your office (at the counter, on the phone): no challenge; the
    booking is held and its confirmation mail goes out like any other. The answer holds
    the booking's secret reference, once, to hand to the person."""
    recorded = service.appointments.book_appointment(
        office_id=home_office(principal),
        service_point_code=body.service_point,
        appointment_type=body.appointment_type,
        starts_at=body.starts_at,
        situation=_situation(body.situation),
        person=_person(body),
        proof=None,
        origin="office",
        case_id=body.case_id,
        by=principal.user_id,
    )
    appointment = service.appointments.get_appointment(recorded.appointment_id)
    response.headers["ETag"] = f'"{appointment.version}"'
    note_position(response, recorded.position)
    return OfficeBookedPublic(
        appointment_id=appointment.id,
        version=appointment.version,
        reference=recorded.reference or "",
        status=appointment.status,
        starts_at=appointment.starts_at,
        held_until=appointment.held_until,
    )


def _appointment_public(a: Appointment) -> AppointmentPublic:
    return AppointmentPublic(
        appointment_id=a.id,
        version=a.version,
        status=a.status,
        service_point_id=UUID(a.service_point_id),
        appointment_type=a.appointment_type,
        topic=a.topic,
        procedure_kind=a.procedure_kind,
        legal_basis=a.legal_basis,
        holds=a.holds,
        holds_legal_basis=a.holds_legal_basis,
        wants=a.wants,
        starts_at=a.starts_at,
        ends_at=a.ends_at,
        held_until=a.held_until,
        origin=a.origin,
        case_id=UUID(a.case_id) if a.case_id else None,
        surname=a.person.surname,
        given_names=a.person.given_names,
        date_of_birth=a.person.date_of_birth,
        email=a.person.email,
        phone=a.person.phone,
        mails=_mails(a.mails),
    )


@router.get(
    "/appointments/{appointment_id}",
    response_model=AppointmentPublic,
    responses={200: {"headers": {"ETag": _ETAG}}, **READ_PROBLEMS},
)
def read_appointment(
    principal: AppointmentReader,
    service: ServiceDep,
    appointment_id: AppointmentId,
    response: Response,
) -> AppointmentPublic:
    """One appointment with the person's data, its mails and state (ETag: its version)."""
    appointment = service.appointments.get_appointment(appointment_id)
    response.headers["ETag"] = f'"{appointment.version}"'
    return _appointment_public(appointment)


@router.post(
    "/appointments/{appointment_id}/check-in",
    response_model=AppointmentRecordedPublic,
    responses=WRITE_PROBLEMS,
    operation_id="check_in_appointment",
)
def check_in(
    principal: CounterClerk,
    expected_version: ExpectedVersion,
    service: ServiceDep,
    appointment_id: AppointmentId,
    response: Response,
) -> AppointmentRecordedPublic:
    """The person is at the counter (a held booking counts as confirmed)."""
    return _recorded(
        response,
        service.appointments.check_in_appointment(
            appointment_id, expected_version=expected_version, by=principal.user_id
        ),
    )


@router.post(
    "/appointments/{appointment_id}/attendance",
    response_model=AppointmentRecordedPublic,
    responses=WRITE_PROBLEMS,
    operation_id="record_attendance",
)
def attended(
    principal: CounterClerk,
    expected_version: ExpectedVersion,
    service: ServiceDep,
    appointment_id: AppointmentId,
    response: Response,
) -> AppointmentRecordedPublic:
    """Served: recorded on the appointment and, if linked, on the case file."""
    return _recorded(
        response,
        service.appointments.record_attended(
            appointment_id, expected_version=expected_version, by=principal.user_id
        ),
    )


@router.post(
    "/appointments/{appointment_id}/no-show",
    response_model=AppointmentRecordedPublic,
    responses=WRITE_PROBLEMS,
    operation_id="record_no_show",
)
def no_show(
    principal: CounterClerk,
    expected_version: ExpectedVersion,
    service: ServiceDep,
    appointment_id: AppointmentId,
    response: Response,
) -> AppointmentRecordedPublic:
    """The person did not come (only once the appointment has begun)."""
    return _recorded(
        response,
        service.appointments.record_no_show(
            appointment_id, expected_version=expected_version, by=principal.user_id
        ),
    )


@router.post(
    "/appointments/{appointment_id}/cancellation",
    response_model=AppointmentRecordedPublic,
    responses=WRITE_PROBLEMS,
    operation_id="cancel_appointment",
)
def cancel(
    principal: CounterClerk,
    expected_version: ExpectedVersion,
    service: ServiceDep,
    appointment_id: AppointmentId,
    body: CancellationCreate,
    response: Response,
) -> AppointmentRecordedPublic:
    """The office cancels (and mails the person), or records that the person asked to
    cancel (`cancelled_by` `person`: no mail); the slot is offered to the waitlist."""
    return _recorded(
        response,
        service.appointments.cancel_appointment(
            appointment_id,
            expected_version=expected_version,
            by=principal.user_id,
            cancelled_by=body.cancelled_by,
            reason=body.reason,
        ),
    )


@router.post(
    "/appointments/{appointment_id}/retyping",
    response_model=AppointmentRecordedPublic,
    responses=WRITE_PROBLEMS,
    operation_id="retype_appointment",
)
def retype(
    principal: CounterClerk,
    expected_version: ExpectedVersion,
    service: ServiceDep,
    appointment_id: AppointmentId,
    body: RetypeCreate,
    response: Response,
) -> AppointmentRecordedPublic:
    """Give the appointment the right type instead of sending the person away."""
    return _recorded(
        response,
        service.appointments.retype_appointment(
            appointment_id,
            expected_version=expected_version,
            by=principal.user_id,
            appointment_type=body.appointment_type,
            legal_basis=body.legal_basis,
            reason=body.reason,
        ),
    )


@router.post(
    "/appointments/{appointment_id}/case-link",
    response_model=AppointmentRecordedPublic,
    responses=WRITE_PROBLEMS,
    operation_id="link_appointment_to_case_file",
)
def link_case(
    principal: CounterClerk,
    expected_version: ExpectedVersion,
    service: ServiceDep,
    appointment_id: AppointmentId,
    body: AppointmentCaseLinkCreate,
    response: Response,
) -> AppointmentRecordedPublic:
    """Link the appointment to the person's case file (attendance is recorded there)."""
    return _recorded(
        response,
        service.appointments.link_appointment_to_case(
            appointment_id,
            expected_version=expected_version,
            by=principal.user_id,
            case_id=body.case_id,
        ),
    )


@router.get(
    "/cases/{case_id}/appointment-proposals",
    response_model=list[ProposalPublic],
    responses=READ_PROBLEMS,
    operation_id="list_appointment_proposals",
)
def proposals(
    principal: ProposalReader, service: ServiceDep, case_id: CaseId
) -> list[ProposalPublic]:
    """What the case file's documents call for, and the fitting types at each service point."""
    office = service.get_case(case_id).office_id
    return [
        ProposalPublic(
            situation=SituationPublic(
                holds=view.proposal.situation.holds,
                holds_legal_basis=view.proposal.situation.holds_legal_basis,
                wants=view.proposal.situation.wants,
            ),
            why=view.proposal.why,
            expires_on=view.proposal.expires_on,
            fitting_types={
                code: [_type_public(t) for t in types] for code, types in view.fitting.items()
            },
        )
        for view in service.appointments.propose_appointment(case_id, office_id=office)
    ]


# ------------------------------------------------------------------ problems


async def _appointment_problem(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, BookingNotFound):
        code = "booking-not-found" if error.appointment_id is None else "appointment-not-found"
        return problem_response(404, code, str(error))
    if isinstance(error, ServicePointNotFound):
        return problem_response(404, "service-point-not-found", str(error))
    if isinstance(error, AppointmentChanged):
        return problem_response(
            412,
            "stale-version",
            str(error),
            expected_version=error.expected,
            actual_version=error.actual,
            headers={"ETag": f'"{error.actual}"'},
        )
    if isinstance(error, AppointmentsNotConfigured):
        return problem_response(
            503,
            "appointments-unavailable",
            "online booking is switched off in this deployment; see its appointment settings",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    raise error


def install_appointment_problems(app: FastAPI) -> None:
    for error_class in (
        BookingNotFound,
        ServicePointNotFound,
        AppointmentChanged,
        AppointmentsNotConfigured,
    ):
        app.add_exception_handler(error_class, _appointment_problem)
