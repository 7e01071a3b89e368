"""The replay of a case file up to a business date (:mod:`domain.business_date`)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import cast
from uuid import uuid4
from zoneinfo import ZoneInfo

from domain.acts import Act
from domain.business_date import business_time, end_of_day, replay_until
from domain.case_file import CaseFile, MasterData

OPENED = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)
RECORDED = datetime(2025, 7, 10, 8, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def act(at: datetime) -> Act:
    return Act(by="sb-01", at=at, recorded_at=RECORDED)


def a_file() -> list[CaseFile.Event]:
    """Opened 2 June; procedure 1 dated 1 July, procedure 2 back-dated to 10 June and
    assigned on 12 June (recorded in this order)."""
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2025-000001",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678"),
        act=act(OPENED),
    )
    for at in (datetime(2025, 7, 1, 9, tzinfo=UTC), datetime(2025, 6, 10, 9, tzinfo=UTC)):
        case.receive_procedure(
            channel="mail", topic="extend_residence_permit", legal_basis=None, act=act(at)
        )
    case.assign_procedure(
        procedure_number=2, assignee="sb-02", act=act(datetime(2025, 6, 12, 9, tzinfo=UTC))
    )
    return cast(list[CaseFile.Event], case.collect_events())


def test_a_business_date_ends_at_midnight_in_the_office_s_zone() -> None:
    assert end_of_day(date(2025, 6, 30), BERLIN) == datetime(2025, 6, 30, 22, 0, tzinfo=UTC)
    assert end_of_day(date(2025, 12, 31), BERLIN) == datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert end_of_day(date(2025, 6, 30), UTC) == datetime(2025, 7, 1, 0, 0, tzinfo=UTC)


def test_an_event_without_business_time_counts_at_its_recorded_time() -> None:
    [opened, *_] = a_file()
    assert business_time(opened) == OPENED
    undated = copy.copy(opened)
    object.__setattr__(undated, "at", None)
    assert business_time(undated) == opened.timestamp


def test_before_the_opening_there_is_no_file() -> None:
    assert replay_until(a_file(), datetime(2025, 6, 2, 8, 0, tzinfo=UTC)) is None
    assert replay_until([], RECORDED) is None


def test_a_later_numbered_part_dated_earlier_is_reached_by_its_number() -> None:
    events = a_file()

    on_15_june = replay_until(events, end_of_day(date(2025, 6, 15), BERLIN))
    on_1_july = replay_until(events, end_of_day(date(2025, 7, 1), BERLIN))

    assert on_15_june is not None
    assert on_1_july is not None
    [procedure] = on_15_june.case.procedures
    assert (procedure.number, procedure.assignee, procedure.status) == (2, "sb-02", "assigned")
    assert on_15_june.included == (1, 3, 4)
    assert on_15_june.gaps == {"procedures": (0,)}
    assert on_15_june.case.version == 4
    assert [p.number for p in on_1_july.case.procedures] == [1, 2]
    assert on_1_july.gaps == {}
    # The held place took nothing else over from the event dated later.
    assert on_15_june.case.ended_at is None
    assert on_15_june.state()["procedures"][0] == {}


def test_an_event_dated_after_the_last_one_kept_costs_nothing() -> None:
    events = a_file()
    on_5_june = replay_until(events, end_of_day(date(2025, 6, 5), BERLIN))
    assert on_5_june is not None
    assert on_5_june.included == (1,)
    assert on_5_june.gaps == {}
    assert on_5_june.case.procedures == []
    assert on_5_june.case.version == 1
    assert on_5_june.before - timedelta(hours=22) == datetime(2025, 6, 5, tzinfo=UTC)


def test_places_are_held_across_alternating_early_and_late_parts() -> None:
    """Procedures 1 and 3 dated late, 2 and 4 back-dated, 4 then assigned: every number
    still reaches its own procedure."""
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2025-000002",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678"),
        act=act(OPENED),
    )
    late, early = datetime(2025, 7, 8, 9, tzinfo=UTC), datetime(2025, 6, 10, 9, tzinfo=UTC)
    for at in (late, early, late, early):
        case.receive_procedure(
            channel="mail", topic="extend_residence_permit", legal_basis=None, act=act(at)
        )
    case.assign_procedure(procedure_number=4, assignee="sb-02", act=act(early))
    events = cast(list[CaseFile.Event], case.collect_events())

    on_date = replay_until(events, end_of_day(date(2025, 6, 30), BERLIN))

    assert on_date is not None
    assert [(p.number, p.assignee) for p in on_date.case.procedures] == [(2, None), (4, "sb-02")]
    assert on_date.gaps == {"procedures": (0, 2)}
    assert [p.get("number") for p in on_date.state()["procedures"]] == [None, 2, None, 4]
