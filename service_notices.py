"""Messages in: registration-office notices (§ 72 AufenthV) and online applications from
the state's portal; the context ``service.notices``.

**Once each.** Every message is claimed by an :class:`domain.inbound_messages.InboundMessage`
whose id is derived from office, channel, sender and the sender's message id, saved in
the transaction of what the message caused. A message delivered again finds its claim and
changes nothing (:attr:`NoticeOutcome.duplicate`); two deliveries racing each other
conflict on the claim's id, and the loser finds the winner's claim.

**Matching a person** (:class:`PersonIndex`): the office's case files by surname and
birth date (every surname a file has had, read from the events that set them, so a
notice quoting the name before a recorded name change still finds it, also after a
restart), and by the file number a notice quotes. A match is certain
when exactly one file fits, its given names are the same, a quoted file number names
that file, and the file is active; then the notice is recorded on the file
(:meth:`domain.case_file.CaseFile.record_registration_notice`). Otherwise it goes to
triage (:class:`domain.registration_notices.RegistrationNotice`) with the reasons and the
candidate files. Names are compared case- and accent-insensitively (NFKD, case folded,
spacing collapsed).

**Invalid messages** are refused with :class:`MessageRefused` before anything is
recorded: a value the domain's rules refuse (a nationality that is no ISO code, a change
that does not fit the kind of notice, a topic the office does not know). The adapter
answers those with a return-to-sender message (:mod:`adapters.inbox`).

**Applications** (:meth:`Notices.receive_application`): with a certain match and an
active file, a procedure (channel ``online_application``) with the attached documents on
that file; otherwise a contact submission through :meth:`service_intake.Intake.submit_contact_form`,
which caseworkers triage as any other. Either way the claim is saved with it.
"""

from __future__ import annotations

import dataclasses
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Final, cast
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.acts import Act
from domain.case_file import CaseFile, RegistrationNoticeChanges, check_registration_notice
from domain.errors import DomainError, InvalidValue, RuleViolation
from domain.inbound_messages import InboundChannel, InboundMessage, InboundOutcome
from domain.intake import ContactDetails
from domain.personal import is_redacted
from domain.registration_notices import (
    NoticedPerson,
    NoticeResolution,
    RegistrationNotice,
    check_noticed_person,
)
from service_common import (
    CaseNotFound,
    ReferenceNotFound,
    ServiceError,
    StoreUnavailable,
    gives_back_unwritten_ids,
    last_position,
)
from service_intake import IncomingDocument, Intake
from service_ports import Catalogue, ServiceStore, StoredDocument

logger = logging.getLogger("akte.service")

INBOX_USER: Final = "inbox"
"""Who acts when a message is recorded (the messages' worker, not a person)."""
_MAX_ATTEMPTS: Final = 5
_INDEX_PAGE: Final = 1000
_IDENTITY_FIELDS: Final = frozenset({"surname", "date_of_birth"})


def _identity_events() -> tuple[type[CaseFile.Event], ...]:
    """The case-file events that set a surname or a birth date (opened, corrected, a name
    change noticed, and any added later with such a field), found by their fields so that
    a new one cannot be forgotten here."""
    found: list[type[CaseFile.Event]] = []
    for value in vars(CaseFile).values():
        if (
            isinstance(value, type)
            and issubclass(value, CaseFile.Event)
            and dataclasses.is_dataclass(value)
            and _IDENTITY_FIELDS & {field.name for field in dataclasses.fields(value)}
        ):
            found.append(value)
    return tuple(found)


_INDEXED_EVENTS: Final[tuple[type[CaseFile.Event], ...]] = (
    *_identity_events(),
    # A file taken over from another office holds the names that office knew in its
    # parts (the previous office's events, personal fields sealed in ``personal``).
    CaseFile.PartTakenOver,
    CaseFile.PersonalDataErased,
)


class MessageRefused(ServiceError):
    """The message breaks a rule (``field``: which part): nothing was recorded; its
    sender gets it back with the reason. The text names the rule, never the values."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class NoticeNotFound(ServiceError):
    def __init__(self, notice_id: UUID) -> None:
        super().__init__(f"registration notice {notice_id} does not exist")


class NoticeErased(RuleViolation):
    """The notice's personal data was erased with a case file it named as a candidate
    (``service_data_protection``): it can only be dismissed; recording it would write
    redacted values onto a file."""

    code = "notice-erased"


@dataclass(frozen=True)
class InboundNotice:
    """A registration office's notice, as the adapter read it from its message."""

    office_id: str
    sender: str
    message_id: str
    message_type: str
    notice_kind: str
    effective_on: date
    person: NoticedPerson
    changes: RegistrationNoticeChanges = field(default_factory=RegistrationNoticeChanges)


