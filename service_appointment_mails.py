"""The ground floor of the appointments context: loading and saving its aggregates,
one command on one appointment, what the secret derives (person keys, confirmation
codes, proof-of-work challenges) and the mails (:class:`service_ports.Mailer`).

:class:`AppointmentMails` is the base of :class:`service_appointments.Appointments`
(``service.appointments``), kept apart so that neither module grows past what one
reads in a sitting. Mails are sent after the transaction that queued them, and what the
mail server said is recorded (sent, failed with a code, later bounced); the tick tries
queued and failed ones again.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError

from domain.acts import Act
from domain.appointments import (
    Appointment,
    AppointmentStateConflict,
    Mail,
    Person,
    ServicePoint,
    SpentChallenge,
)
from domain.errors import RuleViolation
from service_appointment_texts import DATE_FORMATS, MailFacts, compose_text, mail_language
from service_ports import (
    Catalogue,
    Mailer,
    MailRefused,
    MailUnavailable,
    OutgoingMail,
    ServiceStore,
)

logger = logging.getLogger("akte.appointments")

A = TypeVar("A")

MAIL_USER: Final = "mail"
"""Who acts when the outcome of sending a mail is recorded."""
MAX_CHANGE_ATTEMPTS: Final = 5
_CODE_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CODE_SYMBOLS: Final = 8


class BookingNotFound(Exception):
    """No booking has this reference (or no appointment this id)."""

    def __init__(self, appointment_id: UUID | None = None) -> None:
        if appointment_id is None:
            message = "no booking has this reference"
        else:
            message = f"appointment {appointment_id} does not exist"
        super().__init__(message)
        self.appointment_id = appointment_id


class AppointmentChanged(Exception):
    """The appointment changed since the version the caller based its command on."""

    def __init__(self, appointment_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            f"appointment {appointment_id} is at version {actual}, "
            f"the command expected version {expected}"
        )
        self.appointment_id = appointment_id
        self.expected = expected
        self.actual = actual


class SlotBusy(RuleViolation):
    """So many bookings raced for the slot that this one gave up; nothing recorded."""

    code = "slot-busy"


class AppointmentsNotConfigured(Exception):
    """The service was built without the appointment set-up (secret and mailer)."""


@dataclass(frozen=True)
class AppointmentSetup:
    """What appointments need beyond the store: a secret and a way to send mail."""

    secret: bytes
    """HMAC key of person keys, confirmation codes and proof-of-work challenges."""
    mailer: Mailer
    bookings_per_person: int = 2
    proof_of_work_bits: int = 20
    """Leading zero bits a challenge's solution must give: about a second of a browser's
    time at 20, a million slots' worth of hashing for a bulk booker."""
    challenge_seconds: int = 600
    confirmation_link: str | None = None
    """Where a mail's one-click confirmation leads: a template with ``{appointment}``,
    ``{code}`` and ``{language}`` (the composition root builds it from the public base
    URL); ``None``: mails carry the code only."""


@dataclass(frozen=True)
class AppointmentRecorded:
    appointment_id: UUID
    version: int
    position: int | None
    reference: str | None = None
    """The booking's secret reference: returned once, at booking, stored only hashed."""


@dataclass
class MailRun:
    sent: int = 0
    failed: int = 0
    version: int | None = None
    """The appointment's version after the last outcome recorded; None: none recorded."""
    position: int | None = None


class ChallengeRefused(RuleViolation):
    """The proof of work is missing, forged, expired, too weak, wrong or spent."""

    code = "challenge-refused"


@dataclass(frozen=True)
class Challenge:
    challenge: str
    bits: int
    expires_at: datetime


# ------------------------------------------------------------------ helpers


def normalised_identity(surname: str, given_names: str, date_of_birth: date) -> str:
    """Names without case, accents, spaces or punctuation, and the birth date: the same
    person typed twice, or with another e-mail address, gives the same text."""

    def plain(text: str) -> str:
        decomposed = unicodedata.normalize("NFKD", text.casefold())
        return "".join(ch for ch in decomposed if ch.isalnum())

    return f"{plain(surname)}|{plain(given_names)}|{date_of_birth}"


def hash_booking_reference(reference: str) -> str:
    return hashlib.sha256(f"TERMIN-{reference}".encode()).hexdigest()


def _leading_zero_bits(digest: bytes) -> int:
    bits = 0
    for byte in digest:
        if byte == 0:
            bits += 8
            continue
        return bits + 8 - byte.bit_length()
    return bits


def solve_challenge(challenge: str, bits: int) -> str:
    """What a client does (tests and the demo): find a nonce giving ``bits`` zero bits."""
    nonce = 0
    while True:
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if _leading_zero_bits(digest) >= bits:
            return str(nonce)
        nonce += 1


