"""The application service: every command and query on case files goes through here.

Commands load the case file, check the expected version (optimistic concurrency), call
one domain method and save the new events in one transaction. Library errors are
translated here and never leave this module.
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO, Final, Generic, Protocol, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    PersistenceError,
    Recording,
    Transcoder,
)
from eventsourcing.utils import get_topic

from adapters.documents.store import DocumentStore, StoredDocument
from adapters.payment.provider import PaymentOrder, PaymentProvider
from adapters.personal_data.mapper import PersonalDataMapper, SkippingSnapshotStore
from adapters.personal_data.setup import PersonalDataConfig
from adapters.reference.catalogue import Catalogue
from adapters.store.transcoding import register_akte_transcodings
from appointments_service import AppointmentsMixin
from data_protection_service import DataProtectionMixin, gives_back_unwritten_ids
from domain.acts import Act
from domain.case_file import CaseFile, MasterData, require_code
from domain.case_reference import CaseReference
from domain.commitment_declaration import (
    CommitmentDeclaration,
    DeclarationReference,
    Guarantor,
    InvitedPerson,
    PaymentAttempt,
    PaymentTransaction,
    SettlementOutcome,
    hash_reference,
)
from domain.errors import InvalidValue, RuleViolation
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
from domain.read_access import ReadAccess
from domain.values import (
    CONTACT_FORM_DOCUMENT_KIND,
    Channel,
    ClosureReason,
    CounterpartKind,
    DecisionOutcome,
    Direction,
    DismissalReason,
    DocumentSource,
    FictionEndReason,
    FictionKind,
    InquiryKind,
    PaymentMethod,
    PaymentOutcome,
    ResidenceDocumentEndReason,
    ResidenceDocumentKind,
    Validity,
    VisitPurpose,
    require_choice,
)

T = TypeVar("T")
A = TypeVar("A")
E = TypeVar("E")

logger = logging.getLogger("akte.service")

DEFAULT_SNAPSHOT_INTERVAL = 50
DEFAULT_CASE_CACHE_SIZE = 1000
_MAX_VERSION = 2**62
"""Beyond any real case file, and inside the stores' 64-bit integer columns."""
_CASE_LOCK_STRIPES = 64
_MAX_GENERATED_REFERENCE_ATTEMPTS = 5


class ServiceError(Exception):
    """Base of the errors the service raises besides domain errors."""


class CaseNotFound(ServiceError):
    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"case file {case_id} does not exist")
        self.case_id = case_id


class ConcurrentModification(ServiceError):
    """The case file changed since the version the caller based its command on."""

    def __init__(self, case_id: UUID, expected: int, actual: int) -> None:
        super().__init__(
            f"case file {case_id} is at version {actual}, the command expected version {expected}"
        )
        self.case_id = case_id
        self.expected = expected
        self.actual = actual


class CaseVersionNotFound(ServiceError):
    """The case file exists, but not at the version or time asked for."""

    def __init__(self, case_id: UUID, detail: str) -> None:
        super().__init__(f"case file {case_id} {detail}")
        self.case_id = case_id


class ReferenceNotFound(ServiceError):
    def __init__(self) -> None:
        super().__init__("no case file with this file number in this office")


class DuplicateReference(RuleViolation):
    code = "duplicate-reference"


class StoreUnavailable(ServiceError):
    """The event store could not be reached or failed; nothing was recorded."""


class Clock(Protocol):
    def __call__(self) -> datetime: ...


def system_clock() -> datetime:
    return datetime.now(tz=UTC)


_BUSINESS_TIME: ContextVar[datetime | None] = ContextVar("akte_business_time", default=None)


@contextmanager
def business_time(at: datetime) -> Iterator[None]:
    """Commands without an ``at`` of their own (the appointment commands: they happen
    "now") take ``at`` as their business time inside this block; the recorded time stays
    the clock's. For entering what happened earlier, like the office-year simulator."""
    token = _BUSINESS_TIME.set(at)
    try:
        yield
    finally:
        _BUSINESS_TIME.reset(token)


@dataclass(frozen=True)
class Recorded(Generic[T]):
    """What a command recorded: the case file, its new version and the command's result."""

    case_id: UUID
    version: int
    result: T
    position: int
    """Notification id of the last event written: read models that have processed this
    position reflect the command (read-your-writes)."""


PUBLIC_APPLICANT: Final = "public"
"""Who acts on a commitment declaration through the public routes without a token."""
PAYMENT_PROVIDER_USER: Final = "payment-provider"
"""Who acts when the payment platform reports a payment."""
_MAX_DECLARATION_SAVE_ATTEMPTS: Final = 5
_SECRET_REFERENCE_BYTES: Final = 16
"""128 random bits: not guessable, and short enough to type from a letter."""
_SECRET_REFERENCE: Final = re.compile(r"[A-Za-z0-9_-]{22}")
_PAYMENT_DESCRIPTION: Final = "Gebühr Verpflichtungserklärung (§ 47 Abs. 1 Nr. 12 AufenthV)"


class DeclarationNotFound(ServiceError):
    """No such commitment declaration, or none with the secret reference presented."""

    def __init__(self, declaration_id: UUID | None = None) -> None:
        if declaration_id is None:
            message = "no commitment declaration has this reference"
        else:
            message = f"commitment declaration {declaration_id} does not exist"
        super().__init__(message)
        self.declaration_id = declaration_id


class UnknownPaymentTransaction(ServiceError):
    def __init__(self) -> None:
        super().__init__("no payment of this provider has this transaction id")


class DeclarationChanged(ConcurrentModification):
    """The declaration changed since the version the caller based its command on."""

    def __init__(self, declaration_id: UUID, expected: int, actual: int) -> None:
        super().__init__(declaration_id, expected, actual)
        self.args = (
            f"commitment declaration {declaration_id} is at version {actual}, "
            f"the command expected version {expected}",
        )


