"""The deadline tick (service_deadlines.py) on SQLite and PostgreSQL: a consent to a visa
is recorded as given by the office's silence (§ 31 Abs. 1 AufenthV) once its period has
passed, once, and never after a decision."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.case_file import CaseFile
from domain.deadlines import DEEMED_ENTRY_CONSENT, DeadlineNotPassed
from domain.errors import InvalidValue
from domain.history import describe
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import EAT_BASIS, TOPIC, CaseDriver

# Requested on Monday 4 March 2024 (the FakeClock's first day); three weeks to Monday 25
# March, two Werktage to Wednesday 27 March: the consent counts as given from the 28th.
LAST_DAY = date(2024, 3, 27)
ON_THE_LAST_DAY = datetime(2024, 3, 27, 20, 0, tzinfo=UTC)
THE_DAY_AFTER = datetime(2024, 3, 28, 8, 0, tzinfo=UTC)


def deemed(service: AkteService, case: CaseDriver) -> list[CaseFile.EntryConsentDeemedGiven]:
    return [
        event
        for event in service.case_events(case.case_id)
        if isinstance(event, CaseFile.EntryConsentDeemedGiven)
    ]


def test_a_tick_before_the_period_ends_records_nothing(
    service: AkteService, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    case("request_entry_consent")
    clock.now = ON_THE_LAST_DAY

    report = service.deadlines.run_deadline_tick()

    assert (report.deemed_consents, report.still_running) == (0, 1)
    assert deemed(service, case) == []
    assert service.get_case(case.case_id).entry_procedures[0].status == "requested"


def test_after_the_period_the_consent_is_deemed_given_once(
    service: AkteService, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    number = case("request_entry_consent")
    clock.now = THE_DAY_AFTER

    first = service.deadlines.run_deadline_tick()
    second = service.deadlines.run_deadline_tick()

    assert first.deemed == [(case.id, number)]
    assert (second.deemed_consents, second.scanned) == (0, 0)
    (event,) = deemed(service, case)
    assert event.entry_procedure_number == number
    assert event.rule == DEEMED_ENTRY_CONSENT.code
    assert event.source == "§ 31 Abs. 1 Satz 3 und 4 AufenthV"
    assert event.period_ended_on == LAST_DAY
    assert event.at == THE_DAY_AFTER
    entry = service.get_case(case.case_id).entry_procedures[0]
    assert (entry.status, entry.deemed) == ("consent_given", True)
    # The history shows it, with the rule's source.
    assert describe(event) == (
        "Zustimmung 1 gilt als erteilt (Schweigefrist, § 31 Abs. 1 Satz 3 und 4 AufenthV), "
        "Frist abgelaufen am 27.03.2024"
    )


def test_a_decision_before_the_end_stops_it(service: AkteService, clock: FakeClock) -> None:
    refused = CaseDriver.open(service)
    refused("request_entry_consent")
    given = CaseDriver.open(service)
    given("request_entry_consent")
    clock.now = ON_THE_LAST_DAY
    refused("refuse_entry_consent", entry_procedure_number=1, reason="Bedenken")
    given("give_entry_consent", entry_procedure_number=1, valid_until=date(2024, 9, 1))
    clock.now = THE_DAY_AFTER

    report = service.deadlines.run_deadline_tick()

    assert report.deemed_consents == 0
    assert deemed(service, refused) == deemed(service, given) == []
    # Nothing waits any more: the next tick reads nothing.
    assert service.deadlines.run_deadline_tick().scanned == 0


def test_a_fast_track_pre_approval_is_never_deemed_given(
    service: AkteService, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    case("request_entry_consent", legal_basis="aufenthg-81a")
    clock.now = datetime(2025, 1, 1, tzinfo=UTC)

    assert service.deadlines.run_deadline_tick().deemed_consents == 0
    assert deemed(service, case) == []


def test_a_waiting_request_is_read_again_by_later_ticks(
    service: AkteService, clock: FakeClock
) -> None:
    early = CaseDriver.open(service)
    early("request_entry_consent")
    clock.now = datetime(2024, 3, 20, 9, 0, tzinfo=UTC)
    late = CaseDriver.open(service)
    late("request_entry_consent")
    clock.now = THE_DAY_AFTER

    assert service.deadlines.run_deadline_tick().deemed == [(early.id, 1)]
    assert deemed(service, late) == []

    clock.now = datetime(2024, 4, 30, 9, 0, tzinfo=UTC)
    assert service.deadlines.run_deadline_tick().deemed == [(late.id, 1)]


def test_the_domain_refuses_a_deemed_consent_before_the_period_ends(
    service: AkteService, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    case("request_entry_consent")
    state = service.get_case(case.case_id)
    act = service.act("sb-01", None)

    with pytest.raises(DeadlineNotPassed, match="runs until 2024-03-27"):
        state.deem_entry_consent_given(
            entry_procedure_number=1,
            holidays=service.deadlines.holidays,
            today=LAST_DAY,
            act=act,
        )


def test_the_silence_period_counts_from_the_day_in_germany(
    service: AkteService, clock: FakeClock
) -> None:
    """Requested at 00:30 in Berlin on Tuesday 5 March (23:30 UTC on Monday): the period
    counts from Tuesday (§ 187 Abs. 1 BGB), three weeks to Tuesday 26 March and two
    Werktage to Thursday 28 March, a day later than from the UTC date."""
    clock.now = datetime(2024, 3, 4, 23, 30, tzinfo=UTC)
    case = CaseDriver.open(service)
    case("request_entry_consent")
    clock.now = datetime(2024, 3, 28, 8, 0, tzinfo=UTC)  # 09:00 on the last day

    assert service.deadlines.run_deadline_tick().deemed_consents == 0

    clock.now = datetime(2024, 3, 28, 23, 30, tzinfo=UTC)  # 00:30 on Friday 29 in Berlin
    assert service.deadlines.run_deadline_tick().deemed_consents == 1
    [consent] = deemed(service, case)
    assert consent.period_ended_on == date(2024, 3, 28)


def test_an_application_made_after_midnight_in_germany_came_after_the_title_expired(
    service: AkteService, clock: FakeClock
) -> None:
    """Title valid until Monday 31 March 2025; the application arrives at 00:30 on
    1 April in Berlin (22:30 UTC on 31 March): § 81 (4) S. 1 AufenthG does not apply."""
    clock.now = datetime(2025, 3, 31, 22, 30, tzinfo=UTC)
    case = CaseDriver.open(service)
    procedure = case(
        "receive_procedure", channel="contact_form", topic=TOPIC, legal_basis=EAT_BASIS
    )
    clock.now = datetime(2025, 4, 2, 8, 0, tzinfo=UTC)
    with pytest.raises(InvalidValue, match="received after the previous title expired"):
        case(
            "issue_fiction_certificate",
            kind="81_4",
            valid_from=date(2025, 4, 2),
            valid_until=date(2025, 7, 1),
            carrier_sheet_number="FB0000001",
            procedure_number=procedure,
            order_basis="timely_application",
            previous_title_valid_until=date(2025, 3, 31),
        )
