"""Four eyes for erasure: the context ``service.erasure_requests``.

An erasure of a person's data (:mod:`service_data_protection`) is carried out only on an
approved request: one user requests it (:meth:`ErasureRequests.request`), a *second*
user approves it (:meth:`ErasureRequests.approve`), and only then are the keys
destroyed. Each acts under their own account; request, approval and withdrawal are
events of the :class:`domain.erasure.ErasureRequest`, so who asked and who approved is
in the log, not a name typed into a field.

The erasure event on the case file names the requester as ``by`` and the approver as
``approved_by``. Which role may approve is the caller's check (the HTTP access policy,
the command line's token check): this context only refuses that the requester approves.

The retention run (``adapters/personal_data/retention.py``) does not go through a request:
deleting a file whose retention period the law sets has run out is a legal duty, not a
decision (see docs "Data protection").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.erasure import (
    ErasureRequest,
    ErasureRequestDecided,
    ErasureRequestNotFound,
    ErasureRequestPending,
)
from domain.errors import BusinessTimeBeforeFact, CaseFileErased
from service_common import Recorded, last_position
from service_data_protection import DataProtection, Erasure
from service_ports import ServiceStore

_SCAN_PAGE: Final = 1000
MAX_REQUESTS_PER_CASE: Final = 1000
"""A bound on the numbered lookup of a case file's requests (a handful in practice)."""


@dataclass(frozen=True)
class RequestRecorded:
    """A request as recorded, and the position of its last event (read-your-writes)."""

    request: ErasureRequest
    position: int


@dataclass(frozen=True)
class Approval:
    """An approved request and the erasure it carried out."""

    request: ErasureRequest
    erasure: Recorded[Erasure]
    position: int
    """The position of the last event written (the erasure's, or the approval's when the
    file had been erased meanwhile and only keys were destroyed)."""


