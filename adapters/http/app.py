"""The HTTP interface of Akte: a thin layer over :class:`service.AkteService`.

Reads return the current state of a case file with ``ETag: "<version>"``. Every write is
a ``POST`` on a sub-resource of the case file and needs ``If-Match: "<version>"``, which
becomes the command's expected version; it answers with the new ``ETag``, and with
``201 Created`` plus ``Location`` when it created a numbered part (procedure, document, ...).

Concurrency follows HTTP, more strictly than the issue's "409 stale version": a stale
``If-Match`` is ``412 Precondition Failed`` (with the expected and actual version) and a
missing one ``428 Precondition Required``; ``409 Conflict`` is left to domain rule
violations.

Every route but the public ones needs a bearer token (:mod:`adapters.http.auth.tokens`) and
declares the permission it needs (:mod:`adapters.http.auth.permissions`); the acting user of
every write is the verified token's subject. :func:`create_app` assembles the app from
objects built elsewhere: :func:`adapters.bootstrap.build_app` builds them from the
settings, and refuses authentication settings that are unsafe or incomplete.

Errors are ``application/problem+json`` (RFC 9457), see :mod:`adapters.http.problems`;
those of the public pages are pages in the visitor's language
(:mod:`adapters.http.pages.errors`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from starlette.routing import BaseRoute

from adapters.http.auth.permissions import (
    AllowPublic,
    AppointmentOffices,
    CaseOffices,
    DeclarationOffices,
    SubmissionOffices,
    route_accesses,
)
from adapters.http.auth.tokens import TokenVerifier
from adapters.http.idempotency import describe_idempotency_key, install_idempotency
from adapters.http.pages import contact as contact_page
from adapters.http.pages.errors import PageErrorPages
from adapters.http.pages.site import (
    PAGE_AREAS,
    form_body_limits,
    form_media_types,
    install_pages,
)
from adapters.http.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from adapters.http.rate_limits import RateLimiter, RateLimitMetrics, RateLimitMiddleware
from adapters.http.read_log import install_read_access_log
from adapters.http.routes import appointment_lists as appointment_worklists
from adapters.http.routes import (
    appointments,
    audit,
    audit_trail,
    catalogue,
    data_protection,
    reports,
    whatif,
    worklists,
    workload,
)
from adapters.http.routes import contact_form as intake
from adapters.http.routes import declarations as commitments
from adapters.http.routes import payments as payment_routes
from adapters.http.routes import registration_notices as notice_routes
from adapters.http.routes.api_docs import (
    OPENAPI_TAGS,
    DocsSignIn,
    docs_sign_in,
    install_api_docs,
    operation_id,
    with_sign_in,
)
from adapters.http.routes.appointments import install_appointment_problems
from adapters.http.routes.case_files import (
    cases,
    correspondence,
    document_uploads,
    documents,
    entry_procedures,
    fiction_certificates,
    history,
    inquiries,
    integration_course,
    notes,
    procedures,
    residence_documents,
)
from adapters.http.routes.case_files.history import install_history_problems
from adapters.http.routes.contact_form import install_intake_problems
from adapters.http.routes.declarations import install_commitment_problems
from adapters.http.routes.operations import NamedCheck, ReadinessCheck, install_operations
from adapters.http.uploads import MULTIPART, MULTIPART_OVERHEAD_BYTES, install_document_problems
from adapters.monitoring.metrics import install_monitoring
from adapters.monitoring.runs import APPOINTMENTS_TICK, TASKS
from adapters.payment.setup import Payments
from adapters.personal_data.kept_history_keys import kept_histories
from adapters.settings import Settings
from adapters.views.read_models import ReadModelLag, ReadModels
from service import AkteService
from service_idempotency import AnswerMemory

DESCRIPTION = """\
Case processing for foreigners' offices (Ausländerbehörden).

**Reading** a case file returns `ETag: "<version>"`. **Writing** is a `POST` on a
sub-resource of the case file and needs `If-Match: "<version>"`; a stale version is
answered with `412`, a missing `If-Match` with `428`. Writes answer with the new `ETag`.

**Retrying writes:** send every write with `Idempotency-Key: <a new random UUID>` and a
retry (after a timeout, a broken connection or a `503`) with the same key: the retry gets
the first answer and records nothing. The same key with another request: `422`
(`idempotency-key-reused`); while the first is still answering: `409`
(`idempotency-key-in-flight`). `503` `outcome-unknown`: the store failed while recording
and could not tell whether it did; retry with the same key after `Retry-After`: the retry
of a case-file write is answered as the first would have been (status, `Location`,
`ETag`, `X-Akte-Position`, body). Keys belong to the acting user and are kept for 24
hours (configurable).

