"""Retention runs, subject access, the HTTP routes and the CLI of data protection, and
what erasure must leave alone: the yearly report, the audit chain and every read model.
On SQLite and PostgreSQL (the CLI on SQLite)."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

import adapters.cli.main as cli
from adapters.bootstrap import build_read_models
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.personal_data.key_store import DEVELOPMENT_MASTER_KEY
from adapters.personal_data.retention import load_rules, parse_rules, run_retention
from adapters.personal_data.subject_access import as_html, subject_access
from adapters.settings import Settings
from adapters.store.hash_chain import Anchor, ChainSource, verify_chains
from adapters.views.read_models import ReadModels
from domain.case_file import MasterData
from domain.personal import REDACTED_TEXT
from projections.figures import statistics
from projections.figures.yearly_report import yearly_report
from projections.read_models import READ_MODELS
from projections.storage import ViewsStore
from projections.worklists import retention_due
from service import AkteService
from tests.conftest import FakeClock, bearer
from tests.support.erasure_requests import erase_over_http
from tests.support.projections import engine_for, views_for

OFFICE = "abh-musterstadt"
PERSON = MasterData("Quexbrandt", "Zyrafina", date(1987, 6, 5), "TUR", "Q7Z9X4W2K")


@pytest.fixture
def views(settings: Settings) -> Iterator[ViewsStore]:
    with views_for(settings) as store:
        yield store


def open_case(service: AkteService, person: MasterData = PERSON) -> tuple[UUID, int]:
    opened = service.open_case(office_id=OFFICE, master_data=person, by="sb-01")
    return opened.case_id, opened.version


def busy_case(service: AkteService, clock: FakeClock, number: int) -> tuple[UUID, int]:
    """A case file with figures of the yearly report: procedures, documents, inquiries."""
    birth = date(1980, 1, 1 + number)
    person = MasterData(f"Name{number}", "Vorname", birth, "SYR", f"P{number}X0000")
    case_id, version = open_case(service, person)

    def do(command: str, **fields: Any) -> Any:
        nonlocal version
        recorded = getattr(service, command)(
            case_id, expected_version=version, by="sb-01", **fields
        )
        version = recorded.version
        clock.advance(hours=2)
        return recorded.result

    do("receive_procedure", channel="contact_form", topic="blue_card")
    do("issue_residence_document", kind="eat", legal_basis="aufenthg-18g",
       valid_from=date(2024, 3, 4), valid_until=date(2026, 3, 3),
       document_number=f"Y{number}AB12", procedure_number=1)  # fmt: skip
    do("decide_procedure", procedure_number=1, outcome="granted", reason=f"Name{number} ok")
    do("issue_fiction_certificate", kind="81_3_1", valid_from=date(2024, 3, 4),
       valid_until=date(2024, 6, 3), carrier_sheet_number=f"F{number}0001")  # fmt: skip
    do("receive_inquiry", kind="naturalisation")
    do("issue_integration_course_entitlement")
    do("add_note", text=f"Name{number} war da")
    return case_id, version


# -------------------------------------------------- report, audit, read models


def test_erasure_leaves_the_yearly_report_the_audit_chain_and_every_read_model(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    cases = [busy_case(service, clock, number) for number in range(4)]
    with engine_for(service, views, READ_MODELS) as engine:
        engine.catch_up()
    report_before = asdict(yearly_report(views, OFFICE, 2024))
    later_before = asdict(yearly_report(views, OFFICE, 2030))
    source: ChainSource = service.recorder  # type: ignore[assignment]
    chain_before = verify_chains(source)
    assert chain_before.ok

    clock.now = datetime(2030, 1, 15, 9, 0, tzinfo=UTC)
    for case_id, version in cases[:2]:
        service.data_protection.erase_personal_data(
            case_id,
            expected_version=version,
            by="dsb-01",
            legal_ground="aufenthv-68",
            approved_by="dsb-01",
        )

    with engine_for(service, views, READ_MODELS) as engine:
        engine.catch_up()
    report_after = asdict(yearly_report(views, OFFICE, 2024))
    later_after = asdict(yearly_report(views, OFFICE, 2030))
    for report in (report_before, report_after, later_before, later_after):
        report.pop("position", None)
    assert report_after == report_before
    assert len([f for f in report_before["figures"] if f["value"]]) >= 4
    # The erasures count in no figure of the year they happened either, the workload
    # section included: a data-protection action is no caseworker's work step.
    assert later_after == later_before
    # The chain still verifies, and what was its head is still there, unchanged.
    chain_after = verify_chains(
        source,
        anchors=[Anchor(chain_before.head_notification_id, chain_before.head_log_hash)],
    )
    assert chain_after.ok, chain_after.findings
    assert chain_after.events == chain_before.events + 2

    # Every read model rebuilds over the encrypted log with erased files in it, and the
    # rebuild equals what following the log built.
    with engine_for(service, views, READ_MODELS) as engine:
        followed = engine.dump()
        engine.rebuild()
        assert engine.dump() == followed
    with engine_for(service, views, [statistics.PROJECTION]) as engine:
        engine.rebuild()
    rebuilt = asdict(yearly_report(views, OFFICE, 2024))
    rebuilt.pop("position", None)
    assert rebuilt == report_before


def _without_position(body: bytes) -> bytes:
    """The answer with the log position it was read at blanked: it moves with every event
    (the erasure's too) and is no figure."""
    body = re.sub(rb'"position":\s*\d+', b'"position":0', body)
    body = re.sub(rb"Eintrag Nr\. \d+", b"Eintrag Nr. 0", body)
    return re.sub(rb"Position [\d.]+", b"Position 0", body)


def test_the_reports_the_head_of_office_reads_are_byte_identical_after_an_erasure(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    read_models: ReadModels,
    clock: FakeClock,
) -> None:
    cases = [busy_case(service, clock, number) for number in range(3)]
    head = bearer(settings, "al-01", Role.HEAD_OF_OFFICE)
    # The erasures fall in the same week and year as the work, by a team lead (who may
    # erase): counted as work steps, they would show in the workload of both answers.
    period = {"from": "2024-02-26", "until": "2024-03-31"}

    def reports() -> list[bytes]:
        with engine_for(service, read_models.views, READ_MODELS) as engine:
            engine.catch_up()
        answers = [
            client.get("/reports/yearly/2024", headers=head),
            client.get("/reports/yearly/2024?format=html", headers=head),
            client.get("/reports/workload", params=period, headers=head),
        ]
        for answer in answers:
            assert answer.status_code == 200, answer.text
        return [_without_position(answer.content) for answer in answers]

    before = reports()
    workload_before = json.loads(before[2])
    assert sum(week["actions"] for week in workload_before["weeks"]) > 0
    for case_id, version in cases[:2]:
        service.data_protection.erase_personal_data(
            case_id,
            expected_version=version,
            by="tl-01",
            legal_ground="aufenthv-68",
            approved_by="dsb-01",
        )
        clock.advance(hours=1)
    after = reports()

    assert after == before


# -------------------------------------------------------------- retention


def retention_history(service: AkteService, clock: FakeClock) -> dict[str, UUID]:
    """Files of every rule, all in 2024."""
    cases: dict[str, UUID] = {}
    moved, version = open_case(service)
    service.transfer_to_office(moved, expected_version=version, by="sb-01", to_office_id="abh-b")
    cases["moved"] = moved
    died, version = open_case(service)
    service.close_case(died, expected_version=version, by="sb-01", closure_reason="died")
    cases["died"] = died
    consent_only, version = open_case(service)
    version = service.request_entry_consent(
        consent_only, expected_version=version, by="sb-01"
    ).version
    service.give_entry_consent(
        consent_only,
        expected_version=version,
        by="sb-01",
        entry_procedure_number=1,
        valid_until=date(2024, 6, 1),
    )
    cases["consent_only"] = consent_only
    consent_and_more, version = open_case(service)
    version = service.request_entry_consent(
        consent_and_more, expected_version=version, by="sb-01"
    ).version
    version = service.give_entry_consent(
        consent_and_more,
        expected_version=version,
        by="sb-01",
        entry_procedure_number=1,
        valid_until=date(2024, 6, 1),
    ).version
    service.receive_procedure(
        consent_and_more, expected_version=version, by="sb-01", channel="mail", topic="blue_card"
    )
    cases["consent_and_more"] = consent_and_more
    cases["active"], _ = open_case(service)
    return cases


def catch_up_retention(service: AkteService, views: ViewsStore) -> None:
    with engine_for(service, views, [retention_due.PROJECTION]) as engine:
        engine.catch_up()


def test_the_retention_run_lists_then_erases_what_is_due(
    service: AkteService, views: ViewsStore, clock: FakeClock
) -> None:
    cases = retention_history(service, clock)
    rules = load_rules()
    catch_up_retention(service, views)
    by_id = {str(case_id): name for name, case_id in cases.items()}

    def due(today: date) -> dict[str, str]:
        report = run_retention(service, views, rules, today=today)
        return {by_id[o.due.case_id]: o.due.rule_id for o in report.outcomes}

    # Every period includes its last day (§§ 187, 188 BGB): due the day after it.
    assert due(date(2026, 6, 1)) == {}
    assert due(date(2026, 6, 2)) == {"consent_only": "entry-consent-only-2y"}
    assert due(date(2029, 3, 4)) == {"consent_only": "entry-consent-only-2y"}
    assert due(date(2029, 3, 5)) == {"consent_only": "entry-consent-only-2y", "died": "died-5y"}
    assert due(date(2034, 3, 5)) == {
        "consent_only": "entry-consent-only-2y",
        "died": "died-5y",
        "moved": "moved-away-10y",
    }
    dry = run_retention(service, views, rules, today=date(2029, 3, 4))
    assert "dry run" in dry.as_text()
    assert not any(service.get_case(case_id).is_erased for case_id in cases.values())

    clock.now = datetime(2029, 3, 5, 8, 0, tzinfo=UTC)
    applied = run_retention(
        service, views, rules, today=date(2029, 3, 5), apply=True, approved_by="dsb-01"
    )
    assert (applied.erased, applied.failed) == (2, 0)
    died = service.case_events(cases["died"])[-1]
    assert type(died).__name__ == "PersonalDataErased"
    assert (died.by, died.approved_by, died.rule_id, died.legal_ground) == (  # type: ignore[attr-defined]
        "retention-run",
        "dsb-01",
        "died-5y",
        "aufenthv-68",
    )
    assert service.get_case(cases["consent_only"]).master_data.surname == REDACTED_TEXT
    assert service.get_case(cases["moved"]).master_data.surname == PERSON.surname
    catch_up_retention(service, views)
    assert due(date(2029, 3, 5)) == {}
    assert json.loads(json.dumps(applied.as_json()))["erased"] == 2


def test_retention_rules_are_checked_when_loaded() -> None:
    good = {
        "id": "x-1y",
        "legal_basis": "§ 68 AufenthV",
        "legal_ground": "aufenthv-68",
        "runs_from": "transferred",
        "period_years": 1,
    }
    assert parse_rules({"rules": [good]})[0].period_years == 1
    for change, message in (
        ({"runs_from": "whenever"}, "runs_from"),
        ({"legal_ground": "gut-gemeint"}, "legal_ground"),
        ({"period_years": 0}, "period_years"),
        ({"id": "Mit Leerzeichen"}, "id"),
    ):
        with pytest.raises(ValueError, match=message):
            parse_rules({"rules": [{**good, **change}]})
    with pytest.raises(ValueError, match="twice"):
        parse_rules({"rules": [good, good]})


# ---------------------------------------------------------- subject access


def test_subject_access_exports_everything_decrypted_and_after_erasure_redacted(
    service: AkteService, views: ViewsStore
) -> None:
    case_id, version = open_case(service)
    version = service.add_note(case_id, expected_version=version, by="sb-01", text="Anruf").version
    service.record_read(
        by="au-01", endpoint="GET /cases/{case_id}", case_id=case_id, office_id=OFFICE
    )
    with engine_for(service, views, READ_MODELS) as engine:
        engine.catch_up()

    export = subject_access(service, views, case_id, requested_by="dsb-01").document
    assert export["case_file"]["master_data"]["surname"] == PERSON.surname
    assert export["case_file"]["master_data"]["date_of_birth"] == "1987-06-05"
    assert [entry["kind"] for entry in export["history"]] == ["Opened", "NoteAdded"]
    assert export["history"][1]["data"]["text"] == "Anruf"
    assert export["read_access_log"] == [
        {
            "by": "au-01",
            "at": export["read_access_log"][0]["at"],
            "endpoint": "GET /cases/{case_id}",
        }
    ]
    page = as_html(subject_access(service, views, case_id, requested_by="dsb-01"))
    assert PERSON.surname in page
    assert "Art. 15 DSGVO" in page

    service.data_protection.erase_personal_data(
        case_id, expected_version=version, by="dsb-01", legal_ground="dsgvo-17", approved_by="x"
    )
    erased = subject_access(service, views, case_id, requested_by="dsb-01")
    assert PERSON.surname not in json.dumps(erased.document)
    assert erased.document["personal_data_erased_at"] is not None
    assert "[gelöscht]" in as_html(erased)


# ------------------------------------------------------------------- HTTP


@pytest.fixture
def read_models(service: AkteService, settings: Settings) -> Iterator[ReadModels]:
    models = build_read_models(settings, service, follow=False)
    try:
        yield models
    finally:
        models.close()


def test_erasure_and_subject_access_over_http(
    client: TestClient, service: AkteService, settings: Settings, read_models: ReadModels
) -> None:
    case_id, version = open_case(service)
    lead = bearer(settings, "tl-01", Role.TEAM_LEAD)
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)
    auditor = bearer(settings, "au-01", Role.AUDITOR)
    url = f"/cases/{case_id}"

    # Naming an approver is refused: approvers approve with their own token.
    self_approved = client.post(
        f"{url}/erasure",
        json={"legal_ground": "dsgvo-17", "approved_by": "tl-01"},
        headers={**lead, "If-Match": f'"{version}"'},
    )
    assert self_approved.status_code == 422
    assert client.get(f"{url}/subject-access", headers=lead).status_code == 403

    export = client.get(f"{url}/subject-access", headers=auditor)
    assert export.status_code == 200
    assert export.json()["case_file"]["master_data"]["passport_number"] == PERSON.passport_number
    page = client.get(f"{url}/subject-access?format=html", headers=officer)
    assert page.headers["content-type"].startswith("text/html")

    erased = erase_over_http(
        client, case_id, requester=lead, approver=officer, legal_ground="aufenthg-91"
    )
    assert erased.status_code == 200, erased.text
    assert erased.headers["ETag"] == f'"{version + 1}"'
    assert erased.json()["keys_destroyed"] == 1

    state = client.get(url, headers=auditor).json()
    assert state["master_data"]["surname"] == "[gelöscht]"
    assert state["master_data"]["date_of_birth"] == "0001-01-01"
    assert state["personal_data_erased_at"] is not None
    history = client.get(f"{url}/history", headers=auditor)
    assert history.status_code == 200
    assert PERSON.surname not in history.text
    again = client.post(
        f"{url}/notes",
        json={"text": "noch etwas"},
        headers={**lead, "If-Match": f'"{version + 1}"'},
    )
    assert again.status_code == 409
    assert again.json()["type"].endswith("case-file-erased")
    # The subject access exports were reads of the file: the read-access log has them.
    with engine_for(service, read_models.views, READ_MODELS) as engine:
        engine.catch_up()
    after = client.get(f"{url}/subject-access", headers=auditor).json()
    endpoints = {entry["endpoint"] for entry in after["read_access_log"]}
    assert "GET /cases/{case_id}/subject-access" in endpoints


def test_the_retention_worklist_over_http(
    client: TestClient,
    service: AkteService,
    settings: Settings,
    read_models: ReadModels,
    clock: FakeClock,
) -> None:
    cases = retention_history(service, clock)
    clock.now = datetime(2029, 3, 5, 8, 0, tzinfo=UTC)
    with engine_for(service, read_models.views, READ_MODELS) as engine:
        engine.catch_up()
    answer = client.get("/retention/due", headers=bearer(settings, "tl-01", Role.TEAM_LEAD))
    assert answer.status_code == 200, answer.text
    assert {item["case_id"] for item in answer.json()["items"]} == {
        str(cases["died"]),
        str(cases["consent_only"]),
    }
    officer = bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER)
    assert len(client.get("/retention/due", headers=officer).json()["items"]) == 2
    caseworker = bearer(settings, "sb-01", Role.CASEWORKER)
    assert client.get("/retention/due", headers=caseworker).status_code == 403


# -------------------------------------------------------------------- CLI


def test_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("AKTE_DATA_DIR", str(data))
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_JSON_LOGS", "false")
    from adapters.bootstrap import build_service

    settings = Settings()
    service = build_service(settings)
    try:
        died, version = open_case(service)
        service.close_case(died, expected_version=version, by="sb-01", closure_reason="died")
        kept, _ = open_case(service)
        other, _ = open_case(service)
    finally:
        service.close()
    capsys.readouterr()

    assert cli.main(["subject-access", str(kept), "--format", "json"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["case_file"]["master_data"]["surname"] == "Quexbrandt"
    )
    out = tmp_path / "auskunft.html"
    assert cli.main(["subject-access", str(kept), "--format", "html", "--out", str(out)]) == 0
    assert "Quexbrandt" in out.read_text(encoding="utf-8")

    assert cli.main(["retention", "run", "--today", "2035-01-01"]) == 0
    dry = capsys.readouterr().out
    assert "dry run" in dry
    assert "  died-5y" in dry.replace(" " * 4, "  ")
    # The run acts as the person whose token it is given, never a name typed in.
    assert cli.main(["retention", "run", "--apply"]) == 2
    assert "--token-file" in capsys.readouterr().err
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    lead = tmp_path / "tl-01.token"
    lead.write_text(issuer.issue(user_id="tl-01", roles=[Role.TEAM_LEAD], office_id=OFFICE))
    officer = tmp_path / "dsb-01.token"
    officer.write_text(
        issuer.issue(user_id="dsb-01", roles=[Role.DATA_PROTECTION_OFFICER], office_id=OFFICE)
    )
    run = ["retention", "run", "--today", "2035-01-01", "--apply", "--token-file"]
    assert cli.main([*run, str(lead)]) == 1
    assert "do not grant personal_data.erase in office *" in capsys.readouterr().err
    assert cli.main([*run, str(officer)]) == 0
    assert "1 erased, 0 failed" in capsys.readouterr().out

    # An erasure: requested with one person's token, approved with another's.
    request = ["erase", "request", str(kept), "--legal-ground", "dsgvo-17", "--token-file"]
    assert cli.main([*request, str(lead)]) == 0
    assert "nothing is erased until another person approves it" in capsys.readouterr().out
    approve = ["erase", "approve", str(kept), "1", "--yes", "--token-file"]
    assert cli.main([*approve, str(lead)]) == 1  # not a team lead's step
    assert "do not grant personal_data.erase.approve" in capsys.readouterr().err
    assert cli.main(["erase", "pending", "--token-file", str(officer)]) == 0
    assert f"{kept}    1" in capsys.readouterr().out
    assert cli.main([*approve, str(officer)]) == 0
    assert "1 keys destroyed" in capsys.readouterr().out
    assert cli.main([*approve, str(officer)]) == 1
    assert "carried out already" in capsys.readouterr().err

    assert cli.main(["keys", "status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["erased"] == 2
    assert status["keys_by_master_key"] == {"development": 1}
    development = base64.b64encode(DEVELOPMENT_MASTER_KEY).decode()
    monkeypatch.setenv("AKTE_MASTER_KEYS", f"new:{'B' * 43}=,development:{development}")
    assert cli.main(["keys", "rotate"]) == 0
    assert "1 data keys re-wrapped with master key new; retired: development" in (
        capsys.readouterr().out
    )
    monkeypatch.setenv("AKTE_MASTER_KEYS", f"new:{'B' * 43}=")
    assert cli.main(["subject-access", str(other)]) == 0
    assert "Quexbrandt" in capsys.readouterr().out


# ------------------------------------------------------------- waitlist entries


def test_the_persons_waitlist_entries_are_exported_and_erased_with_the_file(
    service: AkteService, views: ViewsStore
) -> None:
    from tests.support.appointments import RecordingMailer, join_waitlist, set_up
    from tests.support.appointments import person as waiting_person

    set_up(service, RecordingMailer())

    def join(who: Any) -> UUID:
        return join_waitlist(service, who).appointment_id

    same = waiting_person(7)
    # The same person as the file's, typed otherwise on the waitlist form.
    file_person = MasterData(
        same.surname.upper(), same.given_names, same.date_of_birth, "TUR", "P7000007"
    )
    case_id, version = open_case(service, file_person)
    theirs = join(same)
    someone_elses = join(waiting_person(8))

    export = subject_access(service, views, case_id, requested_by="dsb-01").document
    assert [e["state"]["person"]["surname"] for e in export["waitlist_entries"]] == [same.surname]
    assert "Wartelisteneinträge" in as_html(
        subject_access(service, views, case_id, requested_by="dsb-01")
    )

    erasure = service.data_protection.erase_personal_data(
        case_id, expected_version=version, by="dsb-01", legal_ground="dsgvo-17", approved_by="x"
    ).result
    assert str(theirs) in erasure.keys_destroyed
    assert str(someone_elses) not in erasure.keys_destroyed
    assert service.repository.get(theirs).person.surname == REDACTED_TEXT
    assert service.repository.get(someone_elses).person.surname == waiting_person(8).surname


# ------------------------------------------------ without the appointment secret


WAITING = MasterData("Quexbrandt", "Zyrafina Øyvor", date(1987, 6, 5), "TUR", "Q7Z9X4W2K")
WAITING_EMAIL = "zyrafina.q7@example.org"


def waiting_person(service: AkteService) -> tuple[UUID, UUID]:
    """A case file whose person joined the waitlist online (no file id: only the person
    key ties the entry to the file), and someone else's online booking in the office.
    Returns the file's and the entry's ids."""
    from domain.appointments import Person
    from tests.support.appointments import (
        POINT,
        STUDENT,
        RecordingMailer,
        join_waitlist,
        local,
        proof,
        set_up,
    )
    from tests.support.appointments import person as someone
    from tests.support.erasure_scenario import MONDAY

    set_up(service, RecordingMailer())
    case_id, _ = open_case(service, WAITING)
    entry = join_waitlist(
        service,
        Person(WAITING.surname, WAITING.given_names, WAITING.date_of_birth, WAITING_EMAIL),
    )
    service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=local(MONDAY, 11),
        situation=STUDENT,
        person=someone(7),
        proof=proof(service),
        origin="online",
        by="public",
    )
    return case_id, entry.appointment_id


def test_an_erasure_that_cannot_find_the_persons_online_records_is_refused_whole(
    service: AkteService, settings: Settings, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the appointment secret (a retention job's container, say) the person key
    of the file's master data cannot be computed, so the person's waitlist entries
    joined online cannot be told from others': the erasure is refused before anything
    is recorded or destroyed, over HTTP as a problem naming no personal data."""
    import adapters.bootstrap as bootstrap
    from adapters.bootstrap import build_app, build_service
    from adapters.personal_data.mapper import data_keys_of
    from service_data_protection import ErasureNeedsAppointmentSecret

    case_id, entry_id = waiting_person(service)
    owners = [str(case_id), *service.data_protection.linked_records(case_id).same_person]
    assert owners == [str(case_id), str(entry_id)]
    requested = service.erasure_requests.request(case_id, by="tl-01", legal_ground="dsgvo-17")
    number = requested.request.number

    with monkeypatch.context() as no_secret:
        no_secret.setattr(bootstrap, "appointment_setup_for", lambda _settings: None)
        without = build_service(settings, clock=clock)
    try:
        assert not without.appointments.configured
        head = without.recorder.max_notification_id()
        with pytest.raises(ErasureNeedsAppointmentSecret) as refused:
            without.data_protection.erase_personal_data(
                case_id,
                expected_version=without.case_head_version(case_id),
                by="tl-01",
                legal_ground="dsgvo-17",
                approved_by="dsb-01",
            )
        assert "AKTE_APPOINTMENT_SECRET" in str(refused.value)
        # The person's entry and the other booking: one of them is the person's.
        assert without.data_protection.linked_records(case_id).unchecked == 2
        with pytest.raises(ErasureNeedsAppointmentSecret):
            without.erasure_requests.approve(case_id, number, by="dsb-01")

        models = build_read_models(settings, without, follow=False)
        try:
            with TestClient(build_app(settings, without, read_models=models)) as client:
                answer = client.post(
                    f"/cases/{case_id}/erasure-requests/{number}/approval",
                    headers=bearer(settings, "dsb-01", Role.DATA_PROTECTION_OFFICER),
                )
        finally:
            models.close()
        assert answer.status_code == 409, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert answer.json()["type"].endswith("/erasure-needs-appointment-secret")
        for value in (WAITING.surname, "Zyrafina", "Øyvor", "1987", WAITING_EMAIL):
            assert value not in answer.text
            assert value not in str(refused.value)

        # Nothing half-written: no event, every key there, the request still pending.
        assert without.recorder.max_notification_id() == head
        keys = data_keys_of(without)
        assert all(keys.has_key(owner) for owner in owners)
        assert not without.get_case(case_id).is_erased
        assert without.erasure_requests.get(case_id, number).pending
    finally:
        without.close()

    # Where the secret is set, the same request erases all of it.
    service.erasure_requests.approve(case_id, number, by="dsb-01")
    assert not any(data_keys_of(service).has_key(owner) for owner in owners)
    assert service.repository.get(entry_id).person.surname == REDACTED_TEXT


def test_the_command_line_refuses_an_erasure_without_the_appointment_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import adapters.bootstrap as bootstrap
    from adapters.bootstrap import build_service
    from tests.support.appointments import SECRET

    monkeypatch.setenv("AKTE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AKTE_STORE", "sqlite")
    monkeypatch.setenv("AKTE_JSON_LOGS", "false")
    settings = Settings()
    service = build_service(settings, clock=FakeClock())  # the bookings' calendar
    try:
        case_id, _entry = waiting_person(service)
    finally:
        service.close()
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    tokens = {}
    for user, role in (("tl-01", Role.TEAM_LEAD), ("dsb-01", Role.DATA_PROTECTION_OFFICER)):
        tokens[user] = tmp_path / f"{user}.token"
        tokens[user].write_text(issuer.issue(user_id=user, roles=[role], office_id=OFFICE))
    case = str(case_id)
    request = ["erase", "request", case, "--legal-ground", "dsgvo-17", "--token-file"]
    assert cli.main([*request, str(tokens["tl-01"])]) == 0
    capsys.readouterr()
    approve = ["erase", "approve", case, "1", "--yes", "--token-file", str(tokens["dsb-01"])]

    with monkeypatch.context() as no_secret:
        no_secret.setattr(bootstrap, "appointment_setup_for", lambda _settings: None)
        assert cli.main(approve) == 1
    err = capsys.readouterr().err
    assert "AKTE_APPOINTMENT_SECRET" in err
    assert "nothing was erased" in err
    assert not any(value in err for value in (WAITING.surname, "Zyrafina", WAITING_EMAIL))

    # The bookings' secret set: the approval, still pending, erases.
    monkeypatch.setenv("AKTE_APPOINTMENT_SECRET", SECRET.decode())
    assert cli.main(approve) == 0
    assert "keys destroyed" in capsys.readouterr().out
