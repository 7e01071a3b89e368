"""The payment set-up: what a working one holds, why payments are switched off, and the
rules a deployment's settings must satisfy (:func:`adapters.bootstrap.payments_for` builds
the set-up from them).

Development works out of the box against the local stand-in with a development key. In
production, payments need their own shared key and https addresses; without them the
payment routes answer 503 rather than accept notifications anyone could sign with a key
that is written in this repository.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from adapters.payment.provider import PaymentProvider
from adapters.settings import Settings
from domain.case_file import require_code
from domain.errors import InvalidValue

DEVELOPMENT_SHARED_SECRET: Final = "akte-development-payment-key-never-use-in-production"
"""Shared by Akte and the stand-in provider when none is configured (development only)."""
MIN_SHARED_SECRET_LENGTH: Final = 32


@dataclass(frozen=True)
class PaymentSetup:
    provider: PaymentProvider
    shared_secret: bytes
    """Checks the platform's notifications (and signs our requests)."""
    public_base_url: str | None
    """Where the platform reaches us; ``None``: the base URL of the request (development)."""


@dataclass(frozen=True)
class PaymentsSwitchedOff:
    reason: str
    """Which setting is missing or unsafe; names settings, never their values."""


Payments = PaymentSetup | PaymentsSwitchedOff


def shared_secret_for(settings: Settings) -> bytes | None:
    """The shared key; the development key where none is set outside production."""
    configured = settings.payment_shared_secret
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value().encode()
    if settings.deployment == "production":
        return None
    return DEVELOPMENT_SHARED_SECRET.encode()


def setup_problem(settings: Settings, secret: bytes | None) -> str | None:
    """Which setting keeps payments switched off; ``None`` when the set-up is usable.
    Names settings, never their values."""
    if secret is None:
        return "AKTE_PAYMENT_SHARED_SECRET is not set"
    try:
        require_code("provider", settings.payment_provider_name)
    except InvalidValue:
        return "AKTE_PAYMENT_PROVIDER_NAME must be a code of lower-case letters, digits, - and _"
    if settings.deployment != "production":
        return None
    if len(secret) < MIN_SHARED_SECRET_LENGTH:
        return (
            f"AKTE_PAYMENT_SHARED_SECRET must have at least {MIN_SHARED_SECRET_LENGTH} characters"
        )
    if secret == DEVELOPMENT_SHARED_SECRET.encode():
        return "AKTE_PAYMENT_SHARED_SECRET must not be the development key"
    if not (settings.public_base_url or "").startswith("https://"):
        return "AKTE_PUBLIC_BASE_URL must be set to an https URL"
    if not settings.payment_provider_url.startswith("https://"):
        return "AKTE_PAYMENT_PROVIDER_URL must be an https URL"
    return None
