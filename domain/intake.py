"""The contact form submission: what a person sent through the office's online contact form.

Most procedures start here. A person without an account chooses a topic, writes a message,
gives their contact data and uploads documents; they get a receipt with a reference they
can quote. Caseworkers then triage the submission:

1. link it to the person's case file, an existing one or one opened from the submission;
2. turn it into a procedure on that case file (the files become documents of the case,
   with source ``contact_form``), or answer it, or set it aside (spam, a duplicate,
   withdrawn by the sender). Each of the three ends the triage.

A submission is an aggregate of its own: the sender may have no case file yet, and the
submission must exist before a caseworker decides where it belongs. It references its
files only (hash, size, media type, pages); their bytes live in the document store and
are stored before the submission is recorded, so no event points at a missing file.

As in :mod:`domain.case_file`, each command checks its rules first and only then triggers
an event; ``apply`` only changes state.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.case_file import MAX_FREE_TEXT, MAX_PAGES, require_code
from domain.errors import (
    InvalidValue,
    NothingToCorrect,
    SubmissionAlreadyTriaged,
    SubmissionFileNotFound,
    SubmissionNotLinked,
)
from domain.personal import Personal
from domain.values import (
    DismissalReason,
    LawfulEvent,
    SubmissionStatus,
    UploadMediaType,
    require_choice,
    require_email,
    require_file_name,
    require_sha256,
    require_text,
)

MAX_SUBMITTED_FILES: Final = 50
"""The domain's own bound; deployments set a lower one for the form (settings)."""
MAX_KNOWN_FILE_NUMBER: Final = 40
_OLDEST_BIRTH_DATE: Final = date(1900, 1, 1)
_RECEIPT_NAMESPACE: Final = UUID("3b1f6a52-94c7-4d0e-8f2a-6c5e0d7b9a18")

RECEIPT_PREFIX: Final = "KF"
RECEIPT_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Crockford's base 32: no I, L, O or U, so a reference read out on the phone survives."""
RECEIPT_SYMBOLS: Final = 20
"""100 random bits: not guessable, and still short enough to quote."""
_RECEIPT_GROUP: Final = 5
_READ_ALIKE: Final = str.maketrans({"I": "1", "L": "1", "O": "0"})


# -- State. Plain mutable dataclasses, because snapshots store them; they are changed
# -- only by event ``apply`` methods.


@dataclass
class ContactDetails:
    """Who wrote, as they told it; unverified until a caseworker links a case file."""

    surname: str
    given_names: str
    email: str
    date_of_birth: date | None = None
    file_number: str | None = None
    """The file number (Aktenzeichen) the person says they have, as they typed it."""


@dataclass
class SubmittedFile:
    """A file that came with the submission; its bytes are in the document store."""

    number: int
    sha256: str
    size_bytes: int
    media_type: str
    page_count: int


@dataclass
class SubmissionReply:
    text: str
    by: str
    at: datetime