@dataclass(frozen=True)
class Applicant:
    surname: str
    given_names: str
    date_of_birth: date
    email: str
    file_number: str | None = None


@dataclass(frozen=True)
class InboundApplication:
    """An online application from the state's portal (a residence application)."""

    office_id: str
    sender: str
    message_id: str
    message_type: str
    applicant: Applicant
    topic: str
    legal_basis: str | None
    text: str
    documents: Sequence[IncomingDocument] = ()


@dataclass(frozen=True)
class MessageOutcome:
    """What became of a message: ``outcome`` and the id of what it was recorded on."""

    outcome: InboundOutcome
    subject_id: UUID
    duplicate: bool = False
    """Handled before (this delivery changed nothing)."""
    reasons: tuple[str, ...] = ()
    """Why a notice is in triage."""
    position: int | None = None
    receipt: str | None = None
    """A contact submission's receipt reference (first delivery only)."""
    procedure_number: int | None = None


def normalised_name(name: str) -> str:
    """Case, accents and spacing do not tell two names apart."""
    decomposed = unicodedata.normalize("NFKD", name)
    plain = "".join(char for char in decomposed if not unicodedata.combining(char))
    folded = plain.casefold().translate(_LOOK_ALIKE)
    return " ".join(folded.replace("-", " ").split())


_LOOK_ALIKE: Final = str.maketrans({"ı": "i", "ł": "l", "ø": "o", "đ": "d", "æ": "ae"})
"""Letters that do not decompose into a plain letter and an accent."""


@dataclass
class _Indexed:
    office_id: str = ""
    version: int = 0
    """The file's last event read into the index."""
    surname: str | None = None
    date_of_birth: date | None = None
    """The file's identity after that event (the surname normalised)."""
    identities: set[tuple[str, date]] = field(default_factory=set)
    erased: bool = False


class PersonIndex:
    """The office's case files by (surname, birth date): every surname and birth date a
    file has had, kept in memory and brought up to date from the log before each match.

    Built from the events that set them (:data:`_INDEXED_EVENTS`), read in order, not
    from the files' current state: after a restart the index holds the same former names
    as before it, so a notice quoting a name from before a recorded name change still finds
    the file. An erased file is dropped and stays out (its events read redacted)."""

    def __init__(self, store: ServiceStore) -> None:
        self._store = store
        self._position = 0
        self._files: dict[UUID, _Indexed] = {}
        self._by_identity: dict[tuple[str, str, date], set[UUID]] = {}
        self._topics = [get_topic(kind) for kind in _INDEXED_EVENTS]

    def refresh(self) -> None:
        changed: dict[UUID, None] = {}
        while True:
            with self._store.store_errors():
                notifications = self._store.recorder.select_notifications(
                    start=self._position,
                    limit=_INDEX_PAGE,
                    topics=self._topics,
                    inclusive_of_start=False,
                )
            for notification in notifications:
                changed[UUID(str(notification.originator_id))] = None
            if notifications:
                self._position = notifications[-1].id
            if len(notifications) < _INDEX_PAGE:
                break
        for case_id in changed:
            self._index(case_id)

    def _index(self, case_id: UUID) -> None:
        entry = self._files.setdefault(case_id, _Indexed())
        if entry.erased:
            return
        try:
            events = self._store.events_of(
                case_id, CaseFile.Event, CaseNotFound(case_id), after_version=entry.version
            )
        except CaseNotFound:
            return
        for event in events:
            entry.version = event.originator_version
            if isinstance(event, CaseFile.PersonalDataErased):
                for identity in entry.identities:
                    self._by_identity.get((entry.office_id, *identity), set()).discard(case_id)
                entry.identities.clear()
                entry.erased = True
                return
            if isinstance(event, CaseFile.Opened):
                entry.office_id = event.office_id
            # A part taken over: the previous office's event, rebuilt from its decoded
            # fields; only its surname and birth date count (its office is not this one).
            named: object = (
                event.source_event(case_id) if isinstance(event, CaseFile.PartTakenOver) else event
            )
            surname = getattr(named, "surname", None)
            if isinstance(surname, str):
                entry.surname = normalised_name(surname)
            born = getattr(named, "date_of_birth", None)
            if isinstance(born, date):
                entry.date_of_birth = born
            if entry.surname is None or entry.date_of_birth is None:
                continue
            identity = (entry.surname, entry.date_of_birth)
            if identity not in entry.identities:
                entry.identities.add(identity)
                self._by_identity.setdefault((entry.office_id, *identity), set()).add(case_id)

    def candidates(self, office_id: str, surname: str, date_of_birth: date) -> set[UUID]:
        self.refresh()
        key = (office_id, normalised_name(surname), date_of_birth)
        return set(self._by_identity.get(key, set()))


