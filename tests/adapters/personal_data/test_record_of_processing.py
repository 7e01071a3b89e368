"""The record of processing (Art. 30 DSGVO) comes from the code and covers all of it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from eventsourcing.domain import Aggregate

from adapters.cli.main import main
from adapters.personal_data import record_of_processing as module
from adapters.personal_data.record_of_processing import (
    ACTIVITIES,
    CATEGORIES,
    UnrecordedPersonalData,
    as_html,
    as_markdown,
    category_of,
    personal_events,
    record_of_processing,
)
from domain.personal import Personal


def test_every_personal_field_of_every_event_has_a_category() -> None:
    unplaced = [
        f"{event.__qualname__}.{name}"
        for _aggregate, event, marked in personal_events()
        for name in marked
        if not any(name in names for names in CATEGORIES.values())
    ]

    assert unplaced == []


def test_every_aggregate_with_personal_data_is_a_processing_activity() -> None:
    aggregates = {aggregate.__name__ for aggregate, _event, _marked in personal_events()}

    assert aggregates <= set(ACTIVITIES)
    assert {"CaseFile", "CommitmentDeclaration", "ContactSubmission", "Appointment"} <= aggregates


def test_the_record_lists_every_personal_event_with_its_categories() -> None:
    record = record_of_processing()

    listed = {
        (entry.aggregate, event.event) for entry in record.activities for event in entry.events
    }
    expected = {
        (aggregate.__name__, event.__qualname__) for aggregate, event, _ in personal_events()
    }
    assert listed == expected
    case_file = next(entry for entry in record.activities if entry.aggregate == "CaseFile")
    assert "Identifikationsdaten (Name, Geburtsdatum)" in case_file.categories
    assert case_file.activity.retention_rules  # the deletion concept applies to files
    assert {rule.id for rule in record.deletion_concept} >= set(case_file.activity.retention_rules)
    # What has no retention rule yet is said, for the data protection officer.
    assert any(gap.startswith("Terminvergabe") for gap in record.gaps)


def test_a_new_personal_field_without_a_category_fails_the_record() -> None:
    with pytest.raises(UnrecordedPersonalData, match="shoe_size"):
        category_of("shoe_size")


def test_a_new_aggregate_without_an_activity_fails_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Locker(Aggregate):
        @dataclass(frozen=True)
        class Rented(Aggregate.Event):
            surname: Personal[str]

    def with_locker() -> Any:
        yield from personal_events_before()
        yield Locker, Locker.Rented, frozenset({"surname"})

    personal_events_before = module.personal_events
    monkeypatch.setattr(module, "personal_events", with_locker)

    with pytest.raises(UnrecordedPersonalData, match="Locker"):
        record_of_processing()


def test_html_and_markdown_show_every_activity_and_the_deletion_concept() -> None:
    record = record_of_processing()

    html = as_html(record)
    markdown = as_markdown(record)

    for entry in record.activities:
        assert entry.activity.name in html
        assert f"## {entry.activity.name}" in markdown
    assert "Löschkonzept" in html
    assert "Löschkonzept" in markdown
    assert "<script" not in html


def test_the_command_prints_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["privacy", "record"]) == 0

    printed = json.loads(capsys.readouterr().out)
    assert {activity["aggregate"] for activity in printed["activities"]} >= {"CaseFile"}
    assert printed["deletion_concept"]