class ContactSubmission(Aggregate):
    """One submission of the online contact form."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.receipt_sha256: str = ""
        self.topic: str = ""
        self.message: str = ""
        self.contact: ContactDetails = ContactDetails("", "", "")
        self.files: list[SubmittedFile] = []
        self.file_names: list[str] = []
        self.submitted_at: datetime = datetime.min
        self.case_id: str | None = None
        self.case_opened_from_submission: bool = False
        self.procedure_number: int | None = None
        self.procedure_topic: str | None = None
        self.procedure_kind: str | None = None
        self.legal_basis: str | None = None
        self.document_numbers: list[int] = []
        self.reply: SubmissionReply | None = None
        self.dismissal_reason: DismissalReason | None = None
        self.triaged_at: datetime | None = None
        self.triaged_by: str | None = None

    # ------------------------------------------------------------------ events

    class Event(LawfulEvent, Aggregate.Event):
        """Base of every submission event: who acted (``by``) and when (``at``)."""

        by: str
        at: datetime

    class Submitted(Event, Aggregate.Created):
        office_id: str
        receipt_sha256: str
        """The hash of the sender's receipt reference; the reference itself is never stored."""
        topic: str
        # Personal: the message and the file names say what the person's matter is.
        message: Personal[str]
        surname: Personal[str]
        given_names: Personal[str]
        email: Personal[str]
        date_of_birth: Personal[date | None]
        file_number: Personal[str | None]
        files: list[SubmittedFile]
        """Hash, size, media type and pages only: what the orphan sweep and statistics read."""
        file_names: Personal[list[str]]

        def apply(self, submission: ContactSubmission) -> None:
            submission.office_id = self.office_id
            submission.receipt_sha256 = self.receipt_sha256
            submission.topic = self.topic
            submission.message = self.message
            submission.contact = ContactDetails(
                surname=self.surname,
                given_names=self.given_names,
                email=self.email,
                date_of_birth=self.date_of_birth,
                file_number=self.file_number,
            )
            submission.files = list(self.files)
            submission.file_names = list(self.file_names)
            submission.submitted_at = self.at

    class LinkedToCaseFile(Event):
        """The submission belongs to this case file (a later link, before triage ends,
        replaces it); ``case_opened``: the case file was opened from the submission."""

        case_id: str
        previous_case_id: str | None
        case_opened: bool

        def apply(self, submission: ContactSubmission) -> None:
            submission.case_id = self.case_id
            submission.case_opened_from_submission = self.case_opened

    class TurnedIntoProcedure(Event):
        """A procedure was received on the linked case file, with the files as documents."""

        case_id: str
        procedure_number: int
        topic: str
        procedure_kind: str
        legal_basis: str | None
        document_numbers: list[int]
        """The numbers the submission's files got on the case file, in file order."""

        def apply(self, submission: ContactSubmission) -> None:
            submission.procedure_number = self.procedure_number
            submission.procedure_topic = self.topic
            submission.procedure_kind = self.procedure_kind
            submission.legal_basis = self.legal_basis
            submission.document_numbers = list(self.document_numbers)
            submission.triaged_at = self.at
            submission.triaged_by = self.by

    class Answered(Event):
        """The office replied to the sender (by e-mail, outside Akte); no procedure."""

        reply: Personal[str]

        def apply(self, submission: ContactSubmission) -> None:
            submission.reply = SubmissionReply(text=self.reply, by=self.by, at=self.at)
            submission.triaged_at = self.at
            submission.triaged_by = self.by

    class Dismissed(Event):
        reason: DismissalReason
        note: Personal[str | None]

        def apply(self, submission: ContactSubmission) -> None:
            submission.dismissal_reason = self.reason
            submission.triaged_at = self.at
            submission.triaged_by = self.by

    # ----------------------------------------------------------------- queries

    @property
    def status(self) -> SubmissionStatus:
        if self.dismissal_reason is not None:
            return "dismissed"
        if self.procedure_number is not None:
            return "procedure_opened"
        if self.reply is not None:
            return "answered"
        if self.case_id is not None:
            return "linked"
        return "untriaged"

    @property
    def is_untriaged(self) -> bool:
        """Waiting for a caseworker: neither turned into a procedure, answered nor dismissed."""
        return self.triaged_at is None

    def file(self, number: int) -> SubmittedFile:
        if 1 <= number <= len(self.files):
            return self.files[number - 1]
        raise SubmissionFileNotFound(f"file {number} did not come with this submission")

    # ---------------------------------------------------------------- commands

    @classmethod
    def submit(
        cls,
        *,
        submission_id: UUID,
        office_id: str,
        receipt_sha256: str,
        topic: str,
        message: str,
        contact: ContactDetails,
        files: list[SubmittedFile],
        file_names: list[str],
        act: Act,
    ) -> ContactSubmission:
        check_submission(
            office_id=office_id,
            receipt_sha256=receipt_sha256,
            topic=topic,
            message=message,
            contact=contact,
            files=files,
            file_names=file_names,
            today=act.at.date(),
        )
        return cls._create(
            cls.Submitted,
            id=submission_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            receipt_sha256=receipt_sha256,
            topic=topic,
            message=message,
            surname=contact.surname,
            given_names=contact.given_names,
            email=contact.email,
            date_of_birth=contact.date_of_birth,
            file_number=contact.file_number,
            files=list(files),
            file_names=list(file_names),
        )

    def _record(self, event_class: type[ContactSubmission.Event], act: Act, **fields: Any) -> None:
        self.trigger_event(event_class, by=act.by, at=act.at, timestamp=act.recorded_at, **fields)

    def link_to_case_file(self, *, case_id: UUID, case_opened: bool, act: Act) -> None:
        """Link to the sender's case file; the caller has checked it is of this office."""
        self.check_untriaged()
        if str(case_id) == self.case_id:
            raise NothingToCorrect("the submission is already linked to this case file")
        self._record(
            self.LinkedToCaseFile,
            act,
            case_id=str(case_id),
            previous_case_id=self.case_id,
            case_opened=case_opened,
        )

    def turn_into_procedure(
        self,
        *,
        procedure_number: int,
        topic: str,
        procedure_kind: str,
        legal_basis: str | None,
        document_numbers: list[int],
        act: Act,
    ) -> None:
        """Record the procedure the linked case file received from this submission."""
        case_id = self.check_may_open_procedure()
        require_code("topic", topic)
        require_code("procedure_kind", procedure_kind)
        if legal_basis is not None:
            require_code("legal_basis", legal_basis)
        if procedure_number < 1:
            raise InvalidValue("procedure_number", "must be positive")
        if len(document_numbers) != len(self.files):
            raise InvalidValue("document_numbers", "must give one document number per file")
        self._record(
            self.TurnedIntoProcedure,
            act,
            case_id=case_id,
            procedure_number=procedure_number,
            topic=topic,
            procedure_kind=procedure_kind,
            legal_basis=legal_basis,
            document_numbers=list(document_numbers),
        )

    def answer(self, *, reply: str, act: Act) -> None:
        """The office answered the sender instead of opening a procedure."""
        self.check_untriaged()
        require_text("reply", reply, max_length=MAX_FREE_TEXT, line_breaks=True)
        self._record(self.Answered, act, reply=reply)

    def dismiss(self, *, reason: DismissalReason, note: str | None, act: Act) -> None:
        """Set aside: spam, a duplicate of another submission, or withdrawn by the sender."""
        self.check_untriaged()
        require_choice("reason", reason, DismissalReason)
        if note is not None:
            require_text("note", note, max_length=MAX_FREE_TEXT, line_breaks=True)
        self._record(self.Dismissed, act, reason=reason, note=note)

    # ------------------------------------------------------------------ checks

    def check_untriaged(self) -> None:
        if not self.is_untriaged:
            raise SubmissionAlreadyTriaged(f"the submission is already {self.status}")

    def check_may_open_procedure(self) -> str:
        """Untriaged and linked; returns the linked case file's id."""
        self.check_untriaged()
        if self.case_id is None:
            raise SubmissionNotLinked(
                "link the submission to a case file (or open one from it) first"
            )
        return self.case_id


