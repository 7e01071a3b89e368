"""The history read in one query per chunk and written batch by batch (issue 11) is, byte
for byte, what the path before it wrote: the library's per-aggregate reads, an entry
object per event and one JSON document.

The previous path is kept here as the reference, as it was: :func:`previous_history_json`.
Histories: every event kind (``adapters.simulation.case_histories``), a closed and erased
one as recorded, and one whose keys were destroyed by an erasure through the service (personal
fields read
as redacted stand-ins); both stores, with and without personal data, pages, filters, and
read and decode sizes small enough that every page crosses their boundaries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest

from adapters.reports import case_history
from adapters.reports.case_history import build_history, build_history_json, history_json
from adapters.simulation.case_histories import NOW as HISTORIES_AT
from adapters.simulation.case_histories import closed_case, rich_case
from domain.case_file import CaseFile
from domain.case_reference import CaseReference
from domain.history import ENVELOPE_FIELDS, HistoryEntry, HistoryFilter, describe
from domain.personal import REDACTED_TEXT, personal_fields
from service import AkteService
from service_common import CaseNotFound
from tests.conftest import FakeClock

# ------------------------------------------------------- the previous path


def previous_entry(event: CaseFile.Event, *, with_personal_data: bool) -> HistoryEntry:
    """``domain.history.history_entry`` before issue 11."""
    personal = personal_fields(type(event))
    fields = {name: value for name, value in vars(event).items() if name not in ENVELOPE_FIELDS}
    withheld = sorted(name for name in fields if name in personal)
    if not with_personal_data:
        fields = {name: value for name, value in fields.items() if name not in personal}
    reason = fields.get("reason")
    return HistoryEntry(
        version=event.originator_version,
        kind=type(event).__name__,
        description=describe(event),
        by=event.by,
        at=event.at,
        recorded_at=event.timestamp,
        legal_basis=fields.get("legal_basis"),
        reason=reason if isinstance(reason, str) else None,
        data=fields,
        withheld=[] if with_personal_data else withheld,
    )


def previous_history_json(
    service: AkteService,
    case_id: UUID,
    *,
    with_personal_data: bool,
    criteria: HistoryFilter,
    after_version: int,
    limit: int,
) -> bytes:
    """``history_json(build_history(...))`` before issue 11, in one read of every event."""
    [opened] = service.case_events(case_id, limit=1)
    assert isinstance(opened, CaseFile.Opened)
    events = service.case_events(case_id, after_version=after_version)
    matching = [e for e in events if criteria.matches(e)]
    page = matching[:limit]
    document = {
        "case_id": str(case_id),
        "reference": opened.reference,
        "office_id": opened.office_id,
        "version": service.case_head_version(case_id),
        "personal_data_shown": with_personal_data,
        "next_after_version": page[-1].originator_version if len(matching) > limit else None,
        "entries": [previous_entry(e, with_personal_data=with_personal_data) for e in page],
    }
    return orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS)


# ------------------------------------------------------------------ cases


EVERYTHING = HistoryFilter()


@dataclass(frozen=True)
class Page:
    criteria: HistoryFilter = EVERYTHING
    after_version: int = 0
    limit: int = case_history.MAX_HISTORY_PAGE


PAGES = [
    Page(),
    Page(limit=1),
    Page(limit=3),
    Page(after_version=4, limit=5),
    Page(after_version=7),
    Page(after_version=10_000),
    Page(criteria=HistoryFilter(kinds=frozenset({"NoteAdded", "ProcedureDecided"}))),
    Page(criteria=HistoryFilter(by="sb-01"), after_version=2, limit=2),
    Page(criteria=HistoryFilter(by="nobody")),
]


def saved_histories(service: AkteService, clock: FakeClock) -> dict[str, UUID]:
    rich, closed, erased = rich_case(), closed_case(), rich_case()
    service.save(rich, closed, erased)
    # The erasure comes a day after the histories' last step (their transfer).
    clock.now = HISTORIES_AT + timedelta(days=1)
    service.data_protection.erase_personal_data(
        erased.id,
        expected_version=erased.version,
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-01",
    )
    return {"rich": rich.id, "closed and erased": closed.id, "keys destroyed": erased.id}


@pytest.fixture(params=["as deployed", "small reads and batches"])
def sizes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if request.param != "as deployed":
        monkeypatch.setattr(case_history, "_MIN_CHUNK", 2)
        monkeypatch.setattr(case_history, "_DECODE_BATCH", 3)


@pytest.mark.usefixtures("sizes")
def test_every_page_is_byte_for_byte_what_the_previous_path_wrote(
    service: AkteService, clock: FakeClock
) -> None:
    histories = saved_histories(service, clock)
    checked = 0
    for case_id in histories.values():
        for with_personal_data in (True, False):
            for page in PAGES:
                expected = previous_history_json(
                    service,
                    case_id,
                    with_personal_data=with_personal_data,
                    criteria=page.criteria,
                    after_version=page.after_version,
                    limit=page.limit,
                )
                arguments: dict[str, Any] = {
                    "criteria": page.criteria,
                    "with_personal_data": with_personal_data,
                    "after_version": page.after_version,
                    "limit": page.limit,
                }
                written = build_history_json(service, case_id, **arguments)
                assert written.body == expected, (case_id, with_personal_data, page)
                assert history_json(build_history(service, case_id, **arguments)) == expected
                document = orjson.loads(expected)
                assert written.version == document["version"]
                assert written.next_after_version == document["next_after_version"]
                checked += len(document["entries"])
    assert checked > 100


def test_an_erased_history_reads_redacted_and_withholds_the_same_fields(
    service: AkteService, clock: FakeClock
) -> None:
    erased = saved_histories(service, clock)["keys destroyed"]

    shown = orjson.loads(build_history_json(service, erased, with_personal_data=True).body)
    hidden = orjson.loads(build_history_json(service, erased, with_personal_data=False).body)

    notes = [e for e in shown["entries"] if e["kind"] == "NoteAdded"]
    assert [note["data"]["text"] for note in notes] == [REDACTED_TEXT]
    assert shown["entries"][-1]["kind"] == "PersonalDataErased"
    assert "Notiz" not in str(shown)
    assert "Beispiel" not in str(shown)
    opened = hidden["entries"][0]
    assert "surname" in opened["withheld"]
    assert "surname" not in opened["data"]


def test_stores_without_a_fast_reader_are_read_through_the_service(
    service: AkteService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    case_id = saved_histories(service, clock)["rich"]
    fast = build_history_json(service, case_id, with_personal_data=False, limit=4)

    monkeypatch.setattr(case_history, "_case_event_rows", lambda recorder: None)

    assert case_history.case_event_source(service).__class__.__name__ == "_ServiceEvents"
    assert build_history_json(service, case_id, with_personal_data=False, limit=4) == fast


def test_an_unknown_id_or_another_aggregate_has_no_history(service: AkteService) -> None:
    opened = service.open_case(
        office_id="abh-musterstadt", master_data=rich_case().master_data, by="sb-01"
    )
    reference = service.get_case(opened.case_id).reference
    # The file number's claim: an aggregate in the same store, but no case file.
    claim = CaseReference.id_for("abh-musterstadt", reference)
    for unknown in (uuid4(), claim):
        for after_version in (0, 3):
            with pytest.raises(CaseNotFound):
                build_history_json(
                    service, unknown, with_personal_data=True, after_version=after_version
                )
            with pytest.raises(CaseNotFound):
                build_history(
                    service, unknown, with_personal_data=True, after_version=after_version
                )
