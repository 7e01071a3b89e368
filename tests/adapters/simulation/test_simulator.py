"""The office-year simulator: exact targets, a truth that a naive count reproduces,
realistic business time, the same history for the same seed, on both stores."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.reference.staff_plan import load_staff_plan
from adapters.settings import Settings
from adapters.simulation.calendar import easter_sunday, is_working_day, national_holidays
from adapters.simulation.office import staff_ids
from adapters.simulation.profile import (
    OfficeProfile,
    SimulationError,
    load_profile,
    profile_from_json,
    scaled,
    targets_for,
)
from adapters.simulation.simulator import simulate
from adapters.simulation.staff import staff_plan_json, yearly_staff
from adapters.simulation.tally import SimulationResult, achieved
from adapters.store import statistics_upkeep
from adapters.views.whatif_replay import run_for_application
from domain.case_file import CaseFile
from domain.whatif import FictionValidity
from service import AkteService
from tests.conftest import POSTGRES, postgres_environment
from tests.support.statistics_oracle import BERLIN, all_events, naive_figures

PROFILE = load_profile()
YEAR = 2024


@pytest.fixture(scope="module")
def year_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[AkteService, SimulationResult]]:
    """One simulated 2024 at scale 0.005 on SQLite, shared by the tests that only read."""
    settings = Settings(store="sqlite", data_dir=tmp_path_factory.mktemp("simulated-year"))
    service = build_service(settings)
    try:
        yield service, simulate(service, PROFILE, seed=11, year=YEAR, scale=0.005)
    finally:
        service.close()


def assert_oracle_agrees(service: AkteService, result: SimulationResult, year: int) -> None:
    """The naive oracle's count equals the truth, on every figure the oracle knows."""
    naive = naive_figures(service, result.office_id, year)
    truth = result.truth[year]
    assert naive == {key: truth[key] for key in naive}


def _history(service: AkteService) -> list[tuple[str, datetime | None]]:
    return [(type(event).__qualname__, getattr(event, "at", None)) for event in all_events(service)]


# ---------------------------------------------------------------- the figures


