"""Read model "what did the office do in a year": the facts behind the yearly report.

Every figure of the head of office's yearly report is counted once, by the event that
makes it true, in the year of that event's business time (``at``) as a calendar date in
Europe/Berlin: a decision recorded at 23:30 UTC on 31 December belongs to the next year.
Each counted event is a row of ``statistics_facts`` (the drill-down: case reference,
event, time, actor); totals of those rows by month, channel, legal basis and days to
decision are kept beside them in the same transaction, so reading a year's report is a
handful of small reads, whatever the length of the history.

Figures (``figure`` column) and the event that counts them:

- ``case_files_opened``: ``CaseFile.Opened``;
- ``procedures_received``: ``ProcedureReceived`` (channel, legal basis given at receipt);
- ``procedures_processed``: ``ProcedureDecided`` (kind: the outcome; channel of the
  receipt; the decision's legal basis, else the one given at receipt; days from the
  Berlin-local date of receipt to that of the decision);
- ``procedures_transferred_open``: a procedure still undecided when its file is
  transferred to another office (``TransferredToOffice``): it leaves this office's
  backlog; unless the other office returns the hand-over (``HandOverReturned``): the
  file never left, and the facts of that transfer go again (in whatever year);
- ``residence_documents_issued``: ``ResidenceDocumentIssued`` (kind: eat, duldung,
  aufenthaltsgestattung); ``residence_documents_extended``: ``ResidenceDocumentExtended``;
  ``residence_documents_transferred``: ``EatTransferredToNewPassport`` (Übertrag: the
  same title on a new card, not a new document);
- ``fiction_certificates_issued``: ``FictionCertificateIssued`` (kind: §81 paragraph);
  ``fiction_certificates_extended``: ``FictionCertificateExtended``;
- ``entry_procedures``: ``EntryProcedureRequested``; ``entry_consents``: consents by
  how they came about, so far kind ``deemed``: ``EntryConsentDeemedGiven`` (the office's
  silence, § 31 Abs. 1 AufenthV; legal basis of the request);
- ``integration_course_entitlements`` / ``integration_course_obligations``: the events of
  §44 / §44a AufenthG;
- ``inquiries_received`` / ``inquiries_answered`` (kind: civil_registry, naturalisation);
- ``commitment_declarations``: ``CommitmentDeclaration.SignedAndHandedOver``;
- ``commitment_fees_paid``: ``FeePaid`` (amount in cents), ``commitment_fees_refunded``:
  ``PaymentRefunded`` of the payment that had paid the fee;
- ``appointments_served``: ``Appointment.Attended``; ``appointment_no_shows``:
  ``Appointment.NoShow``; both in the year and month of the appointment's day
  (:data:`APPOINTMENT_DAYS`, from ``Appointment.Booked``), not of the day it was recorded.

Customers are the distinct persons served in a year, by any channel. A fact that serves
a person names them in ``customer``: the case file's id (``c:<id>``), for an appointment
without a case file the booking's person key (``p:<key>``, a keyed pseudonym, never the
identity itself), for a commitment declaration the declaration (``d:<id>``: guarantors
have no file). Serving facts are those of procedures received and decided, documents and
Fiktionsbescheinigungen issued and extended, eATs moved to a new passport, appointments
attended and declarations handed over; not inquiries (they come from authorities), entry
procedures (the person is abroad) or the office's own bookkeeping (files opened,
procedures left open on transfer).
A totals table by (office, year, customer) makes the distinct count one small read.

Nothing here is personal data: case references are file numbers, actors are staff ids.
Commitment declarations and appointments have no file number; their rows name the
declaration's or appointment's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final
from zoneinfo import ZoneInfo

from domain.appointments import Appointment
from domain.case_file import CaseFile
from domain.commitment_declaration import CommitmentDeclaration
from projections.projection import (
    CaseRows,
    Handler,
    Projection,
    Table,
    Totals,
    case_file_opener,
    handlers,
)

NAME: Final = "statistics"
OFFICE_TIME_ZONE: Final = ZoneInfo("Europe/Berlin")
NOT_APPLICABLE: Final = ""
"""Kind, channel or legal basis of a fact that has none (totals group by them)."""
NO_DAYS: Final = -1


@dataclass
class FactRow:
    """One event counted by one figure."""

    case_id: str
    office_id: str
    reference: str
    figure: str
    item: int
    """Which procedure, document, certificate ... of the file (its number), or the
    event's version where a file may have many such facts about one thing."""
    year: int
    month: int
    at: datetime
    event: str
    """The event class, e.g. ``ProcedureDecided``."""
    version: int
    """The event's version in its case file (or declaration)."""
    actor: str
    kind: str
    channel: str
    legal_basis: str
    days: int
    """Days from receipt to decision (procedures processed), else -1."""
    amount_cents: int
    customer: str
    """Whom the fact served (see the module docstring), or ``""``."""


