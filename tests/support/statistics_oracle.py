"""The yearly figures by a naive count over the raw event list: the oracle for reports.

It reads every event of the store in log order, keeps what it needs in plain dicts and
counts by the definitions of the yearly report (``../shared/DESIGN.md``, issue 6), with
no shortcut and no read model, so that the simulator's ground truth and the statistics
read model can both be checked against it. The year of a fact is the calendar year of
the event's business time ``at`` in Europe/Berlin.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.appointments import Appointment
from domain.case_file import CaseFile
from domain.commitment_declaration import CommitmentDeclaration
from service import AkteService

BERLIN: Final = ZoneInfo("Europe/Berlin")
PAGE: Final = 1000
KINDS: Final = ("eat", "duldung", "aufenthaltsgestattung")
CHANNELS: Final = ("appointment", "contact_form", "mail", "online_application")
DIGITAL: Final = ("contact_form", "online_application")
OUTCOMES: Final = ("granted", "refused", "withdrawn")


@dataclass
class _Procedure:
    channel: str
    legal_basis: str | None
    received_at: datetime
    decided_at: datetime | None = None


def all_events(service: AkteService) -> list[Any]:
    """Every event in the store, in the order of the log."""
    events: list[Any] = []
    position = 0
    while True:
        notifications = service.recorder.select_notifications(
            start=position, limit=PAGE, inclusive_of_start=False
        )
        events.extend(service.mapper.to_domain_event(n) for n in notifications)
        if len(notifications) < PAGE:
            return events
        position = notifications[-1].id


def berlin_year(at: datetime) -> int:
    return at.astimezone(BERLIN).year


def berlin_date(at: datetime) -> date:
    return at.astimezone(BERLIN).date()


def nearest_rank(values: list[int], percent: int) -> int | None:
    """The smallest value v such that at least ``percent`` % of the values are <= v."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[math.ceil(percent * len(ordered) / 100) - 1]


def median(values: list[int]) -> float | None:
    """The middle value, or the mean of the two middle values for an even count."""
    return float(statistics.median(values)) if values else None


