"""``Idempotency-Key`` on writes (IETF draft httpapi-idempotency-key-header).

A client that may send a write twice (a timeout, a broken connection, a ``503``) sends
it with a key of its own choosing, and sends the retry with the same key: the retry then
gets the first answer and records nothing. :class:`IdempotencyMiddleware` reads the key
and the body of every ``POST`` (and ``PUT``, ``PATCH``, ``DELETE``) that carries one and
puts a :class:`service_idempotency.IdempotencyClaim` in force while the route runs; the
service checks and records the key (:mod:`service_idempotency`); the middleware stores
the answer of a write that recorded its key, and the handlers here turn the service's
findings into answers:

- the same key with the same request, recorded before: the first answer, as it was
  (status, ``ETag``, ``Location``, ``X-Akte-Position``, body);
- the same key with another request: ``422`` ``idempotency-key-reused``;
- the same key recorded by a request still answering: ``409`` ``idempotency-key-in-flight``;
- a write whose outcome the store could not tell: ``503`` ``outcome-unknown``.

See the guide ``docs/guides/idempotent-writes.md``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any, Final

import anyio
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import FastAPI, Request, Response
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adapters.http.problems import problem_response
from adapters.http.route_helpers import POSITION_HEADER, etag
from service import AkteService
from service_common import PUBLIC_APPLICANT, StoreUnavailable
from service_idempotency import (
    IN_FLIGHT,
    AlreadyRecorded,
    AnswerMemory,
    IdempotencyClaim,
    IdempotencyKeyReused,
    OutcomeUnknown,
    current_claim,
    idempotency_claim,
)
from service_ports import StoredAnswer

HEADER: Final = "Idempotency-Key"
WRITE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")
"""1 to 255 visible ASCII characters. The draft's structured-field quotes are taken off
first, so ``"8e03..."`` and ``8e03...`` are the same key."""
REPLAYED_HEADERS: Final = ("content-type", "etag", "location", POSITION_HEADER.lower())
MAX_STORED_BODY: Final = 65_536
"""A larger answer is replayed without its body (status and headers only)."""
OUTCOME_RETRY_AFTER_SECONDS: Final = 5
_ANSWER_SALT: Final = b"akte idempotency answer v1"
_NONCE_BYTES: Final = 12
IN_FLIGHT_RETRY_AFTER_SECONDS: Final = 1

PARAMETER: Final[dict[str, Any]] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "A unique string of your choosing (1 to 255 visible ASCII characters, e.g. a "
        "random UUID) that makes the write safe to retry: a retry with the same key and "
        "the same request gets the first answer and records nothing; the same key with "
        "another request is refused (`422`, `idempotency-key-reused`). Keys belong to "
        "the acting user and are kept for 24 hours by default."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
    "example": "6f1c2a3e-9b7d-4c55-8e21-0d4b8f5a7c19",
}


def parse_key(raw: str) -> str | None:
    """The key of a header value; None if it is not a valid key."""
    value = raw.strip()
    if len(value) >= 2 and value.startswith('"') and value.endswith('"'):
        value = value[1:-1]
    return value if _KEY.match(value) else None


IDENTIFYING_HEADERS: Final = ("if-match", "x-declaration-reference", "x-booking-reference")
"""Headers that make a request about something else (the version it builds on, the
declaration or booking of a public route)."""
_BOUNDARY: Final = re.compile(r";\s*boundary=\"?([^\";]+)\"?", re.IGNORECASE)


def request_hash(scope: Scope, body: bytes) -> str:
    """What makes two requests the same request (the acting user is added later).

    A multipart body counts without its boundary: a client encoding the same form again
    picks a new random one.
    """
    headers = Headers(scope=scope)
    content_type = headers.get("content-type", "")
    boundary = _BOUNDARY.search(content_type)
    if boundary is not None and content_type.lower().startswith("multipart/"):
        body = body.replace(boundary.group(1).encode("latin-1"), b"")
        content_type = content_type[: boundary.start()] + content_type[boundary.end() :]
    digest = hashlib.sha256()
    for part in (
        scope["method"].encode(),
        scope.get("root_path", "").encode() + scope["path"].encode(),
        scope.get("query_string", b""),
        content_type.encode("latin-1"),
        *(headers.get(name, "").encode("latin-1") for name in IDENTIFYING_HEADERS),
        body,
    ):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


class IdempotencyMiddleware:
    """Puts a write's idempotency key in force and stores the answer it recorded."""

    def __init__(self, app: ASGIApp, *, answers: AnswerMemory) -> None:
        self.app = app
        self._answers = answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        values = Headers(scope=scope).getlist(HEADER)
        if not values:
            await self.app(scope, receive, send)
            return
        key = parse_key(values[0]) if len(values) == 1 else None
        if key is None:
            response = problem_response(
                400,
                "malformed-idempotency-key",
                "Idempotency-Key must be one value of 1 to 255 visible ASCII characters",
            )
            await response(scope, receive, send)
            return
        # The whole body first: the key is checked against it before the command runs.
        # Its size is bounded by the body limits of the middlewares outside this one.
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        claim = IdempotencyClaim(key=key, request_hash=request_hash(scope, body))
        delivered = False

        async def receive_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: list[Message] = []
        holding = False

        async def send_remembering(message: Message) -> None:
            nonlocal holding
            # The route has returned when its answer starts: the claim is settled.
            if message["type"] == "http.response.start":
                holding = claim.recorded or (
                    claim.key_hash is None and message["status"] in _ANSWERS_OF_UNCHECKED
                )
            if not holding:
                await send(message)
                return
            held.append(message)
            if message["type"] != "http.response.body" or message.get("more_body"):
                return
            if claim.recorded:
                answer = _answer_of(held, claim.key)
                await anyio.to_thread.run_sync(self._answers.remember, claim, answer)
            else:
                replaced = await anyio.to_thread.run_sync(_check_late, scope, claim)
                if replaced is not None:
                    await replaced(scope, receive, send)
                    return
            for kept in held:
                await send(kept)

        with idempotency_claim(claim):
            await self.app(scope, receive_body, send_remembering)