FACTS = Table(
    f"{NAME}_facts",
    FactRow,
    key=("figure", "item"),
    indexes=(("office_id", "year", "figure", "at"),),
    totals=(
        Totals(
            f"{NAME}_facts_monthly",
            group_by=("office_id", "year", "month", "figure", "kind"),
            sums=("amount_cents",),
        ),
        Totals(f"{NAME}_facts_channels", group_by=("office_id", "year", "figure", "channel")),
        Totals(f"{NAME}_facts_bases", group_by=("office_id", "year", "figure", "legal_basis")),
        Totals(f"{NAME}_facts_days", group_by=("office_id", "year", "figure", "days")),
        Totals(f"{NAME}_facts_customers", group_by=("office_id", "year", "customer")),
    ),
)


@dataclass
class AppointmentDayRow:
    """The day at the counter of a booked appointment: its attendance or no-show counts
    in that day's year and month, whenever it was recorded (a no-show of 31 December is
    often recorded on 2 January)."""

    case_id: str
    office_id: str
    reference: str
    day: date


APPOINTMENT_DAYS = Table(f"{NAME}_appointment_days", AppointmentDayRow)

NO_CUSTOMER: Final = ""
_CUSTOMER_FIGURES: Final = frozenset(
    {
        "procedures_received",
        "procedures_processed",
        "residence_documents_issued",
        "residence_documents_extended",
        "residence_documents_transferred",
        "fiction_certificates_issued",
        "fiction_certificates_extended",
        "commitment_declarations",
    }
)
"""Case-file and declaration figures whose facts serve a person (appointments name
theirs themselves)."""


def local_date_parts(at: datetime) -> tuple[int, int]:
    """The office's calendar year and month of a business time."""
    local = at.astimezone(OFFICE_TIME_ZONE)
    return local.year, local.month


def _fact(
    case: CaseRows,
    event: CaseFile.Event | CommitmentDeclaration.Event | Appointment.Event,
    figure: str,
    item: int,
    *,
    kind: str = NOT_APPLICABLE,
    channel: str = NOT_APPLICABLE,
    legal_basis: str | None = None,
    days: int = NO_DAYS,
    amount_cents: int = 0,
    customer: str | None = None,
    counted_on: date | None = None,
) -> FactRow:
    """``counted_on``: the day whose year and month count the fact where that is not the
    day of the event (a consent deemed given counts on the day its period ended, not on
    the day the tick noticed it)."""
    if customer is None:
        customer = NO_CUSTOMER
        if figure in _CUSTOMER_FIGURES:
            prefix = "d" if isinstance(event, CommitmentDeclaration.Event) else "c"
            customer = f"{prefix}:{case.case_id}"
    year, month = (
        (counted_on.year, counted_on.month)
        if counted_on is not None
        else local_date_parts(event.at)
    )
    row = FactRow(
        case_id=case.case_id,
        office_id=case.office_id,
        reference=case.reference,
        figure=figure,
        item=item,
        year=year,
        month=month,
        at=event.at,
        event=type(event).__name__,
        version=event.originator_version,
        actor=event.by,
        kind=kind,
        channel=channel,
        legal_basis=legal_basis or NOT_APPLICABLE,
        days=days,
        amount_cents=amount_cents,
        customer=customer,
    )
    case.put(FACTS, row)
    return row


def _opened(case: CaseRows, event: CaseFile.Opened) -> None:
    _fact(case, event, "case_files_opened", event.originator_version)


def _procedure_received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    _fact(
        case,
        event,
        "procedures_received",
        event.procedure_number,
        channel=event.channel,
        legal_basis=event.legal_basis,
    )


def _procedure_decided(case: CaseRows, event: CaseFile.ProcedureDecided) -> None:
    received = case.get(FACTS, "procedures_received", event.procedure_number)
    channel = received.channel if received is not None else NOT_APPLICABLE
    legal_basis = event.legal_basis or (received.legal_basis if received is not None else None)
    days = NO_DAYS
    if received is not None:
        days = (
            event.at.astimezone(OFFICE_TIME_ZONE).date()
            - received.at.astimezone(OFFICE_TIME_ZONE).date()
        ).days
    _fact(
        case,
        event,
        "procedures_processed",
        event.procedure_number,
        kind=event.outcome,
        channel=channel,
        legal_basis=legal_basis,
        days=days,
    )


