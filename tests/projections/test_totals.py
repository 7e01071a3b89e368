"""Totals: counts kept beside a read model's rows, in step with them batch by batch."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from adapters.settings import Settings
from domain.case_file import CaseFile
from projections.projection import CaseRows, Projection, Table, Totals, handlers, on
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import TOPIC, CaseDriver, engine_for, views_for


@dataclass
class QueuedRow:
    case_id: str
    office_id: str
    reference: str
    procedure_number: int
    channel: str
    legal_basis: str | None
    document_requests: int


COUNTED = Table(
    "queue_totals_test",
    QueuedRow,
    key=("procedure_number",),
    totals=(
        Totals(
            "queue_totals_test_by_channel",
            group_by=("office_id", "channel"),
            sums=("document_requests",),
        ),
    ),
)


def _received(case: CaseRows, event: CaseFile.ProcedureReceived) -> None:
    row = QueuedRow(
        case.case_id,
        case.office_id,
        case.reference,
        event.procedure_number,
        event.channel,
        event.legal_basis,
        0,
    )
    case.put(COUNTED, row)


def _documents_requested(case: CaseRows, event: CaseFile.DocumentsRequested) -> None:
    row = case.get(COUNTED, event.procedure_number)
    if row is not None:
        row.document_requests += 1


def _assigned(case: CaseRows, event: CaseFile.ProcedureAssigned) -> None:
    case.remove(COUNTED, event.procedure_number)


QUEUE_WITH_TOTALS = Projection(
    "queue_totals_test",
    (COUNTED,),
    handlers(
        on(CaseFile.ProcedureReceived, _received),
        on(CaseFile.ProcedureAssigned, _assigned),
        on(CaseFile.DocumentsRequested, _documents_requested),
    ),
)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def expected_totals(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    counts: Counter[tuple[object, object]] = Counter()
    requests: Counter[tuple[object, object]] = Counter()
    for row in rows:
        group = (row[1], row[4])  # office_id, channel
        counts[group] += 1
        requests[group] += int(str(row[6]))
    return sorted((*group, counts[group], requests[group]) for group in counts)


def test_totals_follow_additions_and_removals_in_batches_of_any_size(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    for n in range(4):
        case = CaseDriver.open(service)
        for k in range(3):
            clock.advance(seconds=10)
            number = case("receive_procedure", channel=("mail", "contact_form")[k % 2], topic=TOPIC)
            if (n + k) % 3 == 0:
                case(
                    "request_documents",
                    procedure_number=number,
                    what=["passport"],
                    due_on=clock.now.date() + timedelta(days=14),
                )
            if (n + k) % 2 == 0:
                case("assign_procedure", procedure_number=number, assignee="sb-01")
    dumps = []
    for batch_size in (1, 3, 5000):
        with engine_for(service, views, [QUEUE_WITH_TOTALS], batch_size=batch_size) as engine:
            engine.rebuild()
            dumps.append(engine.dump())
    rows = dumps[0]["queue_totals_test"]
    assert rows, "the history leaves procedures in the queue"
    assert dumps[0]["queue_totals_test_by_channel"] == expected_totals(rows)
    assert sum(total[2] for total in dumps[0]["queue_totals_test_by_channel"]) == len(rows)
    assert dumps[0] == dumps[1] == dumps[2]


def test_totals_must_group_by_columns_that_exist_and_sum_integers() -> None:
    with pytest.raises(TypeError, match="non-null column"):
        Table(
            "queue_totals_bad",
            QueuedRow,
            totals=(Totals("queue_totals_bad_x", group_by=("legal_basis",)),),
        )
    with pytest.raises(TypeError, match="integer column"):
        Table(
            "queue_totals_bad",
            QueuedRow,
            totals=(Totals("queue_totals_bad_x", group_by=("office_id",), sums=("channel",)),),
        )
    with pytest.raises(ValueError, match="named after"):
        Table(
            "queue_totals_bad",
            QueuedRow,
            totals=(Totals("other_name", group_by=("office_id",)),),
        )
