"""A person with every kind of record Akte keeps about people, for the erasure tests.

:func:`build_person` makes, through the service: a case file with a correction, a note
and an uploaded letter; a contact form submission with a file, linked to the file; a
counter booking made with the file's id (its confirmation mail kept in the development
mailbox); a waitlist entry of the same person; a commitment declaration in which the
person is the invited visitor (the guarantor someone else), linked to the file. Every
value is distinctive and most have non-ASCII letters, so that a byte search in any
encoding finds them only where they are.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final
from uuid import UUID

from adapters.mail.mailbox import MailboxMailer
from adapters.settings import Settings
from domain.appointments import Person
from domain.case_file import MasterData
from domain.commitment_declaration import Guarantor, InvitedPerson
from domain.intake import ContactDetails
from service import AkteService
from service_intake import IncomingDocument
from tests.support.appointments import OFFICE, POINT, STUDENT, local, proof, set_up

SURNAME: Final = "Żółkiewska-Ünal"
GIVEN_NAMES: Final = "Ksawera Øydís"
BIRTH: Final = date(1979, 11, 23)
PASSPORT: Final = "P9XQ7ZK41"
EMAIL: Final = "zolkiewska.unal.q7@example.org"
ADDRESS: Final = "Świętokrzyska 17, 12345 Musterstadt"
NOTE: Final = "Frau Żółkiewska-Ünal rief wegen Øydís an"
LETTER: Final = "Bescheid für Ksawera Øydís Żółkiewska-Ünal, Pass P9XQ7ZK41".encode()
SCAN: Final = "Reisepass P9XQ7ZK41 Żółkiewska-Ünal geb. 23.11.1979".encode()
MESSAGE: Final = "Ich, Ksawera Żółkiewska-Ünal, bitte um einen Termin (Pass P9XQ7ZK41)."
FILE_NAME: Final = "pass-żółkiewska.pdf"

PERSON_VALUES: Final = (
    SURNAME,
    "Żółkiewska",
    "Ksawera",
    "Øydís",
    PASSPORT,
    EMAIL,
    "Świętokrzyska",
    BIRTH.isoformat(),
    f"{BIRTH:%d.%m.%Y}",
    FILE_NAME,
)
"""What must not be found anywhere after the erasure."""

GUARANTOR: Final = Guarantor(
    surname="Brzęczyszczykiewicz",
    given_names="Grzegorz",
    date_of_birth=date(1961, 4, 9),
    address="Hauptstraße 99, 12345 Musterstadt",
    nationality="POL",
    id_document_number="L77GX3T92",
)
GUARANTOR_VALUES: Final = (GUARANTOR.surname, GUARANTOR.id_document_number)
"""The guarantor's data: stays (readable) when the visitor is erased."""
MONDAY: Final = date(2024, 3, 11)
"""The booking's day; the test clock starts on Monday 4 March 2024."""


@dataclass(frozen=True)
class PersonRecords:
    case_id: UUID
    version: int
    submission_id: UUID
    appointment_id: UUID
    waitlist_entry_id: UUID
    declaration_id: UUID


def _document(data: bytes, *, name: str = "", kind: str = "letter") -> IncomingDocument:
    return IncomingDocument(
        content=io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        media_type="application/pdf",
        page_count=1,
        name=name,
        kind=kind,
    )


def build_person(service: AkteService, settings: Settings) -> PersonRecords:
    """The person's records (see the module docstring); mails go to the settings' mailbox."""
    set_up(service, MailboxMailer(settings.mailbox_directory, sender="termine@example.org"))
    master = MasterData(SURNAME, GIVEN_NAMES, BIRTH, "POL", PASSPORT, ADDRESS)
    opened = service.open_case(office_id=OFFICE, master_data=master, by="sb-01")
    case_id, version = opened.case_id, opened.version
    version = service.add_note(case_id, expected_version=version, by="sb-01", text=NOTE).version
    version = service.intake.upload_document(
        case_id,
        expected_version=version,
        by="sb-01",
        document=_document(LETTER),
        source="caseworker",
    ).version
    sent = service.intake.submit_contact_form(
        office_id=OFFICE,
        topic="extend_residence_permit",
        message=MESSAGE,
        contact=ContactDetails(SURNAME, GIVEN_NAMES, EMAIL, BIRTH),
        files=[_document(SCAN, name=FILE_NAME, kind="contact_form")],
    )
    service.intake.link_submission_to_case(
        sent.submission_id, expected_version=sent.version, by="sb-01", case_id=case_id
    )
    person = Person(SURNAME, GIVEN_NAMES, BIRTH, EMAIL, "+48 601 555 017")
    booked = service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=local(MONDAY, 9),
        situation=STUDENT,
        person=person,
        proof=None,
        origin="office",
        case_id=case_id,
        by="sb-01",
    )
    joined = service.appointments.join_waitlist(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        situation=STUDENT,
        person=person,
        proof=proof(service),
        by="public",
    )
    today = service.clock().date()
    declared = service.declarations.submit_commitment_declaration(
        office_id=OFFICE,
        guarantor=GUARANTOR,
        invited_person=InvitedPerson(SURNAME, GIVEN_NAMES, BIRTH, "POL", PASSPORT),
        purpose="medical_treatment",
        stay_from=today + timedelta(days=30),
        stay_until=today + timedelta(days=40),
        monthly_net_income_cents=410_000,
        assets_cents=None,
    )
    service.declarations.link_declaration_to_case(
        declared.declaration_id, expected_version=declared.version, by="sb-01", case_id=case_id
    )
    return PersonRecords(
        case_id=case_id,
        version=version,
        submission_id=sent.submission_id,
        appointment_id=booked.appointment_id,
        waitlist_entry_id=joined.appointment_id,
        declaration_id=declared.declaration_id,
    )


def erase(service: AkteService, records: PersonRecords) -> None:
    """Erase the person through the service (not a route: the approval flow around it is
    not what these tests are about)."""
    service.data_protection.erase_personal_data(
        records.case_id,
        expected_version=service.case_head_version(records.case_id),
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-02",
    )