def _transferred(case: CaseRows, event: CaseFile.TransferredToOffice) -> None:
    decided = {
        row.item
        for row in case.rows(FACTS)
        if row.figure in ("procedures_processed", "procedures_transferred_open")
    }
    for row in case.rows(FACTS):
        if row.figure == "procedures_received" and row.item not in decided:
            _fact(
                case,
                event,
                "procedures_transferred_open",
                row.item,
                channel=row.channel,
                legal_basis=row.legal_basis,
            )


def _hand_over_returned(case: CaseRows, event: CaseFile.HandOverReturned) -> None:
    # The transfer did not happen after all: what it counted as leaving did not leave.
    for row in case.rows(FACTS):
        if row.figure == "procedures_transferred_open":
            case.remove(FACTS, row.figure, row.item)


def _residence_document_issued(case: CaseRows, event: CaseFile.ResidenceDocumentIssued) -> None:
    _fact(
        case,
        event,
        "residence_documents_issued",
        event.residence_document_number,
        kind=event.kind,
        legal_basis=event.legal_basis,
    )


def _residence_document_extended(case: CaseRows, event: CaseFile.ResidenceDocumentExtended) -> None:
    issued = case.get(FACTS, "residence_documents_issued", event.residence_document_number)
    _fact(
        case,
        event,
        "residence_documents_extended",
        event.originator_version,
        kind=issued.kind if issued is not None else NOT_APPLICABLE,
        legal_basis=issued.legal_basis if issued is not None else None,
    )


def _eat_transferred(case: CaseRows, event: CaseFile.EatTransferredToNewPassport) -> None:
    issued = case.get(FACTS, "residence_documents_issued", event.residence_document_number)
    _fact(
        case,
        event,
        "residence_documents_transferred",
        event.originator_version,
        kind=issued.kind if issued is not None else NOT_APPLICABLE,
        legal_basis=issued.legal_basis if issued is not None else None,
    )


def _fiction_certificate_issued(case: CaseRows, event: CaseFile.FictionCertificateIssued) -> None:
    _fact(case, event, "fiction_certificates_issued", event.certificate_number, kind=event.kind)


def _fiction_certificate_extended(
    case: CaseRows, event: CaseFile.FictionCertificateExtended
) -> None:
    issued = case.get(FACTS, "fiction_certificates_issued", event.certificate_number)
    _fact(
        case,
        event,
        "fiction_certificates_extended",
        event.originator_version,
        kind=issued.kind if issued is not None else NOT_APPLICABLE,
    )


def _entry_procedure(case: CaseRows, event: CaseFile.EntryProcedureRequested) -> None:
    _fact(
        case,
        event,
        "entry_procedures",
        event.entry_procedure_number,
        legal_basis=event.legal_basis,
    )


def _entry_consent_deemed(case: CaseRows, event: CaseFile.EntryConsentDeemedGiven) -> None:
    requested = case.get(FACTS, "entry_procedures", event.entry_procedure_number)
    _fact(
        case,
        event,
        "entry_consents",
        event.entry_procedure_number,
        kind="deemed",
        legal_basis=requested.legal_basis if requested is not None else None,
        # The report counts it in the year the period ended (its figure says so), also
        # when the tick records it on 1 January for a period that ended on 31 December.
        counted_on=event.period_ended_on,
    )


def _entitlement(case: CaseRows, event: CaseFile.IntegrationCourseEntitlementIssued) -> None:
    _fact(
        case,
        event,
        "integration_course_entitlements",
        event.originator_version,
        legal_basis=event.legal_basis,
    )


def _obligation(case: CaseRows, event: CaseFile.IntegrationCourseObligationImposed) -> None:
    _fact(
        case,
        event,
        "integration_course_obligations",
        event.originator_version,
        legal_basis=event.legal_basis,
    )


def _inquiry_received(case: CaseRows, event: CaseFile.InquiryReceived) -> None:
    _fact(case, event, "inquiries_received", event.inquiry_number, kind=event.kind)


def _inquiry_answered(case: CaseRows, event: CaseFile.InquiryAnswered) -> None:
    received = case.get(FACTS, "inquiries_received", event.inquiry_number)
    kind = received.kind if received is not None else NOT_APPLICABLE
    _fact(case, event, "inquiries_answered", event.inquiry_number, kind=kind)


def _declaration_opened(event: CommitmentDeclaration.Submitted) -> tuple[str, str]:
    return event.office_id, ""


def _declaration_handed_over(
    declaration: CaseRows, event: CommitmentDeclaration.SignedAndHandedOver
) -> None:
    _fact(declaration, event, "commitment_declarations", 1)