_ANSWERS_OF_UNCHECKED: Final = frozenset({200, 201, 202, 204, 409, 412})
"""Answers of a command that ended before it checked its key (some look at the state
first: a payment still open, a file erased already, a notification known): a retry of a
recorded write may hear these instead of its first answer, so the key is checked then."""


def _check_late(scope: Scope, claim: IdempotencyClaim) -> Response | None:
    """The first answer, if the key was recorded before; None if it was not."""
    service = scope["app"].state.service
    principal = scope.get("state", {}).get("principal")
    by = principal.user_id if principal is not None else PUBLIC_APPLICANT
    try:
        with idempotency_claim(claim):
            service.writes.check(by)
    except AlreadyRecorded as found:
        return _replay(service, found, claim.key)
    except IdempotencyKeyReused as reused:
        return _reused(reused)
    except StoreUnavailable:
        return None  # the command's own answer stands
    return None


def _answer_of(messages: list[Message], key: str) -> StoredAnswer:
    start = messages[0]
    headers = Headers(raw=start.get("headers", []))
    kept = tuple(
        (name, headers[name]) for name in REPLAYED_HEADERS if headers.get(name) is not None
    )
    body = b"".join(m.get("body", b"") for m in messages[1:])
    return StoredAnswer(
        status=int(start["status"]),
        headers=kept,
        body=seal_answer(key, body) if len(body) <= MAX_STORED_BODY else b"",
    )


def _answer_cipher(key: str) -> AESGCM:
    derived = HKDF(algorithm=SHA256(), length=32, salt=_ANSWER_SALT, info=b"").derive(key.encode())
    return AESGCM(derived)


def seal_answer(key: str, body: bytes) -> bytes:
    """The answer's body as stored: encrypted with a key derived from the client's
    Idempotency-Key, which the store never holds (only a hash of it). A public booking's
    or declaration's answer carries its secret reference; whoever reads the table cannot
    read it, only the client that retries with its key."""
    if not body:
        return b""
    nonce = os.urandom(_NONCE_BYTES)
    return nonce + _answer_cipher(key).encrypt(nonce, body, None)


def open_answer(key: str, sealed: bytes) -> bytes | None:
    """The stored body for a retry with ``key``; None if it cannot be read."""
    if not sealed:
        return b""
    try:
        return _answer_cipher(key).decrypt(sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:], None)
    except (InvalidTag, ValueError):
        return None


async def idempotency_problem(request: Request, error: Exception) -> Response:
    """Answers for what the service found out about a write's key or outcome."""
    if isinstance(error, IdempotencyKeyReused):
        return _reused(error)
    if isinstance(error, OutcomeUnknown):
        return problem_response(
            503,
            "outcome-unknown",
            "the event store failed while recording and could not be asked whether the "
            "write was recorded; retry with the same Idempotency-Key",
            headers={"Retry-After": str(OUTCOME_RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, AlreadyRecorded):
        claim = current_claim()
        key = claim.key if claim is not None else ""
        return _replay(request.app.state.service, error, key)
    raise error


def _reused(_error: IdempotencyKeyReused) -> Response:
    return problem_response(
        422,
        "idempotency-key-reused",
        "this Idempotency-Key was used for a different request; use a new key",
    )


def _replay(service: AkteService, error: AlreadyRecorded, key: str) -> Response:
    record = error.record
    body = open_answer(key, record.answer.body) if record.answer is not None else None
    if record.answer is not None and body is not None:
        return Response(
            content=body, status_code=record.answer.status, headers=dict(record.answer.headers)
        )
    age = service.clock() - record.recorded_at
    if age < IN_FLIGHT:
        return problem_response(
            409,
            "idempotency-key-in-flight",
            "a request with this Idempotency-Key is still being answered; retry shortly",
            headers={"Retry-After": str(IN_FLIGHT_RETRY_AFTER_SECONDS)},
        )
    # Recorded, but its request ended before it could answer: what the row knows.
    content: Mapping[str, Any] = {
        "outcome": "recorded",
        "version": record.originator_version,
        "position": record.position,
    }
    return Response(
        content=json.dumps(content),
        status_code=200,
        media_type="application/json",
        headers={"ETag": etag(record.originator_version), POSITION_HEADER: str(record.position)},
    )


def install_idempotency(app: FastAPI, answers: AnswerMemory) -> None:
    """Before the operations' middlewares, so that the body limits apply outside it."""
    for error_class in (IdempotencyKeyReused, OutcomeUnknown, AlreadyRecorded):
        app.add_exception_handler(error_class, idempotency_problem)
    app.add_middleware(IdempotencyMiddleware, answers=answers)


def describe_idempotency_key(schema: dict[str, Any]) -> dict[str, Any]:
    """Every write operation of the OpenAPI document takes the header."""
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method.upper() not in WRITE_METHODS or not isinstance(operation, dict):
                continue
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == HEADER for p in parameters):
                parameters.append(dict(PARAMETER))
    return schema
