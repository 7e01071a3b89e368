"""The history decoded a batch at a time (issue 25: the whole 5,000-entry history under
25 ms) reads exactly as the mapper decoding event by event, the path before it.

Compared on both stores, with and without personal data, for every event kind
(``adapters.simulation.case_histories``), a closed and erased file as recorded, a file whose
key an erasure destroyed, business-date (``?on=``) histories of every day the files have
events on, pages and filters, with read and decode sizes small enough that every page
crosses their boundaries. What the batch does not decode itself (a blob that does not
open, a missing key, a topic with a part about another person) is the mapper's, with
the mapper's own error.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any, cast
from uuid import UUID

import orjson
import pytest
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from fastapi.testclient import TestClient

from adapters.bootstrap import build_read_models
from adapters.http.auth.identity import Role
from adapters.personal_data.batch_decoding import BatchDecoder, batch_decoder
from adapters.personal_data.key_store import DataKeyMissing
from adapters.personal_data.mapper import SEALED, PersonalDataMapper
from adapters.reports import case_history
from adapters.reports.case_history import build_history, build_history_json, history_json
from adapters.settings import Settings
from adapters.views.read_models import ReadModels
from domain.history import HistoryFilter
from service import AkteService
from service_data_protection import SEPARATE_PARTS
from tests.adapters.reports.test_case_history_fast import PAGES, saved_histories
from tests.conftest import FakeClock, bearer
from tests.http.routes.test_history import a_case


@pytest.fixture(params=["as deployed", "small reads and batches"])
def sizes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param != "as deployed":
        monkeypatch.setattr(case_history, "_MIN_CHUNK", 2)
        monkeypatch.setattr(case_history, "_DECODE_BATCH", 3)


def _business_days_of(service: AkteService, case_id: UUID) -> list[HistoryFilter]:
    """``?on=`` of every day the file has events on, and the day before the first."""
    zone = service.case_as_of.zone
    days = sorted({event.at.astimezone(zone).date() for event in service.case_events(case_id)})
    before_first = days[0].fromordinal(days[0].toordinal() - 1)
    return [HistoryFilter(at_until=service.case_as_of.end_of(day)) for day in [before_first, *days]]


def _batched(service: AkteService) -> case_history.CaseEventSource[Any]:
    decode_batch = batch_decoder(service.mapper)
    assert decode_batch is not None  # Akte's mapper, as deployed
    return case_history.case_event_source(service, decode_batch=decode_batch)


@pytest.mark.usefixtures("sizes")
def test_every_page_and_business_date_is_byte_for_byte_the_event_by_event_path(
    service: AkteService, clock: FakeClock
) -> None:
    histories = saved_histories(service, clock)
    checked = 0
    on_dates = 0
    for case_id in histories.values():
        days = _business_days_of(service, case_id)
        on_dates += len(days)
        for with_personal_data in (True, False):
            for criteria, after_version, limit in [
                *((p.criteria, p.after_version, p.limit) for p in PAGES),
                *((day, 0, case_history.MAX_HISTORY_PAGE) for day in days),
            ]:
                arguments: dict[str, Any] = {
                    "criteria": criteria,
                    "with_personal_data": with_personal_data,
                    "after_version": after_version,
                    "limit": limit,
                }
                previous = build_history_json(service, case_id, **arguments)
                batched = {"decode_batch": batch_decoder(service.mapper), **arguments}
                written = build_history_json(service, case_id, **batched)
                assert written == previous, (case_id, with_personal_data, criteria, after_version)
                assert history_json(build_history(service, case_id, **batched)) == previous.body
                checked += len(orjson.loads(written.body)["entries"])
    assert checked > 100
    assert on_dates > 3


def test_every_event_decodes_as_the_mapper_decodes_it(
    service: AkteService, clock: FakeClock
) -> None:
    histories = saved_histories(service, clock)
    bulk = _batched(service)
    one_by_one = case_history.case_event_source(service)
    redacted = 0
    for case_id in histories.values():
        rows = bulk.read(case_id, 0, 10_000)
        for batch in (rows, rows[:1], rows[-3:]):
            expected = one_by_one.decode(case_id, batch)
            decoded = bulk.decode(case_id, batch)
            assert [type(e) for e in decoded] == [type(e) for e in expected]
            assert [vars(e) for e in decoded] == [vars(e) for e in expected]
        redacted += sum("[gelöscht]" in str(vars(e)) for e in bulk.decode(case_id, rows))
    assert redacted > 0  # the erased files' fields read as their stand-ins


def _sealed_row(source: case_history.CaseEventSource[Any], case_id: UUID) -> tuple[int, str, bytes]:
    for version, topic, state in source.read(case_id, 0, 10_000):
        if SEALED in orjson.loads(state):
            return version, topic, state
    raise AssertionError("no event with sealed personal data")


def _error_of(action: Any) -> str:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - compared below
        action()
    return f"{type(caught.value).__name__}: {caught.value}"


def test_what_does_not_open_fails_as_in_the_mapper(service: AkteService, clock: FakeClock) -> None:
    case_id = saved_histories(service, clock)["rich"]
    bulk = _batched(service)
    version, topic, state = _sealed_row(bulk, case_id)
    document = orjson.loads(state)
    blob = bytearray(base64.b64decode(document[SEALED]))
    blob[-1] ^= 1  # the tag no longer matches
    document[SEALED] = base64.b64encode(bytes(blob)).decode("ascii")
    tampered = [(version, topic, orjson.dumps(document))]
    garbled = [(version, topic, b"{not json")]

    one_by_one = case_history.case_event_source(service)

    def mapper(rows: list[tuple[int, str, bytes]]) -> Any:
        return lambda: service.mapper.to_domain_event(StoredEvent(case_id, *rows[0]))

    for rows in (tampered, garbled):
        error = _error_of(lambda rows=rows: bulk.decode(case_id, rows))
        assert error == _error_of(mapper(rows))
        assert error == _error_of(lambda rows=rows: one_by_one.decode(case_id, rows))
        assert error.startswith(MapperDeserialisationError.__name__)
    # Another file's id: its key is unknown to the store (reported as the store's failure).
    stranger = UUID(int=case_id.int ^ 1)
    row = [(version, topic, state)]
    error = _error_of(lambda: bulk.decode(stranger, row))
    assert error == _error_of(lambda: one_by_one.decode(stranger, row))
    assert error.endswith(DataKeyMissing.__name__)
    with pytest.raises(DataKeyMissing):
        service.mapper.to_domain_event(StoredEvent(stranger, *row[0]))


def test_topics_with_a_part_about_another_person_are_the_mappers(
    service: AkteService, clock: FakeClock
) -> None:
    assert SEPARATE_PARTS  # otherwise there is nothing to hand over
    case_id = saved_histories(service, clock)["rich"]
    decoder = BatchDecoder(cast(PersonalDataMapper, service.mapper))
    _, topic, _ = _sealed_row(_batched(service), case_id)
    assert decoder._plan(topic) is not None
    for part_topic in SEPARATE_PARTS:
        assert decoder._plan(part_topic) is None


def test_other_mappers_decode_event_by_event(service: AkteService) -> None:
    assert batch_decoder(service.mapper) is not None
    assert batch_decoder(Mapper(service.mapper.transcoder)) is None


@pytest.fixture
def read_models(service: AkteService, settings: Settings) -> Iterator[ReadModels]:
    models = build_read_models(settings, service, follow=False)
    try:
        yield models
    finally:
        models.close()


def test_the_route_decodes_in_batches_and_sends_the_previous_bytes(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case_id = a_case(service, clock, settings.default_office_id)
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    batches: list[int] = []
    decode = BatchDecoder.__call__

    def counting(self: BatchDecoder, originator_id: UUID, rows: Any) -> list[Any]:
        batches.append(len(rows))
        return decode(self, originator_id, rows)

    monkeypatch.setattr(BatchDecoder, "__call__", counting)
    opened_at = service.get_case(case_id).opened_at
    assert opened_at is not None
    day = opened_at.astimezone(service.case_as_of.zone).date()
    for query, criteria in (
        ("", HistoryFilter()),
        (f"?on={day.isoformat()}", HistoryFilter(at_until=service.case_as_of.end_of(day))),
    ):
        batches.clear()
        sent = client.get(f"/cases/{case_id}/history{query}", headers=auditor)
        assert sent.status_code == 200, sent.text
        assert batches == [3]
        previous = build_history_json(service, case_id, criteria=criteria, with_personal_data=True)
        assert sent.content == previous.body
