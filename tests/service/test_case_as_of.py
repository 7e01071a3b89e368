"""A case file on a business date (issue 19, point 4), on SQLite and on PostgreSQL.

The property: the state the service gives for a business date equals a naive replay of
the file's events filtered by business time (on or before the date in Berlin), over
generated command sequences with back-dated business times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, SupportsIndex, cast
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from domain.case_file import CaseFile, MasterData
from domain.errors import DomainError
from domain.history import case_state
from service import AkteService
from service_case_as_of import CaseNotOpenedYet
from service_common import CaseNotFound
from tests.conftest import FakeClock

BERLIN = ZoneInfo("Europe/Berlin")
PERSON = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678")
SHA = "c" * 64
NUMBERED = (
    "documents",
    "procedures",
    "residence_documents",
    "fiction_certificates",
    "entry_procedures",
    "inquiries",
    "correspondence",
    "notes",
)


# ---------------------------------------------------------------- the oracle


class _ByNumber(list[Any]):
    """A list of parts that finds part ``n`` by its number, not by its position: with it,
    replaying only some of a file's events cannot reach the wrong part."""

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int):
            for part in self:
                if part.number == index + 1:
                    return part
            raise IndexError(index)
        return super().__getitem__(cast(SupportsIndex, index))


def naive_on(events: list[CaseFile.Event], day: date) -> dict[str, Any] | None:
    """The events dated on or before ``day`` in Berlin, replayed in log order."""
    kept = [e for e in events if e.at.astimezone(BERLIN).date() <= day]
    if not kept or not isinstance(kept[0], CaseFile.Opened):
        return None
    case = cast(CaseFile, kept[0].mutate(None))
    for name in NUMBERED:
        setattr(case, name, _ByNumber(getattr(case, name)))
    for event in kept[1:]:
        event.apply(case)
        case.version = event.originator_version
        case.modified_on = event.timestamp
    return case_state(case)


# ------------------------------------------------------------------ helpers


def open_case(service: AkteService, at: datetime | None = None) -> UUID:
    return service.open_case(
        office_id="abh-musterstadt", master_data=PERSON, by="sb-01", at=at
    ).case_id


def receive(service: AkteService, case_id: UUID, version: int, at: datetime) -> int:
    return service.receive_procedure(
        case_id,
        expected_version=version,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
        at=at,
    ).version


# ---------------------------------------------------------------- examples


def test_a_back_dated_event_belongs_to_its_business_date(
    service: AkteService, clock: FakeClock
) -> None:
    monday = clock.now
    case_id = open_case(service, at=monday)
    clock.advance(days=3)
    # Recorded on Thursday, it happened on Tuesday.
    receive(service, case_id, 1, monday + timedelta(days=1))

    on_monday = service.case_as_of.case_on(case_id, monday.date())
    on_tuesday = service.case_as_of.case_on(case_id, monday.date() + timedelta(days=1))
    recorded_tuesday = service.get_case_as_of(case_id, monday + timedelta(days=1, hours=12))

    assert on_monday.case.procedures == []
    assert [p.number for p in on_tuesday.case.procedures] == [1]
    assert on_tuesday.case.version == 2
    # The recorded-time view did not know it on Tuesday yet.
    assert recorded_tuesday.procedures == []


def test_a_part_numbered_earlier_but_dated_later_is_not_there_yet(
    service: AkteService, clock: FakeClock
) -> None:
    opened = clock.now
    case_id = open_case(service, at=opened)
    clock.advance(days=10)
    version = receive(service, case_id, 1, clock.now)  # procedure 1: today
    version = receive(service, case_id, version, opened + timedelta(days=2))  # 2: back-dated
    version = service.assign_procedure(
        case_id,
        expected_version=version,
        by="sb-01",
        procedure_number=2,
        assignee="sb-02",
        at=opened + timedelta(days=3),
    ).version

    on_day_5 = service.case_as_of.case_on(case_id, opened.date() + timedelta(days=5))

    [procedure] = on_day_5.case.procedures
    assert procedure.number == 2
    assert procedure.assignee == "sb-02"
    assert procedure.status == "assigned"
    assert on_day_5.gaps == {"procedures": (0,)}
    assert on_day_5.included == (1, 3, 4)
    # In a diff, positions keep meaning the same procedure on every date.
    assert on_day_5.state()["procedures"][0] == {}
    assert on_day_5.state()["procedures"][1]["number"] == 2


def test_the_end_of_a_business_date_is_the_office_s_midnight(
    service: AkteService, clock: FakeClock
) -> None:
    opened = datetime(2024, 6, 28, 8, 0, tzinfo=BERLIN)
    clock.now = datetime(2024, 7, 5, 9, 0, tzinfo=BERLIN)
    case_id = open_case(service, at=opened)
    # 23:30 UTC on 30 June is 01:30 on 1 July in Berlin (summer time).
    receive(service, case_id, 1, datetime(2024, 6, 30, 23, 30, tzinfo=ZoneInfo("UTC")))

    assert service.case_as_of.case_on(case_id, date(2024, 6, 30)).case.procedures == []
    assert len(service.case_as_of.case_on(case_id, date(2024, 7, 1)).case.procedures) == 1


