"""Commitment declarations (Verpflichtungserklärung, § 68 AufenthG) over HTTP.

Two audiences:

* the applicant, without an account (:data:`public_router`): submits a declaration and
  gets a secret reference, then pays the fee and follows the declaration by presenting
  that reference in the ``X-Declaration-Reference`` header. A header, not the path: URLs
  end up in proxy logs and browser histories, and the reference is a credential.
* caseworkers (:data:`router`): read declarations of their office (auditors: all offices)
  and record the office's steps, with ``If-Match``/``ETag`` like case files. A declaration
  of an office the caller's role does not reach answers 404 exactly like none.

Public submissions go to the deployment's default office (``AKTE_DEFAULT_OFFICE_ID``).
The payment platform's notifications arrive in :mod:`adapters.http.routes.payments`.
"""

from __future__ import annotations

from typing import Annotated, Any, Final, cast
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public, may_in_office, require
from adapters.http.deps import ExpectedVersion, ServiceDep, SettingsDep
from adapters.http.problems import HttpProblem, problem_response
from adapters.http.route_helpers import etag, note_position
from adapters.http.schemas.cases import EventPublic, ProblemPublic
from adapters.http.schemas.declarations import (
    MAX_SECRET_REFERENCE,
    AbilityCheckCreate,
    AbilityToPayCheckPublic,
    ApplicantPaymentPublic,
    CaseLinkCreate,
    DeclarationCreate,
    DeclarationFeePublic,
    DeclarationPublic,
    DeclarationRecordedPublic,
    DeclarationStatusPublic,
    DeclarationSubmittedPublic,
    DeclarationSummaryPublic,
    FeePublic,
    GuarantorPublic,
    HandoverCreate,
    InvitedPersonPublic,
    PaymentPublic,
    PaymentStartCreate,
    PaymentStartedPublic,
    PickupAppointmentCreate,
    RefundCreate,
    VisitorEntryCreate,
    WithdrawalCreate,
)
from adapters.payment.provider import PaymentProviderError, PaymentProviderUnavailable
from adapters.payment.setup import Payments, PaymentSetup
from domain.commitment_declaration import CommitmentDeclaration, Guarantor, InvitedPerson
from service_common import PUBLIC_APPLICANT
from service_declarations import (
    DeclarationNotFound,
    DeclarationRecorded,
    UnknownPaymentTransaction,
)

PAYMENT_RETRY_AFTER_SECONDS: Final = 30
DEFAULT_PAGE: Final = 50
MAX_PAGE: Final = 200
DEFAULT_EVENT_PAGE: Final = 100
MAX_EVENT_PAGE: Final = 1000
REFERENCE_HEADER: Final = "X-Declaration-Reference"
BODY_LIMITS: Final = {"/commitment-declarations": 16_384, "/payments": 16_384}
"""Request body limits by path: these bodies are small, and the public ones are open to
anyone, so they get far less than the API's default."""

# The library's own fields and those EventPublic shows on its own; the rest is ``data``.
_EVENT_ENVELOPE_FIELDS: Final = frozenset(
    {"originator_id", "originator_version", "originator_topic", "timestamp", "by", "at"}
)

public_router = APIRouter(
    prefix="/commitment-declarations", tags=["commitment declarations: applicants"]
)
router = APIRouter(prefix="/commitment-declarations", tags=["commitment declarations"])

PublicSubmitter = Annotated[Principal | None, Depends(allow_public(Permission.COMMITMENT_SUBMIT))]
PublicStatusReader = Annotated[
    Principal | None, Depends(allow_public(Permission.COMMITMENT_STATUS_READ))
]
PublicPayer = Annotated[Principal | None, Depends(allow_public(Permission.COMMITMENT_PAY))]
DeclarationReader = Annotated[Principal, Depends(require(Permission.COMMITMENT_READ))]
DeclarationWriter = Annotated[Principal, Depends(require(Permission.COMMITMENT_WRITE))]
DeclarationId = Annotated[
    UUID, Path(description="The declaration's id (caseworkers'; not the secret reference).")
]
SecretReference = Annotated[
    str,
    Header(
        alias=REFERENCE_HEADER,
        max_length=MAX_SECRET_REFERENCE,
        description="The secret reference the submission returned.",
    ),
]


def _problem(description: str) -> dict[str, Any]:
    return {"model": ProblemPublic, "description": description}


