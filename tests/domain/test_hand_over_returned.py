"""A hand-over the other office returned: ``CaseFile.return_hand_over`` (domain/case_file.py)
and ``FileRequestAnswer.note_return`` (domain/file_transfers.py): only a file transferred
to that office comes back, once; it is active again; the return is history only on a file
that moves on later."""

from __future__ import annotations

from datetime import UTC, date, datetime
from uuid import uuid4

import pytest

from domain.acts import Act
from domain.case_file import TAKEN_OVER_WITHOUT_STATE, CaseFile, MasterData
from domain.errors import CaseFileNotActive, InvalidValue
from domain.file_transfers import FileRequestAnswer, HandOverNotReturnable
from domain.history import describe
from domain.personal import personal_fields

NOW = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
ACT = Act(by="inbox", at=NOW, recorded_at=NOW)
ANSWER_ID = "2f6c3a1e-5b4d-4e7f-8a9b-0c1d2e3f4a5b"
RETURN_ID = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"


def a_case(*, transferred_to: str | None = "abh-neu") -> CaseFile:
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-alt",
        reference="2024-000001",
        master_data=MasterData("Nowak", "Iryna", date(1990, 5, 17), "UKR", "FX1234567", None),
        act=ACT,
    )
    if transferred_to is not None:
        case.transfer_to_office(to_office_id=transferred_to, reason=None, act=ACT)
    return case


def give_back(case: CaseFile, office: str = "abh-neu", reason: str = "regel-verletzt") -> None:
    case.return_hand_over(
        to_office_id=office,
        answer_message_id=ANSWER_ID,
        return_message_id=RETURN_ID,
        reason=reason,
        hints="nachweis: version 2: page_count differs from the stored event",
        act=ACT,
    )


def test_a_returned_hand_over_makes_the_file_active_again() -> None:
    case = a_case()
    give_back(case)
    assert (case.status, case.transferred_to, case.ended_at) == ("active", None, None)
    event = case.pending_events[-1]
    assert isinstance(event, CaseFile.HandOverReturned)
    assert (event.to_office_id, event.reason) == ("abh-neu", "regel-verletzt")
    # The other office's hints are free text: sealed with the person's data.
    assert personal_fields(CaseFile.HandOverReturned) == {"hints"}
    assert "zurückgekommen" in describe(event)
    # Work goes on: the file can be handed over again.
    case.transfer_to_office(to_office_id="abh-neu", reason=None, act=ACT)
    assert case.status == "transferred"


def test_only_a_file_handed_over_to_that_office_comes_back_and_only_once() -> None:
    with pytest.raises(CaseFileNotActive):
        give_back(a_case(transferred_to=None))
    with pytest.raises(CaseFileNotActive):
        give_back(a_case(), office="abh-dritte")
    case = a_case()
    give_back(case)
    with pytest.raises(CaseFileNotActive):
        give_back(case)
    with pytest.raises(InvalidValue, match="reason"):
        give_back(a_case(), reason="keine-lust")


def test_an_answer_notes_the_return_of_its_file_once() -> None:
    def answer(outcome: str) -> FileRequestAnswer:
        return FileRequestAnswer.answer(
            office_id="abh-alt",
            requesting_office_id="abh-neu",
            request_message_id=str(uuid4()),
            answer_message_id=ANSWER_ID,
            outcome="sent" if outcome == "sent" else "refused",
            reason=None if outcome == "sent" else "nicht-zustaendig",
            case_id=uuid4() if outcome == "sent" else None,
            case_version=3,
            act=ACT,
        )

    sent = answer("sent")
    assert not sent.is_returned
    sent.note_return(return_message_id=RETURN_ID, reason="schema-verletzt", act=ACT)
    assert (sent.is_returned, sent.return_reason, sent.return_message_id) == (
        True,
        "schema-verletzt",
        RETURN_ID,
    )
    with pytest.raises(HandOverNotReturnable):
        sent.note_return(return_message_id=RETURN_ID, reason="schema-verletzt", act=ACT)
    with pytest.raises(HandOverNotReturnable):
        answer("refused").note_return(return_message_id=RETURN_ID, reason="x", act=ACT)


def test_a_return_is_history_only_on_a_file_taken_over_later() -> None:
    assert "HandOverReturned" in TAKEN_OVER_WITHOUT_STATE