def _fee_paid(declaration: CaseRows, event: CommitmentDeclaration.FeePaid) -> None:
    _fact(
        declaration,
        event,
        "commitment_fees_paid",
        event.payment_number,
        amount_cents=event.amount_cents,
    )


def _payment_refunded(declaration: CaseRows, event: CommitmentDeclaration.PaymentRefunded) -> None:
    if declaration.get(FACTS, "commitment_fees_paid", event.payment_number) is None:
        return  # a surplus payment paid back: it was never counted as a fee
    _fact(
        declaration,
        event,
        "commitment_fees_refunded",
        event.payment_number,
        amount_cents=event.amount_cents,
    )


def _appointment_opened(event: Appointment.Booked) -> tuple[str, str]:
    return event.office_id, ""


def _appointment_booked(appointment: CaseRows, event: Appointment.Booked) -> None:
    # starts_at is in the service point's local time: its date is the day at the counter.
    appointment.put(
        APPOINTMENT_DAYS,
        AppointmentDayRow(
            appointment.case_id,
            appointment.office_id,
            appointment.reference,
            event.starts_at.date(),
        ),
    )


def _appointment_day(appointment: CaseRows) -> date:
    row = appointment.get(APPOINTMENT_DAYS)
    assert row is not None  # put by the Booked event that opened the appointment
    return row.day


def _appointment_customer(event: Appointment.Attended | Appointment.NoShow) -> str:
    return f"c:{event.case_id}" if event.case_id else f"p:{event.person_key}"


def _attended(appointment: CaseRows, event: Appointment.Attended) -> None:
    _fact(
        appointment,
        event,
        "appointments_served",
        event.originator_version,
        kind=event.appointment_type,
        legal_basis=event.legal_basis,
        customer=_appointment_customer(event),
        counted_on=_appointment_day(appointment),
    )


def _no_show(appointment: CaseRows, event: Appointment.NoShow) -> None:
    # A person who did not come was not served: no customer.
    _fact(
        appointment,
        event,
        "appointment_no_shows",
        event.originator_version,
        kind=event.appointment_type,
        legal_basis=event.legal_basis,
        customer=NO_CUSTOMER,
        counted_on=_appointment_day(appointment),
    )


_HANDLERS: Final[tuple[tuple[type[object], Handler], ...]] = (
    (CaseFile.Opened, _opened),
    (CaseFile.ProcedureReceived, _procedure_received),
    (CaseFile.ProcedureDecided, _procedure_decided),
    (CaseFile.TransferredToOffice, _transferred),
    # A new event: no stored history counts differently, so the version stays.
    (CaseFile.HandOverReturned, _hand_over_returned),
    (CaseFile.ResidenceDocumentIssued, _residence_document_issued),
    (CaseFile.ResidenceDocumentExtended, _residence_document_extended),
    (CaseFile.EatTransferredToNewPassport, _eat_transferred),
    (CaseFile.FictionCertificateIssued, _fiction_certificate_issued),
    (CaseFile.FictionCertificateExtended, _fiction_certificate_extended),
    (CaseFile.EntryProcedureRequested, _entry_procedure),
    (CaseFile.EntryConsentDeemedGiven, _entry_consent_deemed),
    (CaseFile.IntegrationCourseEntitlementIssued, _entitlement),
    (CaseFile.IntegrationCourseObligationImposed, _obligation),
    (CaseFile.InquiryReceived, _inquiry_received),
    (CaseFile.InquiryAnswered, _inquiry_answered),
    (CommitmentDeclaration.SignedAndHandedOver, _declaration_handed_over),
    (CommitmentDeclaration.FeePaid, _fee_paid),
    (CommitmentDeclaration.PaymentRefunded, _payment_refunded),
    (Appointment.Booked, _appointment_booked),
    (Appointment.Attended, _attended),
    (Appointment.NoShow, _no_show),
)

PROJECTION: Final = Projection(
    name=NAME,
    tables=(FACTS, APPOINTMENT_DAYS),
    handlers=handlers(*_HANDLERS),
    # 3: transfers to a new passport (Übertrag) are counted; stored histories hold them.
    # 4: a consent deemed given counts in the year and month its period ended.
    # 5: an appointment's attendance or no-show counts in the month of its day.
    version=5,
    # Closed and transferred files keep counting: what happened stays a fact.
    active_cases_only=False,
    openers={
        CaseFile.Opened: case_file_opener,
        CommitmentDeclaration.Submitted: _declaration_opened,
        Appointment.Booked: _appointment_opened,
    },
)
