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
- a write whose outcome the store could not tell: ``503`` ``outcome-unknown``; its retry
  with the key, for a case-file write and for the public writes (a commitment
  declaration, a booking, a contact form; and an erasure request), the answer the first
  request would have given, secret reference and page cookie included (built by the
  route or page from the outcome recorded with the key,
  :meth:`service_idempotency.WriteTruth.replayed`).

The public pages' forms send their key as a hidden first field (:data:`FORM_FIELD`)
instead of the header; the command line sends one too (``adapters/cli/support.py``).

See the guide ``docs/guides/idempotent-writes.md``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import urllib.parse
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
REPLAYED_HEADERS: Final = (
    "content-type",
    "etag",
    "location",
    POSITION_HEADER.lower(),
    # The public pages' answers: their security and caching rules, their language, and
    # the cookies that remember a declaration's reference or the chosen language.
    "cache-control",
    "content-language",
    "content-security-policy",
    "referrer-policy",
    "x-content-type-options",
    "set-cookie",
)
"""Kept with a stored answer, sealed like its body (a page's ``Location`` and cookie may
carry a declaration's or booking's secret reference)."""
MAX_STORED_BODY: Final = 65_536
"""A larger answer is replayed without its body (status and headers only)."""
OUTCOME_RETRY_AFTER_SECONDS: Final = 5
_ANSWER_SALT: Final = b"akte idempotency answer v1"
_ENVELOPE: Final = b"akte-answer-v2\n"
"""Opens a sealed answer that holds its headers too (``<marker><headers JSON>\\n<body>``);
answers stored before it hold the body alone, their headers in the row."""
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
        "another request is refused (`422`, `idempotency-key-reused`). After `503 "
        "outcome-unknown`, the retry of a case-file write, a commitment declaration, a "
        "booking, a contact form or an erasure request is answered as the first would "
        "have been (status, `Location`, `ETag`, `X-Akte-Position`, body with the secret "
        "reference or receipt). Keys belong to the "
        "acting user and are kept for 24 hours by default."
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
        headers = Headers(scope=scope)
        values = headers.getlist(HEADER)
        chunks: list[bytes] = []
        complete = False
        if values:
            key = parse_key(values[0]) if len(values) == 1 else None
            if key is None:
                response = problem_response(
                    400,
                    "malformed-idempotency-key",
                    "Idempotency-Key must be one value of 1 to 255 visible ASCII characters",
                )
                await response(scope, receive, send)
                return
        else:
            form_type = _form_type(headers.get("content-type", ""))
            if form_type is None:
                await self.app(scope, receive, send)
                return
            # A page's form: its key is its first field. Read far enough to see it.
            ended = await _read_until(receive, chunks, FORM_KEY_PEEK_BYTES)
            if ended is None:
                return  # the client went away
            key = form_key(form_type, b"".join(chunks))
            if key is None:
                await self.app(scope, _replaying(chunks, ended, receive), send)
                return
            complete = ended
        # The whole body first: the key is checked against it before the command runs.
        # Its size is bounded by the body limits of the middlewares outside this one.
        if not complete and await _read_until(receive, chunks, None) is None:
            return  # the client went away
        body = b"".join(chunks)
        hashed = request_hash(scope, body)
        if not values:
            # A form's key names one rendering of the form: sent again as it was (a double
            # click, a reload) it is the same write; changed and sent again (back, edit,
            # send) it is a new one, not a reused key.
            key = f"{key}/{hashed}"
        claim = claim_for(key, hashed)
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


FORM_FIELD: Final = "idempotency_key"
"""The hidden field of the public pages' forms that carries the key (made when the form
is rendered, :func:`adapters.http.pages.rendering.render`); it must be the form's first
field, so that the key is found without reading a whole upload first."""
FORM_KEY_PEEK_BYTES: Final = 1024
_URLENCODED_KEY: Final = re.compile(rb"\A" + FORM_FIELD.encode() + rb"=([^&]*)")
_MULTIPART_KEY: Final = re.compile(
    rb"\A--[^\r\n]{1,200}\r\ncontent-disposition: *form-data; *name=\"?"
    + FORM_FIELD.encode()
    + rb"\"?\r\n\r\n([!-~]{1,255})\r\n",
    re.IGNORECASE,
)


def _form_type(content_type: str) -> str | None:
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return media_type
    return None


def form_key(form_type: str, start: bytes) -> str | None:
    """The key of a form's first field, from the start of its body; None: none (or none
    that is a valid key: a form without one is sent on as it came)."""
    if form_type == "multipart/form-data":
        found = _MULTIPART_KEY.match(start)
        return parse_key(found.group(1).decode("ascii")) if found else None
    found = _URLENCODED_KEY.match(start)
    if found is None:
        return None
    return parse_key(urllib.parse.unquote_plus(found.group(1).decode("latin-1")))


async def _read_until(receive: Receive, chunks: list[bytes], limit: int | None) -> bool | None:
    """Reads body chunks into ``chunks`` until ``limit`` bytes (None: the end). True: the
    body ended; False: more follows; None: the client went away."""
    while limit is None or sum(map(len, chunks)) < limit:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return True
    return False


def _replaying(chunks: list[bytes], ended: bool, receive: Receive) -> Receive:
    """``receive`` with the chunks read ahead given first, as they came."""
    pending = list(chunks)

    async def receive_again() -> Message:
        if pending:
            body = pending.pop(0)
            more = bool(pending) or not ended
            return {"type": "http.request", "body": body, "more_body": more}
        return await receive()

    return receive_again


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
    kept = [[name, value] for name in REPLAYED_HEADERS for value in headers.getlist(name)]
    body = b"".join(m.get("body", b"") for m in messages[1:])
    if len(body) > MAX_STORED_BODY:
        body = b""
    envelope = _ENVELOPE + json.dumps(kept).encode() + b"\n" + body
    return StoredAnswer(status=int(start["status"]), headers=(), body=seal_answer(key, envelope))


def open_stored_answer(
    key: str, answer: StoredAnswer
) -> tuple[list[tuple[str, str]], bytes] | None:
    """The headers and body of a stored answer, for a retry with ``key``; None if it
    cannot be read with that key."""
    opened = open_answer(key, answer.body)
    if opened is None:
        return None
    if not opened.startswith(_ENVELOPE):
        return list(answer.headers), opened  # stored before the headers were sealed
    kept, _, body = opened[len(_ENVELOPE) :].partition(b"\n")
    return [(str(name), str(value)) for name, value in json.loads(kept)], body


def claim_for(key: str, request_hash: str) -> IdempotencyClaim:
    """A write's claim whose outcome is sealed with the client's key, like its answer."""
    return IdempotencyClaim(
        key=key,
        request_hash=request_hash,
        seal=functools.partial(seal_answer, key),
        unseal=functools.partial(open_answer, key),
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
    stored = open_stored_answer(key, record.answer) if record.answer is not None else None
    if record.answer is not None and stored is not None:
        headers, body = stored
        response = Response(content=body, status_code=record.answer.status)
        for name, value in headers:
            if name == "content-type":
                response.headers[name] = value
            else:
                response.raw_headers.append((name.encode("latin-1"), value.encode("latin-1")))
        return response
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
