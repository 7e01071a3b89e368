"""Case files whose person has values found nowhere else, to search messages for them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Final
from uuid import uuid4

from domain.acts import Act
from domain.case_file import CaseFile, MasterData

OFFICE: Final = "abh-musterstadt"
OTHER_OFFICE: Final = "abh-nachbarstadt"
NOW: Final = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)


def person_values(tag: str) -> list[bytes]:
    """Every personal value :func:`story` writes for ``tag``, as it could appear in bytes."""
    texts = [f"Nachname{tag}", f"Vorname{tag}", f"P{tag.upper()}", f"Weg {tag}", f"Grund{tag}"]
    texts += [f"Umzug{tag}", f"Notiz{tag}"]
    return [text.encode() for text in texts] + [b"1977-07-07"]


def story(n: int, tag: str, office: str = OFFICE) -> CaseFile:
    """Opened in ``office``, a procedure received, refused with a reason, closed; a note;
    transferred (to the other office) with a reason: 6 events, 5 of them of the default
    allow-list."""
    act = Act(by="sb-01", at=NOW, recorded_at=NOW)
    case = CaseFile.open(
        case_id=uuid4(),
        office_id=office,
        reference=f"2024-O{n:06d}",
        master_data=MasterData(
            f"Nachname{tag}",
            f"Vorname{tag}",
            date(1977, 7, 7),
            "SYR",
            f"P{tag.upper()}",
            f"Weg {tag}",
        ),
        act=act,
    )
    number = case.receive_procedure(channel="mail", topic="blue_card", legal_basis=None, act=act)
    case.decide_procedure(
        procedure_number=number, outcome="refused", legal_basis=None, reason=f"Grund{tag}", act=act
    )
    case.close_procedure(procedure_number=number, act=act)
    case.add_note(text=f"Notiz{tag}", act=act)
    moved_to = OTHER_OFFICE if office != OTHER_OFFICE else OFFICE
    case.transfer_to_office(to_office_id=moved_to, reason=f"Umzug{tag}", act=act)
    return case


PUBLISHED_PER_STORY: Final = 5
"""Opened, ProcedureReceived, ProcedureDecided, ProcedureClosed, TransferredToOffice."""
