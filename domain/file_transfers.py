"""Case files between offices after a move (§ 67 AufenthV, XAusländer's file request).

Two aggregates, one per side, both keyed so that a message delivered twice finds what
the first delivery recorded:

- :class:`FileRequest` (the new office, B): B asks the previous office (A) for the file
  of a person who moved in. Its id is the request's message id, so the answer (which
  names the request) finds it. It holds no personal data: who the request is about
  travels in the request message only, and comes back in the file. It ends once,
  either ``taken_over`` (the file came and became a case file of B's) or ``refused`` (A
  is not responsible, or something hinders sending). A second answer to an ended
  request changes nothing.
- :class:`FileRequestAnswer` (the previous office, A): claims one request of one office
  for A, with how A answered (the file sent, or the reason it was not) and the id of the
  answer message, so that a request delivered again is answered again with the same
  message (B recognises it) and nothing is recorded twice. It holds no personal data.

The file itself moves as facts with provenance: :meth:`domain.case_file.CaseFile.take_over`
records on B's new file where each part came from.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Final, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.errors import DomainError, InvalidValue
from domain.values import LawfulEvent, require_choice, require_text

_NAMESPACE: Final = UUID("5d0f3c1e-8a43-4d8e-9a7b-2f61c0a4e913")
_CODE_MAX: Final = 60

FileRequestStatus = Literal["requested", "taken_over", "refused"]

RefusalReason = Literal["nicht-zustaendig", "hinderungsgrund"]
"""Why the previous office does not send the file, after XAusländer's answers: it is not
responsible (no file of this person, or it was handed on already), or something hinders
sending it now (open procedures, the data was erased)."""

AnswerOutcome = Literal["sent", "refused"]


class FileRequestEnded(DomainError):
    """The request was answered already: a later answer changes nothing."""

    code = "file-request-ended"


class HandOverNotReturnable(DomainError):
    """A return of a file answer that was no file, or came back already."""

    code = "hand-over-not-returnable"


class FileRequest(Aggregate):
    """B's request for the file of a person who moved in, and how it ended."""

    def __init__(self) -> None:
        self.office_id: str = ""
        self.from_office_id: str = ""
        self.status: FileRequestStatus = "requested"
        self.case_id: str | None = None
        self.reason: str | None = None
        self.answer_message_id: str | None = None

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Sent(Event, Aggregate.Created):
        """B asked ``from_office_id`` for the file (the request's message id is this
        aggregate's id)."""

        office_id: str
        from_office_id: str
        moved_in_on: date

        def apply(self, request: FileRequest) -> None:
            request.office_id = self.office_id
            request.from_office_id = self.from_office_id

    class FileTakenOver(Event):
        """A sent the file; it is B's case file ``case_id`` now."""

        answer_message_id: str
        case_id: str

        def apply(self, request: FileRequest) -> None:
            request.status = "taken_over"
            request.case_id = self.case_id
            request.answer_message_id = self.answer_message_id

    class Refused(Event):
        """A does not send the file, for ``reason`` (:data:`RefusalReason`)."""

        answer_message_id: str
        reason: str

        def apply(self, request: FileRequest) -> None:
            request.status = "refused"
            request.reason = self.reason
            request.answer_message_id = self.answer_message_id

    @classmethod
    def send(
        cls,
        *,
        request_id: UUID,
        office_id: str,
        from_office_id: str,
        surname: str,
        given_names: str,
        date_of_birth: date,
        file_number: str | None,
        moved_in_on: date,
        act: Act,
    ) -> FileRequest:
        if office_id == from_office_id:
            raise InvalidValue("from_office_id", "must be another office than the requesting one")
        for name, value in (("office_id", office_id), ("from_office_id", from_office_id)):
            require_text(name, value, max_length=_CODE_MAX)
        require_text("surname", surname)
        require_text("given_names", given_names)
        if file_number is not None:
            require_text("file_number", file_number, max_length=40)
        if moved_in_on > act.at.date():
            raise InvalidValue("moved_in_on", "must not lie after the day of the request")
        return cls._create(
            cls.Sent,
            id=request_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            from_office_id=from_office_id,
            moved_in_on=moved_in_on,
        )

    def check_open(self) -> None:
        if self.status != "requested":
            raise FileRequestEnded(f"the file request is {self.status} already")

    def take_over(self, *, answer_message_id: str, case_id: UUID, act: Act) -> None:
        self.check_open()
        require_text("answer_message_id", answer_message_id, max_length=100)
        self.trigger_event(
            self.FileTakenOver,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            answer_message_id=answer_message_id,
            case_id=str(case_id),
        )

    def refuse(self, *, answer_message_id: str, reason: RefusalReason, act: Act) -> None:
        self.check_open()
        require_text("answer_message_id", answer_message_id, max_length=100)
        require_choice("reason", reason, RefusalReason)
        self.trigger_event(
            self.Refused,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            answer_message_id=answer_message_id,
            reason=reason,
        )


