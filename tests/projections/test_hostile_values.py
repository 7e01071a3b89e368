"""What the service accepts, every read model processes; what it refuses, it does not record.

Commands get extreme and hostile values in their text and time fields: NUL and other
control characters, lone surrogates, line breaks, long strings, times from year 1 to
year 9999 with offsets up to a day. Each command is either refused with a domain error,
with nothing recorded, or its events are processed by every read model
(:data:`projections.read_models.READ_MODELS`), incrementally and in a rebuild, on SQLite
and on PostgreSQL. Two single requests once stopped the worklists for good: a note dated
0001-01-01T00:00:00+14:00 (the UTC conversion overflowed) and an assignee with a NUL
(PostgreSQL text cannot hold it); they are the first two tests.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from adapters.settings import Settings
from adapters.views.runner import ApplicationEventLog
from domain.errors import DomainError, InvalidValue
from domain.intake import ContactDetails
from projections.read_models import READ_MODELS
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import (
    EAT_BASIS,
    MASTER_DATA,
    OFFICE,
    TOPIC,
    CaseDriver,
    catch_up,
    rebuilt_dump,
    stored_positions,
    views_for,
)

EASTERNMOST: Final = timezone(timedelta(hours=14))
WESTERNMOST: Final = timezone(-timedelta(hours=14))
OFFSETS: Final = (
    UTC,
    EASTERNMOST,
    WESTERNMOST,
    # Beyond any time zone: Python allows up to a day, PostgreSQL refuses 16 hours.
    timezone(timedelta(hours=15, minutes=59)),
    timezone(-timedelta(hours=16)),
    timezone(timedelta(hours=23, minutes=59, seconds=59, microseconds=999999)),
    timezone(-timedelta(hours=23, minutes=59)),
    timezone(timedelta(hours=5, seconds=1, microseconds=1)),
)


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


EARLIEST: Final = datetime(1900, 1, 1, tzinfo=EASTERNMOST)
"""The earliest lawful business time; a file opened then is of a person born that day."""
BORN_EARLIEST: Final = replace(MASTER_DATA, date_of_birth=EARLIEST.date())


def _head(service: AkteService) -> int:
    return ApplicationEventLog(service).head()


def _every_read_model_processes_the_log(service: AkteService, views: ViewsStore) -> None:
    catch_up(service, views, READ_MODELS)
    head = _head(service)
    positions = stored_positions(views)
    assert {model.name: positions.get(model.name) for model in READ_MODELS} == {
        model.name: head for model in READ_MODELS
    }


# ------------------------------------------------- the two requests that stopped the views


def test_a_note_dated_year_one_with_an_eastern_offset_is_refused_and_nothing_recorded(
    service: AkteService, views: ViewsStore
) -> None:
    case = CaseDriver.open(service)
    head = _head(service)
    year_one = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))

    with pytest.raises(InvalidValue) as refused:
        case("add_note", text="t", at=year_one)

    assert refused.value.field == "at"
    assert _head(service) == head
    _every_read_model_processes_the_log(service, views)


def test_an_assignee_with_a_nul_is_refused_and_nothing_recorded(
    service: AkteService, views: ViewsStore
) -> None:
    case = CaseDriver.open(service)
    case("receive_procedure", channel="mail", topic=TOPIC)
    head = _head(service)

    with pytest.raises(InvalidValue) as refused:
        case("assign_procedure", procedure_number=1, assignee="sb\x0001")

    assert refused.value.field == "assignee"
    assert _head(service) == head
    _every_read_model_processes_the_log(service, views)


def test_the_earliest_and_latest_lawful_times_are_recorded_and_processed(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    """1900-01-01 00:00 at +14:00 is 1899-12-31 in UTC: recorded, and no read model fails."""
    case = CaseDriver.open(service, by="sb\u00e4\U0001f600", at=EARLIEST, master_data=BORN_EARLIEST)
    case("add_note", text="line\r\nbreak\ttab", at=datetime(1900, 1, 1, tzinfo=EASTERNMOST))
    case("receive_procedure", channel="mail", topic=TOPIC, at=clock.now)
    case(
        "issue_residence_document",
        kind="eat",
        legal_basis=EAT_BASIS,
        valid_from=date(1900, 1, 1),
        valid_until=date(2199, 12, 31),
        document_number="Y0000AB12",
    )
    _every_read_model_processes_the_log(service, views)


# ------------------------------------------------------------------ any hostile value

HOSTILE_SAMPLES: Final = (
    "",
    " ",
    "\x00",
    "sb\x0001",
    "t\x85",
    "\x1b[31m",
    "\x7f",
    "\ud800",
    "a\udfffb",
    "line\nbreak",
    "tab\there",
    "cr\r",
    "\u2028",
    "\ufeff",
    "\u202ereversed",
    "\U0001f600",
    "'; DROP TABLE events; --",
    "%s %(x)s {0}",
)
texts = st.one_of(
    st.sampled_from(HOSTILE_SAMPLES),
    # Any code point, surrogates and control characters included.
    st.text(st.characters(exclude_categories=()), max_size=40),
    # Long strings around the limits (200, 4000 characters).
    st.builds(
        lambda unit, count: unit * count,
        st.sampled_from(("a", "\u00e4", "\U0001f600", "\x00", "\n")),
        st.sampled_from((199, 200, 201, 3999, 4000, 4001)),
    ),
)
times = st.one_of(
    st.sampled_from(
        (
            datetime.min.replace(tzinfo=EASTERNMOST),
            datetime.min.replace(tzinfo=OFFSETS[-2]),
            datetime.max.replace(tzinfo=WESTERNMOST),
            datetime(1900, 1, 1, tzinfo=EASTERNMOST),
            datetime(1900, 1, 1, tzinfo=OFFSETS[3]),
            datetime(1899, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=WESTERNMOST),
            datetime(2024, 3, 1, 9, 0),  # no time zone
        )
    ),
    st.datetimes(timezones=st.sampled_from(OFFSETS)),
    st.datetimes(
        min_value=datetime(1899, 1, 1), max_value=datetime(2024, 3, 4), timezones=st.just(UTC)
    ),
)
days = st.one_of(
    st.sampled_from((date.min, date.max, date(1899, 12, 31), date(1900, 1, 1), date(2199, 12, 31))),
    st.dates(),
)


def _case_commands(
    case: CaseDriver, text: str, other: str, at: datetime, day: date, serial: Iterator[int]
) -> list[Callable[[], Any]]:
    """The case-file commands with text and time fields, each given the hostile values."""
    return [
        lambda: case("add_note", text=text, at=at),
        lambda: case("receive_procedure", channel="mail", topic=TOPIC, at=at),
        lambda: case("assign_procedure", procedure_number=1, assignee=text, at=at),
        lambda: case("request_documents", procedure_number=1, what=[text, other], due_on=day),
        lambda: case(
            "record_correspondence",
            direction="received",
            counterpart_kind="court",
            counterpart_name=text,
            subject=other,
            at=at,
        ),
        lambda: case("correct_master_data", corrections={"surname": text}, reason=other, at=at),
        lambda: case(
            "issue_residence_document",
            kind="eat",
            legal_basis=EAT_BASIS,
            valid_from=day,
            valid_until=day + timedelta(days=1) if day < date.max else day,
            document_number=f"Y{next(serial):08d}",
            at=at,
        ),
        lambda: case("decide_procedure", procedure_number=1, outcome="refused", reason=text),
    ]


def _other_commands(
    service: AkteService, text: str, other: str, at: datetime, day: date
) -> list[Callable[[], Any]]:
    """Opening a case file and the public contact form, with the same hostile values."""
    return [
        lambda: service.open_case(
            office_id=OFFICE,
            master_data=replace(MASTER_DATA, surname=text, date_of_birth=day, address=other),
            by="sb-01",
            at=at,
        ),
        lambda: service.intake.submit_contact_form(
            office_id=OFFICE,
            topic=TOPIC,
            message=text,
            contact=ContactDetails(
                surname=other, given_names="Amal", email="a@example.org", file_number=text
            ),
            files=[],
            at=at,
        ),
        lambda: CaseDriver.open(service, by=text),
    ]


def test_what_the_service_accepts_every_read_model_processes_and_refusals_record_nothing(
    service: AkteService, views: ViewsStore, settings: Settings
) -> None:
    serial = itertools.count()
    accepted: list[str] = []
    examples = 30 if settings.store == "sqlite" else 20

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(values=st.lists(st.tuples(texts, texts, times, days), min_size=1, max_size=3))
    def check(values: list[tuple[str, str, datetime, date]]) -> None:
        # Opened, and its procedure received, at the earliest lawful time: every lawful
        # time of the commands below is after these facts.
        case = CaseDriver.open(service, at=EARLIEST, master_data=BORN_EARLIEST)
        case("receive_procedure", channel="mail", topic=TOPIC, at=EARLIEST)
        for text, other, at, day in values:
            commands = [
                *_case_commands(case, text, other, at, day, serial),
                *_other_commands(service, text, other, at, day),
            ]
            for command in commands:
                head = _head(service)
                try:
                    command()
                except DomainError:
                    assert _head(service) == head, "a refused command recorded events"
                else:
                    accepted.append(text)
        _every_read_model_processes_the_log(service, views)

    check()
    # Not only refusals: hostile but lawful values (line breaks, long text, emoji, the
    # edges of the time range) were accepted and processed too.
    assert len(accepted) > examples
    rebuilt_dump(service, views, READ_MODELS)
    assert set(stored_positions(views).values()) == {_head(service)}
