"""Intake: the contact form, uploads and scanned legacy files; the context
``service.intake``.

Files go into the document store (:class:`service_ports.DocumentStore`) before the
events that reference them are saved, so an event never points at a missing file; files
stored for a command that then fails are orphans for the sweep.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.acts import Act
from domain.case_file import CaseFile, MasterData, require_code
from domain.case_reference import CaseReference
from domain.errors import InvalidValue
from domain.intake import (
    RECEIPT_ALPHABET,
    RECEIPT_SYMBOLS,
    ContactDetails,
    ContactSubmission,
    SubmissionReceipt,
    SubmittedFile,
    canonical_receipt,
    format_receipt,
    hash_receipt,
)
from domain.values import CONTACT_FORM_DOCUMENT_KIND, DismissalReason, DocumentSource
from service_common import (
    MAX_GENERATED_REFERENCE_ATTEMPTS,
    MAX_VERSION,
    PUBLIC_APPLICANT,
    CaseNotFound,
    ConcurrentModification,
    DuplicateReference,
    Recorded,
    ReferenceNotFound,
    ServiceError,
    StoreUnavailable,
    generated_reference,
    gives_back_unwritten_ids,
    last_position,
)
from service_idempotency import OutcomeUnknown
from service_ports import (
    Catalogue,
    DocumentReference,
    DocumentStore,
    ServiceStore,
    StoredDocument,
)

T = TypeVar("T")

logger = logging.getLogger("akte.service")

SCAN_IMPORT_USER: Final = "scan-import"
"""Who acts when scanned legacy files are imported, unless the operator names someone."""
_MAX_SUBMISSION_SAVE_ATTEMPTS: Final = 5
_REFERENCE_SCAN_PAGE: Final = 1000


class DocumentStoreMissing(ServiceError):
    """The service was built without a document store (tests, benchmarks)."""


class SubmissionNotFound(ServiceError):
    """No such contact form submission, or none with the receipt quoted."""

    def __init__(self, submission_id: UUID | None = None) -> None:
        if submission_id is None:
            message = "no contact form submission has this receipt"
        else:
            message = f"contact form submission {submission_id} does not exist"
        super().__init__(message)
        self.submission_id = submission_id


class SubmissionChanged(ConcurrentModification):
    """The submission changed since the version the caller based its command on."""

    def __init__(self, submission_id: UUID, expected: int, actual: int) -> None:
        super().__init__(submission_id, expected, actual)
        self.args = (
            f"contact form submission {submission_id} is at version {actual}, "
            f"the command expected version {expected}",
        )


@dataclass(frozen=True)
class IncomingDocument:
    """A file checked by its bytes (:mod:`adapters.documents.inspection`), to be stored.

    ``content`` is an open, seekable file or a path; ``sha256`` and ``size_bytes`` are
    what the inspection found, and what is stored and recorded must match them.
    """

    content: BinaryIO | Path
    sha256: str
    size_bytes: int
    media_type: str
    page_count: int
    name: str = ""
    """The sender's file name (personal data); kept for contact form submissions only."""
    kind: str = CONTACT_FORM_DOCUMENT_KIND

    @property
    def address(self) -> StoredDocument:
        return StoredDocument(self.sha256, self.size_bytes)


@dataclass(frozen=True)
class SubmissionRecorded(Generic[T]):
    """What a command on a submission did: its version then and the result."""

    submission_id: UUID
    version: int
    result: T
    position: int


@dataclass(frozen=True)
class SubmissionPage:
    submissions: list[ContactSubmission]
    last_position: int | None
    """Where the page's scan of the log ended: the cursor of the next page."""
    more: bool


@dataclass(frozen=True)
class CaseOpenedFromSubmission:
    case_id: UUID
    reference: str
    case_version: int


@dataclass(frozen=True)
class ProcedureFromSubmission:
    case_id: UUID
    procedure_number: int
    document_numbers: list[int]
    case_version: int


@dataclass(frozen=True)
class ScansFiled:
    """What filing a legacy file's scans did: nothing, when all were on file already."""

    case_id: UUID
    version: int
    opened: bool
    """The case file was opened for these scans (no case file had the file number)."""
    document_numbers: list[int]
    """Numbers of the documents attached now; empty: every scan was on file already."""
    attached_sha256: list[str]
    """The hashes of the scans attached now, in the order of ``document_numbers``."""


