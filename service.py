"""The application service: the one entry point for commands and queries.

:class:`AkteService` holds the case-file commands and queries itself and composes the
contexts, each in a module of its own that never imports this one:
``service.appointments`` (:mod:`service_appointments`), ``service.declarations``
(:mod:`service_declarations`), ``service.intake`` (:mod:`service_intake`),
``service.data_protection`` (:mod:`service_data_protection`),
``service.erasure_requests`` (:mod:`service_erasure_requests`, four eyes),
``service.deadlines`` (:mod:`service_deadlines`), ``service.notices``
(:mod:`service_notices`, messages in), ``service.file_transfers``
(:mod:`service_file_transfers`, case files between offices) and ``service.case_as_of``
(:mod:`service_case_as_of`, case files on business dates). It is their transaction
boundary: commands load the aggregates, check the expected version (optimistic
concurrency), call domain methods and save the new events in one transaction. Library
errors are translated here and never leave the application. What it needs from the
world comes through the ports of :mod:`service_ports`, passed in by
``adapters/bootstrap.py``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any, TypeVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import (
    EventStore,
    IntegrityError,
    Mapper,
    Notification,
    PersistenceError,
    Recording,
    Transcoder,
)

from domain.acts import Act
from domain.case_file import CaseFile, MasterData
from domain.case_reference import CaseReference
from domain.deadlines import HolidayCalendar
from domain.read_access import ReadAccess
from domain.values import (
    Channel,
    ClosureReason,
    CounterpartKind,
    DecisionOutcome,
    Direction,
    DocumentSource,
    FictionEndReason,
    FictionKind,
    FictionOrderBasis,
    InquiryKind,
    ResidenceDocumentEndReason,
    ResidenceDocumentKind,
    Validity,
)
from runtime.garbage_collection import collection_paused
from service_appointment_mails import AppointmentSetup
from service_appointments import Appointments
from service_case_as_of import CaseAsOf
from service_common import (
    MAX_GENERATED_REFERENCE_ATTEMPTS,
    MAX_VERSION,
    CaseNotFound,
    ConcurrentModification,
    DuplicateReference,
    Recorded,
    ReferenceNotFound,
    ServiceError,
    StoreUnavailable,
    act_now,
    generated_reference,
    gives_back_unwritten_ids,
    last_position,
    system_clock,
)
from service_data_protection import DataProtection
from service_deadlines import Deadlines
from service_declarations import CommitmentDeclarations
from service_erasure_requests import ErasureRequests
from service_file_transfers import FileTransfers
from service_idempotency import (
    DEFAULT_KEY_RETENTION,
    WriteTruth,
    current_claim,
    without_claim,
)
from service_intake import Intake
from service_notices import Notices
from service_ports import (
    Catalogue,
    Clock,
    DocumentStore,
    EventStorage,
    WriteObserver,
    WriteOutcomes,
)
from service_unit_of_work import DEFAULT_GROUP_EVENTS, Batch, CommandGroup, GroupConflict

T = TypeVar("T")
A = TypeVar("A")
E = TypeVar("E")

DEFAULT_SNAPSHOT_INTERVAL = 50
DEFAULT_CASE_CACHE_SIZE = 1000
_CASE_LOCK_STRIPES = 64

logger = logging.getLogger("akte.service")


class CaseVersionNotFound(Exception):
    """The case file exists, but not at the version or time asked for."""

    def __init__(self, case_id: UUID, detail: str) -> None:
        super().__init__(f"case file {case_id} {detail}")
        self.case_id = case_id


def project_case(case: CaseFile | None, events: Iterable[Any]) -> CaseFile | None:
    """Replay events onto a case file.

    The library's default projector checks each event against a runtime protocol, which
    costs a third of a load on Python 3.11; our events are all ``CaseFile.Event``.
    """
    for event in events:
        case = cast(CaseFile | None, event.mutate(case))
    return case


def project_aggregate(aggregate: object, events: Iterable[Any]) -> object:
    """Replay events onto any of our aggregates, without the library's check of each
    event against a runtime protocol (see :func:`project_case`): appointments, claims
    and the other aggregates the bulk writers load took 6 % of a simulation in it."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


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
    """Commands and queries on case files, over the event store chosen by the environment;
    the contexts as attributes (see the module docstring)."""

    name = "Akte"

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        catalogue: Catalogue,
        clock: Clock = system_clock,
        snapshot_interval: int = DEFAULT_SNAPSHOT_INTERVAL,
        case_cache_size: int = DEFAULT_CASE_CACHE_SIZE,
        storage: EventStorage | None = None,
        documents: DocumentStore | None = None,
        appointments: AppointmentSetup | None = None,
        idempotency_retention: timedelta = DEFAULT_KEY_RETENTION,
        holidays: HolidayCalendar | None = None,
        office_zone: tzinfo = UTC,
    ) -> None:
        """``storage``: transcodings, mapper, snapshot store and data keys (None: the
        library's own, without per-person encryption). ``documents``: where uploaded and
        scanned files are kept; the service closes it. ``appointments``: the secret and
        the mailer (None: appointments answer that they are not configured).
        ``idempotency_retention``: how long a write's idempotency key is kept.
        ``holidays``, ``office_zone``: the office's public holidays and time zone, for
        counting legal deadlines (None: weekends only)."""
        library_env = dict(env or {})
        if snapshot_interval > 0:
            library_env["IS_SNAPSHOTTING_ENABLED"] = "y"
        self._storage = storage
        super().__init__(library_env)
        self.catalogue = catalogue
        self.clock = clock
        keys = None if storage is None else storage.data_keys(self.mapper, self.recorder, clock)
        self._case_cache = _CaseCache(case_cache_size)
        # Akte's recorders keep idempotency keys and find stored events' positions; the
        # library's own (tests without storage) do not: then keys are not recorded.
        self.writes = WriteTruth(
            outcomes=self.recorder if isinstance(self.recorder, WriteOutcomes) else None,
            events=self.events,
            mapper=self.mapper,
            clock=clock,
            retention=idempotency_retention,
        )
        self._case_locks = [threading.Lock() for _ in range(_CASE_LOCK_STRIPES)]
        self._groups = threading.local()
        self._write_observers: list[WriteObserver] = []
        self._write_group_before_log_scans()
        # The library declares this a ClassVar but reads it through the instance when it
        # saves; per instance, the interval can come from settings.
        self.snapshotting_intervals = (  # type: ignore[misc]
            {CaseFile: snapshot_interval} if snapshot_interval else {}
        )
        self.appointments = Appointments(self, catalogue, appointments, holidays=holidays)
        self.declarations = CommitmentDeclarations(self)
        self.deadlines = Deadlines(self, holidays=holidays, zone=office_zone)
        self.case_as_of = CaseAsOf(self, zone=office_zone)
        self.intake = Intake(self, catalogue, documents)
        self.notices = Notices(self, catalogue, self.intake)
        self.file_transfers = FileTransfers(self, self.intake, self.notices)
        snapshot_deletion = (
            None
            if storage is None or self.snapshots is None
            else storage.snapshot_deletion(self.snapshots.recorder)
        )
        self.data_protection = DataProtection(
            self,
            keys=keys,
            storage=storage,
            snapshot_deletion=snapshot_deletion,
            appointments=self.appointments,
        )
        self.erasure_requests = ErasureRequests(self, self.data_protection)

    def close(self) -> None:
        try:
            self.data_protection.release_reserved_keys()
            super().close()
        finally:
            self.data_protection.close_keys()
            self.intake.close()

    def construct_mapper(self) -> Mapper[UUID]:
        if self._storage is None:
            return super().construct_mapper()
        return self._storage.mapper(
            self.construct_transcoder(), self.factory.compressor(), self.factory.cipher()
        )

    def construct_snapshot_store(self) -> EventStore[UUID]:
        if self._storage is None:
            return super().construct_snapshot_store()
        recorder = self.factory.aggregate_recorder(purpose="snapshots")
        return self._storage.snapshot_store(self.mapper, recorder)

    def construct_transcoder(self) -> Transcoder:
        if self._storage is None:
            return super().construct_transcoder()
        transcoder = self.factory.transcoder()
        register = getattr(transcoder, "register", None)
        if register is None:
            msg = f"transcoder {type(transcoder).__name__} cannot register transcodings"
            raise TypeError(msg)
        self._storage.register_transcodings(transcoder)
        return transcoder

    def new_personal_id(self) -> UUID:
        """The id of a new aggregate that will hold personal data (see
        :meth:`service_data_protection.DataProtection.new_personal_id`)."""
        return self.data_protection.new_personal_id()

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
        return self.events_of(case_id, CaseFile.Event, CaseNotFound(case_id), after_version, limit)

    def find_case_by_reference(self, office_id: str, reference: str) -> UUID:
        with self.store_errors():
            claim_id = CaseReference.id_for(office_id, reference)
            claim = self._find(claim_id, CaseReference, version=None)
            if claim is None:
                raise ReferenceNotFound
            return UUID(claim.case_id)

    # ------------------------------------------------ history and point in time

    def case_head_version(self, case_id: UUID) -> int:
        """The case file's current version, from one read of its last event."""
        self._write_group_holding(case_id)
        with self.store_errors():
            head = list(self.events.get(case_id, desc=True, limit=1))
        if not head or not isinstance(head[0], CaseFile.Event):
            raise CaseNotFound(case_id)
        return head[0].originator_version

    def get_case_at_version(self, case_id: UUID, version: int) -> CaseFile:
        """The case file as it was at ``version`` (from the latest snapshot at or below it).

        Raises :class:`CaseVersionNotFound` for a version it never had (0, beyond its head).
        """
        if version >= 1:
            case = self.get_case(case_id, version=min(version, MAX_VERSION))
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
        The file as it stood on a business date is :meth:`service_case_as_of.CaseAsOf.case_on`.
        """
        self._write_group_holding(case_id)
        with self.store_errors():
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
            act=self.act(by, None),
        )
        with self.store_errors():
            return last_position(self.save(read))

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
        replayed = self.writes.replayed(by)
        if replayed is not None:
            return replayed  # recorded before under this request's idempotency key
        act = self.act(by, at)
        for _attempt in range(MAX_GENERATED_REFERENCE_ATTEMPTS):
            case_id = self.new_personal_id()
            chosen = reference or generated_reference(case_id, act)
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
            self.writes.note(case_id, case.version, chosen)
            try:
                with self.store_errors():
                    recordings = self.save(case, claim)
            except IntegrityError:
                if reference is not None:
                    msg = "this office already has a case file with this reference"
                    raise DuplicateReference(msg) from None
                continue
            return Recorded(case_id, case.version, chosen, last_position(recordings))
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        order_basis: FictionOrderBasis | None = None,
        previous_title_valid_until: date | None = None,
        hardship_reason: str | None = None,
        at: datetime | None = None,
    ) -> Recorded[int]:
        """``order_basis`` and the field it needs: for § 81 (4) only (see the domain)."""
        validity = Validity(valid_from, valid_until)
        return self.change_case(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.issue_fiction_certificate(
                kind=kind,
                validity=validity,
                carrier_sheet_number=carrier_sheet_number,
                procedure_number=procedure_number,
                order_basis=order_basis,
                previous_title_valid_until=previous_title_valid_until,
                hardship_reason=hardship_reason,
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
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
        return self.change_case(
            case_id,
            expected_version,
            by,
            at,
            lambda case, act: case.close(closure_reason=closure_reason, act=act),
        )

    # ------------------------------------ what the contexts use (service_ports.ServiceStore)

    def find(self, aggregate_id: UUID, kind: type[A], *, version: int | None = None) -> A | None:
        """The aggregate of this kind with this id (at ``version``); None: none of it."""
        return self._find(aggregate_id, kind, version=version)

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
        found = self._find(aggregate_id, kind, version=version, projector=projector)
        if found is None:
            raise not_found
        return found

    def _find(
        self,
        aggregate_id: UUID,
        kind: type[A],
        *,
        version: int | None,
        projector: Callable[[Any, Iterable[Any]], Any] | None = None,
    ) -> A | None:
        group = self.command_group()
        if group is not None:
            if version is None:
                pending = group.aggregate(aggregate_id)
                if pending is not None:
                    return pending if isinstance(pending, kind) else None
            else:
                self._write_group_holding(aggregate_id)
        options: dict[str, Any] = {"projector_func": projector or project_aggregate}
        with self.store_errors():
            try:
                aggregate: object = self.repository.get(aggregate_id, version=version, **options)
            except AggregateNotFoundError:
                return None
        return aggregate if isinstance(aggregate, kind) else None

    def events_of(
        self,
        aggregate_id: UUID,
        event_kind: type[E],
        not_found: Exception,
        after_version: int = 0,
        limit: int | None = None,
    ) -> list[E]:
        """The events after ``after_version``; ``not_found`` unless they are of this kind.

        Only an empty page costs a second query, to tell "no such aggregate" from "no
        more events".
        """
        self._write_group_holding(aggregate_id)
        with self.store_errors():
            after = min(after_version, MAX_VERSION)
            events = list(self.events.get(aggregate_id, gt=after or None, limit=limit))
            sample = events[:1] or list(self.events.get(aggregate_id, limit=1))
        if not sample or not isinstance(sample[0], event_kind):
            raise not_found
        return cast(list[E], events)

    def act(self, by: str, at: datetime | None) -> Act:
        """Who acts, at ``at`` (else the business time in force, else now), recorded now.

        Every command calls this before it changes anything: a write's idempotency key is
        checked here (:meth:`service_idempotency.WriteTruth.check`)."""
        self.writes.check(by)
        return act_now(by, at, self.clock())

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save in one transaction, with the write's idempotency key if one is in force;
        a save whose acknowledgement was lost answers what the store recorded
        (:meth:`service_idempotency.WriteTruth.save`). ``IntegrityError`` goes to the
        caller only when this save's events are not in the store.

        Inside :meth:`grouped`, the save is deferred and written with the group."""
        group = self.command_group()
        if group is not None:
            if current_claim() is None:
                return group.add(objs)
            group.flush()  # a save with an idempotency key is written on its own
        recordings = self.writes.save(super().save, objs, kwargs)
        if self._write_observers:
            events = [recording.domain_event for recording in recordings]
            for observer in self._write_observers:
                try:
                    observer.saved(events)
                except Exception as error:  # the command is recorded: its caller hears so
                    # The type only: a message may quote what was written.
                    logger.error("a write observer failed with %s", type(error).__name__)
        return recordings

    def observe_writes(self, observer: WriteObserver) -> None:
        """Tell ``observer`` of every save committed on its own from now on."""
        self._write_observers.append(observer)

    def stop_observing_writes(self, observer: WriteObserver) -> None:
        with contextlib.suppress(ValueError):
            self._write_observers.remove(observer)

    # ------------------------------------------- groups of commands (bulk writers)

    @contextmanager
    def grouped(self, *, max_events: int = DEFAULT_GROUP_EVENTS) -> Iterator[CommandGroup]:
        """Run this thread's commands in the block as a group written together, every
        ``max_events`` events and at the end (also when the block raises): the same
        commands and events, fewer commits. See :mod:`service_unit_of_work`. A block
        inside another joins the outer group."""
        outer = self.command_group()
        if outer is not None:
            yield outer
            return
        group = CommandGroup(
            max_events, encode=self.mapper.to_stored_event, write=self._write_group
        )
        self._groups.current = group
        try:
            yield group
        except BaseException as error:
            self._groups.current = None
            try:
                group.flush()
            except Exception as write_error:  # the block's own error wins
                # The caller must see why the block failed; the failed write is a note
                # (its type only: a store's message may quote the stored values).
                error.add_note(
                    "writing the group's earlier commands also failed: "
                    + (
                        str(write_error)
                        if isinstance(write_error, ServiceError)
                        else type(write_error).__name__
                    )
                )
            raise
        self._groups.current = None
        group.flush()

    def command_group(self) -> CommandGroup | None:
        """The group this thread's commands are in, if any."""
        group: CommandGroup | None = getattr(self._groups, "current", None)
        return group

    def _write_group_before_log_scans(self) -> None:
        """A scan of the log (a tick, a search over notifications) made by a command in
        a group writes the group first, so that it finds what the group's commands did.
        Wrapped on the recorder instance: the contexts scan through it directly."""
        recorder = self.recorder
        for name in ("select_notifications", "max_notification_id"):
            if getattr(recorder, name, None) is None:
                continue

            def written_first(*args: Any, _name: str = name, **kwargs: Any) -> Any:
                group = self.command_group()
                if group is not None:
                    group.flush()
                # Looked up on the class at each call (a test may replace the method).
                return getattr(type(recorder), _name)(recorder, *args, **kwargs)

            setattr(recorder, name, written_first)

    def _write_group_holding(self, aggregate_id: UUID) -> None:
        """Before reading an aggregate's events from the store: write the group if it
        holds changes to it."""
        group = self.command_group()
        if group is not None and group.holds(aggregate_id):
            group.flush()

    def _write_group(self, batch: Batch) -> None:
        """Write a group's events in one transaction of the recorder (its hash chain
        entries with them), then take the snapshots the library would have taken."""

        def put(*events: Any, **kwargs: Any) -> list[Recording[UUID]]:
            ids = self.recorder.insert_events(batch.stored, **kwargs) or []
            return [
                Recording(
                    event,
                    Notification(
                        id=position,
                        originator_id=stored.originator_id,
                        originator_version=stored.originator_version,
                        topic=stored.topic,
                        state=stored.state,
                    ),
                )
                for event, stored, position in zip(batch.events, batch.stored, ids, strict=True)
            ]

        try:
            # Never with a key: the group is other commands' work, and a keyed command
            # that makes it write (it is written before that command's own events, or on
            # a scan of the log, or at the block's end) must not record its key with it.
            with self.store_errors(), without_claim(), collection_paused():
                recordings = self.writes.save(put, batch.events, {})
        except IntegrityError:
            raise GroupConflict(batch.saves, len(batch.events)) from None
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        processing.events = list(batch.events)
        processing.aggregates = dict(batch.aggregates)
        try:
            with self.store_errors(), collection_paused():
                self._take_snapshots(processing)
        except IntegrityError:
            # The events are written: a snapshot at that version exists already (another
            # process took it), and it holds the same state. Not a conflict.
            pass
        self._notify(recordings)
        for aggregate in batch.aggregates.values():
            if isinstance(aggregate, CaseFile) and not aggregate.pending_events:
                self._case_cache.put(aggregate)

    def change_case(
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

        Under an idempotency key, the outcome is recorded with the events, and a retry
        whose first answer was not stored returns it without running the command again.
        """
        replayed = self.writes.replayed(by)
        if replayed is not None:
            return replayed
        act = self.act(by, at)
        with self.case_lock(case_id):
            case = self._case_cache.pop(case_id)
            group = self.command_group()
            if group is not None and group.holds(case_id):
                case = group.aggregate(case_id)  # None: left half changed, read the store
            if case is None or case.version < expected_version:
                case = self.get_case(case_id)
            if case.version != expected_version:
                self.cache_case(case)
                raise ConcurrentModification(case_id, expected_version, case.version)
            case.check_not_erased()
            result = command(case, act)
            self.writes.note(case_id, case.version, result)
            try:
                with self.store_errors():
                    recordings = self.save(case)
            except IntegrityError:
                actual = self.get_case(case_id).version
                raise ConcurrentModification(case_id, expected_version, actual) from None
            self.cache_case(case)
        return Recorded(case_id, case.version, result, last_position(recordings))

    def case_lock(self, case_id: UUID) -> AbstractContextManager[Any]:
        return self._case_locks[case_id.int % _CASE_LOCK_STRIPES]

    def uncache_case(self, case_id: UUID) -> None:
        self._case_cache.pop(case_id)

    def cache_case(self, case: CaseFile) -> None:
        group = self.command_group()
        if group is not None and group.holds(case.id):
            return  # ahead of the store until the group is written: it keeps it
        self._case_cache.put(case)

    @contextmanager
    def store_errors(self) -> Iterator[None]:
        """Let IntegrityError through (callers translate it); wrap every other library error."""
        try:
            yield
        except IntegrityError:
            raise
        except PersistenceError as error:
            msg = f"the event store failed: {type(error).__name__}"
            raise StoreUnavailable(msg) from None
