"""The workload read model, the team lead's view and the yearly report's workload section.

A hand-made fortnight on SQLite and PostgreSQL: actions and decisions per caseworker and
week (the portal's steps not counted), the assigned backlog at each week's end (through
re-assignment, decision and transfer), its age, the "booked out" series from the
appointment tick, work per post and per person at work from the staff plan; the same
after a rebuild in other batch sizes. Then the HTTP view and the report section.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from adapters.bootstrap import build_app, build_read_models
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.reference.staff_plan import StaffFileError, load_staff_plan, staff_plan_from_json
from adapters.reports.yearly_report import report_csv, report_html, report_json
from adapters.settings import Settings
from projections.appointments import appointment_figures
from projections.figures import statistics, workload
from projections.figures.workload import StaffMonth, StaffPlan
from projections.figures.yearly_report import WORKLOAD_KEYS, yearly_report
from projections.storage import ViewsStore
from service import AkteService
from tests.conftest import FakeClock
from tests.support.appointments import local, set_up
from tests.support.projections import (
    MASTER_DATA,
    OFFICE,
    TOPIC,
    CaseDriver,
    engine_for,
    views_for,
)

MODELS = [workload.PROJECTION, appointment_figures.PROJECTION]
STAFF = StaffPlan({OFFICE: {"2024-01": StaffMonth(posts=4, at_work=2.5)}})


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def _at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 1, day, hour, 0, tzinfo=UTC)


def _fortnight(service: AkteService, clock: FakeClock) -> dict[str, CaseDriver]:
    """Weeks 2 and 3 of 2024 (8-14 and 15-21 January)."""
    clock.now = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)
    cases = {}
    for name in ("decided", "reassigned", "transferred"):
        recorded = service.open_case(
            office_id=OFFICE, master_data=MASTER_DATA, by="sb-01", at=_at(8)
        )
        cases[name] = CaseDriver(service, recorded, "sb-01")
    a, b, c = cases["decided"], cases["reassigned"], cases["transferred"]
    a("receive_procedure", channel="contact_form", topic=TOPIC, by="portal", at=_at(8, 10))
    a("assign_procedure", procedure_number=1, assignee="sb-02", by="tl-01", at=_at(9))
    b("receive_procedure", channel="mail", topic=TOPIC, at=_at(10))
    b("assign_procedure", procedure_number=1, assignee="sb-02", by="tl-01", at=_at(10, 11))
    c("receive_procedure", channel="mail", topic=TOPIC, at=_at(10))
    c("assign_procedure", procedure_number=1, assignee="sb-03", by="tl-01", at=_at(11))
    # Week 3: decided, re-assigned, transferred away.
    a(
        "decide_procedure",
        procedure_number=1,
        outcome="granted",
        legal_basis=None,
        by="sb-02",
        at=_at(17),
    )
    b("assign_procedure", procedure_number=1, assignee="sb-03", by="tl-01", at=_at(16))
    c(
        "decide_procedure",
        procedure_number=1,
        outcome="withdrawn",
        legal_basis=None,
        by="sb-03",
        at=_at(18),
    )
    c("transfer_to_office", to_office_id="abh-anderswo", at=_at(19))
    return cases


def _figures(views: ViewsStore, staff: StaffPlan | None = STAFF) -> workload.Workload:
    with views.reader() as session:
        return workload.workload(
            session,
            office_id=OFFICE,
            period_from=date(2024, 1, 8),
            period_until=date(2024, 1, 21),
            staff=staff,
            position=0,
        )


def test_actions_decisions_and_backlog_per_caseworker_and_week(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    _fortnight(service, clock)
    with engine_for(service, views, MODELS) as engine:
        engine.catch_up()

    figures = _figures(views)

    assert [week.week for week in figures.weeks] == ["2024-W02", "2024-W03"]
    by = {(row.week, row.actor): (row.actions, row.decided) for row in figures.by_caseworker}
    # Opened three files, received two procedures (the portal's receipt is not counted).
    assert by["2024-W02", "sb-01"] == (5, 0)
    assert by["2024-W02", "tl-01"] == (3, 0)
    assert by["2024-W03", "sb-02"] == (1, 1)
    assert by["2024-W03", "tl-01"] == (1, 0)
    assert by["2024-W03", "sb-03"] == (1, 1)
    assert by["2024-W03", "sb-01"] == (1, 0)  # the transfer
    assert ("2024-W02", "portal") not in by
    first, second = figures.weeks
    assert (first.actions, first.decided, first.backlog) == (8, 0, 3)
    assert (second.actions, second.decided, second.backlog) == (4, 2, 1)
    # Per post and per person at work, from the staff plan of January.
    assert (first.posts, first.at_work) == (4, 2.5)
    assert (first.actions_per_post, first.actions_per_person_at_work) == (2.0, 3.2)
    # At the end of the period: the re-assigned one, with sb-03, received on 10 January.
    assert [(b.actor, b.open, b.median_age_days, b.oldest_age_days) for b in figures.backlog] == [
        ("sb-03", 1, 11.0, 11)
    ]
    assert figures.backlog_age == {"0-30": 1, "31-90": 0, "91-180": 0, "181+": 0}
    assert first.booked_out_weeks is None  # no appointment tick then: not observed
    assert figures.staff_configured
    without = _figures(views, None)
    assert without.weeks[0].actions_per_post is None
    assert not without.staff_configured


def test_an_erasure_is_no_work_step(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    cases = _fortnight(service, clock)
    with engine_for(service, views, MODELS) as engine:
        engine.catch_up()
        before = _figures(views)
        decided = cases["decided"]
        # By a team lead who did casework that week: counted, it would show.
        service.data_protection.erase_personal_data(
            decided.case_id,
            expected_version=decided.version,
            by="tl-01",
            legal_ground="dsgvo-17",
            approved_by="dsb-01",
            at=_at(18),
        )
        engine.catch_up()

        assert _figures(views) == before
        engine.rebuild()
        assert _figures(views) == before


def test_a_rebuild_in_small_batches_gives_the_same_rows(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    _fortnight(service, clock)
    with engine_for(service, views, [workload.PROJECTION]) as engine:
        engine.catch_up()
        caught_up = engine.dump()
    with engine_for(service, views, [workload.PROJECTION], batch_size=2) as engine:
        engine.rebuild()
        assert engine.dump() == caught_up


def test_the_booked_out_series_comes_from_the_appointment_tick(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    set_up(service)
    clock.now = local(date(2024, 3, 4), 7, 5)
    assert service.appointments.run_appointment_tick().observations > 0
    with engine_for(service, views, MODELS) as engine:
        engine.catch_up()

    with views.reader() as session:
        figures = workload.workload(
            session,
            office_id=OFFICE,
            period_from=date(2024, 3, 4),
            period_until=date(2024, 3, 10),
            staff=None,
            position=0,
        )

    assert [(w.week, w.booked_out_weeks) for w in figures.weeks] == [("2024-W10", 0)]


def test_the_yearly_report_has_a_workload_section(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    _fortnight(service, clock)
    with engine_for(service, views, [*MODELS, statistics.PROJECTION]) as engine:
        engine.catch_up()

    full_year = StaffPlan(
        {OFFICE: {f"2024-{m:02d}": StaffMonth(posts=4, at_work=2) for m in range(1, 13)}}
    )
    report = yearly_report(views, OFFICE, 2024, staff=full_year)

    assert tuple(f.key for f in report.workload) == WORKLOAD_KEYS
    section = {f.key: f for f in report.workload}
    assert all(f.section == "workload" for f in report.workload)
    actions = section["workload_actions"]
    assert actions.value == 12
    assert actions.by_month is not None
    assert actions.by_month[0] == 12
    assert actions.breakdowns["Je Kennung"] == {"sb-01": 6, "sb-02": 1, "sb-03": 1, "tl-01": 4}
    assert section["workload_decided"].value == 2
    assert section["workload_backlog_assigned"].value == 1
    assert section["workload_backlog_assigned"].breakdowns["Je Kennung"] == {"sb-03": 1}
    assert section["workload_backlog_age_median"].value == 356  # 10 Jan to 31 Dec
    assert section["workload_booked_out_weeks"].value is None  # never observed
    assert section["workload_posts"].value == 4
    assert section["workload_actions_per_person_at_work"].value == 6.0
    # Without a staff plan: not recorded, never 0.
    plain = yearly_report(views, OFFICE, 2024)
    assert {f.key: f.value for f in plain.workload}["workload_actions_per_post"] is None
    # The formats carry the section.
    data = report_json(report)
    assert [f["key"] for f in data["workload"]] == list(WORKLOAD_KEYS)
    assert ",workload_actions," in report_csv(report)
    assert 'data-section="workload"' in report_html(report)


def test_the_staff_file_is_checked() -> None:
    example = load_staff_plan(Path("adapters/reference/staff.json"))
    assert example.month("abh-musterstadt", 2024, 1) is not None
    with pytest.raises(StaffFileError):
        staff_plan_from_json({"offices": {"x": {"2024-13": {"posts": 1, "at_work": 1}}}})
    with pytest.raises(StaffFileError):
        staff_plan_from_json({"offices": {"x": {"2024-01": {"posts": -1, "at_work": 1}}}})


# ------------------------------------------------------------------------- HTTP


def _token(settings: Settings, role: Role, user: str) -> dict[str, str]:
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    token = issuer.issue(user_id=user, roles=[role], office_id=OFFICE)
    return {"Authorization": f"Bearer {token}"}


def test_the_team_lead_reads_the_workload_and_the_whatif_over_http(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    cases = _fortnight(service, clock)
    cases["reassigned"](
        "issue_fiction_certificate",
        kind="81_3_1",
        valid_from=date(2024, 1, 10),
        valid_until=date(2024, 4, 9),
        carrier_sheet_number="F0000001",
        procedure_number=1,
        at=_at(19),
    )
    clock.now = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    cases["reassigned"](
        "extend_fiction_certificate",
        certificate_number=1,
        valid_until=date(2024, 7, 9),
        at=datetime(2024, 4, 2, 9, tzinfo=UTC),
    )
    staff_file = settings.data_dir / "staff.json"
    staff_file.parent.mkdir(parents=True, exist_ok=True)
    staff_file.write_text(
        json.dumps({"offices": {OFFICE: {"2024-01": {"posts": 4, "at_work": 2.5}}}})
    )
    configured = settings.model_copy(update={"staff_file": staff_file})
    read_models = build_read_models(configured, service, follow=True)
    try:
        app = build_app(configured, service, read_models=read_models)
        assert read_models.wait_until(service.recorder.max_notification_id() or 0, 10)
        lead = _token(configured, Role.TEAM_LEAD, "tl-01")
        with TestClient(app) as http:
            answer = http.get(
                "/reports/workload",
                params={"from": "2024-01-08", "until": "2024-01-21"},
                headers=lead,
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert [w["backlog"] for w in body["weeks"]] == [3, 1]
            assert body["weeks"][0]["actions_per_post"] == 2.0
            assert body["backlog"] == [
                {"actor": "sb-03", "open": 1, "median_age_days": 11.0, "oldest_age_days": 11}
            ]
            whatif = http.get(
                "/reports/whatif",
                params={"months": 6, "from": "2024-01-01", "until": "2024-12-31"},
                headers=lead,
            )
            assert whatif.status_code == 200, whatif.text
            assert whatif.json()["totals"]["extensions_saved"] == 1
            assert whatif.json()["saved"][0]["reference"] == cases["reassigned"].reference
            html = http.get(
                "/reports/whatif",
                params={"months": 6, "from": "2024-01-01", "until": "2024-12-31", "format": "html"},
                headers=lead,
            )
            assert html.headers["content-type"].startswith("text/html")
            bad = http.get(
                "/reports/whatif",
                params={
                    "policy": "ordinance-extension",
                    "from": "2024-01-01",
                    "until": "2024-12-31",
                },
                headers=lead,
            )
            assert bad.status_code == 422
            caseworker = _token(configured, Role.CASEWORKER, "sb-01")
            assert http.get("/reports/workload", headers=caseworker).status_code == 403
    finally:
        read_models.close()
