"""Registration-office notices and portal applications through the service
(:mod:`service_notices`), on SQLite and PostgreSQL: matching, triage, once per message,
refusal without a trace; and a property: any delivery (duplicates, reorders, invalid
messages) ends in the same case files as one clean delivery."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.bootstrap import build_service
from adapters.settings import Settings
from domain.case_file import CaseFile, MasterData, RegistrationNoticeChanges
from domain.registration_notices import NoticedPerson
from service import AkteService
from service_notices import (
    InboundNotice,
    MessageRefused,
    normalised_name,
)
from tests.conftest import FakeClock, another_deployment
from tests.support.file_transfers import OFFICE_A as TRANSFER_FROM
from tests.support.file_transfers import OFFICE_B as TRANSFER_TO
from tests.support.file_transfers import PERSON as TRANSFERRED
from tests.support.file_transfers import ask_for, file_with_history
from tests.support.file_transfers import deliver as deliver_transfer

OFFICE = "abh-musterstadt"
SENDER = "meldebehoerde-musterstadt"
PERSON = MasterData("Yılmaz", "Ayşe Nur", date(1991, 7, 14), "TUR", "U12345678", "Alter Weg 1")
_OFFICES = itertools.count()


def open_case(service: AkteService, person: MasterData = PERSON, office: str = OFFICE) -> UUID:
    return service.open_case(office_id=office, master_data=person, by="sb-01").case_id


def notice(
    kind: str = "aenderung_hauptwohnung",
    person: MasterData = PERSON,
    *,
    office: str = OFFICE,
    message_id: str | None = None,
    changes: RegistrationNoticeChanges | None = None,
    file_number: str | None = None,
    given_names: str | None = None,
) -> InboundNotice:
    return InboundNotice(
        office_id=office,
        sender=SENDER,
        message_id=message_id or str(uuid4()),
        message_type="MBABH.AenderungHauptwohnung",
        notice_kind=kind,
        effective_on=date(2024, 3, 1),
        person=NoticedPerson(
            surname=person.surname,
            given_names=given_names or person.given_names,
            date_of_birth=person.date_of_birth,
            file_number=file_number,
        ),
        changes=changes
        if changes is not None
        else RegistrationNoticeChanges(address="Neue Straße 5, 12345 Musterstadt"),
    )


def head(service: AkteService) -> int:
    return service.recorder.max_notification_id() or 0


# ------------------------------------------------------------------ notices


def test_a_notice_for_a_known_person_is_recorded_on_the_file_once(service: AkteService) -> None:
    case_id = open_case(service)
    message = notice()
    first = service.notices.receive_notice(message)
    assert (first.outcome, first.subject_id, first.duplicate) == ("recorded", case_id, False)
    case = service.get_case(case_id)
    assert case.master_data.address == "Neue Straße 5, 12345 Musterstadt"
    recorded = [
        e
        for e in service.case_events(case_id)
        if isinstance(e, CaseFile.RegistrationNoticeRecorded)
    ]
    assert [(e.notice_kind, e.message_id, e.sender) for e in recorded] == [
        ("aenderung_hauptwohnung", message.message_id, SENDER)
    ]
    before = head(service)
    again = service.notices.receive_notice(message)
    assert (again.outcome, again.subject_id, again.duplicate) == ("recorded", case_id, True)
    assert head(service) == before
    assert service.get_case(case_id).version == case.version


def test_names_are_matched_without_case_and_accents(service: AkteService) -> None:
    case_id = open_case(service)
    plain = replace(PERSON, surname="YILMAZ", given_names="ayse  nur")
    assert normalised_name("Ayşe Nur") == normalised_name("ayse  nur")
    outcome = service.notices.receive_notice(notice(person=plain))
    assert (outcome.outcome, outcome.subject_id) == ("recorded", case_id)


def test_an_unknown_person_goes_to_triage(service: AkteService) -> None:
    open_case(service)
    stranger = replace(PERSON, surname="Fremd")
    outcome = service.notices.receive_notice(notice(person=stranger))
    assert outcome.outcome == "triage"
    assert outcome.reasons == ("unknown-person",)
    triage = service.notices.get_notice(outcome.subject_id)
    assert triage.person.surname == "Fremd"
    assert triage.changes.address == "Neue Straße 5, 12345 Musterstadt"


def test_uncertain_matches_go_to_triage_with_the_reasons(service: AkteService) -> None:
    first = open_case(service)
    differing = service.notices.receive_notice(notice(given_names="Fatma"))
    assert differing.outcome == "triage"
    assert differing.reasons == ("given-names-differ",)
    second = open_case(service)
    several = service.notices.receive_notice(notice())
    assert several.outcome == "triage"
    assert several.reasons == ("several-candidates",)
    assert service.notices.get_notice(several.subject_id).candidate_case_ids == sorted(
        [str(first), str(second)]
    )
    # The file number decides between the two.
    reference = service.get_case(second).reference
    quoted = service.notices.receive_notice(notice(file_number=reference))
    assert (quoted.outcome, quoted.subject_id) == ("recorded", second)
    other = replace(PERSON, surname="Anders", date_of_birth=date(1980, 1, 1))
    wrong = service.notices.receive_notice(notice(person=other, file_number=reference))
    assert wrong.reasons == ("file-number-names-another-person",)
    unknown = service.notices.receive_notice(notice(file_number="1999-NOPE"))
    assert "file-number-unknown" in unknown.reasons


def test_a_notice_for_a_closed_file_goes_to_triage(service: AkteService) -> None:
    case_id = open_case(service)
    service.close_case(case_id, expected_version=1, by="sb-01", closure_reason="left")
    outcome = service.notices.receive_notice(
        notice(kind="tod", changes=RegistrationNoticeChanges())
    )
    assert outcome.reasons == ("case-file-not-active",)


def test_an_invalid_notice_is_refused_and_changes_nothing(service: AkteService) -> None:
    case_id = open_case(service)
    before = head(service)
    bad_nationality = notice(
        kind="aenderung_staatsangehoerigkeit",
        changes=RegistrationNoticeChanges(nationality="Türkei"),
    )
    with pytest.raises(MessageRefused) as refused:
        service.notices.receive_notice(bad_nationality)
    assert refused.value.field == "nationality"
    assert "Türkei" not in str(refused.value)
    unfitting = notice(kind="tod", changes=RegistrationNoticeChanges(address="Weg 3"))
    with pytest.raises(MessageRefused):
        service.notices.receive_notice(unfitting)
    assert head(service) == before
    assert service.get_case(case_id).version == 1
    # Refused is not handled: once corrected (a new message), it is recorded.
    fixed = replace(bad_nationality, changes=RegistrationNoticeChanges(nationality="DEU"))
    assert service.notices.receive_notice(fixed).outcome == "recorded"
    assert service.get_case(case_id).master_data.nationality == "DEU"


def test_a_name_change_keeps_the_old_name_findable(service: AkteService) -> None:
    case_id = open_case(service)
    renamed = notice(kind="namensaenderung", changes=RegistrationNoticeChanges(surname="Demir"))
    assert service.notices.receive_notice(renamed).outcome == "recorded"
    assert service.get_case(case_id).master_data.surname == "Demir"
    # A later notice quoting the name the office knew before still finds the file ...
    assert service.notices.receive_notice(notice()).subject_id == case_id
    # ... and so does one with the new name.
    new_name = replace(PERSON, surname="Demir")
    assert service.notices.receive_notice(notice(person=new_name)).subject_id == case_id


def test_a_caseworker_records_a_notice_from_triage(service: AkteService) -> None:
    case_id = open_case(service)
    outcome = service.notices.receive_notice(notice(given_names="Ayse"))
    assert outcome.outcome == "triage"
    service.notices.resolve_notice(
        outcome.subject_id, by="sb-01", resolution="recorded_on_case_file", case_id=case_id
    )
    assert service.get_case(case_id).master_data.address == "Neue Straße 5, 12345 Musterstadt"
    resolved = service.notices.get_notice(outcome.subject_id)
    assert (resolved.resolution, resolved.case_id) == ("recorded_on_case_file", str(case_id))
    dismissed = service.notices.receive_notice(notice(person=replace(PERSON, surname="X")))
    service.notices.resolve_notice(dismissed.subject_id, by="sb-01", resolution="dismissed")
    assert service.notices.get_notice(dismissed.subject_id).resolution == "dismissed"


# ------------------------------------------------------------ the property


PEOPLE = [
    MasterData("Yılmaz", "Ayşe", date(1991, 7, 14), "TUR", "U12345678", "Weg 1"),
    MasterData("Haddad", "Omar", date(1985, 1, 2), "SYR", "N87654321", "Weg 2"),
    MasterData("Nguyen", "Lan", date(2000, 12, 31), "VNM", "C11223344", None),
]


def messages_for(office: str, people: list[MasterData]) -> list[InboundNotice]:
    """One clean delivery: each person's notices, at most one per changed field, all
    quoting the identity the office knew; plus notices about unknown people."""
    found: list[InboundNotice] = []
    for index, person in enumerate(people):
        found += [
            notice(
                "aenderung_hauptwohnung",
                person,
                office=office,
                message_id=f"move-{index}",
                changes=RegistrationNoticeChanges(address=f"Neue Straße {index}"),
            ),
            notice(
                "namensaenderung",
                person,
                office=office,
                message_id=f"name-{index}",
                changes=RegistrationNoticeChanges(surname=f"Neu{index}"),
            ),
            notice(
                "tod" if index == 0 else "abmeldung",
                person,
                office=office,
                message_id=f"fact-{index}",
                changes=RegistrationNoticeChanges(),
            ),
        ]
    stranger = MasterData("Unbekannt", "Niemand", date(1970, 5, 5), "XXA", "X00000000")
    found.append(notice("anmeldung", stranger, office=office, message_id="stranger"))
    return found


def invalid(message: InboundNotice) -> InboundNotice:
    """The same notice made invalid, under a message id of its own."""
    return replace(
        message,
        message_id="invalid-" + message.message_id,
        notice_kind="aenderung_staatsangehoerigkeit",
        changes=RegistrationNoticeChanges(nationality="not a code"),
    )


FileOutcome = tuple[dict[str, object], str, list[tuple[str, str]]]


def outcome_of(service: AkteService, office: str, case_ids: list[UUID]) -> list[FileOutcome]:
    files: list[FileOutcome] = []
    for case_id in case_ids:
        case = service.get_case(case_id)
        recorded = sorted(
            (event.notice_kind, event.message_id)
            for event in service.case_events(case_id)
            if isinstance(event, CaseFile.RegistrationNoticeRecorded)
        )
        files.append((vars(case.master_data), case.status, recorded))
    return files


def deliver(service: AkteService, office: str, deliveries: list[InboundNotice]) -> None:
    for message in deliveries:
        with contextlib.suppress(MessageRefused):
            service.notices.receive_notice(message)


@st.composite
def deliveries(draw: st.DrawFn, clean: list[InboundNotice]) -> list[InboundNotice]:
    """Every clean message at least once, some twice or thrice, some invalid ones, in any
    order."""
    repeats = draw(st.lists(st.integers(1, 3), min_size=len(clean), max_size=len(clean)))
    broken = draw(st.lists(st.sampled_from(clean), max_size=3))
    messages = [m for m, times in zip(clean, repeats, strict=True) for _ in range(times)]
    messages += [invalid(m) for m in broken]
    return draw(st.permutations(messages))


def test_any_delivery_ends_in_the_same_case_files_as_a_clean_one(
    service: AkteService,
) -> None:
    clean_office = f"abh-clean-{next(_OFFICES)}"
    clean_cases = [open_case(service, person, clean_office) for person in PEOPLE]
    deliver(service, clean_office, messages_for(clean_office, PEOPLE))
    expected = outcome_of(service, clean_office, clean_cases)
    assert all(recorded for _, _, recorded in expected)  # the notices did arrive

    @settings(
        max_examples=10,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        office = f"abh-random-{next(_OFFICES)}"
        cases = [open_case(service, person, office) for person in PEOPLE]
        delivered = data.draw(deliveries(messages_for(office, PEOPLE)))
        deliver(service, office, delivered)
        assert outcome_of(service, office, cases) == expected
        triaged = {
            notice.message_id
            for notice in (
                service.notices.get_notice(UUID(str(n.originator_id)))
                for n in service.recorder.select_notifications(
                    start=1, limit=100_000, topics=[_TRIAGE_TOPIC]
                )
            )
            if notice.office_id == office
        }
        assert triaged == {"stranger"}

    check()


_TRIAGE_TOPIC = "domain.registration_notices:RegistrationNotice.PutInTriage"


@pytest.mark.parametrize("known", [True, False])
def test_a_twin_delivery_that_missed_the_claim_changes_nothing(
    service: AkteService, monkeypatch: pytest.MonkeyPatch, known: bool
) -> None:
    """Two workers with the same message: the second did not see the first's claim yet
    (it looked a moment earlier), records, and conflicts on the claim in its transaction;
    it then finds the claim and answers duplicate, with nothing written."""
    case_id = open_case(service)
    person = PERSON if known else replace(PERSON, surname="Fremd")
    message = notice(person=person)
    first = service.notices.receive_notice(message)
    before = head(service)
    looked = service.notices._claimed
    calls: list[int] = []

    def missed_once(*args: str) -> object:
        calls.append(1)
        return None if len(calls) == 1 else looked(*args)

    monkeypatch.setattr(service.notices, "_claimed", missed_once)
    twin = service.notices.receive_notice(message)
    assert len(calls) == 2
    assert (twin.duplicate, twin.subject_id, twin.outcome) == (
        True,
        first.subject_id,
        first.outcome,
    )
    assert head(service) == before
    assert service.get_case(case_id).version == (2 if known else 1)


def test_a_former_surname_still_matches_after_a_restart(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    """The index of a new process is built from the events that set the names, not from
    the files' current names: a notice under the name before a recorded name change
    finds the file in a process that never saw the change happen."""
    case_id = open_case(service)
    corrected = replace(PERSON, surname="Kaya", given_names=PERSON.given_names)
    service.notices.receive_notice(
        notice(kind="namensaenderung", changes=RegistrationNoticeChanges(surname="Demir"))
    )
    service.correct_master_data(
        case_id,
        expected_version=2,
        by="sb-01",
        corrections={"surname": "Kaya"},
        reason="Schreibfehler",
    )
    assert service.get_case(case_id).master_data.surname == "Kaya"
    restarted = build_service(settings, clock=clock)
    try:
        for former in (PERSON, replace(PERSON, surname="Demir"), corrected):
            outcome = restarted.notices.receive_notice(notice(person=former))
            assert (outcome.outcome, outcome.subject_id) == ("recorded", case_id), former.surname
    finally:
        restarted.close()


def test_an_erased_file_is_matched_by_no_name_before_or_after_a_restart(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    """Its events read redacted after the erasure: neither the names it had nor the
    redacted stand-ins find it, in this process or in a new one."""
    case_id = open_case(service)
    service.notices.receive_notice(
        notice(kind="namensaenderung", changes=RegistrationNoticeChanges(surname="Demir"))
    )
    assert service.notices.receive_notice(notice()).subject_id == case_id  # indexed
    clock.advance(days=1)
    service.data_protection.erase_personal_data(
        case_id,
        expected_version=service.get_case(case_id).version,
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-01",
    )
    restarted = build_service(settings, clock=clock)
    try:
        for notices in (service.notices, restarted.notices):
            for surname in (PERSON.surname, "Demir"):
                outcome = notices.receive_notice(notice(person=replace(PERSON, surname=surname)))
                assert (outcome.outcome, outcome.reasons) == ("triage", ("unknown-person",))
    finally:
        restarted.close()


@pytest.fixture
def office_b(settings: Settings, tmp_path: Path, clock: FakeClock) -> Iterator[AkteService]:
    """The office a file moves to: a deployment of its own (as in test_file_transfers)."""
    with another_deployment(settings, tmp_path, "office-b") as settings_b:
        service = build_service(settings_b, clock=clock)
        try:
            yield service
        finally:
            service.close()


def test_a_former_surname_from_the_previous_office_matches_a_taken_over_file(
    service: AkteService, office_b: AkteService
) -> None:
    """The name the person had at the previous office is only in the parts taken over
    (sealed there): a notice at the new office quoting it still finds the file."""
    moved = file_with_history(service)
    renamed = replace(TRANSFERRED, surname="Kowalska")
    service.correct_master_data(
        moved.case_id,
        expected_version=moved.version,
        by="sb-01",
        corrections={"surname": renamed.surname},
        reason="Schreibfehler",
    )
    _, request = ask_for(office_b, person=renamed, file_number=moved.reference)
    answer = deliver_transfer(request, service, TRANSFER_FROM).answer
    assert answer is not None
    taken = deliver_transfer(answer, office_b, TRANSFER_TO)
    assert taken.outcome == "taken_over"
    assert office_b.get_case(taken.case_id or uuid4()).master_data.surname == "Kowalska"

    for person in (TRANSFERRED, renamed):
        outcome = office_b.notices.receive_notice(notice(person=person, office=TRANSFER_TO))
        assert (outcome.outcome, outcome.subject_id) == ("recorded", taken.case_id), person
