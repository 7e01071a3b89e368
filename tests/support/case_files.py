"""Case files of a given length, for tests that need long or short ones."""

from __future__ import annotations

from datetime import date
from uuid import UUID

from domain.case_file import MasterData
from service import AkteService


def case_with_notes(service: AkteService, office_id: str, notes: int) -> tuple[UUID, int]:
    """A case file opened and given ``notes`` notes: its id and version (1 + ``notes``)."""
    opened = service.open_case(
        office_id=office_id,
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
        by="sb-01",
    )
    version = 1
    for number in range(notes):
        version = service.add_note(
            opened.case_id, expected_version=version, by="sb-01", text=f"Vermerk {number}"
        ).version
    return opened.case_id, version