@dataclass(frozen=True)
class DeclarationRecorded(Generic[T]):
    """What a command on a commitment declaration did: its version then and the result."""

    declaration_id: UUID
    version: int
    result: T
    position: int | None
    """Notification id of the last event written; ``None`` when nothing was written."""


@dataclass(frozen=True)
class StartedPayment:
    payment: PaymentAttempt
    created: bool
    """False: a payment was still open at the provider, and this is that one."""


@dataclass(frozen=True)
class DeclarationPage:
    declarations: list[CommitmentDeclaration]
    last_position: int | None
    """Where the page's scan of the log ended: the cursor of the next page."""
    more: bool
    """Whether the scan stopped at the page size, so that later ones may follow."""


# -------------------------------------------- documents and contact form submissions

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


def project_case(case: CaseFile | None, events: Iterable[Any]) -> CaseFile | None:
    """Replay events onto a case file.

    The library's default projector checks each event against a runtime protocol, which
    costs a third of a load on Python 3.11; our events are all ``CaseFile.Event``.
    """
    for event in events:
        case = cast(CaseFile | None, event.mutate(case))
    return case


class _CaseCache:
    """The most recently used case files at their stored version (LRU)."""

    def __init__(self, maxsize: int) -> None:
        self._maxsize = maxsize
        self._cases: OrderedDict[UUID, CaseFile] = OrderedDict()
        self._lock = threading.Lock()

    def pop(self, case_id: UUID) -> CaseFile | None:
        with self._lock:
            return self._cases.pop(case_id, None)

    def put(self, case: CaseFile) -> None:
        if self._maxsize <= 0:
            return
        with self._lock:
            self._cases[case.id] = case
            self._cases.move_to_end(case.id)
            while len(self._cases) > self._maxsize:
                self._cases.popitem(last=False)


