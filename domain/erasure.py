"""Erasure of a person's data (crypto-shredding): the legal grounds it may rest on.

Erasure destroys the key of the person's case file (and of the records linked to it);
the events stay, with their non-personal facts, so statistics and the audit chain still
add up. The grounds are codes, as legal bases elsewhere; the labels are German, for
people.

Four eyes (:class:`ErasureRequest`): an erasure is first *requested* by one user and
carried out only when a *second* user approves it, each acting with their own account;
request, approval and withdrawal are events of the request. Approving one's own request
is refused (:class:`SelfApproval`); which role may approve is the access policy's
business (``adapters/http/auth/permissions.py``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final, Literal
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.acts import Act
from domain.errors import (
    BusinessTimeBeforeFact,
    InvalidValue,
    PartNotFound,
    RuleViolation,
)
from domain.values import LawfulEvent

ERASURE_GROUNDS: Final = {
    "aufenthg-91": "§ 91 AufenthG (Speicherung und Löschung personenbezogener Daten)",
    "aufenthv-68": "§ 68 AufenthV (Löschung der Daten in den Ausländerdateien)",
    "dsgvo-17": "Art. 17 DSGVO (Recht auf Löschung)",
}
"""Legal grounds an erasure may name, by code."""


# ------------------------------------------------------------ the four-eyes request


class ErasureRequestNotFound(PartNotFound):
    """No erasure request with this number on the case file."""

    code = "erasure-request-not-found"


class ErasureRequestDecided(RuleViolation):
    """The request was approved or withdrawn already: it takes no further decision."""

    code = "erasure-request-decided"


class ErasureRequestPending(RuleViolation):
    """The case file has a pending erasure request already: approve or withdraw it first."""

    code = "erasure-request-pending"


class SelfApproval(RuleViolation):
    """Four eyes: whoever requested an erasure may not approve it."""

    code = "erasure-self-approval"


ErasureRequestStatus = Literal["pending", "approved", "withdrawn"]


class ErasureRequest(Aggregate):
    """The four-eyes request to erase a person's data: one user requests it, a second
    user approves it with their own token (or someone withdraws it); only an approved
    request is carried out. Holds ids, codes and account ids only, no personal data.

    The request's id is derived from its case file and its number on it (see
    :meth:`id_for`), so a case file's requests are found without an index; a file has at
    most one pending request at a time.
    """

    def __init__(self) -> None:
        self.case_id: str = ""
        self.office_id: str = ""
        self.number: int = 0
        self.legal_ground: str = ""
        self.rule_id: str | None = None
        self.case_version: int = 0
        self.requested_by: str = ""
        self.requested_at: datetime = datetime.min
        self.status: ErasureRequestStatus = "pending"
        self.decided_by: str | None = None
        self.decided_at: datetime | None = None

    class Event(LawfulEvent, Aggregate.Event):
        """Base of every erasure request event: who acted (``by``) and when (``at``)."""

        by: str
        at: datetime

    class Requested(Event, Aggregate.Created):
        """Erasure of the case file's personal data was requested, on a legal ground
        (and the retention rule that made it due, if any); ``case_version``: the file's
        version the requester saw."""

        case_id: str
        office_id: str
        number: int
        legal_ground: str
        rule_id: str | None
        case_version: int

        def apply(self, request: ErasureRequest) -> None:
            request.case_id = self.case_id
            request.office_id = self.office_id
            request.number = self.number
            request.legal_ground = self.legal_ground
            request.rule_id = self.rule_id
            request.case_version = self.case_version
            request.requested_by = self.by
            request.requested_at = self.at

    class Approved(Event):
        """A second person approved the request (``by``): the erasure is carried out."""

        def apply(self, request: ErasureRequest) -> None:
            request.status = "approved"
            request.decided_by = self.by
            request.decided_at = self.at

    class Withdrawn(Event):
        """The request was withdrawn (by its requester) or declined (by someone else):
        nothing is erased."""

        def apply(self, request: ErasureRequest) -> None:
            request.status = "withdrawn"
            request.decided_by = self.by
            request.decided_at = self.at

    # ---------------------------------------------------------------- commands

    @staticmethod
    def id_for(case_id: UUID, number: int) -> UUID:
        """The id of the case file's ``number``-th erasure request."""
        return uuid5(case_id, f"akte-erasure-request:{number}")

    @classmethod
    def request(
        cls,
        *,
        case_id: UUID,
        office_id: str,
        number: int,
        legal_ground: str,
        rule_id: str | None,
        case_version: int,
        act: Act,
    ) -> ErasureRequest:
        if legal_ground not in ERASURE_GROUNDS:
            raise InvalidValue("legal_ground", "must be one of " + ", ".join(ERASURE_GROUNDS))
        if rule_id is not None and not _RULE_ID.fullmatch(rule_id):
            raise InvalidValue("rule_id", "must be a code of 2 to 60 characters a-z, 0-9, _ and -")
        if number < 1:
            raise InvalidValue("number", "must be 1 or more")
        return cls._create(
            cls.Requested,
            id=cls.id_for(case_id, number),
            by=act.by,
            at=act.at,
            timestamp=act.recorded_at,
            case_id=str(case_id),
            office_id=office_id,
            number=number,
            legal_ground=legal_ground,
            rule_id=rule_id,
            case_version=case_version,
        )

    def approve(self, act: Act) -> None:
        """Approve as a second person; the caller has checked the approver's role."""
        self.check_pending()
        if act.by == self.requested_by:
            raise SelfApproval(
                "four eyes: an erasure must be approved by another person than its requester"
            )
        self._check_not_before_request(act)
        self.trigger_event(self.Approved, by=act.by, at=act.at, timestamp=act.recorded_at)

    def withdraw(self, act: Act) -> None:
        """Withdraw (the requester) or decline (anyone allowed to erase): not erasing needs
        no second person."""
        self.check_pending()
        self._check_not_before_request(act)
        self.trigger_event(self.Withdrawn, by=act.by, at=act.at, timestamp=act.recorded_at)

    def check_pending(self) -> None:
        if self.status != "pending":
            raise ErasureRequestDecided(f"the erasure request is {self.status} already")

    def _check_not_before_request(self, act: Act) -> None:
        if act.at < self.requested_at:
            raise BusinessTimeBeforeFact("at", "the erasure request")

    @property
    def pending(self) -> bool:
        return self.status == "pending"


_RULE_ID: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{1,59}$")
