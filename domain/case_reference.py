"""File numbers (Aktenzeichen) are unique within an office.

A :class:`CaseReference` aggregate's id is derived from office and file number, and it is
saved in the same transaction as the case file it names: a second case file with the same
number conflicts on that id, so uniqueness needs no lock and no lookup table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.values import LawfulEvent

_NAMESPACE: Final = UUID("6f1d3c9e-5a0b-4a53-9d0c-2b7f8e4a1c11")


class CaseReference(Aggregate):
    """Claims one file number in one office for one case file."""

    def __init__(self) -> None:
        self.case_id: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Claimed(Event, Aggregate.Created):
        office_id: str
        reference: str
        case_id: str

        def apply(self, claim: CaseReference) -> None:
            claim.case_id = self.case_id

    @staticmethod
    def id_for(office_id: str, reference: str) -> UUID:
        return uuid5(_NAMESPACE, f"{office_id}/{reference}")

    @classmethod
    def claim(cls, *, office_id: str, reference: str, case_id: UUID, act: Act) -> CaseReference:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(office_id, reference),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            reference=reference,
            case_id=str(case_id),
        )
