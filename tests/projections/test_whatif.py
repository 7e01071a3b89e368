"""The what-if replay: longer Fiktionsbescheinigungen, and the ordinance policy.

On a simulated year (built once for the module, SQLite): with the validity unchanged
nothing is saved, with a validity long enough for every procedure exactly the
extensions the simulator made are saved, and in between the figures grow with N
(hypothesis). The replay never writes the event store nor the live read models, and
gives the same answer twice. Hand-made histories, on SQLite and PostgreSQL, pin down
the rules: a paper that ended before the longer expiry saves every later extension,
visits come from the attended appointments where there are any, the second policy.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build_service, open_views_store
from adapters.cli.main import main
from adapters.reports.whatif import whatif_csv, whatif_html, whatif_json
from adapters.settings import Settings
from adapters.simulation.profile import load_profile
from adapters.simulation.simulator import simulate
from adapters.simulation.tally import SimulationResult
from adapters.views.runner import ApplicationEventLog
from adapters.views.whatif_replay import WhatIfError, policy_for, run_for_application, run_whatif
from domain.acts import Act
from domain.case_file import CaseFile
from domain.whatif import (
    FictionValidity,
    IssuedDocument,
    OrdinanceExtension,
    extension_saved,
    valid_for_months,
)
from projections.engine import ProjectionEngine
from projections.figures import statistics
from projections.figures.whatif import WhatIfResult
from projections.positions import read_positions
from service import AkteService
from tests.conftest import FakeClock
from tests.support.projections import OFFICE, TOPIC, CaseDriver
from tests.system.test_projections_crash import child_env

YEAR = 2024
SIMULATED_OFFICE = "abh-simulation"


@pytest.fixture(scope="module")
def simulated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AkteService, SimulationResult, Settings]]:
    """One simulated 2024 at scale 0.01 on SQLite, with the live statistics built."""
    settings_ = Settings(store="sqlite", data_dir=tmp_path_factory.mktemp("whatif-year"))
    service = build_service(settings_)
    try:
        result = simulate(service, load_profile(), seed=11, year=YEAR, scale=0.01)
        yield service, result, settings_
    finally:
        service.close()


def _year(service: AkteService, months: int, **options: Any) -> WhatIfResult:
    return run_for_application(
        service,
        FictionValidity(months=months, **options),
        office_id=SIMULATED_OFFICE,
        period_from=date(YEAR, 1, 1),
        period_until=date(YEAR, 12, 31),
    ).result


_RESULTS: dict[int, WhatIfResult] = {}


def _cached_year(service: AkteService, months: int) -> WhatIfResult:
    if months not in _RESULTS:
        _RESULTS[months] = _year(service, months)
    return _RESULTS[months]


# ----------------------------------------------------------- the simulated year


def test_the_simulated_year_has_extensions_to_save(
    simulated: tuple[AkteService, SimulationResult, Settings],
) -> None:
    service, result, _ = simulated
    extended = result.truth[YEAR]["fiction_certificates_extended"]

    assert extended > 0
    assert _cached_year(service, 3).extensions == extended


@pytest.mark.parametrize("months", [1, 2, 3])
def test_with_the_validity_unchanged_nothing_is_saved(
    simulated: tuple[AkteService, SimulationResult, Settings], months: int
) -> None:
    # The simulator issues certificates for 3 or 6 months: no N <= 3 lengthens any.
    service, _, _ = simulated

    saved = _cached_year(service, months)

    assert (saved.extensions_saved, saved.visits_saved, saved.actions_saved) == (0, 0, 0)
    assert saved.saved == ()
    assert all(month.extensions_saved == 0 for month in saved.months)


def test_a_validity_covering_every_procedure_saves_every_extension(
    simulated: tuple[AkteService, SimulationResult, Settings],
) -> None:
    service, result, _ = simulated
    extended = result.truth[YEAR]["fiction_certificates_extended"]

    saved = _cached_year(service, 24)

    assert saved.extensions_saved == extended
    assert len(saved.saved) == extended
    assert sum(month.extensions_saved for month in saved.months) == extended
    # The simulated office records attendance at the counter: visits are counted from it
    # (an extension saves a visit only where an attended appointment belongs to it).
    assert saved.visits_basis == "appointments"
    assert 0 <= saved.visits_saved <= extended
    # Most extensions are done at a booked visit (9 in 10; the rest by mail, or no seat
    # of a walk-in left that year): the visits saved are in proportion.
    assert saved.visits_saved >= 0.6 * extended, (saved.visits_saved, extended)
    # Actions: the extension itself, plus a new carrier sheet where one was needed.
    assert saved.actions_saved >= extended
    assert [m.month for m in saved.months] == [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    for item in saved.saved:
        assert item.event == "FictionCertificateExtended"
        assert item.reference
        assert item.actor.startswith(("sb-", "tl-"))
        assert item.visit in ("appointment", "none")
        assert item.at.astimezone(UTC).year in (YEAR - 1, YEAR)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=1, max_value=30), st.integers(min_value=0, max_value=12))
def test_the_savings_grow_with_the_validity(
    simulated: tuple[AkteService, SimulationResult, Settings], months: int, more: int
) -> None:
    service, result, _ = simulated
    shorter, longer = _cached_year(service, months), _cached_year(service, months + more)

    assert shorter.extensions_saved <= longer.extensions_saved
    assert shorter.visits_saved <= longer.visits_saved
    assert shorter.actions_saved <= longer.actions_saved
    for before, after in zip(shorter.months, longer.months, strict=True):
        assert before.extensions_saved <= after.extensions_saved
    # What a shorter validity saves, a longer one saves too.
    assert {(i.case_id, i.version) for i in shorter.saved} <= {
        (i.case_id, i.version) for i in longer.saved
    }
    assert longer.extensions_saved <= result.truth[YEAR]["fiction_certificates_extended"]


def test_the_replay_gives_the_same_answer_twice_and_touches_nothing_live(
    simulated: tuple[AkteService, SimulationResult, Settings],
) -> None:
    service, _, settings_ = simulated
    views = open_views_store(settings_)
    try:
        writer = views.writer()
        try:
            engine = ProjectionEngine(ApplicationEventLog(service), writer, [statistics.PROJECTION])
            engine.catch_up()
            rows_before = engine.dump()
            positions_before = read_positions(writer)
            head_before = service.recorder.max_notification_id()

            first = _year(service, 6, include_duldung=True)
            second = _year(service, 6, include_duldung=True)

            assert first == second
            assert json.dumps(whatif_json(first)) == json.dumps(whatif_json(second))
            assert whatif_csv(first) == whatif_csv(second)
            assert whatif_html(first) == whatif_html(second)
            assert service.recorder.max_notification_id() == head_before
            assert read_positions(writer) == positions_before
            assert engine.dump() == rows_before
            assert first.position == head_before
        finally:
            writer.close()
    finally:
        views.close()


def test_the_formats_carry_figures_items_and_assumptions(
    simulated: tuple[AkteService, SimulationResult, Settings],
) -> None:
    service, _, _ = simulated
    saved = _cached_year(service, 24)

    document = whatif_json(saved)
    csv_text = whatif_csv(saved)
    html = whatif_html(saved)

    assert document["totals"]["extensions_saved"] == saved.extensions_saved
    assert len(document["saved"]) == saved.extensions_saved
    assert document["assumptions"] == list(saved.assumptions)
    assert csv_text.splitlines()[0].startswith("section,")
    assert csv_text.count("\r\nmonth,") == 12
    assert "<!DOCTYPE html>" in html
    assert "Annahmen" in html
    assert saved.saved[0].reference in html


# --------------------------------------------------------- hand-made histories

DAY = datetime(2024, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture
def later(clock: FakeClock) -> FakeClock:
    clock.now = datetime(2025, 12, 1, 9, 0, tzinfo=UTC)
    return clock


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 9, 0, tzinfo=UTC)


def _fiction_history(service: AkteService) -> CaseDriver:
    """Issued for 3 months, extended twice by 3 months, ended by decision soon after.

    The application came on 8 January, while the previous title was valid (until the
    9th): the certificate continues it (§ 81 (4) S. 1 AufenthG)."""
    applied = _at(date(2024, 1, 8))
    case = CaseDriver.open(service, at=applied)
    application = case("receive_procedure", channel="mail", topic=TOPIC, at=applied)
    case(
        "issue_fiction_certificate",
        kind="81_4",
        valid_from=date(2024, 1, 10),
        valid_until=date(2024, 4, 9),
        carrier_sheet_number="F0000001",
        procedure_number=application,
        order_basis="timely_application",
        previous_title_valid_until=date(2024, 1, 9),
        at=_at(date(2024, 1, 10)),
    )
    case(
        "extend_fiction_certificate",
        certificate_number=1,
        valid_until=date(2024, 7, 9),
        at=_at(date(2024, 4, 2)),
    )
    case(
        "extend_fiction_certificate",
        certificate_number=1,
        valid_until=date(2024, 10, 9),
        new_carrier_sheet_number="F0000002",
        at=_at(date(2024, 7, 1)),
    )
    case(
        "end_fiction_certificate",
        certificate_number=1,
        end_reason="decision",
        at=_at(date(2024, 7, 20)),
    )
    return case


def _run(service: AkteService, months: int, **options: Any) -> WhatIfResult:
    return run_for_application(
        service,
        FictionValidity(months=months, **options),
        office_id=OFFICE,
        period_from=date(2024, 1, 1),
        period_until=date(2024, 12, 31),
    ).result


def test_a_paper_that_ended_before_the_longer_expiry_saves_every_later_extension(
    service: AkteService, later: FakeClock
) -> None:
    _fiction_history(service)

    assert _run(service, 3).extensions_saved == 0
    # Six months from 10 January reach 9 July: the first extension, not the second.
    six = _run(service, 6)
    assert (six.extensions, six.extensions_saved) == (2, 1)
    assert [(m.month, m.extensions_saved) for m in six.months if m.extensions] == [
        ("2024-04", 1),
        ("2024-07", 0),
    ]
    # Seven reach 9 August, past the decision of 20 July: both are saved; the second
    # came with a new carrier sheet (two actions).
    seven = _run(service, 7)
    assert (seven.extensions_saved, seven.visits_saved, seven.actions_saved) == (2, 2, 3)
    assert [item.actions for item in seven.saved] == [1, 2]
    assert seven.visits_basis == "assumed"


def test_visits_are_the_attended_appointments_where_any_are_recorded(
    service: AkteService, later: FakeClock
) -> None:
    case = _fiction_history(service)
    appointment = uuid4()

    def attended(case_file: CaseFile, act: Act) -> None:
        case_file.record_appointment_attendance(
            appointment_id=appointment,
            outcome="attended",
            service_point_id=uuid4(),
            appointment_type="fiction",
            procedure_kind="fiction_certificate",
            legal_basis=None,
            act=act,
        )

    # The person came the day before the first extension was recorded.
    service.change_case(case.case_id, case.version, "sb-01", _at(date(2024, 4, 1)), attended)

    seven = _run(service, 7)

    assert seven.visits_basis == "appointments"
    assert [item.visit for item in seven.saved] == ["appointment", "none"]
    assert seven.saved[0].appointment_id == str(appointment)
    assert seven.visits_saved == 1
    # Extension, new sheet, and the recorded attendance.
    assert seven.actions_saved == 1 + 1 + 2
    assert any("wahrgenommene Termin" in a for a in seven.assumptions)


def test_duldungen_count_only_when_included(service: AkteService, later: FakeClock) -> None:
    case = CaseDriver.open(service, at=_at(date(2024, 2, 1)))
    case(
        "issue_residence_document",
        kind="duldung",
        legal_basis="aufenthg-60a",
        valid_from=date(2024, 2, 1),
        valid_until=date(2024, 4, 30),
        document_number="D000001",
        at=_at(date(2024, 2, 1)),
    )
    case(
        "extend_residence_document",
        residence_document_number=1,
        valid_until=date(2024, 7, 31),
        at=_at(date(2024, 4, 25)),
    )

    assert _run(service, 6).extensions == 0
    included = _run(service, 6, include_duldung=True)
    assert (included.extensions, included.extensions_saved) == (1, 1)
    assert included.saved[0].document == "duldung"
    assert included.saved[0].event == "ResidenceDocumentExtended"


def test_the_ordinance_policy_saves_the_extensions_of_section_24_titles(
    service: AkteService, later: FakeClock
) -> None:
    opened = _at(date(2024, 3, 4))
    protected, other = CaseDriver.open(service, at=opened), CaseDriver.open(service, at=opened)
    for case, basis in ((protected, "aufenthg-24"), (other, "aufenthg-16b")):
        case(
            "issue_residence_document",
            kind="eat",
            legal_basis=basis,
            valid_from=date(2024, 3, 4),
            valid_until=date(2025, 3, 3),
            document_number="Y0000AB12",
            at=_at(date(2024, 3, 4)),
        )
        case(
            "extend_residence_document",
            residence_document_number=1,
            valid_until=date(2026, 3, 4),
            at=_at(date(2025, 2, 20)),
        )
        case("order_eat_card", residence_document_number=1, at=_at(date(2025, 2, 20)))

    policy = policy_for("ordinance-extension", extended_to=date(2026, 3, 4))
    run = run_for_application(
        service,
        policy,
        office_id=OFFICE,
        period_from=date(2025, 1, 1),
        period_until=date(2025, 12, 31),
    )

    assert (run.result.extensions, run.result.extensions_saved) == (1, 1)
    assert run.result.saved[0].reference == protected.reference
    # The extension and the card it needed.
    assert run.result.actions_saved == 2
    short = policy_for("ordinance-extension", extended_to=date(2026, 1, 1))
    assert (
        run_whatif(
            ApplicationEventLog(service),
            short,
            office_id=OFFICE,
            period_from=date(2025, 1, 1),
            period_until=date(2025, 12, 31),
        ).result.extensions_saved
        == 0
    )


# --------------------------------------------------------------- the rules alone

CERTIFICATE = IssuedDocument("fiction_certificate", "81_4", "", date(2024, 1, 10), date(2024, 4, 9))


def test_n_months_end_the_day_before_the_same_day() -> None:
    assert valid_for_months(date(2024, 1, 10), 3) == date(2024, 4, 9)
    assert valid_for_months(date(2024, 1, 31), 1) == date(2024, 2, 28)


@given(st.integers(1, 60), st.integers(0, 60), st.dates(date(2024, 1, 1), date(2026, 1, 1)))
def test_the_rule_is_monotone_in_the_months(months: int, more: int, extended_to: date) -> None:
    shorter, longer = FictionValidity(months), FictionValidity(months + more)
    for ended_on in (None, date(2024, 6, 1)):
        if extension_saved(shorter, CERTIFICATE, extended_to=extended_to, ended_on=ended_on):
            assert extension_saved(longer, CERTIFICATE, extended_to=extended_to, ended_on=ended_on)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(WhatIfError):
        policy_for("fiction-validity", months=0)
    with pytest.raises(WhatIfError):
        policy_for("fiction-validity")
    with pytest.raises(WhatIfError):
        policy_for("no-such-policy", months=3)
    with pytest.raises(WhatIfError):
        policy_for("ordinance-extension")
    assert OrdinanceExtension(date(2026, 3, 4)).applies_to(
        IssuedDocument(
            "residence_document", "eat", "aufenthg-24", date(2024, 1, 1), date(2025, 1, 1)
        )
    )


# ---------------------------------------------------------------- command line


def test_akte_whatif_prints_the_result_and_refuses_bad_parameters(
    service: AkteService,
    settings: Settings,
    later: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    for name, value in child_env(settings).items():
        if name.startswith("AKTE_"):
            monkeypatch.setenv(name, value)
    case = _fiction_history(service)
    period = ["--from", "2024-01-01", "--until", "2024-12-31", "--office", OFFICE]

    assert main(["whatif", "--months", "7", *period]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["totals"]["extensions_saved"] == 2
    assert {item["reference"] for item in printed["saved"]} == {case.reference}
    out = tmp_path / "whatif.html"
    assert main(["whatif", "--months", "7", *period, "--format", "html", "--out", str(out)]) == 0
    assert "Annahmen" in out.read_text(encoding="utf-8")
    assert main(["whatif", "--months", "0", *period]) == 2
    assert "months" in capsys.readouterr().err
