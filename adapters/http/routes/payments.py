"""The payment platform's side: its signed notifications, and the payer's way back.

``POST /payments/notifications`` is public in the sense that it takes no bearer token:
the platform authenticates each notification by signing its raw body with HMAC-SHA256
under the key shared with the office (``X-Payment-Signature: sha256=<hex>``). The
signature is checked over the exact bytes received, in constant time, before the body is
even parsed. Unsigned, wrongly signed, unknown or mismatching notifications are refused
with a problem and record nothing; a notification already on record (delivered twice, or
outdated by a later outcome) answers 200 and records nothing either, so the platform's
retries are harmless.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import ServiceDep
from adapters.http.problems import HttpProblem
from adapters.http.route_helpers import note_position
from adapters.http.routes.declarations import PublicPayer, payment_setup
from adapters.http.schemas.cases import ProblemPublic
from adapters.http.schemas.declarations import (
    NotificationReceivedPublic,
    PaymentNotificationPublic,
    PaymentReturnPublic,
)
from adapters.payment.signatures import SIGNATURE_HEADER, signature_is_valid
from domain.errors import DomainError
from service_declarations import UnknownPaymentTransaction

SIGNATURE_CHALLENGE: Final = 'HMAC-SHA256 realm="akte-payments"'

logger = logging.getLogger("akte.payment")

router = APIRouter(prefix="/payments", tags=["payments"])

Notifier = Annotated[Principal | None, Depends(allow_public(Permission.PAYMENT_NOTIFY))]


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


NOTIFICATION_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _problem(
        "The body is not signed, or not with the shared key (or a bearer token was sent "
        "and is invalid); nothing was recorded."
    ),
    404: _problem("No payment has this transaction id; nothing was recorded."),
    413: _problem("The body is too large."),
    422: _problem(
        "The signed body is malformed, or names another amount or currency than the "
        "payment; `errors` names the field; nothing was recorded."
    ),
    503: _problem(
        "The event store is unavailable, or payments are switched off; nothing was "
        "recorded, deliver again later."
    ),
}
_NOTIFICATION_BODY: Final = {
    "required": True,
    "content": {"application/json": {"schema": PaymentNotificationPublic.model_json_schema()}},
}


@router.post(
    "/notifications",
    responses=NOTIFICATION_PROBLEMS,
    openapi_extra={"requestBody": _NOTIFICATION_BODY},
)
async def receive_payment_notification(
    request: Request,
    response: Response,
    notifier: Notifier,
    service: ServiceDep,
    signature: Annotated[
        str | None,
        Header(
            alias=SIGNATURE_HEADER,
            max_length=200,
            description="`sha256=<hex>`: HMAC-SHA256 of the raw body under the shared key.",
        ),
    ] = None,
) -> NotificationReceivedPublic:
    """The payment platform reports a payment paid, failed or expired (signed body).

    The first report of a payment is recorded (with `X-Akte-Position`); a repeated one,
    or a failure reported after the payment was recorded paid, answers 200 with
    `already_recorded` and no position, as it recorded nothing.
    """
    setup = payment_setup(request)
    body = await request.body()
    if signature is None:
        logger.info("payment notification refused: unsigned")
        _refused(request, "unsigned")
        raise HttpProblem(
            401,
            "signature-required",
            f"payment notifications must be signed: {SIGNATURE_HEADER}: sha256=<hex>",
            headers={"WWW-Authenticate": SIGNATURE_CHALLENGE},
        )
    if not signature_is_valid(setup.shared_secret, body, signature):
        logger.warning("payment notification refused: the signature does not verify")
        _refused(request, "bad_signature")
        raise HttpProblem(
            401,
            "invalid-signature",
            "the signature does not verify with the shared key over this body",
            headers={"WWW-Authenticate": SIGNATURE_CHALLENGE},
        )
    try:
        notification = PaymentNotificationPublic.model_validate_json(body)
    except ValidationError as error:
        _refused(request, "malformed")
        # Field names and error types only: the values are the provider's, and the
        # problem handler builds its messages from these without echoing them.
        raise RequestValidationError(
            [
                {"loc": ("body", *item["loc"]), "type": item["type"], "msg": item["msg"]}
                for item in error.errors()
            ]
        ) from None
    try:
        recorded = await run_in_threadpool(
            lambda: service.declarations.settle_payment(
                provider=setup.provider.name,
                transaction_id=notification.transaction_id,
                outcome=notification.status,
                amount_cents=notification.amount_cents,
                currency=notification.currency,
                method=notification.method,
                occurred_at=notification.occurred_at,
            )
        )
    except UnknownPaymentTransaction:
        _refused(request, "unknown_transaction")
        raise
    except DomainError:
        _refused(request, "mismatch")
        raise
    if recorded.result == "already_recorded":
        metrics = getattr(request.app.state, "payment_notification_metrics", None)
        if metrics is not None:
            metrics.repeated()
    logger.info("payment notification %s: %s", notification.status, recorded.result)
    note_position(response, recorded.position)
    return NotificationReceivedPublic(outcome=recorded.result)


def _refused(request: Request, reason: str) -> None:
    """Count a refused notification (``akte_payment_notifications_refused_total``)."""
    metrics = getattr(request.app.state, "payment_notification_metrics", None)
    if metrics is not None:
        metrics.refused(reason)


@router.get("/return", responses={401: _problem("A bearer token was sent and is invalid.")})
def return_from_payment(caller: PublicPayer) -> PaymentReturnPublic:
    """Where the payment platform sends the payer back after paying.

    It says nothing about the payment: the result reaches the office separately, and the
    status of one's declaration is at `GET /commitment-declarations/own`.
    """
    return PaymentReturnPublic(
        message=(
            "Thank you. The payment provider reports the result to the office directly; "
            "see your declaration's status with your reference."
        )
    )