_BAD_TOKEN = _problem("A bearer token was sent but is expired or invalid (none is needed).")
_UNAVAILABLE = _problem("The event store is unavailable; nothing was recorded.")
_UNAUTHENTICATED = _problem("The bearer token is missing, expired or invalid.")
_FORBIDDEN = _problem("Your roles do not grant the permission this route needs.")
_NOT_FOUND = _problem("No such declaration in the offices you may see.")
_ETAG = {
    "description": 'The declaration\'s version as an entity tag, e.g. `"7"`.',
    "schema": {"type": "string"},
}

SUBMIT_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _BAD_TOKEN,
    413: _problem("The body is too large."),
    422: _problem("The input is invalid; `errors` names the fields; nothing was recorded."),
    503: _UNAVAILABLE,
}
STATUS_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _BAD_TOKEN,
    404: _problem("No declaration has this reference."),
    422: _problem("The reference header is missing or malformed."),
    503: _UNAVAILABLE,
}
PAY_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    200: {
        "model": PaymentStartedPublic,
        "description": "A payment is still open at the provider: pay there.",
    },
    401: _BAD_TOKEN,
    404: _problem("No declaration has this reference."),
    409: _problem("The declaration cannot be paid: withdrawn, handed over or already paid."),
    413: _problem("The body is too large."),
    422: _problem("The input is invalid; `errors` names the fields."),
    502: _problem("The payment provider answered, but not with a payment; nothing recorded."),
    503: _problem(
        "The payment provider or the event store is unavailable, or payments are "
        "switched off; nothing was recorded."
    ),
}
READ_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    401: _UNAUTHENTICATED,
    403: _FORBIDDEN,
    404: _NOT_FOUND,
    422: _problem("A parameter is invalid; `errors` names it."),
    503: _UNAVAILABLE,
}
LIST_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    status_code: problem for status_code, problem in READ_PROBLEMS.items() if status_code != 404
}
WRITE_PROBLEMS: Final[dict[int | str, dict[str, Any]]] = {
    200: {"headers": {"ETag": _ETAG}},
    400: _problem("If-Match is not a single ETag."),
    401: _UNAUTHENTICATED,
    403: _FORBIDDEN,
    404: _problem("No such declaration (or payment of it) in your office."),
    409: _problem("The declaration's state does not allow this; nothing was recorded."),
    412: _problem("If-Match is stale: the declaration has changed; nothing was recorded."),
    413: _problem("The body is too large."),
    422: _problem("The input is invalid; `errors` names the fields; nothing was recorded."),
    428: _problem("If-Match is missing."),
    503: _UNAVAILABLE,
}


def payment_setup(request: Request) -> PaymentSetup:
    """The payment set-up, or 503 where the deployment has payments switched off."""
    payments = cast(Payments, request.app.state.payments)
    if not isinstance(payments, PaymentSetup):
        raise HttpProblem(
            503,
            "payments-unavailable",
            "online payment is switched off in this deployment; see its payment settings",
            headers={"Retry-After": str(PAYMENT_RETRY_AFTER_SECONDS)},
        )
    return payments


def _acting_user(caller: Principal | None) -> str:
    """The token's subject if one was sent (e.g. the portal's account), else the public."""
    return caller.user_id if caller is not None else PUBLIC_APPLICANT


def _fee(declaration: CommitmentDeclaration) -> FeePublic:
    return FeePublic(
        amount_cents=declaration.fee_amount_cents,
        currency=declaration.fee_currency,
        status=declaration.fee_status,
    )


def _applicant_payments(declaration: CommitmentDeclaration) -> list[ApplicantPaymentPublic]:
    return [
        ApplicantPaymentPublic(
            number=payment.number,
            status=payment.status,
            method=payment.method,
            amount_cents=payment.amount_cents,
            currency=payment.currency,
            initiated_at=payment.initiated_at,
            settled_at=payment.settled_at,
            redirect_url=payment.redirect_url if payment.status == "pending" else None,
        )
        for payment in declaration.payments
    ]


def _no_store(response: Response) -> None:
    # Secret references and personal data stay out of shared and browser caches.
    response.headers["Cache-Control"] = "no-store"


# ------------------------------------------------------------ the applicant