def check_contact(contact: ContactDetails, *, today: date) -> None:
    require_text("surname", contact.surname)
    require_text("given_names", contact.given_names)
    require_email("email", contact.email)
    if contact.date_of_birth is not None and not (
        _OLDEST_BIRTH_DATE <= contact.date_of_birth <= today
    ):
        raise InvalidValue("date_of_birth", "must lie between 1900 and today")
    if contact.file_number is not None:
        require_text("file_number", contact.file_number, max_length=MAX_KNOWN_FILE_NUMBER)


def check_submitted_file(field: str, submitted: SubmittedFile, number: int) -> None:
    if submitted.number != number:
        raise InvalidValue(field, f"must be file number {number}")
    require_sha256(f"{field}.sha256", submitted.sha256)
    require_choice(f"{field}.media_type", submitted.media_type, UploadMediaType)
    if submitted.size_bytes <= 0:
        raise InvalidValue(f"{field}.size_bytes", "must be positive")
    if not 1 <= submitted.page_count <= MAX_PAGES:
        raise InvalidValue(f"{field}.page_count", f"must be between 1 and {MAX_PAGES}")


def check_submission(
    *,
    office_id: str,
    receipt_sha256: str,
    topic: str,
    message: str,
    contact: ContactDetails,
    files: list[SubmittedFile],
    file_names: list[str],
    today: date,
) -> None:
    """Every rule of a submission; run before its files are stored, so that a submission
    refused for its contents leaves no file behind either."""
    require_code("office_id", office_id)
    require_sha256("receipt_sha256", receipt_sha256)
    require_code("topic", topic)
    require_text("message", message, max_length=MAX_FREE_TEXT, line_breaks=True)
    check_contact(contact, today=today)
    if len(files) > MAX_SUBMITTED_FILES:
        raise InvalidValue("files", f"must be at most {MAX_SUBMITTED_FILES}")
    if len(file_names) != len(files):
        raise InvalidValue("files", "every file needs its name")
    for index, (submitted, name) in enumerate(zip(files, file_names, strict=True)):
        check_submitted_file(f"files.{index}", submitted, index + 1)
        require_file_name(f"files.{index}", name)


