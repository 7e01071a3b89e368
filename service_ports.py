"""The ports of the application: what it needs from the world, as Protocols and values.

The application modules (``service.py`` and ``service_*.py``) depend on these, never on
an implementation; :mod:`adapters` implement them (structurally: a class with these
methods fits, no base class needed) and ``adapters/bootstrap.py`` picks and passes them.

- :class:`Clock`; :class:`Catalogue` (legal bases and contact topics);
- :class:`DocumentStore` (the bytes of uploaded and scanned files, encrypted per owner)
  with :class:`DocumentReference`;
- :class:`PaymentProvider` (the ePayment platform) with :class:`PaymentOrder`;
- :class:`Mailer` (mail to the people who book) with :class:`OutgoingMail`;
- :class:`EventStorage` (how events are stored beyond the library's defaults), with
  :class:`DataKeys` (per-person keys) and :class:`SnapshotDeletion`;
- :class:`ServiceStore`: what a context uses of the service that composes it, with
  :class:`OutcomeNotes` (a command's outcome recorded with its idempotency key);
- :class:`WriteOutcomes` (idempotency keys and positions of stored events), with
  :class:`NewKey`, :class:`KeyRecord` and :class:`StoredAnswer`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, BinaryIO, Protocol, TypeVar, runtime_checkable
from uuid import UUID

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    Cipher,
    Compressor,
    EventStore,
    Mapper,
    Recording,
    StoredEvent,
    Transcoder,
)

from domain.acts import Act
from domain.case_file import CaseFile
from domain.values import PaymentMethod
from service_common import Recorded

A = TypeVar("A")
E = TypeVar("E")
T = TypeVar("T")


class Clock(Protocol):
    def __call__(self) -> datetime: ...


# ------------------------------------------------------------------ reference data


class Catalogue(Protocol):
    """The legal bases and contact topics commands are checked against."""

    def check_legal_basis(self, field: str, code: str | None) -> None:
        """Raises ``InvalidValue`` for an unknown legal basis (None passes)."""
        ...

    def check_topic(self, field: str, code: str) -> None: ...

    def procedure_kind_of(self, topic: str) -> str:
        """The kind of procedure a topic starts."""
        ...

    def check_fits_topic(self, topic: str, legal_basis: str | None) -> None:
        """A known legal basis, and one the topic's procedures may rest on."""
        ...

    def check_fits_residence_document(self, kind: str, code: str) -> None: ...


# ------------------------------------------------------------------ documents


@dataclass(frozen=True)
class StoredDocument:
    """A document's address in the document store: its hash and size."""

    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class StoredEntry:
    """A document in the store, as the orphan sweep sees it."""

    sha256: str
    size_bytes: int
    stored_at: datetime
    """When it was last stored (storing it again renews this; the sweep spares recent ones)."""


@dataclass(frozen=True)
class DocumentReference:
    """A document an event references, with its owner: the aggregate (case file, contact
    form submission) whose person the document is about, whose data key encrypts it."""

    owner: UUID
    sha256: str
    size_bytes: int


class DocumentStore(Protocol):
    """Verifying storage of documents, each encrypted with its owner's data key
    (:mod:`adapters.documents.encryption`; the guarantees in :mod:`adapters.documents.store`).

    ``owner`` is the aggregate whose person the document is about (its id is its data
    key's owner id). Reading a document whose owner's data was erased raises the store's
    ``DocumentErased``."""

    def put_hashed(
        self, source: BinaryIO, expected: StoredDocument, *, owner: UUID
    ) -> StoredDocument:
        """Store a seekable file whose hash and size the caller knows."""
        ...

    def put_bytes(self, data: bytes, *, owner: UUID) -> StoredDocument: ...

    def copy(self, document: StoredDocument, *, from_owner: UUID, to_owner: UUID) -> None:
        """Store ``from_owner``'s document for ``to_owner`` too."""
        ...

    def read_chunks(
        self, sha256: str, *, owner: UUID, size_bytes: int | None = None
    ) -> Iterator[bytes]:
        """The document's bytes, verified against its hash and ``size_bytes``."""
        ...

    def read_bytes(self, sha256: str, *, owner: UUID, size_bytes: int | None = None) -> bytes: ...

    def verify(
        self, sha256: str, *, owner: UUID, size_bytes: int | None = None
    ) -> StoredDocument: ...

    def contains(self, sha256: str, *, owner: UUID) -> bool: ...

    def addresses_to_keep(self, references: Iterable[DocumentReference]) -> set[str]:
        """The stored addresses of the referenced documents (what the sweep keeps)."""
        ...

    def entries(self) -> Iterator[StoredEntry]:
        """Every stored object; ``sha256`` is its address in the store."""
        ...

    def delete_unless_recent(self, sha256: str, older_than: timedelta) -> bool: ...

    def remove_abandoned_writes(self, older_than: timedelta) -> int: ...

    def close(self) -> None: ...