@public_router.post("", status_code=status.HTTP_201_CREATED, responses=SUBMIT_PROBLEMS)
def submit_declaration(
    body: DeclarationCreate,
    caller: PublicSubmitter,
    response: Response,
    service: ServiceDep,
    settings: SettingsDep,
) -> DeclarationSubmittedPublic:
    """Submit a commitment declaration; answers its secret reference, shown only once.

    The fee of 29 EUR is due at once; pay it with the reference
    (`POST /commitment-declarations/own/payment`).
    """
    recorded = service.declarations.submit_commitment_declaration(
        office_id=settings.default_office_id,
        guarantor=Guarantor(
            surname=body.guarantor.surname,
            given_names=body.guarantor.given_names,
            date_of_birth=body.guarantor.date_of_birth,
            address=body.guarantor.address,
            nationality=body.guarantor.nationality,
            id_document_number=body.guarantor.id_document_number,
        ),
        invited_person=InvitedPerson(
            surname=body.invited_person.surname,
            given_names=body.invited_person.given_names,
            date_of_birth=body.invited_person.date_of_birth,
            nationality=body.invited_person.nationality,
            passport_number=body.invited_person.passport_number,
        ),
        purpose=body.purpose,
        stay_from=body.stay_from,
        stay_until=body.stay_until,
        monthly_net_income_cents=body.monthly_net_income_cents,
        assets_cents=body.assets_cents,
        by=_acting_user(caller),
    )
    declaration = service.declarations.get_declaration(recorded.declaration_id)
    _no_store(response)
    note_position(response, recorded.position)
    return DeclarationSubmittedPublic(
        reference=recorded.result,
        status=declaration.status,
        fee=_fee(declaration),
        submitted_at=declaration.submitted_at,
    )


@public_router.get("/own", responses=STATUS_PROBLEMS)
def get_own_declaration(
    caller: PublicStatusReader,
    reference: SecretReference,
    response: Response,
    service: ServiceDep,
) -> DeclarationStatusPublic:
    """Where one's own declaration stands: its state, the fee, payments and dates."""
    declaration = service.declarations.get_declaration(
        service.declarations.find_declaration_by_reference(reference)
    )
    _no_store(response)
    return DeclarationStatusPublic(
        status=declaration.status,
        fee=_fee(declaration),
        submitted_at=declaration.submitted_at,
        stay_from=declaration.stay_from,
        stay_until=declaration.stay_until,
        fee_paid_at=declaration.fee_paid_at,
        payments=_applicant_payments(declaration),
        pickup_appointment_at=declaration.pickup_appointment_at,
        handed_over_at=declaration.handed_over_at,
        withdrawn_at=declaration.withdrawn_at,
    )


@public_router.post("/own/payment", status_code=status.HTTP_201_CREATED, responses=PAY_PROBLEMS)
def start_payment(
    body: PaymentStartCreate,
    request: Request,
    caller: PublicPayer,
    reference: SecretReference,
    response: Response,
    service: ServiceDep,
) -> PaymentStartedPublic:
    """Start paying the fee: answers the payment provider's page to send the payer to.

    While a payment is still open at the provider, that one is answered (200) rather
    than a second one created; after it failed or expired, a new one can be started.
    """
    setup = payment_setup(request)
    declaration_id = service.declarations.find_declaration_by_reference(reference)
    # Behind a proxy the request's own URL is an inside one: production configures it.
    base = setup.public_base_url or str(request.base_url).rstrip("/")
    started = service.declarations.start_payment(
        declaration_id,
        method=body.method,
        provider=setup.provider,
        notification_url=base + request.app.url_path_for("receive_payment_notification"),
        return_url=base + request.app.url_path_for("return_from_payment"),
        by=_acting_user(caller),
    )
    _no_store(response)
    note_position(response, started.position)
    if not started.result.created:
        response.status_code = status.HTTP_200_OK
    payment = started.result.payment
    [public] = [
        item
        for item in _applicant_payments(service.declarations.get_declaration(declaration_id))
        if item.number == payment.number
    ]
    return PaymentStartedPublic(payment=public, redirect_url=payment.redirect_url)


# -------------------------------------------------------------- caseworkers


