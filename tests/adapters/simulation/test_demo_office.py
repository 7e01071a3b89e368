"""The demo office: varied, reproducible, and every case file replays from the store."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args
from uuid import UUID

import pytest

from adapters.bootstrap import build_service
from adapters.reference.catalogue import load_catalogue
from adapters.settings import Settings
from adapters.simulation.demo_case_file import PORTAL, TEAM_LEAD
from adapters.simulation.demo_office import CASEWORKERS, DemoSummary, load_demo_office
from domain.case_file import CaseFile
from domain.values import (
    Channel,
    CounterpartKind,
    DecisionOutcome,
    FictionKind,
    InquiryKind,
    ProcedureStatus,
    ResidenceDocumentKind,
)
from service import AkteService
from tests.conftest import FakeClock

CASES = 30
"""Small enough to load in about a second, large enough to show every kind of history."""
USERS = {*CASEWORKERS, TEAM_LEAD, PORTAL}
_RECORDING_ATTRIBUTES = frozenset({"_id", "_created_on", "_modified_on", "_pending_events"})


def _state(case: CaseFile) -> dict[str, Any]:
    """What the office recorded, without the random id and the recording times."""
    return {name: value for name, value in vars(case).items() if name not in _RECORDING_ATTRIBUTES}


def _office(service: AkteService, summary: DemoSummary) -> dict[str, dict[str, Any]]:
    """Every case file's state by file number (ids are random, file numbers are not)."""
    cases = (service.get_case(case_id) for case_id in summary.case_ids)
    return {case.reference: _state(case) for case in cases}


def _cases(service: AkteService, case_ids: Iterable[UUID]) -> list[CaseFile]:
    return [service.get_case(case_id) for case_id in case_ids]


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_demo_office_is_varied_and_uses_catalogue_codes(service: AkteService) -> None:
    summary = load_demo_office(service, cases=CASES)
    cases = _cases(service, summary.case_ids)

    assert summary.cases == CASES
    assert len(set(summary.case_ids)) == CASES
    assert {case.status for case in cases} == {"active", "transferred", "closed"}
    assert {case.master_data.nationality for case in cases} >= {"SYR", "UKR", "IND", "USA"}

    procedures = [p for case in cases for p in case.procedures]
    assert {p.status for p in procedures} == set(get_args(ProcedureStatus))
    assert {p.outcome for p in procedures if p.outcome} == set(get_args(DecisionOutcome))
    assert {p.channel for p in procedures} == set(get_args(Channel))
    digital = [p for p in procedures if p.channel in ("contact_form", "online_application")]
    assert len(digital) > len(procedures) / 2
    assert any(p.document_requests for p in procedures)

    documents = [d for case in cases for d in case.residence_documents]
    assert {d.kind for d in documents} == set(get_args(ResidenceDocumentKind))
    eats = [d for d in documents if d.kind == "eat"]
    assert {d.legal_basis for d in eats} >= {"aufenthg-16b", "aufenthg-24"}
    assert any(d.card_status == "handed_over" for d in eats)
    assert any(d.transfers_to_new_passport for d in eats)
    assert any(d.extensions for d in eats)
    assert any(d.kind == "duldung" and d.extensions >= 2 for d in documents)
    assert any(d.ended_reason == "replaced" for d in documents)

    fictions = [f for case in cases for f in case.fiction_certificates]
    assert {f.kind for f in fictions} >= {"81_3_1", "81_4"}
    assert set(get_args(FictionKind)) >= {f.kind for f in fictions}
    # More extensions than on the current sheet: the certificate moved to a new carrier sheet.
    assert any(f.extensions > f.extensions_on_current_sheet for f in fictions)
    assert all(f.extensions_on_current_sheet <= 2 for f in fictions)
    assert any(f.ended_reason == "decision" for f in fictions)

    assert any(case.documents for case in cases)
    assert any(p.status == "consent_given" for case in cases for p in case.entry_procedures)
    assert {r.kind for case in cases for r in case.integration_courses} == {
        "entitlement",
        "obligation",
    }
    assert {i.kind for case in cases for i in case.inquiries} <= set(get_args(InquiryKind))
    assert any(case.inquiries for case in cases)
    letters = [letter for case in cases for letter in case.correspondence]
    assert {letter.counterpart_kind for letter in letters} == set(get_args(CounterpartKind))
    assert any(case.notes for case in cases)

    catalogue = load_catalogue()
    assert {p.topic for p in procedures} <= catalogue.topics
    legal_bases = {p.legal_basis for p in procedures if p.legal_basis}
    legal_bases |= {d.legal_basis for d in documents}
    legal_bases |= {p.legal_basis for case in cases for p in case.entry_procedures}
    legal_bases |= {r.legal_basis for case in cases for r in case.integration_courses}
    assert legal_bases <= set(catalogue.legal_bases)


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_every_demo_case_replays_from_the_store(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    # Written with frequent snapshots, so reading back exercises snapshots as well as events.
    writer = build_service(settings.model_copy(update={"snapshot_interval": 5}), clock=clock)
    try:
        summary = load_demo_office(writer, cases=CASES)
    finally:
        writer.close()

    notifications = service.recorder.select_notifications(start=1, limit=summary.events + 100)
    assert len(notifications) == summary.events
    earliest = clock.now - timedelta(days=19 * 31)
    for case_id in summary.case_ids:
        events = service.case_events(case_id)
        replayed: CaseFile | None = None
        for event in events:
            replayed = event.mutate(replayed)
        assert replayed is not None
        stored = service.get_case(case_id)
        assert _state(replayed) == _state(stored)
        assert service.find_case_by_reference("abh-musterstadt", stored.reference) == case_id

        times = [event.at for event in events]
        assert times == sorted(times), "a case's business times move forward"
        assert earliest <= times[0]
        assert times[-1] <= clock.now, "business time never lies after the clock's now"
        assert all(at.weekday() < 5 for at in times)
        assert {event.by for event in events} <= USERS
        assert {event.timestamp for event in events} == {clock.now}


def test_the_same_seed_gives_the_same_office(
    service: AkteService, clock: FakeClock, tmp_path: Path
) -> None:
    first = load_demo_office(service, cases=12, seed=7)
    offices = []
    for seed in (7, 8):
        other = build_service(
            Settings(store="sqlite", data_dir=tmp_path / f"seed-{seed}"), clock=clock
        )
        try:
            offices.append(_office(other, load_demo_office(other, cases=12, seed=seed)))
        finally:
            other.close()

    same_seed, other_seed = offices
    assert _office(service, first) == same_seed
    assert _office(service, first) != other_seed


def test_a_store_with_events_gets_no_second_office(service: AkteService) -> None:
    first = load_demo_office(service, cases=3)

    second = load_demo_office(service, cases=3)

    assert second.skipped
    assert second.existing_events == first.events
    assert (second.cases, second.events, second.case_ids) == (0, 0, ())
    assert service.recorder.max_notification_id() == first.events


@pytest.mark.parametrize("cases", [1, 2])
def test_a_tiny_office_loads(service: AkteService, cases: int) -> None:
    progress: list[tuple[int, int]] = []

    summary = load_demo_office(
        service, cases=cases, progress=lambda done, total: progress.append((done, total))
    )

    assert summary.cases == cases
    assert progress == [(done, cases) for done in range(1, cases + 1)]
