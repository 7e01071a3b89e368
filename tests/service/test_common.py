"""What the application's contexts share (service_common.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

from eventsourcing.domain import DomainEventProtocol

from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.case_reference import CaseReference
from service_common import is_domain_event

NOW = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def test_events_are_told_from_aggregates_as_the_librarys_protocol_tells_them() -> None:
    """The answer is remembered per class; it must stay the protocol's answer for every
    instance, whichever came first."""
    act = Act(by="sb-01", at=NOW, recorded_at=NOW)
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="ABH-2024-000001",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N1234567"),
        act=act,
    )
    claim = CaseReference.claim(
        office_id="abh-musterstadt", reference="ABH-2024-000001", case_id=case.id, act=act
    )
    objects: list[object] = [case, claim, *case.pending_events, *claim.pending_events, "x", 1]
    for _round in range(2):  # the second round is answered from what the first remembered
        assert [is_domain_event(obj) for obj in objects] == [
            isinstance(obj, DomainEventProtocol) for obj in objects
        ]
    assert [is_domain_event(obj) for obj in objects] == [False, False, True, True, False, False]