# ------------------------------------------------------------------ payments


@dataclass(frozen=True)
class PaymentOrder:
    """What the office asks the platform to collect.

    ``reference`` is the office's payment reference (Verwendungszweck) that the payer and
    the cash office see: it names the declaration's payment, never a person.
    """

    amount_cents: int
    currency: str
    reference: str
    description: str
    method: PaymentMethod
    notification_url: str
    return_url: str


@dataclass(frozen=True)
class CreatedPayment:
    transaction_id: str
    redirect_url: str
    """The platform's page where the payer pays."""


class PaymentProvider(Protocol):
    @property
    def name(self) -> str:
        """The platform's code, recorded with every payment."""
        ...

    def create_payment(self, order: PaymentOrder) -> CreatedPayment:
        """Create the payment; raises the provider's errors when it cannot."""
        ...


# ------------------------------------------------------------------ mail


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    body: str
    message_id: str
    """``<appointment-id.mail-number@akte>``: a bounce names it, and so the mail."""


class MailRefused(Exception):
    """The mail server refused the mail; ``code`` like ``smtp-550`` (never its text)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class MailUnavailable(Exception):
    """The mail server could not be reached or broke off; try again later."""


class Mailer(Protocol):
    def send(self, mail: OutgoingMail) -> None:
        """Hand the mail to the server; raises :class:`MailRefused` or
        :class:`MailUnavailable`."""


# ------------------------------------------------------------ the event store


class DataKeys(Protocol):
    """The per-person data keys (crypto-shredding), as the data protection context uses
    them; their errors are the store's (``PersistenceError``)."""

    def new_owner_id(self) -> UUID:
        """A random id for a new aggregate with personal data, its key made ahead."""
        ...

    def give_back_unwritten(self, owner_ids: Iterable[UUID]) -> int:
        """Put ids whose aggregate was never written back into the reserve."""
        ...

    def release_reserve(self) -> int:
        """Delete the keys made ahead that no aggregate was written with."""
        ...

    def has_key(self, owner_id: str) -> bool: ...

    def destroy(self, owner_ids: list[str], erased_at: datetime) -> list[str]:
        """Destroy the owners' keys; returns those that had one."""
        ...

    def close(self) -> None: ...


class SnapshotDeletion(Protocol):
    def delete_snapshots(self, originator_id: UUID) -> int:
        """Delete every snapshot of the aggregate; returns how many there were."""
        ...


class EventStorage(Protocol):
    """How the service's events become stored records beyond the library's defaults:
    the value types it encodes, the mapper (per-person encryption), the snapshot store,
    the data keys and the deletion of snapshots. Built by ``adapters/bootstrap.py``."""

    @property
    def encrypting(self) -> bool:
        """New events' personal data is sealed with per-person keys."""
        ...

    def register_transcodings(self, transcoder: Transcoder) -> None: ...

    def mapper(
        self, transcoder: Transcoder, compressor: Compressor | None, cipher: Cipher | None
    ) -> Mapper[UUID]: ...

    def snapshot_store(self, mapper: Mapper[UUID], recorder: AggregateRecorder) -> EventStore[UUID]:
        """The store of snapshots written by ``recorder``."""
        ...

    def data_keys(
        self, mapper: Mapper[UUID], recorder: ApplicationRecorder, clock: Clock
    ) -> DataKeys | None:
        """The data keys, given to ``mapper``; called once the recorder exists (a key
        store may share its connections). None: no per-person encryption."""
        ...

    def holds_plaintext(self, stored_event: StoredEvent, transcoder: Transcoder) -> bool:
        """The stored event holds personal data in the clear (written before encryption
        was switched on): destroying a key cannot erase it."""
        ...

    def snapshot_deletion(self, recorder: AggregateRecorder) -> SnapshotDeletion:
        """Deletes snapshots from the snapshot store of ``recorder``."""
        ...


class OutcomeNotes(Protocol):
    """A command's outcome recorded with the request's idempotency key, in the events'
    transaction (:class:`service_idempotency.WriteTruth`): the retry of a request whose
    first answer was lost returns it instead of running the command again, and its route
    answers from it as the first time (the same status, ``Location``, cookie, body)."""

    def note(self, aggregate_id: UUID, version: int, result: object) -> None:
        """Called just before the save: the aggregate the answer names, its version then,
        and the command's result (a number, a text such as a secret reference, an id, or
        nothing; sealed with the client's key, never stored readable)."""
        ...

    def replayed(self, by: str) -> Recorded[Any] | None:
        """Called as the command begins: the outcome noted by this request's first
        attempt, when its answer was lost (``case_id`` is the aggregate's id); None: run
        the command. Raises ``AlreadyRecorded`` for a key recorded without one."""
        ...


