"""Request and response shapes of the appointment routes (kept apart from the events)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from adapters.http.schemas.lawful import LawfulDate, LawfulRequest, LawfulTime, Line
from adapters.http.schemas.lawful import Text as FreeText

Code = Annotated[Line, Field(min_length=2, max_length=60, pattern=r"^[a-z0-9][a-z0-9_-]+$")]
Held = Literal["none", "visa", "eat", "fiction_certificate", "duldung", "aufenthaltsgestattung"]
Text = Annotated[Line, Field(min_length=1, max_length=200)]
Clock = Annotated[str, Field(pattern=r"^[0-2]\d:[0-5]\d$", examples=["07:00"])]


class _Strict(LawfulRequest):
    model_config = ConfigDict(extra="forbid")


class AppointmentTypeCreate(_Strict):
    code: Code
    label_de: Text
    topic: Code
    """A contact topic code (``GET /catalogue``): what the appointment is for."""
    procedure_kind: Code
    legal_bases: Annotated[list[Code], Field(default_factory=list, max_length=60)]
    for_documents: Annotated[list[Held], Field(default_factory=list, max_length=6)]
    duration_minutes: Annotated[int, Field(ge=5, le=240)]


class ServicePointCreate(_Strict):
    code: Code
    name: Text
    slot_minutes: Annotated[int, Field(ge=5, le=240)] = 30
    counters: Annotated[int, Field(ge=1, le=100)] = 1
    same_day_counters: Annotated[int, Field(ge=0, le=100)] = 0
    same_day_release: Clock = "07:00"
    booking_horizon_days: Annotated[int, Field(ge=1, le=366)] = 56
    timezone: Annotated[Line, Field(min_length=1, max_length=60)] = "Europe/Berlin"
    opening_hours: Annotated[
        list[Annotated[str, Field(pattern=r"^[1-7] [0-2]\d:[0-5]\d-[0-2]\d:[0-5]\d$")]],
        Field(max_length=50, examples=[["1 08:00-12:00", "4 14:00-18:00"]]),
    ]
    hold_hours: Annotated[int, Field(ge=1, le=336)] = 48
    reminder_hours: Annotated[int, Field(ge=0, le=335)] = 24
    types: Annotated[list[AppointmentTypeCreate], Field(max_length=50)]


class AppointmentTypePublic(BaseModel):
    code: str
    label_de: str
    topic: str
    procedure_kind: str
    legal_bases: list[str]
    for_documents: list[str]
    duration_minutes: int


class ServicePointPublic(BaseModel):
    code: str
    name: str
    slot_minutes: int
    counters: int
    same_day_counters: int
    same_day_release: str
    booking_horizon_days: int
    timezone: str
    opening_hours: list[str]
    hold_hours: int
    closed_days: list[date]
    types: list[AppointmentTypePublic]


class ClosedDayCreate(_Strict):
    day: LawfulDate
    reason: Text


class SlotPublic(BaseModel):
    starts_at: datetime
    free: int


class OfferPublic(BaseModel):
    service_point: str
    fitting_types: list[AppointmentTypePublic]
    """Only the types that fit what the person holds and wants; book one of these."""
    slots: list[SlotPublic]
    """Free seats per slot as bookable now (none when no type fits)."""


class ChallengePublic(BaseModel):
    challenge: str
    bits: int
    """Find a ``nonce`` such that sha256(``challenge:nonce``) starts with this many zero
    bits, and send both with the booking. Each challenge buys one booking."""
    expires_at: datetime


class PersonCreate(_Strict):
    surname: Text
    given_names: Text
    date_of_birth: LawfulDate
    email: Annotated[Line, Field(min_length=3, max_length=254)]
    phone: Annotated[Line | None, Field(max_length=40)] = None


class SituationCreate(_Strict):
    holds: Held
    """The document the person's stay rests on now."""
    holds_legal_basis: Code | None = None
    wants: Code
    """A contact topic code: what the appointment is for."""


class ProofCreate(_Strict):
    challenge: Annotated[Line, Field(min_length=1, max_length=200)]
    nonce: Annotated[Line, Field(min_length=1, max_length=40)]


class BookingCreate(_Strict):
    service_point: Code
    appointment_type: Code
    starts_at: LawfulTime
    situation: SituationCreate
    person: PersonCreate
    proof: ProofCreate
    language: Literal["de", "en", "uk", "ar", "tr"] = "de"
    """The person's language: their mails are written in German (``de``) or else English."""


