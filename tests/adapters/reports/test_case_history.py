"""A case file's history, its state at any point, and the difference between two points.

Descriptions for every event class; replay as of every version and every recorded time
equals replaying that many events (hypothesis, both stores, snapshots every few
events); a diff lists exactly the events in between; history filters and pages.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build_service
from adapters.cli.main import main as akte
from adapters.reports import case_history
from adapters.reports.case_history import build_diff, build_history, history_html, history_text
from adapters.settings import Settings
from domain.case_file import CaseFile, MasterData
from domain.errors import DomainError
from domain.history import (
    HistoryFilter,
    case_state,
    describe,
    described_event_classes,
    history_entry,
    state_changes,
)
from domain.personal import personal_fields
from service import AkteService, CaseVersionNotFound, project_case
from tests.adapters.store.test_transcoding import all_events
from tests.conftest import FakeClock

PERSON = MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678")


# ------------------------------------------------------------ descriptions


def test_every_event_class_has_a_german_description() -> None:
    defined = {
        cls
        for name, cls in vars(CaseFile).items()
        if isinstance(cls, type)
        and issubclass(cls, CaseFile.Event)
        and name != "Event"
        # The library's Created on every aggregate; Opened is ours.
        and name != "Created"
    }
    assert defined == described_event_classes()
    described = {type(event) for event in all_events()}
    assert described == defined  # the histories hold one event of each
    for event in all_events():
        text = describe(event)
        assert text, type(event).__name__
        assert not text.startswith("Ereignis"), type(event).__name__


def test_descriptions_and_withheld_entries_hold_no_personal_data() -> None:
    for event in all_events():
        personal = personal_fields(_class_of(event))
        personal_values = [
            str(getattr(event, name)) for name in personal if getattr(event, name) not in (None, [])
        ]
        entry = history_entry(event, with_personal_data=False)
        shown = json.dumps([entry.description, entry.reason, entry.data], default=str)
        for value in personal_values:
            assert value not in shown, (type(event).__name__, value)
        assert set(entry.withheld) == {name for name in personal if name in vars(event)}
        full = history_entry(event, with_personal_data=True)
        assert full.withheld == []
        assert set(full.data) >= set(personal)


def _class_of(event: object) -> type[CaseFile.Event]:
    return cast(type[CaseFile.Event], type(event))


# ----------------------------------------------- generated histories, two stores

Op = Callable[[AkteService, UUID, CaseFile], Any]


def _receive(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    return service.receive_procedure(
        case_id,
        expected_version=case.version,
        by="sb-01",
        channel="mail",
        topic="extend_residence_permit",
    )


def _assign(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    return service.assign_procedure(
        case_id,
        expected_version=case.version,
        by="tl-01",
        procedure_number=max(len(case.procedures), 1),
        assignee="sb-02",
    )


def _decide(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    return service.decide_procedure(
        case_id,
        expected_version=case.version,
        by="sb-02",
        procedure_number=max(len(case.procedures), 1),
        outcome="granted",
        reason="Voraussetzungen erfüllt",
    )


def _note(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    return service.add_note(
        case_id, expected_version=case.version, by="sb-03", text=f"Notiz {case.version}"
    )


def _correct(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    return service.correct_master_data(
        case_id,
        expected_version=case.version,
        by="sb-01",
        corrections={"address": f"Weg {case.version}"},
        reason="Umzug",
    )


def _fiction(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    # § 81 (4) AufenthG: follows the latest application (none yet: refused, no event),
    # received on the last day of the previous title.
    application = case.procedures[-1] if case.procedures else None
    return service.issue_fiction_certificate(
        case_id,
        expected_version=case.version,
        by="sb-01",
        kind="81_4",
        valid_from=date(2024, 3, 4),
        valid_until=date(2024, 6, 3),
        carrier_sheet_number=f"FB{case.version:07d}",
        procedure_number=application.number if application else None,
        order_basis="timely_application",
        previous_title_valid_until=application.received_at.date() if application else None,
    )


def _extend(service: AkteService, case_id: UUID, case: CaseFile) -> Any:
    certificate = case.fiction_certificates[-1] if case.fiction_certificates else None
    until = (certificate.valid_until if certificate else date(2024, 6, 3)) + timedelta(days=90)
    return service.extend_fiction_certificate(
        case_id,
        expected_version=case.version,
        by="sb-01",
        certificate_number=max(len(case.fiction_certificates), 1),
        valid_until=until,
        new_carrier_sheet_number=None,
    )


OPS: tuple[Op, ...] = (_receive, _assign, _decide, _note, _correct, _fiction, _extend)


@pytest.fixture
def snapshotting_service(settings: Settings, clock: FakeClock) -> Iterator[AkteService]:
    """Snapshots every 3 events, so that most points lie between two of them."""
    service = build_service(settings.model_copy(update={"snapshot_interval": 3}), clock=clock)
    try:
        yield service
    finally:
        service.close()


def generated_case(
    service: AkteService, clock: FakeClock, steps: list[tuple[int, int]]
) -> tuple[UUID, list[CaseFile.Event]]:
    """A case file with one event per applicable step (op index, seconds before it)."""
    case_id = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01").case_id
    for op_index, gap in steps:
        clock.advance(seconds=gap)
        case = service.get_case(case_id)
        # Not applicable now (e.g. deciding with nothing open): no event.
        with contextlib.suppress(DomainError):
            OPS[op_index](service, case_id, case)
    return case_id, service.case_events(case_id)


STEPS = st.lists(
    st.tuples(st.integers(0, len(OPS) - 1), st.sampled_from([0, 1, 1, 60, 3600])),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
@given(steps=STEPS, data=st.data())
def test_the_state_as_of_every_version_and_time_is_the_replay_of_that_many_events(
    snapshotting_service: AkteService, clock: FakeClock, steps: list[tuple[int, int]], data: Any
) -> None:
    service = snapshotting_service
    case_id, events = generated_case(service, clock, steps)

    for version in range(1, len(events) + 1):
        replayed = project_case(None, events[:version])
        assert replayed is not None
        assert case_state(service.get_case_at_version(case_id, version)) == case_state(replayed)

    # Each recorded time, a moment before and after it, and times drawn in between.
    first, last = events[0].timestamp, events[-1].timestamp
    moments = {event.timestamp for event in events}
    moments |= {moment + delta for moment in set(moments) for delta in (timedelta(0, -1),)}
    moments |= {last + timedelta(seconds=5)}
    span = max(int((last - first).total_seconds()), 1)
    moments |= {
        first + timedelta(seconds=s)
        for s in data.draw(st.lists(st.integers(0, span), max_size=5), label="seconds")
    }
    for moment in sorted(moments):
        prefix = [event for event in events if event.timestamp <= moment]
        if not prefix:
            with pytest.raises(CaseVersionNotFound, match="did not exist yet"):
                service.get_case_as_of(case_id, moment)
            continue
        expected = project_case(None, prefix)
        assert expected is not None
        assert service.case_version_at(case_id, moment) == len(prefix)
        assert case_state(service.get_case_as_of(case_id, moment)) == case_state(expected)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
    database=None,
)
@given(steps=STEPS, data=st.data())
def test_a_diff_lists_exactly_the_events_in_between_and_their_changes(
    snapshotting_service: AkteService, clock: FakeClock, steps: list[tuple[int, int]], data: Any
) -> None:
    service = snapshotting_service
    case_id, events = generated_case(service, clock, steps)
    head = len(events)
    start = data.draw(st.integers(0, head), label="from")
    end = data.draw(st.integers(max(start, 1), head), label="to")

    diff = build_diff(service, case_id, from_version=start, to_version=end, with_personal_data=True)

    assert [entry.version for entry in diff.entries] == list(range(start + 1, end + 1))
    assert [entry.kind for entry in diff.entries] == [
        type(event).__name__ for event in events[start:end]
    ]
    before = case_state(project_case(None, events[:start])) if start else {}  # type: ignore[arg-type]
    after = case_state(project_case(None, events[:end]))  # type: ignore[arg-type]
    assert diff.changes == state_changes(before, after)
    assert (diff.changes == []) == (start == end)


# ------------------------------------------------------------------ edges


def test_versions_and_times_a_case_file_never_had_are_refused_clearly(
    service: AkteService, clock: FakeClock
) -> None:
    opened_at = clock.now
    case_id = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01").case_id
    clock.advance(minutes=1)
    _note(service, case_id, service.get_case(case_id))

    with pytest.raises(CaseVersionNotFound, match="has no version 0: its versions are 1 to 2"):
        service.get_case_at_version(case_id, 0)
    with pytest.raises(CaseVersionNotFound, match="has no version 3: its versions are 1 to 2"):
        service.get_case_at_version(case_id, 3)
    with pytest.raises(CaseVersionNotFound, match=r"did not exist yet .* opened .* at 2024-03-04"):
        service.get_case_as_of(case_id, opened_at - timedelta(microseconds=1))
    assert service.get_case_as_of(case_id, opened_at).version == 1
    assert service.get_case_as_of(case_id, opened_at + timedelta(seconds=59)).version == 1
    assert service.get_case_as_of(case_id, clock.now).version == 2
    assert service.get_case_as_of(case_id, clock.now + timedelta(days=900)).version == 2


# ----------------------------------------------------------- history and filters


def case_with_a_history(service: AkteService, clock: FakeClock) -> UUID:
    """Opened by sb-01, procedure by sb-01, assigned by tl-01, a note by sb-03, decided by
    sb-02, an hour apart each."""
    case_id = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01").case_id
    for op in (_receive, _assign, _note, _decide):
        clock.advance(hours=1)
        op(service, case_id, service.get_case(case_id))
    return case_id


def test_history_filters_by_business_time_actor_and_kind(
    service: AkteService, clock: FakeClock
) -> None:
    start = clock.now
    case_id = case_with_a_history(service, clock)

    def versions(criteria: HistoryFilter) -> list[int]:
        history = build_history(service, case_id, criteria=criteria, with_personal_data=False)
        return [entry.version for entry in history.entries]

    assert versions(HistoryFilter()) == [1, 2, 3, 4, 5]
    assert versions(HistoryFilter(by="sb-01")) == [1, 2]
    assert versions(HistoryFilter(kinds=frozenset({"NoteAdded", "ProcedureDecided"}))) == [4, 5]
    hour = timedelta(hours=1)
    assert versions(HistoryFilter(at_from=start + hour, at_until=start + 3 * hour)) == [2, 3]
    assert versions(HistoryFilter(at_from=start + 4 * hour, by="sb-02")) == [5]
    assert versions(HistoryFilter(by="nobody")) == []


def test_history_pages_and_withholds_personal_data_unless_allowed(
    service: AkteService, clock: FakeClock
) -> None:
    case_id = case_with_a_history(service, clock)

    first = build_history(service, case_id, with_personal_data=False, limit=2)
    second = build_history(
        service,
        case_id,
        with_personal_data=False,
        limit=2,
        after_version=first.next_after_version or 0,
    )
    last = build_history(service, case_id, with_personal_data=False, limit=2, after_version=4)

    assert [e.version for e in first.entries] == [1, 2]
    assert first.next_after_version == 2
    assert [e.version for e in second.entries] == [3, 4]
    assert second.next_after_version == 4
    assert [e.version for e in last.entries] == [5]
    assert last.next_after_version is None
    opened = first.entries[0]
    expected = f"Akte {first.reference} angelegt (Ausländerbehörde abh-musterstadt)"
    assert opened.description == expected
    assert "surname" not in opened.data
    assert "surname" in opened.withheld
    decided = last.entries[0]
    assert decided.reason is None
    assert "reason" in decided.withheld
    auditor = build_history(service, case_id, with_personal_data=True, after_version=4)
    assert auditor.entries[0].reason == "Voraussetzungen erfüllt"
    assert auditor.entries[0].withheld == []
    assert first.reference
    assert first.office_id == "abh-musterstadt"
    assert first.version == 5


def test_html_and_text_escape_what_was_recorded(service: AkteService, clock: FakeClock) -> None:
    case_id = service.open_case(office_id="abh-musterstadt", master_data=PERSON, by="sb-01").case_id
    service.add_note(case_id, expected_version=1, by="sb-01", text="<script>alert(1)</script> & Co")

    history = build_history(service, case_id, with_personal_data=True)
    page = history_html(history)
    text = history_text(history)

    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in page
    assert "Vermerk 1 angelegt" in page
    assert "Vermerk 1 angelegt" in text
    assert page.startswith("<!DOCTYPE html>")
    assert "Aktenhistorie" in page


# ----------------------------------------------------------------------- CLI


def test_the_history_command_writes_json_html_and_text(
    settings: Settings, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if settings.store != "sqlite":
        pytest.skip("the command reads the store the environment names: SQLite is enough")
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    service = build_service(settings, clock=clock)
    try:
        case_id = case_with_a_history(service, clock)
        reference = service.get_case(case_id).reference
    finally:
        service.close()

    out = tmp_path / "history.json"
    assert akte(["history", str(case_id), "--format", "json", "--out", str(out)]) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    assert [entry["version"] for entry in document["entries"]] == [1, 2, 3, 4, 5]
    assert document["personal_data_shown"] is True
    page = tmp_path / "history.html"
    assert akte(["history", reference, "--format", "html", "--out", str(page)]) == 0
    assert "Vorgang 1 entschieden: stattgegeben" in page.read_text(encoding="utf-8")
    text = tmp_path / "history.txt"
    assert akte(["history", reference, "--out", str(text), "--actor", "sb-01"]) == 0
    assert text.read_text(encoding="utf-8").count("\nv") == 2
    assert akte(["history", "NO-SUCH-FILE"]) == 1


def test_pages_and_filters_hold_across_read_chunks(
    service: AkteService, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(case_history, "_MIN_CHUNK", 2)
    case_id = case_with_a_history(service, clock)

    def page(after: int, limit: int, **criteria: Any) -> tuple[list[int], int | None]:
        history = build_history(
            service,
            case_id,
            criteria=HistoryFilter(**criteria),
            with_personal_data=False,
            after_version=after,
            limit=limit,
        )
        return [entry.version for entry in history.entries], history.next_after_version

    assert page(0, 1) == ([1], 1)
    assert page(1, 3) == ([2, 3, 4], 4)
    assert page(4, 3) == ([5], None)
    assert page(0, 1, by="sb-02") == ([5], None)
    assert page(0, 1, by="sb-01") == ([1], 1)
    assert page(1, 1, by="sb-01") == ([2], None)
    assert page(9, 1) == ([], None)
