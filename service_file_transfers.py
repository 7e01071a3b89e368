"""Case files between offices after a move (§ 67 AufenthV); the context
``service.file_transfers``.

The new office (B) requests the file of a person who moved in from the previous office
(A) (:meth:`FileTransfers.request_file`); A answers (:meth:`FileTransfers.answer_request`)
with the file, or with a reason why not; B takes the file over as a new case file of its
own, with provenance (:meth:`FileTransfers.receive_file`), or records the refusal
(:meth:`FileTransfers.receive_refusal`). The messages travel through the broker; the
adapter (:mod:`adapters.inbox.file_transfers`) turns them into the values here and back.

**What A sends.** The file's events up to the answer, each as its kind, version, who and
when, its non-personal fields (``facts``) and its personal ones; the documents with their
bytes; and the proof: the same events as A stored them, with their hash-chain entries
(:class:`ChainProofs`), so that B checks, without asking A, that the chain is intact and
that the facts it takes over are those A recorded. A records the transfer on its file
(:meth:`domain.case_file.CaseFile.transfer_to_office`, the file ends there) in the
transaction that claims the request.

**Once each.** A claims a request by its message id
(:class:`domain.file_transfers.FileRequestAnswer`): a request delivered again is
answered again with the same answer message id, and nothing is recorded twice. B's
request (:class:`domain.file_transfers.FileRequest`) ends once: a second delivery of the
answer, or a late answer of another kind, changes nothing.

**Returned.** When B cannot take the file over (the answer breaks B's schema or rules,
the proof does not verify, B's request ended), B returns the answer to the subject it
names (``antwortAn``: A's inbox); A records the return once
(:meth:`FileTransfers.receive_return`): ``CaseFile.HandOverReturned`` on the file, which is
active again, and ``FileRequestAnswer.HandOverReturned`` on the claim. A return of an
answer A never sent, or from another office than the one it went to, changes nothing.
The request delivered again after that is not answered again (B asks anew).

**Not responsible.** A request for a person A has no certain active file of is refused
(``nicht-zustaendig``), as is one for a file handed on already; a file with open
procedures or erased data cannot be sent now (``hinderungsgrund``), and so is a file
larger than the broker takes (``fits``): sent, it would reach nobody while A's file
stayed ended.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Final, Literal, Protocol
from uuid import UUID, uuid4

from eventsourcing.persistence import IntegrityError

from domain.acts import Act
from domain.case_file import (
    CaseFile,
    MasterData,
    TakenOverPart,
    TakeOverProvenance,
    event_field_names,
)
from domain.case_reference import CaseReference
from domain.errors import DomainError, InvalidValue
from domain.file_transfers import FileRequest, FileRequestAnswer, RefusalReason
from domain.personal import personal_fields
from service_common import (
    CaseNotFound,
    ServiceError,
    StoreUnavailable,
    generated_reference,
    gives_back_unwritten_ids,
    last_position,
)
from service_intake import Intake
from service_notices import INBOX_USER, MessageRefused, Notices
from service_ports import ServiceStore

logger = logging.getLogger("akte.service")

_MAX_ATTEMPTS: Final = 5
TOPIC_PREFIX: Final = "domain.case_file:CaseFile."
"""How the store names a case-file event's class (the proof's topics)."""


class FileRequestNotFound(ServiceError):
    def __init__(self, request_id: UUID) -> None:
        super().__init__(f"file request {request_id} does not exist")


class ProofsUnavailable(ServiceError):
    """The event store keeps no hash chain: no file can be sent or checked."""


class NotTakenOver(ServiceError):
    def __init__(self, case_id: UUID) -> None:
        super().__init__(f"case file {case_id} was not taken over from another office")


@dataclass(frozen=True)
class RequestedPerson:
    """Who the file is requested for: as the new office knows the person."""

    surname: str
    given_names: str
    date_of_birth: date
    file_number: str | None = None
    """The previous office's file number, when the person knows it."""


@dataclass(frozen=True)
class FileEvent:
    """One event of the file as sent: typed values (the adapter turns them into JSON)."""

    kind: str
    version: int
    at: datetime
    recorded_at: datetime
    by: str
    facts: dict[str, Any]
    personal: dict[str, Any]


@dataclass(frozen=True)
class FileDocument:
    number: int
    sha256: str
    size_bytes: int
    media_type: str
    content: bytes