**Authentication:** every route except `GET /catalogue` needs `Authorization: Bearer
<access token>`, a token of the office's identity provider (OpenID Connect; in local
development mode printed by `akte token USER`). The token's subject is the acting user
every write records. No or a bad token: `401`; a role without the route's permission
(each operation names it): `403`; a case file of an office your role does not reach
answers `404`, exactly like one that does not exist. A server of one office's shard
(offices as shards) answers `403` (`other-office-shard`) to tokens of other offices
(auditors and data protection officers excepted) and to an `office_id` of another office.

| role | may | offices |
|---|---|---|
| `caseworker` | read, open case files, record all but assignments | own |
| `team_lead` | as a caseworker, and assign or re-assign procedures | own |
| `auditor` | read case files and their events; write nothing | all |
| `head_of_office` | reports and aggregates only (the yearly report), no case file | own |
| anyone | `GET /catalogue`; a commitment declaration's own routes; `POST /contact-form` | - |

Caseworkers and team leads also read and process commitment declarations and triage
contact form submissions of their office (auditors read those of all offices). The
payment platform's notifications carry no token: their body is signed
(`X-Payment-Signature`).

**Uploads** (`POST /contact-form`, `POST /cases/{case_id}/uploads`) are
`multipart/form-data`. Files must be PDF, JPEG or PNG by their content (name and declared
type are ignored), within the size limits, with plain file names; a refused upload stores
and records nothing.

**Lists** come in pages: a full page carries `Link: <...>; rel="next"`; follow it until
a page has none.

**Errors** are `application/problem+json` (RFC 9457) with a stable `type` URI; invalid
input lists the offending fields in `errors`.
"""

_GENERATED_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
_WRITE_HEADERS = frozenset({"if-match"})
_ETAG_HEADER = {
    "description": 'The case file\'s version as an entity tag, e.g. `"7"`.',
    "schema": {"type": "string"},
}
_LOCATION_HEADER = {
    "description": "Where the created part of the case file can be read.",
    "schema": {"type": "string", "format": "uri"},
}


class AkteApi(FastAPI):
    """FastAPI, with the OpenAPI document telling the truth about errors, ETags and access."""

    docs_sign_in: DocsSignIn | None = None
    """How people sign in on /docs (the provider's scheme in the document), if at all."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            schema = describe_idempotency_key(_describe_problems_and_headers(super().openapi()))
            self.openapi_schema = with_sign_in(
                _describe_access(schema, self.routes), self.docs_sign_in
            )
        return self.openapi_schema


def _describe_problems_and_headers(schema: dict[str, Any]) -> dict[str, Any]:
    # FastAPI documents every error as application/json and adds its own 422 format,
    # which the problem handlers replace.
    problem = {"schema": {"$ref": "#/components/schemas/ProblemPublic"}}
    for path, path_item in schema.get("paths", {}).items():
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                # Declared optional only so that their absence is a 401/428, not a 422.
                if parameter["in"] == "header" and parameter["name"] in _WRITE_HEADERS:
                    parameter["required"] = True
            for status_code, response in operation.get("responses", {}).items():
                code = int(status_code)
                if code >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: problem}
                elif path.startswith("/cases") and 200 <= code < 300:
                    headers = response.setdefault("headers", {})
                    headers["ETag"] = _ETAG_HEADER
                    if code == 201:
                        headers["Location"] = _LOCATION_HEADER
    components = schema.get("components", {}).get("schemas", {})
    for name in _GENERATED_VALIDATION_SCHEMAS:
        components.pop(name, None)
    return schema


def _describe_access(schema: dict[str, Any], routes: Sequence[BaseRoute]) -> dict[str, Any]:
    """Each operation names the permission it needs; public ones take a token optionally."""
    paths = schema.get("paths", {})
    for route in route_accesses(routes):
        if route.access is None:
            continue
        for method in route.methods:
            operation = paths.get(route.path, {}).get(method.lower())
            if operation is None:
                continue
            operation["x-akte-permission"] = route.access.permission.value
            if isinstance(route.access, AllowPublic):
                # An empty requirement: anonymous callers are welcome too.
                operation["security"] = [{}, *operation.get("security", [])]
                note = "Public: no token needed (a token sent must be valid)."
            else:
                note = f"Needs permission `{route.access.permission.value}`."
            description = operation.get("description", "")
            operation["description"] = f"{description}\n\n{note}" if description else note
    return schema