def test_before_the_opening_there_is_no_file(service: AkteService, clock: FakeClock) -> None:
    case_id = open_case(service, at=clock.now - timedelta(days=2))

    with pytest.raises(CaseNotOpenedYet, match=r"did not exist yet on 2024-03-01: .* 2024-03-02"):
        service.case_as_of.case_on(case_id, date(2024, 3, 1))
    with pytest.raises(CaseNotFound):
        service.case_as_of.case_on(UUID(int=7), date(2024, 3, 1))


def test_the_diff_between_business_dates_lists_the_events_dated_between(
    service: AkteService, clock: FakeClock
) -> None:
    opened = clock.now
    case_id = open_case(service, at=opened)
    clock.advance(days=10)
    version = receive(service, case_id, 1, opened + timedelta(days=4))
    version = service.add_note(
        case_id, expected_version=version, by="sb-01", text="Rückruf", at=opened
    ).version

    diff = service.case_as_of.diff_on(
        case_id, opened.date() + timedelta(days=1), opened.date() + timedelta(days=5)
    )

    assert diff.before is not None
    assert [type(e).__name__ for e in diff.events] == ["ProcedureReceived"]
    assert [n.number for n in diff.before.case.notes] == [1]  # dated on the opening day
    assert len(diff.after.case.procedures) == 1


# ----------------------------------------------------------------- property

Step = tuple[str, int, int, int]
"""(command, part number, hours the clock moves on, hours the business time lies back)"""

_COMMANDS = (
    "receive",
    "assign",
    "decide",
    "attach",
    "review",
    "note",
    "inquiry",
    "answer",
    "entry",
    "consent",
    "correct",
)
steps = st.lists(
    st.tuples(
        st.sampled_from(_COMMANDS),
        st.integers(1, 3),
        st.integers(0, 60),
        st.one_of(st.just(0), st.integers(0, 36), st.integers(0, 24 * 12)),
    ),
    min_size=1,
    max_size=14,
)


_PARTS = {
    "assign": "procedures",
    "decide": "procedures",
    "review": "documents",
    "answer": "inquiries",
    "consent": "entry_procedures",
}


def _run(service: AkteService, case_id: UUID, version: int, step: Step, at: datetime) -> int:
    command, n, _, _ = step
    if command in _PARTS:
        # One of the parts there are (by number), so that most such commands are tried
        # on a part that exists and fail, if at all, on their business time.
        count = len(getattr(service.get_case(case_id), _PARTS[command]))
        n = (n - 1) % max(count, 1) + 1
    common: dict[str, Any] = {"expected_version": version, "by": "sb-01", "at": at}
    actions: dict[str, Callable[[], Any]] = {
        "receive": lambda: service.receive_procedure(
            case_id, channel="mail", topic="extend_residence_permit", **common
        ),
        "assign": lambda: service.assign_procedure(
            case_id, procedure_number=n, assignee="sb-02", **common
        ),
        "decide": lambda: service.decide_procedure(
            case_id, procedure_number=n, outcome="granted", **common
        ),
        "attach": lambda: service.attach_document(
            case_id,
            kind="passport",
            sha256=SHA,
            size_bytes=10,
            media_type="application/pdf",
            page_count=1,
            source="scan",
            **common,
        ),
        "review": lambda: service.review_document(case_id, document_number=n, **common),
        "note": lambda: service.add_note(case_id, text="Vermerk", **common),
        "inquiry": lambda: service.receive_inquiry(case_id, kind="civil_registry", **common),
        "answer": lambda: service.answer_inquiry(case_id, inquiry_number=n, **common),
        "entry": lambda: service.request_entry_consent(case_id, **common),
        "consent": lambda: service.give_entry_consent(
            case_id,
            entry_procedure_number=n,
            valid_until=at.date() + timedelta(days=90),
            **common,
        ),
        "correct": lambda: service.correct_master_data(
            case_id, corrections={"address": "Neue Straße 2"}, reason="Umzug", **common
        ),
    }
    try:
        return cast(int, actions[command]().version)
    except DomainError:
        return version  # refused: nothing recorded


@example(
    # Procedure 1 recorded first but dated today, procedure 2 back-dated before it and
    # assigned: on the days between, procedure 2 exists and procedure 1 does not.
    plan=[("receive", 1, 0, 0), ("receive", 1, 1, 24 * 8), ("assign", 2, 1, 24 * 7)],
    opening_back=24 * 10,
)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(plan=steps, opening_back=st.integers(0, 24 * 20))
def test_the_state_on_a_business_date_is_the_naive_replay_of_the_events_dated_by_then(
    service: AkteService, clock: FakeClock, plan: list[Step], opening_back: int
) -> None:
    # Each example is a new case file; the clock only moves forward across examples.
    clock.advance(days=30)
    case_id = open_case(service, at=clock.now - timedelta(hours=opening_back))
    version = 1
    for step in plan:
        clock.advance(hours=step[2])
        version = _run(service, case_id, version, step, clock.now - timedelta(hours=step[3]))
    events = service.case_events(case_id)
    dated = {e.at.astimezone(BERLIN).date() for e in events}
    days = sorted({d + timedelta(days=k) for d in dated for k in (-1, 0, 1)})

    for day in days:
        expected = naive_on(events, day)
        if expected is None:
            with pytest.raises(CaseNotOpenedYet):
                service.case_as_of.case_on(case_id, day)
            continue
        assert case_state(service.case_as_of.case_on(case_id, day).case) == expected, day
    today = clock.now.astimezone(BERLIN).date()
    now = service.case_as_of.case_on(case_id, today)
    assert case_state(now.case) == case_state(service.get_case(case_id))
