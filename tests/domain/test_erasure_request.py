"""The four-eyes erasure request: requested by one person, approved by a second one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from domain.acts import Act
from domain.erasure import (
    ErasureRequest,
    ErasureRequestDecided,
    SelfApproval,
)
from domain.errors import BusinessTimeBeforeFact, InvalidValue

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CASE = UUID("6f1c8a52-8d37-4c1e-9a51-0d6a1f7b2c10")


def act(by: str, minutes: int = 0) -> Act:
    at = NOW + timedelta(minutes=minutes)
    return Act(by=by, at=at, recorded_at=at)


def requested(by: str = "tl-01", number: int = 1) -> ErasureRequest:
    return ErasureRequest.request(
        case_id=CASE,
        office_id="abh-musterstadt",
        number=number,
        legal_ground="dsgvo-17",
        rule_id=None,
        case_version=7,
        act=act(by),
    )


def test_a_request_names_the_file_the_ground_and_the_requester() -> None:
    request = requested()

    assert request.id == ErasureRequest.id_for(CASE, 1)
    assert (request.case_id, request.number, request.status) == (str(CASE), 1, "pending")
    assert (request.requested_by, request.requested_at) == ("tl-01", NOW)
    assert request.decided_by is None
    # Numbered ids per file: the second request of the same file has another id.
    assert ErasureRequest.id_for(CASE, 2) != request.id
    assert ErasureRequest.id_for(uuid4(), 1) != request.id


def test_a_second_person_approves() -> None:
    request = requested()

    request.approve(act("dsb-01", 5))

    assert (request.status, request.decided_by) == ("approved", "dsb-01")
    assert request.decided_at == NOW + timedelta(minutes=5)
    kinds = [type(event).__name__ for event in request.collect_events()]
    assert kinds == ["Requested", "Approved"]


def test_approving_ones_own_request_is_refused_and_records_nothing() -> None:
    request = requested(by="dsb-02")
    request.collect_events()

    with pytest.raises(SelfApproval, match="another person"):
        request.approve(act("dsb-02", 5))

    assert request.pending
    assert request.collect_events() == []


def test_a_decided_request_takes_no_further_decision() -> None:
    approved = requested()
    approved.approve(act("dsb-01", 1))
    with pytest.raises(ErasureRequestDecided):
        approved.approve(act("dsb-03", 2))
    with pytest.raises(ErasureRequestDecided):
        approved.withdraw(act("tl-01", 2))

    withdrawn = requested()
    withdrawn.withdraw(act("tl-01", 1))
    assert (withdrawn.status, withdrawn.decided_by) == ("withdrawn", "tl-01")
    with pytest.raises(ErasureRequestDecided):
        withdrawn.approve(act("dsb-01", 2))


def test_a_decision_cannot_precede_the_request() -> None:
    request = requested()

    with pytest.raises(BusinessTimeBeforeFact):
        request.approve(act("dsb-01", -1))
    with pytest.raises(BusinessTimeBeforeFact):
        request.withdraw(act("tl-01", -1))
    assert request.pending


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("legal_ground", {"legal_ground": "weil"}),
        ("rule_id", {"rule_id": "Keine Regel"}),
        ("number", {"number": 0}),
    ],
)
def test_malformed_requests_are_refused(field: str, changes: dict[str, object]) -> None:
    given: dict[str, object] = {
        "case_id": CASE,
        "office_id": "abh-musterstadt",
        "number": 1,
        "legal_ground": "aufenthg-91",
        "rule_id": "died-5y",
        "case_version": 3,
        "act": act("tl-01"),
    }
    given.update(changes)
    with pytest.raises(InvalidValue) as refused:
        ErasureRequest.request(**given)  # type: ignore[arg-type]
    assert refused.value.field == field


def test_the_state_is_replayed_from_the_events() -> None:
    request = requested()
    request.approve(act("dsb-01", 3))
    events = request.collect_events()

    replayed: ErasureRequest | None = None
    for event in events:
        replayed = event.mutate(replayed)

    assert replayed is not None
    assert (replayed.status, replayed.requested_by, replayed.decided_by) == (
        "approved",
        "tl-01",
        "dsb-01",
    )
    assert replayed.legal_ground == "dsgvo-17"
