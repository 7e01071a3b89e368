"""Commitment declarations (Verpflichtungserklärungen, § 68 AufenthG): the context
``service.declarations``.

The applicant submits a declaration and gets a secret reference (stored only hashed),
pays the fee through the ePayment platform (:class:`service_ports.PaymentProvider`);
caseworkers check the ability to pay, set the pickup, hand it over and link it to the
visitor's case file.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Generic, TypeVar
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from domain.acts import Act
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
from domain.errors import InvalidValue, PaymentNotFound
from domain.values import PaymentMethod, PaymentOutcome, VisitPurpose, require_choice
from service_common import (
    MAX_VERSION,
    PUBLIC_APPLICANT,
    CaseNotFound,
    ConcurrentModification,
    ServiceError,
    StoreUnavailable,
    gives_back_unwritten_ids,
    last_position,
)
from service_ports import PaymentOrder, PaymentProvider, ServiceStore

T = TypeVar("T")

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


class CommitmentDeclarations:
    """Commands and queries on commitment declarations; ``service.declarations``."""

    def __init__(self, store: ServiceStore) -> None:
        self._store = store

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

        Under an idempotency key, the reference is recorded with the key (sealed with the
        client's key): the retry of a request whose answer was lost gets it back.
        """
        replayed = self._store.writes.replayed(by)
        if replayed is not None:
            return DeclarationRecorded(
                replayed.case_id, replayed.version, str(replayed.result), replayed.position
            )
        act = self._store.act(by, at)
        for _attempt in range(_MAX_DECLARATION_SAVE_ATTEMPTS):
            reference = secrets.token_urlsafe(_SECRET_REFERENCE_BYTES)
            reference_sha256 = hash_reference(reference)
            declaration = CommitmentDeclaration.submit(
                declaration_id=self._store.new_personal_id(),
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
            self._store.writes.note(declaration.id, declaration.version, reference)
            try:
                with self._store.store_errors():
                    recordings = self._store.save(declaration, claim)
            except IntegrityError:
                continue  # two equal 128-bit references: never, but a new one costs nothing
            return DeclarationRecorded(
                declaration.id, declaration.version, reference, last_position(recordings)
            )
        msg = "could not record the declaration"
        raise StoreUnavailable(msg)

    def get_declaration(
        self, declaration_id: UUID, *, version: int | None = None
    ) -> CommitmentDeclaration:
        found = self._store.find(declaration_id, CommitmentDeclaration, version=version)
        if found is None:
            raise DeclarationNotFound(declaration_id)
        return found

    def declaration_events(
        self, declaration_id: UUID, *, after_version: int = 0, limit: int | None = None
    ) -> list[CommitmentDeclaration.Event]:
        """The declaration's events in order, after ``after_version``."""
        return self._store.events_of(
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
        claim = self._store.find(
            DeclarationReference.id_for(hash_reference(reference)), DeclarationReference
        )
        if claim is None:
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
        with self._store.store_errors():
            notifications = self._store.recorder.select_notifications(
                start=min(after_position, MAX_VERSION),
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
            act = self._store.act(by, at)
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
                with self._store.store_errors():
                    recordings = self._store.save(declaration, claim)
            except IntegrityError:
                # Changed meanwhile (perhaps a payment started in another request, which
                # the next round answers); the provider's unused payment expires there.
                continue
            return DeclarationRecorded(
                declaration_id,
                declaration.version,
                StartedPayment(declaration.payment(number), True),
                last_position(recordings),
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

        ``occurred_at`` is the provider's time of payment, the business time of the event,
        taken within what can be true: not later than now (the provider's clock may run
        ahead of ours) and not earlier than the payment's start (or behind it), so a fee
        never counts in a year before the payment was started.
        """
        claim = self._store.find(
            PaymentTransaction.id_for(provider, transaction_id), PaymentTransaction
        )
        if claim is None:
            raise UnknownPaymentTransaction
        declaration_id = UUID(claim.declaration_id)
        for _attempt in range(_MAX_DECLARATION_SAVE_ATTEMPTS):
            declaration = self.get_declaration(declaration_id)
            recorded_at = self._store.clock()
            at = recorded_at if occurred_at is None else min(occurred_at, recorded_at)
            started = _started_at(declaration, transaction_id)
            if started is not None and at < started:
                at = started
            # Through the store, like every command: a retry's idempotency key is checked.
            act = self._store.act(PAYMENT_PROVIDER_USER, at)
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
                with self._store.store_errors():
                    recordings = self._store.save(declaration)
            except IntegrityError:
                continue  # the same report in a parallel request, or a caseworker's write
            return DeclarationRecorded(
                declaration_id, declaration.version, result, last_position(recordings)
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
                office_id: str | None = self._store.get_case(case_id).office_id
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
        act = self._store.act(by, at)
        declaration = self.get_declaration(declaration_id)
        if declaration.version != expected_version:
            raise DeclarationChanged(declaration_id, expected_version, declaration.version)
        result = command(declaration, act)
        try:
            with self._store.store_errors():
                recordings = self._store.save(declaration)
        except IntegrityError:
            actual = self.get_declaration(declaration_id).version
            raise DeclarationChanged(declaration_id, expected_version, actual) from None
        return DeclarationRecorded(
            declaration_id, declaration.version, result, last_position(recordings)
        )


def _payment_reference(declaration_id: UUID, payment_number: int) -> str:
    """The payment reference (Verwendungszweck) the payer sees: ids only, no person."""
    return f"VE-{declaration_id.hex[:12].upper()}-{payment_number}"


def _started_at(declaration: CommitmentDeclaration, transaction_id: str) -> datetime | None:
    """When the payment of ``transaction_id`` was started (``None``: no such payment; the
    declaration says so when the report is applied)."""
    try:
        return declaration.payment_by_transaction(transaction_id).initiated_at
    except PaymentNotFound:
        return None