def _declaration_public(declaration: CommitmentDeclaration) -> DeclarationPublic:
    return DeclarationPublic(
        id=declaration.id,
        version=declaration.version,
        office_id=declaration.office_id,
        status=declaration.status,
        submitted_at=declaration.submitted_at,
        guarantor=GuarantorPublic.model_validate(declaration.guarantor),
        invited_person=InvitedPersonPublic.model_validate(declaration.invited_person),
        purpose=declaration.purpose,
        stay_from=declaration.stay_from,
        stay_until=declaration.stay_until,
        stay_days=declaration.stay_days,
        monthly_net_income_cents=declaration.monthly_net_income_cents,
        assets_cents=declaration.assets_cents,
        fee=DeclarationFeePublic(
            amount_cents=declaration.fee_amount_cents,
            currency=declaration.fee_currency,
            status=declaration.fee_status,
            legal_basis=declaration.fee_legal_basis,
            payment_number=declaration.fee_payment_number,
            paid_at=declaration.fee_paid_at,
            refunded_at=declaration.fee_refunded_at,
        ),
        payments=[PaymentPublic.model_validate(payment) for payment in declaration.payments],
        ability_to_pay=(
            None
            if declaration.ability_to_pay is None
            else AbilityToPayCheckPublic.model_validate(declaration.ability_to_pay)
        ),
        pickup_appointment_at=declaration.pickup_appointment_at,
        handed_over_at=declaration.handed_over_at,
        visitor_entry_date=declaration.visitor_entry_date,
        liability_until=declaration.liability_until,
        withdrawn_at=declaration.withdrawn_at,
        case_id=UUID(declaration.case_id) if declaration.case_id else None,
    )


def _recorded(response: Response, recorded: DeclarationRecorded[Any]) -> DeclarationRecordedPublic:
    response.headers["ETag"] = etag(recorded.version)
    note_position(response, recorded.position)
    return DeclarationRecordedPublic(
        declaration_id=recorded.declaration_id, version=recorded.version
    )


