"""Read model "what did the office's automatic channels do": counts for monitoring.

How many appointment mails the office's mail server took (``MailSent``), refused or
could not be reached for (``MailFailed``, one per failed attempt), and how many came back
afterwards (``MailBounced``); how many payment reports of the payment platform were
recorded, by outcome (``FeePaid``: ``paid``, ``SurplusPaymentReceived``: ``surplus``,
``PaymentFailed``: ``failed``, ``PaymentExpired``: ``expired``); how many case files had
their person's data erased (``PersonalDataErased``), by legal ground.

They are counted from the log, so every process's work counts (the server's, the
appointment tick's, an erasure from the command line) and the figures survive restarts:
``/metrics`` exports them as ``akte_mails_total``,
``akte_payment_notifications_recorded_total`` and ``akte_erasures_total``
(:mod:`adapters.monitoring.metrics`). A row per record and outcome holds its count; the
engine keeps the sums per figure and outcome beside them, so a scrape is one small read.

No personal data: outcomes are fixed words, legal grounds codes
(:data:`domain.erasure.ERASURE_GROUNDS`).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from domain.appointments import Appointment
from domain.case_file import CaseFile
from domain.commitment_declaration import CommitmentDeclaration
from projections.projection import (
    CaseRows,
    Projection,
    Table,
    Totals,
    case_file_opener,
    handlers,
    on,
)
from projections.storage import ViewsStore

NAME: Final = "monitoring_counts"

MAILS: Final = "mails"
PAYMENT_NOTIFICATIONS: Final = "payment_notifications"
ERASURES: Final = "erasures"
MAIL_OUTCOMES: Final = ("sent", "failed", "bounced")
PAYMENT_OUTCOMES: Final = ("paid", "surplus", "failed", "expired")


@dataclass
class CountRow:
    case_id: str
    """The record's id: appointment, commitment declaration or case file."""
    office_id: str
    reference: str
    figure: str
    """``mails``, ``payment_notifications`` or ``erasures``."""
    outcome: str
    events: int


TOTALS: Final = f"{NAME}_events_totals"
EVENTS: Final = Table(
    f"{NAME}_events",
    CountRow,
    key=("figure", "outcome"),
    totals=(Totals(TOTALS, ("figure", "outcome"), sums=("events",)),),
)


def _count(figure: str, outcome: str, record: CaseRows) -> None:
    row = record.get(EVENTS, figure, outcome)
    if row is None:
        row = CountRow(record.case_id, record.office_id, record.reference, figure, outcome, 0)
    row.events += 1
    record.put(EVENTS, row)


def _counter(figure: str, outcome: str) -> Callable[[CaseRows, object], None]:
    def handle(record: CaseRows, _event: object) -> None:
        _count(figure, outcome, record)

    return handle


def _erased(case: CaseRows, event: CaseFile.PersonalDataErased) -> None:
    _count(ERASURES, event.legal_ground, case)


def _appointment_opened(event: Appointment.Booked) -> tuple[str, str]:
    return event.office_id, ""


def _declaration_opened(event: CommitmentDeclaration.Submitted) -> tuple[str, str]:
    return event.office_id, ""


PROJECTION: Final = Projection(
    name=NAME,
    tables=(EVENTS,),
    handlers=handlers(
        on(Appointment.MailSent, _counter(MAILS, "sent")),
        on(Appointment.MailFailed, _counter(MAILS, "failed")),
        on(Appointment.MailBounced, _counter(MAILS, "bounced")),
        on(CommitmentDeclaration.FeePaid, _counter(PAYMENT_NOTIFICATIONS, "paid")),
        on(
            CommitmentDeclaration.SurplusPaymentReceived,
            _counter(PAYMENT_NOTIFICATIONS, "surplus"),
        ),
        on(CommitmentDeclaration.PaymentFailed, _counter(PAYMENT_NOTIFICATIONS, "failed")),
        on(CommitmentDeclaration.PaymentExpired, _counter(PAYMENT_NOTIFICATIONS, "expired")),
        on(CaseFile.PersonalDataErased, _erased),
    ),
    # Counts of what happened: a closed or transferred file's erasure counts too.
    active_cases_only=False,
    openers=types.MappingProxyType(
        {
            CaseFile.Opened: case_file_opener,
            Appointment.Booked: _appointment_opened,
            CommitmentDeclaration.Submitted: _declaration_opened,
        }
    ),
)


# ---------------------------------------------------------------------- queries


def event_counts(views: ViewsStore) -> dict[tuple[str, str], int]:
    """Events counted so far, by figure and outcome (outcomes never seen are absent).

    Raises :class:`projections.errors.ViewNotBuilt` before the read model's first run."""
    with views.reader() as session:
        rows = session.fetch(f"SELECT figure, outcome, events FROM {session.table(TOTALS)}")
    return {(str(figure), str(outcome)): int(events) for figure, outcome, events in rows}
