"""A registration office's notice that could not be matched to a case file for certain.

Notices (§ 72 AufenthV) about a person Akte knows for certain are recorded on the case
file (:meth:`domain.case_file.CaseFile.record_registration_notice`). A notice about an
unknown person, or one whose match is uncertain (several candidates, names that differ,
a file number that names another person, a file that is no longer active), becomes a
:class:`RegistrationNotice` in triage, with the reasons and the candidate files: a
caseworker then records it on the right file or dismisses it. It holds the notice's
personal data (encrypted for it, like a contact submission).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Literal
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.case_file import (
    RegistrationNoticeChanges,
    check_registration_notice,
    require_code,
)
from domain.errors import InvalidValue, RuleViolation
from domain.personal import Personal
from domain.values import LawfulEvent, require_choice, require_nationality, require_text

TRIAGE_REASONS: Final = (
    "unknown-person",
    "several-candidates",
    "given-names-differ",
    "file-number-unknown",
    "file-number-names-another-person",
    "case-file-not-active",
    "refused-by-case-file",
)
"""Why a notice is in triage (codes, shown to caseworkers with an explanation):

- ``unknown-person``: no case file of the office has this surname and birth date;
- ``several-candidates``: more than one has;
- ``given-names-differ``: one has, but its given names differ;
- ``file-number-unknown``: the notice quotes a file number the office does not have;
- ``file-number-names-another-person``: the quoted file is about someone else;
- ``case-file-not-active``: the person's file is transferred, closed or erased;
- ``refused-by-case-file``: the file's rules refused the notice (e.g. its change does
  not fit the recorded data).
"""

NoticeResolution = Literal["recorded_on_case_file", "dismissed"]


class NoticeAlreadyResolved(RuleViolation):
    """The notice left triage already."""

    code = "notice-already-resolved"


@dataclass(frozen=True)
class NoticedPerson:
    """The person as the registration office names them (before any change)."""

    surname: str
    given_names: str
    date_of_birth: date
    nationality: str | None = None
    file_number: str | None = None
    """The foreigners' office's file number (Aktenzeichen), if the notice quotes one."""


def check_noticed_person(person: NoticedPerson) -> None:
    """The person's names, birth date and (if given) nationality and file number are
    lawful values."""
    require_text("surname", person.surname)
    require_text("given_names", person.given_names)
    if person.date_of_birth < date(1900, 1, 1):
        raise InvalidValue("date_of_birth", "must lie after 1900")
    if person.nationality is not None:
        require_nationality("nationality", person.nationality)
    if person.file_number is not None:
        require_text("file_number", person.file_number, max_length=60)


class RegistrationNotice(Aggregate):
    """A registration office's notice waiting for a caseworker (triage)."""

    def __init__(self) -> None:
        self.office_id = ""
        self.notice_kind = ""
        self.message_id = ""
        self.sender = ""
        self.effective_on = date.min
        self.person = NoticedPerson("", "", date.min)
        self.changes = RegistrationNoticeChanges()
        self.reasons: list[str] = []
        self.candidate_case_ids: list[str] = []
        self.resolution: str | None = None
        self.case_id: str | None = None

    class Event(LawfulEvent, Aggregate.Event):
        by: str
        at: datetime

    class PutInTriage(Event, Aggregate.Created):
        office_id: str
        notice_kind: str
        message_id: str
        sender: str
        effective_on: date
        reasons: list[str]
        candidate_case_ids: list[str]
        surname: Personal[str]
        given_names: Personal[str]
        date_of_birth: Personal[date]
        nationality: Personal[str | None]
        file_number: str | None
        new_address: Personal[str | None]
        new_surname: Personal[str | None]
        new_given_names: Personal[str | None]
        new_nationality: Personal[str | None]

        def apply(self, notice: RegistrationNotice) -> None:
            notice.office_id = self.office_id
            notice.notice_kind = self.notice_kind
            notice.message_id = self.message_id
            notice.sender = self.sender
            notice.effective_on = self.effective_on
            notice.person = NoticedPerson(
                self.surname,
                self.given_names,
                self.date_of_birth,
                self.nationality,
                self.file_number,
            )
            notice.changes = RegistrationNoticeChanges(
                address=self.new_address,
                surname=self.new_surname,
                given_names=self.new_given_names,
                nationality=self.new_nationality,
            )
            notice.reasons = list(self.reasons)
            notice.candidate_case_ids = list(self.candidate_case_ids)

    class Resolved(Event):
        """A caseworker recorded the notice on a case file, or dismissed it."""

        resolution: str
        case_id: str | None

        def apply(self, notice: RegistrationNotice) -> None:
            notice.resolution = self.resolution
            notice.case_id = self.case_id

    @classmethod
    def put_in_triage(
        cls,
        *,
        notice_id: UUID,
        office_id: str,
        notice_kind: str,
        message_id: str,
        sender: str,
        effective_on: date,
        person: NoticedPerson,
        changes: RegistrationNoticeChanges,
        reasons: list[str],
        candidate_case_ids: list[UUID],
        act: Act,
    ) -> RegistrationNotice:
        require_code("office_id", office_id)
        check_registration_notice(
            notice_kind=notice_kind,
            message_id=message_id,
            sender=sender,
            effective_on=effective_on,
            changes=changes,
            today=act.at.date(),
        )
        check_noticed_person(person)
        if not reasons or any(reason not in TRIAGE_REASONS for reason in reasons):
            raise InvalidValue("reasons", "must name at least one known reason")
        return cls._create(
            cls.PutInTriage,
            id=notice_id,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            office_id=office_id,
            notice_kind=notice_kind,
            message_id=message_id,
            sender=sender,
            effective_on=effective_on,
            reasons=list(reasons),
            candidate_case_ids=[str(case_id) for case_id in candidate_case_ids],
            surname=person.surname,
            given_names=person.given_names,
            date_of_birth=person.date_of_birth,
            nationality=person.nationality,
            file_number=person.file_number,
            new_address=changes.address,
            new_surname=changes.surname,
            new_given_names=changes.given_names,
            new_nationality=changes.nationality,
        )

    def resolve(self, *, resolution: NoticeResolution, case_id: UUID | None, act: Act) -> None:
        if self.resolution is not None:
            raise NoticeAlreadyResolved("the notice has left triage already")
        require_choice("resolution", resolution, NoticeResolution)
        if (resolution == "recorded_on_case_file") != (case_id is not None):
            raise InvalidValue("case_id", "is required exactly when recording on a case file")
        self.trigger_event(
            self.Resolved,
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            resolution=resolution,
            case_id=None if case_id is None else str(case_id),
        )