class AkteService(DataProtectionMixin, AppointmentsMixin, Application[UUID]):
    """Commands and queries on case files, over the event store chosen by the environment."""

    name = "Akte"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        catalogue: Catalogue,
        clock: Clock = system_clock,
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
        case_cache_size: int = DEFAULT_CASE_CACHE_SIZE,
        documents: DocumentStore | None = None,
        personal_data: PersonalDataConfig | None = None,
    ) -> None:
        """``documents``: where uploaded and scanned files are kept; the service closes it.
        ``personal_data``: per-person encryption (None: the library's plain mapper)."""
        library_env = dict(env or {})
        if snapshot_interval > 0:
            library_env["IS_SNAPSHOTTING_ENABLED"] = "y"
        self._personal_data = personal_data
        super().__init__(library_env)
        self.catalogue = catalogue
        self.clock = clock
        self._attach_data_keys()
        self._documents = documents
        self._case_cache = _CaseCache(case_cache_size)
        self._case_locks = [threading.Lock() for _ in range(_CASE_LOCK_STRIPES)]
        # The library declares this a ClassVar but reads it through the instance when it
        # saves; per instance, the interval can come from settings.
        self.snapshotting_intervals = (  # type: ignore[misc]
            {CaseFile: snapshot_interval} if snapshot_interval else {}
        )

    @property
    def documents(self) -> DocumentStore:
        """The document store; commands that store files need one."""
        if self._documents is None:
            msg = "this service was built without a document store"
            raise DocumentStoreMissing(msg)
        return self._documents

    def close(self) -> None:
        try:
            self._release_reserved_keys()
            super().close()
        finally:
            self._close_data_keys()
            if self._documents is not None:
                self._documents.close()

    def construct_mapper(self) -> Mapper[UUID]:
        if self._personal_data is None:
            return super().construct_mapper()
        return PersonalDataMapper(
            self.construct_transcoder(),
            compressor=self.factory.compressor(),
            cipher=self.factory.cipher(),
            encrypt=self._personal_data.encrypt,
        )

    def construct_snapshot_store(self) -> EventStore[UUID]:
        if self._personal_data is None:
            return super().construct_snapshot_store()
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return SkippingSnapshotStore(mapper=self.mapper, recorder=recorder)

    def construct_transcoder(self) -> Transcoder:
        transcoder = self.factory.transcoder()
        register = getattr(transcoder, "register", None)
        if register is None:
            msg = f"transcoder {type(transcoder).__name__} cannot register transcodings"
            raise TypeError(msg)
        register_akte_transcodings(transcoder)  # type: ignore[arg-type]
        return transcoder

    # ----------------------------------------------------------------- queries

    def get_case(self, case_id: UUID, *, version: int | None = None) -> CaseFile:
        """The case file as it is now (or as it was at ``version``)."""
        # The store also holds the aggregates that claim file numbers: not case files.
        return self._aggregate(
            case_id, CaseFile, CaseNotFound(case_id), version=version, projector=project_case
        )

    def case_events(
        self, case_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[CaseFile.Event]:
        """The events of a case file in order, after ``after_version``."""
        return self._events_of(case_id, CaseFile.Event, CaseNotFound(case_id), after_version, limit)

    def find_case_by_reference(self, office_id: str, reference: str) -> UUID:
        with self._store_errors():
            try:
                claim: object = self.repository.get(CaseReference.id_for(office_id, reference))
            except AggregateNotFoundError:
                raise ReferenceNotFound from None
            if not isinstance(claim, CaseReference):
                raise ReferenceNotFound
            return UUID(claim.case_id)

    # ------------------------------------------------ history and point in time

    def case_head_version(self, case_id: UUID) -> int:
        """The case file's current version, from one read of its last event."""
        with self._store_errors():
            head = list(self.events.get(case_id, desc=True, limit=1))
        if not head or not isinstance(head[0], CaseFile.Event):
            raise CaseNotFound(case_id)
        return head[0].originator_version

    def get_case_at_version(self, case_id: UUID, version: int) -> CaseFile:
        """The case file as it was at ``version`` (from the latest snapshot at or below it).

        Raises :class:`CaseVersionNotFound` for a version it never had (0, beyond its head).
        """
        if version >= 1:
            case = self.get_case(case_id, version=min(version, _MAX_VERSION))
            if case.version == version:
                return case
            head = case.version
        else:
            head = self.get_case(case_id).version
        detail = f"has no version {version}: its versions are 1 to {head}"
        raise CaseVersionNotFound(case_id, detail)

    def case_version_at(self, case_id: UUID, as_of: datetime) -> int:
        """The case file's last version recorded at or before ``as_of``; 0: none was yet.

        As of the *recorded* time (the events' ``timestamp``, read from this service's
        clock when they were recorded), not the business time ``at``: business times may
        be back-dated (a handover recorded the day after), so "the file as of a business
        time" would be a state the system never held and could still change. Recorded
        times rise with a file's versions (a command reads the clock only after the
        version it builds on was saved), so a binary search over the versions finds the
        answer with about log2(versions) single-event reads, however long the file is.
        """
        with self._store_errors():
            head = list(self.events.get(case_id, desc=True, limit=1))
            if not head or not isinstance(head[0], CaseFile.Event):
                raise CaseNotFound(case_id)
            if head[0].timestamp <= as_of:
                return head[0].originator_version
            low, high = 0, head[0].originator_version  # recorded: low <= as_of < high
            while high - low > 1:
                middle = (low + high) // 2
                [event] = self.events.get(case_id, gt=middle - 1, lte=middle, limit=1)
                if cast(CaseFile.Event, event).timestamp <= as_of:
                    low = middle
                else:
                    high = middle
        return low

    def get_case_as_of(self, case_id: UUID, as_of: datetime) -> CaseFile:
        """The case file as it was recorded at ``as_of`` (see :meth:`case_version_at`).

        Raises :class:`CaseVersionNotFound` for a time before the file was opened.
        """
        version = self.case_version_at(case_id, as_of)
        if version == 0:
            [opened] = self.case_events(case_id, limit=1)
            raise CaseVersionNotFound(
                case_id,
                f"did not exist yet at {as_of.isoformat()}: it was opened (recorded) at "
                f"{opened.timestamp.isoformat()}",
            )
        return self.get_case(case_id, version=version)

    def record_read(
        self, *, by: str, endpoint: str, case_id: UUID | None, office_id: str | None
    ) -> int:
        """Log that ``by`` read a case file's personal data (or the access log itself)
        through ``endpoint`` (method and route template); returns the log position."""
        read = ReadAccess.record(
            read_id=uuid4(),
            case_id=case_id,
            office_id=office_id,
            endpoint=endpoint,
            act=self._act(by, None),
        )
        with self._store_errors():
            return _last_position(self.save(read))

    # ---------------------------------------------------------------- commands

    @gives_back_unwritten_ids
    def open_case(
        self,
        *,
        office_id: str,
        master_data: MasterData,
        by: str,
        reference: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[str]:
        """Open a person's case file; returns its reference (file number)."""
        act = self._act(by, at)
        for _attempt in range(_MAX_GENERATED_REFERENCE_ATTEMPTS):
            case_id = self.new_personal_id()
            chosen = reference or _generated_reference(case_id, act)
            case = CaseFile.open(
                case_id=case_id,
                office_id=office_id,
                reference=chosen,
                master_data=master_data,
                act=act,
            )
            claim = CaseReference.claim(
                office_id=office_id, reference=chosen, case_id=case_id, act=act
            )
            try:
                with self._store_errors():
                    recordings = self.save(case, claim)
            except IntegrityError:
                if reference is not None:
                    msg = "this office already has a case file with this reference"
                    raise DuplicateReference(msg) from None
                continue
            return Recorded(case_id, case.version, chosen, _last_position(recordings))
        msg = "could not generate a unique reference"
        raise StoreUnavailable(msg)

    def correct_master_data(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        corrections: dict[str, Any],
        reason: str,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.correct_master_data(
                corrections=corrections, reason=reason, act=act
            ),
        )

    def attach_document(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        kind: str,
        sha256: str,
        size_bytes: int,
        media_type: str,
        page_count: int,
        source: DocumentSource,
        at: datetime | None = None,
    ) -> Recorded[int]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.attach_document(
                kind=kind,
                sha256=sha256,
                size_bytes=size_bytes,
                media_type=media_type,
                page_count=page_count,
                source=source,
                act=act,
            ),
        )

    def review_document(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        document_number: int,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.review_document(document_number=document_number, act=act),
        )

    def receive_procedure(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        channel: Channel,
        topic: str,
        legal_basis: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[int]:
        self.catalogue.check_topic("topic", topic)
        self.catalogue.check_legal_basis("legal_basis", legal_basis)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.receive_procedure(
                channel=channel, topic=topic, legal_basis=legal_basis, act=act
            ),
        )

    def assign_procedure(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        procedure_number: int,
        assignee: str,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.assign_procedure(
                procedure_number=procedure_number, assignee=assignee, act=act
            ),
        )

    def request_documents(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        procedure_number: int,
        what: list[str],
        due_on: date,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.request_documents(
                procedure_number=procedure_number, what=what, due_on=due_on, act=act
            ),
        )

    def decide_procedure(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        procedure_number: int,
        outcome: DecisionOutcome,
        legal_basis: str | None = None,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[None]:
        self.catalogue.check_legal_basis("legal_basis", legal_basis)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.decide_procedure(
                procedure_number=procedure_number,
                outcome=outcome,
                legal_basis=legal_basis,
                reason=reason,
                act=act,
            ),
        )

    def close_procedure(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        procedure_number: int,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.close_procedure(procedure_number=procedure_number, act=act),
        )

    def issue_residence_document(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        kind: ResidenceDocumentKind,
        legal_basis: str,
        valid_from: date,
        valid_until: date,
        document_number: str,
        procedure_number: int | None = None,
        at: datetime | None = None,
    ) -> Recorded[int]:
        validity = Validity(valid_from, valid_until)
        self.catalogue.check_fits_residence_document(kind, legal_basis)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.issue_residence_document(
                kind=kind,
                legal_basis=legal_basis,
                validity=validity,
                document_number=document_number,
                procedure_number=procedure_number,
                act=act,
            ),
        )

    def extend_residence_document(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        residence_document_number: int,
        valid_until: date,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.extend_residence_document(
                residence_document_number=residence_document_number,
                valid_until=valid_until,
                reason=reason,
                act=act,
            ),
        )

    def order_eat_card(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        residence_document_number: int,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.order_eat_card(
                residence_document_number=residence_document_number, act=act
            ),
        )

    def record_eat_card_arrived(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        residence_document_number: int,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.record_eat_card_arrived(
                residence_document_number=residence_document_number, act=act
            ),
        )

    def hand_over_eat_card(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        residence_document_number: int,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.hand_over_eat_card(
                residence_document_number=residence_document_number, act=act
            ),
        )

    def transfer_eat_to_new_passport(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        residence_document_number: int,
        new_card_number: str,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.transfer_eat_to_new_passport(
                residence_document_number=residence_document_number,
                new_card_number=new_card_number,
                act=act,
            ),
        )

    def end_residence_document(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        residence_document_number: int,
        end_reason: ResidenceDocumentEndReason,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.end_residence_document(
                residence_document_number=residence_document_number,
                end_reason=end_reason,
                reason=reason,
                act=act,
            ),
        )

    def issue_fiction_certificate(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        kind: FictionKind,
        valid_from: date,
        valid_until: date,
        carrier_sheet_number: str,
        procedure_number: int | None = None,
        at: datetime | None = None,
    ) -> Recorded[int]:
        validity = Validity(valid_from, valid_until)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.issue_fiction_certificate(
                kind=kind,
                validity=validity,
                carrier_sheet_number=carrier_sheet_number,
                procedure_number=procedure_number,
                act=act,
            ),
        )

    def extend_fiction_certificate(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        certificate_number: int,
        valid_until: date,
        new_carrier_sheet_number: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.extend_fiction_certificate(
                certificate_number=certificate_number,
                valid_until=valid_until,
                new_carrier_sheet_number=new_carrier_sheet_number,
                act=act,
            ),
        )

    def end_fiction_certificate(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        certificate_number: int,
        end_reason: FictionEndReason,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.end_fiction_certificate(
                certificate_number=certificate_number, end_reason=end_reason, act=act
            ),
        )

    def issue_integration_course_entitlement(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        legal_basis: str = "aufenthg-44",
        at: datetime | None = None,
    ) -> Recorded[None]:
        self.catalogue.check_legal_basis("legal_basis", legal_basis)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.issue_integration_course_entitlement(
                legal_basis=legal_basis, act=act
            ),
        )

    def impose_integration_course_obligation(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        legal_basis: str = "aufenthg-44a",
        at: datetime | None = None,
    ) -> Recorded[None]:
        self.catalogue.check_legal_basis("legal_basis", legal_basis)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.impose_integration_course_obligation(
                legal_basis=legal_basis, act=act
            ),
        )

    def request_entry_consent(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        legal_basis: str = "aufenthv-31",
        at: datetime | None = None,
    ) -> Recorded[int]:
        self.catalogue.check_legal_basis("legal_basis", legal_basis)
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.request_entry_consent(legal_basis=legal_basis, act=act),
        )

    def give_entry_consent(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        entry_procedure_number: int,
        valid_until: date,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.give_entry_consent(
                entry_procedure_number=entry_procedure_number, valid_until=valid_until, act=act
            ),
        )

    def refuse_entry_consent(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        entry_procedure_number: int,
        reason: str,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.refuse_entry_consent(
                entry_procedure_number=entry_procedure_number, reason=reason, act=act
            ),
        )

    def receive_inquiry(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        kind: InquiryKind,
        at: datetime | None = None,
    ) -> Recorded[int]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.receive_inquiry(kind=kind, act=act),
        )

    def answer_inquiry(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        inquiry_number: int,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.answer_inquiry(inquiry_number=inquiry_number, act=act),
        )

    def record_correspondence(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        direction: Direction,
        counterpart_kind: CounterpartKind,
        counterpart_name: str,
        subject: str,
        attachment_numbers: list[int] | None = None,
        at: datetime | None = None,
    ) -> Recorded[int]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.record_correspondence(
                direction=direction,
                counterpart_kind=counterpart_kind,
                counterpart_name=counterpart_name,
                subject=subject,
                attachment_numbers=list(attachment_numbers or []),
                act=act,
            ),
        )

    def add_note(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        text: str,
        at: datetime | None = None,
    ) -> Recorded[int]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.add_note(text=text, act=act),
        )

    def transfer_to_office(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        to_office_id: str,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.transfer_to_office(
                to_office_id=to_office_id, reason=reason, act=act
            ),
        )

    def close_case(
        self,
        case_id: UUID,
        *,
        expected_version: int,
        by: str,
        closure_reason: ClosureReason,
        at: datetime | None = None,
    ) -> Recorded[None]:
        return self._change(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.close(closure_reason=closure_reason, act=act),
        )

    # ----------------------------------------------------------------- helpers

    def _aggregate(
        self,
        aggregate_id: UUID,
        kind: type[A],
        not_found: Exception,
        *,
        version: int | None,
        projector: Callable[[Any, Iterable[Any]], Any] | None = None,
    ) -> A:
        """The aggregate of this kind with this id; ``not_found`` for none or another kind."""
        options: dict[str, Any] = {} if projector is None else {"projector_func": projector}
        with self._store_errors():
            try:
                aggregate: object = self.repository.get(aggregate_id, version=version, **options)
            except AggregateNotFoundError:
                raise not_found from None
        if not isinstance(aggregate, kind):
            raise not_found
        return aggregate

    def _events_of(
        self,
        aggregate_id: UUID,
        event_kind: type[E],
        not_found: Exception,
        after_version: int,
        limit: int | None,
    ) -> list[E]:
        """The events after ``after_version``; ``not_found`` unless they are of this kind.

        Only an empty page costs a second query, to tell "no such aggregate" from "no
        more events".
        """
        with self._store_errors():
            after = min(after_version, _MAX_VERSION)
            events = list(self.events.get(aggregate_id, gt=after or None, limit=limit))
            sample = events[:1] or list(self.events.get(aggregate_id, limit=1))
        if not sample or not isinstance(sample[0], event_kind):
            raise not_found
        return cast(list[E], events)

    def _act(self, by: str, at: datetime | None) -> Act:
        recorded_at = self.clock()
        if at is None:
            at = _BUSINESS_TIME.get()
        return Act(by=by, at=at if at is not None else recorded_at, recorded_at=recorded_at)

    def _change(
        self,
        case_id: UUID,
        expected_version: int,
        by: str,
        at: datetime | None,
        command: Callable[[CaseFile, Act], T],
    ) -> Recorded[T]:
        """Run one command on the case file at ``expected_version`` and save its events.

        Commands work on cached case files. That is safe across processes because a
        cached file is never ahead of the store: an older one than the caller expects is
        reloaded, and an equal one whose stored version moved on fails to save on the
        version constraint (then it is evicted and the conflict reported). A file whose
        command raised anything is evicted, so no half-changed state is ever reused.
        """
        act = self._act(by, at)
        with self._case_locks[case_id.int % _CASE_LOCK_STRIPES]:
            case = self._case_cache.pop(case_id)
            if case is None or case.version < expected_version:
                case = self.get_case(case_id)
            if case.version != expected_version:
                self._case_cache.put(case)
                raise ConcurrentModification(case_id, expected_version, case.version)
            case.check_not_erased()
            result = command(case, act)
            try:
                with self._store_errors():
                    recordings = self.save(case)
            except IntegrityError:
                actual = self.get_case(case_id).version
                raise ConcurrentModification(case_id, expected_version, actual) from None
            self._case_cache.put(case)
        return Recorded(case_id, case.version, result, _last_position(recordings))

    @contextmanager
    def _store_errors(self) -> Iterator[None]:
        """Let IntegrityError through (callers translate it); wrap every other library error."""
        try:
            yield
        except IntegrityError:
            raise
        except PersistenceError as error:
            msg = f"the event store failed: {type(error).__name__}"
            raise StoreUnavailable(msg) from None

    # ------------------------------------------------- commitment declarations

    @gives_back_unwritten_ids
    def submit_commitment_declaration(
        self,
        *,
        office_id: str,
        guarantor: Guarantor,
        invited_person: InvitedPerson,
        purpose: VisitPurpose,
        stay_from: date,
        stay_until: date,
        monthly_net_income_cents: int | None,
        assets_cents: int | None,
        by: str = PUBLIC_APPLICANT,
        at: datetime | None = None,
    ) -> DeclarationRecorded[str]:
        """Submit a declaration; returns its secret reference, which is stored only hashed.

        The reference is the applicant's only way back to the declaration (to pay, to see
        its status); it is not the declaration's id, which caseworkers see.
        """
        act = self._act(by, at)
        for _attempt in range(_MAX_DECLARATION_SAVE_ATTEMPTS):
            reference = secrets.token_urlsafe(_SECRET_REFERENCE_BYTES)
            reference_sha256 = hash_reference(reference)
            declaration = CommitmentDeclaration.submit(
                declaration_id=self.new_personal_id(),
                office_id=office_id,
                reference_sha256=reference_sha256,
                guarantor=guarantor,
                invited_person=invited_person,
                purpose=purpose,
                stay_from=stay_from,
                stay_until=stay_until,
                monthly_net_income_cents=monthly_net_income_cents,
                assets_cents=assets_cents,
                act=act,
            )
            claim = DeclarationReference.claim(
                reference_sha256=reference_sha256, declaration_id=declaration.id, act=act
            )
            try:
                with self._store_errors():
                    recordings = self.save(declaration, claim)
            except IntegrityError:
                continue  # two equal 128-bit references: never, but a new one costs nothing
            return DeclarationRecorded(
                declaration.id, declaration.version, reference, _last_position(recordings)
            )
        msg = "could not record the declaration"
        raise StoreUnavailable(msg)

    def get_declaration(
        self, declaration_id: UUID, *, version: int | None = None
    ) -> CommitmentDeclaration:
        return self._aggregate(
            declaration_id,
            CommitmentDeclaration,
            DeclarationNotFound(declaration_id),
            version=version,
        )

    def declaration_events(
        self, declaration_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[CommitmentDeclaration.Event]:
        """The declaration's events in order, after ``after_version``."""
        return self._events_of(
            declaration_id,
            CommitmentDeclaration.Event,
            DeclarationNotFound(declaration_id),
            after_version,
            limit,
        )

    def find_declaration_by_reference(self, reference: str) -> UUID:
        """The declaration whose secret reference this is."""
        if not _SECRET_REFERENCE.fullmatch(reference):
            raise DeclarationNotFound
        with self._store_errors():
            try:
                claim: object = self.repository.get(
                    DeclarationReference.id_for(hash_reference(reference))
                )
            except AggregateNotFoundError:
                raise DeclarationNotFound from None
        if not isinstance(claim, DeclarationReference):
            raise DeclarationNotFound
        return UUID(claim.declaration_id)

    def list_declarations(
        self,
        *,
        office_ids: Collection[str] | None,
        after_position: int = 0,
        limit: int = 100,
    ) -> DeclarationPage:
        """Declarations in the order they were submitted, of ``office_ids`` (None: all).

        Until a read model exists (projections have their own issue), this scans the
        log for submissions, ``limit`` at a time: a page may hold fewer declarations than
        ``limit`` when others' offices' come in between, and ``more`` still says go on.
        """
        topic = get_topic(CommitmentDeclaration.Submitted)
        with self._store_errors():
            notifications = self.recorder.select_notifications(
                start=min(after_position, _MAX_VERSION),
                limit=limit,
                topics=[topic],
                inclusive_of_start=False,
            )
        declarations = []
        for notification in notifications:
            declaration = self.get_declaration(UUID(str(notification.originator_id)))
            if office_ids is None or declaration.office_id in office_ids:
                declarations.append(declaration)
        return DeclarationPage(
            declarations=declarations,
            last_position=notifications[-1].id if notifications else None,
            more=len(notifications) == limit,
        )

    def start_payment(
        self,
        declaration_id: UUID,
        *,
        method: PaymentMethod,
        provider: PaymentProvider,
        notification_url: str,
        return_url: str,
        by: str = PUBLIC_APPLICANT,
        at: datetime | None = None,
    ) -> DeclarationRecorded[StartedPayment]:
        """Create a payment of the fee at the provider and record it.

        A payment still open at the provider is answered instead of a second one, so a
        payer who comes back (or clicks twice) pays on the same page and never twice.
        """
        require_choice("method", method, PaymentMethod)
        for _attempt in range(_MAX_DECLARATION_SAVE_ATTEMPTS):
            declaration = self.get_declaration(declaration_id)
            pending = declaration.pending_payment
            if pending is not None:
                return DeclarationRecorded(
                    declaration_id, declaration.version, StartedPayment(pending, False), None
                )
            declaration.check_payment_may_start()
            number = len(declaration.payments) + 1
            created = provider.create_payment(
                PaymentOrder(
                    amount_cents=declaration.fee_amount_cents,
                    currency=declaration.fee_currency,
                    reference=_payment_reference(declaration_id, number),
                    description=_PAYMENT_DESCRIPTION,
                    method=method,
                    notification_url=notification_url,
                    return_url=return_url,
                )
            )
            act = self._act(by, at)
            declaration.initiate_payment(
                provider=provider.name,
                method=method,
                transaction_id=created.transaction_id,
                redirect_url=created.redirect_url,
                act=act,
            )
            claim = PaymentTransaction.claim(
                provider=provider.name,
                transaction_id=created.transaction_id,
                declaration_id=declaration_id,
                payment_number=number,
                act=act,
            )
            try:
                with self._store_errors():
                    recordings = self.save(declaration, claim)
            except IntegrityError:
                # Changed meanwhile (perhaps a payment started in another request, which
                # the next round answers); the provider's unused payment expires there.
                continue
            return DeclarationRecorded(
                declaration_id,
                declaration.version,
                StartedPayment(declaration.payment(number), True),
                _last_position(recordings),
            )
        msg = "the payment could not be recorded"
        raise StoreUnavailable(msg)

    def settle_payment(
        self,
        *,
        provider: str,
        transaction_id: str,
        outcome: PaymentOutcome,
        amount_cents: int,
        currency: str,
        method: PaymentMethod | None = None,
        occurred_at: datetime | None = None,
    ) -> DeclarationRecorded[SettlementOutcome]:
        """Record the provider's report on a payment, once, however often it arrives.

        ``occurred_at`` is the provider's time of payment, the business time of the event
        (not later than now: the provider's clock may run ahead of ours).
        """
        with self._store_errors():
            try:
                claim: object = self.repository.get(
                    PaymentTransaction.id_for(provider, transaction_id)
                )
            except AggregateNotFoundError:
                raise UnknownPaymentTransaction from None
        if not isinstance(claim, PaymentTransaction):
            raise UnknownPaymentTransaction
        declaration_id = UUID(claim.declaration_id)
        for _attempt in range(_MAX_DECLARATION_SAVE_ATTEMPTS):
            declaration = self.get_declaration(declaration_id)
            recorded_at = self.clock()
            at = recorded_at if occurred_at is None else min(occurred_at, recorded_at)
            act = Act(by=PAYMENT_PROVIDER_USER, at=at, recorded_at=recorded_at)
            result = declaration.settle_payment(
                transaction_id=transaction_id,
                outcome=outcome,
                amount_cents=amount_cents,
                currency=currency,
                method=method,
                act=act,
            )
            if result == "already_recorded":
                return DeclarationRecorded(declaration_id, declaration.version, result, None)
            try:
                with self._store_errors():
                    recordings = self.save(declaration)
            except IntegrityError:
                continue  # the same report in a parallel request, or a caseworker's write
            return DeclarationRecorded(
                declaration_id, declaration.version, result, _last_position(recordings)
            )
        msg = "the payment report could not be recorded"
        raise StoreUnavailable(msg)

    def check_ability_to_pay(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        passed: bool,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> DeclarationRecorded[None]:
        return self._change_declaration(
            declaration_id,
            expected_version,
            by,
            at,
            lambda declaration, act: declaration.check_ability_to_pay(
                passed=passed, reason=reason, act=act
            ),
        )

    def set_pickup_appointment(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        appointment_at: datetime,
        at: datetime | None = None,
    ) -> DeclarationRecorded[None]:
        return self._change_declaration(
            declaration_id,
            expected_version,
            by,
            at,
            lambda declaration, act: declaration.set_pickup_appointment(
                appointment_at=appointment_at, act=act
            ),
        )

    def hand_over_declaration(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        at: datetime | None = None,
    ) -> DeclarationRecorded[None]:
        return self._change_declaration(
            declaration_id,
            expected_version,
            by,
            at,
            lambda declaration, act: declaration.hand_over(act=act),
        )

    def record_visitor_entry(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        entry_date: date,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> DeclarationRecorded[None]:
        return self._change_declaration(
            declaration_id,
            expected_version,
            by,
            at,
            lambda declaration, act: declaration.record_visitor_entry(
                entry_date=entry_date, reason=reason, act=act
            ),
        )

    def withdraw_declaration(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        reason: str | None = None,
        at: datetime | None = None,
    ) -> DeclarationRecorded[None]:
        return self._change_declaration(
            declaration_id,
            expected_version,
            by,
            at,
            lambda declaration, act: declaration.withdraw(reason=reason, act=act),
        )

    def refund_payment(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        reason: str,
        payment_number: int | None = None,
        at: datetime | None = None,
    ) -> DeclarationRecorded[int]:
        """Refund the fee (``payment_number`` omitted) or a surplus payment; returns which."""
        return self._change_declaration(
            declaration_id,
            expected_version,
            by,
            at,
            lambda declaration, act: declaration.refund_payment(
                payment_number=payment_number, reason=reason, act=act
            ),
        )

    def link_declaration_to_case(
        self,
        declaration_id: UUID,
        *,
        expected_version: int,
        by: str,
        case_id: UUID,
        at: datetime | None = None,
    ) -> DeclarationRecorded[None]:
        """Link the declaration to the visitor's case file, which must be of its office."""

        def link(declaration: CommitmentDeclaration, act: Act) -> None:
            try:
                office_id: str | None = self.get_case(case_id).office_id
            except CaseNotFound:
                office_id = None
            if office_id != declaration.office_id:
                # The same words whether it does not exist or is another office's.
                msg = "no case file with this id in the declaration's office"
                raise InvalidValue("case_id", msg)
            declaration.link_to_case_file(case_id=case_id, act=act)

        return self._change_declaration(declaration_id, expected_version, by, at, link)

    def _change_declaration(
        self,
        declaration_id: UUID,
        expected_version: int,
        by: str,
        at: datetime | None,
        command: Callable[[CommitmentDeclaration, Act], T],
    ) -> DeclarationRecorded[T]:
        """Run one command on the declaration at ``expected_version`` and save its events.

        No cache and no lock, unlike case files: some 1,300 declarations a year, each with
        a dozen events, load in no time, and the store's version constraint settles races.
        """
        act = self._act(by, at)
        declaration = self.get_declaration(declaration_id)
        if declaration.version != expected_version:
            raise DeclarationChanged(declaration_id, expected_version, declaration.version)
        result = command(declaration, act)
        try:
            with self._store_errors():
                recordings = self.save(declaration)
        except IntegrityError:
            actual = self.get_declaration(declaration_id).version
            raise DeclarationChanged(declaration_id, expected_version, actual) from None
        return DeclarationRecorded(
            declaration_id, declaration.version, result, _last_position(recordings)
        )

    # ---------------------------------------------------------------- documents

    def _store(self, documents: Sequence[IncomingDocument]) -> None:
        """Put the files into the document store before the events that reference them.

        If recording fails afterwards, the stored files are orphans that the sweep removes
        (:mod:`adapters.documents.sweep`); an event never points at a missing file.
        """
        for document in documents:
            if isinstance(document.content, Path):
                with document.content.open("rb") as source:
                    self.documents.put_hashed(source, document.address)
            else:
                self.documents.put_hashed(document.content, document.address)

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
            self._store([document])
            return number

        return self._change(case_id, expected_version, by, at, store_and_attach)

    def referenced_document_hashes(self) -> set[str]:
        """Every document hash an event references: documents on case files and the
        files of contact form submissions. What the orphan sweep must keep."""
        topics = [get_topic(CaseFile.DocumentAttached), get_topic(ContactSubmission.Submitted)]
        referenced: set[str] = set()
        position = 0
        while True:
            with self._store_errors():
                notifications = self.recorder.select_notifications(
                    start=position,
                    limit=_REFERENCE_SCAN_PAGE,
                    topics=topics,
                    inclusive_of_start=False,
                )
            for notification in notifications:
                event = self.mapper.to_domain_event(notification)
                if isinstance(event, CaseFile.DocumentAttached):
                    referenced.add(event.sha256)
                elif isinstance(event, ContactSubmission.Submitted):
                    referenced.update(submitted.sha256 for submitted in event.files)
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
        act = self._act(by, at)
        for _attempt in range(_MAX_GENERATED_REFERENCE_ATTEMPTS):
            try:
                case_id = self.find_case_by_reference(office_id, reference)
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
            case_id=self.new_personal_id(),
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
        self._store(fresh)
        try:
            with self._store_errors():
                self.save(case, claim)
        except IntegrityError:
            return None  # opened meanwhile by someone else: attach to theirs
        return ScansFiled(case.id, case.version, True, numbers, [doc.sha256 for doc in fresh])

    def _attach_new_scans(
        self, case_id: UUID, documents: Sequence[IncomingDocument], act: Act
    ) -> ScansFiled | None:
        with self._case_locks[case_id.int % _CASE_LOCK_STRIPES]:
            self._case_cache.pop(case_id)
            case = self.get_case(case_id)
            on_file = {doc.sha256 for doc in case.documents if doc.source == "scan"}
            fresh = [doc for doc in _distinct_by_hash(documents) if doc.sha256 not in on_file]
            if not fresh:
                self._case_cache.put(case)
                return ScansFiled(case_id, case.version, False, [], [])
            numbers = [_attach_scan(case, document, act) for document in fresh]
            self._store(fresh)
            try:
                with self._store_errors():
                    self.save(case)
            except IntegrityError:
                return None  # changed meanwhile: look again
            self._case_cache.put(case)
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
    ) -> SubmissionRecorded[str]:
        """Record a contact form submission; returns the receipt reference for the sender.

        All or nothing: every rule is checked before any file is stored, the files are
        stored before the submission is recorded, and the submission and its receipt are
        recorded in one transaction. The reference is stored only hashed; it is not the
        submission's id (which caseworkers see).
        """
        self.catalogue.check_topic("topic", topic)
        act = self._act(by, at)
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
        for _attempt in range(_MAX_SUBMISSION_SAVE_ATTEMPTS):
            symbols = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(RECEIPT_SYMBOLS))
            receipt_sha256 = hash_receipt(symbols)
            submission = ContactSubmission.submit(
                submission_id=self.new_personal_id(),
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
                self._store(files)
                stored = True
            try:
                with self._store_errors():
                    recordings = self.save(submission, claim)
            except IntegrityError:
                continue  # two equal 100-bit receipts: never, but a new one costs nothing
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
                _last_position(recordings),
            )
        msg = "could not record the submission"
        raise StoreUnavailable(msg)

    def get_submission(
        self, submission_id: UUID, *, version: int | None = None
    ) -> ContactSubmission:
        return self._aggregate(
            submission_id, ContactSubmission, SubmissionNotFound(submission_id), version=version
        )

    def submission_events(
        self, submission_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[ContactSubmission.Event]:
        """The submission's events in order, after ``after_version``."""
        return self._events_of(
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
        with self._store_errors():
            try:
                claim: object = self.repository.get(SubmissionReceipt.id_for(hash_receipt(symbols)))
            except AggregateNotFoundError:
                raise SubmissionNotFound from None
        if not isinstance(claim, SubmissionReceipt):
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
        with self._store_errors():
            notifications = self.recorder.select_notifications(
                start=min(after_position, _MAX_VERSION),
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
        act = self._act(by, at)
        for _attempt in range(_MAX_GENERATED_REFERENCE_ATTEMPTS):
            submission = self._submission_at(submission_id, expected_version)
            case_id = self.new_personal_id()
            chosen = reference or _generated_reference(case_id, act)
            case = CaseFile.open(
                case_id=case_id,
                office_id=submission.office_id,
                reference=chosen,
                master_data=master_data,
                act=act,
            )
            claim = CaseReference.claim(
                office_id=submission.office_id, reference=chosen, case_id=case_id, act=act
            )
            submission.link_to_case_file(case_id=case_id, case_opened=True, act=act)
            try:
                with self._store_errors():
                    recordings = self.save(case, claim, submission)
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
                _last_position(recordings),
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
        act = self._act(by, at)
        require_code("document_kind", document_kind)
        for _attempt in range(_MAX_SUBMISSION_SAVE_ATTEMPTS):
            submission = self._submission_at(submission_id, expected_version)
            case_id = UUID(submission.check_may_open_procedure())
            chosen_topic = topic or submission.topic
            self.catalogue.check_topic("topic", chosen_topic)
            self.catalogue.check_fits_topic(chosen_topic, legal_basis)
            received = Act(by=act.by, at=submission.submitted_at, recorded_at=act.recorded_at)
            with self._case_locks[case_id.int % _CASE_LOCK_STRIPES]:
                self._case_cache.pop(case_id)
                case = self.get_case(case_id)
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
                submission.turn_into_procedure(
                    procedure_number=procedure_number,
                    topic=chosen_topic,
                    procedure_kind=self.catalogue.procedure_kind_of(chosen_topic),
                    legal_basis=legal_basis,
                    document_numbers=document_numbers,
                    act=act,
                )
                try:
                    with self._store_errors():
                        recordings = self.save(case, submission)
                except IntegrityError:
                    # The submission moved on (412), or the case file did: then again.
                    self._submission_at(submission_id, expected_version)
                    continue
                self._case_cache.put(case)
            return SubmissionRecorded(
                submission_id,
                submission.version,
                ProcedureFromSubmission(case_id, procedure_number, document_numbers, case.version),
                _last_position(recordings),
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
            case_office: str | None = self.get_case(case_id).office_id
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
        act = self._act(by, at)
        submission = self._submission_at(submission_id, expected_version)
        result = command(submission, act)
        try:
            with self._store_errors():
                recordings = self.save(submission)
        except IntegrityError:
            actual = self.get_submission(submission_id).version
            raise SubmissionChanged(submission_id, expected_version, actual) from None
        return SubmissionRecorded(
            submission_id, submission.version, result, _last_position(recordings)
        )


def _last_position(recordings: list[Recording[UUID]]) -> int:
    return max(recording.notification.id for recording in recordings)


def _generated_reference(case_id: UUID, act: Act) -> str:
    """A file number from the year and the (random) case id: never personal data."""
    return f"{act.at.year}-{case_id.hex[:10].upper()}"


def _payment_reference(declaration_id: UUID, payment_number: int) -> str:
    """The payment reference (Verwendungszweck) the payer sees: ids only, no person."""
    return f"VE-{declaration_id.hex[:12].upper()}-{payment_number}"


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
