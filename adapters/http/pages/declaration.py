"""The commitment declaration pages (Verpflichtungserklärung, § 68 AufenthG).

``GET /declaration`` shows the form (the inviting person, the visitor, the stay, income or
assets, how to pay) with the fee; ``POST /declaration`` submits it through the same
service command as ``POST /commitment-declarations``, starts the payment as
``POST /commitment-declarations/own/payment`` does and sends the browser to the payment
platform's page (``303``). The platform sends the payer back to ``GET
/declaration/return``, which says paid, failed or still open, as Akte knows it from the
platform's signed notification (the platform's query string is not trusted).

The secret reference is the applicant's only key. It travels in a cookie (``HttpOnly``,
path ``/declaration``) from the submission to the return page, never to the platform, and
is shown as the link of the status page ``GET /declaration/status/{reference}``. The
access log and the metrics name that route by its template, not its path, so the
reference stays out of them. ``POST /declaration/pay`` (the reference in the form's body)
starts another payment after one failed. A reference Akte does not know (and ``GET
/declaration/pay``, which has none) shows a page that says what to check, in the
visitor's language (``404``), without the reference.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Annotated, Final, cast
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from adapters.http.auth.identity import Principal
from adapters.http.auth.permissions import Permission, allow_public
from adapters.http.deps import ServiceDep, SettingsDep
from adapters.http.pages.languages import Language, chosen_language, languages_of
from adapters.http.pages.rendering import render
from adapters.http.pages.translations import translations_for
from adapters.payment.provider import PaymentProviderError, PaymentProviderUnavailable
from adapters.payment.setup import Payments, PaymentSetup
from domain.commitment_declaration import (
    MAX_ADDRESS,
    CommitmentDeclaration,
    Guarantor,
    InvitedPerson,
    PaymentAttempt,
)
from domain.errors import DomainError, InvalidValue
from domain.values import COMMITMENT_DECLARATION_FEE, PaymentMethod, VisitPurpose
from service import AkteService
from service_common import PUBLIC_APPLICANT
from service_declarations import DeclarationNotFound

router = APIRouter(include_in_schema=False)

MODULE: Final = "declaration"
DECLARATION_PATH: Final = "/declaration"
RETURN_PATH: Final = "/declaration/return"
STATUS_PATH: Final = "/declaration/status/{reference}"
PAY_PATH: Final = "/declaration/pay"
FORM_URLENCODED: Final = frozenset({"application/x-www-form-urlencoded"})
FORM_MEDIA_TYPES: Final = {DECLARATION_PATH: FORM_URLENCODED}
"""The form's body, accepted beside JSON on this path."""
BODY_LIMITS: Final = {DECLARATION_PATH: 16_384}
"""The pages' forms are small and open to anyone (as the API's, see its BODY_LIMITS)."""
REFERENCE_COOKIE: Final = "akte_declaration"
REFERENCE_COOKIE_SECONDS: Final = 24 * 3600
"""Long enough to pay and come back; the status page's link is the lasting way back."""
MAX_REFERENCE: Final = 64

Submitter = Annotated[Principal | None, Depends(allow_public(Permission.COMMITMENT_SUBMIT))]
Payer = Annotated[Principal | None, Depends(allow_public(Permission.COMMITMENT_PAY))]
StatusReader = Annotated[Principal | None, Depends(allow_public(Permission.COMMITMENT_STATUS_READ))]


def N_(message: str) -> str:  # noqa: N802 - the gettext marker's conventional name
    """Marks a message for extraction; translated when the page is rendered."""
    return message


PERSON_FIELDS: Final = (
    "guarantor_surname",
    "guarantor_given_names",
    "guarantor_date_of_birth",
    "guarantor_address",
    "guarantor_nationality",
    "guarantor_id_document_number",
    "visitor_surname",
    "visitor_given_names",
    "visitor_date_of_birth",
    "visitor_nationality",
    "visitor_passport_number",
)
FIELDS: Final = (
    *PERSON_FIELDS,
    "purpose",
    "stay_from",
    "stay_until",
    "monthly_net_income",
    "assets",
    "method",
)
OPTIONAL: Final = frozenset({"monthly_net_income", "assets"})
DATES: Final = frozenset(
    {"guarantor_date_of_birth", "visitor_date_of_birth", "stay_from", "stay_until"}
)
# The domain's field names (``guarantor.surname``) as the form's (``guarantor_surname``).
_FORM_FIELD: Final = {
    "invited_person": "visitor",
    "monthly_net_income_cents": "monthly_net_income",
    "assets_cents": "assets",
}