class ErasureRequests:
    """Request, approve and withdraw erasures; ``service.erasure_requests``."""

    def __init__(self, store: ServiceStore, data_protection: DataProtection) -> None:
        self._store = store
        self._data_protection = data_protection

    # ---------------------------------------------------------------- commands

    def request(
        self,
        case_id: UUID,
        *,
        by: str,
        legal_ground: str,
        rule_id: str | None = None,
        at: datetime | None = None,
    ) -> RequestRecorded:
        """Request the erasure of the case file's personal data. Refused while another
        request of the file is pending, and for a file erased already.

        Under an idempotency key, the request is recorded with the key: the retry of a
        request whose answer was lost gets the request as it was recorded then."""
        self._data_protection.keys  # noqa: B018 - refuses early without per-person encryption
        replayed = self._store.writes.replayed(by)
        if replayed is not None:
            found = self._store.find(replayed.case_id, ErasureRequest, version=replayed.version)
            if found is None:  # its events are recorded: only a broken store gets here
                raise ErasureRequestNotFound("the recorded erasure request cannot be read")
            return RequestRecorded(found, replayed.position)
        case = self._store.get_case(case_id)
        case.check_not_erased()
        act = self._store.act(by, at)
        if case.opened_at is not None and act.at < case.opened_at:
            raise BusinessTimeBeforeFact("at", "the case file's opening")
        existing = self.requests_of(case_id)
        if any(request.pending for request in existing):
            raise ErasureRequestPending(
                "the case file has a pending erasure request: approve or withdraw it first"
            )
        request = ErasureRequest.request(
            case_id=case_id,
            office_id=case.office_id,
            number=len(existing) + 1,
            legal_ground=legal_ground,
            rule_id=rule_id,
            case_version=case.version,
            act=act,
        )
        self._store.writes.note(request.id, request.version, request.number)
        try:
            with self._store.store_errors():
                recordings = self._store.save(request)
        except IntegrityError:
            raise ErasureRequestPending(
                "another erasure request of this case file was made at the same time"
            ) from None
        return RequestRecorded(request, last_position(recordings))

    def approve(
        self, case_id: UUID, number: int, *, by: str, at: datetime | None = None
    ) -> Approval:
        """Approve the request as a second person and carry out the erasure.

        An approved request whose erasure was interrupted (the store failed between the
        approval and the key destruction) is carried out by approving it again; one
        carried out already is refused (:class:`ErasureRequestDecided`).
        """
        self._data_protection.keys  # noqa: B018 - refuses before anything is recorded
        request = self.get(case_id, number)
        position = 0
        if request.pending:
            if self._store.get_case(case_id).is_erased:
                raise CaseFileErased(
                    "the personal data of this case file has been erased: withdraw the request"
                )
            # An erasure this service cannot carry out in full is refused before the
            # approval is recorded: the request stays pending.
            self._data_protection.check_erasable(case_id)
            request.approve(self._store.act(by, at))
            try:
                with self._store.store_errors():
                    position = last_position(self._store.save(request))
            except IntegrityError:
                raise ErasureRequestDecided(
                    "the erasure request was decided at the same time"
                ) from None
        elif request.status != "approved":
            request.check_pending()
        approver = request.decided_by
        assert approver is not None
        try:
            erased = self._data_protection.erase_personal_data(
                case_id,
                expected_version=self._store.get_case(case_id).version,
                by=request.requested_by,
                legal_ground=request.legal_ground,
                rule_id=request.rule_id,
                approved_by=approver,
                at=request.decided_at if position else None,
            )
        except CaseFileErased:
            raise ErasureRequestDecided(
                "the erasure request was approved and carried out already"
            ) from None
        return Approval(request, erased, max(position, erased.position))

    def withdraw(
        self, case_id: UUID, number: int, *, by: str, at: datetime | None = None
    ) -> RequestRecorded:
        """Withdraw (the requester) or decline (someone else) a pending request."""
        request = self.get(case_id, number)
        request.withdraw(self._store.act(by, at))
        try:
            with self._store.store_errors():
                recordings = self._store.save(request)
        except IntegrityError:
            raise ErasureRequestDecided(
                "the erasure request was decided at the same time"
            ) from None
        return RequestRecorded(request, last_position(recordings))

    # ----------------------------------------------------------------- queries

    def get(self, case_id: UUID, number: int) -> ErasureRequest:
        found = None
        if 1 <= number <= MAX_REQUESTS_PER_CASE:
            found = self._find(case_id, number)
        if found is None:
            raise ErasureRequestNotFound(f"the case file has no erasure request {number}")
        return found

    def requests_of(self, case_id: UUID) -> list[ErasureRequest]:
        """The case file's requests, oldest first."""
        found: list[ErasureRequest] = []
        for number in range(1, MAX_REQUESTS_PER_CASE + 1):
            request = self._find(case_id, number)
            if request is None:
                break
            found.append(request)
        return found

    def events_of(self, request: ErasureRequest) -> list[ErasureRequest.Event]:
        """The request's events (requested, approved or withdrawn), in order."""
        return self._store.events_of(
            request.id,
            ErasureRequest.Event,
            ErasureRequestNotFound(f"the case file has no erasure request {request.number}"),
        )

    def pending(self, *, office_ids: list[str] | None = None) -> list[ErasureRequest]:
        """The pending requests (of these offices; ``None``: all), oldest first.

        One scan of the log for the request events: erasure requests are rare (a few a
        week), so no read model is kept for them."""
        open_ids: dict[UUID, None] = {}
        requested = get_topic(ErasureRequest.Requested)
        for topic, originator_id in self._scan():
            if topic == requested:
                open_ids[originator_id] = None
            else:
                open_ids.pop(originator_id, None)
        found: list[ErasureRequest] = []
        for request_id in open_ids:
            request = self._store.find(request_id, ErasureRequest)
            if request is None or not request.pending:
                continue
            if office_ids is None or request.office_id in office_ids:
                found.append(request)
        return found

    def _find(self, case_id: UUID, number: int) -> ErasureRequest | None:
        with self._store.store_errors():
            return self._store.find(ErasureRequest.id_for(case_id, number), ErasureRequest)

    def _scan(self) -> Iterator[tuple[str, UUID]]:
        topics = [
            get_topic(ErasureRequest.Requested),
            get_topic(ErasureRequest.Approved),
            get_topic(ErasureRequest.Withdrawn),
        ]
        position = 0
        while True:
            with self._store.store_errors():
                notifications = self._store.recorder.select_notifications(
                    start=position, limit=_SCAN_PAGE, topics=topics, inclusive_of_start=False
                )
            for notification in notifications:
                yield notification.topic, UUID(str(notification.originator_id))
            if len(notifications) < _SCAN_PAGE:
                return
            position = notifications[-1].id
