"""Every route of the app with its kind of access, what a fresh subject (case file,
declaration, submission, appointment) needs before a write to it can succeed, and how
to send a request to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, Final
from uuid import UUID

import httpx2 as httpx
from fastapi import FastAPI

from adapters.http.auth.permissions import route_accesses
from adapters.http.pages.site import page_paths
from adapters.payment.provider import CreatedPayment, PaymentOrder
from adapters.payment.setup import DEVELOPMENT_SHARED_SECRET
from adapters.payment.signatures import SIGNATURE_HEADER, signature_for
from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import MasterData, RegistrationNoticeChanges
from domain.intake import ContactDetails
from domain.registration_notices import NoticedPerson
from service import AkteService
from service_intake import IncomingDocument
from service_notices import InboundNotice
from tests.conftest import FakeClock
from tests.http.auth.access_policy import (
    AUDITOR,
    DATA_PROTECTION_OFFICER,
    OK,
    OUTCOMES,
    TEAM_LEAD,
    Caller,
)
from tests.http.auth.identity_provider import MUSTERSTADT, ProviderKeys
from tests.support import appointment_routes as ap
from tests.support.appointment_routes import OpenedAppointment, open_appointment
from tests.support.declarations import submission, submission_json
from tests.support.live_server import ServedApp

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
    # § 81 (3) S. 1: needs no application on the file (81_4 would, see domain rules).
    "kind": "81_3_1",
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


# ----------------------------------------------------------- case file set-up

Step = Callable[[AkteService, UUID, int], int]


def receive_procedure(service: AkteService, case_id: UUID, version: int) -> int:
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
        kind="81_3_1",
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
    stored = service.intake.documents.put_bytes(make_pdf(2, marker="passport-copy"), owner=case_id)
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


def _erasure_requested(service: AkteService, case_id: UUID, version: int) -> int:
    """A pending erasure request (number 1) by the set-up user: the file's version stays."""
    service.erasure_requests.request(case_id, by=SETUP_USER, legal_ground="dsgvo-17")
    return version


def add_note(service: AkteService, case_id: UUID, version: int) -> int:
    return service.add_note(case_id, expected_version=version, by=SETUP_USER, text="noted").version


