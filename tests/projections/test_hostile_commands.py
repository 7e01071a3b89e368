"""Every other command, with hostile values: what the service accepts, every read model
processes.

``test_hostile_values.py`` sends the commonest case-file commands, the opening of a file
and the contact form hostile text and times. Here the rest get the same treatment: the
residence documents' life (extension, eAT card, new passport, end), Fiktionsbescheinigungen
(issue, extend, end), the integration course, entry procedures, inquiries, closing a
procedure, transferring and closing the file, and commitment declarations with amounts at
and beyond their bounds (0, 1, -1, 2**63 - 1, 2**63, 10**30) and hostile guarantor
texts. Text fields get NUL and other control characters, right-to-left marks, lone
surrogates, strings at and past their length limits; times run from year 1 to 9999 with
offsets up to a day; dates from 0001-01-01 to 9999-12-31.

Each command is either refused with a domain error (nothing recorded) or accepted, and
then every read model (:data:`projections.read_models.READ_MODELS`) processes the log up
to its head: on SQLite in every example, on PostgreSQL with fewer examples; finally a
rebuild processes it too.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from adapters.settings import Settings
from domain.commitment_declaration import Guarantor
from domain.errors import DomainError
from projections.read_models import READ_MODELS
from projections.storage import ViewsStore
from service import AkteService
from tests.projections.test_hostile_values import (
    BORN_EARLIEST,
    EARLIEST,
    EASTERNMOST,
    WESTERNMOST,
    _every_read_model_processes_the_log,
    _head,
    days,
    texts,
    times,
)
from tests.support.declarations import GUARANTOR, OFFICE, VISITOR
from tests.support.projections import EAT_BASIS, TOPIC, CaseDriver, rebuilt_dump, views_for

RTL_AND_FRIENDS: Final = ("\u200f", "\u202b\u05e9\u202c", "\u2066x\u2069", "\u061c", "\u200e")
AMOUNTS: Final = (None, 0, 1, -1, 99, 2**31, 10**13, 10**13 + 1, 2**63 - 1, 2**63, 10**30)
"""Cents: the lawful range is 1 to 10**13; the rest must be refused."""

# Half hostile, half lawful: the accepted commands must be many and varied, not only
# the refusals.
lawful_texts = st.text(
    st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=60
).filter(str.strip)
hostile_texts = st.one_of(texts, st.sampled_from(RTL_AND_FRIENDS), lawful_texts)
lawful_times = st.datetimes(
    min_value=datetime(1900, 1, 2),
    max_value=datetime(2024, 3, 3),
    timezones=st.sampled_from((UTC, EASTERNMOST, WESTERNMOST)),
)
any_times = st.one_of(times, lawful_times)
any_days = st.one_of(days, st.dates(min_value=date(1900, 1, 2), max_value=date(2199, 12, 30)))
amounts = st.one_of(st.sampled_from(AMOUNTS), st.integers(), st.integers(0, 10**9))


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def _later(day: date) -> date:
    return day + timedelta(days=1) if day < date.max else day


def _case_commands(
    case: CaseDriver, text: str, at: datetime, day: date, serial: Iterator[int]
) -> list[Callable[[], Any]]:
    """The case-file commands test_hostile_values.py leaves out, given the values."""
    return [
        lambda: case(
            "extend_residence_document",
            residence_document_number=1,
            valid_until=day,
            reason=text,
            at=at,
        ),
        lambda: case("order_eat_card", residence_document_number=1, at=at),
        lambda: case("record_eat_card_arrived", residence_document_number=1, at=at),
        lambda: case("hand_over_eat_card", residence_document_number=1, at=at),
        lambda: case(
            "transfer_eat_to_new_passport",
            residence_document_number=1,
            new_card_number=text,
            at=at,
        ),
        lambda: case(
            "issue_fiction_certificate",
            kind="81_3_1",
            valid_from=day,
            valid_until=_later(day),
            carrier_sheet_number=f"{text}{next(serial)}",
            at=at,
        ),
        lambda: case(
            "issue_fiction_certificate",
            kind="81_3_1",
            valid_from=day,
            valid_until=_later(day),
            carrier_sheet_number=f"F{next(serial):08d}",
            at=at,
        ),
        lambda: case(
            "transfer_eat_to_new_passport",
            residence_document_number=1,
            new_card_number=f"Y{next(serial):08d}",
            at=at,
        ),
        lambda: case(
            "extend_fiction_certificate",
            certificate_number=1,
            valid_until=day,
            new_carrier_sheet_number=text,
            at=at,
        ),
        lambda: case("end_fiction_certificate", certificate_number=1, end_reason="withdrawal"),
        lambda: case("issue_integration_course_entitlement", legal_basis=text, at=at),
        lambda: case("issue_integration_course_entitlement", at=at),
        lambda: case("impose_integration_course_obligation", legal_basis=text, at=at),
        lambda: case("impose_integration_course_obligation", at=at),
        lambda: case("request_entry_consent", legal_basis=text, at=at),
        lambda: case("request_entry_consent", at=at),
        lambda: case("give_entry_consent", entry_procedure_number=1, valid_until=day, at=at),
        lambda: case("refuse_entry_consent", entry_procedure_number=1, reason=text, at=at),
        lambda: case("receive_inquiry", kind="civil_registry", at=at),
        lambda: case("answer_inquiry", inquiry_number=1, at=at),
        lambda: case(
            "end_residence_document",
            residence_document_number=1,
            end_reason="revoked",
            reason=text,
            at=at,
        ),
        lambda: case("close_procedure", procedure_number=1, at=at),
    ]


def _ending_commands(case: CaseDriver, text: str, at: datetime) -> list[Callable[[], Any]]:
    """Last: a file transferred or closed takes few commands after."""
    return [
        lambda: case("transfer_to_office", to_office_id=text, reason=text, at=at),
        lambda: case("transfer_to_office", to_office_id="abh-anderswo", reason=text, at=at),
        lambda: case("close_case", closure_reason="left", at=at),
    ]


def _declaration(
    service: AkteService, text: str, at: datetime, day: date, income: int | None, assets: int | None
) -> list[Callable[[], Any]]:
    def submit(
        born: date, stay_from: date, stay_until: date, when: datetime | None
    ) -> Callable[[], Any]:
        guarantor = Guarantor(
            surname=text,
            given_names=GUARANTOR.given_names,
            date_of_birth=born,
            address=text,
            nationality=GUARANTOR.nationality,
            id_document_number=GUARANTOR.id_document_number,
        )
        return lambda: service.declarations.submit_commitment_declaration(
            office_id=OFFICE,
            guarantor=guarantor,
            invited_person=VISITOR,
            purpose="family_visit",
            stay_from=stay_from,
            stay_until=stay_until,
            monthly_net_income_cents=income,
            assets_cents=assets,
            at=when,
        )

    # Hostile texts and amounts in a lawful stay (a month after the clock's today), then
    # everything from the hostile values.
    return [
        submit(GUARANTOR.date_of_birth, date(2024, 4, 3), date(2024, 5, 1), None),
        submit(day, day, _later(day), at),
    ]


def test_every_other_command_with_hostile_values_is_refused_or_processed_by_every_read_model(
    service: AkteService, views: ViewsStore, settings: Settings
) -> None:
    serial = itertools.count()
    accepted: list[str] = []
    examples = 25 if settings.store == "sqlite" else 10

    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        values=st.lists(
            st.tuples(hostile_texts, any_times, any_days, amounts, amounts), min_size=1, max_size=2
        )
    )
    def check(values: list[tuple[str, datetime, date, int | None, int | None]]) -> None:
        case = CaseDriver.open(service, at=EARLIEST, master_data=BORN_EARLIEST)
        case("receive_procedure", channel="mail", topic=TOPIC, at=EARLIEST)
        case(
            "issue_residence_document",
            kind="eat",
            legal_basis=EAT_BASIS,
            valid_from=date(1900, 1, 1),
            valid_until=date(2199, 12, 31),
            document_number=f"Y{next(serial):08d}",
            at=EARLIEST,
        )
        commands: list[Callable[[], Any]] = []
        for text, at, day, income, assets in values:
            commands += _case_commands(case, text, at, day, serial)
            commands += _declaration(service, text, at, day, income, assets)
        text, at, _, _, _ = values[-1]
        commands += _ending_commands(case, text, at)
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
    assert len(accepted) > examples  # not only refusals
    rebuilt_dump(service, views, READ_MODELS)
    _every_read_model_processes_the_log(service, views)
