"""Contact form submissions: the aggregate's rules, and submission and triage through the
service on SQLite and PostgreSQL (the HTTP side is in ``test_intake_http.py``).

Also the promise the document store makes to the event log: files are stored before the
event that references them, so a crash in between leaves unreferenced files (which the
orphan sweep removes) and never an event pointing at a missing file.
"""

from __future__ import annotations

import hashlib
import io
from datetime import date, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.utils import get_topic

from adapters.documents.sweep import sweep_orphans
from adapters.simulation.legacy_scans import make_jpeg, make_pdf
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.errors import (
    CaseFileNotActive,
    InvalidValue,
    NothingToCorrect,
    SubmissionAlreadyTriaged,
    SubmissionFileNotFound,
    SubmissionNotLinked,
)
from domain.intake import (
    ContactDetails,
    ContactSubmission,
    SubmittedFile,
    canonical_receipt,
    format_receipt,
    hash_receipt,
)
from domain.personal import personal_fields
from service import AkteService
from service_common import ConcurrentModification, DuplicateReference, StoreUnavailable
from service_intake import (
    IncomingDocument,
    SubmissionChanged,
    SubmissionNotFound,
    SubmissionRecorded,
)
from tests.conftest import FakeClock

OFFICE = "abh-musterstadt"
CASEWORKER = "sb-01"
SENDER = ContactDetails(
    surname="Yılmaz",
    given_names="Ayşe Nur",
    email="ayse@example.org",
    date_of_birth=date(1991, 7, 14),
    file_number="2019-AB12",
)
PERSON = MasterData("Yılmaz", "Ayşe Nur", date(1991, 7, 14), "TUR", "U12345678")


def incoming(data: bytes, name: str = "pass.pdf", pages: int = 1) -> IncomingDocument:
    media_type = "application/pdf" if data.startswith(b"%PDF") else "image/jpeg"
    return IncomingDocument(
        content=io.BytesIO(data),
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        media_type=media_type,
        page_count=pages,
        name=name,
    )


def submit(
    service: AkteService, *files: IncomingDocument, topic: str = "extend_residence_permit"
) -> SubmissionRecorded[str]:
    chosen = files or (incoming(make_pdf(2, marker=str(uuid4())), pages=2),)
    return service.intake.submit_contact_form(
        office_id=OFFICE, topic=topic, message="Bitte verlängern.", contact=SENDER, files=chosen
    )


def open_case(service: AkteService, *, office: str = OFFICE) -> UUID:
    return service.open_case(office_id=office, master_data=PERSON, by=CASEWORKER).case_id


def topic_of(event_class: type) -> str:
    return get_topic(event_class)


def events_with(service: AkteService, event_class: type) -> list[Any]:
    return [
        service.mapper.to_domain_event(notification)
        for notification in service.recorder.select_notifications(
            start=1, limit=10**6, topics=[topic_of(event_class)]
        )
    ]


# ---------------------------------------------------------------- receipts


def test_a_receipt_is_quoted_in_groups_and_found_however_it_is_typed() -> None:
    symbols = "7GQ2M4XD9TPARW3KH8NC"
    receipt = format_receipt(symbols)

    assert receipt == "KF-7GQ2M-4XD9T-PARW3-KH8NC"
    for quoted in (receipt, receipt.lower(), "kf 7gq2m 4xd9t parw3 kh8nc", symbols):
        assert canonical_receipt(quoted) == symbols
    # I/L read as 1, O as 0: what people mistype when reading a reference aloud.
    assert canonical_receipt("KF-7GQ2M-4XD9T-PARW3-KH8NC".replace("0", "O")) == symbols
    assert canonical_receipt("KF-00000-00000-00000-0000O") == "0" * 20
    for wrong in ("", "KF-123", "x" * 500, "KF-7GQ2M-4XD9T-PARW3-KH8N!"):
        assert canonical_receipt(wrong) is None
    assert hash_receipt(symbols) != hash_receipt("0" * 20)


# -------------------------------------------------------------- the aggregate


def act(by: str = "public") -> Act:
    now = FakeClock().now
    return Act(by=by, at=now, recorded_at=now)


def a_submission(**overrides: Any) -> ContactSubmission:
    fields: dict[str, Any] = {
        "submission_id": uuid4(),
        "office_id": OFFICE,
        "receipt_sha256": "ab" * 32,
        "topic": "extend_residence_permit",
        "message": "Bitte verlängern.",
        "contact": SENDER,
        "files": [SubmittedFile(1, "cd" * 32, 100, "application/pdf", 2)],
        "file_names": ["pass.pdf"],
        "act": act(),
    } | overrides
    return ContactSubmission.submit(**fields)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"message": " "}, "message"),
        ({"contact": ContactDetails("Y", "A", "not an address")}, "email"),
        ({"contact": ContactDetails("", "A", "a@b.de")}, "surname"),
        ({"contact": ContactDetails("Y", "A", "a@b.de", date(2999, 1, 1))}, "date_of_birth"),
        ({"file_names": ["../../etc/passwd"]}, "files.0"),
        ({"file_names": ["pass\x00.pdf"]}, "files.0"),
        ({"file_names": []}, "files"),
        ({"files": [SubmittedFile(1, "cd" * 32, 100, "text/html", 1)]}, "files.0.media_type"),
        ({"files": [SubmittedFile(1, "cd" * 32, 0, "application/pdf", 1)]}, "files.0.size_bytes"),
        ({"files": [SubmittedFile(2, "cd" * 32, 9, "application/pdf", 1)]}, "files.0"),
        ({"topic": "Not A Code"}, "topic"),
    ],
)
def test_a_submission_is_checked_as_a_whole(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidValue) as refused:
        a_submission(**overrides)

    assert refused.value.field == field


def test_personal_data_of_a_submission_is_marked() -> None:
    assert personal_fields(ContactSubmission.Submitted) == {
        "message",
        "surname",
        "given_names",
        "email",
        "date_of_birth",
        "file_number",
        "file_names",
    }
    assert personal_fields(ContactSubmission.Answered) == {"reply"}
    assert personal_fields(ContactSubmission.Dismissed) == {"note"}
    # Hashes stay readable: the orphan sweep and statistics need them without a key.
    assert "files" not in personal_fields(ContactSubmission.Submitted)


def test_triage_follows_its_rules() -> None:
    submission = a_submission()
    case_id = uuid4()
    statuses = [submission.status]

    with pytest.raises(SubmissionNotLinked):
        submission.turn_into_procedure(
            procedure_number=1,
            topic="extend_residence_permit",
            procedure_kind="extend_title",
            legal_basis=None,
            document_numbers=[1],
            act=act(by=CASEWORKER),
        )
    submission.link_to_case_file(case_id=case_id, case_opened=False, act=act(by=CASEWORKER))
    with pytest.raises(NothingToCorrect):
        submission.link_to_case_file(case_id=case_id, case_opened=False, act=act(by=CASEWORKER))
    statuses.append(submission.status)
    assert statuses == ["untriaged", "linked"]
    assert submission.is_untriaged
    with pytest.raises(InvalidValue, match="one document number per file"):
        submission.turn_into_procedure(
            procedure_number=1,
            topic="extend_residence_permit",
            procedure_kind="extend_title",
            legal_basis=None,
            document_numbers=[],
            act=act(by=CASEWORKER),
        )
    submission.turn_into_procedure(
        procedure_number=1,
        topic="extend_residence_permit",
        procedure_kind="extend_title",
        legal_basis="aufenthg-16b",
        document_numbers=[4],
        act=act(by=CASEWORKER),
    )

    assert submission.status == "procedure_opened"
    assert submission.triaged_by == CASEWORKER
    with pytest.raises(SubmissionAlreadyTriaged):
        submission.answer(reply="x", act=act(by=CASEWORKER))
    with pytest.raises(SubmissionAlreadyTriaged):
        submission.dismiss(reason="spam", note=None, act=act(by=CASEWORKER))
    with pytest.raises(SubmissionAlreadyTriaged):
        submission.link_to_case_file(case_id=uuid4(), case_opened=False, act=act())
    with pytest.raises(SubmissionFileNotFound):
        submission.file(2)


# ------------------------------------------------------------------ service


def test_a_submission_is_recorded_with_its_receipt_and_files(service: AkteService) -> None:
    pdf, photo = make_pdf(3, marker="antrag"), make_jpeg("foto")

    recorded = submit(service, incoming(pdf, "antrag.pdf", 3), incoming(photo, "foto.jpg"))

    submission = service.intake.get_submission(recorded.submission_id)
    assert service.intake.find_submission_by_receipt(recorded.result) == recorded.submission_id
    assert service.intake.find_submission_by_receipt(recorded.result.lower().replace("-", " ")) == (
        recorded.submission_id
    )
    assert recorded.result.startswith("KF-")
    assert str(recorded.submission_id) not in recorded.result
    assert [(f.media_type, f.page_count) for f in submission.files] == [
        ("application/pdf", 3),
        ("image/jpeg", 1),
    ]
    assert submission.file_names == ["antrag.pdf", "foto.jpg"]
    owner = recorded.submission_id
    assert service.intake.documents.read_bytes(submission.files[0].sha256, owner=owner) == pdf
    assert service.intake.documents.read_bytes(submission.files[1].sha256, owner=owner) == photo
    [event] = service.intake.submission_events(recorded.submission_id)
    assert (event.by, event.at) == ("public", FakeClock().now)
    assert recorded.result not in repr(vars(event))  # only its hash is kept
    with pytest.raises(SubmissionNotFound):
        service.intake.find_submission_by_receipt("KF-00000-00000-00000-00000")


def test_a_refused_submission_stores_no_file(service: AkteService) -> None:
    stored_before = list(service.intake.documents.entries())

    with pytest.raises(InvalidValue):
        service.intake.submit_contact_form(
            office_id=OFFICE,
            topic="extend_residence_permit",
            message="x",
            contact=ContactDetails("Y", "A", "no address"),
            files=[incoming(make_pdf(1, marker="refused"))],
        )
    with pytest.raises(InvalidValue):
        submit(service, topic="no_such_topic")

    assert list(service.intake.documents.entries()) == stored_before
    assert service.recorder.max_notification_id() in (None, 0)


def test_a_crash_between_storing_and_recording_leaves_no_event_and_an_orphan(
    service: AkteService, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept = submit(service)
    pdf = make_pdf(2, marker="lost on the way")

    def store_down(*aggregates: object, **kwargs: object) -> object:
        raise StoreUnavailable("the event store failed: OperationalError")

    monkeypatch.setattr(service, "save", store_down)
    with pytest.raises(StoreUnavailable):
        submit(service, incoming(pdf, pages=2))
    monkeypatch.undo()

    submissions = events_with(service, ContactSubmission.Submitted)
    assert [event.originator_id for event in submissions] == [kept.submission_id]
    for event in submissions:  # every event's files are there
        for submitted in event.files:
            service.intake.documents.verify(
                submitted.sha256, owner=event.originator_id, size_bytes=submitted.size_bytes
            )
    assert len(list(service.intake.documents.entries())) == 2  # the kept file, the orphan

    report = sweep_orphans(
        service.intake.documents, service.intake.referenced_addresses, older_than=timedelta(0)
    )

    assert (report.removed, report.referenced) == (1, 1)
    assert len(list(service.intake.documents.entries())) == 1
    kept_file = service.intake.get_submission(kept.submission_id).files[0]
    assert service.intake.documents.contains(kept_file.sha256, owner=kept.submission_id)


def test_the_stopgap_list_shows_what_waits_for_triage(service: AkteService) -> None:
    first, second, third = submit(service), submit(service), submit(service)
    elsewhere = service.intake.submit_contact_form(
        office_id="abh-nachbarstadt",
        topic="blue_card",
        message="?",
        contact=SENDER,
        files=[incoming(make_pdf(1, marker="elsewhere"))],
    )
    service.intake.dismiss_submission(
        second.submission_id, expected_version=1, by=CASEWORKER, reason="spam"
    )
    service.intake.link_submission_to_case(
        third.submission_id, expected_version=1, by=CASEWORKER, case_id=open_case(service)
    )

    page = service.intake.list_untriaged_submissions(office_ids={OFFICE})
    everywhere = service.intake.list_untriaged_submissions(office_ids=None, limit=2)
    rest = service.intake.list_untriaged_submissions(
        office_ids=None, after_position=everywhere.last_position or 0, limit=2
    )

    assert [s.id for s in page.submissions] == [first.submission_id, third.submission_id]
    assert not page.more
    assert [s.status for s in page.submissions] == ["untriaged", "linked"]
    assert everywhere.more
    listed = [s.id for s in everywhere.submissions + rest.submissions]
    assert listed == [first.submission_id, third.submission_id, elsewhere.submission_id]


def test_a_submission_becomes_a_procedure_with_its_files_as_documents(
    service: AkteService, clock: FakeClock
) -> None:
    # The office knew the person before: the case file is older than the submission.
    case_id = open_case(service)
    clock.advance(days=1)
    pdf = make_pdf(4, marker="antrag")
    recorded = submit(service, incoming(pdf, "antrag.pdf", 4), incoming(make_jpeg("f"), "f.jpg"))
    submitted_at = clock.now
    clock.advance(days=3)
    linked = service.intake.link_submission_to_case(
        recorded.submission_id, expected_version=1, by=CASEWORKER, case_id=case_id
    )

    made = service.intake.turn_submission_into_procedure(
        recorded.submission_id,
        expected_version=linked.version,
        by=CASEWORKER,
        legal_basis="aufenthg-16b",
    )

    case = service.get_case(case_id)
    [procedure] = case.procedures
    assert (procedure.channel, procedure.topic, procedure.legal_basis) == (
        "contact_form",
        "extend_residence_permit",
        "aufenthg-16b",
    )
    # Received when the person sent it: what counts for § 81 (4) AufenthG.
    assert procedure.received_at == submitted_at
    assert [(d.source, d.kind, d.page_count) for d in case.documents] == [
        ("contact_form", "contact-form-upload", 4),
        ("contact_form", "contact-form-upload", 1),
    ]
    assert made.result.document_numbers == [1, 2]
    assert made.result.case_version == case.version
    assert (
        service.intake.documents.read_bytes(
            case.documents[0].sha256, owner=case_id, size_bytes=len(pdf)
        )
        == pdf
    )
    case_events = service.case_events(case_id)
    assert {event.by for event in case_events[1:]} == {CASEWORKER}
    submission = service.intake.get_submission(recorded.submission_id)
    assert submission.status == "procedure_opened"
    assert (submission.procedure_kind, submission.triaged_at) == ("extend_title", clock.now)
    [*_, turned] = service.intake.submission_events(recorded.submission_id)
    assert isinstance(turned, ContactSubmission.TurnedIntoProcedure)
    assert (turned.by, turned.at, turned.document_numbers) == (CASEWORKER, clock.now, [1, 2])
    assert service.intake.list_untriaged_submissions(office_ids=None).submissions == []


def test_a_procedure_rests_on_a_legal_basis_of_its_topic(service: AkteService) -> None:
    recorded = submit(service)
    linked = service.intake.link_submission_to_case(
        recorded.submission_id, expected_version=1, by=CASEWORKER, case_id=open_case(service)
    )

    with pytest.raises(InvalidValue, match="not a legal basis of topic"):
        service.intake.turn_submission_into_procedure(
            recorded.submission_id,
            expected_version=linked.version,
            by=CASEWORKER,
            legal_basis="aufenthg-60a",
        )
    made = service.intake.turn_submission_into_procedure(
        recorded.submission_id,
        expected_version=linked.version,
        by=CASEWORKER,
        topic="blue_card",
        legal_basis="aufenthg-18g",
    )

    assert service.intake.get_submission(recorded.submission_id).procedure_kind == "first_title"
    assert made.result.procedure_number == 1


def test_a_case_file_is_opened_from_a_submission_in_one_transaction(
    service: AkteService,
) -> None:
    recorded = submit(service)
    before = service.recorder.max_notification_id()

    opened = service.intake.open_case_from_submission(
        recorded.submission_id,
        expected_version=1,
        by=CASEWORKER,
        master_data=PERSON,
        reference="AZ-2024-0001",
    )

    case = service.get_case(opened.result.case_id)
    assert (case.office_id, case.reference, case.master_data) == (OFFICE, "AZ-2024-0001", PERSON)
    assert service.find_case_by_reference(OFFICE, "AZ-2024-0001") == case.id
    submission = service.intake.get_submission(recorded.submission_id)
    assert (submission.case_id, submission.case_opened_from_submission) == (str(case.id), True)
    assert service.recorder.max_notification_id() == (before or 0) + 3
    again = submit(service)
    with pytest.raises(DuplicateReference):
        service.intake.open_case_from_submission(
            again.submission_id,
            expected_version=1,
            by=CASEWORKER,
            master_data=PERSON,
            reference="AZ-2024-0001",
        )
    assert service.intake.get_submission(again.submission_id).version == 1


def test_a_case_file_opened_from_a_submission_later_takes_it_as_its_procedure(
    service: AkteService, clock: FakeClock
) -> None:
    recorded = submit(service)
    submitted_at = clock.now
    clock.advance(days=2)
    opened = service.intake.open_case_from_submission(
        recorded.submission_id, expected_version=1, by=CASEWORKER, master_data=PERSON
    )

    made = service.intake.turn_submission_into_procedure(
        recorded.submission_id,
        expected_version=opened.version,
        by=CASEWORKER,
        legal_basis="aufenthg-16b",
    )

    case = service.get_case(opened.result.case_id)
    # Opened for the submission's matter: as of its receipt, so the procedure received
    # then (what counts for § 81 (4) AufenthG) is not before the file.
    assert case.opened_at == submitted_at
    [procedure] = case.procedures
    assert (made.result.procedure_number, procedure.received_at) == (1, submitted_at)
    [opening, *_] = service.case_events(case.id)
    assert (opening.at, opening.timestamp) == (submitted_at, clock.now)


def test_links_stay_within_the_office_and_versions_are_checked(service: AkteService) -> None:
    recorded = submit(service)
    elsewhere = open_case(service, office="abh-nachbarstadt")

    with pytest.raises(InvalidValue, match="submission's office") as refused:
        service.intake.link_submission_to_case(
            recorded.submission_id, expected_version=1, by=CASEWORKER, case_id=elsewhere
        )
    assert refused.value.field == "case_id"
    with pytest.raises(InvalidValue, match="submission's office"):
        service.intake.link_submission_to_case(
            recorded.submission_id, expected_version=1, by=CASEWORKER, case_id=uuid4()
        )
    with pytest.raises(SubmissionChanged) as stale:
        service.intake.answer_submission(
            recorded.submission_id, expected_version=2, by=CASEWORKER, reply="x"
        )
    assert isinstance(stale.value, ConcurrentModification)
    assert (stale.value.expected, stale.value.actual) == (2, 1)
    answered = service.intake.answer_submission(
        recorded.submission_id, expected_version=1, by=CASEWORKER, reply="Bitte Termin buchen."
    )
    assert service.intake.get_submission(recorded.submission_id).status == "answered"
    assert answered.version == 2


def test_a_closed_case_file_takes_no_procedure_and_nothing_is_recorded(
    service: AkteService,
) -> None:
    recorded = submit(service)
    case_id = open_case(service)
    linked = service.intake.link_submission_to_case(
        recorded.submission_id, expected_version=1, by=CASEWORKER, case_id=case_id
    )
    service.close_case(case_id, expected_version=1, by=CASEWORKER, closure_reason="left")
    before = service.recorder.max_notification_id()

    with pytest.raises(CaseFileNotActive):
        service.intake.turn_submission_into_procedure(
            recorded.submission_id, expected_version=linked.version, by=CASEWORKER
        )

    assert service.recorder.max_notification_id() == before
    assert service.get_case(case_id).version == 2


# ----------------------------------------------------- caseworker uploads


def test_an_upload_is_stored_then_attached(service: AkteService) -> None:
    case_id = open_case(service)
    letter = make_pdf(2, marker="Schreiben des Verwaltungsgerichts")

    recorded = service.intake.upload_document(
        case_id,
        expected_version=1,
        by=CASEWORKER,
        document=incoming(letter, pages=2),
        source="mail",
    )
    service.record_correspondence(
        case_id,
        expected_version=recorded.version,
        by=CASEWORKER,
        direction="received",
        counterpart_kind="court",
        counterpart_name="VG Musterstadt",
        subject="Ladung",
        attachment_numbers=[recorded.result],
    )

    case = service.get_case(case_id)
    assert case.correspondence[0].attachment_numbers == [1]
    assert case.documents[0].source == "mail"
    assert service.intake.documents.read_bytes(case.documents[0].sha256, owner=case_id) == letter


def test_a_refused_upload_stores_nothing(service: AkteService) -> None:
    case_id = open_case(service)
    service.close_case(case_id, expected_version=1, by=CASEWORKER, closure_reason="left")

    with pytest.raises(ConcurrentModification):
        service.intake.upload_document(
            case_id,
            expected_version=1,
            by=CASEWORKER,
            document=incoming(make_pdf(1, marker="stale")),
            source="mail",
        )
    with pytest.raises(CaseFileNotActive):
        service.intake.upload_document(
            case_id,
            expected_version=2,
            by=CASEWORKER,
            document=incoming(make_pdf(1, marker="closed")),
            source="mail",
        )

    assert list(service.intake.documents.entries()) == []
    assert service.get_case(case_id).version == 2


def test_the_sweep_keeps_every_referenced_document(service: AkteService) -> None:
    recorded = submit(service)
    case_id = open_case(service)
    upload = service.intake.upload_document(
        case_id,
        expected_version=1,
        by=CASEWORKER,
        document=incoming(make_pdf(1, marker="letter")),
        source="mail",
    )
    referenced = {
        (reference.owner, reference.sha256) for reference in service.intake.referenced_documents()
    }

    report = sweep_orphans(
        service.intake.documents, service.intake.referenced_addresses, older_than=timedelta(0)
    )

    assert report.removed == 0
    assert referenced == {
        (
            recorded.submission_id,
            service.intake.get_submission(recorded.submission_id).files[0].sha256,
        ),
        (case_id, service.get_case(case_id).documents[upload.result - 1].sha256),
    }
    assert isinstance(service.case_events(case_id)[-1], CaseFile.DocumentAttached)
