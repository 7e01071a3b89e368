"""The application service: every command and query on case files goes through here.

Commands load the case file, check the expected version (optimistic concurrency), call
one domain method and save the new events in one transaction. Library errors are
translated here and never leave this module.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, Protocol, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, PersistenceError, Recording, Transcoder

from adapters.catalogue import Catalogue
from adapters.transcoding import register_akte_transcodings
from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.case_reference import CaseReference
from domain.errors import RuleViolation
from domain.values import (
    Channel,
    ClosureReason,
    CounterpartKind,
    DecisionOutcome,
    Direction,
    DocumentSource,
    FictionEndReason,
    FictionKind,
    InquiryKind,
    ResidenceDocumentEndReason,
    ResidenceDocumentKind,
    Validity,
)

T = TypeVar("T")

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


@dataclass(frozen=True)
class Recorded(Generic[T]):
    """What a command recorded: the case file, its new version and the command's result."""

    case_id: UUID
    version: int
    result: T
    position: int
    """Notification id of the last event written: read models that have processed this
    position reflect the command (read-your-writes)."""


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


class AkteService(Application[UUID]):
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
    ) -> None:
        library_env = dict(env or {})
        if snapshot_interval > 0:
            library_env["IS_SNAPSHOTTING_ENABLED"] = "y"
        super().__init__(library_env)
        self.catalogue = catalogue
        self.clock = clock
        self._case_cache = _CaseCache(case_cache_size)
        self._case_locks = [threading.Lock() for _ in range(_CASE_LOCK_STRIPES)]
        # The library declares this a ClassVar but reads it through the instance when it
        # saves; per instance, the interval can come from settings.
        self.snapshotting_intervals = (  # type: ignore[misc]
            {CaseFile: snapshot_interval} if snapshot_interval else {}
        )

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
        with self._store_errors():
            try:
                case: object = self.repository.get(
                    case_id, version=version, projector_func=project_case
                )
            except AggregateNotFoundError:
                raise CaseNotFound(case_id) from None
            # The store also holds the aggregates that claim file numbers.
            if not isinstance(case, CaseFile):
                raise CaseNotFound(case_id)
            return case

    def case_events(
        self, case_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[CaseFile.Event]:
        """The events of a case file in order, after ``after_version``."""
        with self._store_errors():
            after = min(after_version, _MAX_VERSION)
            events = list(self.events.get(case_id, gt=after or None, limit=limit))
            if not events:
                first = list(self.events.get(case_id, limit=1))
                if not first or not isinstance(first[0], CaseFile.Event):
                    raise CaseNotFound(case_id)
            elif not isinstance(events[0], CaseFile.Event):
                raise CaseNotFound(case_id)
            return cast(list[CaseFile.Event], events)

    def find_case_by_reference(self, office_id: str, reference: str) -> UUID:
        with self._store_errors():
            try:
                claim: object = self.repository.get(CaseReference.id_for(office_id, reference))
            except AggregateNotFoundError:
                raise ReferenceNotFound from None
            if not isinstance(claim, CaseReference):
                raise ReferenceNotFound
            return UUID(claim.case_id)

    # ---------------------------------------------------------------- commands

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
            case_id = uuid4()
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

    def _act(self, by: str, at: datetime | None) -> Act:
        recorded_at = self.clock()
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


def _last_position(recordings: list[Recording[UUID]]) -> int:
    return max(recording.notification.id for recording in recordings)


def _generated_reference(case_id: UUID, act: Act) -> str:
    """A file number from the year and the (random) case id: never personal data."""
    return f"{act.at.year}-{case_id.hex[:10].upper()}"