class WaitlistCreate(_Strict):
    service_point: Code
    appointment_type: Code
    situation: SituationCreate
    person: PersonCreate
    proof: ProofCreate
    language: Literal["de", "en", "uk", "ar", "tr"] = "de"
    """The person's language: the offer mails are written in German (``de``) or else English."""


class BookedPublic(BaseModel):
    reference: str
    """The secret reference: keep it. It shows the booking's state, confirms and cancels
    it (``X-Booking-Reference``); it is shown only this once."""
    status: str
    held_until: datetime | None = None
    starts_at: datetime | None = None


class MailPublic(BaseModel):
    number: int
    kind: str
    status: str
    """``queued``, ``sent`` (accepted by the mail server), ``failed``, ``bounced``."""
    attempts: int


class BookingStatusPublic(BaseModel):
    """A booking's state as its holder sees it; no personal data."""

    status: str
    """``held`` (confirm it), ``confirmed``, ``checked_in``, ``attended``, ``no_show``,
    ``cancelled``, ``lapsed``, ``waiting`` (on the waitlist), ``left_waitlist``."""
    service_point: str | None = None
    appointment_type: str | None = None
    starts_at: datetime | None = None
    held_until: datetime | None = None
    end_reason: str | None = None
    waitlist_position: int | None = None
    mails: list[MailPublic] = []


class ConfirmationCreate(_Strict):
    code: Annotated[Line, Field(min_length=4, max_length=20)]


class AppointmentPublic(BaseModel):
    """An appointment as the office sees it."""

    appointment_id: UUID
    version: int
    status: str
    service_point_id: UUID
    appointment_type: str
    topic: str
    procedure_kind: str
    legal_basis: str | None
    holds: str
    holds_legal_basis: str | None
    wants: str
    starts_at: datetime
    ends_at: datetime
    held_until: datetime
    origin: str
    case_id: UUID | None
    surname: str
    given_names: str
    date_of_birth: date
    email: str
    phone: str | None
    mails: list[MailPublic]


class AppointmentRecordedPublic(BaseModel):
    appointment_id: UUID
    version: int


class RetypeCreate(_Strict):
    appointment_type: Code
    legal_basis: Code | None = None
    reason: Annotated[FreeText | None, Field(max_length=1000)] = None


class CancellationCreate(_Strict):
    reason: Annotated[FreeText | None, Field(max_length=1000)] = None
    cancelled_by: Annotated[
        Literal["office", "person"],
        Field(
            description=(
                "`office` (default): the office cancels, and the person is mailed before "
                "the appointment begins. `person`: the person asked for it (by phone, at "
                "the counter); no mail."
            )
        ),
    ] = "office"


class AppointmentCaseLinkCreate(_Strict):
    case_id: UUID


class SituationPublic(BaseModel):
    holds: str
    holds_legal_basis: str | None
    wants: str


class ProposalPublic(BaseModel):
    situation: SituationPublic
    why: str
    expires_on: date | None
    fitting_types: dict[str, list[AppointmentTypePublic]]
    """Service point code to the types there that fit."""


class OfficeBookingCreate(_Strict):
    """A booking a caseworker makes for a person (at the counter, on the phone): no
    challenge; held and confirmed like any other."""

    service_point: Code
    appointment_type: Code
    starts_at: LawfulTime
    situation: SituationCreate
    person: PersonCreate
    case_id: UUID | None = None
    """The person's case file in your office, if known."""


class OfficeBookedPublic(BaseModel):
    appointment_id: UUID
    version: int
    reference: str
    """The booking's secret reference, shown once: hand it to the person, who follows,
    confirms or cancels the booking with it."""
    status: str
    starts_at: datetime
    held_until: datetime


class TypeFiguresPublic(BaseModel):
    service_point: str
    service_point_id: UUID
    appointment_type: str
    waiting: int
    """People on the waitlist, not yet offered a seat."""
    next_free_slot: datetime | None
    """``null``: nothing free within the booking horizon."""
    booked_out_days: int | None
    booked_out_weeks: int | None
    """The "booked out for N weeks" figure: whole weeks until the next free slot."""
    horizon_days: int


class AppointmentFiguresPublic(BaseModel):
    as_of: datetime
    figures: list[TypeFiguresPublic]
