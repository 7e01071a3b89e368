"""Issue 21.2: every personal field of every event is reached by erasure.

:data:`PATHS` is the reviewed map from each personal field (``Personal[...]``, walked over
every domain module's event classes through their type hints) to the key whose destruction
erases it. The tests check that the map is exhaustive (a new personal field without a path
fails), that each path agrees with the code (the field's aggregate, the parts sealed apart),
that for every event class a field becomes unreadable once its path's key is destroyed,
and that erasing a case file destroys the key of every path but the guarantor's.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from dataclasses import replace
from datetime import date, timedelta
from typing import Any, Final, Literal, cast
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import DomainEvent
from eventsourcing.utils import get_topic

import adapters.personal_data.mapper as mapper_module
import domain
from adapters.personal_data.mapper import data_keys_of, unseparated_parts
from adapters.personal_data.subject_access import subject_access
from adapters.settings import Settings
from domain.acts import Act
from domain.appointments import Appointment, BookingErased, Person, Slot, WaitlistEntry
from domain.case_file import (
    REGISTRATION_NOTICE_KINDS,
    CaseFile,
    MasterData,
    RegistrationNoticeChanges,
)
from domain.commitment_declaration import CommitmentDeclaration, InvitedPerson
from domain.intake import ContactDetails, ContactSubmission
from domain.personal import REDACTED_TEXT, is_redacted, personal_fields
from domain.registration_notices import NoticedPerson, RegistrationNotice
from projections.appointments import appointment_day, appointment_holds
from projections.appointments.appointment_day import appointments_of_day
from projections.appointments.appointment_holds import unconfirmed_holds
from service import AkteService
from service_appointment_mails import AppointmentRecorded
from service_data_protection import SEPARATE_PARTS, VISITOR_PART, part_owner_id
from service_notices import InboundNotice, NoticeErased
from tests.conftest import FakeClock
from tests.support.appointments import (
    BERLIN,
    OFFICE,
    POINT,
    STUDENT,
    join_waitlist,
    local,
    proof,
    set_up,
)
from tests.support.appointments import person as other_person
from tests.support.erasure_scenario import (
    BIRTH,
    GIVEN_NAMES,
    GUARANTOR,
    MONDAY,
    SURNAME,
    build_person,
    erase,
)
from tests.support.projections import catch_up, views_for

Path_ = Literal[
    "case_file",
    "submission",
    "appointment",
    "waitlist_entry",
    "registration_notice",
    "visitor",
    "guarantor",
]

_CASE: Final = "case_file"
_GUARANTOR_KEPT: Final = (
    "guarantor_surname",
    "guarantor_given_names",
    "guarantor_date_of_birth",
    "guarantor_address",
    "guarantor_nationality",
    "guarantor_id_document_number",
    "monthly_net_income_cents",
    "assets_cents",
)


def _all(qualname: str, path: Path_, *names: str) -> dict[tuple[str, str], Path_]:
    return {(qualname, name): path for name in names}


PATHS: Final[dict[tuple[str, str], Path_]] = {
    # The case file's own events: its key (the owner is the file).
    **_all(
        "CaseFile.Opened",
        _CASE,
        "surname",
        "given_names",
        "date_of_birth",
        "nationality",
        "passport_number",
        "address",
    ),
    **_all(
        "CaseFile.MasterDataCorrected",
        _CASE,
        "surname",
        "given_names",
        "date_of_birth",
        "nationality",
        "passport_number",
        "address",
        "reason",
    ),
    **_all("CaseFile.DocumentsRequested", _CASE, "what"),
    **_all("CaseFile.ProcedureDecided", _CASE, "reason"),
    **_all("CaseFile.ResidenceDocumentIssued", _CASE, "document_number"),
    **_all("CaseFile.ResidenceDocumentExtended", _CASE, "reason"),
    **_all("CaseFile.EatTransferredToNewPassport", _CASE, "new_card_number"),
    **_all("CaseFile.ResidenceDocumentEnded", _CASE, "reason"),
    **_all("CaseFile.FictionCertificateIssued", _CASE, "carrier_sheet_number", "hardship_reason"),
    **_all("CaseFile.FictionCertificateExtended", _CASE, "new_carrier_sheet_number"),
    **_all("CaseFile.EntryConsentRefused", _CASE, "reason"),
    **_all("CaseFile.CorrespondenceRecorded", _CASE, "counterpart_name", "subject"),
    **_all("CaseFile.NoteAdded", _CASE, "text"),
    **_all("CaseFile.TransferredToOffice", _CASE, "reason"),
    **_all("CaseFile.HandOverReturned", _CASE, "hints"),
    # Parts taken over from the previous office (§ 67 AufenthV): sealed under the new file's key.
    **_all("CaseFile.PartTakenOver", _CASE, "personal"),
    **_all(
        "CaseFile.RegistrationNoticeRecorded",
        _CASE,
        "address",
        "surname",
        "given_names",
        "nationality",
    ),
    # Registration office notices from triage recorded on the file: their own key.
    **_all(
        "RegistrationNotice.PutInTriage",
        "registration_notice",
        "surname",
        "given_names",
        "date_of_birth",
        "nationality",
        "new_address",
        "new_surname",
        "new_given_names",
        "new_nationality",
    ),
    # Contact form submissions linked to the file: their own key, destroyed with it.
    **_all(
        "ContactSubmission.Submitted",
        "submission",
        "message",
        "surname",
        "given_names",
        "email",
        "date_of_birth",
        "file_number",
        "file_names",
    ),
    **_all("ContactSubmission.Answered", "submission", "reply"),
    **_all("ContactSubmission.Dismissed", "submission", "note"),
    # Appointments booked with the file's id, linked later, or attended on it.
    **_all(
        "Appointment.Booked",
        "appointment",
        "surname",
        "given_names",
        "date_of_birth",
        "email",
        "phone",
    ),
    **_all("Appointment.EmailCorrected", "appointment", "email"),
    **_all("Appointment.Retyped", "appointment", "reason"),
    **_all("Appointment.Cancelled", "appointment", "reason"),
    # The person's waitlist entries (joined for the file, or the same person key).
    **_all(
        "WaitlistEntry.Joined",
        "waitlist_entry",
        "surname",
        "given_names",
        "date_of_birth",
        "email",
        "phone",
    ),
    # Declarations naming the person as the invited visitor: the visitor's part only.
    **_all(
        "CommitmentDeclaration.Submitted",
        "visitor",
        "invited_surname",
        "invited_given_names",
        "invited_date_of_birth",
        "invited_nationality",
        "invited_passport_number",
        "purpose",
    ),
    # The guarantor's part and the declaration's own texts: the guarantor's data, kept
    # while the liability runs (§ 68 AufenthG), under the declaration's own key.
    **_all("CommitmentDeclaration.Submitted", "guarantor", *_GUARANTOR_KEPT),
    **_all("CommitmentDeclaration.PaymentRefunded", "guarantor", "reason"),
    **_all("CommitmentDeclaration.AbilityToPayChecked", "guarantor", "reason"),
    **_all("CommitmentDeclaration.VisitorEntryRecorded", "guarantor", "reason"),
    **_all("CommitmentDeclaration.Withdrawn", "guarantor", "reason"),
}
"""Reviewed: each personal field and the key whose destruction erases it."""

_AGGREGATE_OF_PATH: Final[dict[Path_, type]] = {
    "case_file": CaseFile,
    "submission": ContactSubmission,
    "appointment": Appointment,
    "waitlist_entry": WaitlistEntry,
    "registration_notice": RegistrationNotice,
    "visitor": CommitmentDeclaration,
    "guarantor": CommitmentDeclaration,
}


def personal_event_classes() -> dict[str, type]:
    """Every event class of every domain module with a ``Personal[...]`` field."""
    found: dict[str, type] = {}
    seen: set[type] = set()

    def walk(owner: Any, module: str) -> None:
        for value in vars(owner).values():
            if not inspect.isclass(value) or value in seen or value.__module__ != module:
                continue
            seen.add(value)
            if issubclass(value, DomainEvent) and personal_fields(value):
                found[value.__qualname__] = value
            walk(value, module)

    for info in pkgutil.iter_modules(domain.__path__):
        module = importlib.import_module(f"domain.{info.name}")
        walk(module, module.__name__)
    return found


def test_every_personal_field_of_every_event_has_an_erasure_path() -> None:
    classes = personal_event_classes()
    fields = {(name, field) for name, cls in classes.items() for field in personal_fields(cls)}
    assert len(classes) >= 27
    assert sorted(fields - set(PATHS)) == [], "personal fields without an erasure path"
    assert sorted(set(PATHS) - fields) == [], "paths of fields that are not personal (any more)"


def test_each_path_agrees_with_the_code() -> None:
    classes = personal_event_classes()
    for (qualname, field), path in PATHS.items():
        aggregate = _AGGREGATE_OF_PATH[path]
        assert qualname.split(".")[0] == aggregate.__name__, (qualname, path)
        topic = get_topic(classes[qualname])
        apart = SEPARATE_PARTS.get(topic, {}).get(VISITOR_PART, frozenset())
        assert (field in apart) == (path == "visitor"), (qualname, field)


def _value(hint: Any, field: str) -> Any:
    """A distinctive value of the field's type."""
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)[-1]
    if hint is date:
        return date(1979, 11, 23)
    if hint is int:
        return 471_100
    if typing.get_origin(hint) is list:
        return [f"Żółkiewska-{field}.pdf"]
    return f"Żółkiewska-{field}"


def test_every_personal_field_is_unreadable_once_the_key_of_its_path_is_destroyed(
    service: AkteService, settings: Settings
) -> None:
    """Per event class, written through the service's mapper, then its path's key destroyed."""
    keys = data_keys_of(service)
    mapper = service.mapper
    for qualname, cls in personal_event_classes().items():
        if any((qualname, name) not in PATHS for name in personal_fields(cls)):
            continue  # without a path: the exhaustiveness test above fails for it
        hints = typing.get_type_hints(cls, include_extras=True)
        values = {name: _value(hints[name], name) for name in personal_fields(cls)}
        owner = uuid4()
        event: Any = object.__new__(cls)
        object.__setattr__(
            event,
            "__dict__",
            {"originator_id": owner, "originator_version": 1, **values},
        )
        stored = mapper.to_stored_event(event)
        assert b"\xc5\xbb" not in stored.state, qualname  # "Ż": sealed, never plain
        erased_paths = {PATHS[(qualname, name)] for name in values} - {"guarantor"}
        for path in erased_paths:
            key_owner = str(owner)
            if path == "visitor":
                key_owner = part_owner_id(str(owner), VISITOR_PART)
            keys.destroy([key_owner], service.clock())
        read = mapper.to_domain_event(stored)
        for name, value in values.items():
            got = getattr(read, name)
            if PATHS[(qualname, name)] == "guarantor":
                assert got == value, (qualname, name)
            else:
                assert got != value, (qualname, name)
                assert got in (None, 0) or is_redacted(got), (qualname, name, got)


def recorded_notice(service: AkteService, case_id: UUID) -> UUID:
    """A registration office's notice from triage, recorded on the file."""
    notice_id = uuid4()
    act = Act(by="sb-01", at=service.clock(), recorded_at=service.clock())
    notice = RegistrationNotice.put_in_triage(
        notice_id=notice_id,
        office_id=OFFICE,
        notice_kind=REGISTRATION_NOTICE_KINDS[0],
        message_id="msg-1",
        sender="meldebehoerde",
        effective_on=date(2024, 3, 1),
        person=NoticedPerson(SURNAME, "Ksawera", date(1979, 11, 23), "POL"),
        changes=RegistrationNoticeChanges(address="Świętokrzyska 17"),
        reasons=["given-names-differ"],
        candidate_case_ids=[case_id],
        act=act,
    )
    service.save(notice)
    notice.resolve(resolution="recorded_on_case_file", case_id=case_id, act=act)
    service.save(notice)
    listed = service.data_protection.linked_records(case_id).registration_notices
    assert listed == [str(notice_id)]
    export = subject_access(service, None, case_id, requested_by="dsb-01").document
    assert [n["state"]["id"] for n in export["registration_notices"]] == [str(notice_id)]
    assert export["registration_notices"][0]["state"]["person"]["surname"] == SURNAME
    return notice_id


def test_erasing_a_case_file_destroys_the_key_of_every_path_but_the_guarantors(
    service: AkteService, settings: Settings
) -> None:
    records = build_person(service, settings)
    notice = recorded_notice(service, records.case_id)
    keys = data_keys_of(service)
    owners: dict[Path_, str] = {
        "registration_notice": str(notice),
        "case_file": str(records.case_id),
        "submission": str(records.submission_id),
        "appointment": str(records.appointment_id),
        "waitlist_entry": str(records.waitlist_entry_id),
        "visitor": part_owner_id(str(records.declaration_id), VISITOR_PART),
        "guarantor": str(records.declaration_id),
    }
    assert set(owners) == set(_AGGREGATE_OF_PATH)
    assert all(keys.has_key(owner) for owner in owners.values())

    erase(service, records)

    assert {path: keys.has_key(owner) for path, owner in owners.items()} == {
        path: path == "guarantor" for path in owners
    }
    case = service.get_case(records.case_id)
    [erased] = [
        e for e in service.case_events(records.case_id) if type(e).__name__ == "PersonalDataErased"
    ]
    assert owners["visitor"] in getattr(erased, "linked_ids")  # noqa: B009
    assert case.is_erased
    assert UUID(owners["waitlist_entry"]) == records.waitlist_entry_id


def test_a_declaration_written_before_the_split_keeps_its_visitor_and_says_so(
    service: AkteService, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declarations stored before the visitor's part was sealed apart still read; their
    visitor's part cannot be erased apart, and the erasure reports them."""
    records = build_person(service, settings)
    with monkeypatch.context() as before_the_split:
        before_the_split.setattr(mapper_module, "SEPARATE_PARTS", {})
        old = service.declarations.submit_commitment_declaration(
            office_id=OFFICE,
            guarantor=GUARANTOR,
            invited_person=InvitedPerson(SURNAME, "Ksawera", date(1979, 11, 23), "POL", "X1234567"),
            purpose="family_visit",
            stay_from=date(2024, 5, 1),
            stay_until=date(2024, 5, 9),
            monthly_net_income_cents=300_000,
            assets_cents=None,
        )
    [stored] = service.recorder.select_events(old.declaration_id, limit=1)
    assert unseparated_parts(stored, service.mapper.transcoder)
    assert not unseparated_parts(
        service.recorder.select_events(records.declaration_id, limit=1)[0],
        service.mapper.transcoder,
    )
    service.declarations.link_declaration_to_case(
        old.declaration_id, expected_version=old.version, by="sb-01", case_id=records.case_id
    )

    erasure = service.data_protection.erase_personal_data(
        records.case_id,
        expected_version=service.case_head_version(records.case_id),
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-02",
    ).result

    assert erasure.visitor_parts_not_separable == 1
    assert erasure.mails_deleted >= 1
    kept = service.declarations.get_declaration(old.declaration_id)
    assert kept.invited_person.surname == SURNAME
    erased = service.declarations.get_declaration(records.declaration_id)
    assert erased.invited_person.surname == REDACTED_TEXT


# ------------------------------------------- records found by the person or named


def _book_online(service: AkteService, who: Person, starts_at: Any) -> AppointmentRecorded:
    """``who`` books the extension appointment at ``starts_at`` online, as the public."""
    return service.appointments.book_appointment(
        office_id=OFFICE,
        service_point_code=POINT,
        appointment_type="extend-title",
        starts_at=starts_at,
        situation=STUDENT,
        person=who,
        proof=proof(service),
        origin="online",
        by="public",
    )


def test_the_persons_online_bookings_and_waitlist_offers_are_erased_with_the_file(
    service: AkteService, settings: Settings
) -> None:
    """A seat offered to the person's waitlist entry (joined online: no file id) and the
    person's own online bookings, never linked to the file, are the person's too."""
    records = build_person(service, settings)
    # Room for the seat offered besides the person's bookings (the limit also takes a
    # person at it off the waitlist).
    service.appointments.configure_appointments(
        replace(service.appointments.appointment_setup, bookings_per_person=4)
    )

    def book(who: Person, hour: int, minute: int = 0) -> AppointmentRecorded:
        return _book_online(service, who, local(MONDAY, hour, minute))

    own = book(Person(SURNAME, GIVEN_NAMES, BIRTH, "andere.adresse.q7@example.org"), 10, 30)
    someone_else = book(other_person(7), 11)
    freed = book(other_person(8), 10)
    assert freed.reference is not None
    service.appointments.cancel_booking(freed.reference)  # the seat goes to the waitlist
    entry: WaitlistEntry = service.repository.get(records.waitlist_entry_id)
    [offer] = entry.offers
    offered = service.appointments.get_appointment(UUID(offer))
    assert (offered.origin, offered.case_id) == ("waitlist", None)

    linked = service.data_protection.linked_records(records.case_id)
    assert {str(own.appointment_id), offer} <= set(linked.appointments)
    assert str(someone_else.appointment_id) not in linked.appointments
    erase(service, records)

    keys = data_keys_of(service)
    for appointment_id in (own.appointment_id, UUID(offer)):
        assert not keys.has_key(str(appointment_id))
        booked = cast(
            Appointment.Booked, service.appointments.appointment_events(appointment_id)[0]
        )
        assert (booked.surname, booked.given_names, booked.email) == (REDACTED_TEXT,) * 3
        assert is_redacted(booked.date_of_birth)
    kept = service.appointments.get_appointment(someone_else.appointment_id)
    assert kept.person.surname == other_person(7).surname


def test_after_an_erasure_the_persons_waitlist_place_goes_to_the_next_in_line(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    """The tick offers a freed seat to the first in line; an erased person's entry has no
    one to write to any more: it is taken off, and the next person gets the seat (the
    tick used to stop on the erased address, for every seat of the office)."""
    records = build_person(service, settings)
    after_them = join_waitlist(service, other_person(3))
    erase(service, records)

    for _ in range(3):  # the erased person's own booking lapses: a seat frees
        clock.now += timedelta(hours=30)
        service.appointments.run_appointment_tick()

    erased: WaitlistEntry = service.repository.get(records.waitlist_entry_id)
    assert erased.left_reason == "erased"
    assert not erased.offers
    next_in_line: WaitlistEntry = service.repository.get(after_them.appointment_id)
    [offer] = next_in_line.offers
    assert service.appointments.get_appointment(UUID(offer)).status == "held"


def test_nothing_is_mailed_for_an_erased_persons_bookings(
    service: AkteService, settings: Settings, clock: FakeClock
) -> None:
    """No reminder and no lapse notice to an address erased: the mails would go to the
    redacted stand-in, name nobody and fail again each tick."""
    records = build_person(service, settings)
    own = _book_online(
        service,
        Person(SURNAME, GIVEN_NAMES, BIRTH, "andere.adresse.q7@example.org"),
        local(MONDAY, 10, 30),
    )
    erase(service, records)

    sent = 0
    for _ in range(4):  # past the reminder and the end of the hold
        clock.now += timedelta(hours=20)
        sent += service.appointments.run_appointment_tick().mails_sent

    assert sent == 0
    lapsed = service.appointments.get_appointment(own.appointment_id)
    assert lapsed.status == "lapsed"
    assert [mail.kind for mail in lapsed.mails] == ["confirmation"]  # sent before the erasure


def test_a_step_that_would_record_personal_data_on_an_erased_booking_is_refused(
    service: AkteService, settings: Settings
) -> None:
    """Not "the event store failed": there is no key to seal a reason with any more."""
    records = build_person(service, settings)
    erase(service, records)
    version = service.appointments.get_appointment(records.appointment_id).version

    with pytest.raises(BookingErased, match="erased"):
        service.appointments.cancel_appointment(
            records.appointment_id, expected_version=None, by="sb-01", reason="Termin entfällt"
        )
    assert service.appointments.get_appointment(records.appointment_id).version == version


def test_the_office_cancels_an_erased_persons_booking_without_a_reason_and_the_seat_frees(
    service: AkteService, settings: Settings
) -> None:
    """Else the seat stayed taken until the booking's day: nobody could end it."""
    records = build_person(service, settings)
    after_them = join_waitlist(service, other_person(3))
    erase(service, records)
    booked = service.appointments.get_appointment(records.appointment_id)
    mails = len(booked.mails)

    service.appointments.cancel_appointment(
        records.appointment_id, expected_version=None, by="sb-01", reason=None
    )

    cancelled = service.appointments.get_appointment(records.appointment_id)
    assert (cancelled.status, cancelled.end_reason) == ("cancelled", "cancelled_by_office")
    assert len(cancelled.mails) == mails  # no notice to an address that is gone
    slot: Slot = service.repository.get(UUID(cancelled.slot_id))
    assert str(records.appointment_id) not in slot.holders
    assert type(service.appointments.appointment_events(records.appointment_id)[-1]) is (
        Appointment.CancelledAfterErasure
    )
    next_in_line: WaitlistEntry = service.repository.get(after_them.appointment_id)
    [offer] = next_in_line.offers
    assert service.appointments.get_appointment(UUID(offer)).status == "held"
    # The counter's day list and the list of holds no longer show it.
    with views_for(settings) as views:
        catch_up(service, views, [appointment_day.PROJECTION, appointment_holds.PROJECTION])
        day = cancelled.starts_at.astimezone(BERLIN).date()
        listed = appointments_of_day(views, office_id=OFFICE, day=day).items
        held = unconfirmed_holds(views, office_id=OFFICE).items
    assert str(records.appointment_id) not in {each.appointment_id for each in listed}
    assert str(records.appointment_id) not in {each.appointment_id for each in held}
    assert offer in {each.appointment_id for each in held}


def _opened_and_renamed(service: AkteService) -> UUID:
    """A file of the person, whose surname is then corrected: it has held two names."""
    opened = service.open_case(
        office_id=OFFICE,
        master_data=MasterData(SURNAME, GIVEN_NAMES, BIRTH, "POL", "P9XQ7ZK41"),
        by="sb-01",
    )
    service.correct_master_data(
        opened.case_id,
        expected_version=opened.version,
        by="sb-01",
        corrections={"surname": "Neuname-Q"},
        reason="Heirat",
    )
    return opened.case_id


def _erase_file(service: AkteService, case_id: UUID) -> None:
    service.data_protection.erase_personal_data(
        case_id,
        expected_version=service.case_head_version(case_id),
        by="dsb-01",
        legal_ground="dsgvo-17",
        approved_by="dsb-02",
    )


def test_a_booking_made_under_a_name_the_file_held_before_a_correction_is_erased(
    service: AkteService,
) -> None:
    """The person booked online under her former surname, which the file no longer holds
    since a correction. The booking carries the key of that name: every name and birth
    date the file has held is the person's."""
    set_up(service)
    case_id = _opened_and_renamed(service)
    former = _book_online(
        service,
        Person(SURNAME, GIVEN_NAMES, BIRTH, "frueher.q7@example.org"),
        local(MONDAY, 11, 30),
    )

    linked = service.data_protection.linked_records(case_id)
    assert str(former.appointment_id) in linked.appointments
    assert linked.unchecked == 0
    _erase_file(service, case_id)

    assert not data_keys_of(service).has_key(str(former.appointment_id))
    booked = cast(
        Appointment.Booked, service.appointments.appointment_events(former.appointment_id)[0]
    )
    assert (booked.surname, booked.email) == (REDACTED_TEXT,) * 2


def test_unlinked_messages_naming_the_person_are_erased_with_the_file(
    service: AkteService,
) -> None:
    """A notice that arrived before the file existed (no candidate) and a contact form
    message never linked to the file name the person as the file did, before and after a
    correction: the person's, as the online bookings of the same person key are. Another
    person's message is kept."""
    # Before the file exists: no candidate (``_triage`` asserts it is in triage).
    early = _triage(service, GIVEN_NAMES, "Geheimweg 3, 12345 Musterstadt")
    case_id = _opened_and_renamed(service)

    def message_from(surname: str) -> UUID:
        return service.intake.submit_contact_form(
            office_id=OFFICE,
            topic="extend_residence_permit",
            message=f"Ich, {GIVEN_NAMES} {surname}, frage nach meinem Antrag.",
            contact=ContactDetails(surname, GIVEN_NAMES.upper(), "q7@example.org", BIRTH),
            files=[],
        ).submission_id

    mine = message_from("NEUNAME Q")
    theirs = message_from("Jemand-Anders")

    linked = service.data_protection.linked_records(case_id)
    assert set(linked.same_identity) == {str(early), str(mine)}
    _erase_file(service, case_id)

    keys = data_keys_of(service)
    assert not keys.has_key(str(early))
    assert not keys.has_key(str(mine))
    assert service.notices.get_notice(early).person.surname == REDACTED_TEXT
    assert service.intake.get_submission(mine).contact.surname == REDACTED_TEXT
    assert service.intake.get_submission(theirs).contact.surname == "Jemand-Anders"


def _triage(service: AkteService, given_names: str, address: str) -> UUID:
    """A notice about a person of the file's surname and birth date, with these given
    names: in triage, naming the files of that surname and birth date."""
    outcome = service.notices.receive_notice(
        InboundNotice(
            office_id=OFFICE,
            sender="meldebehoerde-musterstadt",
            message_id=str(uuid4()),
            message_type="MBABH.AenderungHauptwohnung",
            notice_kind="aenderung_hauptwohnung",
            effective_on=date(2024, 3, 1),
            person=NoticedPerson(SURNAME, given_names, BIRTH),
            changes=RegistrationNoticeChanges(address=address),
        )
    )
    assert outcome.outcome == "triage", outcome
    return outcome.subject_id


def test_notices_in_triage_naming_the_file_are_erased_with_it(
    service: AkteService, settings: Settings
) -> None:
    """Also when they name other candidate files; not those recorded on another file."""
    records = build_person(service, settings)
    alone = _triage(service, "Ksawera", "Geheimweg 3, 12345 Musterstadt")
    namesake = service.open_case(
        office_id=OFFICE,
        master_data=MasterData(SURNAME, "Bożena", BIRTH, "POL", "K3Z8W1Q5", None),
        by="sb-01",
    ).case_id
    shared = _triage(service, "Ksawera", "Verborgene Gasse 9, 12345 Musterstadt")
    decided = _triage(service, "Bożena", "Lindenallee 4, 12345 Musterstadt")
    for notice_id in (alone, shared, decided):
        assert str(records.case_id) in service.notices.get_notice(notice_id).candidate_case_ids
    assert len(service.notices.get_notice(shared).candidate_case_ids) == 2
    service.notices.resolve_notice(
        decided, by="sb-01", resolution="recorded_on_case_file", case_id=namesake
    )

    # Possibly another candidate's: erased with the file, never exported to this person.
    export = subject_access(service, None, records.case_id, requested_by="dsb-01").document
    assert export["registration_notices"] == []
    erase(service, records)

    keys = data_keys_of(service)
    for notice_id in (alone, shared):
        assert not keys.has_key(str(notice_id))
        erased = service.notices.get_notice(notice_id)
        assert erased.person.surname == REDACTED_TEXT
        assert erased.person.given_names == REDACTED_TEXT
        assert is_redacted(erased.person.date_of_birth)
        assert erased.changes.address == REDACTED_TEXT
        assert erased.resolution is None  # still in triage, for a caseworker to dismiss
    linked = service.data_protection.linked_records(records.case_id)
    assert sorted(linked.notices_naming_the_file) == sorted([str(alone), str(shared)])
    kept = service.notices.get_notice(decided)
    assert (kept.person.surname, kept.changes.address) == (
        SURNAME,
        "Lindenallee 4, 12345 Musterstadt",
    )
    # An erased notice is never recorded on a file (its values read "[gelöscht]").
    with pytest.raises(NoticeErased):
        service.notices.resolve_notice(
            shared, by="sb-01", resolution="recorded_on_case_file", case_id=namesake
        )
    service.notices.resolve_notice(shared, by="sb-01", resolution="dismissed")
    assert service.get_case(namesake).master_data.address == "Lindenallee 4, 12345 Musterstadt"
