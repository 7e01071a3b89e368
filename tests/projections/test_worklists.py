"""The worklists, each on SQLite and PostgreSQL, from histories written through the service.

Every test ends by checking all tables against the oracle (rows derived from the case
files' state), and that a rebuild from scratch gives the very same rows.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from adapters.settings import Settings
from projections.paging import MAX_PAGE_SIZE, InvalidCursor, InvalidQuery, Page
from projections.storage import ViewsStore
from projections.worklists.eat_cards_awaiting_handover import eat_cards_awaiting_handover
from projections.worklists.expiring_documents import expiring_documents
from projections.worklists.open_procedures_by_assignee import open_procedures_by_assignee
from projections.worklists.overdue_document_requests import overdue_document_requests
from projections.worklists.unassigned_procedures import unassigned_procedures
from projections.worklists.unreviewed_uploads import unreviewed_uploads
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import (
    EAT_BASIS,
    OTHER_OFFICE,
    TOPIC,
    CaseDriver,
    catch_up,
    comparable,
    dump,
    expected_rows,
    rebuilt_dump,
    views_for,
)

TODAY = date(2024, 3, 4)  # the FakeClock's first day


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def check_against_oracle_and_rebuild(
    service: AkteService, views: ViewsStore, cases: Sequence[CaseDriver]
) -> None:
    catch_up(service, views)
    incremental = dump(service, views)
    states = [service.get_case(case.case_id) for case in cases]
    assert comparable(incremental) == expected_rows(states)
    assert rebuilt_dump(service, views) == incremental


def receive(case: CaseDriver, **fields: Any) -> int:
    fields.setdefault("channel", "contact_form")
    fields.setdefault("topic", TOPIC)
    fields.setdefault("legal_basis", EAT_BASIS)
    number: int = case("receive_procedure", **fields)
    return number


def keys(page: Page[Any]) -> list[tuple[str, int]]:
    return [(item.case_id, item.procedure_number) for item in page.items]


def upload(case: CaseDriver, *, source: str = "contact_form", n: int = 1) -> int:
    number: int = case(
        "attach_document",
        kind="employment_contract",
        sha256=f"{n:064x}",
        size_bytes=1000 + n,
        media_type="application/pdf",
        page_count=2,
        source=source,
    )
    return number


# ------------------------------------------------------------- open procedures


def test_my_open_procedures_follow_assignment_requests_reassignment_and_decision(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    number = receive(case)
    catch_up(service, views)
    assert open_procedures_by_assignee(views, assignee="sb-02", today=TODAY).items == []

    clock.advance(days=2)
    case("assign_procedure", procedure_number=number, assignee="sb-02")
    case("request_documents", procedure_number=number, what=["Pass"], due_on=date(2024, 4, 1))
    case("request_documents", procedure_number=number, what=["Foto"], due_on=date(2024, 3, 20))
    catch_up(service, views)
    today = TODAY + timedelta(days=10)
    [item] = open_procedures_by_assignee(views, assignee="sb-02", today=today).items
    assert (item.case_id, item.reference, item.procedure_number) == (
        case.id,
        case.reference,
        number,
    )
    assert (item.topic, item.channel, item.legal_basis) == (TOPIC, "contact_form", EAT_BASIS)
    assert item.status == "documents_requested"
    assert item.received_on == TODAY
    assert item.age_days == 10
    assert item.assigned_on == TODAY + timedelta(days=2)
    assert item.earliest_due_on == date(2024, 3, 20)
    assert item.document_requests == 2
    assert item.office_id == "abh-musterstadt"

    case("assign_procedure", procedure_number=number, assignee="sb-03")
    catch_up(service, views)
    assert open_procedures_by_assignee(views, assignee="sb-02", today=today).items == []
    [moved] = open_procedures_by_assignee(views, assignee="sb-03", today=today).items
    assert moved.status == "documents_requested"  # a re-assignment keeps the status
    assert (
        open_procedures_by_assignee(
            views, assignee="sb-03", today=today, office_id=OTHER_OFFICE
        ).items
        == []
    )

    case("decide_procedure", procedure_number=number, outcome="granted")
    catch_up(service, views)
    assert open_procedures_by_assignee(views, assignee="sb-03", today=today).items == []
    check_against_oracle_and_rebuild(service, views, [case])


def test_the_unassigned_queue_is_oldest_first_per_office(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    here = [CaseDriver.open(service) for _ in range(3)]
    there = CaseDriver.open(service, office_id=OTHER_OFFICE)
    received: list[tuple[str, int]] = []
    for _ in range(2):
        for case in (*here, there):
            clock.advance(hours=1)
            received.append((case.id, receive(case, channel="mail")))
    withdrawn = here[1]
    withdrawn("decide_procedure", procedure_number=1, outcome="withdrawn")
    here[2]("assign_procedure", procedure_number=2, assignee="sb-04")
    here[0]("request_documents", procedure_number=1, what=["Pass"], due_on=date(2024, 5, 1))
    catch_up(service, views)

    all_offices = unassigned_procedures(views, today=TODAY + timedelta(days=1))
    expected = [k for k in received if k not in {(withdrawn.id, 1), (here[2].id, 2)}]
    assert keys(all_offices) == expected
    mine = unassigned_procedures(views, today=TODAY, office_id="abh-musterstadt")
    assert keys(mine) == [k for k in expected if k[0] != there.id]
    first = mine.items[0]
    assert (first.status, first.earliest_due_on, first.document_requests) == (
        "documents_requested",
        date(2024, 5, 1),
        1,
    )
    assert first.age_days == 0
    check_against_oracle_and_rebuild(service, views, [*here, there])


def test_a_procedure_received_after_midnight_in_germany_is_listed_on_that_day(
    service: AkteService, views: ViewsStore
) -> None:
    """23:30 UTC on 3 March is 00:30 on 4 March in Berlin: the day the law counts from,
    and the day the domain takes as the day of receipt (a due day must follow it)."""
    case = CaseDriver.open(service, at=datetime(2024, 3, 3, 23, 0, tzinfo=UTC))
    number = receive(case, at=datetime(2024, 3, 3, 23, 30, tzinfo=UTC))
    catch_up(service, views)

    [row] = unassigned_procedures(views, today=date(2024, 3, 4)).items

    assert (row.procedure_number, row.received_on, row.age_days) == (number, date(2024, 3, 4), 0)
    check_against_oracle_and_rebuild(service, views, [case])


# ------------------------------------------------------------------ overdue


def test_overdue_document_requests_are_those_due_before_today(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    early, late, none = (CaseDriver.open(service) for _ in range(3))
    for case in (early, late, none):
        receive(case)
    early("assign_procedure", procedure_number=1, assignee="sb-02")
    early("request_documents", procedure_number=1, what=["Pass"], due_on=date(2024, 3, 10))
    clock.advance(days=1)
    early("request_documents", procedure_number=1, what=["Foto"], due_on=date(2024, 4, 10))
    late("request_documents", procedure_number=1, what=["Pass"], due_on=date(2024, 3, 20))
    catch_up(service, views)

    def overdue(today: date, **filters: Any) -> list[str]:
        page = overdue_document_requests(views, today=today, **filters)
        return [item.case_id for item in page.items]

    assert overdue(date(2024, 3, 10)) == []  # due today is not overdue yet
    assert overdue(date(2024, 3, 11)) == [early.id]
    assert overdue(date(2024, 3, 21)) == [early.id, late.id]
    assert overdue(date(2024, 3, 21), assignee="sb-02") == [early.id]
    assert overdue(date(2024, 3, 21), office_id=OTHER_OFFICE) == []
    [item] = overdue_document_requests(views, today=date(2024, 3, 11)).items
    assert (item.earliest_due_on, item.latest_due_on, item.document_requests) == (
        date(2024, 3, 10),
        date(2024, 4, 10),
        2,
    )
    assert item.days_overdue == 1
    assert item.last_requested_on == TODAY + timedelta(days=1)
    assert item.assignee == "sb-02"

    early("decide_procedure", procedure_number=1, outcome="refused", reason="fehlt")
    catch_up(service, views)
    assert overdue(date(2024, 3, 21)) == [late.id]
    check_against_oracle_and_rebuild(service, views, [early, late, none])


# --------------------------------------------------------------- expiring


def test_expiring_documents_within_the_window_soonest_first(
    service: AkteService, views: ViewsStore
) -> None:
    case = CaseDriver.open(service)
    other = CaseDriver.open(service, office_id=OTHER_OFFICE)
    eat = case(
        "issue_residence_document",
        kind="eat",
        legal_basis=EAT_BASIS,
        valid_from=date(2023, 1, 1),
        valid_until=date(2024, 3, 20),
        document_number="Y00ABC123",
    )
    duldung = case(
        "issue_residence_document",
        kind="duldung",
        legal_basis="aufenthg-60a",
        valid_from=date(2024, 1, 1),
        valid_until=date(2024, 3, 31),
        document_number="D00000001",
    )
    gestattung = other(
        "issue_residence_document",
        kind="aufenthaltsgestattung",
        legal_basis="asylg-55",
        valid_from=date(2024, 1, 1),
        valid_until=date(2024, 3, 10),
        document_number="G00000001",
    )
    procedure = receive(case)
    fiction = case(
        "issue_fiction_certificate",
        kind="81_4",
        valid_from=date(2024, 3, 1),
        valid_until=date(2024, 3, 5),
        carrier_sheet_number="FB0000001",
        procedure_number=procedure,
        # Applied for today, while the eAT above is valid (until 20 March).
        order_basis="timely_application",
        previous_title_valid_until=date(2024, 3, 20),
    )
    far = case(
        "issue_residence_document",
        kind="eat",
        legal_basis=EAT_BASIS,
        valid_from=date(2024, 1, 1),
        valid_until=date(2026, 1, 1),
        document_number="Y00FAR0001",
    )
    catch_up(service, views)

    def expiring(**query: Any) -> list[tuple[str, int]]:
        query.setdefault("today", TODAY)
        return [(item.kind, item.number) for item in expiring_documents(views, **query).items]

    assert expiring() == [
        ("fiction_certificate", fiction),
        ("aufenthaltsgestattung", gestattung),
        ("eat", eat),
        ("duldung", duldung),
    ]
    assert expiring(within_days=7) == [
        ("fiction_certificate", fiction),
        ("aufenthaltsgestattung", gestattung),
    ]
    assert expiring(kinds={"eat", "duldung"}) == [("eat", eat), ("duldung", duldung)]
    assert expiring(office_id=OTHER_OFFICE) == [("aufenthaltsgestattung", gestattung)]
    assert expiring(today=date(2024, 3, 6)) == [
        ("aufenthaltsgestattung", gestattung),
        ("eat", eat),
        ("duldung", duldung),
    ]
    assert expiring(today=date(2024, 3, 6), include_lapsed=True)[0] == (
        "fiction_certificate",
        fiction,
    )
    [item] = expiring_documents(views, today=TODAY, kinds={"fiction_certificate"}).items
    assert (item.fiction_kind, item.days_left, item.procedure_number) == ("81_4", 1, procedure)
    assert expiring(within_days=800)[-1] == ("eat", far)

    case(
        "extend_fiction_certificate",
        certificate_number=fiction,
        valid_until=date(2024, 6, 5),
        new_carrier_sheet_number=None,
    )
    case(
        "extend_residence_document",
        residence_document_number=eat,
        valid_until=date(2025, 3, 20),
        reason=None,
    )
    case(
        "transfer_eat_to_new_passport", residence_document_number=far, new_card_number="Y00NEW0001"
    )
    case(
        "end_residence_document",
        residence_document_number=duldung,
        end_reason="departed",
        reason=None,
    )
    catch_up(service, views)
    assert expiring() == [("aufenthaltsgestattung", gestattung)]
    case("end_fiction_certificate", certificate_number=fiction, end_reason="decision")
    catch_up(service, views)
    assert expiring(within_days=800) == [
        ("aufenthaltsgestattung", gestattung),
        ("eat", eat),
        ("eat", far),
    ]
    with pytest.raises(InvalidQuery):
        expiring(kinds={"passport"})
    with pytest.raises(InvalidQuery):
        expiring(within_days=-1)
    check_against_oracle_and_rebuild(service, views, [case, other])


# ------------------------------------------------------------------ eAT cards


def test_eat_cards_awaiting_handover_from_order_to_handover_and_reorder(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    case = CaseDriver.open(service)
    eat = case(
        "issue_residence_document",
        kind="eat",
        legal_basis=EAT_BASIS,
        valid_from=date(2024, 3, 1),
        valid_until=date(2026, 3, 1),
        document_number="Y00ABC123",
    )
    case(
        "issue_residence_document",
        kind="duldung",
        legal_basis="aufenthg-60a",
        valid_from=date(2024, 3, 1),
        valid_until=date(2024, 9, 1),
        document_number="D00000001",
    )
    catch_up(service, views)

    def cards(**query: Any) -> list[tuple[int, str]]:
        query.setdefault("today", TODAY + timedelta(days=40))
        page = eat_cards_awaiting_handover(views, **query)
        return [(item.residence_document_number, item.card_status) for item in page.items]

    assert cards() == []  # issued, card not ordered yet
    case("order_eat_card", residence_document_number=eat)
    catch_up(service, views)
    assert cards() == [(eat, "ordered")]
    [item] = eat_cards_awaiting_handover(views, today=TODAY + timedelta(days=40)).items
    assert (item.ordered_on, item.days_since_ordered, item.arrived_on) == (TODAY, 40, None)
    assert (item.legal_basis, item.valid_until) == (EAT_BASIS, date(2026, 3, 1))

    clock.advance(days=30)
    case("record_eat_card_arrived", residence_document_number=eat)
    catch_up(service, views)
    assert cards() == [(eat, "arrived")]
    assert cards(card_status=["ordered"]) == []
    assert cards(card_status=["arrived"]) == [(eat, "arrived")]
    [item] = eat_cards_awaiting_handover(views, today=TODAY).items
    assert item.arrived_on == TODAY + timedelta(days=30)

    case("hand_over_eat_card", residence_document_number=eat)
    catch_up(service, views)
    assert cards() == []

    clock.advance(days=100)
    case("transfer_eat_to_new_passport", residence_document_number=eat, new_card_number="Y00NEW001")
    case(
        "extend_residence_document",
        residence_document_number=eat,
        valid_until=date(2027, 3, 1),
        reason=None,
    )
    catch_up(service, views)
    [item] = eat_cards_awaiting_handover(views, today=TODAY).items
    assert (item.card_status, item.ordered_on, item.arrived_on) == (
        "ordered",
        TODAY + timedelta(days=130),
        None,
    )
    assert (item.transfers_to_new_passport, item.valid_until) == (1, date(2027, 3, 1))

    case(
        "end_residence_document",
        residence_document_number=eat,
        end_reason="revoked",
        reason="Widerruf",
    )
    catch_up(service, views)
    assert cards() == []
    with pytest.raises(InvalidQuery):
        cards(card_status=["handed_over"])
    check_against_oracle_and_rebuild(service, views, [case])


# ------------------------------------------------------------------ uploads


def test_unreviewed_uploads_are_contact_form_documents_until_reviewed(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    first, second = CaseDriver.open(service), CaseDriver.open(service, office_id=OTHER_OFFICE)
    upload(first, source="scan", n=1)
    clock.advance(hours=1)
    uploaded_first = upload(first, n=2)
    clock.advance(hours=1)
    uploaded_second = upload(second, n=3)
    clock.advance(hours=1)
    upload(first, source="mail", n=4)
    reviewed = upload(first, n=5)
    first("review_document", document_number=reviewed)
    catch_up(service, views)

    page = unreviewed_uploads(views, today=TODAY + timedelta(days=3))
    assert [(i.case_id, i.document_number) for i in page.items] == [
        (first.id, uploaded_first),
        (second.id, uploaded_second),
    ]
    assert (page.items[0].kind, page.items[0].media_type, page.items[0].page_count) == (
        "employment_contract",
        "application/pdf",
        2,
    )
    assert page.items[0].age_days == 3
    only_other = unreviewed_uploads(views, today=TODAY, office_id=OTHER_OFFICE)
    assert [i.document_number for i in only_other.items] == [uploaded_second]

    second("review_document", document_number=uploaded_second)
    catch_up(service, views)
    assert [i.case_id for i in unreviewed_uploads(views, today=TODAY).items] == [first.id]
    check_against_oracle_and_rebuild(service, views, [first, second])


# ------------------------------------------------------- transfer and closure


def _open_items(case: CaseDriver) -> None:
    """Give the case something on every list a decided-procedure file can still hold."""
    eat = case(
        "issue_residence_document",
        kind="eat",
        legal_basis=EAT_BASIS,
        valid_from=date(2024, 1, 1),
        valid_until=date(2024, 3, 20),
        document_number="Y00ABC123",
    )
    case("order_eat_card", residence_document_number=eat)
    case(
        "issue_fiction_certificate",
        kind="81_3_1",
        valid_from=date(2024, 3, 1),
        valid_until=date(2024, 3, 25),
        carrier_sheet_number="FB0000001",
    )
    upload(case)
    number = receive(case)
    case("decide_procedure", procedure_number=number, outcome="granted")


def test_transfer_and_closure_remove_the_files_open_items_for_good(
    service: AkteService, views: ViewsStore
) -> None:
    moving, closing, staying = (CaseDriver.open(service) for _ in range(3))
    for case in (moving, closing, staying):
        _open_items(case)
    catch_up(service, views)
    assert {i.case_id for i in unreviewed_uploads(views, today=TODAY).items} == {
        moving.id,
        closing.id,
        staying.id,
    }

    moving("transfer_to_office", to_office_id=OTHER_OFFICE, reason=None)
    closing("close_case", closure_reason="naturalised")
    # What the domain still allows afterwards must not bring the items back.
    upload(moving, n=9)
    moving("end_fiction_certificate", certificate_number=1, end_reason="withdrawal")
    moving("add_note", text="Akte abgegeben")
    closing("receive_inquiry", kind="naturalisation")
    catch_up(service, views)

    today = TODAY
    lists: list[set[str]] = [
        {i.case_id for i in unreviewed_uploads(views, today=today).items},
        {i.case_id for i in expiring_documents(views, today=today).items},
        {i.case_id for i in eat_cards_awaiting_handover(views, today=today).items},
    ]
    assert lists == [{staying.id}] * 3
    check_against_oracle_and_rebuild(service, views, [moving, closing, staying])


# ---------------------------------------------------------------- pagination


def test_pages_follow_a_stable_order_without_duplicates_or_gaps(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    cases = [CaseDriver.open(service) for _ in range(4)]
    for round_ in range(6):
        for case in cases:
            receive(case)
            if round_ % 2 == 0:
                clock.advance(minutes=1)  # some procedures share a received_at
    catch_up(service, views)
    everything = unassigned_procedures(views, today=TODAY, limit=MAX_PAGE_SIZE)
    assert len(everything.items) == 24
    assert everything.next_cursor is None
    received = sorted(
        (p.received_at, case.id, p.number)
        for case in cases
        for p in service.get_case(case.case_id).procedures
    )
    assert keys(everything) == [(case_id, number) for _, case_id, number in received]

    pages: list[tuple[str, int]] = []
    cursor: str | None = None
    while True:
        page = unassigned_procedures(views, today=TODAY, limit=5, cursor=cursor)
        assert len(page.items) <= 5
        pages += keys(page)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == keys(everything)

    # Changes between pages only affect what is still to come.
    first = unassigned_procedures(views, today=TODAY, limit=5)
    gone_case, gone_number = keys(first)[0]
    cases_by_id = {case.id: case for case in cases}
    cases_by_id[gone_case]("assign_procedure", procedure_number=gone_number, assignee="sb-02")
    clock.advance(hours=1)
    newest = cases[0]
    newest_number = receive(newest)
    catch_up(service, views)
    rest: list[tuple[str, int]] = []
    cursor = first.next_cursor
    while cursor is not None:
        page = unassigned_procedures(views, today=TODAY, limit=7, cursor=cursor)
        rest += keys(page)
        cursor = page.next_cursor
    assert keys(first) + rest == [*keys(everything), (newest.id, newest_number)]

    with pytest.raises(InvalidCursor):
        unassigned_procedures(views, today=TODAY, cursor="not-a-cursor")
    assert first.next_cursor is not None
    with pytest.raises(InvalidCursor):  # a cursor of another worklist
        open_procedures_by_assignee(views, assignee="sb-02", today=TODAY, cursor=first.next_cursor)
    for limit in (0, MAX_PAGE_SIZE + 1):
        with pytest.raises(InvalidQuery):
            unassigned_procedures(views, today=TODAY, limit=limit)


def test_pages_of_each_worklist_with_filters(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    cases = [CaseDriver.open(service, office_id=(OTHER_OFFICE if i % 3 else "abh-musterstadt"))
             for i in range(9)]  # fmt: skip
    for n, case in enumerate(cases):
        number = receive(case)
        case("assign_procedure", procedure_number=number, assignee=f"sb-0{n % 2 + 1}")
        case(
            "request_documents",
            procedure_number=number,
            what=["Pass"],
            due_on=TODAY + timedelta(days=1 + n % 3),
        )
        upload(case, n=n)
        eat = case(
            "issue_residence_document",
            kind="eat",
            legal_basis=EAT_BASIS,
            valid_from=date(2024, 1, 1),
            valid_until=TODAY + timedelta(days=n % 4),
            document_number=f"Y00ABC{n:03d}",
        )
        case("order_eat_card", residence_document_number=eat)
        clock.advance(minutes=7)
    catch_up(service, views)
    later = TODAY + timedelta(days=10)
    queries: list[Any] = [
        lambda **kw: open_procedures_by_assignee(views, assignee="sb-01", today=later, **kw),
        lambda **kw: overdue_document_requests(views, today=later, **kw),
        lambda **kw: overdue_document_requests(views, today=later, assignee="sb-02", **kw),
        lambda **kw: expiring_documents(views, today=TODAY, **kw),
        lambda **kw: eat_cards_awaiting_handover(views, today=later, **kw),
        lambda **kw: unreviewed_uploads(views, today=later, **kw),
    ]
    for query in queries:
        for office in (None, OTHER_OFFICE):
            whole = query(office_id=office, limit=MAX_PAGE_SIZE).items
            assert whole, "every query finds rows"
            if office is not None:
                assert {item.office_id for item in whole} == {office}
            paged: list[Any] = []
            cursor: str | None = None
            while True:
                page = query(office_id=office, limit=2, cursor=cursor)
                paged += page.items
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert paged == whole
    check_against_oracle_and_rebuild(service, views, cases)
