"""A local stand-in for the ePayment platform: a real HTTP server, for tests and demos.

It behaves like the public platforms in the ways Akte relies on, and in nothing else:

* ``POST /payments`` creates a payment (the office's request must be signed with the
  shared key) and answers its transaction id and the URL of its pay page;
* ``GET /pay/{transaction_id}`` is that page: a form where a person picks a method and an
  outcome (paid, failed, expired);
* ``POST /pay/{transaction_id}`` completes the payment with the chosen outcome and method
  (a JSON body from a test, the form from a browser) and POSTs the signed notification to
  the office's notification URL at once; a test learns from the answer how Akte answered
  the notification, a browser is sent on to the office's return URL;
* ``POST /pay/{transaction_id}/redeliver`` sends the last notification again, as real
  platforms do when they are unsure it arrived (Akte must record it only once).

Payments live in memory and no money moves. Start it with
``python -m adapters.payment.stand_in [--host H] [--port P]`` (development only; it signs
with the same key Akte checks, see :mod:`adapters.payment.setup`), or from Python
with :class:`StandInServer`.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Final, Literal
from urllib.parse import parse_qs, urlencode

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from adapters.payment.setup import shared_secret_for
from adapters.payment.signatures import SIGNATURE_HEADER, signature_for, signature_is_valid
from adapters.reports.templates import render
from adapters.settings import Settings
from domain.values import PaymentMethod, PaymentOutcome

DEFAULT_PORT: Final = 8010
NOTIFICATION_TIMEOUT_SECONDS: Final = 10.0
MAX_BODY_BYTES: Final = 16_384
_METHODS: Final = ("visa", "mastercard", "giropay", "paydirect", "paypal")


class PaymentCreate(BaseModel):
    amount_cents: Annotated[int, Field(ge=1)]
    currency: Annotated[str, Field(min_length=3, max_length=3)]
    reference: Annotated[str, Field(max_length=100)]
    description: Annotated[str, Field(max_length=500)] = ""
    method: PaymentMethod | None = None
    notification_url: Annotated[str, Field(max_length=2000)]
    return_url: Annotated[str, Field(max_length=2000)]


class PaymentCompletion(BaseModel):
    outcome: PaymentOutcome = "paid"
    method: PaymentMethod | None = None


@dataclass
class StandInPayment:
    transaction_id: str
    order: PaymentCreate
    status: Literal["open", "paid", "failed", "expired"] = "open"
    last_notification: bytes | None = None


@dataclass
class StandInLedger:
    """The stand-in's payments, in memory."""

    payments: dict[str, StandInPayment] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, transaction_id: str) -> StandInPayment:
        with self.lock:
            payment = self.payments.get(transaction_id)
        if payment is None:
            raise HTTPException(404, "no such payment")
        return payment


def create_stand_in_app(shared_secret: bytes) -> FastAPI:
    """The stand-in platform, signing and checking with ``shared_secret``."""
    app = FastAPI(title="Stand-in ePayment platform (development only)")
    ledger = StandInLedger()
    app.state.ledger = ledger

    @app.post("/payments", status_code=201)
    async def create_payment(
        request: Request,
        signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
    ) -> dict[str, str]:
        body = await _body(request)
        if not signature_is_valid(shared_secret, body, signature):
            raise HTTPException(401, "the request is not signed with the shared key")
        try:
            order = PaymentCreate.model_validate_json(body)
        except ValidationError:
            raise HTTPException(422, "not a payment") from None
        transaction_id = "SI-" + secrets.token_hex(12)
        with ledger.lock:
            ledger.payments[transaction_id] = StandInPayment(transaction_id, order)
        return {
            "transaction_id": transaction_id,
            "redirect_url": str(request.url_for("pay_page", transaction_id=transaction_id)),
        }

    @app.get("/pay/{transaction_id}", response_class=HTMLResponse)
    def pay_page(transaction_id: str) -> HTMLResponse:
        payment = ledger.get(transaction_id)
        return HTMLResponse(_pay_page_html(payment))

    @app.post("/pay/{transaction_id}", response_model=None)
    async def complete_payment(transaction_id: str, request: Request) -> Response:
        payment = ledger.get(transaction_id)
        body = await _body(request)
        from_browser = request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        )
        try:
            if from_browser:
                fields = {k: v[0] for k, v in parse_qs(body.decode()).items() if v}
                completion = PaymentCompletion.model_validate(fields)
            else:
                completion = PaymentCompletion.model_validate_json(body or b"{}")
        except (ValidationError, UnicodeDecodeError):
            raise HTTPException(422, "outcome must be paid, failed or expired") from None
        with ledger.lock:
            if payment.status != "open":
                raise HTTPException(409, f"the payment is already {payment.status}")
            payment.status = completion.outcome
            notification = _notification(payment, completion)
            payment.last_notification = notification
        # Blocking I/O in a coroutine would stall the server; a worker thread does it.
        delivered = await run_in_threadpool(_deliver, payment, notification, shared_secret)
        if from_browser:
            query = urlencode({"transaction_id": transaction_id, "status": payment.status})
            return RedirectResponse(f"{payment.order.return_url}?{query}", status_code=303)
        return JSONResponse(
            {
                "transaction_id": transaction_id,
                "status": payment.status,
                "notification_status": delivered,
                "return_url": payment.order.return_url,
            }
        )

    @app.post("/pay/{transaction_id}/redeliver")
    async def redeliver(transaction_id: str) -> dict[str, Any]:
        payment = ledger.get(transaction_id)
        if payment.last_notification is None:
            raise HTTPException(409, "no notification has been sent for this payment")
        delivered = await run_in_threadpool(
            _deliver, payment, payment.last_notification, shared_secret
        )
        return {"transaction_id": transaction_id, "notification_status": delivered}

    return app