def create_app(
    service: AkteService,
    settings: Settings,
    *,
    token_verifier: TokenVerifier,
    payments: Payments,
    read_models: ReadModels,
    readiness_checks: Sequence[ReadinessCheck] = (),
) -> FastAPI:
    """The API over ``service``, from objects already built (it builds none itself, see
    :func:`adapters.bootstrap.build_app`); whoever built them closes them.

    ``token_verifier`` checks the bearer tokens, ``payments`` is the ePayment set-up,
    ``read_models`` serve the worklists. ``readiness_checks`` join the store and read
    model checks of ``GET /readyz``. ``settings`` give the limits and office defaults.
    """
    app = AkteApi(
        title="Akte",
        summary="Event-sourced case processing for German foreigners' offices",
        description=DESCRIPTION,
        openapi_tags=OPENAPI_TAGS,
        generate_unique_id_function=operation_id,
        # Swagger UI from Akte itself, not a CDN (install_api_docs); no ReDoc.
        docs_url=None,
        redoc_url=None,
        # Telemetry logs would carry exception messages, which may quote personal data.
        telemetry={"logs": False},
    )
    app.state.service = service
    app.state.settings = settings
    app.state.token_verifier = token_verifier
    app.state.case_offices = CaseOffices(service)
    app.state.declaration_offices = DeclarationOffices(service)
    app.state.submission_offices = SubmissionOffices(service)
    app.state.appointment_offices = AppointmentOffices(service)
    app.state.payments = payments
    app.state.read_models = read_models
    app.state.kept_histories = kept_histories(service.mapper)
    install_problem_handlers(app)
    install_commitment_problems(app)
    install_intake_problems(app)
    install_document_problems(app)
    install_history_problems(app)
    install_appointment_problems(app)
    for router_module in (
        cases,
        history,
        documents,
        document_uploads,
        procedures,
        residence_documents,
        fiction_certificates,
        integration_course,
        entry_procedures,
        inquiries,
        correspondence,
        notes,
        catalogue,
    ):
        app.include_router(router_module.router)
    # The applicant's routes first: /commitment-declarations/own must not be taken for an id.
    app.include_router(commitments.public_router)
    app.include_router(commitments.router)
    app.include_router(payment_routes.router)
    app.include_router(intake.public_router)
    app.include_router(intake.router)
    app.include_router(worklists.router)
    app.include_router(notice_routes.router)
    app.include_router(reports.router)
    app.include_router(whatif.router)
    app.include_router(workload.router)
    app.include_router(audit_trail.router)
    app.include_router(audit.router)
    app.include_router(data_protection.router)
    # The public routes first: /appointments/service-points must not be taken for an id.
    app.include_router(appointments.public_router)
    app.include_router(appointment_worklists.router)  # before /appointments/{id}
    app.include_router(appointments.router)
    app.docs_sign_in = docs_sign_in(settings)
    install_api_docs(app, app.docs_sign_in)
    install_pages(app)
    install_read_access_log(app)
    # Inside the operations' middlewares (added after it): their body limits apply first.
    install_idempotency(app, AnswerMemory(service.writes, service.clock))
    upload_limits = {
        intake.FORM_PATH: settings.contact_form_max_total_bytes + MULTIPART_OVERHEAD_BYTES,
        # The page takes one file's size more than the files together may have, so that
        # most selections over the limits reach it and get its own message, naming the
        # files (a larger body gets the 413 page, which states the limits).
        contact_page.CONTACT_PATH: (
            settings.contact_form_max_total_bytes
            + settings.contact_form_max_file_bytes
            + MULTIPART_OVERHEAD_BYTES
        ),
        document_uploads.UPLOAD_PATH: settings.upload_max_file_bytes + MULTIPART_OVERHEAD_BYTES,
    }
    # Inside the operations middlewares: a 429 is logged and counted like any answer.
    limiter = RateLimiter(settings.rate_limits)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    # Last, so that its middlewares wrap everything: every answer, 413/415/500 included,
    # carries a request id and is logged and counted.
    install_operations(
        app,
        service,
        max_body_bytes=settings.max_body_bytes,
        readiness_checks=[NamedCheck("read_models", read_models.lag_problem), *readiness_checks],
        max_body_bytes_by_path={
            **{
                path: min(limit, settings.max_body_bytes)
                for path, limit in {
                    **commitments.BODY_LIMITS,
                    **appointments.BODY_LIMITS,
                    **form_body_limits(),
                }.items()
            },
            # Uploads: their own, larger limits, and multipart bodies instead of JSON.
            **upload_limits,
        },
        accepted_media_types_by_path={
            **dict.fromkeys(upload_limits, MULTIPART),
            # The public pages' forms post as browsers do without files.
            **form_media_types(),
        },
    )
    # Outermost: the public pages' errors, whichever layer answers them (413, 415, 429,
    # 404 ...), become pages in the visitor's language; the API's stay problems.
    app.add_middleware(
        PageErrorPages, areas=PAGE_AREAS, file_limits=contact_page.Limits.of(settings)
    )
    limiter.metrics = RateLimitMetrics(app.state.metrics.registry)
    app.state.metrics.registry.register(ReadModelLag(read_models))
    # Mails, payment notifications, erasures; the last runs of the command-line tasks.
    app.state.payment_notification_metrics = install_monitoring(
        app.state.metrics.registry,
        read_models.views,
        tasks=[
            task for task in TASKS if task != APPOINTMENTS_TICK or service.appointments.configured
        ],
    )
    return app