@dataclass(frozen=True)
class SentFile:
    """The file as A sends it: its events, documents and the proof of its chain."""

    case_id: UUID
    reference: str
    master_data: MasterData
    events: list[FileEvent]
    documents: list[FileDocument]
    proof: dict[str, Any]
    sent_at: datetime
    sent_by: str


class ChainProofs(Protocol):
    """The hash chain's side of a transfer, implemented by the adapter that knows the
    store's chain (:mod:`adapters.inbox.file_transfers`)."""

    def proof_of(self, case_id: UUID, up_to_version: int) -> dict[str, Any]:
        """The file's stored events 1..``up_to_version`` with their chain entries."""
        ...

    def problems(
        self, proof: Mapping[str, Any], case_id: UUID, events: Sequence[FileEvent]
    ) -> list[str]:
        """What breaks: the chain, or the events as told against the events as stored
        (empty: intact and the same). Names versions and fields, never values."""
        ...

    def stream_head(self, proof: Mapping[str, Any]) -> str: ...

    def unchecked(self, proof: Mapping[str, Any]) -> list[int]:
        """The versions whose stored form cannot be read (compressed or encrypted as a
        whole): their chain is checked, their fields are not compared."""
        ...


@dataclass(frozen=True)
class OutgoingRequest:
    request_id: UUID
    """Also the request message's id (``nachrichtUUID``)."""
    office_id: str
    from_office_id: str
    person: RequestedPerson
    moved_in_on: date
    position: int


@dataclass(frozen=True)
class InboundFileRequest:
    office_id: str
    """This office (A), the request's reader."""
    requesting_office_id: str
    message_id: str
    person: RequestedPerson
    moved_in_on: date


@dataclass(frozen=True)
class RequestAnswer:
    """A's answer to a request: the file, or a refusal; ``duplicate``: answered before,
    this delivery recorded nothing (the same answer goes out again)."""

    request: InboundFileRequest
    answer_message_id: str
    outcome: Literal["sent", "refused", "returned"]
    """``returned``: the file sent came back (a request delivered again after the
    return): nothing goes out again."""
    reason: RefusalReason | None = None
    file: SentFile | None = None
    duplicate: bool = False
    position: int | None = None
    too_large: bool = False
    """Refused because the file is larger than the way the answer goes takes."""


@dataclass(frozen=True)
class InboundFile:
    office_id: str
    """This office (B)."""
    sender: str
    message_id: str
    request_id: UUID
    file: SentFile


@dataclass(frozen=True)
class InboundRefusal:
    office_id: str
    sender: str
    message_id: str
    request_id: UUID
    reason: RefusalReason


@dataclass(frozen=True)
class RequestOutcome:
    """What became of B's request with this answer; ``duplicate``: it had ended before."""

    request_id: UUID
    status: str
    case_id: UUID | None = None
    duplicate: bool = False
    position: int | None = None


@dataclass(frozen=True)
class InboundReturn:
    """The requesting office's ``Administration.ReturnToSender`` of a file A sent."""

    office_id: str
    """This office (A), which sent the file."""
    sender: str
    """The office that returned it (the return's author)."""
    message_id: str
    """The return's own message id."""
    answer_message_id: str
    """The returned answer's message id."""
    request_message_id: str
    """The request the returned answer answered (its ``bezug``)."""
    reason: str
    hints: str


@dataclass(frozen=True)
class ReturnOutcome:
    """What a return did: ``reopened`` (the file is active again; ``duplicate``: it had
    come back before, nothing changed now) or ``ignored`` (it names no file this office
    sent to its sender, or the file cannot take it: nothing changed; ``why`` says which,
    without personal data)."""

    status: Literal["reopened", "ignored"]
    case_id: UUID | None = None
    duplicate: bool = False
    position: int | None = None
    why: str | None = None


@dataclass(frozen=True)
class TransferCheck:
    """B's offline check of a taken-over file against the previous office's chain."""

    case_id: UUID
    from_office_id: str
    from_case_id: str
    parts: int
    stream_head: str
    problems: list[str] = field(default_factory=list)
    unchecked: list[int] = field(default_factory=list)
    """Versions of the previous file only chain-checked: their stored form is unreadable
    here, so their fields could not be compared (not a problem, but not proven either)."""

    @property
    def ok(self) -> bool:
        return not self.problems


