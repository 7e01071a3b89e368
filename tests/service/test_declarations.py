"""Commitment declarations through the service, on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from adapters.payment.provider import PaymentProviderUnavailable
from domain.case_file import MasterData
from domain.commitment_declaration import CommitmentDeclaration, hash_reference
from domain.errors import (
    AbilityToPayNotShown,
    DeclarationWithdrawn,
    FeeAlreadyPaid,
    FeeNotPaid,
    InvalidValue,
    PaymentMismatch,
)
from domain.values import add_years
from service import AkteService
from service_common import PUBLIC_APPLICANT, CaseNotFound, ConcurrentModification
from service_declarations import (
    PAYMENT_PROVIDER_USER,
    DeclarationChanged,
    DeclarationNotFound,
    UnknownPaymentTransaction,
)
from tests.conftest import FakeClock
from tests.support.declarations import OFFICE, PERSONAL_VALUES, RecordingProvider, submission

NOTIFY = "https://akte.example/payments/notifications"
RETURN = "https://akte.example/payments/return"


def submit(service: AkteService, clock: FakeClock, **changes: Any) -> tuple[UUID, str]:
    recorded = service.declarations.submit_commitment_declaration(
        office_id=changes.pop("office_id", OFFICE), **submission(clock.now.date(), **changes)
    )
    return recorded.declaration_id, recorded.result


def start(service: AkteService, declaration_id: UUID, provider: RecordingProvider) -> str:
    started = service.declarations.start_payment(
        declaration_id,
        method="giropay",
        provider=provider,
        notification_url=NOTIFY,
        return_url=RETURN,
    )
    return started.result.payment.transaction_id


def report(service: AkteService, transaction_id: str, outcome: Any = "paid", **changes: Any) -> str:
    arguments: dict[str, Any] = {
        "provider": "stand-in",
        "transaction_id": transaction_id,
        "outcome": outcome,
        "amount_cents": 2900,
        "currency": "EUR",
        "method": "giropay",
    } | changes
    return service.declarations.settle_payment(**arguments).result


def events_in_log(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


def event_types(service: AkteService, declaration_id: UUID) -> list[str]:
    return [
        type(event).__name__ for event in service.declarations.declaration_events(declaration_id)
    ]


@pytest.fixture
def provider() -> RecordingProvider:
    return RecordingProvider()


# ------------------------------------------------------------------ submission


def test_a_submission_is_found_by_its_secret_reference_only(
    service: AkteService, clock: FakeClock
) -> None:
    declaration_id, reference = submit(service, clock)

    assert len(reference) == 22
    assert service.declarations.find_declaration_by_reference(reference) == declaration_id
    declaration = service.declarations.get_declaration(declaration_id)
    assert declaration.reference_sha256 == hash_reference(reference)
    assert (declaration.office_id, declaration.status) == (OFFICE, "fee_due")
    assert event_types(service, declaration_id) == ["Submitted", "FeeAssessed"]
    assert [event.by for event in service.declarations.declaration_events(declaration_id)] == [
        PUBLIC_APPLICANT
    ] * 2


def test_the_secret_reference_is_stored_nowhere(service: AkteService, clock: FakeClock) -> None:
    declaration_id, reference = submit(service, clock)

    stored = service.recorder.select_notifications(start=1, limit=100)

    assert len(stored) == 3  # the declaration's two events and the claim of its hash
    assert not [n for n in stored if reference.encode() in n.state]
    assert any(hash_reference(reference).encode() in n.state for n in stored)
    assert reference not in str(declaration_id)


@pytest.mark.parametrize(
    "reference", ["", "x" * 22, "not a reference at all!", "A" * 200, "ÄÖÜ" * 8]
)
def test_an_unknown_or_malformed_reference_finds_nothing(
    service: AkteService, clock: FakeClock, reference: str
) -> None:
    submit(service, clock)

    with pytest.raises(DeclarationNotFound) as raised:
        service.declarations.find_declaration_by_reference(reference)
    assert str(raised.value) == "no commitment declaration has this reference"


def test_an_invalid_submission_records_nothing(service: AkteService, clock: FakeClock) -> None:
    with pytest.raises(InvalidValue):
        submit(service, clock, monthly_net_income_cents=None, assets_cents=None)

    assert events_in_log(service) == 0


def test_declarations_and_case_files_are_not_mistaken_for_each_other(
    service: AkteService, clock: FakeClock
) -> None:
    declaration_id, _ = submit(service, clock)
    case_id = service.open_case(
        office_id=OFFICE,
        master_data=MasterData("Beispiel", "Amal", date(1990, 1, 1), "SYR", "N1234567"),
        by="sb-01",
    ).case_id

    with pytest.raises(CaseNotFound):
        service.get_case(declaration_id)
    with pytest.raises(CaseNotFound):
        service.case_events(declaration_id)
    with pytest.raises(DeclarationNotFound):
        service.declarations.get_declaration(case_id)
    with pytest.raises(DeclarationNotFound):
        service.declarations.declaration_events(case_id)
    with pytest.raises(DeclarationNotFound):
        service.declarations.get_declaration(uuid4())


# --------------------------------------------------------------------- payment


def test_a_payment_is_created_at_the_provider_and_recorded(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)

    started = service.declarations.start_payment(
        declaration_id,
        method="paypal",
        provider=provider,
        notification_url=NOTIFY,
        return_url=RETURN,
    )

    [order] = provider.orders
    assert (order.amount_cents, order.currency, order.method) == (2900, "EUR", "paypal")
    assert (order.notification_url, order.return_url) == (NOTIFY, RETURN)
    assert order.reference == f"VE-{declaration_id.hex[:12].upper()}-1"
    assert not [value for value in PERSONAL_VALUES if value in order.description + order.reference]
    assert started.result.created
    payment = started.result.payment
    assert (payment.number, payment.status, payment.provider) == (1, "pending", "stand-in")
    assert payment.redirect_url.startswith("https://pay.example/pay/")
    assert service.declarations.get_declaration(declaration_id).status == "payment_pending"


def test_starting_again_answers_the_open_payment_without_asking_the_provider(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    first = start(service, declaration_id, provider)
    before = events_in_log(service)

    again = service.declarations.start_payment(
        declaration_id, method="visa", provider=provider, notification_url=NOTIFY, return_url=RETURN
    )

    assert not again.result.created
    assert again.result.payment.transaction_id == first
    assert (len(provider.orders), events_in_log(service)) == (1, before)


def test_a_new_payment_follows_a_failed_one(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    report(service, start(service, declaration_id, provider), "failed")

    second = start(service, declaration_id, provider)
    report(service, second, "paid")

    declaration = service.declarations.get_declaration(declaration_id)
    assert [payment.status for payment in declaration.payments] == ["failed", "paid"]
    assert (declaration.fee_payment_number, declaration.fee_status) == (2, "paid")


def test_a_paid_or_withdrawn_declaration_does_not_reach_the_provider(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    paid_id, _ = submit(service, clock)
    report(service, start(service, paid_id, provider))
    withdrawn_id, _ = submit(service, clock)
    service.declarations.withdraw_declaration(withdrawn_id, expected_version=2, by="sb-01")
    before = events_in_log(service)

    with pytest.raises(FeeAlreadyPaid):
        start(service, paid_id, provider)
    with pytest.raises(DeclarationWithdrawn):
        start(service, withdrawn_id, provider)

    assert (len(provider.orders), events_in_log(service)) == (1, before)


def test_an_unreachable_provider_records_nothing(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    provider.fail_with = PaymentProviderUnavailable()
    before = events_in_log(service)

    with pytest.raises(PaymentProviderUnavailable):
        start(service, declaration_id, provider)

    assert events_in_log(service) == before
    assert service.declarations.get_declaration(declaration_id).fee_status == "due"


def test_an_invalid_method_is_refused_before_the_provider_is_asked(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)

    with pytest.raises(InvalidValue, match="method"):
        service.declarations.start_payment(
            declaration_id,
            method="cash",  # type: ignore[arg-type]
            provider=provider,
            notification_url=NOTIFY,
            return_url=RETURN,
        )

    assert provider.orders == []


def test_a_report_is_recorded_once_by_the_payment_provider(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    transaction_id = start(service, declaration_id, provider)
    clock.advance(minutes=2)
    paid_at = clock.now  # paid two minutes after it was started ...
    clock.advance(minutes=3)  # ... and reported three minutes later

    outcomes = [
        report(service, transaction_id, "paid", occurred_at=paid_at),
        report(service, transaction_id, "paid", occurred_at=paid_at),
        report(service, transaction_id, "failed"),
    ]

    assert outcomes == ["recorded", "already_recorded", "already_recorded"]
    fee_paid = service.declarations.declaration_events(declaration_id)[-1]
    assert isinstance(fee_paid, CommitmentDeclaration.FeePaid)
    assert (fee_paid.by, fee_paid.at, fee_paid.timestamp) == (
        PAYMENT_PROVIDER_USER,
        paid_at,
        clock.now,
    )
    assert (fee_paid.amount_cents, fee_paid.currency) == (2900, "EUR")
    assert event_types(service, declaration_id).count("FeePaid") == 1


def test_a_providers_clock_ahead_of_ours_does_not_date_a_payment_in_the_future(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    transaction_id = start(service, declaration_id, provider)

    report(service, transaction_id, occurred_at=clock.now + timedelta(seconds=30))

    assert service.declarations.declaration_events(declaration_id)[-1].at == clock.now


def test_unknown_and_mismatching_reports_record_nothing(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    transaction_id = start(service, declaration_id, provider)
    before = events_in_log(service)

    with pytest.raises(UnknownPaymentTransaction):
        report(service, "TX-UNKNOWN")
    with pytest.raises(UnknownPaymentTransaction):
        report(service, transaction_id, provider="another-provider")
    with pytest.raises(PaymentMismatch, match="amount_cents"):
        report(service, transaction_id, amount_cents=290)
    with pytest.raises(PaymentMismatch, match="currency"):
        report(service, transaction_id, currency="USD")

    assert events_in_log(service) == before


def test_reports_delivered_at_once_in_parallel_record_one_payment(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    transaction_id = start(service, declaration_id, provider)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def deliver(outcome: str) -> None:
        barrier.wait()
        outcomes.append(report(service, transaction_id, outcome))

    threads = [
        threading.Thread(target=deliver, args=(outcome,))
        for outcome in ("paid", "paid", "paid", "failed", "paid", "expired")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    types = event_types(service, declaration_id)
    assert types.count("FeePaid") == 1
    assert service.declarations.get_declaration(declaration_id).payments[0].status == "paid"
    assert len(outcomes) == 6


# ----------------------------------------------------------- the office's steps


def test_the_whole_life_with_versions_who_and_when(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    report(service, start(service, declaration_id, provider))
    version = service.declarations.get_declaration(declaration_id).version
    yesterday = clock.now - timedelta(days=1)

    version = service.declarations.check_ability_to_pay(
        declaration_id, expected_version=version, by="sb-01", passed=True, at=yesterday
    ).version
    version = service.declarations.set_pickup_appointment(
        declaration_id,
        expected_version=version,
        by="sb-02",
        appointment_at=clock.now + timedelta(days=2),
    ).version
    clock.advance(days=2)
    version = service.declarations.hand_over_declaration(
        declaration_id, expected_version=version, by="sb-01"
    ).version
    clock.advance(days=20)
    version = service.declarations.record_visitor_entry(
        declaration_id,
        expected_version=version,
        by="sb-01",
        entry_date=clock.now.date() - timedelta(days=5),
    ).version

    declaration = service.declarations.get_declaration(declaration_id)
    assert declaration.status == "handed_over"
    assert declaration.liability_until == add_years(clock.now.date() - timedelta(days=5), 5)
    events = service.declarations.declaration_events(declaration_id)
    assert [(type(event).__name__, event.by) for event in events] == [
        ("Submitted", "public"),
        ("FeeAssessed", "public"),
        ("PaymentInitiated", "public"),
        ("FeePaid", "payment-provider"),
        ("AbilityToPayChecked", "sb-01"),
        ("PickupAppointmentSet", "sb-02"),
        ("SignedAndHandedOver", "sb-01"),
        ("VisitorEntryRecorded", "sb-01"),
    ]
    assert events[4].at == yesterday
    assert events[-1].originator_version == version == 8
    later = service.declarations.declaration_events(declaration_id, after_version=6)
    assert [event.originator_version for event in later] == [7, 8]


def test_a_stale_version_is_refused_and_nothing_recorded(
    service: AkteService, clock: FakeClock
) -> None:
    declaration_id, _ = submit(service, clock)
    service.declarations.withdraw_declaration(declaration_id, expected_version=2, by="sb-01")

    with pytest.raises(DeclarationChanged) as raised:
        service.declarations.check_ability_to_pay(
            declaration_id, expected_version=2, by="sb-01", passed=True
        )

    assert isinstance(raised.value, ConcurrentModification)
    assert (raised.value.expected, raised.value.actual) == (2, 3)
    assert str(raised.value).startswith(f"commitment declaration {declaration_id} is at version 3")
    assert len(service.declarations.declaration_events(declaration_id)) == 3


def test_rule_violations_record_nothing(service: AkteService, clock: FakeClock) -> None:
    declaration_id, _ = submit(service, clock)
    before = events_in_log(service)

    with pytest.raises(FeeNotPaid):
        service.declarations.hand_over_declaration(declaration_id, expected_version=2, by="sb-01")
    with pytest.raises(FeeNotPaid):
        service.declarations.set_pickup_appointment(
            declaration_id,
            expected_version=2,
            by="sb-01",
            appointment_at=clock.now + timedelta(days=1),
        )

    assert events_in_log(service) == before


def test_no_handover_after_a_failed_check(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    report(service, start(service, declaration_id, provider))
    version = service.declarations.check_ability_to_pay(
        declaration_id, expected_version=4, by="sb-01", passed=False, reason="zu gering"
    ).version

    with pytest.raises(AbilityToPayNotShown):
        service.declarations.hand_over_declaration(
            declaration_id, expected_version=version, by="sb-01"
        )


def test_a_refund_of_the_paid_fee(
    service: AkteService, clock: FakeClock, provider: RecordingProvider
) -> None:
    declaration_id, _ = submit(service, clock)
    report(service, start(service, declaration_id, provider))
    version = service.declarations.withdraw_declaration(
        declaration_id, expected_version=4, by="sb-01", reason="Besuch abgesagt"
    ).version

    refunded = service.declarations.refund_payment(
        declaration_id, expected_version=version, by="tl-01", reason="Ermessen der Behörde"
    )

    assert refunded.result == 1
    declaration = service.declarations.get_declaration(declaration_id)
    assert (declaration.status, declaration.fee_status) == ("withdrawn", "refunded")
    assert event_types(service, declaration_id)[-2:] == ["Withdrawn", "PaymentRefunded"]


def test_a_link_to_a_case_file_of_the_same_office(service: AkteService, clock: FakeClock) -> None:
    declaration_id, _ = submit(service, clock)
    person = MasterData("Yılmaz", "Ayşe", date(1995, 7, 14), "TUR", "U12345678")
    own_case = service.open_case(office_id=OFFICE, master_data=person, by="sb-01").case_id
    other_case = service.open_case(
        office_id="abh-nachbarstadt", master_data=person, by="sb-91"
    ).case_id

    for case_id in (other_case, uuid4(), declaration_id):
        with pytest.raises(InvalidValue) as raised:
            service.declarations.link_declaration_to_case(
                declaration_id, expected_version=2, by="sb-01", case_id=case_id
            )
        assert str(raised.value) == (
            "case_id: no case file with this id in the declaration's office"
        )
    service.declarations.link_declaration_to_case(
        declaration_id, expected_version=2, by="sb-01", case_id=own_case
    )

    assert service.declarations.get_declaration(declaration_id).case_id == str(own_case)


def test_declarations_are_listed_in_pages_by_office(service: AkteService, clock: FakeClock) -> None:
    ours = [submit(service, clock)[0] for _ in range(3)]
    theirs = submit(service, clock, office_id="abh-nachbarstadt")[0]
    ours.append(submit(service, clock)[0])

    everything = service.declarations.list_declarations(office_ids=None, limit=10)
    first = service.declarations.list_declarations(office_ids={OFFICE}, limit=2)
    assert first.last_position is not None
    second = service.declarations.list_declarations(
        office_ids={OFFICE}, after_position=first.last_position, limit=2
    )
    assert second.last_position is not None
    third = service.declarations.list_declarations(
        office_ids={OFFICE}, after_position=second.last_position, limit=2
    )

    assert [d.id for d in everything.declarations] == [*ours[:3], theirs, ours[3]]
    assert not everything.more
    assert [d.id for d in first.declarations] == ours[:2]
    assert [d.id for d in second.declarations] == [ours[2]]  # theirs skipped
    assert [d.id for d in third.declarations] == [ours[3]]
    assert (first.more, second.more, third.more) == (True, True, False)
