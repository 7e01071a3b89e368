"""Access control over real HTTP: bearer tokens, roles and offices, on SQLite and PostgreSQL.

An identity provider is played by keys generated here and a JWKS served by a real HTTP
server on 127.0.0.1; the Akte app runs under uvicorn on a free port, and every request
goes over the wire with httpx2. The role matrix takes every route of the app and every
kind of caller from the tables below, so a new route without a row fails the suite.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from uuid import UUID

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from adapters.http.app import create_app
from adapters.http.auth.permissions import AllowPublic, RequirePermission, route_accesses
from adapters.http.auth.tokens import AuthConfigurationError
from adapters.payment.configuration import DEVELOPMENT_SHARED_SECRET
from adapters.payment.provider import CreatedPayment, PaymentOrder
from adapters.payment.signatures import SIGNATURE_HEADER, signature_for
from adapters.payment.stand_in import StandInServer
from adapters.settings import Settings
from adapters.simulation.legacy_scans import make_pdf
from adapters.views.read_models import build_read_models
from domain.case_file import MasterData
from domain.intake import ContactDetails
from service import AkteService, IncomingDocument
from tests.conftest import FakeClock
from tests.support import appointment_routes as ap
from tests.support.appointment_routes import OpenedAppointment, open_appointment
from tests.support.declarations import submission, submission_json
from tests.support.live_server import ServedApp

ISSUER: Final = "https://id.example/realms/abh"
AUDIENCE: Final = "akte"
MUSTERSTADT: Final = "abh-musterstadt"
NACHBARSTADT: Final = "abh-nachbarstadt"
PROBLEMS: Final = "https://akte.example/problems/"
SETUP_USER: Final = "setup"

PERSON: Final[dict[str, Any]] = {
    "surname": "Yılmaz",
    "given_names": "Ayşe Nur",
    "date_of_birth": "1991-07-14",
    "nationality": "TUR",
    "passport_number": "U12345678",
}
EAT: Final[dict[str, Any]] = {
    "kind": "eat",
    "legal_basis": "aufenthg-16b",
    "valid_from": "2024-03-04",
    "valid_until": "2026-03-03",
    "document_number": "Y0000AB12",
}
FICTION: Final[dict[str, Any]] = {
    "kind": "81_4",
    "valid_from": "2024-03-04",
    "valid_until": "2024-06-03",
    "carrier_sheet_number": "F1234567",
}
DOCUMENT: Final[dict[str, Any]] = {
    "kind": "passport-copy",
    "sha256": "ab" * 32,
    "size_bytes": 2048,
    "media_type": "application/pdf",
    "page_count": 2,
    "source": "scan",
}
LETTER: Final[dict[str, Any]] = {
    "direction": "received",
    "counterpart_kind": "lawyer",
    "counterpart_name": "Kanzlei Beispiel",
    "subject": "Akteneinsicht",
}


# ------------------------------------------------------------ identity provider


@dataclass(frozen=True)
class SigningKey:
    """A key pair of the test's identity provider."""

    kid: str
    algorithm: str
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def public_jwk(self) -> dict[str, Any]:
        public_key = self.private_key.public_key()
        if isinstance(public_key, rsa.RSAPublicKey):
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public_key, as_dict=True)
        else:
            jwk = ECAlgorithm.to_jwk(public_key, as_dict=True)
        return jwk | {"kid": self.kid, "alg": self.algorithm, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class ProviderKeys:
    current: SigningKey
    next: SigningKey
    """Published only after a rotation."""
    stranger: SigningKey
    """Never published."""
    elliptic: SigningKey


@pytest.fixture(scope="session")
def keys() -> ProviderKeys:
    def rsa_key(kid: str) -> SigningKey:
        return SigningKey(kid, "RS256", rsa.generate_private_key(65537, 2048))

    return ProviderKeys(
        current=rsa_key("key-2024"),
        next=rsa_key("key-2025"),
        stranger=rsa_key("key-stranger"),
        elliptic=SigningKey("key-ec", "ES256", ec.generate_private_key(ec.SECP256R1())),
    )


class JwksServer:
    """The provider's JWKS endpoint: a real HTTP server on 127.0.0.1 that counts fetches."""

    def __init__(self, published: list[SigningKey]) -> None:
        self.published = published
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": [key.public_jwk() for key in owner.published]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/certs"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def jwks(keys: ProviderKeys) -> Iterator[JwksServer]:
    server = JwksServer([keys.current, keys.elliptic])
    try:
        yield server
    finally:
        server.close()


_OMIT: Final[Any] = object()


def make_token(
    key: SigningKey,
    *,
    sub: Any = "sb-01",
    realm_roles: list[str] | None = None,
    office: Any = MUSTERSTADT,
    kid: str | None = None,
    lifetime: int = 300,
    **claims: Any,
) -> str:
    """A token as Keycloak issues it (roles in ``realm_access``); ``_OMIT`` drops a claim."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + lifetime,
        "typ": "Bearer",
        "realm_access": {
            "roles": ["offline_access", *(["caseworker"] if realm_roles is None else realm_roles)]
        },
        "office": office,
    } | claims
    payload = {name: value for name, value in payload.items() if value is not _OMIT}
    return jwt.encode(
        payload, key.private_key, algorithm=key.algorithm, headers={"kid": kid or key.kid}
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segments(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


def _encode(header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"


# -------------------------------------------------------------------- the app


def oidc_settings(settings: Settings, jwks: JwksServer, **overrides: Any) -> Settings:
    return settings.model_copy(
        update={
            "auth_mode": "oidc",
            "oidc_issuer": ISSUER,
            "oidc_audience": AUDIENCE,
            "oidc_jwks_url": jwks.url,
            "oidc_jwks_refresh_cooldown_seconds": 0,
        }
        | overrides
    )


@pytest.fixture(scope="module")
def stand_in() -> Iterator[StandInServer]:
    """The stand-in payment platform, where the apps create payments over HTTP."""
    with StandInServer(DEVELOPMENT_SHARED_SECRET.encode()) as server:
        yield server


@pytest.fixture
def serve(
    service: AkteService, settings: Settings, stand_in: StandInServer
) -> Iterator[Callable[[Settings], ServedApp]]:
    started: list[ServedApp] = []
    # As `akte serve` does: a runner in the process keeps the worklists built.
    read_models = build_read_models(settings, service, follow=True)

    def start(app_settings: Settings) -> ServedApp:
        with_payments = app_settings.model_copy(update={"payment_provider_url": stand_in.base_url})
        app = create_app(service, with_payments, read_models=read_models)
        served = ServedApp(app, service)
        served.start()
        started.append(served)
        return served

    try:
        yield start
    finally:
        for served in started:
            served.stop()
        read_models.close()


@pytest.fixture
def served(
    serve: Callable[[Settings], ServedApp], settings: Settings, jwks: JwksServer
) -> ServedApp:
    return serve(oidc_settings(settings, jwks))


# ------------------------------------------------------------------- callers


@dataclass(frozen=True)
class Caller:
    name: str
    sub: str | None
    roles: tuple[str, ...] = ()
    office: str | None = None

    def headers(self, keys: ProviderKeys) -> dict[str, str]:
        if self.sub is None:
            return {}
        office = _OMIT if self.office is None else self.office
        token = make_token(keys.current, sub=self.sub, realm_roles=list(self.roles), office=office)
        return {"Authorization": f"Bearer {token}"}


CASEWORKER: Final = Caller("caseworker", "sb-01", ("caseworker",), MUSTERSTADT)
TEAM_LEAD: Final = Caller("team_lead", "tl-01", ("team_lead",), MUSTERSTADT)
AUDITOR: Final = Caller("auditor", "au-01", ("auditor",), MUSTERSTADT)
HEAD_OF_OFFICE: Final = Caller("head_of_office", "ho-01", ("head_of_office",), MUSTERSTADT)
ANONYMOUS: Final = Caller("anonymous", None)
OTHER_OFFICE: Final = Caller("caseworker_of_another_office", "sb-91", ("caseworker",), NACHBARSTADT)
CALLERS: Final = (CASEWORKER, TEAM_LEAD, AUDITOR, HEAD_OF_OFFICE, ANONYMOUS, OTHER_OFFICE)

OK: Final = 0
"""In the outcome tables: the route's own success status."""

# What each kind of route answers each caller. Written out here rather than derived from
# adapters/http/auth/permissions.py, so that a change of the policy has to change this table too.
OUTCOMES: Final[dict[str, dict[Caller, int]]] = {
    "public": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: OK,
        OTHER_OFFICE: OK,
    },
    # Opening needs no case file: the other office's caseworker opens one in its office.
    "open": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: OK,
    },
    "read": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 404,
    },
    "write": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 404,
    },
    "assign": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # A list of what the caller's offices hold: for another office's caseworker, theirs.
    "list": {
        CASEWORKER: OK,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: OK,
    },
    # Aggregate figures of the caller's office: management and auditors, not casework.
    "report": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Management analyses (what-if replay, workload per caseworker): team leads and heads.
    "analysis": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Trails across case files (actions by actor and day, the read-access log): auditors.
    "audit": {
        CASEWORKER: 403,
        TEAM_LEAD: 403,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Erasure (crypto-shredding): team leads of the office, with another's approval.
    "erase": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: 403,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # Which files are due for erasure: file numbers and dates, no personal data.
    "retention": {
        CASEWORKER: 403,
        TEAM_LEAD: OK,
        AUDITOR: OK,
        HEAD_OF_OFFICE: 403,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
    # The hash chains of the whole log: positions and hashes, no personal data.
    "verify": {
        CASEWORKER: 403,
        TEAM_LEAD: 403,
        AUDITOR: OK,
        HEAD_OF_OFFICE: OK,
        ANONYMOUS: 401,
        OTHER_OFFICE: 403,
    },
}


# ----------------------------------------------------------- case file set-up

Step = Callable[[AkteService, UUID, int], int]


def _procedure(service: AkteService, case_id: UUID, version: int) -> int:
    return service.receive_procedure(
        case_id,
        expected_version=version,
        by=SETUP_USER,
        channel="mail",
        topic="extend_residence_permit",
    ).version


def _procedure_decided(service: AkteService, case_id: UUID, version: int) -> int:
    return service.decide_procedure(
        case_id, expected_version=version, by=SETUP_USER, procedure_number=1, outcome="withdrawn"
    ).version


def _eat(service: AkteService, case_id: UUID, version: int) -> int:
    return service.issue_residence_document(
        case_id,
        expected_version=version,
        by=SETUP_USER,
        kind="eat",
        legal_basis="aufenthg-16b",
        valid_from=date(2024, 3, 4),
        valid_until=date(2026, 3, 3),
        document_number="Y0000AB12",
    ).version


def _card_ordered(service: AkteService, case_id: UUID, version: int) -> int:
    return service.order_eat_card(
        case_id, expected_version=version, by=SETUP_USER, residence_document_number=1
    ).version


def _card_arrived(service: AkteService, case_id: UUID, version: int) -> int:
    return service.record_eat_card_arrived(
        case_id, expected_version=version, by=SETUP_USER, residence_document_number=1
    ).version


def _fiction(service: AkteService, case_id: UUID, version: int) -> int:
    return service.issue_fiction_certificate(
        case_id,
        expected_version=version,
        by=SETUP_USER,
        kind="81_4",
        valid_from=date(2024, 3, 4),
        valid_until=date(2024, 6, 3),
        carrier_sheet_number="F1234567",
    ).version


def _entry_procedure(service: AkteService, case_id: UUID, version: int) -> int:
    return service.request_entry_consent(case_id, expected_version=version, by=SETUP_USER).version


def _inquiry(service: AkteService, case_id: UUID, version: int) -> int:
    return service.receive_inquiry(
        case_id, expected_version=version, by=SETUP_USER, kind="civil_registry"
    ).version


def _document(service: AkteService, case_id: UUID, version: int) -> int:
    # Stored for real: the content route reads it back.
    stored = service.documents.put_bytes(make_pdf(2, marker="passport-copy"))
    return service.attach_document(
        case_id,
        expected_version=version,
        by=SETUP_USER,
        kind="passport-copy",
        sha256=stored.sha256,
        size_bytes=stored.size_bytes,
        media_type="application/pdf",
        page_count=2,
        source="scan",
    ).version


def _letter(service: AkteService, case_id: UUID, version: int) -> int:
    return service.record_correspondence(
        case_id,
        expected_version=version,
        by=SETUP_USER,
        direction="received",
        counterpart_kind="lawyer",
        counterpart_name="Kanzlei Beispiel",
        subject="Akteneinsicht",
    ).version


def _note(service: AkteService, case_id: UUID, version: int) -> int:
    return service.add_note(case_id, expected_version=version, by=SETUP_USER, text="noted").version


EVERY_PART: Final[tuple[Step, ...]] = (
    _document,
    _procedure,
    _eat,
    _fiction,
    _entry_procedure,
    _inquiry,
    _letter,
    _note,
)


@dataclass(frozen=True)
class OpenedCase:
    id: UUID
    version: int
    reference: str


@dataclass(frozen=True)
class OpenedDeclaration:
    """A commitment declaration submitted for a route, and how far it has come."""

    id: UUID
    version: int
    reference: str
    """Its secret reference."""
    visitor_case: UUID | None = None


@dataclass(frozen=True)
class OpenedSubmission:
    """A contact form submission made for a route, and how far its triage has come."""

    id: UUID
    version: int
    reference: str
    """Its receipt."""
    sender_case: UUID | None = None


Subject = OpenedCase | OpenedDeclaration | OpenedSubmission | OpenedAppointment
DeclarationStep = Callable[[AkteService, OpenedDeclaration], OpenedDeclaration]
SubmissionStep = Callable[[AkteService, OpenedSubmission], OpenedSubmission]


def open_case(
    service: AkteService, steps: tuple[Step, ...] = (), *, office: str = MUSTERSTADT
) -> OpenedCase:
    recorded = service.open_case(
        office_id=office,
        master_data=MasterData("Beispiel", "Amal", date(1990, 1, 1), "SYR", "N1234567"),
        by=SETUP_USER,
    )
    version = recorded.version
    for step in steps:
        version = step(service, recorded.case_id, version)
    return OpenedCase(recorded.case_id, version, recorded.result)


# ------------------------------------------------- commitment declaration set-up

SIGNING_KEY: Final = DEVELOPMENT_SHARED_SECRET.encode()
"""What the apps check notifications with: their settings name no key of their own."""
TODAY: Final = FakeClock().now.date()
"""The business day of the service fixture's clock."""


class _SetupProvider:
    """Names a payment's transaction after its payment reference, so the table can too."""

    name = "stand-in"

    def create_payment(self, order: PaymentOrder) -> CreatedPayment:
        transaction_id = f"TX-{order.reference}"
        return CreatedPayment(transaction_id, f"https://pay.example/pay/{transaction_id}")


def _transaction_of(declaration: Subject) -> str:
    """The transaction of a declaration's first payment (its reference: service.py)."""
    return f"TX-VE-{declaration.id.hex[:12].upper()}-1"


def _payment_started(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.start_payment(
        declaration.id,
        method="visa",
        provider=_SetupProvider(),
        notification_url="https://akte.example/payments/notifications",
        return_url="https://akte.example/payments/return",
        by=SETUP_USER,
    )
    return replace(declaration, version=recorded.version)


def _fee_paid(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.settle_payment(
        provider="stand-in",
        transaction_id=_transaction_of(declaration),
        outcome="paid",
        amount_cents=2900,
        currency="EUR",
    )
    return replace(declaration, version=recorded.version)


def _ability_shown(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.check_ability_to_pay(
        declaration.id, expected_version=declaration.version, by=SETUP_USER, passed=True
    )
    return replace(declaration, version=recorded.version)


def _handed_over(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.hand_over_declaration(
        declaration.id, expected_version=declaration.version, by=SETUP_USER
    )
    return replace(declaration, version=recorded.version)


def _visitor_case(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    return replace(declaration, visitor_case=open_case(service).id)


PAID: Final = (_payment_started, _fee_paid)
READY: Final = (*PAID, _ability_shown)


def open_declaration(
    service: AkteService, steps: tuple[DeclarationStep, ...] = ()
) -> OpenedDeclaration:
    recorded = service.submit_commitment_declaration(
        office_id=MUSTERSTADT, by=SETUP_USER, **submission(TODAY)
    )
    declaration = OpenedDeclaration(recorded.declaration_id, recorded.version, recorded.result)
    for step in steps:
        declaration = step(service, declaration)
    return declaration


def _paid_notification(declaration: Subject) -> dict[str, Any]:
    return {
        "transaction_id": _transaction_of(declaration),
        "status": "paid",
        "amount_cents": 2900,
        "currency": "EUR",
    }


def _link_to_visitor_case(declaration: Subject) -> dict[str, Any]:
    visitor_case = getattr(declaration, "visitor_case", None) or uuid.uuid4()
    return {"case_id": str(visitor_case)}


# ------------------------------------------------- contact form submission set-up

CONTACT_PDF: Final = make_pdf(2, marker="contact form upload")
CONTACT_FIELDS: Final[dict[str, str]] = {
    "topic": "extend_residence_permit",
    "message": "Mein Aufenthaltstitel läuft bald ab.",
    "surname": "Yılmaz",
    "given_names": "Ayşe Nur",
    "email": "ayse@example.org",
}


def _sender_case(service: AkteService, sent: OpenedSubmission) -> OpenedSubmission:
    return replace(sent, sender_case=open_case(service).id)


def _linked(service: AkteService, sent: OpenedSubmission) -> OpenedSubmission:
    case = open_case(service)
    recorded = service.link_submission_to_case(
        sent.id, expected_version=sent.version, by=SETUP_USER, case_id=case.id
    )
    return replace(sent, version=recorded.version, sender_case=case.id)


def open_submission(
    service: AkteService, steps: tuple[SubmissionStep, ...] = ()
) -> OpenedSubmission:
    inspection_sha = hashlib.sha256(CONTACT_PDF).hexdigest()
    recorded = service.submit_contact_form(
        office_id=MUSTERSTADT,
        topic="extend_residence_permit",
        message="Mein Aufenthaltstitel läuft bald ab.",
        contact=ContactDetails("Yılmaz", "Ayşe Nur", "ayse@example.org"),
        files=[
            IncomingDocument(
                content=io.BytesIO(CONTACT_PDF),
                sha256=inspection_sha,
                size_bytes=len(CONTACT_PDF),
                media_type="application/pdf",
                page_count=2,
                name="aufenthaltstitel.pdf",
            )
        ],
        by=SETUP_USER,
    )
    sent = OpenedSubmission(recorded.submission_id, recorded.version, recorded.result)
    for step in steps:
        sent = step(service, sent)
    return sent


def _link_to_sender_case(sent: Subject) -> dict[str, Any]:
    sender_case = getattr(sent, "sender_case", None) or uuid.uuid4()
    return {"case_id": str(sender_case)}


Form = tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]]]


def _contact_form(subject: Subject) -> Form:
    return CONTACT_FIELDS, [("files", ("titel.pdf", CONTACT_PDF, "application/pdf"))]


def _upload(subject: Subject) -> Form:
    letter = make_pdf(1, marker=f"lawyer's letter to {subject.id}")
    return {"kind": "lawyer-letter"}, [("file", ("schreiben.pdf", letter, "application/pdf"))]


# ------------------------------------------------------------ the route table


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """As the app declares it, e.g. ``/cases/{case_id}/notes``; part numbers become 1."""
    kind: str
    """A key of OUTCOMES."""
    success: int = 200
    body: Any = None
    setup: tuple[Step, ...] = ()
    """What a fresh case file needs before this write can succeed."""
    declaration: tuple[DeclarationStep, ...] | None = None
    """Set for routes on a commitment declaration: what a fresh one needs first."""
    signed: bool = False
    """The body is a payment notification, signed with the shared key."""
    submission: tuple[SubmissionStep, ...] | None = None
    """Set for routes on a contact form submission: what a fresh one needs first."""
    form: Callable[[Subject], Form] | None = None
    """For upload routes: the multipart/form-data fields and files to send."""
    appointment: tuple[ap.AppointmentStep, ...] | None = None
    """Set for appointment routes: what a fresh booking needs first."""

    @property
    def writes(self) -> bool:
        return self.method == "POST"

    @property
    def on_a_case(self) -> bool:
        return "{case_id}" in self.path

    @property
    def on_one(self) -> bool:
        """On one case file, declaration or submission, named in the path."""
        return (
            self.on_a_case
            or "{declaration_id}" in self.path
            or "{submission_id}" in self.path
            or "{appointment_id}" in self.path
        )

    def url(self, subject: Subject) -> str:
        values = {
            "case_id": str(subject.id),
            "declaration_id": str(subject.id),
            "submission_id": str(subject.id),
            "appointment_id": str(subject.id),
            "code": ap.POINT,
            "reference": subject.reference,
            "year": "2024",
            "key": "procedures_processed",
        }
        return re.sub(r"\{(\w+)\}", lambda match: values.get(match.group(1), "1"), self.path)

    def body_for(self, subject: Subject) -> Any:
        return self.body(subject) if callable(self.body) else self.body

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


C = "/cases/{case_id}"
RD = C + "/residence-documents/{residence_document_number}"
FC = C + "/fiction-certificates/{certificate_number}"
EP = C + "/entry-procedures/{entry_procedure_number}"
PR = C + "/procedures/{procedure_number}"
VE = "/commitment-declarations"
VD = VE + "/{declaration_id}"
KS = "/contact-submissions"
KD = KS + "/{submission_id}"
AB = "/appointments"
AD = AB + "/{appointment_id}"
CARD_ARRIVED: Final = (_eat, _card_ordered, _card_arrived)

ROUTES: Final = (
    Route("GET", "/catalogue", "public"),
    Route("GET", "/healthz", "public"),
    Route("GET", "/readyz", "public"),
    Route("GET", "/metrics", "public"),
    Route("POST", "/cases", "open", 201, PERSON),
    Route("GET", "/cases/by-reference/{reference}", "read"),
    Route("GET", C, "read"),
    Route("GET", C + "/events", "read"),
    Route("GET", C + "/history", "read"),
    Route("GET", C + "/diff", "read"),
    Route("POST", C + "/master-data/corrections", "write", body={"surname": "X", "reason": "r"}),
    Route("POST", C + "/transfer", "write", body={"to_office_id": "abh-anderstadt"}),
    Route("POST", C + "/closure", "write", body={"closure_reason": "naturalised"}),
    Route("POST", C + "/documents", "write", 201, DOCUMENT),
    Route("GET", C + "/documents/{document_number}", "read"),
    Route("POST", C + "/procedures", "write", 201, {"channel": "mail", "topic": "blue_card"}),
    Route("GET", PR, "read"),
    Route("POST", PR + "/assignment", "assign", body={"assignee": "sb-02"}, setup=(_procedure,)),
    Route(
        "POST",
        PR + "/document-requests",
        "write",
        body={"what": ["proof of income"], "due_on": "2024-04-01"},
        setup=(_procedure,),
    ),
    Route("POST", PR + "/decision", "write", body={"outcome": "withdrawn"}, setup=(_procedure,)),
    Route("POST", PR + "/closure", "write", setup=(_procedure, _procedure_decided)),
    Route("POST", C + "/residence-documents", "write", 201, EAT),
    Route("GET", RD, "read"),
    Route("POST", RD + "/extensions", "write", body={"valid_until": "2027-03-03"}, setup=(_eat,)),
    Route("POST", RD + "/card-order", "write", setup=(_eat,)),
    Route("POST", RD + "/card-arrival", "write", setup=(_eat, _card_ordered)),
    Route("POST", RD + "/card-handover", "write", setup=CARD_ARRIVED),
    Route(
        "POST",
        RD + "/passport-transfer",
        "write",
        body={"new_card_number": "Y0000CD34"},
        setup=(_eat,),
    ),
    Route(
        "POST",
        RD + "/end",
        "write",
        body={"end_reason": "revoked", "reason": "§ 52 AufenthG"},
        setup=(_eat,),
    ),
    Route("POST", C + "/fiction-certificates", "write", 201, FICTION),
    Route("GET", FC, "read"),
    Route(
        "POST", FC + "/extensions", "write", body={"valid_until": "2024-09-03"}, setup=(_fiction,)
    ),
    Route("POST", FC + "/end", "write", body={"end_reason": "decision"}, setup=(_fiction,)),
    Route("POST", C + "/integration-course/entitlements", "write"),
    Route("POST", C + "/integration-course/obligations", "write"),
    Route("POST", C + "/entry-procedures", "write", 201),
    Route("GET", EP, "read"),
    Route(
        "POST",
        EP + "/consent",
        "write",
        body={"valid_until": "2024-09-01"},
        setup=(_entry_procedure,),
    ),
    Route("POST", EP + "/refusal", "write", body={"reason": "not met"}, setup=(_entry_procedure,)),
    Route("POST", C + "/inquiries", "write", 201, {"kind": "civil_registry"}),
    Route("GET", C + "/inquiries/{inquiry_number}", "read"),
    Route("POST", C + "/inquiries/{inquiry_number}/answer", "write", setup=(_inquiry,)),
    Route("POST", C + "/correspondence", "write", 201, LETTER),
    Route("GET", C + "/correspondence/{correspondence_number}", "read"),
    Route("POST", C + "/notes", "write", 201, {"text": "called back"}),
    Route("GET", C + "/notes/{note_number}", "read"),
    # Commitment declarations: the applicant's routes are public, by secret reference.
    Route("POST", VE, "public", 201, submission_json(TODAY)),
    Route("GET", VE + "/own", "public", declaration=()),
    Route("POST", VE + "/own/payment", "public", 201, {"method": "visa"}, declaration=()),
    Route(
        "POST",
        "/payments/notifications",
        "public",
        200,
        _paid_notification,
        signed=True,
        declaration=(_payment_started,),
    ),
    Route("GET", "/payments/return", "public"),
    Route("GET", VE, "list"),
    Route("GET", VD, "read", declaration=()),
    Route("GET", VD + "/events", "read", declaration=()),
    Route("POST", VD + "/ability-check", "write", body={"passed": True}, declaration=()),
    Route(
        "POST",
        VD + "/pickup-appointment",
        "write",
        body={"appointment_at": f"{TODAY + timedelta(days=7)}T09:00:00+01:00"},
        declaration=READY,
    ),
    Route("POST", VD + "/handover", "write", body={}, declaration=READY),
    Route(
        "POST",
        VD + "/visitor-entry",
        "write",
        body={"entry_date": TODAY.isoformat()},
        declaration=(*READY, _handed_over),
    ),
    Route("POST", VD + "/withdrawal", "write", body={"reason": "abgesagt"}, declaration=()),
    Route("POST", VD + "/refund", "write", body={"reason": "Ermessen"}, declaration=PAID),
    Route(
        "POST",
        VD + "/case-link",
        "write",
        body=_link_to_visitor_case,
        declaration=(_visitor_case,),
    ),
    # Documents: uploads (multipart) and content, verified on every read.
    Route("POST", C + "/uploads", "write", 201, form=_upload),
    Route("GET", C + "/documents/{document_number}/content", "read"),
    # The contact form is public; its submissions are triaged by the office's caseworkers.
    Route("POST", "/contact-form", "public", 201, form=_contact_form),
    Route("GET", KS, "list"),
    *(
        Route("GET", f"/worklists/{name}", "list")
        for name in (
            "my-open-procedures",
            "unassigned-procedures",
            "overdue-document-requests",
            "expiring-documents",
            "eat-cards-awaiting-handover",
            "unreviewed-uploads",
            "commitment-declarations-awaiting-handover",
            "untriaged-submissions",
        )
    ),
    Route("GET", "/audit/verify", "verify"),
    Route("GET", "/audit/actions", "audit"),
    Route("GET", "/audit/days", "audit"),
    Route("GET", "/audit/reads", "audit"),
    Route(
        "POST",
        C + "/erasure",
        "erase",
        body={"legal_ground": "dsgvo-17", "approved_by": "dsb-01"},
    ),
    Route("GET", C + "/subject-access", "audit"),
    Route("GET", "/retention/due", "retention"),
    Route("GET", "/reports/yearly/{year}", "report"),
    Route("GET", "/reports/yearly/{year}/figures/{key}/events", "report"),
    Route("GET", "/reports/whatif", "analysis"),
    Route("GET", "/reports/workload", "analysis"),
    Route("GET", KD, "read", submission=()),
    Route("GET", KD + "/events", "read", submission=()),
    Route("GET", KD + "/files/{file_number}/content", "read", submission=()),
    Route(
        "POST", KD + "/case-link", "write", body=_link_to_sender_case, submission=(_sender_case,)
    ),
    Route(
        "POST",
        KD + "/case-file",
        "write",
        201,
        {"nationality": "TUR", "passport_number": "U12345678", "date_of_birth": "1991-07-14"},
        submission=(),
    ),
    Route(
        "POST",
        KD + "/procedure",
        "write",
        201,
        {"legal_basis": "aufenthg-16b"},
        (),
        submission=(_linked,),
    ),
    Route("POST", KD + "/reply", "write", body={"reply": "Bitte Termin buchen."}, submission=()),
    Route("POST", KD + "/dismissal", "write", body={"reason": "duplicate"}, submission=()),
    # Appointments: booking is public, by secret reference; the counter is the office's.
    Route("GET", AB + "/service-points", "public"),
    Route("GET", AB + "/offers", "public", appointment=()),
    Route("POST", AB + "/challenges", "public", 201),
    Route("POST", AB + "/bookings", "public", 201, ap.booking_body, appointment=()),
    Route("POST", AB + "/waitlist", "public", 201, ap.waitlist_body, appointment=()),
    Route("GET", AB + "/bookings/own", "public", appointment=()),
    Route(
        "POST",
        AB + "/bookings/own/confirmation",
        "public",
        body=ap.confirmation_body,
        appointment=(),
    ),
    Route("POST", AB + "/bookings/own/confirmation-mail", "public", appointment=()),
    Route("POST", AB + "/bookings/own/cancellation", "public", appointment=()),
    Route("POST", AB + "/service-points", "assign", body=ap.SERVICE_POINT_BODY),
    Route(
        "POST",
        AB + "/service-points/{code}/closed-days",
        "assign",
        body={"day": "2024-03-20", "reason": "Feiertag"},
        appointment=(),
    ),
    Route("GET", AB + "/day", "list"),
    Route("GET", AB + "/holds", "list"),
    Route("GET", AB + "/figures", "list"),
    Route("GET", AB + "/figures/history", "list"),
    # Booking on behalf of a person: in the caller's own office, like opening a case file.
    Route(
        "POST",
        AB + "/office-bookings",
        "open",
        201,
        ap.office_booking_body,
        appointment=(ap.in_both_offices,),
    ),
    Route("GET", AD, "read", appointment=()),
    Route("POST", AD + "/check-in", "write", appointment=()),
    Route("POST", AD + "/attendance", "write", appointment=(ap.checked_in,)),
    Route("POST", AD + "/no-show", "write", appointment=(ap.in_the_past,)),
    Route("POST", AD + "/cancellation", "write", body={}, appointment=()),
    Route(
        "POST", AD + "/retyping", "write", body={"appointment_type": "eat-pickup"}, appointment=()
    ),
    Route("POST", AD + "/case-link", "write", body=ap.case_link_body, appointment=(ap.with_case,)),
    Route("GET", C + "/appointment-proposals", "read"),
)


def app_routes(app: FastAPI) -> set[str]:
    return {
        f"{method} {route.path}"
        for route in route_accesses(app.routes)
        for method in route.methods
        if method != "HEAD"
    }


def subject_for(service: AkteService, route: Route) -> Subject:
    """A fresh case file, declaration or submission, set up so that the route's write can
    succeed."""
    if route.declaration is not None:
        return open_declaration(service, route.declaration)
    if route.submission is not None:
        return open_submission(service, route.submission)
    if route.appointment is not None:
        return open_appointment(service, route.appointment)
    return open_case(service, route.setup)


def send(
    served: ServedApp, route: Route, subject: Subject, headers: Mapping[str, str]
) -> httpx.Response:
    sent = dict(headers)
    if route.writes and route.on_one:
        sent["If-Match"] = f'"{subject.version}"'
    if route.declaration is not None and not route.on_one:
        sent["X-Declaration-Reference"] = subject.reference
    if route.appointment is not None and not route.on_one:
        sent["X-Booking-Reference"] = subject.reference
    if route.form is not None:
        fields, files = route.form(subject)
        uploaded: httpx.Response = served.http.request(
            route.method, route.url(subject), data=fields, files=files, headers=sent
        )
        return uploaded
    body = route.body_for(subject)
    if not route.signed:
        response: httpx.Response = served.http.request(
            route.method, route.url(subject), json=body, headers=sent
        )
        return response
    raw = json.dumps(body).encode()
    sent["Content-Type"] = "application/json"
    sent[SIGNATURE_HEADER] = signature_for(SIGNING_KEY, raw)
    signed: httpx.Response = served.http.request(
        route.method, route.url(subject), content=raw, headers=sent
    )
    return signed


def unknown_case_problem(served: ServedApp, keys: ProviderKeys, route: Route) -> dict[str, Any]:
    """What a caller allowed everywhere hears for a case file or declaration that is not."""
    nobody: Subject = OpenedCase(uuid.uuid4(), 1, "AZ-DOES-NOT-EXIST")
    allowed = TEAM_LEAD if route.writes else AUDITOR
    response = send(served, route, nobody, allowed.headers(keys))
    assert response.status_code == 404, response.text
    problem: dict[str, Any] = response.json()
    problem["detail"] = problem["detail"].replace(str(nobody.id), "<id>")
    return problem


# --------------------------------------------------------------------- tests


def test_every_route_declares_its_access(served: ServedApp) -> None:
    declared = route_accesses(served.app.routes)

    assert declared, "no routes found: has FastAPI changed how it keeps them?"
    for route in declared:
        if route.path.startswith("/cases"):
            assert isinstance(route.access, RequirePermission), f"{route.path} declares none"
        else:
            assert isinstance(route.access, RequirePermission | AllowPublic), route.path


def test_the_route_table_covers_every_route_of_the_app(served: ServedApp) -> None:
    assert app_routes(served.app) == {str(route) for route in ROUTES}


def test_every_route_answers_every_caller_as_the_policy_says(
    served: ServedApp, keys: ProviderKeys
) -> None:
    shared_case = open_case(served.service, EVERY_PART)
    shared_declaration = open_declaration(served.service, PAID)
    shared_submission = open_submission(served.service)
    shared_appointment = open_appointment(served.service)
    mismatches: list[str] = []
    for route in ROUTES:
        hidden = unknown_case_problem(served, keys, route) if route.on_one else None
        shared: Subject = shared_case
        if route.declaration is not None:
            shared = shared_declaration
        elif route.submission is not None:
            shared = shared_submission
        elif route.appointment is not None:
            shared = shared_appointment
        for caller in CALLERS:
            expected = OUTCOMES[route.kind][caller] or route.success
            case = subject_for(served.service, route) if route.writes else shared
            before = served.events_recorded()

            response = send(served, route, case, caller.headers(keys))

            where = f"{route} as {caller.name}"
            if response.status_code != expected:
                mismatches.append(f"{where}: expected {expected}, got {response.status_code}")
                continue
            if expected < 400:
                continue
            problem = response.json()
            if served.events_recorded() != before:
                mismatches.append(f"{where}: refused with {expected} but recorded events")
            if expected == 401:
                assert problem["type"] == PROBLEMS + "unauthenticated", where
                assert response.headers["WWW-Authenticate"].startswith("Bearer"), where
            elif expected == 403:
                assert problem["type"] == PROBLEMS + "forbidden", where
            elif hidden is not None:
                # Not a word more than for a case file that does not exist.
                problem["detail"] = problem["detail"].replace(str(case.id), "<id>")
                assert problem == hidden, where
            else:
                assert problem["type"] == PROBLEMS + "case-not-found", where
    assert not mismatches, "\n".join(mismatches)


def test_refusals_come_before_if_match_and_body_checks(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    declaration = open_declaration(served.service)
    sent = open_submission(served.service)
    before = served.events_recorded()

    for route in ROUTES:
        if not route.writes:
            continue
        subject: Subject = case
        if route.declaration is not None:
            subject = declaration
        elif route.submission is not None:
            subject = sent
        for caller in CALLERS:
            refusal = OUTCOMES[route.kind][caller]
            if refusal == OK:
                continue
            if route.form is not None:
                # Upload routes take multipart bodies only (JSON is 415 before anything).
                response = served.http.post(
                    route.url(subject),
                    files={"unexpected": ("x.txt", b"x", "text/plain")},
                    headers=caller.headers(keys),
                )
            else:
                response = served.http.post(
                    route.url(subject), json={"unexpected": True}, headers=caller.headers(keys)
                )
            assert response.status_code == refusal, f"{route} as {caller.name}: {response.text}"
    assert served.events_recorded() == before


def test_a_new_case_file_is_opened_in_the_callers_office(
    served: ServedApp, keys: ProviderKeys
) -> None:
    response = served.http.post("/cases", json=PERSON, headers=OTHER_OFFICE.headers(keys))
    assert response.status_code == 201, response.text
    case_id = response.json()["case_id"]

    assert served.service.get_case(UUID(case_id)).office_id == NACHBARSTADT
    elsewhere = served.http.get(f"/cases/{case_id}", headers=CASEWORKER.headers(keys))
    assert elsewhere.status_code == 404
    own = served.http.get(f"/cases/{case_id}", headers=OTHER_OFFICE.headers(keys))
    assert own.status_code == 200
    chosen = served.http.post(
        "/cases", json=PERSON | {"office_id": MUSTERSTADT}, headers=OTHER_OFFICE.headers(keys)
    )
    assert chosen.status_code == 422
    assert chosen.json()["errors"][0]["field"] == "office_id"


def test_an_auditor_reads_every_office_and_writes_nothing(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service, (_note,), office=NACHBARSTADT)
    auditor = AUDITOR.headers(keys)

    state = served.http.get(f"/cases/{case.id}", headers=auditor)
    history = served.http.get(f"/cases/{case.id}/events", headers=auditor)
    by_reference = served.http.get(
        f"/cases/by-reference/{case.reference}",
        params={"office_id": NACHBARSTADT},
        headers=auditor,
    )
    note = served.http.post(
        f"/cases/{case.id}/notes",
        json={"text": "x"},
        headers=auditor | {"If-Match": f'"{case.version}"'},
    )

    assert (state.status_code, history.status_code, by_reference.status_code) == (200, 200, 200)
    assert [event["type"] for event in history.json()] == ["Opened", "NoteAdded"]
    assert note.status_code == 403


def test_a_file_number_of_another_office_is_not_found(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    caseworker_elsewhere = OTHER_OFFICE.headers(keys)

    implicit = served.http.get(
        f"/cases/by-reference/{case.reference}", headers=caseworker_elsewhere
    )
    explicit = served.http.get(
        f"/cases/by-reference/{case.reference}",
        params={"office_id": MUSTERSTADT},
        headers=caseworker_elsewhere,
    )
    missing = served.http.get("/cases/by-reference/AZ-NOWHERE", headers=caseworker_elsewhere)

    assert implicit.status_code == explicit.status_code == missing.status_code == 404
    assert implicit.json() == explicit.json() == missing.json()


def test_a_team_lead_of_another_office_cannot_assign_there(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service, (_procedure,))
    team_lead_elsewhere = Caller("tl", "tl-91", ("team_lead",), NACHBARSTADT).headers(keys)

    response = served.http.post(
        f"/cases/{case.id}/procedures/1/assignment",
        json={"assignee": "sb-91"},
        headers=team_lead_elsewhere | {"If-Match": f'"{case.version}"'},
    )

    assert response.status_code == 404
    assert served.service.get_case(case.id).version == case.version


def test_an_account_without_office_or_known_role_reaches_no_case(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    no_office = Caller("no office", "sb-00", ("caseworker",), None).headers(keys)
    unknown_roles = Caller("no role", "x-01", ("uma_authorization",), MUSTERSTADT).headers(keys)

    assert served.http.get(f"/cases/{case.id}", headers=no_office).status_code == 404
    opened = served.http.post("/cases", json=PERSON, headers=no_office)
    assert opened.status_code == 403
    assert opened.json()["type"] == PROBLEMS + "forbidden"
    assert served.http.get(f"/cases/{case.id}", headers=unknown_roles).status_code == 403
    assert served.http.get("/catalogue", headers=unknown_roles).status_code == 200


def test_roles_are_read_from_a_roles_claim_too(served: ServedApp, keys: ProviderKeys) -> None:
    case = open_case(served.service, (_procedure,))
    # A top-level roles claim is what other providers send; it wins over realm_access.
    token = make_token(keys.current, sub="tl-02", realm_roles=["caseworker"], roles=["team_lead"])

    response = served.http.post(
        f"/cases/{case.id}/procedures/1/assignment",
        json={"assignee": "sb-02"},
        headers={"Authorization": f"Bearer {token}", "If-Match": f'"{case.version}"'},
    )

    assert response.status_code == 200, response.text


def test_an_elliptic_curve_key_of_the_provider_verifies(
    served: ServedApp, keys: ProviderKeys
) -> None:
    token = make_token(keys.elliptic)

    response = served.http.get("/cases/by-reference/AZ-NONE", headers=_bearer(token))

    assert response.status_code == 404
    assert response.json()["type"] == PROBLEMS + "case-not-found"


def test_the_acting_user_is_the_tokens_subject_whatever_else_is_sent(
    served: ServedApp, keys: ProviderKeys
) -> None:
    case = open_case(served.service)
    headers = CASEWORKER.headers(keys) | {"X-Akte-User": "mallory", "If-Match": f'"{case.version}"'}

    noted = served.http.post(f"/cases/{case.id}/notes", json={"text": "mine"}, headers=headers)
    claimed = served.http.post(
        f"/cases/{case.id}/notes",
        json={"text": "not mine", "by": "mallory"},
        headers=headers | {"If-Match": noted.headers["ETag"]},
    )
    opened = served.http.post(
        "/cases", json=PERSON, headers=CASEWORKER.headers(keys) | {"X-Akte-User": "mallory"}
    )

    assert noted.status_code == 201, noted.text
    assert claimed.status_code == 422
    assert claimed.json()["errors"][0]["field"] == "by"
    events = served.service.case_events(case.id)
    assert [event.by for event in events] == [SETUP_USER, "sb-01"]
    assert opened.status_code == 201
    opened_events = served.service.case_events(UUID(opened.json()["case_id"]))
    assert [event.by for event in opened_events] == ["sb-01"]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BadToken = Callable[[ProviderKeys], str]


def _none_algorithm(keys: ProviderKeys) -> str:
    header, payload, _ = _segments(make_token(keys.current, realm_roles=["team_lead"]))
    return _encode(header | {"alg": "none"}, payload) + "."


def _tampered(keys: ProviderKeys) -> str:
    header, payload, signature = _segments(make_token(keys.current, realm_roles=["caseworker"]))
    payload["realm_access"] = {"roles": ["team_lead"]}
    return f"{_encode(header, payload)}.{signature}"


def _hmac_with_public_key(keys: ProviderKeys) -> str:
    header, payload, _ = _segments(make_token(keys.current))
    signing_input = _encode(header | {"alg": "HS256"}, payload)
    digest = hmac.new(keys.current.public_pem(), signing_input.encode(), hashlib.sha256)
    return f"{signing_input}.{_b64(digest.digest())}"


BAD_TOKENS: Final[dict[str, BadToken]] = {
    "expired": lambda keys: make_token(keys.current, lifetime=-120),
    "not-yet-valid": lambda keys: make_token(keys.current, nbf=int(time.time()) + 120),
    "issued-in-the-future": lambda keys: make_token(keys.current, iat=int(time.time()) + 600),
    "wrong-audience": lambda keys: make_token(keys.current, aud="another-service"),
    "wrong-issuer": lambda keys: make_token(keys.current, iss="https://id.example/realms/evil"),
    "unsigned-alg-none": _none_algorithm,
    "tampered-payload": _tampered,
    "signed-by-unknown-key": lambda keys: make_token(keys.stranger),
    "unknown-key-posing-as-known": lambda keys: make_token(keys.stranger, kid=keys.current.kid),
    "hs256-with-public-key-as-secret": _hmac_with_public_key,
    "missing-sub": lambda keys: make_token(keys.current, sub=_OMIT),
    "missing-exp": lambda keys: make_token(keys.current, exp=_OMIT),
    "sub-not-a-string": lambda keys: make_token(keys.current, sub=42),
    "id-token-not-access-token": lambda keys: make_token(keys.current, typ="ID"),
    "malformed-roles": lambda keys: make_token(keys.current, realm_access={"roles": "team_lead"}),
    "malformed-office": lambda keys: make_token(keys.current, office=["abh-musterstadt"]),
    "not-a-jwt": lambda keys: "not-a-jwt",
}


def test_a_bad_token_is_401_everywhere_and_writes_nothing(
    served: ServedApp, keys: ProviderKeys
) -> None:
    # One app for all kinds: a server per kind would cost more than the requests.
    case = open_case(served.service)
    before = served.events_recorded()
    failures: list[str] = []

    for kind, make_bad_token in BAD_TOKENS.items():
        headers = _bearer(make_bad_token(keys)) | {"If-Match": f'"{case.version}"'}
        responses = {
            "write": served.http.post(
                f"/cases/{case.id}/notes", json={"text": "x"}, headers=headers
            ),
            "open": served.http.post("/cases", json=PERSON, headers=headers),
            "read": served.http.get(f"/cases/{case.id}", headers=headers),
            "public": served.http.get("/catalogue", headers=headers),
        }
        for route, response in responses.items():
            challenge = response.headers.get("WWW-Authenticate", "")
            leaked = [
                value
                for value in ("sb-01", MUSTERSTADT, "another-service", "evil")
                if value in response.text or value in challenge
            ]
            if (
                response.status_code != 401
                or response.headers["content-type"] != "application/problem+json"
                or response.json()["type"] != PROBLEMS + "unauthenticated"
                or 'error="invalid_token"' not in challenge
                or leaked
            ):
                failures.append(f"{kind} on {route}: {response.status_code} {response.text[:200]}")

    assert not failures, "\n".join(failures)
    assert served.events_recorded() == before


def test_a_token_lives_through_its_leeway(served: ServedApp, keys: ProviderKeys) -> None:
    """Clocks drift: a token a few seconds past ``exp`` or before ``nbf`` still counts."""
    token = make_token(keys.current, lifetime=-5, nbf=int(time.time()) + 5)

    assert served.http.get("/cases/by-reference/AZ-NONE", headers=_bearer(token)).status_code == 404


def test_no_token_is_401_with_a_bearer_challenge(served: ServedApp) -> None:
    for headers in ({}, {"Authorization": "Basic c2ItMDE6c2VjcmV0"}, {"Authorization": "Bearer"}):
        response = served.http.get(f"/cases/{uuid.uuid4()}", headers=headers)

        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="akte"'
        assert response.json()["type"] == PROBLEMS + "unauthenticated"
    assert served.http.get("/catalogue").status_code == 200


def test_a_rotated_key_is_fetched_and_a_removed_key_refused(
    served: ServedApp, keys: ProviderKeys, jwks: JwksServer
) -> None:
    probe = "/cases/by-reference/AZ-NONE"
    old_token = make_token(keys.current)
    assert served.http.get(probe, headers=_bearer(old_token)).status_code == 404

    jwks.published = [keys.next]
    new_token = make_token(keys.next)

    accepted = served.http.get(probe, headers=_bearer(new_token))
    refused = served.http.get(probe, headers=_bearer(old_token))

    assert accepted.status_code == 404, accepted.text
    assert refused.status_code == 401
    assert jwks.fetches == 3  # the first fetch, then one per unknown key id


def test_made_up_key_ids_do_not_flood_the_identity_provider(
    serve: Callable[[Settings], ServedApp],
    settings: Settings,
    keys: ProviderKeys,
    jwks: JwksServer,
) -> None:
    served = serve(oidc_settings(settings, jwks, oidc_jwks_refresh_cooldown_seconds=30))

    for _ in range(10):
        token = make_token(keys.stranger, kid=uuid.uuid4().hex)
        assert served.http.get("/catalogue", headers=_bearer(token)).status_code == 401

    assert jwks.fetches == 2  # the first fetch and one refetch per cooldown


def test_an_unreachable_identity_provider_is_503_and_writes_nothing(
    serve: Callable[[Settings], ServedApp], settings: Settings, keys: ProviderKeys
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    served = serve(
        settings.model_copy(
            update={
                "auth_mode": "oidc",
                "oidc_issuer": ISSUER,
                "oidc_audience": AUDIENCE,
                "oidc_jwks_url": f"http://127.0.0.1:{port}/certs",
            }
        )
    )
    case = open_case(served.service)
    before = served.events_recorded()

    response = served.http.post(
        f"/cases/{case.id}/notes",
        json={"text": "x"},
        headers=CASEWORKER.headers(keys) | {"If-Match": f'"{case.version}"'},
    )

    assert response.status_code == 503
    assert response.json()["type"] == PROBLEMS + "identity-provider-unavailable"
    assert response.headers["Retry-After"].isdigit()
    assert served.events_recorded() == before


# -------------------------------------------------------------- start-up


def test_production_refuses_local_tokens(service: AkteService, settings: Settings) -> None:
    production = settings.model_copy(update={"deployment": "production", "auth_mode": "local"})

    with pytest.raises(AuthConfigurationError, match="production"):
        create_app(service, production)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        pytest.param({"oidc_issuer": None}, "AKTE_OIDC_ISSUER", id="issuer"),
        pytest.param({"oidc_audience": ""}, "AKTE_OIDC_AUDIENCE", id="audience"),
        pytest.param({"oidc_jwks_url": None}, "AKTE_OIDC_JWKS_URL", id="jwks-url"),
        pytest.param({"oidc_jwks_url": "file:///etc/keys"}, "AKTE_OIDC_JWKS_URL", id="not-http"),
        pytest.param(
            {"deployment": "production"}, "https", id="production-fetches-keys-over-https"
        ),
    ],
)
def test_incomplete_oidc_settings_refuse_to_start(
    service: AkteService,
    settings: Settings,
    jwks: JwksServer,
    overrides: dict[str, Any],
    named: str,
) -> None:
    with pytest.raises(AuthConfigurationError, match=named):
        create_app(service, oidc_settings(settings, jwks, **overrides))
