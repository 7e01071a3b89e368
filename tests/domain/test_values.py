"""The value checks every event passes: text, times, dates and numbers a read model can take."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import uuid4

import pytest

from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.errors import InvalidValue
from domain.read_access import ReadAccess
from domain.values import (
    require_aware,
    require_email,
    require_file_name,
    require_lawful_value,
    require_printable,
    require_text,
)

NOW = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["\x00", "a\x01", "\x1b", "\x7f", "\x85", "\x9f", "\ud800"])
def test_control_characters_and_lone_surrogates_are_refused_everywhere(text: str) -> None:
    with pytest.raises(InvalidValue):
        require_printable("f", text, line_breaks=True)
    with pytest.raises(InvalidValue):
        require_text("f", f"x{text}", max_length=10, line_breaks=True)


def test_line_breaks_and_tabs_are_free_text_only() -> None:
    require_text("note", "a\r\n\tb", line_breaks=True)
    with pytest.raises(InvalidValue, match="control characters"):
        require_text("name", "a\nb")
    require_text("name", "Ayşe Nur \U0001f600 \u200f")


@pytest.mark.parametrize("name", ["\u202ezamliY", "Ay\u2067se", "\u202bشيماء\u202c", "x\u2069"])
def test_a_name_that_would_display_as_another_is_refused_free_text_keeps_it(name: str) -> None:
    """Overrides, embeddings and isolates reorder a line ("\u202ezamliY" shows as "Yilmaz");
    the single marks (U+200E, U+200F, U+061C) are kept, as names copied from right-to-left
    documents carry them. A note may hold any of them: it is read as text, not matched."""
    with pytest.raises(InvalidValue, match="direction overrides"):
        require_text("surname", name)
    require_text("surname", "\u200fشيماء\u061c\u200e")
    require_text("note", name, line_breaks=True)


@pytest.mark.parametrize(
    "email", ["ayse\u202e@example.org", "ay\u200bse@example.org", "a\u200e@example.org"]
)
def test_an_email_address_with_invisible_characters_is_refused(email: str) -> None:
    with pytest.raises(InvalidValue, match="e-mail address"):
        require_email("email", email)
    require_email("email", "ayşe@example.org")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime.max.replace(tzinfo=timezone(-timedelta(hours=14))),
        datetime(1899, 12, 31, 23, 59, tzinfo=UTC),
        datetime(2200, 1, 1, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=14, minutes=1))),
        datetime(2024, 3, 1, tzinfo=timezone(timedelta(hours=1, microseconds=1))),
        datetime(2024, 3, 1),
    ],
)
def test_times_outside_the_lawful_range_are_refused(moment: datetime) -> None:
    with pytest.raises(InvalidValue):
        require_aware("at", moment)


def test_the_edges_of_the_range_convert_to_utc() -> None:
    for moment in (
        datetime(1900, 1, 1, tzinfo=timezone(timedelta(hours=14))),
        datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(-timedelta(hours=14))),
    ):
        require_aware("at", moment)
        moment.astimezone(UTC)


def test_values_are_walked_through_lists_mappings_and_dataclasses() -> None:
    @dataclass
    class Part:
        name: str

    for value in ([date(1, 1, 1)], {"k": "\x00"}, (Part("\x00"),), 2**63, float("nan")):
        with pytest.raises(InvalidValue):
            require_lawful_value("f", value)
    require_lawful_value("f", [date(1900, 1, 1), {"k": "a\nb"}, Part("x"), -(2**63), 1.5])


def test_an_event_with_an_unlawful_value_is_not_made_whatever_the_command() -> None:
    """Commands that check their fields and those that do not are held alike."""
    case = CaseFile.open(
        case_id=uuid4(),
        office_id="abh-musterstadt",
        reference="2024-1",
        master_data=MasterData("Beispiel", "Amal", date(1991, 2, 3), "SYR", "N12345678"),
        act=Act(by="sb-01", at=NOW, recorded_at=NOW),
    )
    version = case.version
    with pytest.raises(InvalidValue) as refused:
        case.trigger_event(CaseFile.NoteAdded, by="sb-01", at=NOW, note_number=1, text="a\x00b")
    assert refused.value.field == "text"
    assert case.version == version
    with pytest.raises(InvalidValue) as refused_read:
        ReadAccess.record(
            read_id=uuid4(),
            case_id=None,
            office_id="abh\x00",
            endpoint="GET /audit",
            act=Act(by="au-01", at=NOW, recorded_at=NOW),
        )
    assert refused_read.value.field == "office_id"


@pytest.mark.parametrize(
    "name",
    ["\u202egnp.pdf", "Pass\u2067port.pdf", "a\u200fb.png", "\u061cscan.pdf", "x\u202ay.jpg"],
)
def test_a_file_name_with_marks_that_reorder_it_is_refused(name: str) -> None:
    with pytest.raises(InvalidValue, match="direction marks"):
        require_file_name("files.0", name)


@pytest.mark.parametrize("name", ["Reisepass Seite 1.pdf", "جواز السفر.pdf", "Паспорт.png"])
def test_file_names_in_any_script_are_kept(name: str) -> None:
    require_file_name("files.0", name)