class AppointmentMails:
    """Loading, saving and changing appointments, and their mails; the base of
    :class:`service_appointments.Appointments`."""

    def __init__(
        self, store: ServiceStore, catalogue: Catalogue, setup: AppointmentSetup | None
    ) -> None:
        self._store = store
        self._catalogue = catalogue
        self._appointment_setup = setup

    def configure_appointments(self, setup: AppointmentSetup) -> None:
        """Replace the set-up (the simulator's mailbox, tests' easier challenges)."""
        self._appointment_setup = setup

    @property
    def configured(self) -> bool:
        return self._appointment_setup is not None

    @property
    def appointment_setup(self) -> AppointmentSetup:
        if self._appointment_setup is None:
            msg = "appointments are not configured in this service"
            raise AppointmentsNotConfigured(msg)
        return self._appointment_setup

    def _get(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        return self._store.find(aggregate_id, kind)

    def _save(self, *aggregates: Any) -> int | None:
        """Save in one transaction; IntegrityError goes to the caller."""
        with self._store.store_errors():
            recordings = self._store.save(*aggregates)
        return max((r.notification.id for r in recordings), default=None)

    def get_appointment(self, appointment_id: UUID) -> Appointment:
        found = self._get(appointment_id, Appointment)
        if found is None:
            raise BookingNotFound(appointment_id)
        return found

    # ------------------------------------------------- anti-bot and person keys

    def issue_challenge(self) -> Challenge:
        setup = self.appointment_setup
        now = self._store.clock()
        expires = int((now + timedelta(seconds=setup.challenge_seconds)).timestamp())
        body = f"{expires}.{secrets.token_hex(16)}.{setup.proof_of_work_bits}"
        mac = hmac.new(setup.secret, f"challenge/{body}".encode(), hashlib.sha256).hexdigest()
        return Challenge(
            f"{body}.{mac[:32]}",
            setup.proof_of_work_bits,
            datetime.fromtimestamp(expires, tz=now.tzinfo),
        )

    def _check_proof(self, challenge: str, nonce: str) -> SpentChallenge:
        """The spent-challenge claim to save with the booking, if the proof holds."""
        setup = self.appointment_setup
        parts = challenge.split(".")
        if len(parts) != 4 or len(nonce) > 40:
            raise ChallengeRefused("the challenge is not one this office issued")
        expires, _random, bits, mac = parts
        body = ".".join(parts[:3])
        expected = hmac.new(setup.secret, f"challenge/{body}".encode(), hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest()[:32], mac):
            raise ChallengeRefused("the challenge is not one this office issued")
        if int(expires) < self._store.clock().timestamp():
            raise ChallengeRefused("the challenge has expired; ask for a new one")
        if int(bits) < setup.proof_of_work_bits:
            raise ChallengeRefused("the challenge is weaker than this office asks")
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if _leading_zero_bits(digest) < int(bits):
            raise ChallengeRefused("the nonce does not solve the challenge")
        return SpentChallenge.spend(challenge, self._store.act("public", None))

    def person_key(self, person: Person) -> str:
        return self.person_key_for(person.surname, person.given_names, person.date_of_birth)

    def person_key_for(self, surname: str, given_names: str, date_of_birth: date) -> str:
        """The keyed hash bookings and waitlist entries carry to recognise one person (the
        booking limit; erasure finds a case file's person's entries by it)."""
        identity = normalised_identity(surname, given_names, date_of_birth)
        digest = hmac.new(
            self.appointment_setup.secret, f"person/{identity}".encode(), hashlib.sha256
        )
        return digest.hexdigest()

    def confirmation_code(self, appointment_id: UUID) -> str:
        """The code of the confirmation mail: derived, so a re-sent mail carries the same
        one and nothing needs storing."""
        digest = hmac.new(
            self.appointment_setup.secret, f"confirm/{appointment_id}".encode(), hashlib.sha256
        ).digest()
        number = int.from_bytes(digest[:5], "big")
        symbols = []
        for _ in range(_CODE_SYMBOLS):
            number, index = divmod(number, 32)
            symbols.append(_CODE_ALPHABET[index])
        return "".join(symbols)

    def hold_extension_of(self, appointment: Appointment) -> timedelta:
        """How much longer a hold runs when extended: as long again as the service
        point holds a booking (the domain caps it before the start)."""
        point = self._get(UUID(appointment.service_point_id), ServicePoint)
        hours = point.rules.hold_hours if point is not None else 24
        return timedelta(hours=hours)

    def extended_hold_until(self, appointment: Appointment) -> datetime | None:
        """Until when the hold would run if extended now; ``None``: it cannot be."""
        try:
            return appointment.hold_extension(
                self.hold_extension_of(appointment), self._store.clock()
            )
        except RuleViolation:
            return None

    def appointment_by_code(self, appointment_id: UUID, code: str) -> Appointment:
        """The appointment a confirmation link names, if the code is its code; else
        :class:`BookingNotFound`, exactly like an appointment that does not exist."""
        canonical = code.strip().upper().replace("-", "").replace(" ", "")
        if not hmac.compare_digest(canonical, self.confirmation_code(appointment_id)):
            raise BookingNotFound
        return self.get_appointment(appointment_id)

    def confirm_by_link(self, appointment_id: UUID, code: str) -> AppointmentRecorded:
        """Confirm from the mail's one-click page (its button, never its link alone)."""
        self.appointment_by_code(appointment_id, code)
        return self._change_appointment(
            appointment_id, None, "public", lambda a, act: a.confirm(via="mail_code", act=act)
        )

    def _change_appointment(
        self,
        appointment_id: UUID,
        expected_version: int | None,
        by: str,
        command: Callable[[Appointment, Act], object],
    ) -> AppointmentRecorded:
        """One command on one appointment; ``expected_version`` None: on whatever is
        current (the person's own steps carry no version; the rules decide)."""
        for _attempt in range(MAX_CHANGE_ATTEMPTS):
            act = self._store.act(by, None)
            appointment = self.get_appointment(appointment_id)
            if expected_version is not None and appointment.version != expected_version:
                raise AppointmentChanged(appointment_id, expected_version, appointment.version)
            command(appointment, act)
            if not appointment.pending_events:
                return AppointmentRecorded(appointment_id, appointment.version, None)
            try:
                position = self._save(appointment)
            except IntegrityError:
                if expected_version is not None:
                    actual = self.get_appointment(appointment_id).version
                    raise AppointmentChanged(appointment_id, expected_version, actual) from None
                continue
            return AppointmentRecorded(appointment_id, appointment.version, position)
        raise SlotBusy("the appointment changed meanwhile; try again")

    # ------------------------------------------------------------------ mail

    def _send_mails(self, appointment_id: UUID) -> MailRun:
        """Send what is queued (or failed and worth another try); record each outcome.

        Never raises for the mail server: a failure is an event, and the tick tries again.
        """
        setup = self.appointment_setup
        run = MailRun()
        appointment = self.get_appointment(appointment_id)
        for mail in appointment.mails_to_send:
            outgoing = self._compose(appointment, mail)
            outcome: str | None = None
            try:
                setup.mailer.send(outgoing)
            except MailRefused as refused:
                outcome = refused.code
            except MailUnavailable:
                outcome = "unreachable"
            if outcome is None:
                run.sent += 1
            else:
                run.failed += 1
                logger.warning(
                    "mail %d of appointment %s not sent: %s", mail.number, appointment_id, outcome
                )
            recorded = self._record_mail(appointment_id, _mail_outcome(mail.number, outcome))
            if recorded is not None:
                run.version, run.position = recorded.version, recorded.position
        return run

    def _record_mail(
        self, appointment_id: UUID, command: Callable[[Appointment, Act], object]
    ) -> AppointmentRecorded | None:
        try:
            return self._change_appointment(appointment_id, None, MAIL_USER, command)
        except (AppointmentStateConflict, SlotBusy):
            # Another process recorded this mail's outcome first: nothing is lost.
            return None

    def confirmation_link(self, appointment: Appointment) -> str | None:
        """The one-click confirmation page of this booking, as its mails carry it."""
        template = self.appointment_setup.confirmation_link
        if template is None:
            return None
        return template.format(
            appointment=appointment.id,
            code=self.confirmation_code(appointment.id),
            language=appointment.language,
        )

    def _compose(self, appointment: Appointment, mail: Mail) -> OutgoingMail:
        """The mail in the booking's language (German, else English)."""
        point = self._get(UUID(appointment.service_point_id), ServicePoint)
        local = point.local if point is not None else (lambda instant: instant)
        written_in = mail_language(appointment.language)
        moment = DATE_FORMATS[written_in]
        text = compose_text(
            mail.kind,
            written_in,
            MailFacts(
                given_names=appointment.person.given_names,
                surname=appointment.person.surname,
                appointment_type=appointment.appointment_type,
                when=local(appointment.starts_at).strftime(moment),
                held_until=local(appointment.held_until).strftime(moment),
                code=self.confirmation_code(appointment.id),
                link=self.confirmation_link(appointment),
                offered_from_waitlist=appointment.origin == "waitlist",
            ),
        )
        return OutgoingMail(
            to=appointment.person.email,
            subject=text.subject,
            body=text.body,
            message_id=f"<{appointment.id}.{mail.number}@akte>",
        )


def _mail_outcome(number: int, failure: str | None) -> Callable[[Appointment, Act], None]:
    def record(appointment: Appointment, act: Act) -> None:
        if failure is None:
            appointment.record_mail_sent(number, act)
        else:
            appointment.record_mail_failed(number, failure, act)

    return record