class FileRequestAnswer(Aggregate):
    """A's answer to one file request of one office: claimed once, kept for repeats.
    A file sent may come back once (:meth:`note_return`): the other office returned the
    answer untaken, and A's file is active again."""

    returned_at: datetime | None = None
    """When the requesting office's return of the sent file was recorded (a class
    default, so that older snapshots still load)."""
    return_reason: str | None = None
    return_message_id: str | None = None

    def __init__(self) -> None:
        self.outcome: AnswerOutcome = "refused"
        self.reason: str | None = None
        self.case_id: str | None = None
        self.answer_message_id: str = ""
        self.case_version: int = 0
        self.requesting_office_id: str = ""
        self.answered_at: datetime | None = None
        self.answered_by: str = ""

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class Answered(Event, Aggregate.Created):
        """``sent``: the file ``case_id`` up to ``case_version`` went to the requesting
        office (recorded with the file's transfer); ``refused``: for ``reason``."""

        office_id: str
        requesting_office_id: str
        request_message_id: str
        answer_message_id: str
        outcome: str
        reason: str | None
        case_id: str | None
        case_version: int

        def apply(self, answer: FileRequestAnswer) -> None:
            answer.outcome = "sent" if self.outcome == "sent" else "refused"
            answer.reason = self.reason
            answer.case_id = self.case_id
            answer.answer_message_id = self.answer_message_id
            answer.case_version = self.case_version
            answer.requesting_office_id = self.requesting_office_id
            answer.answered_at = self.at
            answer.answered_by = self.by

    class HandOverReturned(Event):
        """The requesting office returned the file sent (``Administration.ReturnToSender``
        ``return_message_id``, for ``reason``): it holds no file of ours; the case file
        records the return beside (``CaseFile.HandOverReturned``)."""

        return_message_id: str
        reason: str

        def apply(self, answer: FileRequestAnswer) -> None:
            answer.returned_at = self.at
            answer.return_reason = self.reason
            answer.return_message_id = self.return_message_id

    @property
    def is_returned(self) -> bool:
        return self.returned_at is not None

    def note_return(self, *, return_message_id: str, reason: str, act: Act) -> None:
        """The file sent came back: once, and only a file sent."""
        if self.outcome != "sent":
            raise HandOverNotReturnable("only a file sent can come back")
        if self.returned_at is not None:
            raise HandOverNotReturnable("the file sent came back already")
        require_text("return_message_id", return_message_id, max_length=100)
        require_text("reason", reason, max_length=_CODE_MAX)
        self.trigger_event(
            self.HandOverReturned,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            return_message_id=return_message_id,
            reason=reason,
        )

    @staticmethod
    def id_for(office_id: str, requesting_office_id: str, request_message_id: str) -> UUID:
        return uuid5(_NAMESPACE, f"{office_id}/{requesting_office_id}/{request_message_id}")

    @classmethod
    def answer(
        cls,
        *,
        office_id: str,
        requesting_office_id: str,
        request_message_id: str,
        answer_message_id: str,
        outcome: AnswerOutcome,
        reason: RefusalReason | None,
        case_id: UUID | None,
        case_version: int,
        act: Act,
    ) -> FileRequestAnswer:
        require_choice("outcome", outcome, AnswerOutcome)
        if (outcome == "sent") != (case_id is not None) or (outcome == "sent") == (
            reason is not None
        ):
            raise InvalidValue("outcome", "a sent file names its case file, a refusal its reason")
        if reason is not None:
            require_choice("reason", reason, RefusalReason)
        require_text("request_message_id", request_message_id, max_length=100)
        require_text("requesting_office_id", requesting_office_id, max_length=_CODE_MAX)
        return cls._create(
            cls.Answered,
            id=cls.id_for(office_id, requesting_office_id, request_message_id),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            requesting_office_id=requesting_office_id,
            request_message_id=request_message_id,
            answer_message_id=answer_message_id,
            outcome=outcome,
            reason=reason,
            case_id=None if case_id is None else str(case_id),
            case_version=case_version,
        )


__all__ = [
    "AnswerOutcome",
    "FileRequest",
    "FileRequestAnswer",
    "FileRequestEnded",
    "FileRequestStatus",
    "HandOverNotReturnable",
    "RefusalReason",
]