PURPOSES: Final[dict[VisitPurpose, str]] = {
    "family_visit": N_("Visiting family"),
    "private_visit": N_("Visiting friends or acquaintances"),
    "tourism": N_("Holiday and sightseeing"),
    "business": N_("Business trip"),
    "medical_treatment": N_("Medical treatment"),
    "training": N_("Training or a course"),
    "other": N_("Another purpose"),
}
METHODS: Final[dict[PaymentMethod, str]] = {
    "visa": "Visa",
    "mastercard": "Mastercard",
    "giropay": "giropay",
    "paydirect": "paydirect",
    "paypal": "PayPal",
}
"""Brand names, the same in every language."""

STATUS_TEXT: Final = {
    "fee_due": N_("The fee has not been paid yet."),
    "payment_pending": N_("We are waiting for the payment platform to confirm your payment."),
    "fee_refunded": N_("The fee has been paid back to you."),
    "awaiting_ability_check": N_(
        "The fee is paid. We are now checking whether your income or assets are enough."
    ),
    "ability_not_shown": N_(
        "Your income and assets as stated are not enough. We will write to you."
    ),
    "ready_for_pickup": N_(
        "Checked. We will give you an appointment to sign and collect the declaration."
    ),
    "pickup_scheduled": N_("Your appointment to sign and collect the declaration is set."),
    "handed_over": N_("The declaration has been signed and handed over to you."),
    "withdrawn": N_("The declaration has been withdrawn."),
}
PAYMENT_TEXT: Final = {
    "pending": N_("payment open"),
    "paid": N_("payment received"),
    "failed": N_("payment failed"),
    "expired": N_("payment expired"),
}

_REQUIRED: Final = N_("Fill in this field.")
_INVALID: Final = {
    "guarantor_surname": N_("Enter your family name as in your identity document."),
    "guarantor_given_names": N_("Enter your given names as in your identity document."),
    "guarantor_date_of_birth": N_(
        "Enter your date of birth; you must be at least 18 years old to sign."
    ),
    "guarantor_address": N_("Enter your address in Germany, at most 500 characters."),
    "guarantor_nationality": N_(
        "Enter your nationality as the three capital letters in your passport, such as DEU."
    ),
    "guarantor_id_document_number": N_(
        "Enter the number of your identity card or passport: 5 to 20 letters or digits."
    ),
    "visitor_surname": N_("Enter the visitor's family name as in their passport."),
    "visitor_given_names": N_("Enter the visitor's given names as in their passport."),
    "visitor_date_of_birth": N_("Enter the visitor's date of birth."),
    "visitor_nationality": N_(
        "Enter the visitor's nationality as the three capital letters in their passport."
    ),
    "visitor_passport_number": N_(
        "Enter the visitor's passport number: 5 to 20 letters or digits."
    ),
    "purpose": N_("Choose the purpose of the visit."),
    "stay_from": N_("Enter the first day of the visit; it must not lie in the past."),
    "stay_until": N_("Enter the last day of the visit; it must not lie before the first day."),
    "monthly_net_income": N_("Give your monthly net income, your assets or both, in whole euros."),
    "assets": N_("Give your assets in whole euros, or leave the field empty."),
    "method": N_("Choose how you want to pay."),
}
_WHOLE_EUROS: Final = re.compile(r"\d{1,3}(?:[., ]\d{3})+|\d{1,11}")


def _translate(language: Language, message: str) -> str:
    return translations_for(language.code).gettext(message)


def _language(request: Request) -> Language:
    return chosen_language(request, languages_of(MODULE))


def _payments(request: Request) -> PaymentSetup | None:
    payments = cast(Payments, request.app.state.payments)
    return payments if isinstance(payments, PaymentSetup) else None