class Intake:
    """Contact form submissions, uploaded documents and scanned legacy files;
    ``service.intake``."""

    def __init__(
        self, store: ServiceStore, catalogue: Catalogue, documents: DocumentStore | None
    ) -> None:
        """``documents``: where the files are kept (None: commands that store files
        refuse, for tests and benchmarks); :meth:`close` closes it."""
        self._store = store
        self._catalogue = catalogue
        self._documents = documents

    @property
    def documents(self) -> DocumentStore:
        """The document store; commands that store files need one."""
        if self._documents is None:
            msg = "this service was built without a document store"
            raise DocumentStoreMissing(msg)
        return self._documents

    def close(self) -> None:
        if self._documents is not None:
            self._documents.close()

    def _store_files(self, documents: Sequence[IncomingDocument], *, owner: UUID) -> None:
        """Put the files into the document store before the events that reference them,
        encrypted for ``owner`` (the aggregate whose person they are about).

        If recording fails afterwards, the stored files are orphans that the sweep removes
        (:mod:`adapters.documents.sweep`); an event never points at a missing file.
        """
        for document in documents:
            if isinstance(document.content, Path):
                with document.content.open("rb") as source:
                    self.documents.put_hashed(source, document.address, owner=owner)
            else:
                self.documents.put_hashed(document.content, document.address, owner=owner)

    def upload_document(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        document: IncomingDocument,
        source: DocumentSource,
        at: datetime | None = None,
    ) -> Recorded[int]:
        """Store an uploaded file and attach it to the case file; returns its number.

        The case file's rules are checked before the file is stored (a stale version or a
        closed file stores nothing), and the event is saved only after it is stored.
        """

        def store_and_attach(case: CaseFile, act: Act) -> int:
            number = case.attach_document(
                kind=document.kind,
                sha256=document.sha256,
                size_bytes=document.size_bytes,
                media_type=document.media_type,
                page_count=document.page_count,
                source=source,
                act=act,
            )
            self._store_files([document], owner=case_id)
            return number

        return self._store.change_case(case_id, expected_version, by, at, store_and_attach)

    def referenced_addresses(self) -> set[str]:
        """Where the documents events reference are stored: what the orphan sweep keeps
        (documents of erased owners are not kept: nobody can read them any more)."""
        return self.documents.addresses_to_keep(self.referenced_documents())

    def referenced_documents(self) -> list[DocumentReference]:
        """Every document an event references, with its owner: documents on case files
        (owned by the file) and the files of contact form submissions (by the submission)."""
        topics = [get_topic(CaseFile.DocumentAttached), get_topic(ContactSubmission.Submitted)]
        referenced: list[DocumentReference] = []
        position = 0
        while True:
            with self._store.store_errors():
                notifications = self._store.recorder.select_notifications(
                    start=position,
                    limit=_REFERENCE_SCAN_PAGE,
                    topics=topics,
                    inclusive_of_start=False,
                )
            for notification in notifications:
                event = self._store.mapper.to_domain_event(notification)
                owner = UUID(str(notification.originator_id))
                if isinstance(event, CaseFile.DocumentAttached):
                    referenced.append(DocumentReference(owner, event.sha256, event.size_bytes))
                elif isinstance(event, ContactSubmission.Submitted):
                    referenced.extend(
                        DocumentReference(owner, submitted.sha256, submitted.size_bytes)
                        for submitted in event.files
                    )
            if len(notifications) < _REFERENCE_SCAN_PAGE:
                return referenced
            position = notifications[-1].id

    @gives_back_unwritten_ids
    def file_scanned_documents(
        self,
        *,
        office_id: str,
        reference: str,
        master_data: MasterData,
        documents: Sequence[IncomingDocument],
        by: str = SCAN_IMPORT_USER,
        at: datetime | None = None,
    ) -> ScansFiled:
        """File the scans of a legacy paper file on the case file with its file number.

        Opens the case file when the office has none with this number (the file number is
        claimed in the same transaction, so two importers cannot open it twice). Scans
        already on the case file (same sha256, source ``scan``) are left out, so filing
        the same scans again records nothing: an interrupted import is simply run again.
        The files are stored first, then all events of the legacy file are saved in one
        transaction.
        """
        act = self._store.act(by, at)
        for _attempt in range(MAX_GENERATED_REFERENCE_ATTEMPTS):
            try:
                case_id = self._store.find_case_by_reference(office_id, reference)
            except ReferenceNotFound:
                filed = self._open_case_with_scans(
                    office_id, reference, master_data, documents, act
                )
            else:
                filed = self._attach_new_scans(case_id, documents, act)
            if filed is not None:
                return filed
        msg = "the scans could not be filed: the case file kept changing"
        raise StoreUnavailable(msg)

    def _open_case_with_scans(
        self,
        office_id: str,
        reference: str,
        master_data: MasterData,
        documents: Sequence[IncomingDocument],
        act: Act,
    ) -> ScansFiled | None:
        case = CaseFile.open(
            case_id=self._store.new_personal_id(),
            office_id=office_id,
            reference=reference,
            master_data=master_data,
            act=act,
        )
        claim = CaseReference.claim(
            office_id=office_id, reference=reference, case_id=case.id, act=act
        )
        fresh = _distinct_by_hash(documents)
        numbers = [_attach_scan(case, document, act) for document in fresh]
        self._store_files(fresh, owner=case.id)
        try:
            with self._store.store_errors():
                self._store.save(case, claim)
        except IntegrityError:
            return None  # opened meanwhile by someone else: attach to theirs
        return ScansFiled(case.id, case.version, True, numbers, [doc.sha256 for doc in fresh])

    def _attach_new_scans(
        self, case_id: UUID, documents: Sequence[IncomingDocument], act: Act
    ) -> ScansFiled | None:
        with self._store.case_lock(case_id):
            self._store.uncache_case(case_id)
            case = self._store.get_case(case_id)
            on_file = {doc.sha256 for doc in case.documents if doc.source == "scan"}
            fresh = [doc for doc in _distinct_by_hash(documents) if doc.sha256 not in on_file]
            if not fresh:
                self._store.cache_case(case)
                return ScansFiled(case_id, case.version, False, [], [])
            numbers = [_attach_scan(case, document, act) for document in fresh]
            self._store_files(fresh, owner=case_id)
            try:
                with self._store.store_errors():
                    self._store.save(case)
            except IntegrityError:
                return None  # changed meanwhile: look again
            self._store.cache_case(case)
        return ScansFiled(case_id, case.version, False, numbers, [doc.sha256 for doc in fresh])

    # -------------------------------------------------- contact form submissions

    @gives_back_unwritten_ids
    def submit_contact_form(
        self,
        *,
        office_id: str,
        topic: str,
        message: str,
        contact: ContactDetails,
        files: Sequence[IncomingDocument],
        by: str = PUBLIC_APPLICANT,
        at: datetime | None = None,
        also_record: Callable[[UUID], Any] | None = None,
    ) -> SubmissionRecorded[str]:
        """Record a contact form submission; returns the receipt reference for the sender.

        ``also_record``: makes another aggregate from the submission's id, saved in the
        same transaction (an online application's claim, :mod:`service_notices`); an
        ``IntegrityError`` on it reaches the caller.

        All or nothing: every rule is checked before any file is stored, the files are
        stored before the submission is recorded, and the submission and its receipt are
        recorded in one transaction. The reference is stored only hashed; it is not the
        submission's id (which caseworkers see).

        Under an idempotency key, the receipt is recorded with the key (sealed with the
        client's key): the retry of a request whose answer was lost gets it back, and no
        second submission is made.
        """
        self._catalogue.check_topic("topic", topic)
        replayed = self._store.writes.replayed(by)
        if replayed is not None:
            return SubmissionRecorded(
                replayed.case_id, replayed.version, str(replayed.result), replayed.position
            )
        act = self._store.act(by, at)
        submitted_files = [
            SubmittedFile(
                number=index + 1,
                sha256=document.sha256,
                size_bytes=document.size_bytes,
                media_type=document.media_type,
                page_count=document.page_count,
            )
            for index, document in enumerate(files)
        ]
        stored = False
        # One id for every attempt: the files are stored once, encrypted for it.
        submission_id = self._store.new_personal_id()
        for _attempt in range(_MAX_SUBMISSION_SAVE_ATTEMPTS):
            symbols = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_SYMBOLS))
            receipt_sha256 = hash_receipt(symbols)
            submission = ContactSubmission.submit(
                submission_id=submission_id,
                office_id=office_id,
                receipt_sha256=receipt_sha256,
                topic=topic,
                message=message,
                contact=contact,
                files=submitted_files,
                file_names=[document.name for document in files],
                act=act,
            )
            claim = SubmissionReceipt.claim(
                receipt_sha256=receipt_sha256, submission_id=submission.id, act=act
            )
            if not stored:
                self._store_files(files, owner=submission_id)
                stored = True
            extra = [] if also_record is None else [also_record(submission.id)]
            self._store.writes.note(submission.id, submission.version, format_receipt(symbols))
            try:
                with self._store.store_errors():
                    recordings = self._store.save(submission, claim, *extra)
            except IntegrityError:
                if extra:
                    raise  # the caller's aggregate conflicts (a receipt's never does)
                continue  # two equal 100-bit receipts: never, but a new one costs nothing
            except OutcomeUnknown:
                # Perhaps recorded (the retry with the key finds out): not orphans yet.
                logger.warning(
                    "a contact form submission may not have been recorded; if not, its %d "
                    "stored files are orphans for the sweep",
                    len(files),
                )
                raise
            except StoreUnavailable:
                logger.warning(
                    "a contact form submission was not recorded; its %d stored files are "
                    "orphans for the sweep",
                    len(files),
                )
                raise
            return SubmissionRecorded(
                submission.id,
                submission.version,
                format_receipt(symbols),
                last_position(recordings),
            )
        msg = "could not record the submission"
        raise StoreUnavailable(msg)

    def get_submission(
        self, submission_id: UUID, *, version: int | None = None
    ) -> ContactSubmission:
        found = self._store.find(submission_id, ContactSubmission, version=version)
        if found is None:
            raise SubmissionNotFound(submission_id)
        return found

    def submission_events(
        self, submission_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[ContactSubmission.Event]:
        """The submission's events in order, after ``after_version``."""
        return self._store.events_of(
            submission_id,
            ContactSubmission.Event,
            SubmissionNotFound(submission_id),
            after_version,
            limit,
        )

    def find_submission_by_receipt(self, receipt: str) -> UUID:
        """The submission whose receipt reference this is, as the sender quotes it."""
        symbols = canonical_receipt(receipt)
        if symbols is None:
            raise SubmissionNotFound
        claim = self._store.find(SubmissionReceipt.id_for(hash_receipt(symbols)), SubmissionReceipt)
        if claim is None:
            raise SubmissionNotFound
        return UUID(claim.submission_id)

    def list_untriaged_submissions(
        self,
        *,
        office_ids: Collection[str] | None,
        after_position: int = 0,
        limit: int = 100,
    ) -> SubmissionPage:
        """Untriaged submissions of ``office_ids`` (None: all), oldest first.

        STOPGAP, until the triage worklist (a read model of the projection engine)
        exists: this scans the log for submissions, ``limit`` at a time, and loads each
        one to see whether it still waits. A page may hold fewer than ``limit`` (triaged
        ones and other offices' are skipped); ``more`` says whether to go on. It reads
        every submission ever made, so it slows down as they accumulate: replace it.
        """
        topic = get_topic(ContactSubmission.Submitted)
        with self._store.store_errors():
            notifications = self._store.recorder.select_notifications(
                start=min(after_position, MAX_VERSION),
                limit=limit,
                topics=[topic],
                inclusive_of_start=False,
            )
        waiting = []
        for notification in notifications:
            submission = self.get_submission(UUID(str(notification.originator_id)))
            if submission.is_untriaged and (
                office_ids is None or submission.office_id in office_ids
            ):
                waiting.append(submission)
        return SubmissionPage(
            submissions=waiting,
            last_position=notifications[-1].id if notifications else None,
            more=len(notifications) == limit,
        )

    def link_submission_to_case(
        self,
        submission_id: UUID,
        *,
        expected_version: int,
        by: str,
        case_id: UUID,
        at: datetime | None = None,
    ) -> SubmissionRecorded[None]:
        """Link the submission to the sender's case file, which must be of its office."""

        def link(submission: ContactSubmission, act: Act) -> None:
            self._check_case_of_office(case_id, submission.office_id)
            submission.link_to_case_file(case_id=case_id, case_opened=False, act=act)

        return self._change_submission(submission_id, expected_version, by, at, link)

    @gives_back_unwritten_ids
    def open_case_from_submission(
        self,
        submission_id: UUID,
        *,
        expected_version: int,
        by: str,
        master_data: MasterData,
        reference: str | None = None,
        at: datetime | None = None,
    ) -> SubmissionRecorded[CaseOpenedFromSubmission]:
        """Open the sender's case file in the submission's office and link it, at once.

        Case file, file number and link are saved in one transaction.
        """
        act = self._store.act(by, at)
        for _attempt in range(MAX_GENERATED_REFERENCE_ATTEMPTS):
            submission = self._submission_at(submission_id, expected_version)
            case_id = self._store.new_personal_id()
            chosen = reference or generated_reference(case_id, act)
            # The file is opened for the submission's matter: as of its receipt at the
            # latest, so the procedure it becomes (received as of the submission, see
            # turn_submission_into_procedure) does not precede the file's opening.
            opened = Act(
                by=act.by, at=min(act.at, submission.submitted_at), recorded_at=act.recorded_at
            )
            case = CaseFile.open(
                case_id=case_id,
                office_id=submission.office_id,
                reference=chosen,
                master_data=master_data,
                act=opened,
            )
            claim = CaseReference.claim(
                office_id=submission.office_id, reference=chosen, case_id=case_id, act=act
            )
            submission.link_to_case_file(case_id=case_id, case_opened=True, act=act)
            try:
                with self._store.store_errors():
                    recordings = self._store.save(case, claim, submission)
            except IntegrityError:
                self._submission_at(submission_id, expected_version)  # 412 if it moved on
                if reference is not None:
                    msg = "this office already has a case file with this reference"
                    raise DuplicateReference(msg) from None
                continue
            return SubmissionRecorded(
                submission_id,
                submission.version,
                CaseOpenedFromSubmission(case_id, chosen, case.version),
                last_position(recordings),
            )
        msg = "could not generate a unique reference"
        raise StoreUnavailable(msg)

    def turn_submission_into_procedure(
        self,
        submission_id: UUID,
        *,
        expected_version: int,
        by: str,
        topic: str | None = None,
        legal_basis: str | None = None,
        document_kind: str = CONTACT_FORM_DOCUMENT_KIND,
        at: datetime | None = None,
    ) -> SubmissionRecorded[ProcedureFromSubmission]:
        """Receive a procedure on the linked case file, with the files as its documents.

        ``topic`` defaults to the one the sender chose; ``legal_basis`` must be one of
        the topic's. The procedure and documents are received as of the submission's
        time (what counts for deadlines such as § 81 (4) AufenthG), by the caseworker;
        the case file's and the submission's events are saved in one transaction.
        """
        act = self._store.act(by, at)
        require_code("document_kind", document_kind)
        for _attempt in range(_MAX_SUBMISSION_SAVE_ATTEMPTS):
            submission = self._submission_at(submission_id, expected_version)
            case_id = UUID(submission.check_may_open_procedure())
            chosen_topic = topic or submission.topic
            self._catalogue.check_topic("topic", chosen_topic)
            self._catalogue.check_fits_topic(chosen_topic, legal_basis)
            received = Act(by=act.by, at=submission.submitted_at, recorded_at=act.recorded_at)
            with self._store.case_lock(case_id):
                self._store.uncache_case(case_id)
                case = self._store.get_case(case_id)
                procedure_number = case.receive_procedure(
                    channel="contact_form",
                    topic=chosen_topic,
                    legal_basis=legal_basis,
                    act=received,
                )
                document_numbers = [
                    case.attach_document(
                        kind=document_kind,
                        sha256=submitted.sha256,
                        size_bytes=submitted.size_bytes,
                        media_type=submitted.media_type,
                        page_count=submitted.page_count,
                        source="contact_form",
                        act=received,
                    )
                    for submitted in submission.files
                ]
                if self._documents is not None:
                    # The files become the case file's documents: stored for the file's
                    # person too (the submission's copies go with the submission's key).
                    for submitted in submission.files:
                        self._documents.copy(
                            StoredDocument(submitted.sha256, submitted.size_bytes),
                            from_owner=submission_id,
                            to_owner=case_id,
                        )
                submission.turn_into_procedure(
                    procedure_number=procedure_number,
                    topic=chosen_topic,
                    procedure_kind=self._catalogue.procedure_kind_of(chosen_topic),
                    legal_basis=legal_basis,
                    document_numbers=document_numbers,
                    act=act,
                )
                try:
                    with self._store.store_errors():
                        recordings = self._store.save(case, submission)
                except IntegrityError:
                    # The submission moved on (412), or the case file did: then again.
                    self._submission_at(submission_id, expected_version)
                    continue
                self._store.cache_case(case)
            return SubmissionRecorded(
                submission_id,
                submission.version,
                ProcedureFromSubmission(case_id, procedure_number, document_numbers, case.version),
                last_position(recordings),
            )
        msg = "the procedure could not be recorded: the case file kept changing"
        raise StoreUnavailable(msg)

    def answer_submission(
        self,
        submission_id: UUID,
        *,
        expected_version: int,
        by: str,
        reply: str,
        at: datetime | None = None,
    ) -> SubmissionRecorded[None]:
        """Record the office's reply to the sender (sent by e-mail); ends the triage."""
        return self._change_submission(
            submission_id,
            expected_version,
            by,
            at,
            lambda submission, act: submission.answer(reply=reply, act=act),
        )

    def dismiss_submission(
        self,
        submission_id: UUID,
        *,
        expected_version: int,
        by: str,
        reason: DismissalReason,
        note: str | None = None,
        at: datetime | None = None,
    ) -> SubmissionRecorded[None]:
        return self._change_submission(
            submission_id,
            expected_version,
            by,
            at,
            lambda submission, act: submission.dismiss(reason=reason, note=note, act=act),
        )

    def _submission_at(self, submission_id: UUID, expected_version: int) -> ContactSubmission:
        submission = self.get_submission(submission_id)
        if submission.version != expected_version:
            raise SubmissionChanged(submission_id, expected_version, submission.version)
        return submission

    def _check_case_of_office(self, case_id: UUID, office_id: str) -> None:
        try:
            case_office: str | None = self._store.get_case(case_id).office_id
        except CaseNotFound:
            case_office = None
        if case_office != office_id:
            # The same words whether it does not exist or is another office's.
            raise InvalidValue("case_id", "no case file with this id in the submission's office")

    def _change_submission(
        self,
        submission_id: UUID,
        expected_version: int,
        by: str,
        at: datetime | None,
        command: Callable[[ContactSubmission, Act], T],
    ) -> SubmissionRecorded[T]:
        """Run one command on the submission at ``expected_version`` and save its events."""
        act = self._store.act(by, at)
        submission = self._submission_at(submission_id, expected_version)
        result = command(submission, act)
        try:
            with self._store.store_errors():
                recordings = self._store.save(submission)
        except IntegrityError:
            actual = self.get_submission(submission_id).version
            raise SubmissionChanged(submission_id, expected_version, actual) from None
        return SubmissionRecorded(
            submission_id, submission.version, result, last_position(recordings)
        )


def _distinct_by_hash(documents: Sequence[IncomingDocument]) -> list[IncomingDocument]:
    """The same scan twice in one legacy file is filed once."""
    seen: set[str] = set()
    distinct = []
    for document in documents:
        if document.sha256 not in seen:
            seen.add(document.sha256)
            distinct.append(document)
    return distinct


def _attach_scan(case: CaseFile, document: IncomingDocument, act: Act) -> int:
    return case.attach_document(
        kind=document.kind,
        sha256=document.sha256,
        size_bytes=document.size_bytes,
        media_type=document.media_type,
        page_count=document.page_count,
        source="scan",
        act=act,
    )