EVERY_PART: Final[tuple[Step, ...]] = (
    _document,
    receive_procedure,
    _eat,
    _fiction,
    _entry_procedure,
    _inquiry,
    _letter,
    add_note,
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


@dataclass(frozen=True)
class OpenedNotice:
    """A registration-office notice in triage (an unknown person), for its routes."""

    id: UUID
    version: int = 1
    reference: str = ""


Subject = OpenedCase | OpenedDeclaration | OpenedSubmission | OpenedAppointment | OpenedNotice
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
    recorded = service.declarations.start_payment(
        declaration.id,
        method="visa",
        provider=_SetupProvider(),
        notification_url="https://akte.example/payments/notifications",
        return_url="https://akte.example/payments/return",
        by=SETUP_USER,
    )
    return replace(declaration, version=recorded.version)


def _fee_paid(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.declarations.settle_payment(
        provider="stand-in",
        transaction_id=_transaction_of(declaration),
        outcome="paid",
        amount_cents=2900,
        currency="EUR",
    )
    return replace(declaration, version=recorded.version)


def _ability_shown(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.declarations.check_ability_to_pay(
        declaration.id, expected_version=declaration.version, by=SETUP_USER, passed=True
    )
    return replace(declaration, version=recorded.version)


def _handed_over(service: AkteService, declaration: OpenedDeclaration) -> OpenedDeclaration:
    recorded = service.declarations.hand_over_declaration(
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
    recorded = service.declarations.submit_commitment_declaration(
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
    recorded = service.intake.link_submission_to_case(
        sent.id, expected_version=sent.version, by=SETUP_USER, case_id=case.id
    )
    return replace(sent, version=recorded.version, sender_case=case.id)


def open_submission(
    service: AkteService, steps: tuple[SubmissionStep, ...] = ()
) -> OpenedSubmission:
    inspection_sha = hashlib.sha256(CONTACT_PDF).hexdigest()
    recorded = service.intake.submit_contact_form(
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


def open_notice(service: AkteService) -> OpenedNotice:
    triaged = service.notices.receive_notice(
        InboundNotice(
            office_id=MUSTERSTADT,
            sender="meldebehoerde-musterstadt",
            message_id=str(uuid.uuid4()),
            message_type="MBABH.Anmeldung",
            notice_kind="anmeldung",
            effective_on=TODAY,
            person=NoticedPerson("Unbekannt", "Niemand", date(1970, 5, 5)),
            changes=RegistrationNoticeChanges(address="Neue Straße 5, 12345 Musterstadt"),
        )
    )
    return OpenedNotice(triaged.subject_id)


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
    notice: bool = False
    """A route on a registration notice in triage (a fresh one each)."""
    writer: Caller | None = None
    """Who makes the write succeed where no caller of the matrix may (the data protection
    officer's approval of an erasure)."""

    @property
    def writes(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH", "DELETE")

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
            or "{notice_id}" in self.path
        )

    def url(self, subject: Subject) -> str:
        values = {
            "case_id": str(subject.id),
            "declaration_id": str(subject.id),
            "submission_id": str(subject.id),
            "appointment_id": str(subject.id),
            "notice_id": str(subject.id),
            "code": ap.POINT,
            "day": ap.CLOSED_DAY.isoformat(),
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
    Route(
        "POST", PR + "/assignment", "assign", body={"assignee": "sb-02"}, setup=(receive_procedure,)
    ),
    Route(
        "POST",
        PR + "/document-requests",
        "write",
        body={"what": ["proof of income"], "due_on": "2024-04-01"},
        setup=(receive_procedure,),
    ),
    Route(
        "POST", PR + "/decision", "write", body={"outcome": "withdrawn"}, setup=(receive_procedure,)
    ),
    Route("POST", PR + "/closure", "write", setup=(receive_procedure, _procedure_decided)),
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
            "deadlines",
            "notice-triage",
        )
    ),
    Route("GET", "/audit/verify", "verify"),
    Route("GET", "/audit/actions", "audit"),
    Route("GET", "/audit/days", "audit"),
    Route("GET", "/audit/reads", "audit"),
    # Erasure with four eyes: the retired route makes a request too; approving takes the
    # data protection officer's role, which no caller of the matrix holds.
    Route("POST", C + "/erasure", "erase", 201, body={"legal_ground": "dsgvo-17"}),
    Route("POST", C + "/erasure-requests", "erase", 201, body={"legal_ground": "dsgvo-17"}),
    Route("GET", C + "/erasure-requests", "erase"),
    Route(
        "POST",
        C + "/erasure-requests/{number}/approval",
        "approve-erasure",
        setup=(_erasure_requested,),
        writer=DATA_PROTECTION_OFFICER,
    ),
    Route(
        "POST", C + "/erasure-requests/{number}/withdrawal", "erase", setup=(_erasure_requested,)
    ),
    Route("GET", "/erasure-requests", "erase"),
    Route("GET", C + "/subject-access", "audit"),
    Route("GET", "/retention/due", "retention"),
    Route("GET", "/reports/yearly/{year}", "report"),
    Route("GET", "/reports/yearly/{year}/figures/{key}/events", "report"),
    Route("GET", "/reports/yearly/{year}/customers", "report"),
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
    Route(
        "DELETE",
        AB + "/service-points/{code}/closed-days/{day}",
        "assign",
        appointment=(ap.day_closed,),
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
    Route("POST", AD + "/check-in", "write", appointment=(ap.in_the_past,)),
    Route("POST", AD + "/attendance", "write", appointment=(ap.checked_in,)),
    Route("POST", AD + "/no-show", "write", appointment=(ap.in_the_past,)),
    Route("POST", AD + "/cancellation", "write", body={}, appointment=()),
    Route(
        "POST", AD + "/retyping", "write", body={"appointment_type": "eat-pickup"}, appointment=()
    ),
    Route("POST", AD + "/case-link", "write", body=ap.case_link_body, appointment=(ap.with_case,)),
    Route("GET", C + "/appointment-proposals", "read"),
    # Registration notices in triage: read and resolved like case files of their office.
    Route("GET", "/registration-notices/{notice_id}", "read", notice=True),
    Route(
        "POST",
        "/registration-notices/{notice_id}/resolution",
        "write",
        body={"resolution": "dismissed"},
        notice=True,
    ),
)


def app_routes(app: FastAPI) -> set[str]:
    """The API's routes (the public pages are HTML for browsers, checked on their own)."""
    pages = page_paths()
    return {
        f"{method} {route.path}"
        for route in route_accesses(app.routes)
        for method in route.methods
        if method != "HEAD" and route.path not in pages
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
    if route.notice:
        return open_notice(service)
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
    preferred = (TEAM_LEAD, AUDITOR) if route.writes else (AUDITOR, TEAM_LEAD)
    allowed = route.writer or next(c for c in preferred if OUTCOMES[route.kind][c] == OK)
    response = send(served, route, nobody, allowed.headers(keys))
    assert response.status_code == 404, response.text
    problem: dict[str, Any] = response.json()
    problem["detail"] = problem["detail"].replace(str(nobody.id), "<id>")
    return problem
