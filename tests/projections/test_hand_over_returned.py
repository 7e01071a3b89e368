"""A hand-over the other office returned (``CaseFile.HandOverReturned``) in the read
models, on SQLite and PostgreSQL: the file is active again in the engine's table of case
files, its open items are back on the worklists (rebuilt from its history), and what
happens on it afterwards reaches them again; the retention
period no longer runs from the transfer; the yearly statistics do not count it as a
transfer out. A rebuild from scratch gives the very same rows."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import pytest

from adapters.settings import Settings
from adapters.simulation.legacy_scans import make_pdf
from domain.case_file import CaseFile
from projections.figures import statistics
from projections.projection import CaseRows
from projections.storage import ViewsStore
from projections.worklists import retention_due
from projections.worklists.expiring_documents import expiring_documents
from projections.worklists.unreviewed_uploads import unreviewed_uploads
from service import AkteService
from service_intake import IncomingDocument
from tests.support.file_transfers import (
    OFFICE_A,
    OFFICE_B,
    ask_for,
    deliver,
    file_with_history,
    forged_file,
    returned_file,
)
from tests.support.projections import (
    catch_up,
    comparable,
    dump,
    expected_rows,
    rebuilt_dump,
    views_for,
)

TODAY = datetime(2024, 3, 4, tzinfo=UTC).date()  # the FakeClock's first day


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def _statuses(service: AkteService, views: ViewsStore, case_id: str) -> set[Any]:
    """The file's status in every worklist's table of case files."""
    found = set()
    for name, rows in dump(service, views).items():
        if name.endswith("_cases"):
            found |= {row[3] for row in rows if row[0] == case_id}
    return found


def test_a_returned_file_is_active_again_and_its_new_items_reach_the_worklists(
    service: AkteService, views: ViewsStore
) -> None:
    moved, _handled = returned_file(service)
    case_id = str(moved.case_id)
    catch_up(service, views)
    assert _statuses(service, views, case_id) == {"active"}
    # What the transfer removed is back: the eAT on the list of expiring documents, and
    # every list holds what the file's state says, as if it had never left.
    expiring = expiring_documents(views, today=date(2026, 2, 20))
    assert case_id in {item.case_id for item in expiring.items}
    state = service.get_case(moved.case_id)
    assert comparable(dump(service, views)) == expected_rows([state])

    # The person sends a document through the contact form: it is on the list again.
    _upload(service, moved.case_id)
    catch_up(service, views)
    unreviewed = {item.case_id for item in unreviewed_uploads(views, today=TODAY).items}
    assert case_id in unreviewed
    assert comparable(dump(service, views)) == expected_rows([service.get_case(moved.case_id)])
    assert rebuilt_dump(service, views) == dump(service, views)


def test_what_reached_the_file_while_it_was_away_is_listed_once_it_is_back(
    service: AkteService, views: ViewsStore
) -> None:
    """An upload to the transferred file (the domain allows it) is not listed while the
    file is away, and is once it came back."""
    moved = file_with_history(service, OFFICE_A)
    _request, message = ask_for(service)
    sent = deliver(message, service, OFFICE_A)
    assert sent.answer is not None
    _upload(service, moved.case_id)
    catch_up(service, views)
    assert str(moved.case_id) not in _unreviewed(views)
    back = deliver(forged_file(sent.answer), service, OFFICE_B).answer
    assert back is not None
    assert deliver(back, service, OFFICE_A).outcome == "reopened"
    catch_up(service, views)
    assert str(moved.case_id) in _unreviewed(views)
    assert comparable(dump(service, views)) == expected_rows([service.get_case(moved.case_id)])
    assert rebuilt_dump(service, views) == dump(service, views)


def _unreviewed(views: ViewsStore) -> set[str]:
    return {item.case_id for item in unreviewed_uploads(views, today=TODAY).items}


def _upload(service: AkteService, case_id: UUID) -> None:
    pdf = make_pdf(1)
    service.intake.upload_document(
        case_id,
        expected_version=service.get_case(case_id).version,
        by="portal",
        document=IncomingDocument(
            content=io.BytesIO(pdf),
            sha256=hashlib.sha256(pdf).hexdigest(),
            size_bytes=len(pdf),
            media_type="application/pdf",
            page_count=1,
            kind="employment_contract",
        ),
        source="contact_form",
    )


def test_the_retention_period_no_longer_runs_from_a_returned_transfer(
    service: AkteService, views: ViewsStore
) -> None:
    moved, _handled = returned_file(service)
    projections = (retention_due.PROJECTION,)
    catch_up(service, views, projections)
    columns = [field.name for field in fields(retention_due.RetentionRow)]
    [row] = [
        dict(zip(columns, values, strict=True))
        for values in dump(service, views, projections)[retention_due.TABLE.name]
        if values[0] == str(moved.case_id)
    ]
    assert row["transferred_on"] is None
    assert rebuilt_dump(service, views, projections) == dump(service, views, projections)


def test_a_returned_transfer_takes_back_what_it_counted_as_leaving() -> None:
    case = CaseRows("c1", statistics.PROJECTION.tables)
    case.office_id, case.reference, case.status = OFFICE_A, "2024-000001", "active"
    at = datetime(2024, 12, 30, 9, 0, tzinfo=UTC)
    row = statistics.FactRow(
        case_id="c1",
        office_id=OFFICE_A,
        reference="2024-000001",
        figure="procedures_transferred_open",
        item=1,
        year=2024,
        month=12,
        at=at,
        event="TransferredToOffice",
        version=5,
        actor="sb-01",
        kind="",
        channel="appointment",
        legal_basis="",
        days=-1,
        amount_cents=0,
        customer="",
    )
    case.put(statistics.FACTS, row)
    kept = statistics.FactRow(**{**vars(row), "figure": "procedures_received"})
    case.put(statistics.FACTS, kept)
    event = object.__new__(CaseFile.HandOverReturned)
    handler = statistics.PROJECTION.handlers[CaseFile.HandOverReturned]
    handler(case, event)
    assert [r.figure for r in case.rows(statistics.FACTS)] == ["procedures_received"]