def naive_figures(service: AkteService, office_id: str, year: int) -> dict[str, Any]:
    """Every figure of the yearly report for ``office_id`` and ``year``, counted naively."""
    offices: dict[UUID, str] = {}
    appointment_years: dict[UUID, int] = {}
    transferred_at: dict[UUID, datetime] = {}
    procedures: dict[tuple[UUID, int], _Procedure] = {}
    inquiry_kinds: dict[tuple[UUID, int], str] = {}
    documents: Counter[str] = Counter()
    received: Counter[str] = Counter()
    processed_channels: Counter[str] = Counter()
    processed_outcomes: Counter[str] = Counter()
    processed_bases: Counter[str] = Counter()
    days: list[int] = []
    counts: Counter[str] = Counter()
    fees_cents = 0
    customers: set[str] = set()
    served_kinds = (
        CaseFile.ProcedureReceived,
        CaseFile.ProcedureDecided,
        CaseFile.ResidenceDocumentIssued,
        CaseFile.ResidenceDocumentExtended,
        CaseFile.EatTransferredToNewPassport,  # Übertrag: the person came for the new card
        CaseFile.FictionCertificateIssued,
        CaseFile.FictionCertificateExtended,
    )

    for event in all_events(service):
        if isinstance(event, Appointment.Event):
            if isinstance(event, Appointment.Booked):
                offices[event.originator_id] = event.office_id
                # Counted in the year of the day at the counter, not of the recording.
                appointment_years[event.originator_id] = event.starts_at.year
            if (
                offices.get(event.originator_id) != office_id
                or appointment_years[event.originator_id] != year
            ):
                continue
            if isinstance(event, Appointment.Attended):
                counts["appointments_served"] += 1
                customers.add(f"c:{event.case_id}" if event.case_id else f"p:{event.person_key}")
            elif isinstance(event, Appointment.NoShow):
                counts["appointment_no_shows"] += 1
            continue
        if isinstance(event, CommitmentDeclaration.Event):
            if isinstance(event, CommitmentDeclaration.Submitted):
                offices[event.originator_id] = event.office_id
            if offices.get(event.originator_id) != office_id:
                continue
            in_year = berlin_year(event.at) == year
            if isinstance(event, CommitmentDeclaration.SignedAndHandedOver) and in_year:
                counts["commitment_declarations"] += 1
                customers.add(f"d:{event.originator_id}")
            elif isinstance(event, CommitmentDeclaration.FeePaid) and in_year:
                fees_cents += event.amount_cents
            continue
        if not isinstance(event, CaseFile.Event):
            continue  # claims on file numbers, payment transactions, submissions
        case_id = event.originator_id
        if isinstance(event, CaseFile.Opened):
            offices[case_id] = event.office_id
        if offices.get(case_id) != office_id:
            continue
        in_year = berlin_year(event.at) == year
        if in_year and isinstance(event, served_kinds):
            customers.add(f"c:{case_id}")
        if isinstance(event, CaseFile.ProcedureReceived):
            procedures[(case_id, event.procedure_number)] = _Procedure(
                event.channel, event.legal_basis, event.at
            )
            if in_year:
                received[event.channel] += 1
        elif isinstance(event, CaseFile.ProcedureDecided):
            procedure = procedures[(case_id, event.procedure_number)]
            procedure.decided_at = event.at
            if in_year:
                processed_channels[procedure.channel] += 1
                processed_outcomes[event.outcome] += 1
                processed_bases[event.legal_basis or procedure.legal_basis or ""] += 1
                days.append((berlin_date(event.at) - berlin_date(procedure.received_at)).days)
        elif isinstance(event, CaseFile.ResidenceDocumentIssued):
            if in_year:
                documents[event.kind] += 1
        elif isinstance(event, CaseFile.FictionCertificateIssued):
            counts["fiction_certificates_issued"] += in_year
        elif isinstance(event, CaseFile.FictionCertificateExtended):
            counts["fiction_certificates_extended"] += in_year
        elif isinstance(event, CaseFile.EntryProcedureRequested):
            counts["entry_procedures"] += in_year
        elif isinstance(event, CaseFile.IntegrationCourseEntitlementIssued):
            counts["integration_course_entitlements"] += in_year
        elif isinstance(event, CaseFile.IntegrationCourseObligationImposed):
            counts["integration_course_obligations"] += in_year
        elif isinstance(event, CaseFile.InquiryReceived):
            inquiry_kinds[(case_id, event.inquiry_number)] = event.kind
        elif isinstance(event, CaseFile.InquiryAnswered):
            if in_year:
                kind = inquiry_kinds[(case_id, event.inquiry_number)]
                counts[f"{kind}_inquiries"] += 1
        elif isinstance(event, CaseFile.TransferredToOffice):
            transferred_at[case_id] = event.at
        elif isinstance(event, CaseFile.HandOverReturned):
            # The other office returned the hand-over: the file never left.
            transferred_at.pop(case_id, None)

    def open_at_year_end(case_id: UUID, procedure: _Procedure) -> bool:
        if berlin_year(procedure.received_at) > year:
            return False
        if procedure.decided_at is not None and berlin_year(procedure.decided_at) <= year:
            return False
        moved = transferred_at.get(case_id)
        return moved is None or berlin_year(moved) > year

    processed = sum(processed_outcomes.values())
    appointments = counts["appointments_served"] + counts["appointment_no_shows"]
    digital = sum(processed_channels[channel] for channel in DIGITAL)
    return {
        "year": year,
        "office_id": office_id,
        "appointments_served": counts["appointments_served"],
        "customers": len(customers),
        "no_show_rate": (
            round(100 * counts["appointment_no_shows"] / appointments, 1) if appointments else None
        ),
        "residence_documents_issued": {
            "total": sum(documents.values()),
            "by_kind": {kind: documents[kind] for kind in KINDS},
        },
        "fiction_certificates_issued": counts["fiction_certificates_issued"],
        "fiction_certificates_extended": counts["fiction_certificates_extended"],
        "procedures_received": {
            "total": sum(received.values()),
            "by_channel": {channel: received[channel] for channel in CHANNELS},
        },
        "procedures_processed": {
            "total": processed,
            "digital": digital,
            "digital_share": digital / processed if processed else None,
            "by_channel": {channel: processed_channels[channel] for channel in CHANNELS},
            "by_outcome": {outcome: processed_outcomes[outcome] for outcome in OUTCOMES},
            "by_legal_basis": {basis: processed_bases[basis] for basis in sorted(processed_bases)},
        },
        "entry_procedures": counts["entry_procedures"],
        "integration_course_entitlements": counts["integration_course_entitlements"],
        "integration_course_obligations": counts["integration_course_obligations"],
        "commitment_declarations": counts["commitment_declarations"],
        "commitment_fees_cents": fees_cents,
        "civil_registry_inquiries": counts["civil_registry_inquiries"],
        "naturalisation_inquiries": counts["naturalisation_inquiries"],
        "backlog_at_year_end": sum(
            open_at_year_end(case_id, procedure)
            for (case_id, _number), procedure in procedures.items()
        ),
        "days_to_decision_median": median(days),
        "days_to_decision_p90": nearest_rank(days, 90),
    }