async def _body(request: Request) -> bytes:
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise HTTPException(413, "the body is too large")
    return body


def _notification(payment: StandInPayment, completion: PaymentCompletion) -> bytes:
    return json.dumps(
        {
            "transaction_id": payment.transaction_id,
            "status": completion.outcome,
            "amount_cents": payment.order.amount_cents,
            "currency": payment.order.currency,
            "method": completion.method or payment.order.method,
            "occurred_at": datetime.now(tz=UTC).isoformat(),
        },
        separators=(",", ":"),
    ).encode()


def _deliver(payment: StandInPayment, notification: bytes, shared_secret: bytes) -> int:
    """POST the signed notification; returns the office's status code (0: unreachable)."""
    request = urllib.request.Request(
        payment.order.notification_url,
        data=notification,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_for(shared_secret, notification),
        },
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=NOTIFICATION_TIMEOUT_SECONDS) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)
    except (urllib.error.URLError, TimeoutError, OSError):
        return 0


def _pay_page_html(payment: StandInPayment) -> str:
    order = payment.order
    return render(
        "adapters.payment",
        "pay_page.html.j2",
        payment=payment,
        amount=f"{order.amount_cents // 100},{order.amount_cents % 100:02d} {order.currency}",
        methods=_METHODS,
        outcomes=(("paid", "Pay"), ("failed", "Fail"), ("expired", "Let expire")),
    )


class StandInServer:
    """The stand-in under uvicorn in a background thread, on 127.0.0.1 by default."""

    def __init__(self, shared_secret: bytes, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = create_stand_in_app(shared_secret)
        self._host = host
        self._port = port
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def ledger(self) -> StandInLedger:
        ledger: StandInLedger = self.app.state.ledger
        return ledger

    def start(self) -> StandInServer:
        # IPPROTO_TCP spelled out: asyncio sets TCP_NODELAY only on sockets that say so.
        listening = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((self._host, self._port))
        self.base_url = f"http://{self._host}:{listening.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = "the stand-in payment provider did not start"
                raise RuntimeError(msg)
            time.sleep(0.01)
        self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = self._server.force_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m adapters.payment.stand_in",
        description="A local stand-in ePayment platform for Akte (development only).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (%(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (%(default)s)")
    args = parser.parse_args(argv)
    settings = Settings()
    secret = shared_secret_for(settings)
    if settings.deployment == "production" or secret is None:
        parser.exit(2, "stand_in: refusing to run in a production deployment\n")
    print(
        f"Stand-in ePayment platform at http://{args.host}:{args.port} "
        f"(Akte: AKTE_PAYMENT_PROVIDER_URL=http://{args.host}:{args.port})",
        flush=True,
    )
    uvicorn.run(create_stand_in_app(secret), host=args.host, port=args.port, log_config=None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