class SubmissionReceipt(Aggregate):
    """Claims the hash of one receipt reference for one submission.

    Like :class:`domain.commitment_declaration.DeclarationReference`: the reference is
    shown to the sender once and never stored; hashing what they quote finds the
    submission. Saved in the same transaction as the submission.
    """

    def __init__(self) -> None:
        self.submission_id: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Claimed(Event, Aggregate.Created):
        submission_id: str

        def apply(self, claim: SubmissionReceipt) -> None:
            claim.submission_id = self.submission_id

    @staticmethod
    def id_for(receipt_sha256: str) -> UUID:
        return uuid5(_RECEIPT_NAMESPACE, receipt_sha256)

    @classmethod
    def claim(cls, *, receipt_sha256: str, submission_id: UUID, act: Act) -> SubmissionReceipt:
        return cls._create(
            cls.Claimed,
            id=cls.id_for(receipt_sha256),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            submission_id=str(submission_id),
        )


# -- Receipt references: ``KF-XXXXX-XXXXX-XXXXX-XXXXX``, 20 symbols of Crockford's base 32.


def format_receipt(symbols: str) -> str:
    """The reference as the sender sees it, in groups of five."""
    if len(symbols) != RECEIPT_SYMBOLS or any(s not in RECEIPT_ALPHABET for s in symbols):
        raise InvalidValue("receipt", f"must be {RECEIPT_SYMBOLS} symbols of the receipt alphabet")
    groups = [symbols[i : i + _RECEIPT_GROUP] for i in range(0, RECEIPT_SYMBOLS, _RECEIPT_GROUP)]
    return "-".join([RECEIPT_PREFIX, *groups])


def canonical_receipt(quoted: str) -> str | None:
    """The 20 symbols of a reference as quoted (any case, with or without dashes or
    spaces, I/L read as 1 and O as 0); ``None`` when it cannot be a receipt."""
    if len(quoted) > 2 * (RECEIPT_SYMBOLS + len(RECEIPT_PREFIX)):
        return None
    text = "".join(quoted.split()).replace("-", "").upper()
    # Only a prefix on top of the 20 symbols is one: symbols may begin with "KF" too.
    if len(text) == RECEIPT_SYMBOLS + len(RECEIPT_PREFIX):
        text = text.removeprefix(RECEIPT_PREFIX)
    text = text.translate(_READ_ALIKE)
    if len(text) != RECEIPT_SYMBOLS or any(symbol not in RECEIPT_ALPHABET for symbol in text):
        return None
    return text


def hash_receipt(symbols: str) -> str:
    """The sha256 of a receipt's canonical symbols, as the submission records it.

    A plain hash suffices: 100 random bits cannot be found again by guessing from it.
    """
    return hashlib.sha256(f"{RECEIPT_PREFIX}-{symbols}".encode()).hexdigest()
