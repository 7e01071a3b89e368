"""The appointment set-up from settings: the secret and the mail server."""

from __future__ import annotations

from typing import Final

from adapters.mail.smtp import SmtpMailer
from adapters.settings import Settings
from appointments_service import AppointmentSetup

DEVELOPMENT_APPOINTMENT_SECRET: Final = "akte-development-appointment-key-never-use-in-production"
MIN_SECRET_LENGTH: Final = 32


def appointment_secret(settings: Settings) -> bytes | None:
    """The configured secret; the development key outside production; ``None`` where
    production has none (or a short one): bookings then answer 503."""
    configured = settings.appointment_secret
    if configured is not None:
        secret = configured.get_secret_value()
        if settings.deployment == "production" and (
            len(secret) < MIN_SECRET_LENGTH or secret == DEVELOPMENT_APPOINTMENT_SECRET
        ):
            return None
        return secret.encode()
    if settings.deployment == "production":
        return None
    return DEVELOPMENT_APPOINTMENT_SECRET.encode()


def appointment_setup_for(settings: Settings) -> AppointmentSetup | None:
    secret = appointment_secret(settings)
    if secret is None:
        return None
    password = settings.smtp_password
    return AppointmentSetup(
        secret=secret,
        mailer=SmtpMailer(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_sender,
            timeout_seconds=settings.smtp_timeout_seconds,
            starttls=settings.smtp_starttls,
            username=settings.smtp_username,
            password=password.get_secret_value() if password is not None else None,
        ),
        bookings_per_person=settings.appointment_bookings_per_person,
        proof_of_work_bits=settings.appointment_proof_of_work_bits,
    )
