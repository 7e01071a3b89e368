"""Value types of the case file: closed vocabularies as ``Literal`` strings.

Literal strings survive a JSON round trip unchanged, so an event read back from the
store equals the event that was written.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime, timedelta
from typing import Final, Literal, get_args

from domain.errors import InvalidValue

Channel = Literal["contact_form", "appointment", "mail", "online_application"]
"""How a procedure (Vorgang) reached the office."""

DIGITAL_CHANNELS: Final = frozenset({"contact_form", "online_application"})

DocumentSource = Literal["contact_form", "scan", "mail", "caseworker"]
"""Where an attached document came from."""

UploadMediaType = Literal["application/pdf", "image/jpeg", "image/png"]
"""What people and caseworkers may upload: told apart by the bytes, never by the name."""

ProcedureStatus = Literal["received", "assigned", "documents_requested", "decided", "closed"]

DecisionOutcome = Literal["granted", "refused", "withdrawn"]

ResidenceDocumentKind = Literal["eat", "duldung", "aufenthaltsgestattung"]
"""eAT (§78 AufenthG), Duldung (§60a AufenthG), Aufenthaltsgestattung (§55, §63 AsylG)."""

ResidenceDocumentEndReason = Literal["expired", "revoked", "replaced", "departed"]
"""§51 expiry, §52 revocation, replaced by another document, person departed."""

EatCardStatus = Literal["not_ordered", "ordered", "arrived", "handed_over"]

FictionKind = Literal["81_3_1", "81_3_2", "81_4"]
"""Fiktionsbescheinigung kind: §81 (3) S.1 (Erlaubnisfiktion), §81 (3) S.2
(Duldungsfiktion) or §81 (4) AufenthG (Fortgeltungsfiktion); form Anlage D3 AufenthV."""

FictionEndReason = Literal["decision", "withdrawal"]

FictionOrderBasis = Literal["timely_application", "hardship_order"]
"""Why a § 81 (4) AufenthG fiction applies: the application was received while the
previous title was valid (§ 81 (4) S. 1), or the office ordered it to avoid hardship for
a late application (§ 81 (4) S. 3)."""

EntryProcedureStatus = Literal["requested", "consent_given", "consent_refused"]

InquiryKind = Literal["civil_registry", "naturalisation"]

CounterpartKind = Literal["authority", "court", "lawyer"]

Direction = Literal["received", "sent"]

CaseFileStatus = Literal["active", "transferred", "closed"]

ClosureReason = Literal["naturalised", "died", "left"]

MAX_FICTION_EXTENSIONS_PER_CARRIER_SHEET: Final = 2
"""A carrier sheet (Trägervordruck) has room for two extensions; the third needs a new one."""

_DOCUMENT_NUMBER = re.compile(r"^[A-Z0-9]{5,20}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NATIONALITY = re.compile(r"^[A-Z]{3}$")
_MEDIA_TYPE = re.compile(r"^[a-z]+/[a-z0-9.+-]+$")


def require_choice(field: str, value: str, vocabulary: object) -> None:
    """Raise :class:`InvalidValue` unless ``value`` is one of the ``Literal`` choices."""
    allowed = get_args(vocabulary)
    if value not in allowed:
        raise InvalidValue(field, f"must be one of {', '.join(allowed)}")


def require_text(
    field: str, value: str, *, max_length: int = 200, line_breaks: bool = False
) -> None:
    """Non-empty text of at most ``max_length`` characters without control characters;
    ``line_breaks`` allows line breaks and tabs, for free text (notes, messages,
    reasons, addresses) but not for names and ids."""
    if not value or not value.strip():
        raise InvalidValue(field, "must not be empty")
    if len(value) > max_length:
        raise InvalidValue(field, f"must be at most {max_length} characters")
    require_printable(field, value, line_breaks=line_breaks)


# -- What every read model can store and compute with: no control characters in text,
# -- times whose conversion to UTC cannot overflow, integers that fit 64 bits.

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
"""C0 and C1 control characters (NUL among them) and lone surrogates, which UTF-8 cannot
encode: PostgreSQL refuses NUL in text, and neither has a place in a name or a note."""
_CONTROL_EXCEPT_LINE_BREAKS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
EARLIEST_DAY: Final = date(1900, 1, 1)
LATEST_DAY: Final = date(2199, 12, 31)
"""Dates and times lie in 1900-2199: no birth, validity, appointment or action of a living
case lies outside, and a time there converts to UTC without overflowing, as
``datetime.min`` with a positive offset does."""
MAX_UTC_OFFSET: Final = timedelta(hours=14)
"""The world's time zones lie within UTC-12 and UTC+14; PostgreSQL refuses 16 hours."""
MIN_INTEGER: Final = -(2**63)
MAX_INTEGER: Final = 2**63 - 1
"""The stores' and read models' integer columns are 64 bits wide."""


