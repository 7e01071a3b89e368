"""Business time respects the facts (issue 19): no command records a time before a fact
it refers to; § 81 AufenthG: the fiction's basis, and the decision ends it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import uuid4

import pytest
from eventsourcing.persistence import JSONTranscoder, Mapper
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.store.transcoding import register_akte_transcodings
from domain.acts import Act
from domain.case_file import CaseFile, MasterData, RegistrationNoticeChanges
from domain.deadlines import NoHolidays
from domain.errors import (
    BusinessTimeBeforeFact,
    DomainError,
    FictionCertificateEnded,
    InvalidValue,
    ProcedureStateConflict,
)
from domain.values import Validity

OPENED = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
NOW = datetime(2024, 9, 1, 10, 0, tzinfo=UTC)
SHA = "b" * 64


def act(at: datetime) -> Act:
    return Act(by="sb-01", at=at, recorded_at=NOW)


def day(n: int) -> datetime:
    """``n`` days after the opening."""
    return OPENED + timedelta(days=n)


def new_case() -> CaseFile:
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2024-000009",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678"),
        act=act(OPENED),
    )
    case.collect_events()
    return case


def receive(case: CaseFile, at: datetime) -> int:
    return case.receive_procedure(
        channel="mail", topic="extend_residence_permit", legal_basis=None, act=act(at)
    )


def fiction(case: CaseFile, procedure: int, at: datetime, **basis: Any) -> int:
    return case.issue_fiction_certificate(
        kind=basis.pop("kind", "81_3_1"),
        validity=Validity(at.date(), at.date() + timedelta(days=90)),
        carrier_sheet_number="FB1000001",
        procedure_number=procedure,
        act=act(at),
        **basis,
    )


def eat(case: CaseFile, at: datetime) -> int:
    return case.issue_residence_document(
        kind="eat",
        legal_basis="aufenthg-16b",
        validity=Validity(at.date(), at.date() + timedelta(days=365)),
        document_number="Y00ABC123",
        procedure_number=None,
        act=act(at),
    )


def refused(case: CaseFile, command: Callable[[CaseFile], object]) -> BusinessTimeBeforeFact:
    pending = list(case.pending_events)
    before = repr(case)
    with pytest.raises(BusinessTimeBeforeFact) as raised:
        command(case)
    assert case.pending_events == pending
    assert repr(case) == before
    return raised.value


# Each row: the setup (records facts at day 10, returns a part number), the command at a
# given time, the fact it must name. The command is refused at day 9 and accepted at 10.
Setup = Callable[[CaseFile], int]
Command = Callable[[CaseFile, int, datetime], object]


def _procedure(case: CaseFile) -> int:
    return receive(case, day(10))


def _document(case: CaseFile) -> int:
    return case.attach_document(
        kind="passport",
        sha256=SHA,
        size_bytes=10,
        media_type="application/pdf",
        page_count=1,
        source="scan",
        act=act(day(10)),
    )


def _decided(case: CaseFile) -> int:
    number = receive(case, day(0))
    case.decide_procedure(
        procedure_number=number, outcome="granted", legal_basis=None, reason=None, act=act(day(10))
    )
    return number


def _transferred(case: CaseFile) -> int:
    number = _decided(case)
    case.transfer_to_office(to_office_id="abh-nachbarstadt", reason=None, act=act(day(10)))
    return number


def _certificate(case: CaseFile) -> int:
    return fiction(case, receive(case, day(0)), day(10))


def _ordered(case: CaseFile) -> int:
    number = eat(case, day(0))
    case.order_eat_card(residence_document_number=number, act=act(day(10)))
    return number


def _arrived(case: CaseFile) -> int:
    number = eat(case, day(0))
    case.order_eat_card(residence_document_number=number, act=act(day(5)))
    case.record_eat_card_arrived(residence_document_number=number, act=act(day(10)))
    return number


def _entry(case: CaseFile) -> int:
    return case.request_entry_consent(legal_basis="aufenthv-31", act=act(day(10)))


def _inquiry(case: CaseFile) -> int:
    return case.receive_inquiry(kind="civil_registry", act=act(day(10)))


def _nothing(case: CaseFile) -> int:
    return 0


OPENING = "the case file's opening"
ROWS: list[tuple[str, Setup, Command, str]] = [
    (
        "correct_master_data",
        _nothing,
        lambda c, n, t: c.correct_master_data(
            corrections={"address": "Neue Straße 2"}, reason="Umzug", act=act(t)
        ),
        OPENING,
    ),
    (
        "attach_document",
        _nothing,
        lambda c, n, t: c.attach_document(
            kind="passport",
            sha256=SHA,
            size_bytes=1,
            media_type="application/pdf",
            page_count=1,
            source="scan",
            act=act(t),
        ),
        OPENING,
    ),
    (
        "review_document",
        _document,
        lambda c, n, t: c.review_document(document_number=n, act=act(t)),
        "the attachment of document 1",
    ),
    ("receive_procedure", _nothing, lambda c, n, t: receive(c, t), OPENING),
    (
        "assign_procedure",
        _procedure,
        lambda c, n, t: c.assign_procedure(procedure_number=n, assignee="sb-02", act=act(t)),
        "the receipt of procedure 1",
    ),
    (
        "request_documents",
        _procedure,
        lambda c, n, t: c.request_documents(
            procedure_number=n, what=["Pass"], due_on=date(2025, 1, 1), act=act(t)
        ),
        "the receipt of procedure 1",
    ),
    (
        "decide_procedure",
        _procedure,
        lambda c, n, t: c.decide_procedure(
            procedure_number=n, outcome="granted", legal_basis=None, reason=None, act=act(t)
        ),
        "the receipt of procedure 1",
    ),
    (
        "close_procedure",
        _decided,
        lambda c, n, t: c.close_procedure(procedure_number=n, act=act(t)),
        "the decision of procedure 1",
    ),
    (
        "issue_residence_document",
        _procedure,
        lambda c, n, t: c.issue_residence_document(
            kind="eat",
            legal_basis="aufenthg-16b",
            validity=Validity(date(2024, 6, 1), date(2025, 6, 1)),
            document_number="Y00ABC123",
            procedure_number=n,
            act=act(t),
        ),
        "the receipt of procedure 1",
    ),
    (
        "extend_residence_document",
        _ordered,
        lambda c, n, t: c.extend_residence_document(
            residence_document_number=n, valid_until=date(2026, 1, 1), reason=None, act=act(t)
        ),
        "the card's order of residence document 1",
    ),
    (
        "order_eat_card",
        lambda c: eat(c, day(10)),
        lambda c, n, t: c.order_eat_card(residence_document_number=n, act=act(t)),
        "the issue of residence document 1",
    ),
    (
        "record_eat_card_arrived",
        _ordered,
        lambda c, n, t: c.record_eat_card_arrived(residence_document_number=n, act=act(t)),
        "the card's order of residence document 1",
    ),
    (
        "hand_over_eat_card",
        _arrived,
        lambda c, n, t: c.hand_over_eat_card(residence_document_number=n, act=act(t)),
        "the card's arrival of residence document 1",
    ),
    (
        "transfer_eat_to_new_passport",
        _ordered,
        lambda c, n, t: c.transfer_eat_to_new_passport(
            residence_document_number=n, new_card_number="Y00DEF456", act=act(t)
        ),
        "the card's order of residence document 1",
    ),
    (
        "end_residence_document",
        _ordered,
        lambda c, n, t: c.end_residence_document(
            residence_document_number=n, end_reason="expired", reason=None, act=act(t)
        ),
        "the card's order of residence document 1",
    ),
    (
        "issue_fiction_certificate",
        _procedure,
        lambda c, n, t: fiction(c, n, t),
        "the receipt of procedure 1",
    ),
    (
        "extend_fiction_certificate",
        _certificate,
        lambda c, n, t: c.extend_fiction_certificate(
            certificate_number=n,
            valid_until=date(2025, 6, 1),
            new_carrier_sheet_number=None,
            act=act(t),
        ),
        "the issue of Fiktionsbescheinigung 1",
    ),
    (
        "end_fiction_certificate",
        _certificate,
        lambda c, n, t: c.end_fiction_certificate(
            certificate_number=n, end_reason="withdrawal", act=act(t)
        ),
        "the issue of Fiktionsbescheinigung 1",
    ),
    (
        "issue_integration_course_entitlement",
        _nothing,
        lambda c, n, t: c.issue_integration_course_entitlement(
            legal_basis="aufenthg-44", act=act(t)
        ),
        OPENING,
    ),
    (
        "impose_integration_course_obligation",
        _nothing,
        lambda c, n, t: c.impose_integration_course_obligation(
            legal_basis="aufenthg-44a", act=act(t)
        ),
        OPENING,
    ),
    (
        "request_entry_consent",
        _nothing,
        lambda c, n, t: c.request_entry_consent(legal_basis="aufenthv-31", act=act(t)),
        OPENING,
    ),
    (
        "give_entry_consent",
        _entry,
        lambda c, n, t: c.give_entry_consent(
            entry_procedure_number=n, valid_until=date(2025, 1, 1), act=act(t)
        ),
        "the request of entry procedure 1",
    ),
    (
        "deem_entry_consent_given",
        _entry,
        lambda c, n, t: c.deem_entry_consent_given(
            entry_procedure_number=n, holidays=NoHolidays(), today=date(2025, 1, 1), act=act(t)
        ),
        "the request of entry procedure 1",
    ),
    (
        "refuse_entry_consent",
        _entry,
        lambda c, n, t: c.refuse_entry_consent(
            entry_procedure_number=n, reason="Grund", act=act(t)
        ),
        "the request of entry procedure 1",
    ),
    (
        "receive_inquiry",
        _nothing,
        lambda c, n, t: c.receive_inquiry(kind="naturalisation", act=act(t)),
        OPENING,
    ),
    (
        "answer_inquiry",
        _inquiry,
        lambda c, n, t: c.answer_inquiry(inquiry_number=n, act=act(t)),
        "the receipt of inquiry 1",
    ),
    (
        "record_correspondence",
        _document,
        lambda c, n, t: c.record_correspondence(
            direction="received",
            counterpart_kind="lawyer",
            counterpart_name="Kanzlei",
            subject="Akteneinsicht",
            attachment_numbers=[n],
            act=act(t),
        ),
        "the attachment of document 1",
    ),
    ("add_note", _nothing, lambda c, n, t: c.add_note(text="x", act=act(t)), OPENING),
    (
        "record_registration_notice",
        _nothing,
        lambda c, n, t: c.record_registration_notice(
            notice_kind="abmeldung",
            message_id=f"m-{n}-{t:%H%M}",
            sender="meldebehoerde",
            effective_on=t.date(),
            changes=RegistrationNoticeChanges(),
            act=act(t),
        ),
        OPENING,
    ),
    (
        "record_appointment_attendance",
        _nothing,
        lambda c, n, t: c.record_appointment_attendance(
            appointment_id=uuid4(),
            outcome="attended",
            service_point_id=uuid4(),
            appointment_type="general",
            procedure_kind="general",
            legal_basis=None,
            act=act(t),
        ),
        OPENING,
    ),
    (
        "transfer_to_office",
        _decided,
        lambda c, n, t: c.transfer_to_office(
            to_office_id="abh-nachbarstadt", reason=None, act=act(t)
        ),
        "the decision of procedure 1",
    ),
    (
        "return_hand_over",
        _transferred,
        lambda c, n, t: c.return_hand_over(
            to_office_id="abh-nachbarstadt",
            answer_message_id="2f6c3a1e-5b4d-4e7f-8a9b-0c1d2e3f4a5b",
            return_message_id="7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d",
            reason="schema-verletzt",
            hints="",
            act=act(t),
        ),
        "the transfer",
    ),
    (
        "close",
        _decided,
        lambda c, n, t: c.close(closure_reason="left", act=act(t)),
        "the decision of procedure 1",
    ),
]


@pytest.mark.parametrize(
    ("setup", "command", "fact"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_a_command_is_refused_before_its_fact_and_accepted_from_it(
    setup: Setup, command: Command, fact: str
) -> None:
    case = new_case()
    number = setup(case)
    # Facts "of the opening" are at day 0: one minute before the opening is refused.
    too_early = OPENED - timedelta(minutes=1) if fact == OPENING else day(10) - timedelta(minutes=1)

    error = refused(case, lambda c: command(c, number, too_early))

    assert (error.field, error.fact, error.code) == ("at", fact, "business-time-before-fact")
    pending = len(case.pending_events)
    command(case, number, day(10))  # back-dated to the fact itself: lawful
    assert len(case.pending_events) > pending


def test_erasure_is_not_before_the_closure() -> None:
    case = new_case()
    case.close(closure_reason="died", act=act(day(10)))
    error = refused(
        case,
        lambda c: c.erase_personal_data(
            legal_ground="aufenthv-68",
            rule_id=None,
            approved_by="dsb",
            linked_ids=[],
            act=act(day(9)),
        ),
    )
    assert error.fact == "the case file's closure"


def test_every_case_file_command_is_in_the_table() -> None:
    commands = {
        name
        for name, member in vars(CaseFile).items()
        if callable(member)
        and not name.startswith(("_", "check_", "current_", "open"))
        # take_over: only a file opened in the same transaction takes another office's
        # file over (tests/domain/test_file_transfers.py), and its parts keep the times
        # they had there, which lie before this opening by nature.
        and name
        not in {"procedure", "undecided_entry_procedure", "erase_personal_data", "take_over"}
        and not isinstance(member, type)
    }
    assert commands == {row[0] for row in ROWS}


# ------------------------------------------------------------------- § 81 AufenthG


def test_81_4_needs_the_application_and_its_basis() -> None:
    case = new_case()
    number = receive(case, day(10))
    with pytest.raises(InvalidValue) as raised:
        fiction(case, number, day(11), kind="81_4")
    assert raised.value.field == "order_basis"
    with pytest.raises(InvalidValue) as raised:
        case.issue_fiction_certificate(
            kind="81_4",
            validity=Validity(date(2024, 6, 1), date(2024, 9, 1)),
            carrier_sheet_number="FB1000002",
            procedure_number=None,
            act=act(day(11)),
            order_basis="hardship_order",
            hardship_reason="Härte",
        )
    assert raised.value.field == "procedure_number"
    # Received after the previous title had expired: (4) S. 1 does not apply ...
    with pytest.raises(InvalidValue) as raised:
        fiction(
            case,
            number,
            day(11),
            kind="81_4",
            order_basis="timely_application",
            previous_title_valid_until=day(9).date(),
        )
    assert raised.value.field == "previous_title_valid_until"
    # ... an order of (4) S. 3 needs its reason ...
    with pytest.raises(InvalidValue) as raised:
        fiction(case, number, day(11), kind="81_4", order_basis="hardship_order")
    assert raised.value.field == "hardship_reason"
    # ... and (3) takes no basis of (4).
    with pytest.raises(InvalidValue) as raised:
        fiction(case, number, day(11), order_basis="hardship_order", hardship_reason="x")
    assert raised.value.field == "order_basis"
    assert case.pending_events[-1].__class__ is CaseFile.ProcedureReceived

    fiction(
        case,
        number,
        day(11),
        kind="81_4",
        order_basis="timely_application",
        previous_title_valid_until=day(10).date(),
    )
    second = fiction(
        case,
        number,
        day(12),
        kind="81_4",
        order_basis="hardship_order",
        hardship_reason="Antrag wegen Krankenhausaufenthalts verspätet",
    )
    issued = case.pending_events[-1]
    assert isinstance(issued, CaseFile.FictionCertificateIssued)
    assert (issued.order_basis, issued.hardship_reason) == (
        "hardship_order",
        "Antrag wegen Krankenhausaufenthalts verspätet",
    )
    assert case.fiction_certificates[second - 1].order_basis == "hardship_order"


@pytest.mark.parametrize(
    ("outcome", "reason"), [("granted", "decision"), ("withdrawn", "withdrawal")]
)
def test_the_decision_ends_the_fiction_and_its_certificates(outcome: Any, reason: str) -> None:
    case = new_case()
    number = receive(case, day(1))
    other = receive(case, day(1))
    certificate = fiction(case, number, day(2))
    unrelated = fiction(case, other, day(2))
    case.collect_events()

    case.decide_procedure(
        procedure_number=number, outcome=outcome, legal_basis=None, reason=None, act=act(day(30))
    )

    decided, ended = case.collect_events()
    assert isinstance(decided, CaseFile.ProcedureDecided)
    assert isinstance(ended, CaseFile.FictionCertificateEnded)
    assert (ended.certificate_number, ended.end_reason, ended.at) == (certificate, reason, day(30))
    assert case.fiction_certificates[unrelated - 1].ended_reason is None
    with pytest.raises(FictionCertificateEnded):
        case.extend_fiction_certificate(
            certificate_number=certificate,
            valid_until=date(2025, 6, 1),
            new_carrier_sheet_number=None,
            act=act(day(31)),
        )
    with pytest.raises(ProcedureStateConflict):
        fiction(case, number, day(31))


def test_a_decision_dated_before_a_certificate_extension_is_refused() -> None:
    case = new_case()
    number = receive(case, day(1))
    certificate = fiction(case, number, day(2))
    case.extend_fiction_certificate(
        certificate_number=certificate,
        valid_until=date(2024, 12, 1),
        new_carrier_sheet_number=None,
        act=act(day(20)),
    )
    error = refused(
        case,
        lambda c: c.decide_procedure(
            procedure_number=number,
            outcome="granted",
            legal_basis=None,
            reason=None,
            act=act(day(19)),
        ),
    )
    assert error.fact == "the last extension of Fiktionsbescheinigung 1"


def test_an_issue_event_of_version_1_loads_without_the_basis() -> None:
    case = new_case()
    fiction(case, receive(case, day(1)), day(2))
    event = case.pending_events[-1]
    mapper: Mapper[Any] = Mapper(transcoder=JSONTranscoder())
    register_akte_transcodings(mapper.transcoder)  # type: ignore[arg-type]
    stored = mapper.to_stored_event(event)
    state = mapper.transcoder.decode(stored.state)
    for name in ("class_version", "order_basis", "previous_title_valid_until", "hardship_reason"):
        state.pop(name)
    old = type(stored)(
        originator_id=stored.originator_id,
        originator_version=stored.originator_version,
        topic=stored.topic,
        state=mapper.transcoder.encode(state),
    )

    loaded = mapper.to_domain_event(old)

    assert isinstance(loaded, CaseFile.FictionCertificateIssued)
    assert (loaded.kind, loaded.order_basis, loaded.hardship_reason) == ("81_3_1", None, None)
    assert loaded.certificate_number == 1


# ---------------------------------------------------------------- generated sequences

_STEPS = [row for row in ROWS if row[0] not in {"transfer_to_office", "return_hand_over", "close"}]


def _facts(events: list[CaseFile.Event]) -> list[tuple[CaseFile.Event, datetime]]:
    """Each event with the latest time of the facts it refers to: the opening, and the
    part it changes (its creation and earlier steps) or the part it was issued for."""
    part_times: dict[tuple[str, int], datetime] = {}
    out = []
    for event in events:
        keys = [
            (name, getattr(event, name))
            for name in (
                "procedure_number",
                "residence_document_number",
                "certificate_number",
                "entry_procedure_number",
                "inquiry_number",
            )
            if getattr(event, name, None) is not None
        ]
        if isinstance(event, CaseFile.DocumentReviewed | CaseFile.DocumentAttached):
            keys.append(("document_number", event.document_number))
        latest = max([OPENED, *(part_times[k] for k in keys if k in part_times)])
        out.append((event, latest))
        if keys:  # the last key names the part the event creates or changes
            primary = keys[-1]
            part_times[primary] = max(part_times.get(primary, event.at), event.at)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, len(_STEPS) - 1), st.integers(-30, 30), st.integers(1, 3)),
        min_size=1,
        max_size=25,
    )
)
def test_no_accepted_sequence_records_a_time_before_its_facts(
    steps: list[tuple[int, int, int]],
) -> None:
    case = new_case()
    clock = day(40)
    for index, offset, part in steps:
        _name, _setup, command, _fact = _STEPS[index]
        at = clock + timedelta(days=offset)
        if at > NOW:
            at = NOW
        pending = list(case.pending_events)
        try:
            command(case, part, at)
        except DomainError:
            assert case.pending_events == pending  # a refusal records nothing
    events = [cast(CaseFile.Event, event) for event in case.pending_events]
    for event, latest in _facts(events):
        assert event.at >= latest, type(event).__name__
