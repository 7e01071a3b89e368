"""Creating payments at the ePayment platform.

:class:`HttpPaymentProvider` speaks the platform's create-payment call over HTTP, signed
like the platform's notifications, with the standard library only (the office's servers
need no HTTP client package for one call). It runs in the request's worker thread: the
payer waits for the redirect URL anyway.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any, Final
from urllib.parse import urlsplit

from adapters.payment.signatures import SIGNATURE_HEADER, signature_for
from domain.errors import InvalidValue
from domain.values import require_http_url, require_transaction_id

# The application's payment port; HttpPaymentProvider implements it.
from service_ports import CreatedPayment as CreatedPayment
from service_ports import PaymentOrder as PaymentOrder
from service_ports import PaymentProvider as PaymentProvider

MAX_PROVIDER_ANSWER_BYTES: Final = 65_536
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})

logger = logging.getLogger("akte.payment")


class PaymentProviderUnavailable(Exception):
    """The platform could not be reached (refused, timed out); nothing was created."""


class PaymentProviderError(Exception):
    """The platform answered, but not with a payment. The message holds no body text."""


class HttpPaymentProvider:
    """The platform's create-payment call: ``POST <base_url>/payments``, signed."""

    def __init__(
        self, *, name: str, base_url: str, shared_secret: bytes, timeout_seconds: float
    ) -> None:
        self._name = name
        self._payments_url = base_url.rstrip("/") + "/payments"
        self._shared_secret = shared_secret
        self._timeout = timeout_seconds
        # A platform on this machine (the stand-in) is never reached through a proxy.
        handlers = (
            [urllib.request.ProxyHandler({})]
            if urlsplit(base_url).hostname in _LOOPBACK_HOSTS
            else []
        )
        self._opener = urllib.request.build_opener(*handlers)

    @property
    def name(self) -> str:
        return self._name

    def create_payment(self, order: PaymentOrder) -> CreatedPayment:
        body = json.dumps(
            {
                "amount_cents": order.amount_cents,
                "currency": order.currency,
                "reference": order.reference,
                "description": order.description,
                "method": order.method,
                "notification_url": order.notification_url,
                "return_url": order.return_url,
            },
            separators=(",", ":"),
        ).encode()
        request = urllib.request.Request(
            self._payments_url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                SIGNATURE_HEADER: signature_for(self._shared_secret, body),
            },
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                answer = response.read(MAX_PROVIDER_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as error:
            error.close()
            logger.warning("payment provider refused to create a payment: HTTP %s", error.code)
            msg = f"the payment provider answered {error.code}"
            raise PaymentProviderError(msg) from None
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            logger.warning("payment provider unreachable (%s)", type(error).__qualname__)
            raise PaymentProviderUnavailable from None
        return _created_payment(answer)


def _created_payment(answer: bytes) -> CreatedPayment:
    if len(answer) > MAX_PROVIDER_ANSWER_BYTES:
        raise PaymentProviderError("the payment provider's answer is too long")
    try:
        data: Any = json.loads(answer)
        transaction_id = data["transaction_id"]
        redirect_url = data["redirect_url"]
        if not isinstance(transaction_id, str) or not isinstance(redirect_url, str):
            raise TypeError
        require_transaction_id("transaction_id", transaction_id)
        require_http_url("redirect_url", redirect_url)
    except (ValueError, KeyError, TypeError, InvalidValue):
        raise PaymentProviderError("the payment provider's answer is not a payment") from None
    return CreatedPayment(transaction_id=transaction_id, redirect_url=redirect_url)