def test_the_profile_targets_are_met_exactly_after_scaling(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    _service, result = year_run
    expected = targets_for(PROFILE, scale=0.005)
    assert expected["procedures_processed"] == 750
    assert expected["residence_documents_issued"] == 70
    assert result.targets[YEAR] == expected
    assert achieved(result.truth[YEAR]) == expected
    truth = result.truth[YEAR]
    assert expected["appointments_served"] == 100
    # Served and missed: a realistic no-show share; customers by the report's definition.
    assert 5 <= truth["no_show_rate"] <= 15
    assert truth["customers"] > truth["appointments_served"]
    # 29 EUR per declaration paid, in the year of the payment (handover may be later).
    assert truth["commitment_fees_cents"] % 2900 == 0
    assert truth["commitment_fees_cents"] > 0


def test_the_ground_truth_equals_a_naive_count_over_the_event_list(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, result = year_run
    naive = naive_figures(service, result.office_id, YEAR)
    truth = result.truth[YEAR]
    assert naive == {key: truth[key] for key in naive}
    # The figures the oracle does not know, counted here from the events.
    counted: Counter[str] = Counter()
    for event in all_events(service):
        if event.at.astimezone(BERLIN).year == YEAR:
            counted[type(event).__qualname__] += 1
    assert truth["residence_documents_extended"] == counted["CaseFile.ResidenceDocumentExtended"]
    assert (
        truth["residence_documents_transferred"] == counted["CaseFile.EatTransferredToNewPassport"]
    )
    assert truth["entry_consents_deemed"] == counted["CaseFile.EntryConsentDeemedGiven"]
    assert truth["residence_documents_extended"] > 0
    assert truth["residence_documents_transferred"] > 0
    # The staff plan from the profile's staff, scaled (26 x 0.005, at least one post):
    # posts, and fewer at work in August.
    assert truth["staff_posts"] == 1
    months = result.staff_plan["offices"][result.office_id]
    assert months[f"{YEAR}-08"]["at_work"] < months[f"{YEAR}-04"]["at_work"] < 1
    assert set(truth) - set(naive) == {
        "residence_documents_extended",
        "residence_documents_transferred",
        "entry_consents_deemed",
        "extension_visits",
        "staff_posts",
        "staff_at_work",
    }
    # The neighbouring years hold the spill-over, and the truth does not claim them.
    assert naive_figures(service, result.office_id, YEAR + 1)["procedures_processed"]["total"] > 0


def test_the_year_looks_like_an_office_year(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    _service, result = year_run
    truth = result.truth[YEAR]
    processed = truth["procedures_processed"]
    assert processed["digital_share"] > 0.6  # "most of them digitally"
    assert set(processed["by_outcome"]) == {"granted", "refused", "withdrawn"}
    assert all(processed["by_outcome"].values())
    kinds = truth["residence_documents_issued"]["by_kind"]
    assert kinds["eat"] > kinds["duldung"] > 0
    assert kinds["aufenthaltsgestattung"] > 0
    assert truth["fiction_certificates_extended"] > 0
    assert truth["backlog_at_year_end"] > 0
    assert 0 < truth["days_to_decision_median"] <= truth["days_to_decision_p90"] < 365


def test_business_time_lies_on_working_days_in_office_hours(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, _result = year_run
    stamped = [at for _kind, at in _history(service) if at is not None]
    assert stamped
    for at in stamped:
        local = at.astimezone(BERLIN)
        assert is_working_day(local.date()), local
        assert time(7, 0) <= local.time() <= time(18, 0), local


def test_procedures_span_the_turn_of_the_year_and_files_are_older(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, _result = year_run
    received: dict[tuple[Any, int], int] = {}
    spans: Counter[tuple[int, int]] = Counter()
    opened_years: Counter[int] = Counter()
    decided_months: Counter[int] = Counter()
    for event in all_events(service):
        if isinstance(event, CaseFile.Opened):
            opened_years[event.at.astimezone(BERLIN).year] += 1
        elif isinstance(event, CaseFile.ProcedureReceived):
            received[(event.originator_id, event.procedure_number)] = event.at.astimezone(
                BERLIN
            ).year
        elif isinstance(event, CaseFile.ProcedureDecided):
            local = event.at.astimezone(BERLIN)
            spans[(received[(event.originator_id, event.procedure_number)], local.year)] += 1
            if local.year == YEAR:
                decided_months[local.month] += 1
    assert spans[(YEAR - 1, YEAR)] > 0  # received in November/December, decided in January
    assert spans[(YEAR, YEAR + 1)] > 0  # received in December, decided the January after
    assert sum(count for year, count in opened_years.items() if year < YEAR - 1) > 0
    # Busier before the summer travel season than in August.
    assert decided_months[6] > decided_months[8]


def test_fiction_certificates_follow_the_carrier_sheet_rule(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, _result = year_run
    on_sheet: Counter[tuple[Any, int]] = Counter()
    for event in all_events(service):
        if isinstance(event, CaseFile.FictionCertificateExtended):
            key = (event.originator_id, event.certificate_number)
            on_sheet[key] = 1 if event.new_carrier_sheet_number else on_sheet[key] + 1
            assert on_sheet[key] <= 2


# ------------------------------------------------------------ determinism, years


def test_the_same_seed_gives_the_same_history_and_truth(tmp_path: Path) -> None:
    runs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        service = build_service(Settings(store="sqlite", data_dir=tmp_path / name))
        try:
            result = simulate(service, PROFILE, seed=seed, year=YEAR, scale=0.001)
            runs.append((result.truth_json(), _history(service)))
        finally:
            service.close()
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[2][0]
    assert runs[0][1] != runs[2][1]


def test_consecutive_years_each_meet_their_grown_targets(tmp_path: Path) -> None:
    service = build_service(Settings(store="sqlite", data_dir=tmp_path))
    try:
        result = simulate(
            service, PROFILE, seed=3, year=YEAR - 1, years=2, scale=0.0015, growth=0.25
        )
        assert result.years == (YEAR - 1, YEAR)
        first, second = (
            targets_for(PROFILE, scale=0.0015, years_after_first=n, growth=0.25) for n in (0, 1)
        )
        assert second["procedures_processed"] > first["procedures_processed"]
        assert achieved(result.truth[YEAR - 1]) == first
        assert achieved(result.truth[YEAR]) == second
        for year in result.years:
            assert_oracle_agrees(service, result, year)
    finally:
        service.close()


def test_a_tiny_scale_still_meets_every_target(tmp_path: Path) -> None:
    service = build_service(Settings(store="sqlite", data_dir=tmp_path))
    try:
        result = simulate(service, PROFILE, seed=1, year=YEAR, scale=0.0001)
        assert all(value >= 1 for value in result.targets[YEAR].values())
        assert achieved(result.truth[YEAR]) == result.targets[YEAR]
        assert_oracle_agrees(service, result, YEAR)
    finally:
        service.close()


def test_both_stores_agree_with_the_naive_count(settings: Settings) -> None:
    service = build_service(settings)
    try:
        result = simulate(service, PROFILE, seed=21, year=YEAR, scale=0.0015)
        assert achieved(result.truth[YEAR]) == result.targets[YEAR]
        assert_oracle_agrees(service, result, YEAR)
    finally:
        service.close()


def test_a_year_that_has_not_ended_is_refused(tmp_path: Path) -> None:
    service = build_service(Settings(store="sqlite", data_dir=tmp_path))
    try:
        this_year = datetime.now(tz=UTC).year
        with pytest.raises(SimulationError, match="not ended"):
            simulate(service, PROFILE, seed=1, year=this_year, scale=0.001)
        assert (service.recorder.max_notification_id() or 0) == 0
    finally:
        service.close()


# ----------------------------------------------------------------- the pieces


def test_easter_and_the_national_holidays() -> None:
    assert easter_sunday(2024) == date(2024, 3, 31)
    assert easter_sunday(2025) == date(2025, 4, 20)
    assert easter_sunday(2019) == date(2019, 4, 21)
    assert easter_sunday(2038) == date(2038, 4, 25)
    holidays = national_holidays(2024)
    assert {date(2024, 3, 29), date(2024, 4, 1), date(2024, 5, 9), date(2024, 5, 20)} <= holidays
    assert len(holidays) == 9
    assert date(2017, 10, 31) in national_holidays(2017)
    working = [
        date.fromordinal(n)
        for n in range(date(2024, 1, 1).toordinal(), date(2025, 1, 1).toordinal())
    ]
    assert sum(is_working_day(day) for day in working) == 253


def test_scaling_rounds_and_keeps_every_figure_alive() -> None:
    assert scaled(14_000, 0.01) == 140
    assert scaled(500, 0.0001) == 1
    assert scaled(0, 5) == 0
    profile = OfficeProfile(year=2024, figures=dict.fromkeys(PROFILE.figures, 1000))
    assert (
        targets_for(profile, scale=1.0, years_after_first=2, growth=0.1)["procedures_processed"]
        == 1210
    )


def test_the_profile_names_its_customers() -> None:
    assert PROFILE.customers == 48_000
    assert PROFILE.customer_target(scale=0.01) == 480
    without = OfficeProfile(year=2024, figures=dict.fromkeys(PROFILE.figures, 900))
    assert without.customer_target(scale=1.0) == 300  # a third of the procedures
    data = {"year": 2024, **dict.fromkeys(PROFILE.figures, 1), "customers": -1}
    with pytest.raises(SimulationError, match="customers"):
        profile_from_json(data)


def test_the_cli_prints_the_truth_and_progress_and_refuses_a_used_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "truth.json"
    argv = ["simulate", "--seed", "4", "--scale", "0.001", "--year", str(YEAR)]

    staff = tmp_path / "staff.json"
    assert main([*argv, "--truth-out", str(out), "--staff-out", str(staff)]) == 0

    # The staff plan, in the form AKTE_STAFF_FILE reads, with the profile's posts scaled
    # as the figures (26 x 0.001 rounds to none: at least one).
    plan = load_staff_plan(staff)
    month = plan.month("abh-simulation", YEAR, 8)
    assert month is not None
    assert month.posts == 1
    assert 0 < month.at_work < 1
    truth = json.loads(out.read_text(encoding="utf-8"))
    assert truth["years"][str(YEAR)]["procedures_processed"]["total"] == 150
    assert truth["targets"][str(YEAR)]["procedures_processed"] == 150
    err = capsys.readouterr().err
    assert "events/s" in err
    assert "commands/s" in err
    assert main(argv) == 2
    assert "--append" in capsys.readouterr().err
    assert main([*argv, "--append", "--office", "abh-zweite"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["office_id"] == "abh-zweite"
    assert printed["years"][str(YEAR)] == {**truth["years"][str(YEAR)], "office_id": "abh-zweite"}


@pytest.mark.postgres
def test_the_cli_keeps_the_logs_statistics_where_autovacuum_does_not(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    postgres_schema: str,
) -> None:
    """Without statistics every load of a case file became a scan at a few million events
    (docs/performance/state.md): the simulation analyzes the shard as it grows."""
    for name, value in postgres_environment(tmp_path / "data", postgres_schema).items():
        monkeypatch.setenv(name, value)
    # The store made first, its event table told to go without autovacuum (the server
    # may have it on).
    service = build_service(Settings())
    try:
        with service.recorder.datastore.transaction(commit=True) as cursor:  # type: ignore[attr-defined]
            cursor.execute(
                f'ALTER TABLE "{postgres_schema}".akte_events SET (autovacuum_enabled = false)'
            )
    finally:
        service.close()
    monkeypatch.setattr(statistics_upkeep, "FIRST_REFRESH_EVENTS", 50)

    argv = ["simulate", "--seed", "4", "--scale", "0.001", "--year", str(YEAR)]
    assert main([*argv, "--truth-out", str(tmp_path / "truth.json")]) == 0

    assert "warning: autovacuum is off" in capsys.readouterr().err
    with psycopg.connect(**POSTGRES) as server:
        analyzed = server.execute(
            "SELECT relname FROM pg_stat_user_tables "
            "WHERE schemaname = %s AND last_analyze IS NOT NULL",
            (postgres_schema,),
        ).fetchall()
    assert {"akte_events", "akte_event_chain"} <= {row[0] for row in analyzed}


def test_certificates_are_issued_when_the_application_comes_in_spread_over_the_year(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, result = year_run
    received: dict[tuple[Any, int], datetime] = {}
    months: Counter[int] = Counter()
    waits: list[int] = []
    for event in all_events(service):
        if isinstance(event, CaseFile.ProcedureReceived):
            received[(event.originator_id, event.procedure_number)] = event.at
        elif isinstance(event, CaseFile.FictionCertificateIssued):
            local = event.at.astimezone(BERLIN)
            if local.year != YEAR:
                continue
            months[local.month] += 1
            if event.procedure_number is not None:
                came_in = received[(event.originator_id, event.procedure_number)]
                waits.append((local.date() - came_in.astimezone(BERLIN).date()).days)
    issued = result.truth[YEAR]["fiction_certificates_issued"]
    assert sum(months.values()) == issued
    # No pile-up in January (the certificates of the year before's procedures once all
    # landed on its first working day, some 30 % of the year's): spread as applications
    # come in, January a little busier after the holidays (at most a quarter: a few
    # certificates at this scale).
    assert months[1] <= issued / 4, months
    assert len(months) >= 6, months
    # Issued with the application: within a working week of its receipt.
    assert waits
    assert max(waits) <= 7, waits


# ------------------------------------------------- visits for held documents, posts


_HOLDER_TYPES = frozenset(
    {
        "extend-residence-permit",
        "student-permit",
        "extend-gestattung-duldung",
        "transfer-eat-new-passport",
    }
)


def _visits_behind_extensions(service: AkteService, year: int) -> dict[str, Any]:
    """Counted naively from the log: extensions and transfers of ``year`` done at a visit
    for that purpose, that is, the file's next event is the attendance at an appointment
    of that kind on the same day (the counter records the visit as it ends)."""
    kinds: dict[tuple[Any, int], str] = {}
    previous: dict[Any, CaseFile.Event] = {}
    by_kind: Counter[str] = Counter()
    fictions = transfers = 0
    for event in all_events(service):
        if not isinstance(event, CaseFile.Event):
            continue
        before = previous.get(event.originator_id)
        previous[event.originator_id] = event
        if isinstance(event, CaseFile.ResidenceDocumentIssued):
            kinds[(event.originator_id, event.residence_document_number)] = event.kind
        if (
            not isinstance(event, CaseFile.AppointmentAttendanceRecorded)
            or event.outcome != "attended"
            or before is None
        ):
            continue
        day = before.at.astimezone(BERLIN).date()
        if day.year != year or event.at.astimezone(BERLIN).date() != day:
            continue
        kind = event.appointment_type
        if isinstance(before, CaseFile.ResidenceDocumentExtended) and kind in _HOLDER_TYPES:
            by_kind[kinds[(before.originator_id, before.residence_document_number)]] += 1
        elif isinstance(before, CaseFile.EatTransferredToNewPassport) and (
            kind == "transfer-eat-new-passport"
        ):
            transfers += 1
        elif isinstance(before, CaseFile.FictionCertificateExtended) and (
            kind == "fiction-certificate"
        ):
            fictions += 1
    return {
        "fiction_certificates": fictions,
        "residence_documents": {
            kind: by_kind[kind] for kind in ("eat", "duldung", "aufenthaltsgestattung")
        },
        "transfers": transfers,
    }


def test_residence_documents_are_extended_and_moved_at_booked_visits(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, result = year_run
    truth = result.truth[YEAR]
    visits = truth["extension_visits"]

    # The truth promises the visits behind the extensions; the log shows each of them.
    assert visits == _visits_behind_extensions(service, YEAR)
    at_visit = visits["residence_documents"]
    # Most renewals are done at a visit (up to 9 in 10, as far as the year's appointments
    # reach), Duldungen and Gestattungen as well as eATs; the appointments stay exact.
    assert sum(at_visit.values()) >= 0.6 * truth["residence_documents_extended"], visits
    assert at_visit["eat"] > 0
    assert at_visit["duldung"] + at_visit["aufenthaltsgestattung"] > 0
    assert visits["fiction_certificates"] <= truth["fiction_certificates_extended"]
    assert visits["transfers"] <= truth["residence_documents_transferred"]
    assert achieved(truth)["appointments_served"] == result.targets[YEAR]["appointments_served"]


def test_the_whatif_saves_the_visits_of_extended_duldungen(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    """With Duldungen issued for longer too, the what-if saves their extensions' visits
    besides the certificates': the visits the simulator booked for them."""
    service, result = year_run
    visits = result.truth[YEAR]["extension_visits"]

    def saved(include_duldung: bool) -> int:
        return run_for_application(
            service,
            FictionValidity(months=120, include_duldung=include_duldung),
            office_id=result.office_id,
            period_from=date(YEAR, 1, 1),
            period_until=date(YEAR, 12, 31),
        ).result.visits_saved

    certificates_only, with_duldungen = saved(False), saved(True)

    assert visits["residence_documents"]["duldung"] > 0
    assert certificates_only >= visits["fiction_certificates"]
    assert with_duldungen - certificates_only >= visits["residence_documents"]["duldung"]


def test_posts_and_people_at_work_scale_with_the_figures() -> None:
    assert PROFILE.staff_target(scale=1.0) == 26
    assert PROFILE.staff_target(scale=0.1) == 3  # 2.6 posts
    assert PROFILE.staff_target(scale=0.005) == 1  # at least one
    assert PROFILE.staff_target(scale=1.0, years_after_first=1, growth=0.5) == 39
    plan = staff_plan_json("abh-x", {2023: 3, 2024: 26})
    assert yearly_staff(plan, "abh-x", 2023)["staff_posts"] == 3
    assert yearly_staff(plan, "abh-x", 2024)["staff_posts"] == 26
    assert plan["offices"]["abh-x"]["2024-08"]["at_work"] < 26
    # As many people act as there are posts; one post is one person for everything.
    assert staff_ids(3) == (("tl-01",), ("sb-01", "sb-02"))
    assert staff_ids(26) == (
        ("tl-01", "tl-02", "tl-03"),
        tuple(f"sb-{n:02d}" for n in range(1, 24)),
    )
    assert staff_ids(1) == (("sb-01",), ("sb-01",))
    assert len(set().union(*staff_ids(26))) == 26


def test_only_the_scaled_staff_act_in_the_log(
    year_run: tuple[AkteService, SimulationResult],
) -> None:
    service, result = year_run
    actors = {
        event.by
        for event in all_events(service)
        if isinstance(event, CaseFile.Event) and str(event.by).startswith(("sb-", "tl-"))
    }
    assert result.truth[YEAR]["staff_posts"] == 1
    assert actors == {"sb-01"}
