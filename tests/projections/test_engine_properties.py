"""For any history, read models built incrementally equal read models rebuilt from scratch.

Hypothesis generates histories of random commands on several case files (most of them
legal, some refused by the domain and so not recorded), interleaved with incremental
catch-ups of random batch sizes and restarts (new engine objects, new connections).
After each history the incremental rows must equal both the oracle (rows derived from
the case files' state) and a rebuild from scratch. On SQLite and on PostgreSQL; the
store lives through all examples of a test, so later histories run on longer logs.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from adapters.settings import Settings
from domain.case_file import CaseFile
from domain.errors import DomainError
from projections.engine import ProjectionEngine
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import (
    EAT_BASIS,
    OTHER_OFFICE,
    CaseDriver,
    comparable,
    engine_for,
    expected_rows,
    views_for,
)

CHANNELS: Final = ("contact_form", "appointment", "mail", "online_application")
TOPICS: Final = ("extend_residence_permit", "blue_card", "change_of_address")
LEGAL_BASES: Final = (None, "aufenthg-16b", "aufenthg-18b")
RESIDENCE: Final = (
    ("eat", EAT_BASIS),
    ("duldung", "aufenthg-60a"),
    ("aufenthaltsgestattung", "asylg-55"),
)
SOURCES: Final = ("contact_form", "scan", "mail", "caseworker")
STEPS: Final = (
    # Weighted by repetition: what fills the worklists comes often, what ends a file
    # (transfer, close_case) rarely, so histories stay busy.
    "receive", "open", "receive", "receive", "assign", "assign", "assign", "request",
    "request", "decide", "decide", "close_procedure", "issue_residence", "issue_residence",
    "issue_residence", "extend_residence", "order_card", "order_card", "card_arrived",
    "card_arrived", "hand_over", "new_passport", "end_residence", "issue_fiction",
    "issue_fiction", "extend_fiction", "extend_fiction", "end_fiction", "attach", "attach",
    "review", "review", "note", "transfer", "close_case", "advance", "advance", "sync",
    "sync", "sync", "restart", "open",
)  # fmt: skip

Step = tuple[str, int, int, int]
step_strategy = st.tuples(
    st.sampled_from(STEPS), st.integers(0, 5), st.integers(0, 5), st.integers(0, 40)
)
histories = st.lists(step_strategy, min_size=15, max_size=60)


@dataclass(frozen=True)
class Call:
    case: CaseDriver
    number: int
    """The number of the part (procedure, document, ...) the command works on."""
    a: int
    b: int
    today: date
    serial: Iterator[int]

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self.serial):08d}"


Parts = Callable[[CaseFile], list[int]]
UNDECIDED: Final = ("received", "assigned", "documents_requested")


def _active(parts: Parts) -> Parts:
    return lambda state: parts(state) if state.status == "active" else []


def _always(state: CaseFile) -> list[int]:
    return [0]


def _procedures(*statuses: str) -> Parts:
    return lambda state: [p.number for p in state.procedures if p.status in statuses]


def _residence(*card_statuses: str, eat: bool = False) -> Parts:
    return lambda state: [
        d.number
        for d in state.residence_documents
        if not d.is_ended
        and (not eat or d.kind == "eat")
        and (not card_statuses or d.card_status in card_statuses)
    ]


def _fictions(state: CaseFile) -> list[int]:
    return [f.number for f in state.fiction_certificates if not f.is_ended]


def _unreviewed(state: CaseFile) -> list[int]:
    return [d.number for d in state.documents if d.reviewed_at is None]


def _application_if_any(state: CaseFile) -> list[int]:
    """The undecided procedures a Fiktionsbescheinigung can follow, else none (0)."""
    return _procedures(*UNDECIDED)(state) or [0]


FICTION_KINDS: Final = ("81_3_1", "81_3_2", "81_4")


def _fiction_basis(c: Call) -> dict[str, Any]:
    """§ 81 (4) AufenthG: an application received while the previous title was valid
    (it was received at or before today, the title valid until today)."""
    if FICTION_KINDS[c.a % 3] != "81_4":
        return {}
    return {"order_basis": "timely_application", "previous_title_valid_until": c.today}


def _no_open_procedures(state: CaseFile) -> list[int]:
    return [] if any(p.is_open for p in state.procedures) else [0]


COMMANDS: Final[dict[str, tuple[Parts, Callable[[Call], Any]]]] = {
    "receive": (
        _active(_always),
        lambda c: c.case(
            "receive_procedure",
            channel=CHANNELS[c.a % 4],
            topic=TOPICS[c.b % 3],
            legal_basis=LEGAL_BASES[(c.a + c.b) % 3],
        ),
    ),
    "assign": (
        _active(_procedures(*UNDECIDED)),
        lambda c: c.case(
            "assign_procedure", procedure_number=c.number, assignee=f"sb-0{c.b % 3 + 1}"
        ),
    ),
    "request": (
        _active(_procedures(*UNDECIDED)),
        lambda c: c.case(
            "request_documents",
            procedure_number=c.number,
            what=["Pass"],
            due_on=c.today + timedelta(days=c.b % 30 + 1),
        ),
    ),
    "decide": (
        _active(_procedures(*UNDECIDED)),
        lambda c: c.case(
            "decide_procedure",
            procedure_number=c.number,
            outcome=("granted", "refused", "withdrawn")[c.b % 3],
            reason="Begründung" if c.b % 3 == 1 else None,
        ),
    ),
    "close_procedure": (
        _procedures("decided"),
        lambda c: c.case("close_procedure", procedure_number=c.number),
    ),
    "issue_residence": (
        _active(_always),
        lambda c: c.case(
            "issue_residence_document",
            kind=RESIDENCE[c.a % 3][0],
            legal_basis=RESIDENCE[c.a % 3][1],
            valid_from=c.today - timedelta(days=30),
            valid_until=c.today + timedelta(days=c.b + 1),
            document_number=c.unique("Y"),
            procedure_number=None,
        ),
    ),
    "extend_residence": (
        _active(_residence()),
        lambda c: c.case(
            "extend_residence_document",
            residence_document_number=c.number,
            valid_until=c.today + timedelta(days=60 + c.b),
            reason=None,
        ),
    ),
    "order_card": (
        _active(_residence("not_ordered", eat=True)),
        lambda c: c.case("order_eat_card", residence_document_number=c.number),
    ),
    "card_arrived": (
        _active(_residence("ordered", eat=True)),
        lambda c: c.case("record_eat_card_arrived", residence_document_number=c.number),
    ),
    "hand_over": (
        _residence("arrived", eat=True),
        lambda c: c.case("hand_over_eat_card", residence_document_number=c.number),
    ),
    "new_passport": (
        _active(_residence(eat=True)),
        lambda c: c.case(
            "transfer_eat_to_new_passport",
            residence_document_number=c.number,
            new_card_number=c.unique("N"),
        ),
    ),
    "end_residence": (
        _residence(),
        lambda c: c.case(
            "end_residence_document",
            residence_document_number=c.number,
            end_reason=("expired", "replaced", "departed", "revoked")[c.b % 4],
            reason="Widerruf" if c.b % 4 == 3 else None,
        ),
    ),
    "issue_fiction": (
        _active(_application_if_any),
        lambda c: c.case(
            "issue_fiction_certificate",
            kind=FICTION_KINDS[c.a % 3],
            valid_from=c.today,
            valid_until=c.today + timedelta(days=c.b + 1),
            carrier_sheet_number=c.unique("FB"),
            procedure_number=c.number or None,
            **_fiction_basis(c),
        ),
    ),
    "extend_fiction": (
        _active(_fictions),
        lambda c: c.case(
            "extend_fiction_certificate",
            certificate_number=c.number,
            valid_until=c.today + timedelta(days=45 + c.b),
            new_carrier_sheet_number=c.unique("FB") if c.b % 3 == 0 else None,
        ),
    ),
    "end_fiction": (
        _fictions,
        lambda c: c.case(
            "end_fiction_certificate",
            certificate_number=c.number,
            end_reason=("decision", "withdrawal")[c.b % 2],
        ),
    ),
    "attach": (
        _always,
        lambda c: c.case(
            "attach_document",
            kind="passport_copy",
            sha256=f"{next(c.serial):064x}",
            size_bytes=100 + c.b,
            media_type="application/pdf",
            page_count=c.b % 5 + 1,
            source=SOURCES[c.a % 4],
        ),
    ),
    "review": (_unreviewed, lambda c: c.case("review_document", document_number=c.number)),
    "note": (_always, lambda c: c.case("add_note", text="Vermerk")),
    "transfer": (
        _active(_no_open_procedures),
        lambda c: c.case("transfer_to_office", to_office_id=OTHER_OFFICE, reason=None),
    ),
    "close_case": (
        _active(_no_open_procedures),
        lambda c: c.case("close_case", closure_reason=("naturalised", "died", "left")[c.b % 3]),
    ),
}


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


class History:
    """Runs generated steps: commands through the service, catch-ups and restarts."""

    def __init__(self, service: AkteService, views: ViewsStore, clock: FakeClock) -> None:
        self.service = service
        self.views = views
        self.clock = clock
        self.cases: list[CaseDriver] = []
        self.all_cases: list[CaseDriver] = []
        self.serial = itertools.count(1)
        self._engines = ExitStack()
        self.engine: ProjectionEngine = self._new_engine(batch_size=3)

    def _new_engine(self, batch_size: int) -> ProjectionEngine:
        self._engines.close()
        self._engines = ExitStack()
        return self._engines.enter_context(
            engine_for(self.service, self.views, batch_size=batch_size)
        )

    def close(self) -> None:
        self._engines.close()

    def start_example(self) -> None:
        self.cases = []
        self.open()
        self.open()

    def open(self) -> None:
        case = CaseDriver.open(self.service, by="sb-01")
        self.cases.append(case)
        self.all_cases.append(case)

    @property
    def today(self) -> date:
        return self.clock.now.date()

    def run(self, step: Step) -> None:
        name, pick, a, b = step
        if name == "open":
            self.open()
            return
        if name == "advance":
            self.clock.advance(hours=b)
            return
        if name == "sync":
            self.engine.catch_up(max_batches=a + 1)
            return
        if name == "restart":
            self.engine = self._new_engine(batch_size=a + b % 7 + 1)
            return
        # Mostly a file with a part the command fits; now and then any file and part,
        # so the domain refuses some commands too.
        fitting, command = COMMANDS[name]
        parts = {case.id: fitting(self.service.get_case(case.case_id)) for case in self.cases}
        candidates = [case for case in self.cases if parts[case.id]]
        if candidates and pick != 5:
            case = candidates[pick % len(candidates)]
            number = parts[case.id][a % len(parts[case.id])]
        else:
            case = self.cases[pick % len(self.cases)]
            number = a % 3 + 1
        with contextlib.suppress(DomainError):
            command(Call(case, number, a, b, self.today, self.serial))

    def check(self) -> None:
        self.engine.catch_up()
        incremental = self.engine.dump()
        states = [self.service.get_case(case.case_id) for case in self.all_cases]
        assert comparable(incremental) == expected_rows(states)
        with engine_for(self.service, self.views, batch_size=50) as fresh:
            fresh.rebuild()
            assert fresh.dump() == incremental
            assert set(fresh.positions().values()) == {self.service.recorder.max_notification_id()}
        # The rebuild moved the positions: the next history goes on with a new engine.
        self.engine = self._new_engine(batch_size=3)


@pytest.mark.long  # more than ten seconds: bin/test-long runs it
def test_incremental_read_models_equal_a_rebuild_for_any_history(
    service: AkteService, views: ViewsStore, clock: FakeClock, settings: Settings
) -> None:
    history = History(service, views, clock)
    examples = 40 if settings.store == "sqlite" else 25

    @settings_for(examples)
    @given(steps=histories)
    def check_history(steps: list[Step]) -> None:
        history.start_example()
        for step in steps:
            history.run(step)
        history.check()

    try:
        check_history()
    finally:
        history.close()


def settings_for(examples: int) -> Callable[[Any], Any]:
    return hypothesis_settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        derandomize=False,
    )