@dataclass(frozen=True)
class Match:
    case_id: UUID | None
    """The file, when the match is certain."""
    reasons: tuple[str, ...]
    candidates: tuple[UUID, ...]


class Notices:
    """Registration-office notices and portal applications in; ``service.notices``."""

    def __init__(self, store: ServiceStore, catalogue: Catalogue, intake: Intake) -> None:
        self._store = store
        self._catalogue = catalogue
        self._intake = intake
        self.index = PersonIndex(store)

    # ------------------------------------------------------------------ matching

    def match(
        self,
        office_id: str,
        surname: str,
        given_names: str,
        date_of_birth: date,
        file_number: str | None,
        *,
        need_active: bool = True,
    ) -> Match:
        """The case file a message is about, if that is certain; else the reasons."""
        candidates = self.index.candidates(office_id, surname, date_of_birth)
        reasons: list[str] = []
        chosen: UUID | None = None
        if file_number is not None:
            try:
                quoted = self._store.find_case_by_reference(office_id, file_number)
            except (ReferenceNotFound, InvalidValue):
                reasons.append("file-number-unknown")
            else:
                if quoted in candidates:
                    chosen = quoted
                else:
                    reasons.append("file-number-names-another-person")
                    candidates.add(quoted)
        if chosen is None and not reasons:
            if len(candidates) == 1:
                chosen = next(iter(candidates))
            elif candidates:
                reasons.append("several-candidates")
            else:
                reasons.append("unknown-person")
        elif chosen is None and not candidates:
            reasons.append("unknown-person")
        if chosen is not None:
            case = self._store.get_case(chosen)
            if normalised_name(case.master_data.given_names) != normalised_name(given_names):
                reasons.append("given-names-differ")
            if need_active and case.status != "active":
                reasons.append("case-file-not-active")
        ordered = tuple(sorted(candidates, key=str))
        return Match(chosen if not reasons else None, tuple(reasons), ordered)

    # ------------------------------------------------------------------ notices

    def _claimed(
        self, office_id: str, channel: str, sender: str, message_id: str
    ) -> MessageOutcome | None:
        claim_id = InboundMessage.id_for(office_id, channel, sender, message_id)
        claim = self._store.find(claim_id, InboundMessage)
        if claim is None:
            return None
        return MessageOutcome(
            outcome=cast(InboundOutcome, claim.outcome),  # written from InboundOutcome
            subject_id=UUID(claim.subject_id),
            duplicate=True,
        )

    def application_handled(
        self, office_id: str, sender: str, message_id: str
    ) -> MessageOutcome | None:
        """The outcome of an application handled before (``duplicate``), or None. The
        adapter asks before it fetches attachments sent by reference, so that a
        redelivery is answered as a duplicate even when the portal no longer holds them."""
        return self._claimed(office_id, "portal", sender, message_id)

    @gives_back_unwritten_ids
    def receive_notice(
        self, notice: InboundNotice, *, at: datetime | None = None
    ) -> MessageOutcome:
        """Record a registration office's notice on the person's file, or put it into
        triage; once per message. Raises :class:`MessageRefused` for an invalid one."""
        for _attempt in range(_MAX_ATTEMPTS):
            found = self._claimed(
                notice.office_id, "meldebehoerde", notice.sender, notice.message_id
            )
            if found is not None:
                return found
            act = self._store.act(INBOX_USER, at)
            _check_notice(notice, act)
            person = notice.person
            match = self.match(
                notice.office_id,
                person.surname,
                person.given_names,
                person.date_of_birth,
                person.file_number,
            )
            try:
                if match.case_id is not None:
                    outcome = self._record_on_case(notice, match.case_id, act)
                else:
                    outcome = self._put_in_triage(notice, match, act)
            except IntegrityError:
                continue  # the claim (a twin delivery) or the file moved on: look again
            return outcome
        msg = "the notice could not be recorded: its case file kept changing"
        raise StoreUnavailable(msg)

    def _claim(
        self,
        channel: InboundChannel,
        office_id: str,
        sender: str,
        message_id: str,
        message_type: str,
        outcome: InboundOutcome,
        subject_id: UUID,
        act: Act,
    ) -> InboundMessage:
        try:
            return InboundMessage.handle(
                office_id=office_id,
                channel=channel,
                sender=sender,
                message_id=message_id,
                message_type=message_type,
                outcome=outcome,
                subject_id=subject_id,
                act=act,
            )
        except InvalidValue as error:
            raise MessageRefused(error.field, str(error).partition(": ")[2]) from None

    def _record_on_case(self, notice: InboundNotice, case_id: UUID, act: Act) -> MessageOutcome:
        claim = self._claim(
            "meldebehoerde",
            notice.office_id,
            notice.sender,
            notice.message_id,
            notice.message_type,
            "recorded",
            case_id,
            act,
        )
        with self._store.case_lock(case_id):
            self._store.uncache_case(case_id)
            case = self._store.get_case(case_id)
            try:
                case.record_registration_notice(
                    notice_kind=notice.notice_kind,
                    message_id=notice.message_id,
                    sender=notice.sender,
                    effective_on=notice.effective_on,
                    changes=notice.changes,
                    act=act,
                )
            except InvalidValue as error:
                raise MessageRefused(error.field, str(error).partition(": ")[2]) from None
            except DomainError:
                match = Match(None, ("refused-by-case-file",), (case_id,))
                return self._put_in_triage(notice, match, act)
            with self._store.store_errors():
                recordings = self._store.save(case, claim)
            self._store.cache_case(case)
        return MessageOutcome("recorded", case_id, position=last_position(recordings))

    def _put_in_triage(self, notice: InboundNotice, match: Match, act: Act) -> MessageOutcome:
        notice_id = self._store.new_personal_id()
        try:
            triage = RegistrationNotice.put_in_triage(
                notice_id=notice_id,
                office_id=notice.office_id,
                notice_kind=notice.notice_kind,
                message_id=notice.message_id,
                sender=notice.sender,
                effective_on=notice.effective_on,
                person=notice.person,
                changes=notice.changes,
                reasons=list(match.reasons),
                candidate_case_ids=list(match.candidates),
                act=act,
            )
        except InvalidValue as error:
            raise MessageRefused(error.field, str(error).partition(": ")[2]) from None
        claim = self._claim(
            "meldebehoerde",
            notice.office_id,
            notice.sender,
            notice.message_id,
            notice.message_type,
            "triage",
            notice_id,
            act,
        )
        with self._store.store_errors():
            recordings = self._store.save(triage, claim)
        return MessageOutcome(
            "triage", notice_id, reasons=match.reasons, position=last_position(recordings)
        )

    def get_notice(self, notice_id: UUID) -> RegistrationNotice:
        found = self._store.find(notice_id, RegistrationNotice)
        if found is None:
            raise NoticeNotFound(notice_id)
        return found

    def resolve_notice(
        self,
        notice_id: UUID,
        *,
        by: str,
        resolution: NoticeResolution,
        case_id: UUID | None = None,
        at: datetime | None = None,
    ) -> int:
        """A caseworker records a notice from triage on ``case_id``, or dismisses it; the
        notice's and the file's events in one transaction. Returns the log position."""
        act = self._store.act(by, at)
        notice = self.get_notice(notice_id)
        if resolution == "recorded_on_case_file" and is_redacted(notice.person.surname):
            raise NoticeErased(
                "the notice's personal data was erased with a case file it named: dismiss "
                "it, and ask the registration office to send the notice again"
            )
        notice.resolve(resolution=resolution, case_id=case_id, act=act)
        if case_id is None:
            with self._store.store_errors():
                return last_position(self._store.save(notice))
        with self._store.case_lock(case_id):
            self._store.uncache_case(case_id)
            case = self._store.get_case(case_id)
            if case.office_id != notice.office_id:
                # As if it did not exist: another office's file is not for this office's
                # caseworkers to learn of (every other route answers it with a 404).
                raise CaseNotFound(case_id)
            case.record_registration_notice(
                notice_kind=notice.notice_kind,
                message_id=notice.message_id,
                sender=notice.sender,
                effective_on=notice.effective_on,
                changes=notice.changes,
                act=act,
            )
            with self._store.store_errors():
                recordings = self._store.save(case, notice)
            self._store.cache_case(case)
        return last_position(recordings)

    # ------------------------------------------------------------ applications

    @gives_back_unwritten_ids
    def receive_application(
        self, application: InboundApplication, *, at: datetime | None = None
    ) -> MessageOutcome:
        """A procedure on the applicant's file when the match is certain, else a contact
        submission; once per message. Raises :class:`MessageRefused` for an invalid one."""
        try:
            self._catalogue.check_topic("topic", application.topic)
            self._catalogue.check_fits_topic(application.topic, application.legal_basis)
        except InvalidValue as error:
            raise MessageRefused(error.field, str(error).partition(": ")[2]) from None
        for _attempt in range(_MAX_ATTEMPTS):
            found = self._claimed(
                application.office_id, "portal", application.sender, application.message_id
            )
            if found is not None:
                return found
            act = self._store.act(INBOX_USER, at)
            applicant = application.applicant
            match = self.match(
                application.office_id,
                applicant.surname,
                applicant.given_names,
                applicant.date_of_birth,
                applicant.file_number,
            )
            try:
                if match.case_id is not None:
                    return self._procedure(application, match.case_id, act)
                return self._submission(application, act)
            except IntegrityError:
                continue
        msg = "the application could not be recorded: its case file kept changing"
        raise StoreUnavailable(msg)

    def _procedure(
        self, application: InboundApplication, case_id: UUID, act: Act
    ) -> MessageOutcome:
        claim = self._claim(
            "portal",
            application.office_id,
            application.sender,
            application.message_id,
            application.message_type,
            "procedure",
            case_id,
            act,
        )
        with self._store.case_lock(case_id):
            self._store.uncache_case(case_id)
            case = self._store.get_case(case_id)
            try:
                number = case.receive_procedure(
                    channel="online_application",
                    topic=application.topic,
                    legal_basis=application.legal_basis,
                    act=act,
                )
                for document in application.documents:
                    case.attach_document(
                        kind=document.kind,
                        sha256=document.sha256,
                        size_bytes=document.size_bytes,
                        media_type=document.media_type,
                        page_count=document.page_count,
                        source="contact_form",
                        act=act,
                    )
            except InvalidValue as error:
                raise MessageRefused(error.field, str(error).partition(": ")[2]) from None
            for document in application.documents:
                _store_file(self._intake, document, owner=case_id)
            with self._store.store_errors():
                recordings = self._store.save(case, claim)
            self._store.cache_case(case)
        return MessageOutcome(
            "procedure", case_id, position=last_position(recordings), procedure_number=number
        )

    def _submission(self, application: InboundApplication, act: Act) -> MessageOutcome:
        applicant = application.applicant
        contact = ContactDetails(
            surname=applicant.surname,
            given_names=applicant.given_names,
            email=applicant.email,
            date_of_birth=applicant.date_of_birth,
            file_number=applicant.file_number,
        )
        basis = application.legal_basis or "-"
        text = f"Online-Antrag (Rechtsgrundlage angestrebt: {basis})\n\n{application.text}"

        def claim_for(submission_id: UUID) -> InboundMessage:
            return self._claim(
                "portal",
                application.office_id,
                application.sender,
                application.message_id,
                application.message_type,
                "submission",
                submission_id,
                act,
            )

        try:
            recorded = self._intake.submit_contact_form(
                office_id=application.office_id,
                topic=application.topic,
                message=text,
                contact=contact,
                files=application.documents,
                by=INBOX_USER,
                at=act.at,
                also_record=claim_for,
            )
        except InvalidValue as error:
            raise MessageRefused(error.field, str(error).partition(": ")[2]) from None
        return MessageOutcome(
            "submission",
            recorded.submission_id,
            position=recorded.position,
            receipt=recorded.result,
        )


def _check_notice(notice: InboundNotice, act: Act) -> None:
    """The same rules whatever the match: an invalid notice is refused, never triaged."""
    try:
        check_noticed_person(notice.person)
        check_registration_notice(
            notice_kind=notice.notice_kind,
            message_id=notice.message_id,
            sender=notice.sender,
            effective_on=notice.effective_on,
            changes=notice.changes,
            today=act.at.date(),
        )
    except InvalidValue as error:
        raise MessageRefused(error.field, str(error).partition(": ")[2]) from None


def _store_file(intake: Intake, document: IncomingDocument, *, owner: UUID) -> None:
    """Put an attached file into the document store before the event naming it."""
    address = StoredDocument(document.sha256, document.size_bytes)
    if isinstance(document.content, Path):
        with document.content.open("rb") as source:
            intake.documents.put_hashed(source, address, owner=owner)
    else:
        document.content.seek(0)
        intake.documents.put_hashed(document.content, address, owner=owner)


__all__ = [
    "INBOX_USER",
    "Applicant",
    "InboundApplication",
    "InboundNotice",
    "Match",
    "MessageOutcome",
    "MessageRefused",
    "NoticeNotFound",
    "Notices",
    "PersonIndex",
    "normalised_name",
]