class WriteObserver(Protocol):
    """Told of every save committed on its own (not of a group's writes: bulk writers
    own their data). Called after the commit, on the writing thread: it must return at
    once (hand work to its own thread) and never raise into the command."""

    def saved(self, events: Sequence[object]) -> None:
        """The saved domain events, in order."""
        ...


class ServiceStore(Protocol):
    """What a context (``service_*.py``) uses of :class:`service.AkteService`, which
    composes it: the event store, the clock, case files and ids for new aggregates.

    Library errors other than ``IntegrityError`` are translated inside
    :meth:`store_errors` (to ``StoreUnavailable``)."""

    @property
    def clock(self) -> Clock: ...

    @property
    def recorder(self) -> ApplicationRecorder: ...

    @property
    def mapper(self) -> Mapper[UUID]: ...

    @property
    def writes(self) -> OutcomeNotes:
        """Records a public command's outcome with its idempotency key, and replays it."""
        ...

    def act(self, by: str, at: datetime | None) -> Act:
        """Who acts, when (business time) and when it is recorded (the clock)."""
        ...

    def store_errors(self) -> AbstractContextManager[None]: ...

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """Save in one transaction; ``IntegrityError`` goes to the caller."""
        ...

    def find(self, aggregate_id: UUID, kind: type[A], *, version: int | None = None) -> A | None:
        """The aggregate with this id (at ``version``); None: none of this kind."""
        ...

    def events_of(
        self,
        aggregate_id: UUID,
        event_kind: type[E],
        not_found: Exception,
        after_version: int = 0,
        limit: int | None = None,
    ) -> list[E]:
        """The events after ``after_version``; ``not_found`` unless they are of this kind."""
        ...

    def get_case(self, case_id: UUID, *, version: int | None = None) -> CaseFile: ...

    def find_case_by_reference(self, office_id: str, reference: str) -> UUID: ...

    def change_case(
        self,
        case_id: UUID,
        expected_version: int,
        by: str,
        at: datetime | None,
        command: Callable[[CaseFile, Act], T],
    ) -> Recorded[T]:
        """Run one command on the case file at ``expected_version`` and save its events."""
        ...

    def new_personal_id(self) -> UUID:
        """The id of a new aggregate with personal data (inside a command marked
        ``gives_back_unwritten_ids``)."""
        ...

    def case_lock(self, case_id: UUID) -> AbstractContextManager[Any]:
        """The case file's command lock: held while a command loads, changes and saves it."""
        ...

    def uncache_case(self, case_id: UUID) -> None:
        """Drop the cached copy of the case file (it is changed outside ``change_case``)."""
        ...

    def cache_case(self, case: CaseFile) -> None:
        """Keep the case file, as saved, for the next command."""
        ...


# ------------------------------------------------------- what became of a write


@dataclass(frozen=True)
class StoredAnswer:
    """The first answer to a write with an idempotency key, as sent: replayed to retries."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(frozen=True)
class NewKey:
    """An idempotency key to record in the transaction of a write's events."""

    key_hash: str
    """Hash of the acting user and the client's key: the key itself is not stored."""
    fingerprint: str
    attempt: str
    """Random per attempt: tells the request that wrote the row from a concurrent twin."""
    recorded_at: datetime
    replaces_before: datetime
    """A row with this hash recorded before this moment has expired and is replaced."""
    outcome: bytes | None = None
    """The command's outcome, sealed with the client's key (which the store never holds),
    kept in the key's row until the first answer replaces it; None: none noted."""


@dataclass(frozen=True)
class KeyRecord:
    key_hash: str
    fingerprint: str
    attempt: str
    originator_id: str
    originator_version: int
    position: int
    recorded_at: datetime
    answer: StoredAnswer | None
    outcome: bytes | None = None
    """While the first answer is not stored: the sealed outcome recorded with the key."""


@runtime_checkable
class WriteOutcomes(Protocol):
    """Finds out what became of a write whose acknowledgement was lost: the idempotency
    keys recorded with the events (``NewKey`` passed to ``save`` as ``idempotency``), and
    the log position of a stored event. Implemented by the event recorders."""

    def find_key(self, key_hash: str, recorded_after: datetime) -> KeyRecord | None: ...

    def store_answer(self, key_hash: str, attempt: str, answer: StoredAnswer) -> None: ...

    def forget_keys(self, recorded_before: datetime) -> int:
        """Delete the keys recorded before; returns how many."""
        ...

    def position_of(self, originator_id: UUID, version: int) -> int | None:
        """The notification id of the aggregate's event at ``version``; None: none."""
        ...