_DIRECTION_OVERRIDES = re.compile("[\u202a-\u202e\u2066-\u2069]")
"""The embeddings, overrides and isolates of the bidirectional algorithm: within one line
they make text display as other text ("\u202ezamliY" shows as "Yilmaz"). The single marks
(U+200E, U+200F, U+061C) only set the direction of what is next to them and are kept:
names copied from right-to-left documents carry them."""


def require_printable(field: str, value: str, *, line_breaks: bool = False) -> None:
    """Refuse control characters (with ``line_breaks``: except tab, line feed and
    carriage return) and lone surrogates; in one line (names, ids, codes), also the
    direction overrides, embeddings and isolates, which make it read as another."""
    pattern = _CONTROL_EXCEPT_LINE_BREAKS if line_breaks else _CONTROL
    if pattern.search(value):
        allowed = " other than line breaks and tabs" if line_breaks else ""
        raise InvalidValue(field, f"must not contain control characters{allowed}")
    if not line_breaks and _DIRECTION_OVERRIDES.search(value):
        raise InvalidValue(
            field, "must not contain direction overrides (U+202A-U+202E, U+2066-U+2069)"
        )


def require_lawful_day(field: str, value: date) -> None:
    """A date (or the local date of a time) between 1900-01-01 and 2199-12-31."""
    day = value.date() if isinstance(value, datetime) else value
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise InvalidValue(field, f"must lie between {EARLIEST_DAY} and {LATEST_DAY}")


def require_lawful_time(field: str, value: datetime) -> None:
    """A time whose local date lies in 1900-2199 and whose offset from UTC, if it has one,
    is whole seconds within the ±14 hours of the world's time zones (PostgreSQL refuses
    offsets from 16 hours on)."""
    require_lawful_day(field, value)
    offset = value.utcoffset()
    if offset is not None and (abs(offset) > MAX_UTC_OFFSET or offset.microseconds):
        raise InvalidValue(field, "must have a UTC offset of whole seconds within 14 hours")