def _form_page(
    request: Request,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    language = _language(request)
    return render(
        request,
        "declaration/form.html.j2",
        {
            "values": values,
            "errors": errors or {},
            "fee_cents": COMMITMENT_DECLARATION_FEE.amount_cents,
            "purposes": [
                (code, _translate(language, label), None) for code, label in PURPOSES.items()
            ],
            "methods": [(code, label, None) for code, label in METHODS.items()],
            "max_address": MAX_ADDRESS,
            "payments_on": _payments(request) is not None,
        },
        status_code=422 if errors else 200,
        offered=languages_of(MODULE),
    )


def _not_found(request: Request) -> HTMLResponse:
    """An unknown reference: what to check and where to start again, never the reference."""
    return render(
        request,
        "declaration/not_found.html.j2",
        status_code=404,
        offered=languages_of(MODULE),
    )


@router.get(DECLARATION_PATH, response_class=HTMLResponse)
def declaration_form(request: Request, submitter: Submitter) -> HTMLResponse:
    return _form_page(request, {})


def _values(form: FormData) -> dict[str, str]:
    values = {}
    for name in FIELDS:
        value = form.get(name)
        values[name] = value.strip() if isinstance(value, str) else ""
    return values


def _cents(value: str) -> int | None:
    """Whole euros as typed (``2500``, ``2.500``, ``2,500``) in cents; ``None``: empty."""
    if not value:
        return None
    if not _WHOLE_EUROS.fullmatch(value):
        raise ValueError(value)
    return int(re.sub(r"[., ]", "", value)) * 100


def _form_errors(values: Mapping[str, str], language: Language) -> dict[str, str]:
    """What the form can tell by itself: empty fields, dates and amounts that are none."""
    errors = {}
    for name in FIELDS:
        if name not in OPTIONAL and not values[name]:
            errors[name] = _translate(language, _REQUIRED)
        elif name in DATES:
            try:
                date.fromisoformat(values[name])
            except ValueError:
                errors[name] = _translate(language, _INVALID[name])
        elif name in OPTIONAL:
            try:
                _cents(values[name])
            except ValueError:
                errors[name] = _translate(language, _INVALID[name])
    if values["purpose"] and values["purpose"] not in PURPOSES:
        errors["purpose"] = _translate(language, _INVALID["purpose"])
    if values["method"] and values["method"] not in METHODS:
        errors["method"] = _translate(language, _INVALID["method"])
    return errors


def _submit(service: AkteService, office_id: str, values: Mapping[str, str], by: str) -> str:
    recorded = service.declarations.submit_commitment_declaration(
        office_id=office_id,
        guarantor=Guarantor(
            surname=values["guarantor_surname"],
            given_names=values["guarantor_given_names"],
            date_of_birth=date.fromisoformat(values["guarantor_date_of_birth"]),
            address=values["guarantor_address"],
            # As printed in passports: capitals; a person may type them small.
            nationality=values["guarantor_nationality"].upper(),
            id_document_number=values["guarantor_id_document_number"].upper(),
        ),
        invited_person=InvitedPerson(
            surname=values["visitor_surname"],
            given_names=values["visitor_given_names"],
            date_of_birth=date.fromisoformat(values["visitor_date_of_birth"]),
            nationality=values["visitor_nationality"].upper(),
            passport_number=values["visitor_passport_number"].upper(),
        ),
        purpose=cast(VisitPurpose, values["purpose"]),
        stay_from=date.fromisoformat(values["stay_from"]),
        stay_until=date.fromisoformat(values["stay_until"]),
        monthly_net_income_cents=_cents(values["monthly_net_income"]),
        assets_cents=_cents(values["assets"]),
        by=by,
    )
    return recorded.result


def _start_payment(
    request: Request, service: AkteService, reference: str, method: PaymentMethod, by: str
) -> str | None:
    """The platform's page to pay at; ``None`` when no payment could be started now
    (payments switched off, the platform unreachable, or nothing left to pay)."""
    setup = _payments(request)
    if setup is None:
        return None
    base = setup.public_base_url or str(request.base_url).rstrip("/")
    try:
        started = service.declarations.start_payment(
            service.declarations.find_declaration_by_reference(reference),
            method=method,
            provider=setup.provider,
            notification_url=base + request.app.url_path_for("receive_payment_notification"),
            return_url=base + RETURN_PATH,
            by=by,
        )
    except (PaymentProviderUnavailable, PaymentProviderError, DomainError):
        return None
    return started.result.payment.redirect_url


def _remember(response: Response, request: Request, reference: str) -> Response:
    response.set_cookie(
        REFERENCE_COOKIE,
        reference,
        max_age=REFERENCE_COOKIE_SECONDS,
        path=DECLARATION_PATH,
        httponly=True,
        # Lax: the cookie comes along when the platform sends the payer back (a link).
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def _status_url(request: Request, reference: str) -> str:
    return str(request.app.url_path_for("declaration_status", reference=reference))


def _acting(caller: Principal | None) -> str:
    return caller.user_id if caller is not None else PUBLIC_APPLICANT


@router.post(DECLARATION_PATH, response_class=HTMLResponse, response_model=None)
async def submit_declaration(
    request: Request, submitter: Submitter, service: ServiceDep, settings: SettingsDep
) -> Response:
    language = _language(request)
    async with request.form(max_files=0, max_fields=len(FIELDS) + 10) as form:
        values = _values(form)
    errors = _form_errors(values, language)
    if errors:
        return _form_page(request, values, errors)
    by = _acting(submitter)
    try:
        reference = await run_in_threadpool(
            _submit, service, settings.default_office_id, values, by
        )
    except InvalidValue as refused:
        group, _, rest = refused.field.partition(".")
        name = f"{_FORM_FIELD.get(group, group)}_{rest}" if rest else _FORM_FIELD.get(group, group)
        field = name if name in _INVALID else "purpose"
        return _form_page(request, values, {field: _translate(language, _INVALID[field])})
    method = cast(PaymentMethod, values["method"])
    pay_at = await run_in_threadpool(_start_payment, request, service, reference, method, by)
    target = pay_at if pay_at is not None else _status_url(request, reference) + "?unpaid=1"
    return _remember(RedirectResponse(target, status_code=303), request, reference)


@router.post(PAY_PATH, response_class=HTMLResponse, response_model=None)
async def pay_declaration(request: Request, payer: Payer, service: ServiceDep) -> Response:
    async with request.form(max_files=0, max_fields=10) as form:
        reference, method = form.get("reference"), form.get("method")
    if not isinstance(reference, str) or len(reference) > MAX_REFERENCE:
        return _not_found(request)
    chosen: PaymentMethod = "visa"
    for code in METHODS:
        if code == method:
            chosen = code
    try:
        await run_in_threadpool(service.declarations.find_declaration_by_reference, reference)
    except DeclarationNotFound:
        return _not_found(request)
    pay_at = await run_in_threadpool(
        _start_payment, request, service, reference, chosen, _acting(payer)
    )
    target = pay_at if pay_at is not None else _status_url(request, reference) + "?unpaid=1"
    return _remember(RedirectResponse(target, status_code=303), request, reference)


@router.get(PAY_PATH, response_class=HTMLResponse)
def pay_without_reference(request: Request, payer: Payer) -> HTMLResponse:
    """The pay form's address opened by itself (the language switch of its answer, a
    reload): it carries no reference, so it finds no declaration."""
    return _not_found(request)


def _own(service: AkteService, reference: str) -> CommitmentDeclaration | None:
    """The declaration of ``reference``; ``None``: no declaration has it."""
    if len(reference) > MAX_REFERENCE:
        return None
    try:
        declaration_id: UUID = service.declarations.find_declaration_by_reference(reference)
    except DeclarationNotFound:
        return None
    return service.declarations.get_declaration(declaration_id)


def _payment_rows(
    declaration: CommitmentDeclaration, language: Language
) -> list[tuple[PaymentAttempt, str]]:
    return [
        (payment, _translate(language, PAYMENT_TEXT[payment.status]))
        for payment in declaration.payments
    ]


@router.get(RETURN_PATH, response_class=HTMLResponse)
def return_from_payment(
    request: Request,
    payer: Payer,
    service: ServiceDep,
    transaction_id: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    """Back from the platform: the payment as the platform's signed notification told
    Akte; the ``status`` the platform appends to the URL is not trusted."""
    reference = request.cookies.get(REFERENCE_COOKIE)
    declaration = _own(service, reference) if reference is not None else None
    outcome = "unknown"
    if declaration is not None and reference is not None:
        payment = next(
            (p for p in declaration.payments if p.transaction_id == transaction_id),
            declaration.payments[-1] if declaration.payments else None,
        )
        if declaration.fee_status in ("paid", "refunded"):
            outcome = "paid"
        elif payment is None or payment.status in ("failed", "expired"):
            outcome = "failed"
        else:
            outcome = "pending"
    return render(
        request,
        "declaration/return.html.j2",
        {
            "outcome": outcome,
            "reference": reference if declaration is not None else None,
            "status_url": _status_url(request, reference)
            if declaration is not None and reference is not None
            else None,
            "methods": [(code, label, None) for code, label in METHODS.items()],
        },
        offered=languages_of(MODULE),
        headers={"Cache-Control": "no-store"},
    )


@router.get(STATUS_PATH, response_class=HTMLResponse)
def declaration_status(
    request: Request, reference: str, reader: StatusReader, service: ServiceDep
) -> HTMLResponse:
    declaration = _own(service, reference)
    if declaration is None:
        return _not_found(request)
    language = _language(request)
    return render(
        request,
        "declaration/status.html.j2",
        {
            "declaration": declaration,
            "status_text": _translate(language, STATUS_TEXT[declaration.status]),
            "payments": _payment_rows(declaration, language),
            "purpose": _translate(language, PURPOSES[declaration.purpose]),
            "may_pay": declaration.status == "fee_due",
            "pending_url": (
                declaration.pending_payment.redirect_url
                if declaration.pending_payment is not None
                else None
            ),
            "unpaid": request.query_params.get("unpaid") == "1",
            "reference": reference,
            "methods": [(code, label, None) for code, label in METHODS.items()],
        },
        offered=languages_of(MODULE),
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )
