"""``akte inbox show`` and ``akte inbox resolve`` (adapters/cli/inbox.py): a caseworker
reads a notice in triage (the read is logged) and records it on the right file, or
dismisses it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from eventsourcing.utils import get_topic

from adapters.bootstrap import build_service
from adapters.cli.main import main
from adapters.http.auth.identity import Role
from adapters.http.auth.local_issuer import LocalIssuer
from adapters.settings import Settings
from domain.case_file import MasterData
from domain.read_access import ReadAccess
from domain.registration_notices import RegistrationNotice
from tests.service.test_notices import notice

OFFICE = "abh-musterstadt"
PERSON = MasterData("Haddad", "Omar", date(1985, 1, 2), "SYR", "N87654321", "Weg 2")


@pytest.fixture
def sqlite_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(store="sqlite", data_dir=tmp_path / "data")
    monkeypatch.setenv("AKTE_DATA_DIR", str(settings.data_dir))
    return settings


def token_file(
    settings: Settings, folder: Path, user: str, role: Role, office: str = OFFICE
) -> str:
    issuer = LocalIssuer.load_or_create(settings.local_issuer_key_file)
    path = folder / f"{user}.token"
    path.write_text(issuer.issue(user_id=user, roles=[role], office_id=office))
    return str(path)


def test_a_caseworker_reads_and_resolves_a_notice_from_the_command_line(
    sqlite_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = build_service(sqlite_settings)
    try:
        case_id = service.open_case(office_id=OFFICE, master_data=PERSON, by="sb-01").case_id
        uncertain = service.notices.receive_notice(notice(person=PERSON, given_names="Omer"))
        unknown = service.notices.receive_notice(notice(person=replace(PERSON, surname="X")))
    finally:
        service.close()
    caseworker = token_file(sqlite_settings, tmp_path, "sb-01", Role.CASEWORKER)
    show = ["inbox", "show", str(uncertain.subject_id), "--token-file"]
    assert main([*show, caseworker]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["person"]["given_names"] == "Omer"
    assert shown["reasons"] == ["given-names-differ"]
    assert shown["candidate_case_ids"] == [str(case_id)]
    record = ["inbox", "resolve", str(uncertain.subject_id), "--case", str(case_id)]
    assert main([*record, "--token-file", caseworker]) == 0
    assert "by sb-01" in capsys.readouterr().err
    dismiss = ["inbox", "resolve", str(unknown.subject_id), "--dismiss", "--token-file"]
    assert main([*dismiss, caseworker]) == 0
    # Twice is refused: the notice has left triage.
    assert main([*dismiss, caseworker]) == 1
    service = build_service(sqlite_settings)
    try:
        assert service.get_case(case_id).master_data.address == "Neue Straße 5, 12345 Musterstadt"
        dismissed = service.notices.get_notice(unknown.subject_id)
        assert dismissed.resolution == "dismissed"
        resolved = service.events_of(uncertain.subject_id, RegistrationNotice.Event, KeyError())
        assert [event.by for event in resolved[1:]] == ["sb-01"]
        reads = service.recorder.select_notifications(
            start=1, limit=100, topics=[get_topic(ReadAccess.Recorded)]
        )
        assert len(reads) == 1
    finally:
        service.close()


def test_the_command_line_acts_only_as_the_token_allows(
    sqlite_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No token, a head of office (no case.read), a caseworker of another office (the
    notice is "not found" to them, as over HTTP) and a forged token: nothing read or
    resolved, nothing recorded."""
    service = build_service(sqlite_settings)
    try:
        triaged = service.notices.receive_notice(notice(person=replace(PERSON, surname="X")))
        head = service.recorder.max_notification_id()
    finally:
        service.close()
    notice_id = str(triaged.subject_id)
    assert main(["inbox", "show", notice_id]) == 2
    assert "--token-file" in capsys.readouterr().err
    # --by is gone: a name typed on the command line is not who acts.
    with pytest.raises(SystemExit):
        main(["inbox", "resolve", notice_id, "--dismiss", "--by", "sb-01"])
    head_of_office = token_file(sqlite_settings, tmp_path, "ho-01", Role.HEAD_OF_OFFICE)
    assert main(["inbox", "show", notice_id, "--token-file", head_of_office]) == 1
    other = token_file(sqlite_settings, tmp_path, "sb-91", Role.CASEWORKER, "abh-nachbarstadt")
    assert main(["inbox", "show", notice_id, "--token-file", other]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["inbox", "resolve", notice_id, "--dismiss", "--token-file", other]) == 1
    forged = tmp_path / "forged.token"
    forged.write_text("eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl")
    assert main(["inbox", "resolve", notice_id, "--dismiss", "--token-file", str(forged)]) == 2
    service = build_service(sqlite_settings)
    try:
        assert service.recorder.max_notification_id() == head
        assert service.notices.get_notice(triaged.subject_id).resolution is None
    finally:
        service.close()