def require_lawful_value(field: str, value: object) -> None:
    """Any value an event carries, walked through lists, mappings and dataclasses: text
    without control characters other than line breaks and tabs, dates and times in
    1900-2199, finite numbers, integers within 64 bits."""
    if isinstance(value, str):
        require_printable(field, value, line_breaks=True)
    elif isinstance(value, datetime):
        require_lawful_time(field, value)
    elif isinstance(value, date):
        require_lawful_day(field, value)
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if not MIN_INTEGER <= value <= MAX_INTEGER:
            raise InvalidValue(field, "must fit in 64 bits")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidValue(field, "must be a finite number")
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            require_lawful_value(field, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            require_lawful_value(field, key)
            require_lawful_value(field, item)
    elif is_dataclass(value) and not isinstance(value, type):
        for part in fields(value):
            require_lawful_value(f"{field}.{part.name}", getattr(value, part.name))


class LawfulEvent:
    """Mixed into each aggregate's ``Event`` base: an event is checked with
    :func:`require_lawful_value` when it is made, so no command, whatever its path (HTTP,
    CLI, simulator, a direct service call), records a value that a read model cannot
    process. Events read back from the store are not made this way and are not checked:
    what was recorded stays readable."""

    def __post_init__(self) -> None:
        super().__post_init__()  # type: ignore[misc]
        for name, value in vars(self).items():
            require_lawful_value(name, value)


def require_document_number(field: str, value: str) -> None:
    """Card, passport, sticker and carrier-sheet numbers: 5-20 capital letters or digits."""
    if not _DOCUMENT_NUMBER.fullmatch(value):
        raise InvalidValue(field, "must be 5 to 20 capital letters or digits")


def require_nationality(field: str, value: str) -> None:
    if not _NATIONALITY.fullmatch(value):
        raise InvalidValue(field, "must be an ISO 3166-1 alpha-3 code such as SYR or XXA")


def require_sha256(field: str, value: str) -> None:
    if not _SHA256.fullmatch(value):
        raise InvalidValue(field, "must be 64 lower-case hexadecimal digits")


def require_media_type(field: str, value: str) -> None:
    if not _MEDIA_TYPE.fullmatch(value):
        raise InvalidValue(field, "must be a media type such as application/pdf")


def require_aware(field: str, value: datetime) -> None:
    """A time with a time zone, between 1900-01-01 and 2199-12-31 (local date)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidValue(field, "must carry a time zone")
    require_lawful_time(field, value)


@dataclass(frozen=True)
class Validity:
    """A validity period; ``valid_until`` is the last day on which the document is valid."""

    valid_from: date
    valid_until: date

    def __post_init__(self) -> None:
        if self.valid_until <= self.valid_from:
            raise InvalidValue("valid_until", "must be after valid_from")


# -- Commitment declarations (Verpflichtungserklärung, §68 AufenthG) and their fee.

Currency = Literal["EUR"]
"""Fees are charged in euros only."""

PaymentMethod = Literal["visa", "mastercard", "giropay", "paydirect", "paypal"]
"""What the public ePayment platforms offer the payer."""

PaymentOutcome = Literal["paid", "failed", "expired"]
"""What the payment provider reports about a payment."""

PaymentStatus = Literal["pending", "paid", "failed", "expired"]
"""A payment attempt: open at the provider until it reports an outcome."""

FeeStatus = Literal["due", "payment_pending", "paid", "refunded"]

VisitPurpose = Literal[
    "family_visit",
    "private_visit",
    "tourism",
    "business",
    "medical_treatment",
    "training",
    "other",
]
"""The purpose of the invited person's stay, as the declaration form asks for it."""

CommitmentStatus = Literal[
    "fee_due",
    "payment_pending",
    "fee_refunded",
    "awaiting_ability_check",
    "ability_not_shown",
    "ready_for_pickup",
    "pickup_scheduled",
    "handed_over",
    "withdrawn",
]
"""Where a commitment declaration stands; the first that applies, from the bottom up."""

COMMITMENT_DECLARATION_FEE_CENTS: Final = 2900
"""29 EUR, §47 (1) Nr. 12 AufenthV; due on submission, whether the ability to pay is shown
or not."""
COMMITMENT_DECLARATION_FEE_LEGAL_BASIS: Final = "aufenthv-47-1-12"
COMMITMENT_LIABILITY_YEARS: Final = 5
"""§68 (1) S.4 AufenthG: the guarantor is liable for five years from the visitor's entry."""
GUARANTOR_MINIMUM_AGE: Final = 18
"""Only a person of full age can bind themselves by a declaration."""
MAX_CENTS: Final = 10**13
"""A hundred billion euros: far beyond any income, asset or fee, and well inside 64 bits."""

_TRANSACTION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$")
_HTTP_URL = re.compile(r"^https?://[^\s]{1,2000}$")


def require_positive_cents(field: str, value: int) -> None:
    """Money is counted in whole cents, never in floats."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValue(field, "must be a whole number of cents")
    if not 1 <= value <= MAX_CENTS:
        raise InvalidValue(field, f"must be between 1 and {MAX_CENTS} cents")


def require_currency(field: str, value: str) -> None:
    require_choice(field, value, Currency)


def require_transaction_id(field: str, value: str) -> None:
    """A payment provider's transaction id: 1-100 letters, digits, '.', '_', ':' or '-'."""
    if not _TRANSACTION_ID.fullmatch(value):
        raise InvalidValue(field, "must be 1 to 100 letters, digits, '.', '_', ':' or '-'")


def require_http_url(field: str, value: str) -> None:
    if not _HTTP_URL.fullmatch(value):
        raise InvalidValue(field, "must be an http(s) URL of at most 2000 characters")


def add_years(day: date, years: int) -> date:
    """The same calendar day ``years`` later; 29 February becomes 28 February (§188 (3) BGB)."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        return day.replace(year=day.year + years, day=28)


@dataclass(frozen=True)
class Money:
    """An amount in whole cents of a currency; positive, and in euros."""

    amount_cents: int
    currency: str = "EUR"

    def __post_init__(self) -> None:
        require_positive_cents("amount_cents", self.amount_cents)
        require_currency("currency", self.currency)


COMMITMENT_DECLARATION_FEE: Final = Money(COMMITMENT_DECLARATION_FEE_CENTS, "EUR")


# -- Contact form submissions (the online contact form) and scanned legacy files.

SubmissionStatus = Literal["untriaged", "linked", "procedure_opened", "answered", "dismissed"]
"""Where a contact form submission stands. ``untriaged`` and ``linked`` (to a case file,
nothing decided yet) wait for a caseworker; the other three end the triage."""

DismissalReason = Literal["spam", "duplicate", "withdrawn"]
"""Why a submission was set aside without a procedure or a reply."""

CONTACT_FORM_DOCUMENT_KIND: Final = "contact-form-upload"
"""The document kind of a file that arrived through the contact form."""
SCANNED_LEGACY_FILE_KIND: Final = "legacy-file-scan"
"""The document kind of a scanned part of a legacy paper file, unless its manifest names one."""

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_EMAIL: Final = 254
MAX_FILE_NAME: Final = 255
_UNSAFE_IN_FILE_NAME = re.compile(
    # Separators, control characters, and the marks that reorder text when shown
    # ("\u202egnp.pdf" displays as "fdp.png"): a name shown to a caseworker must read
    # as it is.
    r"[/\\\x00-\x1f\x7f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def require_email(field: str, value: str) -> None:
    """An address to write to: no control or format characters (direction marks, zero
    widths), which would make it show as another address than the one mail goes to."""
    if (
        len(value) > MAX_EMAIL
        or not _EMAIL.fullmatch(value)
        or any(unicodedata.category(char) in ("Cc", "Cf", "Cs") for char in value)
    ):
        raise InvalidValue(field, "must be an e-mail address such as name@example.org")


def require_file_name(field: str, value: str) -> None:
    """A sender's file name, kept for the caseworker only (files are stored by hash).

    Path separators, ``..``, NUL and control characters are refused rather than cleaned:
    such a name is a mistake or an attack, and either way the sender should hear of it.
    """
    if not value or not value.strip():
        raise InvalidValue(field, "must not be empty")
    if len(value) > MAX_FILE_NAME:
        raise InvalidValue(field, f"must be at most {MAX_FILE_NAME} characters")
    # Without separators, ".." can only traverse as the whole name.
    if _UNSAFE_IN_FILE_NAME.search(value) or value.strip() in (".", ".."):
        raise InvalidValue(
            field,
            "must be a plain file name: no path, '..', NUL, control characters or direction marks",
        )