@router.get("", responses=LIST_PROBLEMS)
def list_declarations(
    request: Request,
    reader: DeclarationReader,
    response: Response,
    service: ServiceDep,
    after: Annotated[
        int,
        Query(
            ge=0,
            description=(
                "The page cursor from the previous page's `Link`; omitted: from the first."
            ),
        ),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> list[DeclarationSummaryPublic]:
    """Declarations of the offices you may see, in the order they were submitted.

    A page may hold fewer than `limit` (others' offices' declarations are skipped); a
    `Link: <...>; rel="next"` header says more may follow.
    """
    page = service.declarations.list_declarations(
        office_ids=None, after_position=after, limit=limit
    )
    if page.more and page.last_position is not None:
        next_page = request.url.include_query_params(after=page.last_position, limit=limit)
        response.headers["Link"] = f'<{next_page}>; rel="next"'
    return [
        DeclarationSummaryPublic(
            id=declaration.id,
            version=declaration.version,
            office_id=declaration.office_id,
            status=declaration.status,
            fee_status=declaration.fee_status,
            submitted_at=declaration.submitted_at,
            stay_from=declaration.stay_from,
            stay_until=declaration.stay_until,
        )
        for declaration in page.declarations
        if may_in_office(reader, Permission.COMMITMENT_READ, declaration.office_id)
    ]


@router.get("/{declaration_id}", responses={**READ_PROBLEMS, 200: {"headers": {"ETag": _ETAG}}})
def get_declaration(
    declaration_id: DeclarationId,
    reader: DeclarationReader,
    response: Response,
    service: ServiceDep,
) -> DeclarationPublic:
    """The declaration as it is now; its ETag is the version to send as If-Match."""
    declaration = service.declarations.get_declaration(declaration_id)
    response.headers["ETag"] = etag(declaration.version)
    _no_store(response)
    return _declaration_public(declaration)


@router.get("/{declaration_id}/events", responses=READ_PROBLEMS)
def list_declaration_events(
    declaration_id: DeclarationId,
    request: Request,
    reader: DeclarationReader,
    response: Response,
    service: ServiceDep,
    after_version: Annotated[
        int,
        Query(ge=0, description="The version of the last event you have; omitted: from 1."),
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE)] = DEFAULT_EVENT_PAGE,
) -> list[EventPublic]:
    """The declaration's events in order, who did what when, a page at a time."""
    events = service.declarations.declaration_events(
        declaration_id, after_version=after_version, limit=limit
    )
    if len(events) == limit:
        next_page = request.url.include_query_params(
            after_version=events[-1].originator_version, limit=limit
        )
        response.headers["Link"] = f'<{next_page}>; rel="next"'
    _no_store(response)
    return [
        EventPublic(
            version=event.originator_version,
            type=type(event).__name__,
            by=event.by,
            at=event.at,
            recorded_at=event.timestamp,
            data={
                name: value
                for name, value in vars(event).items()
                if name not in _EVENT_ENVELOPE_FIELDS
            },
        )
        for event in events
    ]


@router.post("/{declaration_id}/ability-check", responses=WRITE_PROBLEMS)
def check_ability_to_pay(
    declaration_id: DeclarationId,
    body: AbilityCheckCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """Record the check of the guarantor's ability to pay; the latest check counts."""
    recorded = service.declarations.check_ability_to_pay(
        declaration_id,
        expected_version=expected_version,
        by=principal.user_id,
        passed=body.passed,
        reason=body.reason,
        at=body.at,
    )
    return _recorded(response, recorded)


@router.post("/{declaration_id}/pickup-appointment", responses=WRITE_PROBLEMS)
def set_pickup_appointment(
    declaration_id: DeclarationId,
    body: PickupAppointmentCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """Invite the guarantor to sign and pick up; needs the fee paid and the ability shown."""
    recorded = service.declarations.set_pickup_appointment(
        declaration_id,
        expected_version=expected_version,
        by=principal.user_id,
        appointment_at=body.appointment_at,
        at=body.at,
    )
    return _recorded(response, recorded)


@router.post("/{declaration_id}/handover", responses=WRITE_PROBLEMS)
def hand_over_declaration(
    declaration_id: DeclarationId,
    body: HandoverCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """The guarantor signed in person and took the declaration."""
    recorded = service.declarations.hand_over_declaration(
        declaration_id, expected_version=expected_version, by=principal.user_id, at=body.at
    )
    return _recorded(response, recorded)


@router.post("/{declaration_id}/visitor-entry", responses=WRITE_PROBLEMS)
def record_visitor_entry(
    declaration_id: DeclarationId,
    body: VisitorEntryCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """The visitor's entry date: the guarantor is liable for five years from it."""
    recorded = service.declarations.record_visitor_entry(
        declaration_id,
        expected_version=expected_version,
        by=principal.user_id,
        entry_date=body.entry_date,
        reason=body.reason,
        at=body.at,
    )
    return _recorded(response, recorded)


@router.post("/{declaration_id}/withdrawal", responses=WRITE_PROBLEMS)
def withdraw_declaration(
    declaration_id: DeclarationId,
    body: WithdrawalCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """The guarantor withdraws the declaration before handover; a paid fee stays paid."""
    recorded = service.declarations.withdraw_declaration(
        declaration_id,
        expected_version=expected_version,
        by=principal.user_id,
        reason=body.reason,
        at=body.at,
    )
    return _recorded(response, recorded)


@router.post("/{declaration_id}/refund", responses=WRITE_PROBLEMS)
def refund_payment(
    declaration_id: DeclarationId,
    body: RefundCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """Refund the paid fee (or a surplus payment) where the office decides so."""
    recorded = service.declarations.refund_payment(
        declaration_id,
        expected_version=expected_version,
        by=principal.user_id,
        reason=body.reason,
        payment_number=body.payment_number,
        at=body.at,
    )
    public = _recorded(response, recorded)
    public.payment_number = recorded.result
    return public


@router.post(
    "/{declaration_id}/case-link",
    responses=WRITE_PROBLEMS,
    operation_id="link_declaration_to_case_file",
)
def link_to_case_file(
    declaration_id: DeclarationId,
    body: CaseLinkCreate,
    response: Response,
    service: ServiceDep,
    principal: DeclarationWriter,
    expected_version: ExpectedVersion,
) -> DeclarationRecordedPublic:
    """Link the declaration to the visitor's case file of the same office."""
    recorded = service.declarations.link_declaration_to_case(
        declaration_id,
        expected_version=expected_version,
        by=principal.user_id,
        case_id=body.case_id,
        at=body.at,
    )
    return _recorded(response, recorded)


# ---------------------------------------------------------------- problems


async def _commitment_problem(request: Request, error: Exception) -> JSONResponse:
    if isinstance(error, DeclarationNotFound):
        return problem_response(404, "declaration-not-found", str(error))
    if isinstance(error, UnknownPaymentTransaction):
        return problem_response(404, "unknown-transaction", str(error))
    if isinstance(error, PaymentProviderUnavailable):
        return problem_response(
            503,
            "payment-provider-unavailable",
            "the payment provider cannot be reached; nothing was recorded, try again later",
            headers={"Retry-After": str(PAYMENT_RETRY_AFTER_SECONDS)},
        )
    if isinstance(error, PaymentProviderError):
        return problem_response(
            502, "payment-provider-error", f"{error}; nothing was recorded", title="Bad gateway"
        )
    raise error


def install_commitment_problems(app: FastAPI) -> None:
    """The problem responses of this module's and :mod:`adapters.http.routes.payments`' errors."""
    for error_class in (
        DeclarationNotFound,
        UnknownPaymentTransaction,
        PaymentProviderUnavailable,
        PaymentProviderError,
    ):
        app.add_exception_handler(error_class, _commitment_problem)