def proof_bytes(proof: Mapping[str, Any]) -> bytes:
    """The proof as B keeps it: canonical JSON, so its hash is its identity."""
    return json.dumps(proof, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class FileTransfers:
    """File requests out and in, answers out and in; ``service.file_transfers``."""

    def __init__(self, store: ServiceStore, intake: Intake, notices: Notices) -> None:
        self._store = store
        self._intake = intake
        self._notices = notices
        self._proofs: ChainProofs | None = None

    def use_proofs(self, proofs: ChainProofs) -> None:
        """The chain's side (set by the composition root once the store is built)."""
        self._proofs = proofs

    @property
    def proofs(self) -> ChainProofs:
        if self._proofs is None:
            raise ProofsUnavailable("the event store keeps no hash chain")
        return self._proofs

    # --------------------------------------------------------------- B: request

    def request_file(
        self,
        *,
        office_id: str,
        from_office_id: str,
        person: RequestedPerson,
        moved_in_on: date,
        by: str,
        at: datetime | None = None,
    ) -> OutgoingRequest:
        """Record B's request for the file; the adapter sends it (its id is the message's)."""
        act = self._store.act(by, at)
        request_id = uuid4()  # no personal data in the request: no key of its own
        request = FileRequest.send(
            request_id=request_id,
            office_id=office_id,
            from_office_id=from_office_id,
            surname=person.surname,
            given_names=person.given_names,
            date_of_birth=person.date_of_birth,
            file_number=person.file_number,
            moved_in_on=moved_in_on,
            act=act,
        )
        with self._store.store_errors():
            position = last_position(self._store.save(request))
        return OutgoingRequest(request_id, office_id, from_office_id, person, moved_in_on, position)

    def get_request(self, request_id: UUID) -> FileRequest:
        found = self._store.find(request_id, FileRequest)
        if found is None:
            raise FileRequestNotFound(request_id)
        return found

    # ---------------------------------------------------------------- A: answer

    def answer_request(
        self,
        inbound: InboundFileRequest,
        *,
        at: datetime | None = None,
        fits: Callable[[SentFile, str], bool] | None = None,
    ) -> RequestAnswer:
        """Answer a request once: the file (and record its transfer), or a refusal.
        ``fits``: whether the way the answer goes takes the file sent as the answer with
        this message id (None: it takes any); a file it does not take is refused
        (``hinderungsgrund``, ``too_large``) and stays this office's."""
        claim_id = FileRequestAnswer.id_for(
            inbound.office_id, inbound.requesting_office_id, inbound.message_id
        )
        if inbound.requesting_office_id == inbound.office_id:
            raise MessageRefused("nachrichtenkopf/autor", "an office cannot request its own file")
        for _attempt in range(_MAX_ATTEMPTS):
            claim = self._store.find(claim_id, FileRequestAnswer)
            if claim is not None:
                return self._repeat(inbound, claim)
            act = self._store.act(INBOX_USER, at)
            person = inbound.person
            match = self._notices.match(
                inbound.office_id,
                person.surname,
                person.given_names,
                person.date_of_birth,
                person.file_number,
            )
            try:
                if match.case_id is None:
                    return self._refuse(inbound, "nicht-zustaendig", act)
                return self._send(inbound, match.case_id, act, fits)
            except IntegrityError:
                continue  # a twin delivery claimed it, or the file moved on: look again
        msg = "the file request could not be answered: its case file kept changing"
        raise StoreUnavailable(msg)

    def _refuse(
        self, inbound: InboundFileRequest, reason: RefusalReason, act: Act
    ) -> RequestAnswer:
        answer_id = str(uuid4())
        claim = FileRequestAnswer.answer(
            office_id=inbound.office_id,
            requesting_office_id=inbound.requesting_office_id,
            request_message_id=inbound.message_id,
            answer_message_id=answer_id,
            outcome="refused",
            reason=reason,
            case_id=None,
            case_version=0,
            act=act,
        )
        with self._store.store_errors():
            position = last_position(self._store.save(claim))
        return RequestAnswer(inbound, answer_id, "refused", reason=reason, position=position)

    def _send(
        self,
        inbound: InboundFileRequest,
        case_id: UUID,
        act: Act,
        fits: Callable[[SentFile, str], bool] | None,
    ) -> RequestAnswer:
        with self._store.case_lock(case_id):
            self._store.uncache_case(case_id)
            case = self._store.get_case(case_id)
            if case.is_erased or any(procedure.is_open for procedure in case.procedures):
                return self._refuse(inbound, "hinderungsgrund", act)
            version = case.version
            file = self._file(case, version, act.at, act.by)
            answer_id = str(uuid4())
            if fits is not None and not fits(file, answer_id):
                # Recorded as sent, the file would end here and reach B never: refused
                # instead, B learns at once and A keeps a file that takes commands.
                refused = self._refuse(inbound, "hinderungsgrund", act)
                return replace(refused, too_large=True)
            try:
                case.transfer_to_office(
                    to_office_id=inbound.requesting_office_id, reason=None, act=act
                )
            except DomainError:
                # A rule of the file's own (a decision recorded after now, an office id
                # that is no code): it cannot go now.
                return self._refuse(inbound, "hinderungsgrund", act)
            claim = FileRequestAnswer.answer(
                office_id=inbound.office_id,
                requesting_office_id=inbound.requesting_office_id,
                request_message_id=inbound.message_id,
                answer_message_id=answer_id,
                outcome="sent",
                reason=None,
                case_id=case_id,
                case_version=version,
                act=act,
            )
            with self._store.store_errors():
                position = last_position(self._store.save(case, claim))
            self._store.cache_case(case)
        logger.info("file request answered: case file %s sent", case_id)
        return RequestAnswer(inbound, answer_id, "sent", file=file, position=position)

    def _repeat(self, inbound: InboundFileRequest, claim: FileRequestAnswer) -> RequestAnswer:
        """The answer given before, again (same message id): B recognises it. A file that
        came back is not sent again: this office holds it, and B asks anew if it will."""
        if claim.is_returned:
            return RequestAnswer(inbound, claim.answer_message_id, "returned", duplicate=True)
        if claim.outcome == "refused" or claim.case_id is None:
            reason: RefusalReason = (
                "hinderungsgrund" if claim.reason == "hinderungsgrund" else "nicht-zustaendig"
            )
            return RequestAnswer(
                inbound, claim.answer_message_id, "refused", reason=reason, duplicate=True
            )
        case_id = UUID(claim.case_id)
        case = self._store.get_case(case_id, version=claim.case_version)
        assert claim.answered_at is not None  # set by the claim's only event
        file = self._file(case, claim.case_version, claim.answered_at, claim.answered_by)
        return RequestAnswer(inbound, claim.answer_message_id, "sent", file=file, duplicate=True)

    def _file(self, case: CaseFile, version: int, sent_at: datetime, sent_by: str) -> SentFile:
        events = self._store.events_of(
            case.id, CaseFile.Event, CaseNotFound(case.id), limit=version
        )
        told = [told_event(event) for event in events]
        documents = [
            FileDocument(
                number=document.number,
                sha256=document.sha256,
                size_bytes=document.size_bytes,
                media_type=document.media_type,
                content=self._intake.documents.read_bytes(
                    document.sha256, owner=case.id, size_bytes=document.size_bytes
                ),
            )
            for document in case.documents
        ]
        return SentFile(
            case_id=case.id,
            reference=case.reference,
            master_data=case.master_data,
            events=told,
            documents=documents,
            proof=self.proofs.proof_of(case.id, version),
            sent_at=sent_at,
            sent_by=sent_by,
        )

    # ------------------------------------------------------------ A: returned

    def receive_return(
        self, inbound: InboundReturn, *, at: datetime | None = None
    ) -> ReturnOutcome:
        """The requesting office returned a file this office sent: record it on the file
        (active again) and on the answer, once. A return naming no file this office sent
        to that office changes nothing."""
        claim_id = FileRequestAnswer.id_for(
            inbound.office_id, inbound.sender, inbound.request_message_id
        )
        for _attempt in range(_MAX_ATTEMPTS):
            claim = self._store.find(claim_id, FileRequestAnswer)
            if (
                claim is None
                or claim.outcome != "sent"
                or claim.case_id is None
                or claim.answer_message_id != inbound.answer_message_id
            ):
                return _ignored(None, "it names no file this office sent to its sender")
            case_id = UUID(claim.case_id)
            if claim.is_returned:
                return ReturnOutcome("reopened", case_id, duplicate=True)
            act = self._store.act(INBOX_USER, at)
            try:
                return self._reopen(inbound, claim, case_id, act)
            except IntegrityError:
                continue  # a twin delivery recorded it, or the file changed: look again
        msg = "the return could not be recorded: the case file kept changing"
        raise StoreUnavailable(msg)

    def _reopen(
        self, inbound: InboundReturn, claim: FileRequestAnswer, case_id: UUID, act: Act
    ) -> ReturnOutcome:
        with self._store.case_lock(case_id):
            self._store.uncache_case(case_id)
            case = self._store.get_case(case_id)
            try:
                case.return_hand_over(
                    to_office_id=inbound.sender,
                    answer_message_id=inbound.answer_message_id,
                    return_message_id=inbound.message_id,
                    reason=inbound.reason,
                    hints=inbound.hints,
                    act=act,
                )
                claim.note_return(
                    return_message_id=inbound.message_id, reason=inbound.reason, act=act
                )
            except DomainError as error:
                # The file is no longer the one handed over (its data erased), or the
                # return's values break a rule: nothing is recorded.
                return _ignored(case_id, f"the case file cannot take it back ({error.code})")
            with self._store.store_errors():
                position = last_position(self._store.save(case, claim))
            self._store.cache_case(case)
        logger.info("file transfer returned: case file %s is active again", case_id)
        return ReturnOutcome("reopened", case_id, position=position)

    # ------------------------------------------------------------- B: take over

    @gives_back_unwritten_ids
    def receive_file(self, inbound: InboundFile, *, at: datetime | None = None) -> RequestOutcome:
        """Take the file over as a new case file of this office, with provenance; once.
        Raises :class:`MessageRefused` for an answer that names no open request of ours,
        or whose proof does not verify: nothing is recorded then."""
        for _attempt in range(_MAX_ATTEMPTS):
            request = self._answered_request(inbound.office_id, inbound.sender, inbound.request_id)
            if request.status != "requested":
                return self._ended(request)
            file = inbound.file
            problems = self.proofs.problems(file.proof, file.case_id, file.events)
            if problems:
                raise MessageRefused("nachweis", "the proof does not verify: " + problems[0])
            act = self._store.act(INBOX_USER, at)
            try:
                return self._take_over(inbound, request, act)
            except IntegrityError:
                continue
        msg = "the file could not be taken over: the request kept changing"
        raise StoreUnavailable(msg)

    def _answered_request(self, office_id: str, sender: str, request_id: UUID) -> FileRequest:
        request = self._store.find(request_id, FileRequest)
        if request is None or request.office_id != office_id:
            raise MessageRefused("bezug/nachrichtUUID", "names no file request of this office")
        if request.from_office_id != sender:
            raise MessageRefused(
                "nachrichtenkopf/autor", "is not the office the file was requested from"
            )
        return request

    def _ended(self, request: FileRequest) -> RequestOutcome:
        case_id = None if request.case_id is None else UUID(request.case_id)
        return RequestOutcome(request.id, request.status, case_id, duplicate=True)

    def _take_over(self, inbound: InboundFile, request: FileRequest, act: Act) -> RequestOutcome:
        file = inbound.file
        case_id = self._store.new_personal_id()
        reference = generated_reference(case_id, act)
        try:
            case = CaseFile.open(
                case_id=case_id,
                office_id=inbound.office_id,
                reference=reference,
                master_data=file.master_data,
                act=act,
            )
            parts = [_part(event) for event in file.events]
            attached = {
                part.facts["document_number"]: part.facts["sha256"]
                for part in parts
                if part.source_kind == "DocumentAttached"
            }
            sent = {document.number: document for document in file.documents}
            for number, sha256 in attached.items():
                document = sent.get(number)
                if document is None or document.sha256 != sha256:
                    raise InvalidValue("dokumente", f"document {number} is missing or differs")
            proof = proof_bytes(file.proof)
            provenance = TakeOverProvenance(
                from_office_id=inbound.sender,
                from_reference=file.reference,
                from_case_id=file.case_id.hex,
                request_id=str(request.id),
                answer_message_id=inbound.message_id,
                sent_at=file.sent_at,
                sent_by=file.sent_by,
                proof_sha256=hashlib.sha256(proof).hexdigest(),
                proof_size_bytes=len(proof),
                stream_head=self.proofs.stream_head(file.proof),
            )
            case.take_over(provenance=provenance, parts=parts, act=act)
        except InvalidValue as error:
            raise MessageRefused(error.field, str(error).partition(": ")[2]) from None
        claim = CaseReference.claim(
            office_id=inbound.office_id, reference=reference, case_id=case_id, act=act
        )
        request.take_over(answer_message_id=inbound.message_id, case_id=case_id, act=act)
        # The files first, then the events that name them (as every upload does).
        documents = self._intake.documents
        for document in file.documents:
            stored = documents.put_bytes(document.content, owner=case_id)
            if stored.sha256 != document.sha256:
                raise MessageRefused(
                    "dokumente", f"document {document.number} differs from its hash"
                )
        documents.put_bytes(proof, owner=case_id)
        with self._store.store_errors():
            position = last_position(self._store.save(case, claim, request))
        self._store.cache_case(case)
        logger.info("file taken over: request %s, case file %s", request.id, case_id)
        return RequestOutcome(request.id, "taken_over", case_id, position=position)

    def receive_refusal(
        self, inbound: InboundRefusal, *, at: datetime | None = None
    ) -> RequestOutcome:
        """Record that the previous office does not send the file; once."""
        for _attempt in range(_MAX_ATTEMPTS):
            request = self._answered_request(inbound.office_id, inbound.sender, inbound.request_id)
            if request.status != "requested":
                return self._ended(request)
            act = self._store.act(INBOX_USER, at)
            request.refuse(answer_message_id=inbound.message_id, reason=inbound.reason, act=act)
            try:
                with self._store.store_errors():
                    position = last_position(self._store.save(request))
            except IntegrityError:
                continue
            return RequestOutcome(request.id, "refused", position=position)
        msg = "the refusal could not be recorded: the request kept changing"
        raise StoreUnavailable(msg)

    # ----------------------------------------------------------- B: check later

    def check_taken_over(self, case_id: UUID) -> TransferCheck:
        """Check a taken-over file against the previous office's chain, from what this
        office keeps (the proof in the document store, the parts in its log): no
        message to the previous office is needed."""
        events = self._store.events_of(case_id, CaseFile.Event, CaseNotFound(case_id))
        taken = next((e for e in events if isinstance(e, CaseFile.TakenOver)), None)
        if taken is None:
            raise NotTakenOver(case_id)
        parts = [e for e in events if isinstance(e, CaseFile.PartTakenOver)]
        problems: list[str] = []
        proof_data = self._intake.documents.read_bytes(
            taken.proof_sha256, owner=case_id, size_bytes=taken.proof_size_bytes
        )
        proof = json.loads(proof_data)
        told = [
            FileEvent(
                kind=part.source_kind,
                version=part.source_version,
                at=part.source_at,
                recorded_at=part.source_recorded_at,
                by=part.source_by,
                facts=dict(part.facts),
                personal=dict(part.personal) if isinstance(part.personal, dict) else {},
            )
            for part in parts
        ]
        if len(told) != taken.parts:
            problems.append(f"{len(told)} parts on file, {taken.parts} taken over")
        problems += self.proofs.problems(proof, UUID(taken.from_case_id), told)
        head = self.proofs.stream_head(proof)
        if head != taken.stream_head:
            problems.append(
                "the proof's stream head differs from the one recorded at the take-over"
            )
        return TransferCheck(
            case_id,
            taken.from_office_id,
            taken.from_case_id,
            len(parts),
            head,
            problems,
            self.proofs.unchecked(proof),
        )


def _ignored(case_id: UUID | None, why: str) -> ReturnOutcome:
    logger.warning("file transfer return ignored: %s", why)
    return ReturnOutcome("ignored", case_id, why=why)


def told_event(event: CaseFile.Event) -> FileEvent:
    """An event as it is sent: its fields split into facts and personal data."""
    kind = type(event)
    names = event_field_names(kind)
    personal = personal_fields(kind)
    values = vars(event)
    return FileEvent(
        kind=kind.__name__,
        version=event.originator_version,
        at=event.at,
        recorded_at=event.timestamp,
        by=event.by,
        facts={name: values[name] for name in sorted(names - personal)},
        personal={name: values[name] for name in sorted(names & personal)},
    )


def _part(event: FileEvent) -> TakenOverPart:
    return TakenOverPart(
        source_kind=event.kind,
        source_version=event.version,
        source_at=event.at,
        source_recorded_at=event.recorded_at,
        source_by=event.by,
        facts=dict(event.facts),
        personal=dict(event.personal),
    )


__all__ = [
    "TOPIC_PREFIX",
    "ChainProofs",
    "FileDocument",
    "FileEvent",
    "FileRequestNotFound",
    "FileTransfers",
    "InboundFile",
    "InboundFileRequest",
    "InboundRefusal",
    "InboundReturn",
    "NotTakenOver",
    "OutgoingRequest",
    "ProofsUnavailable",
    "RequestAnswer",
    "RequestOutcome",
    "RequestedPerson",
    "ReturnOutcome",
    "SentFile",
    "TransferCheck",
    "proof_bytes",
    "told_event",
]
